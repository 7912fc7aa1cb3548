"""Retrievals on record: the log entry a search leaves, and the replay that compares it with what
the same search returns today, each difference explained. Pure: MemoryService (core.service.log)
reads and writes the log, the history and today's search."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from uuid import UUID, uuid4

from core.explain import Explanation, below, ordinal
from core.models import HistoryEvent, Memory, MemoryStore, Retrieval, ScoreBreakdown, SearchResult
from core.search import Candidate, Hit, SearchParams

# How many of what search cut (beyond the limit, below the threshold) an entry keeps.
NEAR_MISSES = 5


def model_of(store: MemoryStore) -> str:
    return f"{store.embedding_model}/{store.embedding_dim}"


_BREAKDOWN = [f.name for f in fields(ScoreBreakdown)]


@lru_cache(maxsize=64)
def _settings(params: SearchParams) -> dict[str, Any]:
    """params.to_dict() once per distinct settings (asdict copies deeply: it was most of an
    entry's cost). The dict is shared by the entries: read it, never change it."""
    return params.to_dict()


def _result(rank: int, r: SearchResult) -> dict[str, Any]:
    breakdown = {k: v for k in _BREAKDOWN if (v := getattr(r.breakdown, k)) is not None}  # asdict() deep-copies: slower
    return {"id": str(r.memory.id), "rank": rank, "score": r.score, "similarity": r.similarity, "breakdown": breakdown}


def near_misses(beyond: Sequence[Candidate], below_threshold: Sequence[Hit], params: SearchParams) -> list[dict[str, Any]]:
    """The best of what search cut: ranked past the limit, or under the threshold."""
    out = [
        {
            "id": str(c.id),
            "rank": params.limit + n,
            "score": c.score,
            "similarity": c.similarity,
            "reason": f"ranked {ordinal(params.limit + n)}; the limit is {params.limit}",
        }
        for n, c in enumerate(beyond[:NEAR_MISSES], start=1)
    ]
    out += [
        {
            "id": str(h.memory.id),
            "rank": None,
            "score": None,
            "similarity": h.similarity,
            "reason": below(h.similarity, params.min_similarity),
        }
        for h in below_threshold[:NEAR_MISSES]
    ]
    return out


def entry(
    *,
    store: MemoryStore,
    query: str,
    params: SearchParams,
    results: Sequence[SearchResult],
    missed: list[dict[str, Any]],
    interface: str,
    actor: str,
    key_id: UUID | None,
    key_name: str | None,
    latency_ms: float,
    at: datetime | None = None,
) -> Retrieval:
    """What the log keeps of one search."""
    return Retrieval(
        id=uuid4(),
        store_id=store.id,
        at=at,
        interface=interface,
        key_id=key_id,
        key_name=key_name,
        actor=actor,
        query=query,
        mode=params.mode,
        params=_settings(params),
        model=model_of(store),
        results=[_result(n, r) for n, r in enumerate(results, start=1)],
        near_misses=missed,
        result_count=len(results),
        latency_ms=round(latency_ms, 3),
    )


# Replay ---------------------------------------------------------------------------------------------

NEW, CHANGED, ARCHIVED, UNARCHIVED, EXPIRED, DELETED, MERGED, MOVED, DROPPED, CAME_BACK, MODEL = (
    "new since",
    "changed since",
    "archived since",
    "unarchived since",
    "expired since",
    "deleted since",
    "merged since",
    "moved",
    "dropped",
    "came back",
    "model changed",
)


@dataclass(frozen=True)
class Difference:
    """One memory that is not where it was, and why, in a sentence."""

    memory_id: UUID
    kind: str
    then_rank: int | None
    now_rank: int | None
    reason: str
    changes: dict[str, list[Any]] = field(default_factory=dict)  # field -> [then, now] for an edit


@dataclass(frozen=True)
class Replay:
    entry: Retrieval
    now: list[SearchResult]
    differences: list[Difference]
    model_changed: bool

    @property
    def same(self) -> bool:
        return not self.differences


def _latest(events: Sequence[HistoryEvent], kinds: set[str]) -> HistoryEvent | None:
    return next((e for e in reversed(events) if e.event in kinds), None)


def _edits(events: Sequence[HistoryEvent]) -> dict[str, list[Any]]:
    """Field -> [value then, value now] over every edit since."""
    merged: dict[str, list[Any]] = {}
    for e in events:
        for name, (old, new) in e.changes.items():
            merged[name] = [merged[name][0] if name in merged else old, new]
    return {k: v for k, v in merged.items() if v[0] != v[1] and k not in ("id", "store_id")}


def replay(
    logged: Retrieval,
    now: Sequence[SearchResult],
    explanation: Explanation,
    current_model: str,
    history: dict[UUID, list[HistoryEvent]],
    present: dict[UUID, Memory],
) -> Replay:
    """Compare a logged search with the same search today: each memory returned then or now that
    moved, came, or went, with the reason (its history since, or today's why-not explanation)."""
    then_rank = {UUID(r["id"]): int(r["rank"]) for r in logged.results}
    now_rank = {r.memory.id: n for n, r in enumerate(now, start=1)}
    model_changed = current_model != logged.model
    differences: list[Difference] = []
    for memory_id in dict.fromkeys([*then_rank, *now_rank]):
        before, after = then_rank.get(memory_id), now_rank.get(memory_id)
        events = history.get(memory_id, [])
        edits = _edits([e for e in events if e.event in ("updated", "restored")])
        if before == after and not edits:
            continue
        created = _latest(events, {"created"})
        if before is None:
            named = memory_id in {UUID(m["id"]) for m in logged.near_misses}  # it existed then: search cut it
            born = present[memory_id].created_at if memory_id in present else None  # an import keeps its own date
            if not named and created is not None and logged.at is not None and created.at > logged.at and not (born and born < logged.at):
                differences.append(Difference(memory_id, NEW, None, after, f"added since ({created.actor}), {ordinal(after or 0)} now"))
            elif _latest(events, {"unarchived"}):
                differences.append(Difference(memory_id, UNARCHIVED, None, after, f"unarchived since, {ordinal(after or 0)} now"))
            elif edits:
                differences.append(Difference(memory_id, CHANGED, None, after, f"edited since, {ordinal(after or 0)} now", edits))
            else:
                differences.append(
                    Difference(
                        memory_id,
                        CAME_BACK,
                        None,
                        after,
                        f"{ordinal(after or 0)} now: "
                        + ("the model changed" if model_changed else "other memories moved (added, edited, archived or deleted)"),
                    )
                )
            continue
        if after is None:
            gone = _latest(events, {"deleted", "merged", "archived", "expired"})
            if memory_id not in present:
                if gone is not None and gone.event == "merged":
                    differences.append(Difference(memory_id, MERGED, before, None, f"merged into {gone.merged_into} by {gone.actor}"))
                else:
                    who = f" by {gone.actor}" if gone is not None else ""
                    differences.append(Difference(memory_id, DELETED, before, None, f"deleted since{who}"))
            elif present[memory_id].archived:
                differences.append(Difference(memory_id, ARCHIVED, before, None, "archived since" + (f" by {gone.actor}" if gone else "")))
            elif present[memory_id].status(datetime.now(UTC)) == "expired":
                differences.append(Difference(memory_id, EXPIRED, before, None, "expired since"))
            elif edits:
                why = explanation.why_not(memory_id).reason
                differences.append(Difference(memory_id, CHANGED, before, None, f"edited since; now {why}", edits))
            else:
                why = explanation.why_not(memory_id).reason
                differences.append(Difference(memory_id, DROPPED, before, None, ("the model changed; " if model_changed else "") + why))
            continue
        kind = CHANGED if edits else MOVED
        detail = f"{ordinal(before)} then, {ordinal(after)} now" + ("; edited since" if edits else "")
        differences.append(Difference(memory_id, kind, before, after, detail, edits))
    if model_changed:
        differences.insert(
            0, Difference(logged.store_id, MODEL, None, None, f"the store's model was {logged.model}, it is {current_model}")
        )
    return Replay(logged, list(now), differences, model_changed)
