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

import json
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import orjson
from psycopg.adapt import Dumper
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


def _chunk(rows: MemoryColumns, start: int, stop: int) -> list[tuple[Any, ...]]:
    """Rows start..stop as tuples in the staging table's column order, ready for COPY."""
    columns: list[Any] = []
    for field in FIELDS:
        values = getattr(rows, field.name)
        if field.name == "embedding":
            columns.append(_vector_wire(values[start:stop]))
        elif values is None:
            default = DEFAULTS[field.name]
            columns.append([json.dumps(default or {}) if field.name == "metadata" else default] * (stop - start))
        elif field.name == "metadata":
            columns.append([_json(m) for m in values[start:stop]])
        else:
            part = values[start:stop]
            columns.append(part.tolist() if isinstance(part, np.ndarray) else part)
    return list(zip(*columns))


def staged_chunks(conn: Connection, rows: MemoryColumns, chunk_rows: int = CHUNK_ROWS) -> Iterator[int]:
    """COPY checked rows into the staging table a chunk at a time; yields each chunk's size once it
    is staged, for the caller to move it. The next chunk replaces it; the table is gone at commit.

    The next chunk is encoded in a helper thread while the server inserts this one (the wait for
    the server releases the GIL): the client's share of the work mostly disappears."""
    n = len(rows)
    raw: Any = conn.connection.driver_connection  # psycopg's connection: COPY is its own API
    conn.execute(_CREATE)
    conn.execute(text(f"TRUNCATE {STAGING}"))
    vector_oid = raw.adapters.types["vector"].oid
    with ThreadPoolExecutor(1) as helper:
        ahead: Future[list[tuple[Any, ...]]] = helper.submit(_chunk, rows, 0, min(n, chunk_rows))
        for start in range(0, n, chunk_rows):
            chunk = ahead.result()
            if start + chunk_rows < n:
                ahead = helper.submit(_chunk, rows, start + chunk_rows, min(n, start + 2 * chunk_rows))
            if start:
                conn.execute(text(f"TRUNCATE {STAGING}"))
            with raw.cursor() as cur:
                cur.adapters.register_dumper(None, _raw_dumper(vector_oid))
                with cur.copy(_COPY) as copy:
                    copy.set_types(_TYPES)
                    for row in chunk:
                        copy.write_row(row)
            yield len(chunk)
