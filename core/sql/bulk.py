"""Binary COPY of many memories into a staging table of the transaction.

PostgreSQL refuses COPY FROM into a table whose row-level security applies to the caller
("COPY FROM not supported with row-level security", SQLSTATE 0A000, checked on PostgreSQL 18 as
memex_app), and memories has RLS forced for every role. So rows go by binary COPY into a
temporary staging table, chunk by chunk, and core.sql.memories moves each chunk into memories
with one INSERT ... SELECT ... ON CONFLICT: the policy's WITH CHECK, the constraints, the foreign
key to the store and the statement-level counter triggers apply exactly as for any insert.

Measured (docs/BENCHMARKS.md): for 50k rows the COPY into staging took 0.2 s and the INSERT ...
SELECT 2.0 s, which is the generated tsvector, the foreign key, two GIN and two btree indexes,
the heap and its WAL (and the HNSW index, unless a bulk load drops it first).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import orjson
from psycopg.adapt import Dumper
from psycopg.copy import Copy, FileWriter
from psycopg.pq import Format
from sqlalchemy import Connection, text

from core.fields import DEFAULTS, FIELDS, MemoryColumns

# Rows per COPY + INSERT round: bounds the staging table (temp_buffers is 8MB by default) and the
# statement's transition table, without costing throughput (see docs/BENCHMARKS.md).
CHUNK_ROWS = 5_000
STAGING = "memex_bulk_staging"
# metadata travels as text and is cast by the move (a binary jsonb dump would need its own dumper)
_TYPES = [("text" if f.sql_type == "jsonb" else f.sql_type) for f in FIELDS]
_CREATE = text(
    f"CREATE TEMP TABLE IF NOT EXISTS {STAGING} (" + ", ".join(f"{f.name} {t}" for f, t in zip(FIELDS, _TYPES)) + ") ON COMMIT DROP"
)
_COPY = f"COPY {STAGING} ({', '.join(f.name for f in FIELDS)}) FROM STDIN (FORMAT BINARY)"


def _raw_dumper(oid: int) -> type[Dumper]:
    """A binary dumper that sends bytes already in the type's wire format (vectors, encoded below
    for a whole chunk at once with numpy instead of one Python object per row)."""
    return type("RawBinaryDumper", (Dumper,), {"format": Format.BINARY, "oid": oid, "dump": lambda self, obj: obj})


def _vector_wire(vectors: np.ndarray) -> list[bytes]:
    """pgvector's binary format of each row: int16 dim, int16 unused, dim big-endian float4."""
    n, dim = vectors.shape
    wire = np.empty((n, 4 + 4 * dim), dtype=np.uint8)
    wire[:, :4] = np.frombuffer(np.array([dim, 0], dtype=">u2").tobytes(), dtype=np.uint8)
    wire[:, 4:] = vectors.astype(">f4").view(np.uint8).reshape(n, 4 * dim)
    return [row.tobytes() for row in wire]


def _json(metadata: dict[str, Any] | None) -> str:
    """Checked metadata as JSON text: orjson (a tenth of json's time), json for what it leaves
    to json (integers beyond 64 bits)."""
    try:
        return orjson.dumps(metadata or {}, option=orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(metadata or {})


def _encode(raw: Any, vector_oid: int, rows: MemoryColumns) -> bytes:
    """The rows as a whole binary COPY stream in the staging table's column order, formatted by
    psycopg (FileWriter: no statement runs) so that the thread that sends it only sends it."""
    n = len(rows)
    columns: list[Any] = []
    for field in FIELDS:
        values = getattr(rows, field.name)
        if field.name == "embedding":
            columns.append(_vector_wire(values))
        elif values is None:
            default = DEFAULTS[field.name]
            columns.append([json.dumps(default or {}) if field.name == "metadata" else default] * n)
        elif field.name == "metadata":
            columns.append([_json(m) for m in values])
        else:
            columns.append(values.tolist() if isinstance(values, np.ndarray) else values)
    out = io.BytesIO()
    with raw.cursor() as cur:
        cur.adapters.register_dumper(None, _raw_dumper(vector_oid))
        with Copy(cur, binary=True, writer=FileWriter(out)) as copy:
            copy.set_types(_TYPES)
            for row in zip(*columns):
                copy.write_row(row)
    return out.getvalue()


def staged(conn: Connection, chunks: Iterable[MemoryColumns]) -> Iterator[int]:
    """COPY each chunk of checked rows into the staging table; yields its size once it is staged,
    for the caller to move it. The next chunk replaces it; the table is gone at commit.

    The next chunk is made (a file's next lines read and checked, for an import) and encoded in a
    helper thread while the server moves this one: the wait for the server releases the GIL, so
    the client's share of the work mostly disappears behind the server's, and the server is not
    left idle while rows are formatted."""
    raw: Any = conn.connection.driver_connection  # psycopg's connection: COPY is its own API
    conn.execute(_CREATE)
    conn.execute(text(f"TRUNCATE {STAGING}"))
    vector_oid = raw.adapters.types["vector"].oid
    pending = iter(chunks)

    def next_encoded() -> tuple[int, bytes] | None:
        for rows in pending:
            if len(rows):
                return len(rows), _encode(raw, vector_oid, rows)
        return None

    with ThreadPoolExecutor(1) as helper:
        ahead: Future[tuple[int, bytes] | None] = helper.submit(next_encoded)
        first = True
        while (chunk := ahead.result()) is not None:
            if not first:
                conn.execute(text(f"TRUNCATE {STAGING}"))
            first = False
            with raw.cursor() as cur, cur.copy(_COPY) as copy:
                copy.write(chunk[1])
            # the next chunk is made only now, while the caller moves this one: psycopg sends a
            # COPY in 128 KB pieces, each waiting for the GIL that a parsing helper holds 5 ms at a
            # time, and a 2,000-row COPY took 100 ms beside it instead of 20
            ahead = helper.submit(next_encoded)
            yield chunk[0]
