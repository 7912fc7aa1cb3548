"""Dates a query names, and whether a memory was created on one: pure.

The hybrid mode favours memories created on a date the query names ("What did she say on 7 May
2023?", "in June"): for memories whose created_at is when they were said, which is what a memory
of a conversation is. A general rule, not one about a data set's wording:

- a day with its month: `7 May 2023`, `7th of May, 2023`, `May 7, 2023`, `May 7th`, `2023-05-07`;
- a month with its year: `May 2023`;
- a month alone, only capitalised and after in / during / since / until / till / by / of / this /
  last / next / early / late / mid ("in June"; "may I" and "march on" are not dates);
- English month names, three-letter abbreviations and "Sept". A bare year is ignored (too coarse).

A memory matches when every part the expression gives (year, month, day) equals its created_at
in UTC.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m}
_MONTHS.update({m.lower(): i for i, m in enumerate(calendar.month_abbr) if m})
_MONTHS["sept"] = 9
_MON = "|".join(sorted(_MONTHS, key=len, reverse=True))
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_YEAR = r"((?:19|20)\d\d)"
_PATTERNS = (
    re.compile(rf"\b{_DAY}\s+(?:of\s+)?({_MON})\b\.?,?(?:\s*{_YEAR})?", re.I),  # 7 May 2023, 7th of May
    re.compile(rf"\b({_MON})\.?\s+{_DAY}\b,?(?:\s*{_YEAR})?", re.I),  # May 7, 2023, May 7th
    re.compile(r"\b((?:19|20)\d\d)-(\d\d)-(\d\d)\b"),  # 2023-05-07
    re.compile(
        rf"(?:\b(in|during|since|until|till|by|of|this|last|next|early|late|mid|mid-)\s+)?\b({_MON})\b(?:\s+(?:of\s+)?{_YEAR})?", re.I
    ),
)


@dataclass(frozen=True)
class Named:
    """A date a query names; None parts are not named."""

    year: int | None
    month: int | None
    day: int | None

    def matches(self, moment: datetime) -> bool:
        at = moment.astimezone(UTC)
        return (
            (self.year is None or at.year == self.year)
            and (self.month is None or at.month == self.month)
            and (self.day is None or at.day == self.day)
        )

    def __str__(self) -> str:
        parts = [str(self.year) if self.year else "", calendar.month_name[self.month] if self.month else "", str(self.day or "")]
        return " ".join(p for p in (parts[2], parts[1], parts[0]) if p)


def dates_in(query: str) -> list[Named]:
    """The dates named in the query, in the order the rules find them."""
    found: list[Named] = []
    taken: list[tuple[int, int]] = []
    for rule, pattern in enumerate(_PATTERNS):
        for m in pattern.finditer(query):
            if any(m.start() < end and m.end() > start for start, end in taken):
                continue
            g = m.groups()
            if rule == 0:
                day, month, year = int(g[0]), _MONTHS[g[1].lower()], g[2]
            elif rule == 1:
                month, day, year = _MONTHS[g[0].lower()], int(g[1]), g[2]
            elif rule == 2:
                year, month, day = g[0], int(g[1]), int(g[2])
            else:
                month, day, year = _MONTHS[g[1].lower()], None, g[2]
                if year is None and (g[0] is None or not g[1][0].isupper()):
                    continue
            if (day is not None and not 1 <= day <= 31) or not 1 <= month <= 12:
                continue
            taken.append((m.start(), m.end()))
            found.append(Named(int(year) if year else None, month, day))
    return found


def named_on(dates: Sequence[Named], moment: datetime) -> Named | None:
    """The first of the dates `moment` falls on, if any."""
    return next((d for d in dates if d.matches(moment)), None)
