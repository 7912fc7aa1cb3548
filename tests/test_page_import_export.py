"""The Import / export page through AppTest (which drives st.file_uploader): a file is checked and
previewed before anything is written, bad lines block the import unless skipped, a good file lands."""

from __future__ import annotations

import json

from core import NewMemory
from tests.apptest import open_page

A, B = "6f1c0c52-8d2e-4c1e-9f4e-0a4c5b7e9d10", "0d9e6b1a-3f47-4b8e-a2c5-7e1f9d3b6a20"
GOOD = "\n".join(
    json.dumps(line)
    for line in [
        {"id": A, "content": "<img src=x onerror=alert(1)>", "memory_type": "note", "importance": 0.8},
        {"id": B, "content": "**bold** # heading", "source": "chat", "metadata": {"k": "v"}},
        {"kind": "relationship", "source_memory_id": A, "target_memory_id": B, "relationship_type": "related", "strength": 0.6},
    ]
).encode()
BAD = b'{"content": "fine"}\n{"content": 5}\nnot json\n\n{"content": "x", "importance": 2}\n'


def open_import(tenant, user):
    at = open_page("import_export", tenant=tenant.name, user=user.name, store="default")
    assert not at.exception, at.exception
    return at


def upload(at, data: bytes, name: str = "memories.jsonl"):
    at.file_uploader[0].set_value((name, data, "application/jsonl"))
    at.run()
    assert not at.exception, at.exception
    return at


def import_button(at):
    return next(b for b in at.button if b.label == "Import")


def test_bad_lines_are_listed_by_number_and_nothing_is_written(svc, store, user, tenant) -> None:
    at = upload(open_import(tenant, user), BAD)
    assert {m.label: m.value for m in at.metric} == {"Memories": "1", "Relationships": "0", "Bad lines": "3"}
    errors = at.dataframe[1].value
    assert list(errors["line"]) == [2, 3, 5]
    assert list(errors["problem"]) == [
        "content must be a string, not int",
        "not valid JSON: Expecting value at column 1",
        "importance must be between 0 and 1, not 2",
    ]
    assert "3 lines cannot be imported" in at.error[0].value
    assert import_button(at).disabled
    assert svc.list_memories(store.id).total == 0
    at.checkbox(key="import_skip").check().run()
    assert not import_button(at).disabled
    import_button(at).click().run()
    assert [m.content for m in svc.list_memories(store.id).items] == ["fine"]
    assert "Imported 1 memory and 0 relationships" in at.success[0].value
    assert list(at.dataframe[0].value["skipped"]) == [
        "line 2: content must be a string, not int",
        "line 3: not valid JSON: Expecting value at column 1",
        "line 5: importance must be between 0 and 1, not 2",
    ]


def test_a_good_file_is_previewed_then_imported(svc, store, user, tenant) -> None:
    at = upload(open_import(tenant, user), GOOD)
    assert {m.label: m.value for m in at.metric} == {"Memories": "2", "Relationships": "1", "Bad lines": "0"}
    preview = at.dataframe[0].value
    assert list(preview["content"]) == ["<img src=x onerror=alert(1)>", "**bold** # heading"]  # literally
    assert list(preview["line"]) == [1, 2]
    assert svc.list_memories(store.id).total == 0  # a preview writes nothing
    import_button(at).click().run()
    assert not at.error
    assert "Imported 2 memories and 1 relationship" in at.success[0].value
    memories = {str(m.id): m for m in svc.list_memories(store.id).items}
    assert sorted(memories) == sorted([A, B])
    assert (memories[B].source, memories[B].metadata, memories[A].importance) == ("chat", {"k": "v"}, 0.8)
    [edge] = svc.list_relationships(store.id)
    assert (str(edge.source_memory_id), str(edge.target_memory_id), edge.strength) == (A, B, 0.6)
    assert at.file_uploader[0].value is None  # ready for the next file


def test_new_ids_copy_a_file_into_the_store(svc, store, user, tenant) -> None:
    svc.add_memories(store.id, [NewMemory("one", id=A), NewMemory("two", id=B)])
    svc.add_relationship(A, B, "related")
    exported = ("\n".join(svc.export_lines(store.id)) + "\n").encode()
    at = upload(open_import(tenant, user), exported, "copy.jsonl")
    at.checkbox(key="import_new_ids").check().run()
    import_button(at).click().run()
    assert not at.error
    assert sorted(m.content for m in svc.list_memories(store.id).items) == ["one", "one", "two", "two"]
    assert len(svc.list_relationships(store.id)) == 2


def test_a_relationship_to_an_unknown_memory_blocks_the_import(svc, store, user, tenant, other) -> None:
    other_svc, other_store = other
    foreign = other_svc.list_memories(other_store.id).items[0].id  # another tenant's memory is unknown here
    data = (
        GOOD
        + b"\n"
        + json.dumps({"kind": "relationship", "source_memory_id": A, "target_memory_id": str(foreign), "relationship_type": "spy"}).encode()
    )
    at = upload(open_import(tenant, user), data)
    import_button(at).click().run()
    assert "nothing was imported" in at.error[0].value and "line 4" in at.error[0].value
    assert svc.list_memories(store.id).total == 0


def test_export_offers_the_store_as_a_named_file(svc, store, user, tenant) -> None:
    svc.add_memory(store.id, "exported")
    at = open_import(tenant, user)
    assert not at.download_button[0].disabled
    assert f"1 memory · {tenant.name}-{user.name}-default.jsonl" in [t.value for t in at.text]
    assert at.checkbox(key="export_embeddings").value is True
