"""User text made safe and short for display: plotly reads a subset of HTML in its labels and
Streamlit reads Markdown in messages and captions, so user text placed there is escaped first;
long content is cut for tables."""

from __future__ import annotations

import html
import re
from datetime import date


def plot_text(value: object, width: int = 60, limit: int = 240) -> str:
    """Text for a plotly label or hover: escaped, shortened, wrapped with <br> (lines of up to
    `width` characters broken at spaces, a longer word cut; one regex instead of textwrap, whose
    cost showed on a map of 20,000 hover texts)."""
    text = " ".join(str(value).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    lines = re.findall(rf"\S.{{0,{width - 1}}}(?=\s|$)|\S{{{width}}}", text)
    return "<br>".join(html.escape(line) for line in lines) or "&nbsp;"


def short(value: str, limit: int = 90) -> str:
    """One line of at most `limit` characters."""
    text = " ".join(value.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# What can start markup inside a line: emphasis, code, links and images, LaTeX, HTML, tables,
# strikethrough, icon and emoji shortcodes (":name:"); underscores only where they can open or close
# emphasis (not inside words such as expected_ids).
_INLINE_MARKUP = re.compile(r"[\\`*\[\]$<>~|!]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])|:(?=[A-Za-z])")


def markdown_literal(value: object) -> str:
    """Text for a Streamlit element that reads Markdown (st.error, st.caption, labels), on one
    line, with everything that could render as markup escaped: `![x](http://...)`, `$x$` or
    `**x**` show as typed."""
    text = _INLINE_MARKUP.sub(lambda m: "\\" + m.group(), " ".join(str(value).split()))
    text = re.sub(r"^(\d+)([.)])", r"\1\\\2", text)  # "1. " would start a list
    return re.sub(r"^([#+=-])", r"\\\1", text)  # as would "- ", "+ ", and "#" a heading


def count(n: int, noun: str) -> str:
    """'1 memory', '3 memories', '2 stores'."""
    plural = noun[:-1] + "ies" if noun.endswith("y") and noun[-2:-1] not in "aeiou" else noun + "s"
    return f"{n} {noun if n == 1 else plural}"


def day(value: date | None, never: str = "never") -> str:
    """A date as people write it ("12 Mar 2026"), or `never` when there is none (None, NaT)."""
    if value is None or value != value:  # NaT is not equal to itself
        return never
    return f"{value.day} {value:%b %Y}"


def heading(column: str) -> str:
    """A column name as a heading in words: "last_accessed" -> "last accessed", "memory_type" -> "type"."""
    return {
        "memory_type": "type",
        "access_count": "accesses",
        "created_at": "created",
        "updated_at": "updated",
        "expires_at": "expires",
    }.get(column, column.replace("_", " "))
