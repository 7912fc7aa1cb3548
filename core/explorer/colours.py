"""The explorer's colours: one per memory type, alike on every page that colours by type, and one
per evaluation configuration, alike in both of the Evaluate page's charts. Kept apart from the
graph's module so that a page colours without importing networkx."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

NODE_COLOURS = ("#4f46e5", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#06b6d4", "#ec4899", "#84cc16", "#64748b", "#a16207")


def palette(values: Iterable[str], colours: Sequence[str]) -> dict[str, str]:
    """A colour for each distinct value, in sorted order, the colours repeated if they run out."""
    return {v: colours[i % len(colours)] for i, v in enumerate(sorted(set(values)))}


def type_colours(memory_types: Iterable[str]) -> dict[str, str]:
    """One colour per memory type, from every type of the store: pages that pass the same store's
    types (Graph, Embedding map, Overview, Quality's timeline) colour a type alike."""
    return palette(memory_types, NODE_COLOURS)


def configuration_colours(names: Iterable[str]) -> dict[str, str]:
    """One colour per evaluation configuration, in the order given: the page's configurations
    first, then the other names of kept runs, so that the kept runs' chart and the results' chart
    (each of which plotly coloured by its own order) show a configuration in the same colour."""
    return {n: NODE_COLOURS[i % len(NODE_COLOURS)] for i, n in enumerate(dict.fromkeys(names))}
