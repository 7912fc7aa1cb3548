"""The embedding map: a UMAP projection of a store's vectors to 2 or 3 dimensions.

Memories that mean similar things land near each other, so clusters, outliers and near-duplicates
show at a glance, and a query placed on the map shows where retrieval looks. Where the time went,
and what this module does about it (docs/BENCHMARKS.md has the figures):

- UMAP's numba kernels compiled in every new process: 20-60 s before the first map, even of 40
  memories. import_umap keeps them on disk (numba's own cache, under the data directory) and
  turns that cache on for the kernels umap-learn and pynndescent declare without it; the
  explorer's start-up process (core.explorer.startup) compiles them onto it.
- Fitted maps are kept in the database (MemoryService.save_map, migration 010) keyed by what
  determines them: the store, its model, its number of memories, its latest update and the
  parameters. A kept map that still matches is drawn without UMAP; one the store has moved past
  is drawn at once (deleted memories dropped, new ones placed among their nearest neighbours)
  while a background job fits it again (FitJobs, with its progress); a store never mapped shows a
  linear preview (PCA) meanwhile. In the process, ProjectionCache holds what was drawn.
- A query is placed from the search results the page fetches anyway (the similarity-weighted
  mean of their positions: how UMAP's own transform starts a new point), so no fitted model is
  kept anywhere.
Fits are deterministic (fixed random_state), so the same key always means the same map.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.config import get_settings
from core.errors import InvalidInput
from core.explorer.colours import NODE_COLOURS
from core.explorer.labels import plot_text
from core.models import MemoryStore
from core.service import MemoryService
from core.service.projections import StoredMap
from core.vectors import unit_rows

SAMPLE_CAP = 20_000  # beyond this a fit takes minutes: a random sample shows the same shape
MIN_MEMORIES = 5
INLINE_MAX = 3_000  # stores up to this size are fitted while the page waits (a second or two); bigger ones in the background
COLOUR_BY = {
    "Type": "memory_type",
    "Source": "source",
    "Importance": "importance",
    "Age (days)": "age_days",
    "Access count": "access_count",
    "State": "status",
}
CATEGORICAL = {"memory_type", "source", "status"}


# --- UMAP, compiled once per machine ----------------------------------------------------------------

_umap: ModuleType | None = None
_umap_lock = threading.Lock()
_CACHED_PACKAGES = ("umap", "pynndescent")


def numba_cache_dir() -> Path:
    """Where numba keeps compiled kernels: beside the database, in the data directory (writable,
    one per install, kept across restarts). NUMBA_CACHE_DIR, when set, wins."""
    return Path(os.environ.get("NUMBA_CACHE_DIR") or get_settings().data_dir / "numba-cache")


def import_umap() -> ModuleType:
    """umap, imported once per process with numba's on-disk cache on for its kernels.

    numba keeps a kernel compiled on disk only if its decorator says cache=True, and umap-learn
    0.5 leaves it out on the kernels every fit runs (smooth_knn_dist, compute_membership_strengths,
    the layout epoch, its distances, ...), so each new process compiled them again: 20-60 s. While
    umap (and pynndescent, which it imports) is being imported, and only then, numba.njit is
    wrapped so that a decorator called from those two packages gets cache=True unless it says
    otherwise (their explicit cache=False stays: those kernels take functions as arguments, which
    numba cannot cache). Nothing else in the process is affected and numba.njit is restored at
    once. The cache is numba's: keyed by each source file and the CPU, checked on every load,
    written atomically (several processes may share it). Kernels numba compiles later from
    closures still compile per process (pynndescent's nearest-neighbour descent, used above 4,096
    points: ~20-30 s in a fresh process, in the background job that fits such maps)."""
    global _umap
    with _umap_lock:
        if _umap is not None:
            return _umap
        os.environ.setdefault("NUMBA_CACHE_DIR", str(numba_cache_dir()))
        import numba

        numba.config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"]  # type: ignore[attr-defined]  # read at numba's import, which may have come first
        original = numba.njit

        def njit(*args: Any, **kwargs: Any) -> Any:
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if caller.partition(".")[0] in _CACHED_PACKAGES:
                kwargs.setdefault("cache", True)
            return original(*args, **kwargs)

        numba.njit = njit
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import umap
        finally:
            numba.njit = original
        _umap = umap
        return umap


def umap_ready() -> bool:
    """Whether umap is imported (its kernels loaded): a small map then fits in about a second."""
    return _umap is not None


# --- fitting --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectionParams:
    n_neighbors: int = 15
    min_dist: float = 0.1
    dims: int = 2
    seed: int = 42

    def label(self, cap: int = SAMPLE_CAP) -> str:
        """The key of a kept map (with the sample cap, which changes what is fitted)."""
        return f"umap nn={self.n_neighbors} md={self.min_dist:.2f} dims={self.dims} seed={self.seed} cap={cap}"


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
    computed_at: datetime
    seconds: float
    method: str = "umap"  # or "pca": a preview while UMAP runs
    _where: dict[str, int] | None = field(default=None, repr=False)

    @property
    def sampled(self) -> bool:
        return len(self.ids) < self.total

    def coords_by_id(self) -> dict[str, int]:
        if self._where is None:
            self._where = {memory_id: i for i, memory_id in enumerate(self.ids)}
        return self._where

    def place(self, neighbours: Sequence[tuple[str, float]]) -> np.ndarray | None:
        """Where a query falls on this map, from its nearest memories as search found them
        ((id, similarity) pairs): the similarity-weighted mean of their positions, which is how
        UMAP's own transform() starts a new point. None when none of them is on the map."""
        where = self.coords_by_id()
        on_map = [(where[i], s) for i, s in neighbours if i in where]
        if not on_map:
            return None
        rows = self.coords[[r for r, _ in on_map]].astype(np.float64)
        weights = np.maximum(np.array([s for _, s in on_map], dtype=np.float64), 1e-6)
        return np.asarray((rows * weights[:, None]).sum(axis=0) / weights.sum())


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


# Told (what, done, total) as a fit advances: "epochs" counts UMAP's layout epochs.
FitProgress = Callable[[str, int, int], object]


class _Epochs:
    """A file for tqdm (umap reports its layout epochs through it) that tells `progress` instead."""

    def __init__(self, progress: FitProgress):
        self.progress = progress

    def write(self, text: str) -> None:
        done, _, total = text.strip().rpartition("\r")[2].partition("/")
        if done.isdigit() and total.isdigit():
            self.progress("epochs", int(done), int(total))

    def flush(self) -> None:
        pass


def fit_projection(
    ids: Sequence[str], vectors: np.ndarray, params: ProjectionParams, cap: int = SAMPLE_CAP, progress: FitProgress | None = None
) -> Projection:
    """Fit UMAP (cosine) on the vectors, sampled to `cap`. Small stores get n_neighbors <= n-1
    and a random init: spectral init needs a graph larger than the target dimension allows."""
    if len(ids) < MIN_MEMORIES:
        raise InvalidInput(f"a map needs at least {MIN_MEMORIES} memories; this store has {len(ids)}")
    started = time.perf_counter()
    keep = sample_indices(len(ids), cap, params.seed)
    data = unit_rows(np.asarray(vectors)[keep])
    n_neighbors = max(2, min(params.n_neighbors, len(keep) - 1))
    if progress:
        progress("loading UMAP", 0, 0)
    umap = import_umap()
    if progress:
        progress("neighbours", 0, 0)
    tqdm = {"disable": False, "file": _Epochs(progress), "bar_format": "{n}/{total}", "mininterval": 0.5} if progress else None
    reducer = umap.UMAP(
        n_components=params.dims,
        n_neighbors=n_neighbors,
        min_dist=params.min_dist,
        metric="cosine",
        random_state=params.seed,
        n_jobs=1,
        init="random" if len(keep) < 20 else "spectral",
        tqdm_kwds=tqdm,
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
        computed_at=datetime.now(UTC),
        seconds=time.perf_counter() - started,
    )


def preview(ids: Sequence[str], vectors: np.ndarray, params: ProjectionParams, cap: int = SAMPLE_CAP) -> Projection:
    """A linear map (PCA of the unit vectors) in milliseconds, shown while UMAP runs: broad
    directions only; clusters that UMAP separates may overlap here."""
    started = time.perf_counter()
    keep = sample_indices(len(ids), cap, params.seed)
    x = unit_rows(np.asarray(vectors)[keep]).astype(np.float64)
    centred = x - x.mean(axis=0)
    _, vectors_of = np.linalg.eigh(centred.T @ centred)
    coords = centred @ vectors_of[:, ::-1][:, : params.dims]
    return Projection(
        ids=[str(ids[i]) for i in keep],
        coords=coords,
        total=len(ids),
        params=params,
        n_neighbors=0,
        computed_at=datetime.now(UTC),
        seconds=time.perf_counter() - started,
        method="pca",
    )


def patched(stored_ids: Sequence[str], stored_coords: np.ndarray, ids: Sequence[str], vectors: np.ndarray, k: int = 15) -> np.ndarray:
    """Positions for `ids` on a kept map the store has moved past: a memory still on it keeps its
    place; a new one goes to the similarity-weighted mean of its k nearest memories on the map."""
    where = {memory_id: i for i, memory_id in enumerate(stored_ids)}
    on_map = np.array([i in where for i in ids], dtype=bool)
    coords = np.zeros((len(ids), stored_coords.shape[1]), dtype=np.float64)
    rows = [where[i] for i, keep in zip(ids, on_map) if keep]
    coords[on_map] = stored_coords[rows]
    if (~on_map).any() and on_map.any():
        x = unit_rows(np.asarray(vectors, dtype=np.float32))
        known = np.flatnonzero(on_map)
        similarity = x[~on_map] @ x[known].T
        k = min(k, len(known))
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        weights = np.maximum(np.take_along_axis(similarity, nearest, axis=1), 1e-6)
        coords[~on_map] = (coords[known][nearest] * weights[..., None]).sum(axis=1) / weights.sum(axis=1, keepdims=True)
    return coords


class ProjectionCache:
    """Projections drawn in this process, by key, shared by every session (the page holds one in
    st.cache_resource). Least recently used entries go first. One lock per key, so two sessions
    opening the same store fit it once."""

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

    def put(self, key: ProjectionKey, projection: Projection) -> None:
        with self._lock:
            self._entries[key] = projection
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                old, _ = self._entries.popitem(last=False)
                self._key_locks.pop(old, None)

    def drop(self, key: ProjectionKey) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def get_or_fit(
        self,
        key: ProjectionKey,
        load: Callable[[], tuple[Sequence[str], np.ndarray]],
        cap: int = SAMPLE_CAP,
        progress: FitProgress | None = None,
    ) -> tuple[Projection, bool]:
        """(projection, True) from the cache, or (projection, False) after loading and fitting."""
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            found = self.get(key)
            if found is not None:
                return found, True
            ids, vectors = load()
            projection = fit_projection(ids, vectors, key.params, cap, progress)
            with self._lock:
                self.fits += 1
            self.put(key, projection)
            return projection, False


@dataclass
class FitJob:
    """A map being fitted in the background, and how far it got."""

    key: ProjectionKey
    started: float = field(default_factory=time.monotonic)
    phase: str = "starting"
    done: int = 0
    total: int = 0
    result: Projection | None = None
    error: str | None = None
    thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.result is None and self.error is None

    def tell(self, phase: str, done: int, total: int) -> None:
        self.phase, self.done, self.total = phase, done, total

    @property
    def fraction(self) -> float:
        """0..1: reading and neighbours count for the first fifth, the layout epochs for the rest."""
        if self.phase == "epochs" and self.total:
            return 0.2 + 0.8 * self.done / self.total
        return {"starting": 0.0, "reading": 0.02, "loading UMAP": 0.05, "neighbours": 0.1}.get(self.phase, 0.0)


class FitJobs:
    """Background fits of this process, one per key (the page holds one in st.cache_resource)."""

    def __init__(self) -> None:
        self._jobs: dict[ProjectionKey, FitJob] = {}
        self._lock = threading.Lock()

    def get(self, key: ProjectionKey) -> FitJob | None:
        with self._lock:
            return self._jobs.get(key)

    def start(self, key: ProjectionKey, work: Callable[[FitJob], Projection]) -> FitJob:
        """The job fitting `key`, started now unless one runs (or ran) already."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.error is None:
                return job
            job = self._jobs[key] = FitJob(key)

        def run() -> None:
            try:
                job.result = work(job)
            except Exception as exc:  # noqa: BLE001 - shown on the page; the next visit tries again
                job.error = f"{type(exc).__name__}: {exc}"

        job.thread = threading.Thread(target=run, name=f"memex-map-{key.store_id}", daemon=True)
        job.thread.start()
        return job

    def forget(self, key: ProjectionKey) -> None:
        with self._lock:
            self._jobs.pop(key, None)


# --- maps kept in the database -----------------------------------------------------------------------


def _instant(iso: str) -> datetime | None:
    return datetime.fromisoformat(iso) if iso else None


def kept(svc: MemoryService, key: ProjectionKey, cap: int) -> tuple[Projection | None, StoredMap | None]:
    """(the kept map as a Projection if it is still the store's, the kept map whatever its age)."""
    stored = svc.load_map(key.store_id, key.params.label(cap))
    if stored is None or not stored.matches(key.model, key.count, _instant(key.latest)):
        return None, stored
    return _from_stored(stored, key.params, cap), stored


def _from_stored(stored: StoredMap, params: ProjectionParams, cap: int) -> Projection:
    return Projection(
        ids=stored.ids,
        coords=stored.coords.astype(np.float64),
        total=stored.memory_count,
        params=params,
        n_neighbors=max(2, min(params.n_neighbors, len(stored.ids) - 1)),
        computed_at=stored.computed_at,
        seconds=stored.fit_seconds,
    )


def keep(svc: MemoryService, key: ProjectionKey, projection: Projection, cap: int) -> None:
    """Keep a fitted map in the database, keyed as `key` says the store was."""
    svc.save_map(
        key.store_id,
        key.params.label(cap),
        projection.ids,
        projection.coords,
        model=key.model,
        memory_count=key.count,
        latest_update=_instant(key.latest),
        computed_at=projection.computed_at,
        fit_seconds=projection.seconds,
    )


def fit_and_keep(svc: MemoryService, key: ProjectionKey, cap: int, progress: FitProgress | None = None) -> Projection:
    """Read the store's vectors, fit, keep the map: what a background job runs."""
    if progress:
        progress("reading", 0, 0)
    ids, vectors = svc.store_vectors(key.store_id)
    projection = fit_projection(ids, vectors, key.params, cap, progress)
    keep(svc, key, projection, cap)
    return projection


def meanwhile(svc: MemoryService, key: ProjectionKey, stored: StoredMap | None, cap: int) -> Projection:
    """What to draw while a job fits the map: the kept map the store moved past (memories deleted
    since dropped, new ones placed among their nearest neighbours), else a linear preview."""
    ids, vectors = svc.store_vectors(key.store_id)
    if stored is not None and len(ids) <= cap:
        added = len(set(ids) - set(stored.ids))
        if added * len(stored.ids) <= 50_000_000:  # placing them is a matrix of that many similarities
            coords = patched(stored.ids, stored.coords, ids, vectors)
            return Projection(
                ids, coords, len(ids), key.params, max(2, min(key.params.n_neighbors, len(ids) - 1)), stored.computed_at, 0.0, "stale"
            )
    return preview(ids, vectors, key.params, cap)


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
    types = {t: plot_text(t) for t in points["memory_type"].unique()}
    columns = (points[name].tolist() for name in ("memory_type", "importance", "access_count", "content"))  # lists: iterating
    hover = [f"<b>{types[t]}</b> · importance {i:.2f} · {a} accesses<br>{plot_text(c)}" for t, i, a, c in zip(*columns)]  # pandas' is slow
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
