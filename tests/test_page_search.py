"""The Search page (retrieval debugger) through AppTest: threshold, near misses, access recording,
why-not, evaluation cases, and tenant isolation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core import NewMemory
from tests.apptest import open_page, texts


def open_search(tenant, user, **params):
    """The page in vector mode unless another is named (most of these cases are about the threshold)."""
    at = open_page("search", tenant=tenant.name, user=user.name, store="default", **{"mode": "vector", **params})
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def table(at, key: str) -> list[str]:
    return [str(v) for v in next(df for df in at.dataframe if df.key == key).value["content"]]


def planted(svc, store):
    past = datetime.now(UTC) - timedelta(hours=1)
    return {
        m.content: m
        for m in svc.add_memories(
            store.id,
            [
                NewMemory("alpha beta gamma"),  # similarity 1 to the query
                NewMemory("alpha beta gamma delta"),  # about 0.87
                NewMemory("alpha beta **bold** <b>x</b>"),  # about 0.41
                NewMemory("quarterly tax report"),  # about 0
                NewMemory("alpha beta gamma, expired", expires_at=past),
            ],
        )
    }


def test_moving_the_threshold_changes_results_and_near_misses(svc, store, user, tenant) -> None:
    planted(svc, store)
    at = open_search(tenant, user, q="alpha beta gamma", threshold="0.3")
    assert table(at, "results_table") == ["alpha beta gamma", "alpha beta gamma delta", "alpha beta **bold** <b>x</b>"]
    assert table(at, "misses_table") == ["quarterly tax report"]
    at.slider(key="threshold").set_value(0.8).run()
    assert table(at, "results_table") == ["alpha beta gamma", "alpha beta gamma delta"]
    assert table(at, "misses_table") == ["alpha beta **bold** <b>x</b>", "quarterly tax report"]
    reasons = next(df for df in at.dataframe if df.key == "misses_table").value["reason"]
    assert reasons[0].startswith("similarity 0.41 ") and reasons[0].endswith("is below the threshold 0.80")
    assert at.query_params["threshold"] == "0.8" and at.query_params["q"] == "alpha beta gamma"
    at.slider(key="limit").set_value(1).run()
    assert table(at, "results_table") == ["alpha beta gamma"]
    assert next(df for df in at.dataframe if df.key == "misses_table").value["reason"][0] == "ranked 2nd; the limit is 1"


def test_record_access_is_off_by_default_and_counts_once_when_on(svc, store, user, tenant) -> None:
    memory = planted(svc, store)["alpha beta gamma"]
    at = open_search(tenant, user, q="alpha beta gamma")
    at.slider(key="threshold").set_value(0.5).run()
    assert svc.get_memory(memory.id).access_count == 0
    at.toggle(key="record").set_value(True).run()
    assert not at.exception and not at.error
    assert svc.get_memory(memory.id).access_count == 1 and svc.get_memory(memory.id).last_accessed is not None
    at.slider(key="limit").set_value(4).run()  # a new search counts again; a mere rerun does not
    at.run()
    assert svc.get_memory(memory.id).access_count == 2


def test_why_not_shows_the_reason_and_the_link_reproduces_it(svc, store, user, tenant) -> None:
    memories = planted(svc, store)
    far = memories["quarterly tax report"]
    at = open_search(tenant, user, q="alpha beta gamma", threshold="0.4", limit="2")
    at.selectbox(key="whynot").select(str(far.id)).run()
    assert not at.exception
    assert at.query_params["memory"] == str(far.id)
    assert {m.label: m.value for m in at.metric}["Status"] == "below threshold"
    assert at.warning[0].value.startswith("Similarity ") and at.warning[0].value.endswith("is below the threshold 0.40.")
    assert "quarterly tax report" in [t.value for t in at.text]  # the memory itself, as plain text
    bold = memories["alpha beta **bold** <b>x</b>"]
    at = open_search(tenant, user, q="alpha beta gamma", threshold="0.4", limit="2", memory=str(bold.id))
    assert at.selectbox(key="whynot").value == str(bold.id)
    assert at.warning[0].value == "Ranked 3rd; the limit is 2."
    assert "alpha beta **bold** <b>x</b>" in [t.value for t in at.text]


def test_selecting_a_near_miss_opens_it(svc, store, user, tenant) -> None:
    planted(svc, store)
    at = open_search(tenant, user, q="alpha beta gamma", threshold="0.6")
    at.session_state["misses_table"] = {"selection": {"rows": [0], "columns": []}}
    at.run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Status"] == "below threshold"
    assert "alpha beta **bold** <b>x</b>" in [t.value for t in at.text]


def test_marked_memories_are_added_to_an_evaluation_set(svc, store, user, tenant) -> None:
    memories = planted(svc, store)
    at = open_search(tenant, user, q="alpha beta gamma", threshold="0.3")
    wanted = str(memories["alpha beta gamma delta"].id)
    at.multiselect(key="eval_expected").select(wanted).run()
    at.text_input(key="eval_name").input("smoke").run()
    next(b for b in at.button if b.label == "Add to evaluation set").click().run()
    assert not at.exception and not at.error
    (saved,) = svc.list_eval_sets(store.id)
    assert saved.name == "smoke" and [(c.query, [str(i) for i in c.expected_ids]) for c in saved.cases] == [("alpha beta gamma", [wanted])]


def test_another_tenants_memory_never_appears(svc, store, user, tenant, other) -> None:
    svc.add_memory(store.id, "The launch code of our tenant is 1234")
    at = open_search(tenant, user, q="launch code tenant", threshold="0")
    shown = str([df.value.to_dict() for df in at.dataframe]) + str([s.options for s in at.selectbox]) + texts(at)
    assert "1234" in shown and "0000" not in shown


def test_the_link_sets_the_mode_and_filters_and_comparison_mark_the_overlap(svc, store, user, tenant) -> None:
    svc.add_memories(
        store.id,
        [
            NewMemory("alpha beta gamma", memory_type="fact"),
            NewMemory("alpha beta gamma delta", memory_type="event"),
            NewMemory("quarterly tax report", memory_type="fact"),
        ],
    )
    at = open_search(tenant, user, q="alpha beta gamma", mode="text", threshold="0.9")
    assert at.selectbox(key="mode").value == "text"
    assert sorted(table(at, "results_table")) == ["alpha beta gamma", "alpha beta gamma delta"]  # no threshold on text
    at.selectbox(key="mode_b").select("vector").run()
    a, b = [df.value for df in at.dataframe if "in the other list" in df.value.columns]
    assert list(b["content"]) == ["alpha beta gamma"]
    assert dict(zip(a["content"], a["in the other list"])) == {"alpha beta gamma": "1st", "alpha beta gamma delta": "not returned"}
    assert "text rank" in a.columns and "similarity" in b.columns  # each list with the score its mode ranks by
    at.multiselect(key="types").select("event").run()
    assert table(at, "results_table") == ["alpha beta gamma delta"]
    assert at.query_params["mode"] == "text"


def test_an_empty_store_says_what_to_do(svc, store, user, tenant) -> None:
    at = open_search(tenant, user, q="anything")
    assert "This store holds no memories yet" in at.info[0].value


def test_without_a_query_the_page_invites_one(svc, store, user, tenant) -> None:
    svc.add_memory(store.id, "alpha")
    at = open_search(tenant, user)
    assert "Type a query" in at.info[0].value and not at.dataframe


def test_superseded_results_are_marked_and_the_option_moves_them_down(svc, store, user, tenant) -> None:
    old, new = svc.add_memories(store.id, [NewMemory("alpha beta gamma delta"), NewMemory("alpha beta yankee zulu")])
    svc.add_relationship(new.id, old.id, "updates", 0.9)
    at = open_search(tenant, user, q="alpha beta gamma delta", threshold="0.1")
    assert table(at, "results_table") == ["alpha beta gamma delta", "alpha beta yankee zulu"]
    marks = next(df for df in at.dataframe if df.key == "results_table").value["superseded"].tolist()
    assert marks[0].endswith(f"memory={new.id}#updated%20%E2%86%97") and not isinstance(marks[1], str)
    assert "1 result is superseded" in at.warning[0].value
    at.selectbox(key="superseded").select("demote").run()
    assert table(at, "results_table") == ["alpha beta yankee zulu", "alpha beta gamma delta"]
    assert at.query_params["superseded"] == "demote"
    at.selectbox(key="superseded").select("skip").run()
    assert table(at, "results_table") == ["alpha beta yankee zulu"]
    assert table(at, "misses_table") == ["alpha beta gamma delta"]
    assert next(df for df in at.dataframe if df.key == "misses_table").value["reason"][0] == (
        "a newer memory updates it, and this search leaves superseded memories out"
    )


def test_vector_mode_shows_similarity_once_and_other_modes_their_own_score(svc, store, user, tenant) -> None:
    planted(svc, store)
    at = open_search(tenant, user, q="alpha beta gamma", threshold="0.3")
    results = next(df for df in at.dataframe if df.key == "results_table").value
    assert "similarity" in results.columns and "score" not in results.columns
    at.selectbox(key="mode").select("weighted").run()
    misses = next(df for df in at.dataframe if df.key == "misses_table").value
    ranked = misses["weighted score"].dropna().tolist()
    assert ranked == sorted(ranked, reverse=True)  # near misses in the order of the score they show


def test_the_page_opens_in_hybrid_mode_and_shows_what_each_score_is_made_of(svc, store, user, tenant) -> None:
    start = datetime(2023, 5, 7, 13, 0, tzinfo=UTC)
    svc.add_memories(
        store.id,
        [
            NewMemory("Mel: How was the pottery class?", source="s1", created_at=start),
            NewMemory("Caroline: I made a bowl for my mom.", source="s1", created_at=start + timedelta(seconds=20)),
            NewMemory("quarterly tax report", source="s2", created_at=start + timedelta(days=3)),
        ],
    )
    at = open_page("search", tenant=tenant.name, user=user.name, store="default", q="pottery class", threshold="0")
    assert not at.exception and at.selectbox(key="mode").value == "hybrid"
    results = next(df for df in at.dataframe if df.key == "results_table").value.set_index("content")
    # the stems it holds with their BM25 shares (idf ln(1 + 2.5 / 1.5), tf 1), and which side found it
    assert (
        results.loc["Mel: How was the pottery class?", "parts"] == "terms class 0.98, potteri 0.98 · session +0.41 · found by vector+text"
    )
    answer = results.loc["Caroline: I made a bowl for my mom.", "parts"]  # lifted by the turn before it
    assert answer.startswith("lift +") and answer.endswith("found by vector")


def test_the_model_of_the_store_in_view_is_loaded_after_the_first_page(store, user, tenant, monkeypatch) -> None:
    """Its first search does not wait for the model to load: the explorer loads it in the
    background a few seconds after a page of the store has run (the Overview here), and at once
    when the Search page opens, while the query is typed."""
    import threading

    from core.embeddings import use_embedder
    from core.embeddings.hashing import HashingEmbedder
    from core.explorer import startup

    loaded = threading.Event()

    class Loading(HashingEmbedder):
        def warm(self) -> None:
            loaded.set()

    use_embedder(store.embedding_model, lambda dim: Loading())
    try:
        for page, after in (("overview", 0.5), ("search", 600)):  # the Search page does not wait
            loaded.clear()
            monkeypatch.setattr(startup, "_warming", {})
            monkeypatch.setattr(startup, "AFTER_PAGE_S", after)
            at = open_page(page, tenant=tenant.name, user=user.name, store=store.store_name)
            assert not at.exception
            assert loaded.wait(60), page
    finally:
        use_embedder(store.embedding_model, None)
