"""The demo's weeks of use, so the Retrievals, history and Evaluate views show something on a
first run: logged searches by several callers (some empty, some slow, some missing the memory
they were after), a few edits, an archive and a delete that leave history, and an evaluation set
with runs kept before and after those edits. Deterministic (seeded by the store's name) and
written through the service: the searches are real, only their time, caller and latency are the
demo's."""

from __future__ import annotations

import math
import random
import re
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from core.evaluation import EvalCase, ModeConfig
from core.explain import below, ordinal
from core.models import Memory, MemoryStore, Retrieval, SearchResult
from core.retrieval import NEAR_MISSES, entry
from core.search import SearchParams
from core.service import MemoryService

DAYS = 28
DISTINCT_QUERIES = 24
EVAL_SET = "questions agents asked"
# (interface, API key name or None, share of the searches, the caller's habitual search)
CALLERS = [
    ("api", "trip-planner", 0.45, SearchParams(limit=5, min_similarity=0.4, mode="hybrid")),
    ("mcp", "support-bot", 0.3, SearchParams(limit=10, min_similarity=0.35, mode="vector")),
    ("cli", None, 0.1, SearchParams(limit=5, min_similarity=0.3, mode="vector")),
    ("python", None, 0.15, SearchParams(limit=8, min_similarity=0.3, mode="weighted")),
]
OFF_TOPIC = [
    "quarterly revenue forecast for the board",
    "kubernetes ingress timeout settings",
    "who won the football match last night",
    "office wifi password",
    "parking permit renewal deadline",
    "favourite programming font",
]
STOPWORDS = set(
    "about after also always and are because been before being but can could does each every from have her here his into "
    "just like more most much must never only other over same she should since some such than that the their them then "
    "there these they this those through very was were what when where which while will with would your".split()
)


@dataclass(frozen=True)
class Activity:
    searches: int
    edits: int
    runs: int


def topic_query(content: str, rng: random.Random) -> str:
    """A query as agents write them: a few of the memory's words, sometimes as a question."""
    words = [w.lower() for w in re.findall(r"[A-Za-z][A-Za-z'-]{3,}", content) if w.lower() not in STOPWORDS]
    picked = sorted(rng.sample(range(len(words)), min(len(words), rng.randint(2, 4))))
    text = " ".join(words[i] for i in picked) or content[:40]
    return f"what do we know about {text}?" if rng.random() < 0.3 else text


def near_misses(results: list[SearchResult], wider: list[SearchResult], params: SearchParams) -> list[dict]:
    """What the search cut, from the same search with a wider limit and no threshold."""
    returned = {r.memory.id for r in results}
    cut = [(n, r) for n, r in enumerate(wider, start=1) if r.memory.id not in returned]
    over = [(n, r) for n, r in cut if (r.similarity or 0) >= params.min_similarity][:NEAR_MISSES]
    under = [r for _, r in cut if (r.similarity or 0) < params.min_similarity][:NEAR_MISSES]
    return [
        {
            "id": str(r.memory.id),
            "rank": n,
            "score": r.score,
            "similarity": r.similarity,
            "reason": f"ranked {ordinal(n)}; the limit is {params.limit}",
        }
        for n, r in over
    ] + [
        {
            "id": str(r.memory.id),
            "rank": None,
            "score": None,
            "similarity": r.similarity,
            "reason": below(r.similarity or 0, params.min_similarity),
        }
        for r in under
    ]


def _when(rng: random.Random, now: datetime) -> datetime:
    """A working hour of the past weeks, recent days busier; never later than now (an hour of
    today still to come is taken from the day before)."""
    day = int(DAYS * (1 - math.sqrt(rng.random())))  # more mass near 0 (today)
    at = (now - timedelta(days=day)).replace(hour=rng.randint(7, 20), minute=rng.randint(0, 59), second=rng.randint(0, 59))
    return at if at <= now else at - timedelta(days=1)


def _latency(rng: random.Random) -> float:
    """Milliseconds: mostly quick, a long tail, now and then a slow one (a cold cache, a busy server)."""
    return rng.uniform(250, 1400) if rng.random() < 0.04 else rng.lognormvariate(math.log(14), 0.45)


def searches(svc: MemoryService, store: MemoryStore, memories: list[Memory], seed: str, now: datetime) -> list[Retrieval]:
    """The store's log: a pool of real searches (topic queries from its memories, some off topic),
    each asked again and again by its caller over the weeks."""
    rng = random.Random(zlib.crc32(seed.encode()))
    pool: list[tuple[str, tuple]] = []
    for memory in rng.sample(memories, min(len(memories), DISTINCT_QUERIES - 4)):
        pool.append((topic_query(memory.content, rng), rng.choices(CALLERS, [c[2] for c in CALLERS])[0]))
    pool += [(q, rng.choice(CALLERS[:2])) for q in rng.sample(OFF_TOPIC, 4)]
    answers = []
    for (query, caller), vector in zip(pool, svc.embed_queries(store, [q for q, _ in pool])):
        params = caller[3].checked()
        results = svc.search(store.id, query, params, record_access=False, log=False, query_embedding=vector)
        wider = SearchParams(limit=params.limit + NEAR_MISSES, min_similarity=-1, mode=params.mode)
        cut = near_misses(results, svc.search(store.id, query, wider, record_access=False, log=False, query_embedding=vector), params)
        answers.append((query, caller, params, results, cut))
    popularity = [1 / (n + 1) ** 0.8 for n in range(len(answers))]  # a few questions come back all the time
    total = max(150, min(350, 7 * len(memories)))
    log = []
    for _ in range(total):
        query, (interface, key, _, _), params, results, cut = rng.choices(answers, popularity)[0]
        log.append(
            entry(
                store=store,
                query=query,
                params=params,
                results=results,
                missed=cut,
                interface=interface,
                actor=key or ("demo-cli" if interface == "cli" else "nightly-digest"),
                key_id=None,
                key_name=key,
                latency_ms=_latency(rng),
                at=_when(rng, now),
            )
        )
    return log


def edits(svc: MemoryService, memories: list[Memory], keep: set[UUID], retrieved: list[UUID], seed: str) -> int:
    """Two edits, an archive and a delete, each left in the history: the memories the log
    returns most are the ones that change, so replays have something to explain."""
    rng = random.Random(zlib.crc32(seed.encode()) + 1)
    free = [m for m in memories if m.id not in keep]
    order = {memory_id: n for n, memory_id in enumerate(retrieved)}
    free.sort(key=lambda m: order.get(m.id, len(order)))
    if len(free) < 4:
        return 0
    edited, retuned, archived, deleted = free[0], free[1], free[2], free[rng.randint(3, min(len(free), 8) - 1)]
    svc.update_memory(edited.id, content=edited.content.rstrip(".") + ". Confirmed again with the user last week.")
    svc.update_memory(retuned.id, importance=round(max(0.1, retuned.importance - 0.3), 2), metadata={**retuned.metadata, "reviewed": True})
    svc.set_archived([archived.id])
    svc.delete_memory(deleted.id)
    return 4


def evaluation(svc: MemoryService, store: MemoryStore, memories: list[Memory], seed: str, now: datetime, *, before: bool) -> int:
    """The evaluation set (made on the first call) and a kept run of two configurations: one
    three weeks ago (`before` the edits), one yesterday."""
    configs = [ModeConfig("vector", "vector", min_similarity=0.0), ModeConfig("hybrid", "hybrid", min_similarity=0.0)]
    if before:
        rng = random.Random(zlib.crc32(seed.encode()) + 2)
        cases = [EvalCase(topic_query(m.content, rng), (m.id,), "from the log") for m in rng.sample(memories, min(12, len(memories)))]
        saved = svc.save_eval_set(store.id, EVAL_SET, cases)
    else:
        saved = next(s for s in svc.list_eval_sets(store.id) if s.name == EVAL_SET)
    when = now - timedelta(days=21 if before else 1)
    svc.evaluate(store.id, saved.cases, configs, keep_as=saved.id, kept_at=when)
    return len(configs)


def record_activity(svc: MemoryService, store: MemoryStore, keep: set[UUID], seed: str, now: datetime) -> Activity:
    """All of it for one store, the log written last: a store with a log has had its activity."""
    memories = svc.all_memories(store.id)
    log = searches(svc, store, memories, seed, now)
    runs = evaluation(svc, store, memories, seed, now, before=True)
    counted: dict[UUID, int] = {}
    for e in log:
        for r in e.results:
            counted[UUID(r["id"])] = counted.get(UUID(r["id"]), 0) + 1
    changed = edits(svc, memories, keep, sorted(counted, key=lambda i: -counted[i]), seed)
    runs += evaluation(svc, store, svc.all_memories(store.id), seed, now, before=False)
    svc.record_retrievals(log)
    return Activity(len(log), changed, runs)
