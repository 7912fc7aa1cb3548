"""The Memories page through AppTest: filters, the detail view, and every write reaching the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core import NewMemory
from tests.apptest import open_page, texts


def table(at) -> list[str]:
    return [str(v) for v in at.dataframe[0].value["content"]]


def select(at, rows: list[int]):
    key = next(df.key for df in at.dataframe if df.key and df.key.startswith("memories_table"))
    at.session_state[key] = {"selection": {"rows": rows, "columns": []}}
    return at.run()


def widget(elements, prefix: str):
    return next(w for w in elements if w.key and w.key.startswith(prefix))


def open_memories(tenant, user, **params):
    at = open_page("memories", tenant=tenant.name, user=user.name, store="default", **params)
    assert not at.exception, at.exception
    return at


def test_filters_change_the_table(svc, store, user, tenant, other) -> None:
    past = datetime.now(UTC) - timedelta(days=1)
    svc.add_memories(
        store.id,
        [
            NewMemory("Likes green tea", memory_type="preference", source="chat", importance=0.9),
            NewMemory("Lives in Lyon", memory_type="fact", metadata={"city": "Lyon"}, importance=0.2),
            NewMemory("Old address", memory_type="fact", expires_at=past),
            NewMemory("Shelved note", memory_type="note", archived=True),
        ],
    )
    at = open_memories(tenant, user)
    assert sorted(table(at)) == ["Likes green tea", "Lives in Lyon", "Shelved note"]
    assert "launch code" not in str(at.dataframe[0].value)
    at.multiselect(key="type").select("fact").run()
    assert table(at) == ["Lives in Lyon"]
    at.toggle(key="expired").set_value(True).run()
    assert sorted(table(at)) == ["Lives in Lyon", "Old address"]
    at.multiselect(key="type").set_value([]).run()
    at.text_input(key="q").set_value("lyon").run()  # content or metadata, any case
    assert table(at) == ["Lives in Lyon"]
    at.text_input(key="q").set_value("").run()
    at.segmented_control(key="archived").set_value("archived").run()
    assert table(at) == ["Shelved note"]
    at.segmented_control(key="archived").set_value("all").run()
    at.slider(key="importance").set_value((0.5, 1.0)).run()
    assert sorted(table(at)) == ["Likes green tea", "Old address", "Shelved note"]
    at.multiselect(key="source").select("chat").run()
    assert table(at) == ["Likes green tea"]


def test_url_filters_reproduce_the_view(svc, store, user, tenant) -> None:
    svc.add_memories(store.id, [NewMemory("Likes green tea", memory_type="preference"), NewMemory("Lives in Lyon")])
    at = open_memories(tenant, user, type="preference")
    assert table(at) == ["Likes green tea"]


def test_add_memory_reaches_the_database(svc, store, user, tenant) -> None:
    svc.add_memory(store.id, "Sees a dentist twice a year", memory_type="health")
    at = open_memories(tenant, user)  # (AppTest cannot type a new option into a selectbox: pick an existing type)
    widget(at.text_area, "memories_add").set_value("Allergic to peanuts")
    widget(at.selectbox, "memories_add").set_value("health")
    widget(at.text_input, "memories_add").set_value("intake form")
    widget(at.slider, "memories_add").set_value(0.8)
    [w for w in at.text_area if w.key.startswith("memories_add")][1].set_value('{"severity": "high"}')
    at.button(key="FormSubmitter:memories_add_0-Add memory").click().run()
    assert not at.exception and not at.error
    memory = svc.list_memories(store.id, text_contains="peanuts").items[0]
    assert (memory.content, memory.memory_type, memory.source, memory.importance, memory.metadata) == (
        "Allergic to peanuts",
        "health",
        "intake form",
        0.8,
        {"severity": "high"},
    )
    assert at.query_params["memory"] == str(memory.id)  # the new memory opens
    assert [t.value for t in at.toast] == ["Memory added and embedded"]
    assert sorted(table(at)) == ["Allergic to peanuts", "Sees a dentist twice a year"]


def test_bad_metadata_is_refused_with_a_clear_message(svc, store, user, tenant) -> None:
    at = open_memories(tenant, user)
    assert "holds no memories yet" in str([i.value for i in at.info])
    widget(at.text_area, "memories_add").set_value("Something")
    [w for w in at.text_area if w.key.startswith("memories_add")][1].set_value("{not json")
    at.button(key="FormSubmitter:memories_add_0-Add memory").click().run()
    assert "Metadata must be a JSON object" in at.error[0].value
    at.text_area(key="memories_add_0_metadata").set_value("[1, 2]")
    at.button(key="FormSubmitter:memories_add_0-Add memory").click().run()
    assert "Metadata must be a JSON object" in at.error[0].value
    assert svc.list_memories(store.id).total == 0


def test_edit_the_selected_memory(svc, store, user, tenant) -> None:
    memory = svc.add_memory(store.id, "Lives in Lyon", importance=0.3)
    _, before = svc.store_embeddings(store.id)
    at = open_memories(tenant, user)
    at = select(at, [0])
    assert at.query_params["memory"] == str(memory.id)
    prefix = f"memories_edit_{memory.id}"
    assert widget(at.text_area, prefix).value == "Lives in Lyon"
    widget(at.text_area, prefix).set_value("Lives in Marseille")
    widget(at.slider, prefix).set_value(0.75)
    at.button(key=f"FormSubmitter:{prefix}_0-Save changes").click().run()
    assert not at.exception and not at.error
    saved = svc.get_memory(memory.id)
    assert (saved.content, saved.importance) == ("Lives in Marseille", 0.75)
    _, after = svc.store_embeddings(store.id)
    assert not (before == after).all()  # the new content was re-embedded
    assert [t.value for t in at.toast] == ["Memory saved and re-embedded"]


def test_the_history_of_a_memory_brought_in_with_an_older_date_says_so(svc, store, user, tenant) -> None:
    """An imported memory dated months back: its history begins today (when it was written here),
    and the timeline says the memory's own date is older and why."""
    dated = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
    [old] = svc.add_memories(store.id, [NewMemory("Moved to Lyon", created_at=dated)])
    svc.add_memory(store.id, "Written just now")
    at = open_memories(tenant, user, memory=str(old.id))
    assert not at.exception
    assert "The memory itself is dated 14 Mar 2026 09:30 UTC: it was brought in with that date (an import, the demo)." in texts(at)
    fresh = svc.list_memories(store.id, text_contains="just now").items[0]
    at = open_memories(tenant, user, memory=str(fresh.id))
    assert "brought in with that date" not in texts(at)


def test_delete_asks_first_and_then_reaches_the_database(svc, store, user, tenant) -> None:
    memory = svc.add_memory(store.id, "Temporary")
    at = open_memories(tenant, user, memory=str(memory.id))
    next(b for b in at.button if b.label == "Delete").click().run()
    assert svc.get_memories([memory.id]) != []  # nothing deleted before confirming
    at.button(key="confirm_no").click().run()
    assert svc.get_memories([memory.id]) != []
    next(b for b in at.button if b.label == "Delete").click().run()
    at.button(key="confirm_yes").click().run()
    assert svc.get_memories([memory.id]) == []
    assert "memory" not in at.query_params
    assert table(at) == []


def test_expire_and_archive_the_selected_memory(svc, store, user, tenant) -> None:
    memory = svc.add_memory(store.id, "Current job")
    at = open_memories(tenant, user, memory=str(memory.id))
    next(b for b in at.button if b.label == "Archive").click().run()
    assert svc.get_memory(memory.id).archived
    next(b for b in at.button if b.label == "Unarchive").click().run()
    assert not svc.get_memory(memory.id).archived
    next(b for b in at.button if b.label == "Expire now").click().run()
    assert svc.get_memory(memory.id).expires_at is None  # waits for the confirmation
    at.button(key="confirm_yes").click().run()
    assert svc.get_memory(memory.id).status(datetime.now(UTC)) == "expired"
    assert at.query_params["memory"] == str(memory.id)  # still open after expiring


def test_bulk_actions_wait_for_confirmation(svc, store, user, tenant) -> None:
    ids = [m.id for m in svc.add_memories(store.id, [NewMemory(f"memory {i}") for i in range(4)])]
    at = open_memories(tenant, user)
    at = select(at, [0, 1, 2])
    assert "memory" not in at.query_params
    next(b for b in at.button if b.label == "Archive 3 memories").click().run()
    assert not any(m.archived for m in svc.get_memories(ids))
    at.button(key="confirm_no").click().run()
    assert not any(m.archived for m in svc.get_memories(ids))
    at = select(at, [0, 1, 2])
    next(b for b in at.button if b.label == "Archive 3 memories").click().run()
    assert at.button(key="confirm_yes").label == "Archive 3 memories"
    at.button(key="confirm_yes").click().run()
    assert sum(m.archived for m in svc.get_memories(ids)) == 3
    at = select(at, [0, 1])
    next(b for b in at.button if b.label == "Delete 2 memories").click().run()
    assert len(svc.get_memories(ids)) == 4
    at.button(key="confirm_yes").click().run()
    assert len(svc.get_memories(ids)) == 2
    assert [t.value for t in at.toast] == ["Deleted 2 memories"]


def test_user_content_is_shown_literally(svc, store, user, tenant) -> None:
    evil = svc.add_memory(store.id, "<img src=x onerror=alert(1)>", memory_type="<b>type</b>", metadata={"x": "**y**"})
    bold = svc.add_memory(store.id, "**bold** # heading", source="_src_")
    svc.add_relationship(evil.id, bold.id, "related", 0.5)
    at = open_memories(tenant, user, memory=str(evil.id))
    assert sorted(table(at)) == ["**bold** # heading", "<img src=x onerror=alert(1)>"]
    plain = [t.value for t in at.text]
    assert "<img src=x onerror=alert(1)>" in plain
    markdown = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    assert "<img" not in markdown and "**bold**" not in markdown and "<b>type" not in markdown
    related = at.dataframe[1]
    assert list(related.value["memory"]) == ["**bold** # heading"]
    at.session_state[related.key] = {"selection": {"rows": [0], "columns": []}}
    at.run()  # selecting a relationship opens the related memory
    assert at.query_params["memory"] == str(bold.id)
    assert "**bold** # heading" in [t.value for t in at.text]


def test_another_tenants_memory_cannot_be_opened(svc, store, user, tenant, other) -> None:
    other_svc, other_store = other
    secret = other_svc.list_memories(other_store.id).items[0]
    at = open_memories(tenant, user, memory=str(secret.id))
    assert "not found" in at.error[0].value
    assert "launch code" not in texts(at)


def test_a_superseded_memory_is_marked_with_a_link_to_the_newer_one(svc, store, user, tenant) -> None:
    old, new = svc.add_memories(store.id, [NewMemory("Lives in Berlin"), NewMemory("Moved to Lisbon")])
    svc.add_relationship(new.id, old.id, "updates", 0.9)
    at = open_memories(tenant, user)
    shown = at.dataframe[0].value.set_index("content")["superseded"]
    assert shown["Moved to Lisbon"] == "" and shown["Lives in Berlin"].endswith(f"memory={new.id}#updated%20%E2%86%97")
    at = open_memories(tenant, user, memory=str(old.id))  # the detail says so, with the newer memory's text
    assert "Superseded: a newer memory updates this one" in at.warning[0].value
    assert "Moved to Lisbon" in [t.value for t in at.text]
    next(b for b in at.button if b.label == "Open the newer memory").click().run()
    assert at.query_params["memory"] == str(new.id)
