"""The embedding map: a UMAP projection of a store's vectors to 2 or 3 dimensions.

Memories that mean similar things land near each other, so clusters, outliers and near-duplicates
show at a glance, and a query placed on the map shows where retrieval looks. Fitting UMAP takes
seconds (much longer for tens of thousands of memories), so fitted projections are kept in a
process-wide cache keyed by what determines them: tenant, store, embedding model, the number of
memories, the latest update and the parameters. Any write that could change a vector changes the
key (adding or deleting changes the count, re-embedding or editing bumps updated_at).
Fits are deterministic (fixed random_state), so the same key always means the same map.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.errors import InvalidInput
from core.explorer.graph import NODE_COLOURS
from core.explorer.labels import plot_text
from core.models import MemoryStore
from core.vectors import unit_rows

SAMPLE_CAP = 20_000  # beyond this a fit takes minutes: a random sample shows the same shape
MIN_MEMORIES = 5
COLOUR_BY = {
    "Type": "memory_type",
    "Source": "source",
    "Importance": "importance",
    "Age (days)": "age_days",
    "Access count": "access_count",
    "State": "status",
}
CATEGORICAL = {"memory_type", "source", "status"}


@dataclass(frozen=True)
class ProjectionParams:
    n_neighbors: int = 15
    min_dist: float = 0.1
    dims: int = 2
    seed: int = 42


@dataclass(frozen=True)
class ProjectionKey:
    tenant_id: str
    store_id: str
    model: str
    count: int
    latest: str  # the store's latest updated_at, ISO
    params: ProjectionParams


@dataclass
class Projection:
    ids: list[str]  # the memories placed (all, or the sample)
    coords: np.ndarray  # (len(ids), dims)
    total: int  # memories in the store when fitted
    params: ProjectionParams  # as asked
    n_neighbors: int  # as used (at most len(ids) - 1)
    reducer: Any = field(repr=False)
    computed_at: datetime
    seconds: float

    @property
    def sampled(self) -> bool:
        return len(self.ids) < self.total

    def place(self, vector: np.ndarray) -> np.ndarray:
        """Where a new vector (a query) falls on this map, through the fitted model."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(self.reducer.transform(unit_rows(np.asarray(vector).reshape(1, -1))))[0]


def projection_key(tenant_id: object, store: MemoryStore, frame: pd.DataFrame, params: ProjectionParams) -> ProjectionKey:
    """What a projection depends on, read from the store frame (no vectors needed)."""
    latest = frame["updated_at"].max() if len(frame) else None
    return ProjectionKey(
        str(tenant_id),
        str(store.id),
        f"{store.embedding_model}/{store.embedding_dim}",
        len(frame),
        latest.isoformat() if latest is not None else "",
        params,
    )


def sample_indices(n: int, cap: int = SAMPLE_CAP, seed: int = 0) -> np.ndarray:
    """All indices when n <= cap, else `cap` of them drawn at random with a fixed seed (sorted)."""
    if n <= cap:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=cap, replace=False))


def fit_projection(ids: Sequence[str], vectors: np.ndarray, params: ProjectionParams, cap: int = SAMPLE_CAP) -> Projection:
    """Fit UMAP (cosine) on the vectors, sampled to `cap`. Small stores get n_neighbors <= n-1
    and a random init: spectral init needs a graph larger than the target dimension allows."""
    if len(ids) < MIN_MEMORIES:
        raise InvalidInput(f"a map needs at least {MIN_MEMORIES} memories; this store has {len(ids)}")
    started = time.perf_counter()
    keep = sample_indices(len(ids), cap, params.seed)
    data = unit_rows(np.asarray(vectors)[keep])
    n_neighbors = max(2, min(params.n_neighbors, len(keep) - 1))
    import umap  # slow import (numba): only when a fit is really needed

    reducer = umap.UMAP(
        n_components=params.dims,
        n_neighbors=n_neighbors,
        min_dist=params.min_dist,
        metric="cosine",
        random_state=params.seed,
        n_jobs=1,
        init="random" if len(keep) < 20 else "spectral",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # umap's notes on small data and random_state/n_jobs
        coords = np.asarray(reducer.fit_transform(data), dtype=np.float64)
    return Projection(
        ids=[str(ids[i]) for i in keep],
        coords=coords,
        total=len(ids),
        params=params,
        n_neighbors=n_neighbors,
        reducer=reducer,
        computed_at=datetime.now(UTC),
        seconds=time.perf_counter() - started,
    )


class ProjectionCache:
    """Fitted projections by key, shared by every session of the process (the page holds one in
    st.cache_resource). Least recently used entries go first: a fitted reducer keeps its data.
    One lock per key, so two sessions opening the same store fit it once."""

    def __init__(self, max_entries: int = 8):
        self.max_entries = max_entries
        self.fits = 0
        self._entries: OrderedDict[ProjectionKey, Projection] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[ProjectionKey, threading.Lock] = {}

    def get(self, key: ProjectionKey) -> Projection | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def drop(self, key: ProjectionKey) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def get_or_fit(
        self, key: ProjectionKey, load: Callable[[], tuple[Sequence[str], np.ndarray]], cap: int = SAMPLE_CAP
    ) -> tuple[Projection, bool]:
        """(projection, True) from the cache, or (projection, False) after loading and fitting."""
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            found = self.get(key)
            if found is not None:
                return found, True
            ids, vectors = load()
            projection = fit_projection(ids, vectors, key.params, cap)
            with self._lock:
                self.fits += 1
                self._entries[key] = projection
                while len(self._entries) > self.max_entries:
                    old, _ = self._entries.popitem(last=False)
                    self._key_locks.pop(old, None)
            return projection, False


def points_frame(frame: pd.DataFrame, projection: Projection, now: datetime | None = None) -> pd.DataFrame:
    """The projected memories with what the map can colour by: type, source, importance, age,
    access count and status. Memories deleted since the fit drop out."""
    now = now or datetime.now(UTC)
    names = ["x", "y", "z"][: projection.coords.shape[1]]
    coords = pd.DataFrame(projection.coords, columns=names).assign(id=projection.ids)
    points = coords.merge(frame, on="id", how="inner")
    points["source"] = points["source"].fillna("(none)")
    points["age_days"] = (pd.Timestamp(now) - points["created_at"]).dt.total_seconds() / 86400
    return points


def _scatter(three_d: bool, **kwargs: Any) -> go.Scatter3d | go.Scattergl:
    if three_d:
        return go.Scatter3d(**kwargs)
    kwargs.pop("z", None)
    return go.Scattergl(**kwargs)


def map_figure(
    points: pd.DataFrame,
    colour: str,
    *,
    title: str,
    query: tuple[str, np.ndarray, list[str]] | None = None,
    type_colour: dict[str, str] | None = None,
) -> go.Figure:
    """WebGL scatter (Scatter3d in 3D) of the points coloured by a column: one legend entry per
    category for type/source/state (memory types in `type_colour`, as on the other pages), a
    colour scale for the numbers. `query` = (text, its coordinates, ids of its results in order):
    the query as a star and each result on the map ringed where it lies, with its rank. Axes carry
    no numbers: a projection's coordinates mean nothing on their own."""
    three_d = "z" in points.columns
    fig = go.Figure()
    hover = [
        f"<b>{plot_text(t)}</b> · importance {i:.2f} · {a} accesses<br>{plot_text(c)}"
        for t, i, a, c in zip(points["memory_type"], points["importance"], points["access_count"], points["content"])
    ]
    points = points.assign(hover=hover)
    base = dict(mode="markers", hovertemplate="%{hovertext}<extra></extra>")
    size = 5 if three_d else 8
    if colour in CATEGORICAL:
        for i, (value, group) in enumerate(sorted(points.groupby(colour), key=lambda item: str(item[0]))):
            fig.add_trace(
                _scatter(
                    three_d,
                    x=group["x"],
                    y=group["y"],
                    z=group.get("z"),
                    name=plot_text(value),
                    customdata=group["id"],
                    hovertext=group["hover"],
                    marker=dict(
                        size=size,
                        color=(type_colour or {}).get(str(value), NODE_COLOURS[i % len(NODE_COLOURS)])
                        if colour == "memory_type"
                        else NODE_COLOURS[i % len(NODE_COLOURS)],
                        opacity=0.85,
                    ),
                    **base,
                )
            )
    else:
        label = {v: k for k, v in COLOUR_BY.items()}[colour]
        fig.add_trace(
            _scatter(
                three_d,
                x=points["x"],
                y=points["y"],
                z=points.get("z"),
                name="memories",
                showlegend=False,
                customdata=points["id"],
                hovertext=points["hover"],
                marker=dict(size=size, color=points[colour], colorscale="Viridis", opacity=0.85, colorbar=dict(title=label)),
                **base,
            )
        )
    if query is not None:
        text, at, result_ids = query
        where = points.set_index("id")
        hits = [(rank, r) for rank, r in enumerate(result_ids, start=1) if r in where.index]
        fig.add_trace(
            _scatter(
                three_d,
                x=[float(where["x"][r]) for _, r in hits],
                y=[float(where["y"][r]) for _, r in hits],
                z=[float(where["z"][r]) for _, r in hits] if three_d else None,
                mode="markers+text",
                name=f"its top {len(hits)} results",
                text=[str(rank) for rank, _ in hits],
                textposition="top center",
                textfont=dict(color="#dc2626", size=13),
                hovertext=[f"<b>result {rank}</b><br>{plot_text(where['content'][r])}" for rank, r in hits],
                hovertemplate="%{hovertext}<extra></extra>",
                marker=dict(
                    size=(size + 8) if three_d else 20,
                    color="rgba(0,0,0,0)",
                    symbol="circle-open" if three_d else "circle",
                    line=dict(width=3, color="#dc2626"),
                ),
            )
        )
        fig.add_trace(
            _scatter(
                three_d,
                x=[float(at[0])],
                y=[float(at[1])],
                z=[float(at[2])] if three_d else None,
                mode="markers",
                name="the query (placed approximately)",
                hovertext=[f"<b>query</b><br>{plot_text(text)}"],
                hovertemplate="%{hovertext}<extra></extra>",
                marker=dict(
                    size=12 if three_d else 18,
                    color="#dc2626",
                    symbol="diamond" if three_d else "star",
                    line=dict(width=1, color="#111827"),
                ),
            )
        )
    fig.update_layout(title=title, height=650, margin=dict(l=10, r=10, t=50, b=10), legend=dict(itemsizing="constant"))
    blank = dict(showticklabels=False, title="", showgrid=False, zeroline=False)
    if three_d:
        fig.update_layout(scene=dict(xaxis=blank, yaxis=blank, zaxis=blank))
    else:
        fig.update_layout(xaxis=blank, yaxis=blank)
    return fig
