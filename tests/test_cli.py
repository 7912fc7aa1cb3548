"""The `memex` command line as a user types it: import, export, search --json, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import main
from tests.conftest import unique

ROOT = Path(__file__).resolve().parent.parent


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def scope() -> list[str]:
    return ["--tenant", unique("cli"), "--user", "ana"]


def write_jsonl(path: Path, *objects: object) -> Path:
    path.write_text("".join(json.dumps(o) + "\n" for o in objects), encoding="utf-8")
    return path


MEMORIES = [
    {
        "id": "3f1d9a52-7a8e-4d0e-9a7d-1b2c3d4e5f01",
        "content": "Ana drinks oat milk flat whites",
        "memory_type": "preference",
        "source": "chat",
        "importance": 0.7,
        "metadata": {"topic": "coffee"},
        "created_at": "2026-01-02T03:04:05+00:00",
    },
    {"id": "3f1d9a52-7a8e-4d0e-9a7d-1b2c3d4e5f02", "content": "Ana's cat is called Pixel", "expires_at": "2020-01-01T00:00:00+00:00"},
    {"content": "Ana runs on Tuesdays", "archived": True},
    {
        "kind": "relationship",
        "source_memory_id": "3f1d9a52-7a8e-4d0e-9a7d-1b2c3d4e5f01",
        "target_memory_id": "3f1d9a52-7a8e-4d0e-9a7d-1b2c3d4e5f02",
        "relationship_type": "related_to",
        "strength": 0.4,
    },
]


def test_import_search_json_and_export_round_trip(capsys, tmp_path, scope) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", *MEMORIES)
    code, out, _ = run(capsys, "import", str(source), *scope, "--create", "--embedding-model", "test-hashing")
    assert code == 0 and "imported 3 memories and 1 relationships" in out

    code, out, _ = run(capsys, "search", "oat milk flat whites", *scope, "--min-similarity", "0.1", "--json")
    results = json.loads(out)
    assert code == 0 and results[0]["id"] == MEMORIES[0]["id"]
    assert {"id", "content", "similarity", "memory_type", "source", "importance", "metadata", "created_at"} <= set(results[0])
    assert all(r["id"] != MEMORIES[1]["id"] for r in results)  # expired

    exported = tmp_path / "out.jsonl"
    assert run(capsys, "export", str(exported), *scope)[0] == 0
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    assert len(lines) == 4 and lines[-1]["kind"] == "relationship"

    copy_scope = ["--tenant", unique("copy"), "--user", "ana"]
    assert run(capsys, "import", str(exported), *copy_scope, "--create", "--embedding-model", "test-hashing")[0] == 0
    again = tmp_path / "again.jsonl"
    assert run(capsys, "export", str(again), *copy_scope)[0] == 0
    assert again.read_bytes() == exported.read_bytes()


def test_a_missing_tenant_user_or_store_suggests_create_only_where_the_command_has_it(capsys, tmp_path, scope) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", MEMORIES[0])
    code, _, err = run(capsys, "import", str(source), *scope)
    assert code == 1 and err.strip().endswith("not found (pass --create to create it)"), err
    assert run(capsys, "import", str(source), *scope, "--create", "--embedding-model", "test-hashing")[0] == 0
    code, _, err = run(capsys, "import", str(source), *scope, "--store", "elsewhere")
    assert code == 1 and err.strip().endswith("has no store 'elsewhere' (pass --create to create it)"), err
    for argv in (["search", "q", *scope, "--store", "elsewhere"], ["search", "q", scope[0], scope[1], "--user", "nobody"]):
        code, _, err = run(capsys, *argv)
        assert code == 1 and err.startswith("memex: error: ") and "--create" not in err, err  # search has no --create to suggest


def test_export_to_a_directory_that_does_not_exist_says_so_in_one_line(capsys, tmp_path, scope) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", MEMORIES[0])
    assert run(capsys, "import", str(source), *scope, "--create", "--embedding-model", "test-hashing")[0] == 0
    target = tmp_path / "missing" / "out.jsonl"
    code, out, err = run(capsys, "export", str(target), *scope)
    assert (code, out) == (1, "") and err == f"memex: error: {target}: cannot write there (No such file or directory)\n"
    assert not (tmp_path / "missing").exists()


def test_search_runs_in_the_mode_asked_for(capsys, tmp_path, scope) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", *MEMORIES)
    assert run(capsys, "import", str(source), *scope, "--create", "--embedding-model", "test-hashing")[0] == 0
    code, out, _ = run(capsys, "search", "Pixel", *scope, "--mode", "text", "--json")  # expired: text search skips it too
    assert code == 0 and json.loads(out) == []
    code, out, _ = run(capsys, "search", "oat milk", *scope, "--mode", "text", "--json")
    (hit,) = json.loads(out)
    assert hit["id"] == MEMORIES[0]["id"] and set(hit["breakdown"]["terms"]) == {"oat", "milk"}
    with pytest.raises(SystemExit) as exited:
        main(["search", "oat milk", *scope, "--mode", "fuzzy"])
    assert exited.value.code == 2 and "invalid choice: 'fuzzy'" in capsys.readouterr().err


def test_re_importing_the_same_file_never_duplicates(capsys, tmp_path, scope) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", *MEMORIES)
    for _ in range(2):
        assert run(capsys, "import", str(source), *scope, "--create", "--embedding-model", "test-hashing")[0] == 0
    code, out, _ = run(capsys, "stats", *scope, "--json")
    assert json.loads(out)["total"] == 3


def test_a_bad_line_is_reported_by_number_and_nothing_is_written(capsys, tmp_path, scope) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", MEMORIES[0], {"content": "fine"}, {"content": "bad", "importance": 7})
    code, out, err = run(capsys, "import", str(source), *scope, "--create", "--embedding-model", "test-hashing")
    assert code == 1
    assert err.strip() == "memex: error: line 3: importance must be between 0 and 1, not 7; nothing was imported"
    code, _, err = run(capsys, "stats", *scope)
    assert code == 1 and "not found" in err  # not even the tenant was created


def test_skip_bad_imports_the_good_lines_and_reports_the_bad(capsys, tmp_path, scope) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(b'{"content": "good one"}\n{"content": "bad \xff utf8"}\nnot json\n{"content": "good two"}\n')
    code, out, err = run(capsys, "import", str(source), *scope, "--create", "--embedding-model", "test-hashing", "--skip-bad")
    assert code == 0 and "imported 2 memories" in out and "skipped 2 bad lines" in out
    assert "line 2: not valid UTF-8" in err and "line 3: not valid JSON" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["search", "q", "--tenant", "nobody-here", "--user", "x"], "tenant 'nobody-here' not found"),
        (["search", "q", "--tenant", "x", "--user", "y", "--limit", "zero"], "argument --limit: invalid int value"),
        (["import", "/no/such/file.jsonl", "--tenant", "t", "--user", "u"], "/no/such/file.jsonl: no such file"),
        (["tenants", "delete", "--tenant", "nobody-here"], "tenant 'nobody-here' not found"),
    ],
)
def test_failures_are_one_line_on_stderr_with_a_non_zero_exit(capsys, argv, message) -> None:
    try:
        code, out, err = run(capsys, *argv)
    except SystemExit as exc:  # argparse usage errors exit directly
        code, (out, err) = exc.code, capsys.readouterr()
    assert code != 0 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err
    assert "Traceback" not in err


def test_the_installed_command_exits_non_zero_without_traceback_and_debug_shows_it(data_dir) -> None:
    env = {**os.environ, "MEMEX_DATA_DIR": data_dir}
    memex = [sys.executable, "-m", "core"]
    plain = subprocess.run(
        [*memex, "search", "q", "--tenant", "nobody-here", "--user", "x"], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert plain.returncode == 1 and plain.stderr.strip() == "memex: error: tenant 'nobody-here' not found"  # search has no --create
    debug = subprocess.run(
        [*memex, "search", "q", "--tenant", "nobody-here", "--user", "x", "--debug"], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_the_column_parser_agrees_with_the_line_parser_on_every_kind_of_line() -> None:
    """parse_jsonl reads ordinary lines with vectors straight into columns (orjson); whatever it
    accepts, refuses or words must be what core.jsonl._parse_line, the rules of the format, gives."""
    import numpy as np

    from core.errors import InvalidInput
    from core.jsonl import _parse_line, parse_jsonl

    dim = 4
    v = [0.5, -0.25, 1.0, 2.0]
    lines = [
        {"content": "plain", "embedding": v},
        {"id": "3f1d9a52-7a8e-4d0e-9a7d-1b2c3d4e5f09", "content": "all fields", "memory_type": " pref ", "source": "chat",
         "importance": 0.456, "metadata": {"a": [1, {"b": "ü"}]}, "expires_at": "2020-01-01T00:00:00Z",
         "created_at": "2025-01-01T00:00:00", "archived": True, "embedding": v, "kind": "memory"},
        {"content": "no vector"},
        {"content": "zero vector", "embedding": [0, 0, 0, 0]},
        {"content": "short vector", "embedding": [1, 2]},
        {"content": "strings in the vector", "embedding": ["1", "2", "3", "4"]},
        {"content": "nested vector", "embedding": [[1], [2], [3], [4]]},
        {"content": "bad importance", "importance": 7, "embedding": v},
        {"content": "bad type", "memory_type": ["x"], "embedding": v},
        {"content": "huge int in metadata", "metadata": {"n": 123456789012345678901234567890}, "embedding": v},
        {"content": "metadata not an object", "metadata": [1], "embedding": v},
        {"content": "NUL in metadata", "metadata": {"a": "\u0000"}, "embedding": v},
        {"content": "unknown key", "colour": "red", "embedding": v},
        {"content": "  ", "embedding": v},
        {"kind": "relationship", "source_memory_id": "3f1d9a52-7a8e-4d0e-9a7d-1b2c3d4e5f09",
         "target_memory_id": "3f1d9a52-7a8e-4d0e-9a7d-1b2c3d4e5f01", "relationship_type": "related"},
        {"id": "3f1d9a52-7a8e-4d0e-9a7d-1b2c3d4e5f09", "content": "the same id again", "embedding": v},
    ]  # fmt: skip
    raw = [json.dumps(o).encode() for o in lines] + [b'{"content": "NaN", "embedding": [NaN, 1, 2, 3]}', b"not json", b"[1, 2]"]
    parsed = parse_jsonl(b"\n".join(raw), dim)
    expected_errors, expected_memories = [], []
    for number, line in enumerate(raw, start=1):
        try:
            item = _parse_line(line, dim)
        except InvalidInput as exc:
            expected_errors.append(f"line {number}: {exc}")
            continue
        if hasattr(item, "content"):
            expected_memories.append((number, item))
    duplicate = "line 16: id 3f1d9a52-7a8e-4d0e-9a7d-1b2c3d4e5f09 already appears on line 2"
    expected_errors = sorted([*expected_errors, duplicate], key=lambda e: int(e.split(":")[0].removeprefix("line ")))
    expected_memories = [(n, m) for n, m in expected_memories if n != 16]
    assert parsed.errors == expected_errors
    assert len(parsed.relationships) == 1
    got = list(parsed.memories)
    assert [n for n, _ in got] == [n for n, _ in expected_memories]
    for (_, a), (_, b) in zip(got, expected_memories):
        for name in ("id", "content", "memory_type", "source", "importance", "metadata", "expires_at", "created_at", "archived"):
            assert getattr(a, name) == getattr(b, name), name
        assert (a.embedding is None) == (b.embedding is None)
        if a.embedding is not None:
            np.testing.assert_array_equal(a.embedding, b.embedding)
    huge = next(m for _, m in got if m.content == "huge int in metadata")
    assert huge.metadata == {"n": 123456789012345678901234567890}  # exact, as json reads it
