"""User text made safe and short for display: plotly reads a subset of HTML in its labels, so
memory content placed in a chart is escaped first; long content is cut for tables."""

from __future__ import annotations

import html
import textwrap


def plot_text(value: object, width: int = 60, limit: int = 240) -> str:
    """Text for a plotly label or hover: escaped, shortened, wrapped with <br>."""
    text = " ".join(str(value).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return "<br>".join(html.escape(line) for line in textwrap.wrap(text, width)) or "&nbsp;"


def short(value: str, limit: int = 90) -> str:
    """One line of at most `limit` characters."""
    text = " ".join(value.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
