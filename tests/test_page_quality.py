"""The Quality page through AppTest: it finds planted noise, and its curation reaches the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from core import NewMemory
from tests.apptest import open_page

NOW = datetime.now(UTC)


def vector(*hot: tuple[int, float]) -> np.ndarray:
    v = np.zeros(384, dtype=np.float32)
    for i, value in hot:
        v[i] = value
    return v


@pytest.fixture
def planted(svc, store):
    """A near-duplicate pair (cosine 0.995), an expired memory, one expiring in two days, and one relationship."""
    memories = svc.add_memories(
        store.id,
        [
            NewMemory("Prefers aisle seats", importance=0.3, embedding=vector((0, 1.0)), metadata={"a": 1}),
            NewMemory("<b>Likes aisle</b> seats", importance=0.6, embedding=vector((0, 1.0), (1, 0.1)), metadata={"b": 2}),
            NewMemory("Owns a cat", embedding=vector((2, 1.0)), expires_at=NOW - timedelta(days=1)),
            NewMemory("**bold** # heading", embedding=vector((3, 1.0)), expires_at=NOW + timedelta(days=2)),
        ],
    )
    svc.add_relationship(memories[2].id, memories[3].id, "related")
    svc.add_relationship(memories[0].id, memories[2].id, "mentions", 0.4)
    return memories


def open_quality(tenant, user, **params):
    at = open_page("quality", tenant=tenant.name, user=user.name, store="default", **params)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def tables(at) -> dict[str, list[str]]:
    return {df.key.rsplit("_", 1)[0]: [str(v) for v in df.value["content"]] for df in at.dataframe if df.key}


def select(at, name: str, rows: list[int]):
    key = next(df.key for df in at.dataframe if df.key and df.key.rsplit("_", 1)[0] == name)
    at.session_state[key] = {"selection": {"rows": rows, "columns": []}}
    return at.run()


def test_the_lists_find_the_planted_noise_and_show_content_literally(svc, store, user, tenant, planted) -> None:
    at = open_quality(tenant, user)
    found = tables(at)
    assert found["dup1"] == ["<b>Likes aisle</b> seats", "Prefers aisle seats"]  # most important first
    assert "dup2" not in found
    assert found["soon"] == ["**bold** # heading"]
    assert found["gone"] == ["Owns a cat"]
    assert found["orphans"] == ["<b>Likes aisle</b> seats"]
    assert sorted(found["stale"]) == sorted(m.content for m in planted)  # none was ever retrieved
    shown = " ".join([m.value for m in at.markdown] + [c.value for c in at.caption])
    assert "<b>" not in shown and "**bold**" not in shown
    at = open_quality(tenant, user, similarity="1.0")
    assert "dup1" not in tables(at)


def test_archiving_a_duplicate_from_the_page_reaches_the_database(svc, store, user, tenant, planted) -> None:
    at = open_quality(tenant, user)
    at = select(at, "dup1", [0])
    at.button(key="dup1_Archive").click().run()
    assert [m.archived for m in svc.get_memories([planted[1].id, planted[0].id])] == [True, False]
    assert [t.value for t in at.toast] == ["Archived 1 memory"]
    assert "dup1" not in tables(at)  # archived memories leave the comparison by default
    at.toggle(key="dup_archived").set_value(True).run()
    assert tables(at)["dup1"] == ["<b>Likes aisle</b> seats", "Prefers aisle seats"]
    assert list(at.dataframe[0].value["status"]) == ["archived", "live"]  # the marker
    at = select(at, "dup1", [0])
    at.button(key="dup1_Unarchive").click().run()
    assert not svc.get_memory(planted[1].id).archived


def test_importance_up_and_down_in_one_click(svc, store, user, tenant, planted) -> None:
    at = open_quality(tenant, user)
    at = select(at, "soon", [0])
    at.button(key="soon_Raise importance").click().run()
    assert svc.get_memory(planted[3].id).importance == 0.6
    at = select(at, "gone", [0])
    at.button(key="gone_Lower importance").click().run()
    assert svc.get_memory(planted[2].id).importance == 0.4


def test_merge_asks_first_then_keeps_one_and_moves_the_relationships(svc, store, user, tenant, planted) -> None:
    keep, merged_away = planted[1], planted[0]
    at = open_quality(tenant, user)
    at = select(at, "dup1", [0])
    at.text_area(key=next(w.key for w in at.text_area if w.key.startswith("dup1_content"))).set_value("Aisle seats, always")
    at.button(key="dup1_merge").click().run()
    assert len(svc.get_memories([keep.id, merged_away.id])) == 2  # nothing yet
    assert at.button(key="confirm_yes").label == "Merge 2 memories into one"
    at.button(key="confirm_yes").click().run()
    assert not at.exception and not at.error
    assert svc.get_memories([merged_away.id]) == []
    kept = svc.get_memory(keep.id)
    assert (kept.content, kept.importance, kept.metadata) == ("Aisle seats, always", 0.6, {"a": 1, "b": 2})
    edges = {(r.source_memory_id, r.target_memory_id, r.relationship_type) for r in svc.list_relationships(store.id)}
    assert (keep.id, planted[2].id, "mentions") in edges
    assert "dup1" not in tables(at)


def test_keep_one_and_delete_selected_are_confirmed(svc, store, user, tenant, planted) -> None:
    at = open_quality(tenant, user)
    at = select(at, "dup1", [1])
    at.button(key="dup1_keep").click().run()
    at.button(key="confirm_no").click().run()
    assert svc.list_memories(store.id, include_expired=True).total == 4
    at = select(at, "dup1", [1])
    at.button(key="dup1_keep").click().run()
    at.button(key="confirm_yes").click().run()
    assert svc.get_memories([planted[0].id, planted[1].id]) == [svc.get_memory(planted[0].id)]


def test_purge_expired_is_confirmed(svc, store, user, tenant, planted) -> None:
    at = open_quality(tenant, user)
    next(b for b in at.button if b.label == "Purge expired memories (1)").click().run()
    assert svc.list_memories(store.id, include_expired=True).total == 4
    at.button(key="confirm_yes").click().run()
    assert svc.get_memories([planted[2].id]) == []


def test_empty_store_says_what_to_do(user, tenant, store) -> None:
    at = open_page("quality", tenant=tenant.name, user=user.name, store="default")
    assert "holds no memories yet" in at.info[0].value


def test_near_duplicates_are_cached_per_tenant_not_per_store_id(superuser, db, svc, store, user, tenant) -> None:
    """Two tenants may hold stores with the same id (ids are unique per tenant): the duplicate
    groups of one must never be served to the other from the page's cache."""
    from sqlalchemy import text

    from core import MemoryService
    from core.admin import create_tenant
    from tests.conftest import unique

    svc.add_memories(
        store.id,
        [
            NewMemory("Mine: prefers aisle seats", embedding=vector((0, 1.0))),
            NewMemory("Mine: likes aisle seats", embedding=vector((0, 1.0), (1, 0.05))),
        ],
    )
    twin = create_tenant(db, unique("twin"))
    twin_svc = MemoryService(db, twin.id)
    twin_user = twin_svc.create_user(user.name)
    with superuser.begin() as conn:  # the same store id in another tenant
        conn.execute(
            text(
                "INSERT INTO memory_stores (tenant_id, id, user_id, store_name, embedding_model, embedding_dim)"
                " VALUES (:t, :id, :u, 'default', 'test-hashing', 384)"
            ),
            {"t": twin.id, "id": store.id, "u": twin_user.id},
        )
    twin_svc.add_memories(
        store.id,
        [
            NewMemory("Theirs: owns a red bicycle", embedding=vector((5, 1.0))),
            NewMemory("Theirs: has a red bicycle", embedding=vector((5, 1.0), (6, 0.05))),
        ],
    )
    mine = open_page("quality", tenant=tenant.name, user=user.name, store="default")
    theirs = open_page("quality", tenant=twin.name, user=twin_user.name, store="default")
    shown_mine = "\n".join(str(d.value) for d in mine.dataframe)
    shown_theirs = "\n".join(str(d.value) for d in theirs.dataframe)
    assert "Mine: prefers aisle seats" in shown_mine and "Theirs" not in shown_mine
    assert "Theirs: owns a red bicycle" in shown_theirs and "Mine" not in shown_theirs


def test_superseded_pairs_are_listed_and_the_older_archived_in_one_click(svc, store, user, tenant, planted) -> None:
    older, newer = planted[0], planted[1]
    svc.add_relationship(newer.id, older.id, "updates", 0.9)
    at = open_quality(tenant, user)
    pairs = next(df.value for df in at.dataframe if df.key and df.key.startswith("superseded_"))
    assert pairs[["older memory", "relationship", "newer memory"]].values.tolist() == [
        ["Prefers aisle seats", "updated by", "<b>Likes aisle</b> seats"]
    ]
    at = select(at, "superseded", [0])
    next(b for b in at.button if b.key == "superseded_archive").click().run()
    assert not at.exception and not at.error
    assert svc.get_memory(older.id).archived and not svc.get_memory(newer.id).archived
    assert [t.value for t in at.toast] == ["Archived 1 older memory"]
    assert "every such older memory is archived already" in " ".join(s.value for s in at.success)


def test_no_near_duplicate_at_the_threshold_suggests_lowering_it(svc, store, user, tenant, planted) -> None:
    at = open_quality(tenant, user, similarity="1.0")
    assert "0 groups holding 0 memories" in " ".join(c.value for c in at.caption)
    assert "Lower the minimum similarity" in at.info[0].value
