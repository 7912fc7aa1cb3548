"""The Retrievals page and the memory detail's history through AppTest: the log as a table, its
filters, an entry as it was, a replay explaining what changed, marking the expected answer, and
Restore from the history timeline."""

from __future__ import annotations

from core import NewMemory
from core.retrieval import ARCHIVED, CHANGED
from tests.apptest import open_page, texts


def open_retrievals(tenant, user, **params):
    at = open_page("retrievals", tenant=tenant.name, user=user.name, store="default", **params)
    assert not at.exception, at.exception
    return at


def log_table(at) -> list[str]:
    return [str(q) for q in next(df for df in at.dataframe if df.key == "log_table").value["query"]]


def searched(svc, store):
    """Three memories and three searches: two answered, one empty."""
    tea, coffee, juice = svc.add_memories(store.id, [NewMemory("tea green tea"), NewMemory("coffee black coffee"), NewMemory("juice")])
    svc.search_memories(store.id, "green tea", limit=3, min_similarity=0.2)
    svc.search_memories(store.id, "black coffee", limit=3, min_similarity=0.2)
    svc.search_memories(store.id, "zebra crossing", limit=3, min_similarity=0.9)
    return tea, coffee, juice


def test_the_log_is_a_table_with_filters(svc, store, user, tenant, other) -> None:
    searched(svc, store)
    other[0].search_memories(other[1].id, "launch code", min_similarity=0.1)  # another tenant's search
    at = open_retrievals(tenant, user)
    assert log_table(at) == ["zebra crossing", "black coffee", "green tea"]  # newest first
    assert "launch code" not in log_table(at)
    at.text_input(key="contains").input("coffee").run()
    assert log_table(at) == ["black coffee"]
    at.text_input(key="contains").input("").run()
    at.toggle(key="empty").set_value(True).run()
    assert log_table(at) == ["zebra crossing"]
    at.toggle(key="empty").set_value(False).run()
    at.selectbox(key="caller").set_value("python").run()
    assert len(log_table(at)) == 3
    assert "Searches per day" in str([c.proto.spec for c in at.get("plotly_chart")])
    assert not at.exception and not at.error


def test_an_entry_shows_its_answer_as_it_was_and_a_replay_explains_the_differences(svc, store, user, tenant) -> None:
    tea, coffee, _ = searched(svc, store)
    entry = next(e for e in svc.retrievals(store.id).entries if e.query == "green tea")
    svc.update_memory(tea.id, content="tea green tea with mint")
    at = open_retrievals(tenant, user)
    at.session_state["log_table"] = {"selection": {"rows": [2], "columns": []}}
    at.run()
    assert at.query_params["entry"] == str(entry.id)
    assert "Query: green tea" in texts(at)
    answer = at.dataframe[0].value
    assert answer["content"].iloc[0] == "tea green tea"  # as it was then: only the id is logged, the text is today's
    assert answer["then"].iloc[0] == "returned"
    svc.set_archived([coffee.id])
    at.toggle(key=f"replay_{entry.id}").set_value(True).run()
    assert not at.exception and not at.error
    differences = next(df.value for df in at.dataframe if "why" in df.value.columns)
    assert CHANGED in set(differences["what"])
    if str(coffee.id) in {r["id"] for r in entry.results}:
        assert ARCHIVED in set(differences["what"])
    assert "content: tea green tea {+with mint+}" in texts(at)


def test_marking_what_it_should_have_returned_adds_an_eval_case(svc, store, user, tenant) -> None:
    _, _, juice = searched(svc, store)
    entry = next(e for e in svc.retrievals(store.id).entries if e.query == "zebra crossing")
    at = open_retrievals(tenant, user, entry=str(entry.id))
    assert "Query: zebra crossing" in texts(at)
    key = f"mark_{entry.id}"
    at.multiselect(key=f"{key}_expected").select(str(juice.id)).run()
    at.text_input(key=f"{key}_name").input("production misses").run()
    next(b for b in at.button if b.label == "Add to evaluation set").click().run()
    assert not at.exception and not at.error
    (saved,) = svc.list_eval_sets(store.id)
    assert saved.name == "production misses"
    assert [(c.query, list(c.expected_ids)) for c in saved.cases] == [("zebra crossing", [juice.id])]


def test_a_stale_entry_link_says_so(svc, store, user, tenant) -> None:
    searched(svc, store)
    at = open_retrievals(tenant, user, entry="00000000-0000-0000-0000-000000000000")
    assert "not found" in at.error[0].value
    assert len(log_table(at)) == 3


def test_memory_detail_shows_history_with_diffs_and_restores_a_version(svc, store, user, tenant) -> None:
    memory = svc.add_memory(store.id, "Lives in Lyon")
    svc.update_memory(memory.id, content="Lives in Paris")
    svc.search_memories(store.id, "Paris", min_similarity=0.1)
    at = open_page("memories", tenant=tenant.name, user=user.name, store="default", memory=str(memory.id))
    assert not at.exception, at.exception
    shown = texts(at)
    assert "v2 · edited" in shown and "content: Lives in [-Lyon-]{+Paris+}" in shown
    assert "v1 · created" in shown
    link = next(p for p in at.get("page_link") if "Retrieved 1 time" in p.proto.label)
    assert "Paris" in link.proto.label and "by python" in link.proto.label
    next(b for b in at.button if b.label == "Restore version 1").click().run()
    next(b for b in at.button if b.label == "Restore version 1" and b.key == "confirm_yes").click().run()
    assert not at.exception, at.exception
    assert svc.get_memory(memory.id).content == "Lives in Lyon"
    assert [e.event for e in svc.get_memory_history(memory.id)][-1] == "restored"


def test_a_store_without_searches_says_where_the_log_comes_from(svc, store, user, tenant) -> None:
    svc.add_memory(store.id, "tea green tea")
    at = open_retrievals(tenant, user)
    assert "No logged search matches these filters" in at.info[0].value
    assert not at.error
