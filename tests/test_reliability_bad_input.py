"""Bad input across the whole surface, table-driven: the Python API (beyond tests/test_bad_input.py),
the CLI in-process and as a subprocess, import files, and the explorer's forms. Each bad input
gets one clear line naming the problem (or a safe result), and the database is unchanged:
a snapshot of every table, read by the superuser, is the same before and after."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from uuid import uuid4

import pytest
from sqlalchemy import Engine, text

from core import Conflict, InvalidInput, MemoryService, NewMemory, NotFound
from core.cli import main
from core.ranking import Weights
from tests.apptest import open_page
from tests.conftest import unique

ROOT = Path(__file__).resolve().parent.parent
FIGURES: Counter[str] = Counter()  # written to test-output/reliability/ by conftest
NIL = "00000000-0000-4000-8000-000000000000"


def everything(superuser: Engine) -> tuple:
    """The whole database in a few numbers and digests, for every tenant: any insert, delete,
    update, rename or counted access changes one of them."""
    with superuser.connect() as conn:
        return tuple(
            conn.execute(
                text(
                    "SELECT (SELECT count(*) || md5(coalesce(string_agg(id || name, ',' ORDER BY id), '')) FROM tenants),"
                    " (SELECT count(*) || md5(coalesce(string_agg(id || name, ',' ORDER BY id), '')) FROM users),"
                    " (SELECT count(*) || md5(coalesce(string_agg(id || store_name || embedding_model || total_memories, ',' ORDER BY id), ''))"
                    "  FROM memory_stores),"
                    " (SELECT count(*) || '/' || coalesce(max(updated_at)::text, '') || '/' || coalesce(sum(access_count), 0) FROM memories),"
                    " (SELECT count(*) || '/' || coalesce(sum(strength), 0) FROM memory_relationships)"
                )
            ).one()
        )


def one_line(message: str) -> None:
    assert message and "\n" not in message.strip() and "Traceback" not in message and len(message) < 400, message


# The Python API: what tests/test_bad_input.py does not try yet ----------------------------------------


def _surrogate_metadata(s, st, m):
    return s.add_memory(st.id, "x", metadata={"note": "half \ud800 a character"})


API_CASES: dict[str, tuple[Callable, type[Exception], str]] = {
    "batch item None": (
        lambda s, st, m: s.add_memories(st.id, [None]),
        InvalidInput,
        "a memory must be a NewMemory or a JSON object, not NoneType",
    ),
    "batch item a string": (lambda s, st, m: s.add_memories(st.id, ["hello"]), InvalidInput, "not str"),
    "batch item a number": (lambda s, st, m: s.add_memories(st.id, [NewMemory("ok"), 42]), InvalidInput, "memory 2 of the batch"),
    "content with a lone surrogate": (lambda s, st, m: s.add_memory(st.id, "half \ud800 a character"), InvalidInput, "lone surrogate"),
    "metadata with a lone surrogate": (_surrogate_metadata, InvalidInput, "metadata contains a lone surrogate"),
    "memory type with a surrogate": (
        lambda s, st, m: s.add_memory(st.id, "x", memory_type="t\udcff"),
        InvalidInput,
        "memory_type contains a lone",
    ),
    "content 100,001 characters": (lambda s, st, m: s.add_memory(st.id, "x" * 100_001), InvalidInput, "content is 100,001 characters long"),
    "source 101 characters": (lambda s, st, m: s.add_memory(st.id, "x", source="s" * 101), InvalidInput, "source is 101 characters"),
    "metadata of 70 KB": (lambda s, st, m: s.add_memory(st.id, "x", metadata={"k": "v" * 70_000}), InvalidInput, "the limit is 65,536"),
    "metadata holding a set": (
        lambda s, st, m: s.add_memory(st.id, "x", metadata={"k": {1, 2}}),
        InvalidInput,
        "metadata is not valid JSON",
    ),
    "created in year 1": (lambda s, st, m: s.add_memory(st.id, "x", created_at="0001-01-01T00:00:00"), InvalidInput, "out of range"),
    "expiry as a number": (lambda s, st, m: s.add_memory(st.id, "x", expires_at=12345), InvalidInput, "expires_at must be a timestamp"),
    "importance True": (lambda s, st, m: s.add_memory(st.id, "x", importance=True), InvalidInput, "importance must be a number"),
    "embedding of 2 dimensions": (lambda s, st, m: s.add_memory(st.id, "x", embedding=[[0.1] * 384]), InvalidInput, "shape (1, 384)"),
    "embedding as text": (lambda s, st, m: s.add_memory(st.id, "x", embedding="0.1,0.2"), InvalidInput, "embedding must be a list of 384"),
    "embedding overflowing float32": (lambda s, st, m: s.add_memory(st.id, "x", embedding=[1e39] * 384), InvalidInput, "NaN or infinite"),
    "store id None": (lambda s, st, m: s.add_memory(None, "x"), InvalidInput, "store id None is not a valid UUID"),
    "update: importance 2": (lambda s, st, m: s.update_memory(m.id, importance=2), InvalidInput, "importance must be between 0 and 1"),
    "update: empty content": (lambda s, st, m: s.update_memory(m.id, content=""), InvalidInput, "content is empty"),
    "update: metadata a list": (lambda s, st, m: s.update_memory(m.id, metadata=[1]), InvalidInput, "metadata must be a JSON object"),
    "update: archived 'yes'": (lambda s, st, m: s.update_memory(m.id, archived="yes"), InvalidInput, "archived must be true or false"),
    "update: expiry 'soon'": (lambda s, st, m: s.update_memory(m.id, expires_at="soon"), InvalidInput, "not an ISO 8601 timestamp"),
    "expire at 'tomorrow'": (lambda s, st, m: s.expire_memories([m.id], at="tomorrow"), InvalidInput, "not an ISO 8601"),
    "importance change NaN": (lambda s, st, m: s.adjust_importance([m.id], math.nan), InvalidInput, "importance change must be"),
    "sort by SQL": (lambda s, st, m: s.list_memories(st.id, order_by="created_at; DROP TABLE memories"), InvalidInput, "cannot sort by"),
    "offset -1": (lambda s, st, m: s.list_memories(st.id, offset=-1), InvalidInput, "offset must be a whole number >= 0"),
    "page of 0": (lambda s, st, m: s.list_memories(st.id, limit=0), InvalidInput, "limit must be a whole number from 1 to 10000"),
    "metadata filter a list": (lambda s, st, m: s.list_memories(st.id, metadata=[1]), InvalidInput, "metadata must be a JSON object"),
    "graph depth 99": (lambda s, st, m: s.neighbours(m.id, depth=99), InvalidInput, "depth must be a whole number from 1 to 3"),
    "graph direction sideways": (lambda s, st, m: s.neighbours(m.id, direction="sideways"), InvalidInput, "direction must be"),
    "search mode 'sql'": (lambda s, st, m: s.search_memories(st.id, "q", mode="sql"), InvalidInput, "unknown search mode 'sql'"),
    "negative weight": (
        lambda s, st, m: s.search_memories(st.id, "q", mode="weighted", weights=Weights(-1, 0.2, 0.1)),
        InvalidInput,
        "weight relevance",
    ),
    "half-life 0": (
        lambda s, st, m: s.search_memories(st.id, "q", mode="weighted", weights=Weights(1, 0.2, 0.1, 0)),
        InvalidInput,
        "half_life_hours",
    ),
    "query vector of 10 dims": (lambda s, st, m: s.search_by_embedding(st.id, [0.1] * 10), InvalidInput, "embedding has 10 dimensions"),
    "query with a lone surrogate": (lambda s, st, m: s.search_memories(st.id, "q\udcff"), InvalidInput, "query contains a lone surrogate"),
    "store renamed blank": (lambda s, st, m: s.rename_store(st.id, " "), InvalidInput, "store name is empty"),
    "store renamed 101 chars": (lambda s, st, m: s.rename_store(st.id, "s" * 101), InvalidInput, "store name is 101 characters"),
    "user name empty": (lambda s, st, m: s.create_user(""), InvalidInput, "user name is empty"),
    "user name with a newline": (lambda s, st, m: s.create_user("a\nb"), InvalidInput, "user name contains the control character"),
    "user name None": (lambda s, st, m: s.find_user(None), InvalidInput, "user name must be a string"),
    "model unknown": (lambda s, st, m: s.set_store_model(st.id, "nope"), InvalidInput, "unknown embedding model 'nope'"),
    "model change on a full store": (lambda s, st, m: s.set_store_model(st.id, "all-MiniLM-L6-v2"), Conflict, "re-embed them all"),
    "relationship type blank": (lambda s, st, m: s.add_relationship(m.id, NIL, " "), InvalidInput, "relationship_type is empty"),
    "relationship strength NaN": (
        lambda s, st, m: s.add_relationship(m.id, NIL, "x", math.nan),
        InvalidInput,
        "strength must be between 0 and 1",
    ),
    "one malformed id among many": (lambda s, st, m: s.get_memories([m.id, "bad"]), InvalidInput, "memory id 'bad' is not a valid UUID"),
    "delete an unknown store": (lambda s, st, m: s.delete_store(NIL), NotFound, "memory store"),
    "tenant id not a UUID": (lambda s, st, m: MemoryService(s.db, "' OR 1=1 --"), InvalidInput, "tenant id"),
}


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # 1e39 as float32
@pytest.mark.parametrize("case", sorted(API_CASES))
def test_bad_api_input_is_refused_with_one_clear_line_and_changes_nothing(svc, store, superuser, case: str) -> None:
    call, error, message = API_CASES[case]
    anchor = svc.add_memory(store.id, "anchor")
    before = everything(superuser)
    with pytest.raises(error) as caught:
        call(svc, store, anchor)
    assert message in str(caught.value), str(caught.value)
    one_line(str(caught.value))
    assert everything(superuser) == before
    FIGURES["bad inputs refused: API"] += 1


def test_inputs_that_look_dangerous_get_a_safe_result(svc, store) -> None:
    svc.add_memory(store.id, "100% sure_ok")
    assert svc.list_memories(store.id, text_contains="%").total == 1  # LIKE wildcards are literal
    assert svc.list_memories(store.id, text_contains="_%\\").total == 0
    assert svc.add_memory(store.id, "numbers as keys", metadata={1: "a"}).metadata == {"1": "a"}  # as JSON makes them
    assert svc.list_memories(store.id, metadata={"1": "a"}).total == 1
    FIGURES["bad inputs with a safe result"] += 4


# Import files -----------------------------------------------------------------------------------


def _lines(*objects: object) -> bytes:
    return b"".join((o if isinstance(o, bytes) else json.dumps(o).encode()) + b"\n" for o in objects)


GOOD = {"content": "a good line"}
ID1, ID2 = str(uuid4()), str(uuid4())

IMPORT_CASES: dict[str, tuple[bytes, str]] = {
    "invalid UTF-8": (_lines(GOOD, b'{"content": "caf\xe9"}'), "line 2: not valid UTF-8 (byte 16)"),
    "NaN literal": (_lines(GOOD, b'{"content": "x", "importance": NaN}'), "line 2: NaN is not a number JSON allows"),
    "Infinity literal": (_lines(b'{"content": "x", "importance": Infinity}'), "Infinity is not a number JSON allows"),
    "-Infinity in an embedding": (_lines(b'{"content": "x", "embedding": [-Infinity]}'), "-Infinity is not a number"),
    "embedding of the wrong dimension": (_lines({"content": "x", "embedding": [0.1] * 383}), "embedding has 383 dimensions"),
    "an all-zero embedding": (_lines({"content": "x", "embedding": [0] * 384}), "embedding is all zeros"),
    "unknown field": (_lines({"content": "x", "colour": "red"}), "unknown memory field 'colour'"),
    "unknown relationship field": (
        _lines({"kind": "relationship", "source_memory_id": ID1, "target_memory_id": ID2, "relationship_type": "r", "weight": 1}),
        "unknown relationship field 'weight'",
    ),
    "unknown kind": (_lines({"kind": "memoir", "content": "x"}), "unknown kind 'memoir'"),
    "content of 3 MB": (_lines({"content": "x" * 3_000_000}), "content is 3,000,000 characters long"),
    "a line of 9 MB": (_lines(GOOD, {"content": "x" * 9_000_000}), "line 2: longer than 8,388,608 bytes"),
    "relationship to an unknown id": (
        _lines(
            {"id": ID1, "content": "x"},
            {"kind": "relationship", "source_memory_id": ID1, "target_memory_id": NIL, "relationship_type": "r"},
        ),
        f"memory {NIL} is neither in the file nor in this tenant",
    ),
    "relationship without a target": (
        _lines({"kind": "relationship", "source_memory_id": ID1, "relationship_type": "r"}),
        "relationship has no target_memory_id",
    ),
    "relationship to itself": (
        _lines({"kind": "relationship", "source_memory_id": ID1, "target_memory_id": ID1, "relationship_type": "r"}),
        "cannot have a relationship with itself",
    ),
    "duplicate ids": (
        _lines({"id": ID1, "content": "x"}, GOOD, {"id": ID1, "content": "y"}),
        f"line 3: id {ID1} already appears on line 1",
    ),
    "an array line": (_lines(GOOD, [1, 2]), "line 2: expected a JSON object, found list"),
    "a string line": (_lines('"just text"'), "expected a JSON object, found str"),
    "a number line": (_lines(42), "expected a JSON object, found int"),
    "a null line": (_lines(None), "expected a JSON object, found NoneType"),
    "truncated JSON": (_lines(b'{"content": "x"'), "not valid JSON"),
    "a byte order mark": (b"\xef\xbb\xbf" + _lines(GOOD), "Unexpected UTF-8 BOM"),
    "JSON nested 100,000 deep": (b"[" * 100_000 + b"]" * 100_000 + b"\n", "JSON nested too deeply"),
    "id not a UUID": (_lines({"id": "memory-1", "content": "x"}), "id 'memory-1' is not a valid UUID"),
    "archived 'yes'": (_lines({"content": "x", "archived": "yes"}), "archived must be true or false"),
    "empty content": (_lines({"content": "  "}), "content is empty"),
    "lone surrogate escape": (_lines(GOOD, b'{"content": "half \\ud800 a character"}'), "line 2: content contains a lone surrogate"),
    "bad line 120 of 200 (4 batches of 50)": (
        _lines(
            *[{"content": f"line {i}"} for i in range(119)],
            {"content": "x", "importance": 7},
            *[{"content": f"line {i}"} for i in range(120, 200)],
        ),
        "line 120: importance must be",
    ),
}


@pytest.mark.parametrize("case", sorted(IMPORT_CASES))
def test_a_bad_import_file_is_refused_by_line_number_and_nothing_is_created(capsys, tmp_path, superuser, case: str) -> None:
    data, message = IMPORT_CASES[case]
    path = tmp_path / "bad.jsonl"
    path.write_bytes(data)
    before = everything(superuser)
    code = main(
        [
            "import",
            str(path),
            "--tenant",
            unique("bad-file"),
            "--user",
            "u",
            "--create",
            "--embedding-model",
            "test-hashing",
            "--batch-size",
            "50",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    one_line(err)
    assert err.startswith("memex: error: ") and message in err and "nothing was imported" in err, err
    assert everything(superuser) == before  # not even the tenant was created
    FIGURES["bad inputs refused: import files"] += 1


def test_a_bad_file_for_a_new_store_of_an_existing_tenant_creates_neither_user_nor_store(capsys, tmp_path, superuser, tenant) -> None:
    """The user and store are created in the import's own transaction, which a bad line rolls back."""
    data, message = IMPORT_CASES["bad line 120 of 200 (4 batches of 50)"]
    path = tmp_path / "bad.jsonl"
    path.write_bytes(data)
    before = everything(superuser)
    options = ["--user", "new-user", "--store", "new", "--create", "--embedding-model", "test-hashing"]
    assert main(["import", str(path), "--tenant", tenant.name, *options]) == 1
    err = capsys.readouterr().err
    one_line(err)
    assert message in err and "nothing was imported" in err
    assert everything(superuser) == before


def test_an_import_naming_another_tenants_memory_ids_stays_in_its_own_tenant(svc, store, other, superuser) -> None:
    """Ids of another tenant's memories: as memory ids they are fresh ids in this tenant (keys are
    (tenant_id, id)); as relationship ends they are unknown ids, and the file is refused."""
    other_svc, other_store = other
    victim = other_svc.list_memories(other_store.id).items[0]
    report = svc.import_jsonl(store.id, _lines({"id": str(victim.id), "content": "mine now"}))
    assert report.memories == 1
    assert svc.get_memory(victim.id).content == "mine now" and svc.get_memory(victim.id).tenant_id == svc.tenant_id
    assert other_svc.get_memory(victim.id).content == "The launch code of the other tenant is 0000"  # untouched
    mine = svc.add_memory(store.id, "my memory")
    second = other_svc.add_memory(other_store.id, "only in the other tenant")
    before = everything(superuser)
    with pytest.raises(InvalidInput, match=f"memory {second.id} is neither in the file nor in this tenant"):
        svc.import_jsonl(
            store.id,
            _lines(
                {"content": "x"},
                {"kind": "relationship", "source_memory_id": str(mine.id), "target_memory_id": str(second.id), "relationship_type": "r"},
            ),
        )
    assert everything(superuser) == before
    assert other_svc.relationships_of(second.id) == []
    FIGURES["bad inputs with a safe result"] += 1
    FIGURES["bad inputs refused: import files"] += 1


def test_skip_bad_writes_the_good_lines_only(svc, store) -> None:
    data = _lines(GOOD, b'{"content": "x", "importance": NaN}', [1], {"content": "another good line"})
    report = svc.import_jsonl(store.id, data, skip_bad=True)
    assert report.memories == 2 and len(report.skipped) == 2
    assert sorted(m.content for m in svc.list_memories(store.id).items) == ["a good line", "another good line"]


# The command line, in-process -------------------------------------------------------------------------


@pytest.fixture
def named_scope(svc, store, user, tenant) -> list[str]:
    svc.add_memory(store.id, "a memory for the CLI")
    return ["--tenant", tenant.name, "--user", user.name]


CLI_CASES: dict[str, tuple[list[str], int, str]] = {
    # (argv, where "SCOPE" is replaced by an existing tenant/user and "NEW" by a new tenant name)
    "batch size 0 (created the scope first)": (
        ["import", "FILE", "--tenant", "NEW", "--user", "u", "--create", "--batch-size", "0"],
        1,
        "batch size must be a whole number from 1 to 10000, not 0",
    ),
    "batch size -5": (["import", "FILE", "--tenant", "NEW", "--user", "u", "--create", "--batch-size", "-5"], 1, "batch size"),
    "blank store name (created tenant and user first)": (
        ["import", "FILE", "--tenant", "NEW", "--user", "u", "--store", " ", "--create"],
        1,
        "store name is empty",
    ),
    "user name with a newline (created the tenant first)": (
        ["import", "FILE", "--tenant", "NEW", "--user", "a\nb", "--create"],
        1,
        "user name contains the control character '\\n'",
    ),
    "tenant name of 200 characters": (
        ["import", "FILE", "--tenant", "t" * 200, "--user", "u", "--create"],
        1,
        "tenant name is 200 characters",
    ),
    "unknown embedding model": (
        ["import", "FILE", "--tenant", "NEW", "--user", "u", "--create", "--embedding-model", "gpt-9"],
        1,
        "unknown embedding model 'gpt-9'",
    ),
    "a directory to import": (["import", "DIR", "--tenant", "NEW", "--user", "u", "--create"], 1, "no such file"),
    "search: empty query": (["search", "", "SCOPE"], 1, "query is empty"),
    "search: query of 100 KB": (["search", "q" * 100_000, "SCOPE"], 1, "query is 100,000 characters long"),
    "search: limit 0": (["search", "q", "SCOPE", "--limit", "0"], 1, "limit must be a whole number from 1 to 1000, not 0"),
    "search: similarity NaN": (["search", "q", "SCOPE", "--min-similarity", "nan"], 1, "min_similarity must be a number between -1 and 1"),
    "search: limit not a number": (["search", "q", "SCOPE", "--limit", "ten"], 2, "argument --limit: invalid int value: 'ten'"),
    "search: unknown store": (["search", "q", "SCOPE", "--store", "nope"], 1, "has no store 'nope'"),
    "search: undecodable byte in the query": (["search", "q\udcff", "SCOPE"], 1, "query contains a lone surrogate"),
    "export into a missing directory": (["export", "/nonexistent/dir/out.jsonl", "SCOPE"], 1, "No such file or directory"),
    "eval: k not numbers": (["eval", "CASES", "SCOPE", "--k", "a,b"], 1, "--k takes whole numbers"),
    "tenants: create without a name": (["tenants", "create"], 1, "this needs a tenant name"),
    "tenants: name of 101 characters": (["tenants", "create", "y" * 101], 1, "tenant name is 101 characters"),
    "tenants: name with a tab": (["tenants", "create", "a\tb"], 1, "tenant name contains the control character"),
    "tenants: delete without --yes": (["tenants", "delete", "--tenant", "TENANT"], 1, "add --yes to confirm"),
    "tenants: unknown action": (["tenants", "drop"], 2, "invalid choice: 'drop'"),
    "users: create without a name": (["users", "create", "--tenant", "TENANT"], 1, "this needs a user name"),
    "no command": ([], 2, "the following arguments are required: COMMAND"),
}


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_bad_cli_input_exits_non_zero_with_one_line_and_writes_nothing(capsys, tmp_path, named_scope, tenant, superuser, case) -> None:
    argv, expected_code, message = CLI_CASES[case]
    (tmp_path / "ok.jsonl").write_text('{"content": "fine"}\n', encoding="utf-8")
    (tmp_path / "cases.jsonl").write_text('{"query": "fine", "expected_ids": ["' + NIL + '"]}\n', encoding="utf-8")
    replace = {
        "FILE": [str(tmp_path / "ok.jsonl")],
        "DIR": [str(tmp_path)],
        "CASES": [str(tmp_path / "cases.jsonl")],
        "SCOPE": named_scope,
        "NEW": [unique("cli-new")],
        "TENANT": [tenant.name],
    }
    argv = [part for arg in argv for part in replace.get(arg, [arg])]
    if "--embedding-model" not in argv and argv[:1] == ["import"]:
        argv += ["--embedding-model", "test-hashing"]
    before = everything(superuser)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors exit directly
        code = exc.code
    out, err = capsys.readouterr()
    assert code == expected_code and out == "", (code, out, err)
    one_line(err)
    assert message in err, err
    assert everything(superuser) == before
    FIGURES["bad inputs refused: CLI"] += 1


def test_the_installed_command_refuses_a_bad_file_and_a_bad_argument_in_one_line_writing_nothing(data_dir, tmp_path, superuser) -> None:
    env = {**os.environ, "MEMEX_DATA_DIR": data_dir}
    path = tmp_path / "bad.jsonl"
    path.write_bytes(_lines(GOOD, b'{"content": "x", "importance": NaN}'))
    before = everything(superuser)
    tenant = unique("subprocess")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "core",
            "import",
            str(path),
            "--tenant",
            tenant,
            "--user",
            "u",
            "--create",
            "--embedding-model",
            "test-hashing",
        ],
        capture_output=True,
        cwd=ROOT,
        env=env,
    )
    assert run.returncode == 1 and run.stdout == b""
    assert run.stderr.decode() == "memex: error: line 2: NaN is not a number JSON allows; nothing was imported\n"
    # an argument that is not UTF-8 reaches Python as a lone surrogate: refused, not a crash
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "core",
            "import",
            str(path),
            "--tenant",
            tenant,
            "--user",
            b"\xff\xfe",
            "--create",
            "--embedding-model",
            "test-hashing",
            "--skip-bad",
        ],
        capture_output=True,
        cwd=ROOT,
        env=env,
    )
    assert run.returncode == 1 and run.stdout == b""
    err = run.stderr.decode(errors="replace")
    one_line(err)
    assert err.startswith("memex: error: user name contains a lone surrogate"), err
    assert everything(superuser) == before
    FIGURES["bad inputs refused: CLI"] += 2


# The explorer's forms ------------------------------------------------------------------------------------


def _errors(at) -> list[str]:
    assert not at.exception, at.exception
    return [e.value for e in at.error]


MEMORY_FORM_CASES = {
    "empty content": ("", "{}", "content is empty"),
    "blank content": ("   \n  ", "{}", "content is empty"),
    "content of 100,001 characters": ("x" * 100_001, "{}", "content is 100,001 characters long"),
    "content with a NUL byte": ("a\x00b", "{}", "control character"),
    "metadata not JSON": ("fine", "{not json", "Metadata must be a JSON object"),
    "metadata an array": ("fine", "[1, 2]", "Metadata must be a JSON object"),
    "metadata a string": ("fine", '"text"', "Metadata must be a JSON object"),
    "metadata nested 40 deep": ("fine", '{"a":' * 40 + "1" + "}" * 40, "nested deeper than 16"),
}


def test_the_memories_page_add_form_refuses_bad_input_with_an_error_and_writes_nothing(svc, store, user, tenant, superuser) -> None:
    before = everything(superuser)
    at = open_page("memories", tenant=tenant.name, user=user.name, store="default")
    assert not _errors(at)
    for case, (content, metadata, message) in MEMORY_FORM_CASES.items():
        at.text_area(key="memories_add_0_content").set_value(content)
        at.text_area(key="memories_add_0_metadata").set_value(metadata)
        at.button(key="FormSubmitter:memories_add_0-Add memory").click().run()
        errors = _errors(at)
        assert len(errors) == 1 and message in errors[0], (case, errors)
        one_line(errors[0])
        FIGURES["bad inputs refused: explorer forms"] += 1
    assert everything(superuser) == before


ADMIN_CASES = {
    "tenant": [
        ("", "tenant name is empty"),
        ("   ", "tenant name is empty"),
        ("t" * 10_000, "tenant name is 10,000 characters long"),
        ("a\tb", "control character"),
    ],
    "user": [("", "user name is empty"), ("u" * 10_000, "user name is 10,000 characters long"), ("new\nline", "control character")],
    "store": [("", "store name is empty"), ("s" * 10_000, "store name is 10,000 characters long")],
}


@pytest.mark.parametrize("kind", sorted(ADMIN_CASES))
def test_the_admin_page_refuses_empty_and_absurd_names_with_an_error_and_writes_nothing(svc, store, user, tenant, superuser, kind) -> None:
    before = everything(superuser)
    at = open_page("admin", tenant=tenant.name, user=user.name, store="default")
    assert not _errors(at)
    for name, message in ADMIN_CASES[kind]:
        at.text_input(key=f"admin_new_{kind}").set_value(name)
        if kind == "store":
            at.selectbox(key="admin_new_model").set_value("test-hashing")
        at.button(key=f"FormSubmitter:admin_create_{kind}-Create {kind}").click().run()
        errors = _errors(at)
        assert errors and message in errors[0], (kind, name[:20], errors)
        one_line(errors[0])
        FIGURES["bad inputs refused: explorer forms"] += 1
    # renaming the selected one to nothing is refused the same way
    current = {"tenant": tenant.name, "user": user.name, "store": "default"}[kind]
    at.text_input(key=f"admin_rename_{kind}_{current}").set_value("  ")
    at.button(key=f"FormSubmitter:admin_rename_{kind}_{current}-Rename").click().run()
    errors = _errors(at)
    assert errors and f"{kind} name is empty" in errors[0], errors
    FIGURES["bad inputs refused: explorer forms"] += 1
    assert everything(superuser) == before


def test_the_search_page_refuses_a_query_of_100_kb_with_an_error_and_counts_no_access(svc, store, user, tenant, superuser) -> None:
    svc.add_memory(store.id, "something to search")
    before = everything(superuser)  # accesses included
    at = open_page("search", tenant=tenant.name, user=user.name, store="default")
    at.toggle(key="record").set_value(True)  # even with access recording on
    at.text_input(key="q").set_value("q" * 100_000).run()
    errors = _errors(at)
    assert errors and "query is 100,000 characters long" in errors[0], errors
    one_line(errors[0])
    assert svc.list_memories(store.id).items[0].access_count == 0
    assert everything(superuser) == before
    FIGURES["bad inputs refused: explorer forms"] += 1
