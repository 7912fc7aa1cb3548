"""Faults: the database restarts, the embedding provider fails or throttles, a process is killed
in the middle of an import, eight threads hammer one store. Each time: nothing half-written,
nothing lost, nothing duplicated, and the next call works."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import UUID, uuid5

import boto3
import numpy as np
import psutil
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError
from botocore.response import StreamingBody
from botocore.stub import Stubber
from sqlalchemy import Engine, text

from core import EmbeddingError, NewMemory
from core.admin import find_tenant
from core.cli import main
from core.db import Database
from core.embeddings import use_embedder
from core.embeddings.base import Embedder
from core.embeddings.bedrock import TitanEmbedder
from core.embeddings.hashing import HashingEmbedder
from tests.api_support import child_env, client, start_server, stop_server
from tests.apptest import open_page
from tests.conftest import unique

ROOT = Path(__file__).resolve().parent.parent
FIGURES: Counter[str] = Counter()  # written to test-output/reliability/ by conftest
TITAN = "amazon.titan-embed-text-v1"


def started_at(db: Database):
    with db.app.connect() as conn:
        return conn.scalar(text("SELECT pg_postmaster_start_time()"))


def rows_of(superuser: Engine, tenant_name: str) -> tuple[int, int, int, int]:
    """(rows, distinct ids, distinct contents, store counter) of a tenant, read by the superuser."""
    with superuser.connect() as conn:
        return tuple(
            conn.execute(
                text(
                    "SELECT count(m.id), count(DISTINCT m.id), count(DISTINCT m.content),"
                    " coalesce((SELECT sum(s.total_memories) FROM memory_stores s WHERE s.tenant_id = t.id), 0)"
                    " FROM tenants t LEFT JOIN memories m ON m.tenant_id = t.id WHERE t.name = :n GROUP BY t.id"
                ),
                {"n": tenant_name},
            ).one_or_none()
            or (0, 0, 0, 0)
        )


# The database restarts -------------------------------------------------------------------------


def test_the_next_call_after_a_database_restart_succeeds(db: Database, svc, store, tenant) -> None:
    """Every pooled connection dies with the server; pool_pre_ping replaces them on checkout."""
    memory = svc.add_memory(store.id, "written before the restart")
    before = started_at(db)
    # fill the pool with connections that the restart will kill
    for _ in range(3):
        svc.search_memories(store.id, "restart", min_similarity=-1)
    db.embedded.restart()
    FIGURES["restarts of the database"] += 1
    assert svc.get_memory(memory.id).content == "written before the restart"  # the app role's pool
    assert find_tenant(db, tenant.name).id == tenant.id  # the owner's pool
    after = svc.add_memory(store.id, "written after the restart")
    assert {r.memory.id for r in svc.search_memories(store.id, "written restart", min_similarity=-1)} == {memory.id, after.id}
    assert started_at(db) > before  # it really was a new server
    assert svc.get_store(store.id).total_memories == 2


def test_a_transaction_cut_by_a_restart_writes_nothing(db: Database, svc, store) -> None:
    svc.add_memory(store.id, "already there")
    with pytest.raises(Exception) as caught:
        with db.tenant(svc.tenant_id) as conn:
            conn.execute(
                text(
                    "INSERT INTO memories (tenant_id, store_id, content, embedding, embedding_dim)"
                    " SELECT tenant_id, store_id, 'half-written', embedding, embedding_dim FROM memories"
                )
            )
            db.embedded.restart()  # the server goes away before the commit
    FIGURES["restarts of the database"] += 1
    assert "terminat" in str(caught.value) or "closed" in str(caught.value) or "connection" in str(caught.value)
    assert [m.content for m in svc.list_memories(store.id).items] == ["already there"]
    assert svc.get_store(store.id).total_memories == 1


def test_the_explorer_renders_again_after_a_restart_without_restarting_the_app(db: Database, svc, store, user, tenant) -> None:
    svc.add_memory(store.id, "Shown before and after the restart")
    at = open_page("overview", tenant=tenant.name, user=user.name, store="default")
    assert not at.exception and not at.error
    assert {m.label: m.value for m in at.metric}["Memories"] == "1"
    db.embedded.restart()
    FIGURES["restarts of the database"] += 1
    at.run()  # the same app, the same session, its cached Database
    assert not at.exception and not at.error
    assert {m.label: m.value for m in at.metric}["Memories"] == "1"
    assert [str(v) for df in at.dataframe for v in df.value["content"]] == ["Shown before and after the restart"]


def test_the_explorer_says_the_database_is_unreachable_while_it_is_down_and_recovers(db: Database, svc, store, user, tenant) -> None:
    svc.add_memory(store.id, "Visible again once the server is back")
    at = open_page("overview", tenant=tenant.name, user=user.name, store="default")
    assert not at.exception and not at.error
    db.embedded.stop()
    try:
        FIGURES["database outages"] += 1
        at.run()
        assert not at.exception  # no traceback on the page
        assert any("not reachable" in e.value or "Could not read" in e.value for e in at.error), [e.value for e in at.error]
    finally:
        db.embedded.server.ensure_postgres_running()
    at.run()
    assert not at.exception and not at.error
    assert {m.label: m.value for m in at.metric}["Memories"] == "1"


# The embedding provider fails or throttles ---------------------------------------------------------


def titan_vector(text_: str) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(text_.encode()).digest()[:4], "little")
    return np.random.default_rng(seed).standard_normal(1536).astype(float).round(6).tolist()


class _Raw(io.BytesIO):
    """What botocore reads an HTTP body from (urllib3's response offers read() and stream())."""

    def stream(self, **_: object) -> Iterator[bytes]:
        yield self.getvalue()


class FakeBedrock:
    """Bedrock's HTTP side, answered on the client's 'before-send' event: botocore builds, signs,
    retries and parses every request for real, only the network is replaced. `answer(text, n)`
    gives the n-th attempt's (status, body) for a text."""

    def __init__(self, client, answer: Callable[[str, int], tuple[int, dict] | Exception]):
        self.answer = answer
        self.attempts: Counter[str] = Counter()
        self._lock = threading.Lock()
        client.meta.events.register("before-send.bedrock-runtime.InvokeModel", self)

    def __call__(self, request, **_: object) -> AWSResponse:
        text_ = json.loads(request.body)["inputText"]
        with self._lock:
            self.attempts[text_] += 1
            n = self.attempts[text_]
        outcome = self.answer(text_, n)
        if isinstance(outcome, Exception):
            raise outcome
        status, payload = outcome
        body = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        if status >= 400:
            headers["x-amzn-ErrorType"] = f"{payload['__type']}:http://internal.amazon.com/coral/com.amazon.bedrock/"
        return AWSResponse(request.url, status, headers, _Raw(body))

    @property
    def total(self) -> int:
        return sum(self.attempts.values())


def ok(text_: str) -> tuple[int, dict]:
    return 200, {"embedding": titan_vector(text_), "inputTextTokenCount": 3}


THROTTLED = (429, {"__type": "ThrottlingException", "message": "Too many requests, please wait before trying again."})
UNAVAILABLE = (503, {"__type": "ServiceUnavailableException", "message": "Bedrock is unable to process your request."})
INVALID = (400, {"__type": "ValidationException", "message": "Malformed input request: expected maxLength: 50000"})


def bedrock_client(attempts: int = 4):
    """A real client in adaptive retry mode, as make_client() builds it (there: 8 attempts in all),
    with fewer attempts so that backoff stays short, and no credentials lookup."""
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"mode": "adaptive", "total_max_attempts": attempts}),
    )


def test_the_bedrock_client_retries_adaptively_eight_attempts_in_all(monkeypatch) -> None:
    """botocore's "max_attempts" counts retries, not attempts: make_client used to ask for 9. And
    AWS_REGION, the variable the README names, is the region (botocore alone reads only
    AWS_DEFAULT_REGION: with AWS_REGION set, make_client used to fail with "set AWS_REGION")."""
    from core.embeddings.bedrock import MAX_ATTEMPTS, make_client

    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    client = make_client()
    assert client.meta.config.retries == {"mode": "adaptive", "total_max_attempts": MAX_ATTEMPTS} and MAX_ATTEMPTS == 8
    assert client.meta.region_name == "eu-central-1"


@pytest.fixture
def titan_store(svc, user):
    """A Titan v1 store whose embedder talks to the client the test hands in."""
    holder: dict[str, object] = {}
    use_embedder(TITAN, lambda dim: TitanEmbedder(TITAN, dim, client=holder["client"]))
    try:
        yield svc.get_or_create_store(user.id, "titan", embedding_model=TITAN), holder
    finally:
        use_embedder(TITAN, None)


def test_a_throttled_text_is_retried_with_backoff_and_the_batch_is_written_exactly_once(svc, titan_store, superuser, tenant) -> None:
    store, holder = titan_store
    holder["client"] = client = bedrock_client()
    fake = FakeBedrock(client, lambda t, n: THROTTLED if t == "second" and n <= 2 else ok(t))
    written = svc.add_memories(store.id, [NewMemory("first"), NewMemory("second"), NewMemory("third")])
    assert dict(fake.attempts) == {"first": 1, "second": 3, "third": 1}  # two 429s, then the answer
    FIGURES["provider: throttles injected"] += 2
    FIGURES["provider: HTTP attempts"] += fake.total
    assert sorted(m.content for m in written) == ["first", "second", "third"]
    assert rows_of(superuser, tenant.name) == (3, 3, 3, 3)  # once each, counter exact
    memories, vectors = svc.store_embeddings(store.id)
    assert np.allclose(vectors[[m.content for m in memories].index("second")], titan_vector("second"), atol=1e-5)


def test_a_transient_server_error_and_a_dropped_connection_are_retried(svc, titan_store, superuser, tenant) -> None:
    store, holder = titan_store
    holder["client"] = client = bedrock_client()
    dropped = ConnectionClosedError(endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com")
    script = {"one": [UNAVAILABLE], "two": [dropped], "three": [ReadTimeoutError(endpoint_url="https://bedrock")]}
    fake = FakeBedrock(client, lambda t, n: script[t][n - 1] if n <= len(script[t]) else ok(t))
    svc.add_memories(store.id, [NewMemory(t) for t in script])
    assert dict(fake.attempts) == {"one": 2, "two": 2, "three": 2}
    FIGURES["provider: transient faults injected"] += 3
    FIGURES["provider: HTTP attempts"] += fake.total
    assert rows_of(superuser, tenant.name) == (3, 3, 3, 3)


@pytest.mark.parametrize(
    "name, answer, attempts, message",
    [
        (
            "throttled on every attempt",
            lambda t, n: THROTTLED if t == "b" else ok(t),
            3,
            "Bedrock throttled amazon.titan-embed-text-v1 after 3 attempts; nothing was written, retry later",
        ),
        (
            "refused as invalid: not retried",
            lambda t, n: INVALID if t == "b" else ok(t),
            1,
            "Bedrock refused amazon.titan-embed-text-v1: ValidationException: Malformed input request",
        ),
        (
            "connection lost on every attempt",
            lambda t, n: ConnectionClosedError(endpoint_url="https://bedrock") if t == "b" else ok(t),
            3,
            "cannot reach Bedrock for amazon.titan-embed-text-v1",
        ),
        (
            "an answer that is not JSON",
            lambda t, n: (200, "<html>gateway</html>") if t == "b" else ok(t),
            1,
            "Bedrock answered amazon.titan-embed-text-v1 with a body that is not JSON",
        ),
        (
            "an answer without an embedding",
            lambda t, n: (200, {"message": "no vector today"}) if t == "b" else ok(t),
            1,
            "Bedrock answered amazon.titan-embed-text-v1 without an embedding",
        ),
        (
            "an answer of the wrong size",
            lambda t, n: (200, {"embedding": [0.1] * 1000}) if t == "b" else ok(t),
            1,
            "returned vectors that do not form a (3, 1536) array",
        ),
    ],
)
def test_a_batch_that_still_fails_is_one_clear_error_and_writes_nothing(
    svc, titan_store, superuser, tenant, name, answer, attempts, message
) -> None:
    store, holder = titan_store
    holder["client"] = client = bedrock_client(attempts=3)
    fake = FakeBedrock(client, answer)
    with pytest.raises(EmbeddingError) as caught:
        svc.add_memories(store.id, [NewMemory("a"), NewMemory("b"), NewMemory("c")])
    assert message in str(caught.value) and "\n" not in str(caught.value)
    # "b" as often as the retry policy allows; the others once at most (a failed batch cancels
    # the requests not yet sent)
    assert fake.attempts["b"] == attempts and fake.attempts["a"] <= 1 and fake.attempts["c"] <= 1
    FIGURES["provider: failing batches refused"] += 1
    FIGURES["provider: HTTP attempts"] += fake.total
    assert rows_of(superuser, tenant.name) == (0, 0, 0, 0)


@pytest.mark.parametrize(
    "code, status, message",
    [
        ("ThrottlingException", 429, "throttled"),
        ("ModelTimeoutException", 408, "ModelTimeoutException"),
        ("ServiceQuotaExceededException", 400, "ServiceQuotaExceededException"),
        ("InternalServerException", 500, "InternalServerException"),
    ],
)
def test_stubbed_errors_in_the_middle_of_a_batch_leave_nothing_written(svc, titan_store, superuser, tenant, code, status, message) -> None:
    store, holder = titan_store
    holder["client"] = client = bedrock_client()
    with Stubber(client) as stub:  # the Stubber answers before any retry logic runs
        body = json.dumps({"embedding": titan_vector("x"), "inputTextTokenCount": 1}).encode()
        stub.add_response("invoke_model", {"body": StreamingBody(io.BytesIO(body), len(body)), "contentType": "application/json"})
        stub.add_client_error("invoke_model", service_error_code=code, service_message="injected", http_status_code=status)
        with pytest.raises(EmbeddingError, match=message):
            svc.add_memory(store.id, "first")  # one text: one request, succeeds
            svc.update_memory(svc.list_memories(store.id).items[0].id, content="second")  # re-embedding fails
    assert [m.content for m in svc.list_memories(store.id).items] == ["first"]  # the update changed nothing
    assert rows_of(superuser, tenant.name) == (1, 1, 1, 1)
    FIGURES["provider: failing batches refused"] += 1


class FailsOnCall(Embedder):
    """The test-hashing embedder, failing on its n-th call (an import embeds once per batch)."""

    model, dim = "test-hashing", 384

    def __init__(self, fail_on: int):
        self.calls, self.fail_on, self.inner = 0, fail_on, HashingEmbedder()

    def _embed(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        if self.calls == self.fail_on:
            raise EmbeddingError("test-hashing: provider down (injected)")
        return self.inner._embed(texts)


def test_a_provider_failure_in_the_middle_of_an_import_keeps_whole_batches_and_a_rerun_completes(svc, store, superuser, tenant) -> None:
    data = "".join(json.dumps({"content": f"imported line {i}"}) + "\n" for i in range(50)).encode()
    use_embedder("test-hashing", lambda dim: FailsOnCall(fail_on=3))
    try:
        with pytest.raises(EmbeddingError, match="provider down"):
            svc.import_jsonl(store.id, data, batch_size=10)
    finally:
        use_embedder("test-hashing", None)
    assert rows_of(superuser, tenant.name) == (20, 20, 20, 20)  # batches 1 and 2, whole; batch 3 nothing
    report = svc.import_jsonl(store.id, data, batch_size=10)
    assert report.memories == 50
    assert rows_of(superuser, tenant.name) == (50, 50, 50, 50)  # the 20 again by id: updated, not duplicated
    FIGURES["provider: failing batches refused"] += 1


# A process killed in the middle of an import ---------------------------------------------------------

LINES, BATCH = 1000, 50


@pytest.mark.parametrize("with_ids", [True, False], ids=["with ids", "without ids"])
def test_an_import_killed_with_sigkill_keeps_whole_batches_and_a_rerun_ends_with_exactly_the_file(
    db: Database, superuser, data_dir, tmp_path, capsys, with_ids: bool
) -> None:
    namespace = UUID("6f1c2b9e-0d4a-4c3b-9e8f-7a6b5c4d3e2f")
    path = tmp_path / "BIG.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for i in range(LINES):
            line = {"content": f"line {i}: the memory of an import that is killed half-way, topic {i % 37}"}
            if with_ids:
                line["id"] = str(uuid5(namespace, str(i)))
            out.write(json.dumps(line) + "\n")
    tenant_name = unique("killed")
    argv = [
        "import",
        str(path),
        "--tenant",
        tenant_name,
        "--user",
        "u",
        "--create",
        "--embedding-model",
        "test-hashing",
        "--batch-size",
        str(BATCH),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "core", *argv],
        cwd=ROOT,
        env={**os.environ, "MEMEX_DATA_DIR": data_dir},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 180
        while rows_of(superuser, tenant_name)[0] == 0:  # poll until the first batch has committed
            assert proc.poll() is None, f"the import ended before it could be killed: {proc.stderr.read().decode()}"
            assert time.monotonic() < deadline, "no batch committed within the deadline"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        _forget_dead_process(db, proc.pid)
    FIGURES["processes killed mid-import"] += 1
    rows, ids, contents, counter = rows_of(superuser, tenant_name)
    FIGURES["rows kept by killed imports"] += rows
    assert rows % BATCH == 0 and 0 < rows < LINES, rows  # whole batches only, and it really was cut short
    assert ids == contents == counter == rows
    assert main(argv) == 0
    capsys.readouterr()
    assert rows_of(superuser, tenant_name) == (LINES, LINES, LINES, LINES)  # exactly the file, no duplicate
    assert main(argv) == 0  # and a third run changes nothing
    capsys.readouterr()
    assert rows_of(superuser, tenant_name) == (LINES, LINES, LINES, LINES)


def _forget_dead_process(db: Database, pid: int) -> None:
    """A SIGKILLed process never takes itself off pgserver's list of the processes using the data
    directory; take it off now (any process does at start and exit) so that the server of the test
    session stops when the session ends."""
    assert db.embedded is not None
    db.embedded.forget_dead_handles()
    assert pid not in db.embedded.handle_pids()


# The embedded server stops with the last process using it ------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_a_sigterm_to_memex_serve_stops_the_embedded_server_and_leaves_no_dead_pid(tmp_path: Path, workers: int) -> None:
    """A service manager (and `make run`'s trap) stops `memex serve` with SIGTERM: the postgres of a
    data directory nobody else uses must stop with it, and its list of users must name no dead
    process (with one, no later process was ever the last, and the server never stopped). A pid of
    a process gone without a word (SIGKILL) is in the list before the start, and must be dropped."""
    data_dir = tmp_path / "data"
    env = child_env(MEMEX_DATA_DIR=str(data_dir))
    subprocess.run([sys.executable, "-m", "core", "migrate"], cwd=ROOT, env=env, check=True, capture_output=True)
    pgdata = (data_dir / "pg").resolve()
    assert not (pgdata / "postmaster.pid").exists()  # migrate, the last process, stopped it
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (pgdata / ".handle_pids.json").write_text(json.dumps([gone.pid]))
    memex = [sys.executable, "-m", "core"]
    made = subprocess.run(
        [*memex, "keys", "create", "--tenant", "t", "--user", "u", "--store", "s", "--json"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )

    server = start_server(tmp_path / "serve.log", workers=workers, env=env)
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    assert psutil.pid_exists(postmaster)
    with client(server.url, json.loads(made.stdout)["key"]) as http:  # answered, its log entry not yet written
        assert http.post("/v1/search", json={"query": "the last search before the stop"}).status_code == 200
    stop_server(server)
    deadline = time.monotonic() + 60
    while _running_postgres(postmaster, pgdata) and time.monotonic() < deadline:
        time.sleep(0.2)
    try:
        assert not _running_postgres(postmaster, pgdata), f"postgres of {pgdata} outlived memex serve (exit {server.proc.returncode})"
        handles = json.loads((pgdata / ".handle_pids.json").read_text() or "[]")
        assert [pid for pid in handles if not psutil.pid_exists(pid)] == []
    finally:
        if _running_postgres(postmaster, pgdata):
            psutil.Process(postmaster).kill()
    # the worker wrote the search's log entry before it ended (lifespan's end, or atexit for one worker)
    listed = subprocess.run(
        [*memex, "log", "list", "--tenant", "t", "--user", "u", "--json"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    assert [entry["query"] for entry in json.loads(listed.stdout)] == ["the last search before the stop"]


def _running_postgres(pid: int, pgdata: Path) -> bool:
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and str(pgdata) in proc.cmdline()
    except psutil.NoSuchProcess:
        return False


# Expiry as concurrent searches see it --------------------------------------------------------------------


def test_expiring_a_memory_again_never_hands_it_back_to_a_search_that_began_after_it_expired(db: Database, svc, store) -> None:
    """now() is the time a transaction began. A second "expire now" used to move expires_at to its
    own, later, now(): a search that began between the two saw the expired memory as live again
    (the load test below caught it in hybrid mode, whose second statement leaves the window)."""
    from core.search import SearchParams
    from core.service.search import run_search
    from core.sql.stores import fetch as fetch_store

    memory = svc.add_memory(store.id, "memo expired once")
    svc.expire_memories([memory.id])
    first_expiry = svc.get_memory(memory.id).expires_at
    vector = svc.embed_query(store, "memo expired once")
    with db.tenant(svc.tenant_id) as conn:  # the search's transaction begins after the expiry
        svc.expire_memories([memory.id])  # "expire now" again, in a transaction that begins later
        results = run_search(
            conn,
            fetch_store(conn, store.id),
            "memo expired once",
            vector,
            SearchParams(limit=10, min_similarity=-1, mode="hybrid").checked(),
            record_access=False,
        ).results
    assert results == []
    assert svc.get_memory(memory.id).expires_at == first_expiry  # expiring again kept the first expiry


# Load: 8 threads for 30 seconds on one store -----------------------------------------------------------

THREADS, SECONDS = 8, 30


def test_eight_threads_adding_deleting_expiring_and_searching_one_store_for_30_seconds(db: Database, svc, store, superuser, tenant) -> None:
    lock = threading.Lock()
    added: set[UUID] = set()
    alive: list[UUID] = []
    gone: set[UUID] = set()  # deleted or expired, as soon as the call that did it returned
    returned: set[UUID] = set()  # every id any search returned
    net = Counter()
    errors: list[BaseException] = []
    end = time.monotonic() + SECONDS

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
        try:
            while time.monotonic() < end:
                op = rng.random()
                if op < 0.35:
                    n = rng.choice([1, 1, 3, 8])
                    memories = svc.add_memories(store.id, [NewMemory(f"memo {rng.choice(words)} {seed} {rng.random()}") for _ in range(n)])
                    with lock:
                        added.update(m.id for m in memories)
                        alive.extend(m.id for m in memories)
                        net["added"] += len(memories)
                        net["ops"] += 1
                elif op < 0.6:
                    with lock:
                        picked = rng.sample(alive, min(len(alive), rng.choice([1, 2, 5])))
                    deleted = svc.delete_memories(picked)
                    with lock:
                        gone.update(picked)
                        net["deleted"] += deleted
                        net["ops"] += 1
                        for i in picked:
                            if i in alive:
                                alive.remove(i)
                elif op < 0.7:
                    with lock:
                        picked = rng.sample(alive, min(len(alive), 2))
                    svc.expire_memories(picked)
                    with lock:
                        gone.update(picked)
                        net["ops"] += 1
                else:
                    with lock:
                        gone_before = set(gone)
                    results = svc.search_memories(
                        store.id,
                        f"memo {rng.choice(words)}",
                        limit=20,
                        min_similarity=-1,
                        record_access=rng.random() < 0.5,
                        mode=rng.choice(["vector", "hybrid"]),
                    )
                    ids = {r.memory.id for r in results}
                    assert not ids & gone_before, "a search returned a memory deleted or expired before it started"
                    assert all(r.memory.store_id == store.id and r.memory.tenant_id == svc.tenant_id for r in results)
                    assert all(not r.memory.archived for r in results)
                    with lock:
                        returned.update(ids)
                        net["searches"] += 1
                        net["ops"] += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(seed,), name=f"load-{seed}") for seed in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=SECONDS + 120)
    assert not [t.name for t in threads if t.is_alive()], "a thread is stuck: deadlock or hang"
    assert not errors, repr(errors[0])
    FIGURES["load: operations"] += net["ops"]
    FIGURES["load: searches"] += net["searches"]
    FIGURES["load: memories added"] += net["added"]
    FIGURES["load: memories deleted"] += net["deleted"]
    assert returned <= added  # nothing that was never added to this store
    assert net["ops"] > THREADS  # every thread did work
    rows, ids, _, counter = rows_of(superuser, tenant.name)
    assert rows == ids == counter == net["added"] - net["deleted"]
    assert svc.get_store(store.id).total_memories == rows
