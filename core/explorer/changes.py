"""A memory's history in words: an edit's diff word by word, one line a timeline event. Apart
from the Retrievals page's charts so that the memory detail view imports no plotting library."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from core.models import HistoryEvent


def _words(value: Any) -> list[str]:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text.split(" ")


def word_diff(old: Any, new: Any) -> str:
    """One line showing an edit word by word: [-removed-]{+added+}, the rest as it was."""
    a, b = _words(old), _words(new)
    out: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            out += a[i1:i2]
            continue
        removed = "[-" + " ".join(a[i1:i2]) + "-]" if op in ("delete", "replace") else ""
        added = "{+" + " ".join(b[j1:j2]) + "+}" if op in ("insert", "replace") else ""
        out.append(removed + added)
    return " ".join(out)


def changes_text(changes: Mapping[str, Sequence[Any]]) -> str:
    """Every changed field of an edit, one diff a field (embeddings and timestamps left out)."""
    lines = []
    for name, (old, new) in changes.items():
        if name in ("embedding", "updated_at", "id", "store_id", "tenant_id"):
            continue
        lines.append(f"{name}: {word_diff(old, new)}" if name in ("content", "metadata", "source") else f"{name}: {old} → {new}")
    return "\n".join(lines)


EVENT_WORDS = {
    "created": "created",
    "updated": "edited",
    "archived": "archived",
    "unarchived": "unarchived",
    "expired": "expired",
    "merged": "merged into another memory",
    "deleted": "deleted",
    "restored": "restored",
}


def event_summary(event: HistoryEvent) -> str:
    """One line of a timeline: version, what happened, when, by whom."""
    what = EVENT_WORDS.get(event.event, event.event)
    return f"v{event.version} · {what} · {event.at:%d %b %Y %H:%M} UTC · by {event.actor}"


def dated_before(event: HistoryEvent, created_at: datetime) -> str | None:
    """For the created event of a memory that came in with an earlier date of its own (an import,
    the demo): its history begins when it was written here, its date is older; say so."""
    if event.event != "created" or created_at >= event.at - timedelta(minutes=1):
        return None
    return f"The memory itself is dated {created_at:%d %b %Y %H:%M} UTC: it was brought in with that date (an import, the demo)."
