"""Tenant isolation under attack, in the style of PostgreSQL's rowsecurity regression tests.

1. A property-based test: random sequences of every tenant-scoped operation by three tenants,
   each call also tried with the ids of the other tenants; after every step the database, read
   as each tenant, as no tenant and as the superuser (who bypasses RLS), equals a model of the
   expected state kept in Python, and every store's counter equals its rows.
2. Context leakage on a pool of ONE connection (so the same backend is certainly reused): after
   commits, Python exceptions, database errors, savepoint rollbacks and session-level state
   left behind by a caller.
3. Privilege: what the application role may not do (escalate, read catalogs and tables it has
   no business with, write files, run programs), and what it may do without effect (views,
   leaky functions, COPY) returns only its tenant's rows.
4. Where the owner connection is used: only in the places docs/RELIABILITY.md lists.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from uuid import UUID, uuid4, uuid5

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError

from core import InvalidInput, MemexError, MemoryService, NewMemory, NotFound
from core.admin import create_tenant, delete_tenant
from core.db import Database, _discard_session_state, _register_vector
from core.jsonl import _ID_NAMESPACE
from tests.conftest import unique

ROOT = Path(__file__).resolve().parent.parent
FIGURES: Counter[str] = Counter()  # written to test-output/reliability/ by conftest
NIL = UUID("00000000-0000-4000-8000-000000000000")


# 1. Property-based: random operation sequences by three tenants ---------------------------------

WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet")
ACTORS = st.integers(min_value=0, max_value=2)
PHRASE = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(lambda w: "memo " + " ".join(w))


@dataclass(frozen=True)
class Mem:
    """What the model expects of one memory."""

    store: UUID
    content: str
    archived: bool = False
    expired: bool = False


class IsolationMachine(RuleBasedStateMachine):
    """Three tenants, two users each, a test-hashing store per user; every rule acts as one tenant
    (the actor) on ids drawn from ALL tenants, so most calls are cross-tenant attempts."""

    def __init__(self, db: Database, su: Engine):
        super().__init__()
        self.db, self.su = db, su
        self.svcs: list[MemoryService] = []
        self.users: dict[UUID, int] = {}
        self.stores: dict[UUID, int] = {}
        self.gone_stores: list[UUID] = []
        self.memories: dict[tuple[int, UUID], Mem] = {}
        self.gone_memories: list[UUID] = []
        self.relations: dict[tuple[int, UUID, UUID, str], float] = {}
        self.last_import: tuple[int, UUID, bytes] | None = None
        for i in range(3):
            svc = MemoryService(db, create_tenant(db, unique(f"prop{i}")).id)
            self.svcs.append(svc)
            for name in ("ana", "ben"):
                user = svc.create_user(name)
                self.users[user.id] = i
                store = svc.get_or_create_store(user.id, "default", embedding_model="test-hashing")
                self.stores[store.id] = i
                for m in svc.add_memories(store.id, [NewMemory(f"memo seed {w}") for w in WORDS[i : i + 2]]):
                    self.memories[(i, m.id)] = Mem(store.id, m.content)
        FIGURES["property: sequences run"] += 1

    # helpers --------------------------------------------------------------------------------

    def count(self, op: str, actor: int, owner: int | None) -> None:
        FIGURES["property: operations"] += 1
        FIGURES[f"property: op {op}"] += 1
        if owner != actor:
            FIGURES["property: cross-tenant attempts"] += 1

    def refused(self, error: type[Exception], call: Callable[[], object]) -> None:
        with pytest.raises(error):
            call()
        FIGURES["property: calls refused"] += 1

    # Choices come in creation order, never sorted by id: ids are random on every run, and the
    # same choices must lead to the same calls for Hypothesis to replay and shrink a sequence.
    # Half the picks are the actor's own ids, half any id at all (another tenant's, deleted, unknown).
    def pick_store(self, data: st.DataObject, actor: int) -> UUID:
        own = [s for s, t in self.stores.items() if t == actor]
        if own and data.draw(st.booleans()):
            return data.draw(st.sampled_from(own))
        return data.draw(st.sampled_from(list(dict.fromkeys([*self.stores, *self.gone_stores[-3:], NIL]))))

    def pick_memory(self, data: st.DataObject, actor: int) -> UUID:
        own = [mid for t, mid in self.memories if t == actor]
        if own and data.draw(st.booleans()):
            return data.draw(st.sampled_from(own))
        ids = dict.fromkeys([*(mid for _, mid in self.memories), *self.gone_memories[-3:], NIL])
        return data.draw(st.sampled_from(list(ids)))

    def owner_of_memory(self, actor: int, memory_id: UUID) -> int | None:
        """The actor if it holds a memory of this id, else some tenant that does, else None."""
        owners = [t for t, mid in self.memories if mid == memory_id]
        return actor if actor in owners else (owners[0] if owners else None)

    def own(self, actor: int, memory_id: UUID) -> bool:
        return (actor, memory_id) in self.memories

    def forget(self, actor: int, memory_ids: set[UUID]) -> None:
        """Remove memories from the model with the relationships at either end (the cascade).
        In the model's order, not the set's: a set of UUIDs iterates differently on every run."""
        for mid in [mid for t, mid in self.memories if t == actor and mid in memory_ids]:
            del self.memories[(actor, mid)]
            self.gone_memories.append(mid)
        self.relations = {k: v for k, v in self.relations.items() if not (k[0] == actor and (k[1] in memory_ids or k[2] in memory_ids))}

    def store_memories(self, actor: int, store_id: UUID) -> dict[UUID, Mem]:
        return {mid: m for (t, mid), m in self.memories.items() if t == actor and m.store == store_id}

    def upsert_outcome(self, actor: int, store_id: UUID, ids: list[UUID]) -> bool:
        """Whether writing memories of these ids into this store is allowed (an id of another store
        of the same tenant is refused; an id another tenant uses is a fresh id in this tenant)."""
        return all(self.memories[(actor, i)].store == store_id for i in ids if self.own(actor, i))

    # rules ------------------------------------------------------------------------------------

    @rule(actor=ACTORS, data=st.data(), content=PHRASE)
    def add(self, actor: int, data: st.DataObject, content: str) -> None:
        store_id = self.pick_store(data, actor)
        owner = self.stores.get(store_id)
        self.count("add", actor, owner)
        if owner != actor:
            return self.refused(NotFound, lambda: self.svcs[actor].add_memory(store_id, content))
        memory = self.svcs[actor].add_memory(store_id, content)
        assert (memory.tenant_id, memory.store_id, memory.content) == (self.svcs[actor].tenant_id, store_id, content)
        self.memories[(actor, memory.id)] = Mem(store_id, content)

    @rule(actor=ACTORS, data=st.data(), contents=st.lists(PHRASE, min_size=1, max_size=4))
    def batch_add(self, actor: int, data: st.DataObject, contents: list[str]) -> None:
        store_id = self.pick_store(data, actor)
        owner = self.stores.get(store_id)
        self.count("batch add", actor, owner)
        # each item: a fresh id, or an id already in use (by this tenant or another one)
        ids = [data.draw(st.one_of(st.uuids(version=4), st.just(self.pick_memory(data, actor)))) for _ in contents]
        items = [NewMemory(c, id=i) for c, i in zip(contents, ids)]
        call = lambda: self.svcs[actor].add_memories(store_id, items)
        if owner != actor:
            return self.refused(NotFound, call)
        if len(set(ids)) != len(ids) or not self.upsert_outcome(actor, store_id, ids):
            return self.refused(InvalidInput, call)
        written = call()
        assert [m.id for m in written] == ids and all(m.tenant_id == self.svcs[actor].tenant_id for m in written)
        for c, i in zip(contents, ids):
            self.memories[(actor, i)] = Mem(store_id, c)

    @rule(actor=ACTORS, data=st.data(), content=PHRASE, archived=st.booleans())
    def update(self, actor: int, data: st.DataObject, content: str, archived: bool) -> None:
        memory_id = self.pick_memory(data, actor)
        self.count("update", actor, self.owner_of_memory(actor, memory_id))
        call = lambda: self.svcs[actor].update_memory(memory_id, content=content, archived=archived)
        if not self.own(actor, memory_id):
            return self.refused(NotFound, call)
        assert call().content == content
        self.memories[(actor, memory_id)] = replace(self.memories[(actor, memory_id)], content=content, archived=archived)

    @rule(actor=ACTORS, data=st.data())
    def delete(self, actor: int, data: st.DataObject) -> None:
        memory_id = self.pick_memory(data, actor)
        self.count("delete", actor, self.owner_of_memory(actor, memory_id))
        if not self.own(actor, memory_id):
            return self.refused(NotFound, lambda: self.svcs[actor].delete_memory(memory_id))
        self.svcs[actor].delete_memory(memory_id)
        self.forget(actor, {memory_id})

    @rule(actor=ACTORS, data=st.data())
    def bulk_delete(self, actor: int, data: st.DataObject) -> None:
        self.bulk(actor, data, "delete")

    @rule(actor=ACTORS, data=st.data())
    def expire(self, actor: int, data: st.DataObject) -> None:
        self.bulk(actor, data, "expire")

    @rule(actor=ACTORS, data=st.data(), archived=st.booleans())
    def archive(self, actor: int, data: st.DataObject, archived: bool) -> None:
        self.bulk(actor, data, "archive" if archived else "unarchive")

    def bulk(self, actor: int, data: st.DataObject, what: str) -> None:
        """Bulk calls with a mix of own and foreign ids: they count and touch only the own ones."""
        ids = list(dict.fromkeys(self.pick_memory(data, actor) for _ in range(data.draw(st.integers(1, 4)))))
        mine = {i for i in ids if self.own(actor, i)}
        self.count(f"bulk {what}", actor, actor if len(mine) == len(ids) else None)
        svc = self.svcs[actor]
        done = {
            "delete": svc.delete_memories,
            "expire": svc.expire_memories,
            "archive": lambda i: svc.set_archived(i, True),
            "unarchive": lambda i: svc.set_archived(i, False),
        }[what](ids)
        assert done == len(mine), (what, done, len(mine))
        FIGURES["property: foreign ids ignored by bulk calls"] += len(ids) - len(mine)
        if what == "delete":
            return self.forget(actor, mine)
        for i in mine:
            m = self.memories[(actor, i)]
            self.memories[(actor, i)] = replace(m, expired=True) if what == "expire" else replace(m, archived=what == "archive")

    @rule(actor=ACTORS, data=st.data(), kind=st.sampled_from(["related_to", "follows"]), strength=st.sampled_from([0.1, 0.5, 0.9]))
    def relate(self, actor: int, data: st.DataObject, kind: str, strength: float) -> None:
        source, target = self.pick_memory(data, actor), self.pick_memory(data, actor)
        both_own = self.own(actor, source) and self.own(actor, target)
        self.count("relate", actor, actor if both_own else None)
        call = lambda: self.svcs[actor].add_relationship(source, target, kind, strength)
        if source == target:
            return self.refused(InvalidInput, call)
        if not both_own:
            return self.refused(NotFound, call)
        rel = call()
        assert rel.tenant_id == self.svcs[actor].tenant_id
        self.relations[(actor, source, target, kind)] = strength

    @rule(actor=ACTORS, data=st.data())
    def related(self, actor: int, data: st.DataObject) -> None:
        memory_id = self.pick_memory(data, actor)
        self.count("neighbours", actor, self.owner_of_memory(actor, memory_id))
        call = lambda: self.svcs[actor].neighbours(memory_id, depth=3)
        if not self.own(actor, memory_id):
            return self.refused(NotFound, call)
        reached = {r.memory.id for r in call()}
        assert all(self.own(actor, m) for m in reached)
        assert {r.memory.tenant_id for r in call()} <= {self.svcs[actor].tenant_id}

    @rule(actor=ACTORS, data=st.data(), query=PHRASE, record=st.booleans(), mode=st.sampled_from(["vector", "hybrid"]))
    def search(self, actor: int, data: st.DataObject, query: str, record: bool, mode: str) -> None:
        store_id = self.pick_store(data, actor)
        owner = self.stores.get(store_id)
        self.count("search", actor, owner)
        call = lambda: self.svcs[actor].search_memories(store_id, query, limit=1000, min_similarity=-1, record_access=record, mode=mode)
        if owner != actor:
            return self.refused(NotFound, call)
        found = {r.memory.id for r in call()}
        live = {mid for mid, m in self.store_memories(actor, store_id).items() if not m.archived and not m.expired}
        assert found == live, (found - live, live - found)

    @rule(actor=ACTORS, data=st.data())
    def list_(self, actor: int, data: st.DataObject) -> None:
        store_id = self.pick_store(data, actor)
        owner = self.stores.get(store_id)
        self.count("list", actor, owner)
        svc = self.svcs[actor]
        if owner != actor:
            self.refused(NotFound, lambda: svc.list_memories(store_id))
            return self.refused(NotFound, lambda: svc.store_stats(store_id))
        expected = self.store_memories(actor, store_id)
        page = svc.list_memories(store_id, include_expired=True, limit=10_000)
        assert {m.id for m in page.items} == set(expected) and page.total == len(expected)
        # one status per memory (core.status): archived first, so an archived memory that also expired is listed as archived
        listed = {i for i, m in expected.items() if m.archived or not m.expired}
        assert {m.id for m in svc.list_memories(store_id, limit=10_000).items} == listed
        assert svc.store_stats(store_id).total == len(expected)

    @rule(actor=ACTORS, data=st.data(), whole_tenant=st.booleans())
    def purge(self, actor: int, data: st.DataObject, whole_tenant: bool) -> None:
        store_id = None if whole_tenant else self.pick_store(data, actor)
        owner = actor if store_id is None else self.stores.get(store_id)
        self.count("purge", actor, owner)
        gone = {mid for (t, mid), m in self.memories.items() if t == actor and m.expired and store_id in (None, m.store)}
        elsewhere = {mid for (t, mid), m in self.memories.items() if t == actor and m.expired and m.store != store_id}
        if store_id is not None and elsewhere:
            FIGURES["property: purges of one store while another holds expired memories"] += 1
        assert self.svcs[actor].purge_expired(store_id) == len(gone)  # 0 for another tenant's store
        self.forget(actor, gone)

    @rule(
        actor=ACTORS,
        data=st.data(),
        contents=st.lists(PHRASE, min_size=1, max_size=4),
        with_ids=st.booleans(),
        relationships=st.integers(0, 2),
    )
    def import_(self, actor: int, data: st.DataObject, contents: list[str], with_ids: bool, relationships: int) -> None:
        """A JSONL import: lines with ids (fresh, or in use by any tenant) or without, and maybe
        relationships, some of them to memories of other tenants."""
        store_id = self.pick_store(data, actor)
        ids = [data.draw(st.one_of(st.uuids(version=4), st.just(self.pick_memory(data, actor)))) if with_ids else None for _ in contents]
        lines = [{"content": c} | ({"id": str(i)} if i else {}) for c, i in zip(contents, ids)]
        endpoints = [i for i in ids if i] + [self.pick_memory(data, actor) for _ in range(2)]
        rels = [(data.draw(st.sampled_from(endpoints)), data.draw(st.sampled_from(endpoints))) for _ in range(relationships)]
        lines += [
            {"kind": "relationship", "source_memory_id": str(s), "target_memory_id": str(t), "relationship_type": "imported"}
            for s, t in rels
        ]
        self.run_import(actor, store_id, ("\n".join(json.dumps(line) for line in lines) + "\n").encode())

    @rule()
    def reimport(self) -> None:
        """The last successful import again, byte for byte: it must change nothing."""
        if self.last_import is not None:
            self.run_import(*self.last_import)

    def run_import(self, actor: int, store_id: UUID, data: bytes) -> None:
        owner = self.stores.get(store_id)
        self.count("import", actor, owner)
        call = lambda: self.svcs[actor].import_jsonl(store_id, data)
        if owner != actor:
            return self.refused(NotFound, call)
        digest = hashlib.sha256(data).hexdigest()
        memories, rels = [], []
        for n, raw in enumerate(data.split(b"\n"), start=1):
            if raw.strip():
                line = json.loads(raw)
                if line.get("kind") == "relationship":
                    rels.append((UUID(line["source_memory_id"]), UUID(line["target_memory_id"])))
                else:  # an id-less line gets an id derived from (store, file digest, line number)
                    mid = UUID(line["id"]) if "id" in line else uuid5(_ID_NAMESPACE, f"{store_id}:{digest}:{n}")
                    memories.append((mid, line["content"]))
        ids = [mid for mid, _ in memories]
        known = set(ids) | {mid for t, mid in self.memories if t == actor}
        if (
            len(set(ids)) != len(ids)
            or any(s == t or s not in known or t not in known for s, t in rels)
            or not self.upsert_outcome(actor, store_id, ids)
        ):
            return self.refused(InvalidInput, call)
        report = call()
        assert (report.memories, report.relationships) == (len(memories), len(rels))
        for mid, content in memories:
            self.memories[(actor, mid)] = Mem(store_id, content)
        for s, t in rels:
            self.relations[(actor, s, t, "imported")] = 0.5
        self.last_import = (actor, store_id, data)

    @rule(actor=ACTORS, data=st.data())
    def delete_store(self, actor: int, data: st.DataObject) -> None:
        store_id = self.pick_store(data, actor)
        owner = self.stores.get(store_id)
        self.count("store delete", actor, owner)
        if owner != actor:
            return self.refused(NotFound, lambda: self.svcs[actor].delete_store(store_id))
        removed = set(self.store_memories(actor, store_id))
        assert self.svcs[actor].delete_store(store_id) == len(removed)
        del self.stores[store_id]
        self.gone_stores.append(store_id)
        self.forget(actor, removed)

    @rule(actor=ACTORS, data=st.data())
    def create_store(self, actor: int, data: st.DataObject) -> None:
        user_id = data.draw(st.sampled_from(list(self.users)))
        self.count("store create", actor, self.users[user_id])
        call = lambda: self.svcs[actor].get_or_create_store(user_id, unique("s"), embedding_model="test-hashing")
        if self.users[user_id] != actor:
            return self.refused(NotFound, call)
        if sum(1 for t in self.stores.values() if t == actor) < 4:
            self.stores[call().id] = actor

    @rule(actor=ACTORS, data=st.data())
    def raw_sql(self, actor: int, data: st.DataObject) -> None:
        """Raw SQL as memex_app in the actor's tenant, aimed at the other tenants' rows."""
        self.count("raw sql", actor, None)
        mine = self.svcs[actor].tenant_id
        others = [svc.tenant_id for i, svc in enumerate(self.svcs) if i != actor]
        victim = self.pick_memory(data, actor)
        with self.db.tenant(mine) as conn:
            p = {"others": others, "v": victim}
            assert (
                conn.scalar(
                    text("SELECT count(*) FROM memories WHERE tenant_id = ANY(:others) OR (id = :v AND tenant_id <> :me)"), p | {"me": mine}
                )
                == 0
            )
            assert conn.execute(text("UPDATE memories SET content = 'pwned' WHERE tenant_id = ANY(:others)"), p).rowcount == 0
            assert conn.execute(text("DELETE FROM memory_relationships WHERE tenant_id = ANY(:others)"), p).rowcount == 0
            assert conn.execute(text("UPDATE memory_stores SET total_memories = 0 WHERE tenant_id = ANY(:others)"), p).rowcount == 0
            assert conn.execute(text("DELETE FROM users WHERE tenant_id = ANY(:others)"), p).rowcount == 0
        for sql in (
            "INSERT INTO users (tenant_id, name) VALUES (:other, 'planted')",
            "UPDATE memories SET tenant_id = :other WHERE tenant_id = :me",
            "UPDATE users SET tenant_id = :other WHERE tenant_id = :me",
        ):
            with self.db.app.connect() as conn:
                conn.execute(text("SELECT set_config('app.current_tenant_id', :t, true)"), {"t": str(mine)})
                try:
                    changed = conn.execute(text(sql), {"other": others[0], "me": mine}).rowcount
                except DBAPIError as exc:
                    assert "row-level security" in str(exc.orig) or "cannot move" in str(exc.orig), exc.orig
                    FIGURES["property: raw SQL writes refused"] += 1
                else:  # only when the actor has no memory to move
                    assert changed == 0 and "memories" in sql
                conn.rollback()

    # the invariant ------------------------------------------------------------------------------

    @invariant()
    def database_equals_model(self) -> None:
        FIGURES["property: invariant checks"] += 1
        ours = [svc.tenant_id for svc in self.svcs]
        columns = "tenant_id, id, store_id, content, archived, (expires_at IS NOT NULL AND expires_at <= now()) AS expired"
        expected_rels = {(t, s, g, k, v) for (t, s, g, k), v in self.relations.items()}
        truth_memories = set()
        for i, svc in enumerate(self.svcs):
            expected = {(i, mid, m.store, m.content, m.archived, m.expired) for (t, mid), m in self.memories.items() if t == i}
            with self.db.tenant(svc.tenant_id) as conn:  # as the application role, in tenant i
                rows = conn.execute(text(f"SELECT {columns} FROM memories")).all()
                rels = conn.execute(
                    text(
                        "SELECT tenant_id, source_memory_id, target_memory_id, relationship_type,"
                        " strength::float AS strength FROM memory_relationships"
                    )
                ).all()
                stores = conn.execute(
                    text(
                        "SELECT s.tenant_id, s.id, s.total_memories, count(m.id) AS n FROM memory_stores s"
                        " LEFT JOIN memories m ON m.tenant_id = s.tenant_id AND m.store_id = s.id"
                        " GROUP BY 1, 2, 3"
                    )
                ).all()
                users = conn.scalars(text("SELECT DISTINCT tenant_id FROM users")).all()
            assert {r.tenant_id for r in rows} | {r.tenant_id for r in rels} | {s.tenant_id for s in stores} | set(users) == {svc.tenant_id}
            assert {(i, r.id, r.store_id, r.content, r.archived, r.expired) for r in rows} == expected
            assert {(i, r.source_memory_id, r.target_memory_id, r.relationship_type, r.strength) for r in rels} == {
                r for r in expected_rels if r[0] == i
            }
            assert {s.id for s in stores} == {sid for sid, t in self.stores.items() if t == i}
            for s in stores:  # the counter of every store is exact
                assert s.total_memories == s.n == len(self.store_memories(i, s.id)), s
            truth_memories |= expected
        with self.su.connect() as conn:  # the superuser: no RLS, the whole truth about our tenants
            index = {t: i for i, t in enumerate(ours)}
            rows = conn.execute(text(f"SELECT {columns} FROM memories WHERE tenant_id = ANY(:t)"), {"t": ours}).all()
            assert {(index[r.tenant_id], r.id, r.store_id, r.content, r.archived, r.expired) for r in rows} == truth_memories
            rels = conn.execute(
                text(
                    "SELECT tenant_id, source_memory_id, target_memory_id, relationship_type, strength::float"
                    " FROM memory_relationships WHERE tenant_id = ANY(:t)"
                ),
                {"t": ours},
            ).all()
            assert {(index[r[0]], r[1], r[2], r[3], r[4]) for r in rels} == expected_rels
            wrong = conn.execute(
                text(
                    "SELECT s.id FROM memory_stores s WHERE s.tenant_id = ANY(:t) AND s.total_memories <>"
                    " (SELECT count(*) FROM memories m WHERE m.tenant_id = s.tenant_id AND m.store_id = s.id)"
                ),
                {"t": ours},
            ).all()
            assert wrong == []
        with self.db.app.begin() as conn:  # no tenant set: nothing at all
            for table in ("tenants", "users", "memory_stores", "memories", "memory_relationships"):
                assert conn.scalar(text(f"SELECT count(*) FROM {table}")) == 0, table

    def teardown(self) -> None:
        for svc in self.svcs:
            delete_tenant(self.db, svc.tenant_id)
        with self.su.connect() as conn:  # the cascade leaves nothing of them anywhere
            ours = [svc.tenant_id for svc in self.svcs]
            for table in ("users", "memory_stores", "memories", "memory_relationships"):
                assert conn.scalar(text(f"SELECT count(*) FROM {table} WHERE tenant_id = ANY(:t)"), {"t": ours}) == 0


def test_random_operation_sequences_of_three_tenants_never_cross_tenants_and_keep_counts_exact(db, superuser) -> None:
    """Each step: one operation by one tenant, often with another tenant's ids; after each step the
    database equals the model for each tenant, as the tenant, as no tenant and as the superuser."""
    run_state_machine_as_test(
        lambda: IsolationMachine(db, superuser),
        settings=settings(
            max_examples=40,
            stateful_step_count=40,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    assert FIGURES["property: cross-tenant attempts"] > 100


# 2. Context leakage on a pool of ONE connection -------------------------------------------------


@pytest.fixture
def pool_of_one(db: Database) -> Iterator[Database]:
    """The application role through a pool of exactly one connection: every transaction below
    runs on the same PostgreSQL backend, so nothing can hide behind a fresh connection."""
    single = Database(db.app.url, None)
    single.app.dispose()
    single.app = create_engine(db.app.url, pool_size=1, max_overflow=0, pool_pre_ping=True, pool_timeout=10)
    event.listen(single.app, "connect", _register_vector)
    event.listen(single.app, "reset", _discard_session_state)
    yield single
    single.dispose()


@pytest.fixture
def two_tenants(db: Database, svc, store, other):
    """Tenant A (svc, store) with two memories; tenant B (other) with its one memory."""
    svc.add_memory(store.id, "A's first memory")
    svc.add_memory(store.id, "A's second memory")
    return svc, store, other[0], other[1]


def backend(conn) -> int:
    return conn.scalar(text("SELECT pg_backend_pid()"))


def visible(conn) -> dict[str, int]:
    return {t: conn.scalar(text(f"SELECT count(*) FROM {t}")) for t in ("tenants", "users", "memory_stores", "memories")}


def assert_clean(single: Database, a_id: UUID, b_id: UUID, pid: int) -> None:
    """On the one pooled connection: no tenant sees nothing, B sees only B."""
    with single.app.begin() as conn:
        assert backend(conn) == pid
        assert conn.scalar(text("SELECT current_setting('app.current_tenant_id', true)")) in ("", None)
        assert visible(conn) == {"tenants": 0, "users": 0, "memory_stores": 0, "memories": 0}
    with single.tenant(b_id) as conn:
        assert backend(conn) == pid
        assert conn.scalar(text("SELECT count(*) FROM memories WHERE tenant_id = :a"), {"a": a_id}) == 0
        assert set(conn.scalars(text("SELECT tenant_id FROM memories"))) == {b_id}
    FIGURES["leakage: scenarios on one pooled connection"] += 1


def test_pool_of_one_after_commit_a_then_b_then_no_tenant(pool_of_one, two_tenants) -> None:
    a, _, b, _ = two_tenants
    with pool_of_one.tenant(a.tenant_id) as conn:
        pid = backend(conn)
        assert visible(conn)["memories"] == 2
    assert_clean(pool_of_one, a.tenant_id, b.tenant_id, pid)
    # and through the service, on that same connection
    assert [m.content for m in MemoryService(pool_of_one, b.tenant_id).list_memories(two_tenants[3].id).items] == [
        "The launch code of the other tenant is 0000"
    ]


def test_pool_of_one_after_a_python_exception_mid_transaction(pool_of_one, two_tenants) -> None:
    a, _, b, _ = two_tenants
    with pytest.raises(RuntimeError):
        with pool_of_one.tenant(a.tenant_id) as conn:
            pid = backend(conn)
            conn.execute(text("UPDATE memories SET content = 'half-done'"))
            raise RuntimeError("the caller fails half-way")
    assert_clean(pool_of_one, a.tenant_id, b.tenant_id, pid)
    assert "half-done" not in {m.content for m in a.list_memories(two_tenants[1].id).items}


@pytest.mark.parametrize(
    "failing_sql",
    [
        "SELECT 1 / 0",  # division by zero
        "INSERT INTO memories (tenant_id, store_id, content, embedding, embedding_dim)"
        " VALUES (:t, :s, 'x', '[1,2,3]', 384)",  # check violation
        "SELECT CAST('not-a-uuid' AS uuid)",  # invalid input
        "SELECT * FROM no_such_table",  # undefined table
        "SELECT pg_sleep(2)",  # cancelled by a timeout
    ],
)
def test_pool_of_one_after_a_database_error_mid_transaction(pool_of_one, two_tenants, failing_sql: str) -> None:
    a, store, b, _ = two_tenants
    with pytest.raises((MemexError, DBAPIError)):  # a memex error where one applies, else the driver's
        with pool_of_one.tenant(a.tenant_id) as conn:
            pid = backend(conn)
            conn.execute(text("SET LOCAL statement_timeout = '100ms'"))
            conn.execute(text("DELETE FROM memories WHERE content = 'A''s first memory'"))
            conn.execute(text(failing_sql), {"t": a.tenant_id, "s": store.id})
    assert_clean(pool_of_one, a.tenant_id, b.tenant_id, pid)
    assert a.get_store(store.id).total_memories == 2  # the delete before the error was rolled back


def test_pool_of_one_after_a_service_call_fails_inside_its_transaction(pool_of_one, two_tenants, user) -> None:
    """add_memories writes, then finds an id of another store and raises: all of it rolls back."""
    a, store, b, _ = two_tenants
    a_single = MemoryService(pool_of_one, a.tenant_id)
    second = a_single.get_or_create_store(user.id, "second", embedding_model="test-hashing")
    taken = a_single.add_memory(second.id, "lives in the second store")
    with pool_of_one.tenant(a.tenant_id) as conn:
        pid = backend(conn)
    with pytest.raises(InvalidInput, match="another store"):
        a_single.add_memories(store.id, [NewMemory("new one"), NewMemory("clash", id=taken.id)])
    assert a_single.get_store(store.id).total_memories == 2
    assert {m.content for m in a_single.list_memories(store.id).items} == {"A's first memory", "A's second memory"}
    assert_clean(pool_of_one, a.tenant_id, b.tenant_id, pid)


def test_pool_of_one_savepoint_rollback_restores_the_tenant_and_the_rows(pool_of_one, two_tenants) -> None:
    a, store, b, _ = two_tenants
    with pool_of_one.tenant(a.tenant_id) as conn:
        pid = backend(conn)
        nested = conn.begin_nested()
        conn.execute(text("DELETE FROM memories"))
        conn.execute(text("SELECT set_config('app.current_tenant_id', :t, true)"), {"t": str(b.tenant_id)})
        assert set(conn.scalars(text("SELECT tenant_id FROM memories"))) == {b.tenant_id}
        nested.rollback()
        # back to A's setting and A's rows, in the same transaction
        assert conn.scalar(text("SELECT current_setting('app.current_tenant_id')")) == str(a.tenant_id)
        assert conn.scalar(text("SELECT count(*) FROM memories")) == 2
        with pytest.raises(DBAPIError):  # a failed statement inside a savepoint ...
            with conn.begin_nested():
                conn.execute(text("SELECT 1 / 0"))
        assert conn.scalar(text("SELECT count(*) FROM memories")) == 2  # ... leaves the transaction usable
    assert_clean(pool_of_one, a.tenant_id, b.tenant_id, pid)
    assert a.get_store(store.id).total_memories == 2


def test_pool_of_one_forgets_session_state_a_caller_leaves_behind(pool_of_one, two_tenants) -> None:
    """A caller with SQL access sets the tenant for the SESSION, sets a search_path and a timeout,
    and creates a TEMP table named `memories` (temporary tables are found before public ones).
    The connection goes back to the pool; the next user must get none of it. (Before the pool
    discarded session state on return, no-tenant saw A's rows, and B read and wrote A's temp table.)"""
    a, _, b, b_store = two_tenants
    with pool_of_one.tenant(a.tenant_id) as conn:
        pid = backend(conn)
        conn.execute(text("SELECT set_config('app.current_tenant_id', :t, false)"), {"t": str(a.tenant_id)})
        conn.execute(text("CREATE TEMP TABLE memories AS SELECT * FROM public.memories"))
        conn.execute(text("CREATE TEMP VIEW memory_stores AS SELECT * FROM public.memory_stores"))
        conn.execute(text("SELECT pg_advisory_lock(hashtext('memex.reliability.leftover'))"))
        conn.execute(text("SET search_path = pg_temp, public"))
        conn.execute(text("SET statement_timeout = '1min'"))
    assert_clean(pool_of_one, a.tenant_id, b.tenant_id, pid)
    b_single = MemoryService(pool_of_one, b.tenant_id)
    added = b_single.add_memory(b_store.id, "B writes to the real table")
    assert b.get_memory(added.id).content == "B writes to the real table"  # seen through the normal pool too
    assert b.get_store(b_store.id).total_memories == 2
    with pool_of_one.app.begin() as conn:
        assert backend(conn) == pid
        assert conn.scalar(text("SELECT count(*) FROM pg_class WHERE relpersistence = 't' AND relnamespace = pg_my_temp_schema()")) == 0
        assert conn.scalar(text("SHOW statement_timeout")) == "0"
        assert conn.scalar(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")) == 0


@pytest.mark.parametrize(
    "setting, outcome",
    [
        ("", "no rows"),  # what a finished transaction leaves
        ("00000000-0000-4000-8000-000000000000", "no rows"),  # a tenant that does not exist
        ("not-a-uuid", "error"),  # garbage: an error, never all rows
        ("' OR true --", "error"),
    ],
)
def test_a_missing_or_malformed_tenant_setting_shows_no_rows_never_all_rows(db, two_tenants, setting, outcome) -> None:
    with db.app.connect() as conn:
        conn.execute(text("SELECT set_config('app.current_tenant_id', :t, true)"), {"t": setting})
        if outcome == "no rows":
            assert visible(conn) == {"tenants": 0, "users": 0, "memory_stores": 0, "memories": 0}
        else:
            with pytest.raises(DBAPIError, match="invalid input syntax for type uuid"):
                conn.execute(text("SELECT count(*) FROM memories"))
        conn.rollback()
    FIGURES["leakage: malformed tenant settings tried"] += 1


def test_a_tenant_id_that_is_not_a_uuid_is_refused_before_any_query(db) -> None:
    for bad in ("", "all", "' OR 1=1 --", "*", None, 42):
        with pytest.raises(InvalidInput):
            MemoryService(db, bad)  # type: ignore[arg-type]


# 3. Privilege ----------------------------------------------------------------------------------

DENIED = (
    "permission denied",
    "must be owner",
    "must be superuser",
    "only superuser",
    "must be member of role",
    "row-level security",
    "not allowed",
    "must have privileges",
    "must be able to SET ROLE",
    "to examine",
    "privileges of",
    "cannot be executed",
)

ESCALATIONS = {
    # catalogs and tables it has no business with
    "read pg_authid": "SELECT rolname, rolpassword FROM pg_authid",
    "read pg_shadow": "SELECT usename, passwd FROM pg_shadow",
    "read schema_migrations": "SELECT * FROM schema_migrations",
    "write schema_migrations": "UPDATE schema_migrations SET checksum = 'x'",
    "show data_directory": "SHOW data_directory",
    "show hba_file": "SHOW hba_file",
    "read a server file": "SELECT pg_read_file('/etc/passwd')",
    "list a server dir": "SELECT pg_ls_dir('.')",
    "large object import": "SELECT lo_import('/etc/passwd')",
    # tenants: read-only for the application role
    "insert a tenant": "INSERT INTO tenants (name) VALUES ('evil')",
    "rename tenants": "UPDATE tenants SET name = name || '!'",
    "delete tenants": "DELETE FROM tenants",
    # switch RLS off or around
    "disable RLS": "ALTER TABLE memories DISABLE ROW LEVEL SECURITY",
    "unforce RLS on users": "ALTER TABLE users NO FORCE ROW LEVEL SECURITY",
    "drop a policy": "DROP POLICY memory_stores_isolation ON memory_stores",
    "alter a policy": "ALTER POLICY memories_isolation ON memories USING (true)",
    "new permissive policy": "CREATE POLICY open_door ON memory_relationships USING (true)",
    "policy on tenants": "CREATE POLICY mine ON tenants FOR SELECT USING (true)",
    "row_security off": "SET row_security = off; SELECT count(*) FROM memories",
    "alter system": "ALTER SYSTEM SET row_security = off",
    # become someone else
    "set role owner": "SET ROLE memex_owner",
    "set role postgres": "SET ROLE postgres",
    "set session authorization": "SET SESSION AUTHORIZATION memex_owner",
    "grant owner to itself": "GRANT memex_owner TO memex_app",
    "grant pg_read_all_data to itself": "GRANT pg_read_all_data TO memex_app",
    "alter own role bypassrls": "ALTER ROLE memex_app BYPASSRLS",
    "alter own role superuser": "ALTER ROLE memex_app SUPERUSER",
    "create a bypassrls role": "CREATE ROLE intruder LOGIN BYPASSRLS",
    "take ownership": "ALTER TABLE memories OWNER TO memex_app",
    "default privileges of the owner": "ALTER DEFAULT PRIVILEGES FOR ROLE memex_owner GRANT ALL ON TABLES TO memex_app",
    "default privileges in public": "ALTER DEFAULT PRIVILEGES FOR ROLE memex_owner IN SCHEMA public GRANT SELECT ON TABLES TO PUBLIC",
    # plant code that runs as someone else
    "security definer in public": "CREATE FUNCTION public.escalate() RETURNS void LANGUAGE sql SECURITY DEFINER"
    " AS 'ALTER TABLE memories DISABLE ROW LEVEL SECURITY'",
    "replace a trigger function": "CREATE OR REPLACE FUNCTION memories_count_inserted() RETURNS trigger LANGUAGE plpgsql"
    " AS 'BEGIN RETURN NULL;END'",
    "make trigger function definer": "ALTER FUNCTION memories_count_inserted() SECURITY DEFINER",
    "leakproof function": "CREATE FUNCTION pg_temp.lp(text) RETURNS bool LANGUAGE sql LEAKPROOF AS 'SELECT true'",
    "drop the counter trigger": "DROP TRIGGER memories_count_deleted ON memories",
    "disable triggers": "ALTER TABLE memories DISABLE TRIGGER ALL",
    "new trigger": "CREATE TRIGGER t BEFORE INSERT ON memories FOR EACH ROW EXECUTE FUNCTION memories_store_is_fixed()",
    "new rule": "CREATE RULE r AS ON SELECT TO memories DO INSTEAD SELECT * FROM memories",
    "event trigger": "CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION memories_store_is_fixed()",
    # new objects where others would find them
    "table in public": "CREATE TABLE public.loot (x text)",
    "view in public": "CREATE VIEW public.all_memories AS SELECT * FROM memories",
    "new schema": "CREATE SCHEMA loot",
    "index on memories": "CREATE INDEX ON memories (content)",
    "publication": "CREATE PUBLICATION leak FOR TABLE memories",
    "drop the vector extension": "DROP EXTENSION vector CASCADE",
    "foreign data wrapper": "CREATE FOREIGN DATA WRAPPER evil",
    "load a library": "LOAD 'plpgsql'",
    # files and programs
    "copy to program": "COPY memories TO PROGRAM 'cat > /tmp/memex-loot'",
    "copy query to program": "COPY (SELECT 1) TO PROGRAM 'id'",
    "copy to a server file": "COPY memories TO '/tmp/memex-loot.csv'",
    "copy from a server file": "COPY memories FROM '/etc/passwd'",
    # the schema itself
    "drop memories": "DROP TABLE memories",
    "truncate": "TRUNCATE memory_relationships",
    "alter a column": "ALTER TABLE memories ALTER COLUMN tenant_id DROP NOT NULL",
    "comment": "COMMENT ON TABLE memories IS 'mine'",
}


@pytest.mark.parametrize("name", sorted(ESCALATIONS))
def test_application_role_cannot_escalate(db: Database, svc, store, name: str) -> None:
    svc.add_memory(store.id, "a memory that must stay protected")
    autocommit = {"isolation_level": "AUTOCOMMIT"} if ESCALATIONS[name].startswith("ALTER SYSTEM") else {}
    with pytest.raises(DBAPIError) as caught:  # raw errors: db.tenant() would translate some of them
        with db.app.connect().execution_options(**autocommit) as conn, conn.begin():
            conn.execute(text("SELECT set_config('app.current_tenant_id', :t, true)"), {"t": str(svc.tenant_id)})
            for part in ESCALATIONS[name].split("; "):
                conn.execute(text(part))
    message = str(caught.value.orig)
    assert any(s in message for s in DENIED), message
    FIGURES["privilege: escalations refused"] += 1


def test_grants_the_application_role_gives_itself_change_nothing(db: Database) -> None:
    """GRANT on a table it does not own only warns ("no privileges were granted"): check the
    privileges really stayed as the migration set them."""
    outcomes = Counter()
    for target in ("memex_app", "PUBLIC"):
        for grant in (
            f"GRANT ALL ON memories, memory_stores, users, tenants TO {target}",
            f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {target}",
            f"GRANT SELECT ON schema_migrations TO {target}",
        ):
            try:
                with db.app.begin() as conn:
                    conn.execute(text(grant))
                outcomes["warned"] += 1
            except DBAPIError as exc:
                assert "permission denied" in str(exc.orig), exc.orig
                outcomes["refused"] += 1
    with db.app.begin() as conn:
        privileges = {
            (table, privilege): conn.scalar(text("SELECT has_table_privilege('memex_app', :t, :p)"), {"t": table, "p": privilege})
            for table in ("memories", "tenants", "schema_migrations")
            for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
        }
    granted = {k for k, v in privileges.items() if v}
    assert granted == {("memories", p) for p in ("SELECT", "INSERT", "UPDATE", "DELETE")} | {("tenants", "SELECT")}
    FIGURES["privilege: self-grants without effect"] += sum(outcomes.values())


def test_a_view_or_temp_table_the_application_role_creates_shows_only_its_tenant(db: Database, svc, store, other) -> None:
    """A view runs with its owner's rights, and memex_app's are RLS-bound; the temp table copies
    what the tenant can see, nothing more. Temp objects vanish with the pooled connection's reset."""
    svc.add_memory(store.id, "mine")
    with db.tenant(svc.tenant_id) as conn:
        conn.execute(text("CREATE TEMP VIEW everything AS SELECT * FROM public.memories"))
        conn.execute(
            text(
                "CREATE TEMP VIEW barrier WITH (security_barrier = false) AS SELECT m.*, s.store_name"
                " FROM public.memories m JOIN public.memory_stores s ON s.tenant_id = m.tenant_id AND s.id = m.store_id"
            )
        )
        conn.execute(text("CREATE TEMP TABLE copy AS SELECT * FROM public.memories"))
        for relation in ("everything", "barrier", "copy"):
            assert set(conn.scalars(text(f"SELECT tenant_id FROM pg_temp.{relation}"))) == {svc.tenant_id}, relation
    with db.tenant(other[0].tenant_id) as conn:  # the other tenant, through the view: only its own rows
        conn.execute(text("CREATE TEMP VIEW everything AS SELECT * FROM public.memories"))
        assert set(conn.scalars(text("SELECT tenant_id FROM pg_temp.everything"))) == {other[0].tenant_id}
    FIGURES["privilege: views and temp tables tried"] += 4


def test_a_leaky_function_in_the_where_clause_sees_only_the_tenants_rows(db: Database, svc, store, other) -> None:
    """The classic RLS attack: a cheap function with a side effect placed in WHERE, hoping the
    planner runs it on rows before the policy filters them. Only LEAKPROOF functions (superuser
    only) may run before a policy's condition, so the function sees this tenant's rows alone."""
    svc.add_memory(store.id, "mine")
    for tenant_id in (svc.tenant_id, None):
        with db.app.connect() as conn, conn.begin():
            if tenant_id:
                conn.execute(text("SELECT set_config('app.current_tenant_id', :t, true)"), {"t": str(tenant_id)})
            conn.execute(text("CREATE TEMP TABLE loot (tenant_id text, value text)"))
            conn.execute(
                text(
                    "CREATE FUNCTION pg_temp.leak(uuid, text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS"
                    " $$BEGIN INSERT INTO pg_temp.loot VALUES ($1::text, $2); RETURN true; END$$"
                )
            )
            for query in (
                "SELECT count(*) FROM memories WHERE pg_temp.leak(tenant_id, content)",
                "SELECT count(*) FROM memories WHERE pg_temp.leak(tenant_id, content) AND id IS NOT NULL",
                "SELECT count(*) FROM memories m JOIN memory_stores s ON s.id = m.store_id"
                " WHERE pg_temp.leak(m.tenant_id, m.content) OR pg_temp.leak(s.tenant_id, s.store_name)",
                "SELECT count(*) FROM users WHERE pg_temp.leak(tenant_id, name)",
                "SELECT count(*) FROM tenants WHERE pg_temp.leak(id, name)",
            ):
                conn.execute(text(query))
            loot = conn.execute(text("SELECT tenant_id, value FROM pg_temp.loot")).all()
            if tenant_id is None:
                assert loot == []
            else:
                assert loot and {t for t, _ in loot} == {str(tenant_id)}
                assert "The launch code of the other tenant is 0000" not in {v for _, v in loot}
    FIGURES["privilege: leaky-function attacks tried"] += 6


def test_copy_to_stdout_returns_only_the_tenants_rows_and_copy_from_is_refused(db: Database, svc, store, other) -> None:
    svc.add_memory(store.id, "mine to copy")
    with db.app.connect() as conn, conn.begin():
        conn.execute(text("SELECT set_config('app.current_tenant_id', :t, true)"), {"t": str(svc.tenant_id)})
        raw = conn.connection.dbapi_connection
        with raw.cursor() as cur:
            with cur.copy("COPY memories (tenant_id, content) TO STDOUT") as copy:
                rows = b"".join(bytes(block) for block in copy).decode().splitlines()
    assert rows and all(line.startswith(str(svc.tenant_id)) for line in rows)
    assert not any("launch code" in line for line in rows)
    with pytest.raises(Exception, match="COPY FROM not supported with row-level security"):
        with db.app.connect() as conn, conn.begin():
            conn.execute(text("SELECT set_config('app.current_tenant_id', :t, true)"), {"t": str(svc.tenant_id)})
            with conn.connection.dbapi_connection.cursor() as cur:
                with cur.copy("COPY memories (tenant_id, store_id, content) FROM STDIN") as copy:
                    copy.write_row((other[0].tenant_id, other[1].id, "planted"))
    assert other[0].get_store(other[1].id).total_memories == 1
    FIGURES["privilege: COPY attempts"] += 2


def test_the_application_role_has_no_attribute_membership_or_table_that_would_bypass_rls(db: Database, superuser: Engine) -> None:
    """What the roles themselves are: memex_app owns nothing, has no member roles, no attributes."""
    with superuser.connect() as conn:
        row = conn.execute(
            text(
                "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolreplication, rolinherit FROM pg_roles"
                " WHERE rolname = 'memex_app'"
            )
        ).one()
        assert tuple(row) == (False, False, False, False, False, False)
        assert (
            conn.scalar(text("SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = 'memex_app'"))
            == 0
        )
        assert (
            conn.scalar(
                text(
                    "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner"
                    " WHERE r.rolname = 'memex_app' AND c.relpersistence <> 't'"
                )
            )
            == 0
        )
        owner_tables = set(
            conn.scalars(
                text(
                    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relrowsecurity AND c.relforcerowsecurity"
                )
            )
        )
        assert {"tenants", "users", "memory_stores", "memories", "memory_relationships"} <= owner_tables
        no_rls = set(
            conn.scalars(
                text(
                    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = 'public' AND c.relkind = 'r' AND NOT (c.relrowsecurity AND c.relforcerowsecurity)"
                    " AND has_table_privilege('memex_app', c.oid, 'SELECT')"
                )
            )
        )
        assert no_rls == set(), f"tables memex_app can read without forced RLS: {no_rls}"


# 4. Where the owner connection is used ------------------------------------------------------------

# The owner connection bypasses nothing (RLS is forced on it too) but it administers tenants and
# runs migrations. It is reached only through these functions, called only from these files:
OWNER_FUNCTIONS = (
    "create_key",
    "list_keys",
    "revoke_key",
    "create_tenant",
    "list_tenants",
    "find_tenant",
    "rename_tenant",
    "delete_tenant",
    "migrate",
    "load_demo",
    "database_is_empty",
    "add_analyst",
    "set_analyst",
    "remove_analyst",
    "list_analysts",
)
OWNER_CONNECTION_FILES = {"core/db.py", "core/admin.py", "core/migrate.py"}
OWNER_CALLER_FILES = {
    "core/admin.py",
    "core/db.py",
    "core/migrate.py",
    "core/demo.py",
    "core/cli.py",
    "core/explorer/state.py",
    "pages/admin.py",
    "core/explorer/keys.py",
    "core/explorer/startup.py",
    "core/bench/harness.py",
}


def python_files() -> list[Path]:
    return sorted(p for base in ("core", "pages") for p in (ROOT / base).rglob("*.py")) + [ROOT / "app.py"]


def test_the_owner_connection_is_used_only_where_docs_reliability_lists() -> None:
    uses_connection, calls_owner_functions = set(), set()
    call = re.compile(r"\b(?:admin\.)?(" + "|".join(OWNER_FUNCTIONS) + r")\(")
    for path in python_files():
        source, name = path.read_text(encoding="utf-8"), str(path.relative_to(ROOT))
        if re.search(r"\.owner\(|\bdb\.admin\b|\.admin\.(?:begin|connect)\(", source):
            uses_connection.add(name)
        if call.search(source):
            calls_owner_functions.add(name)
    assert uses_connection <= OWNER_CONNECTION_FILES, uses_connection - OWNER_CONNECTION_FILES
    assert calls_owner_functions <= OWNER_CALLER_FILES, calls_owner_functions - OWNER_CALLER_FILES
    doc = (ROOT / "docs" / "RELIABILITY.md").read_text(encoding="utf-8")
    for name in sorted(OWNER_CONNECTION_FILES | OWNER_CALLER_FILES):
        assert name in doc, f"docs/RELIABILITY.md does not list {name} among the owner connection's uses"


def test_a_tenant_id_resolves_without_the_owner_connection(db: Database, tenant) -> None:
    """get_tenant works as memex_app (it sees its own tenant row), so a deployment without
    MEMEX_ADMIN_DATABASE_URL can still serve tenants given by UUID."""
    from core.admin import find_tenant

    app_only = Database(db.app.url, None)
    try:
        assert find_tenant(app_only, str(tenant.id)).name == tenant.name
        with pytest.raises(Exception, match="MEMEX_ADMIN_DATABASE_URL"):
            find_tenant(app_only, tenant.name)
        with pytest.raises(NotFound):
            find_tenant(app_only, str(uuid4()))
    finally:
        app_only.dispose()
