"""Checks on everything a caller hands in, before any of it reaches the database.

Each check raises InvalidInput with one line that names the field and what is wrong with it; the
database's own constraints stay as the second line of defence.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import numpy as np

from core.errors import InvalidInput

MAX_CONTENT_CHARS = 100_000
MAX_QUERY_CHARS = 10_000
MAX_METADATA_BYTES = 64 * 1024
MAX_METADATA_DEPTH = 16
MAX_LIMIT = 1000

# C0 controls except tab, newline and carriage return; NUL included (PostgreSQL text refuses it).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _preview(value: Any, width: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def text_field(value: Any, field: str, max_chars: int, *, allow_newlines: bool = True) -> str:
    """A non-blank string without control characters, at most `max_chars` long."""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string, not {type(value).__name__}")
    if not value.strip():
        raise InvalidInput(f"{field} is empty")
    if len(value) > max_chars:
        raise InvalidInput(f"{field} is {len(value):,} characters long; the limit is {max_chars:,}")
    match = _CONTROL.search(value) or (None if allow_newlines else re.search(r"[\t\n\r]", value))
    if match:
        raise InvalidInput(f"{field} contains the control character {match.group()!r} at position {match.start()}")
    _check_utf8(value, field)
    return value


def _check_utf8(value: str, field: str) -> None:
    """A lone surrogate (JSON's "\\ud800" decodes to one) cannot be stored as UTF-8: refuse it here,
    not at the INSERT, where an import would fail after its earlier batches were written."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{field} contains a lone surrogate {value[exc.start]!r} at position {exc.start}, not text") from None


def content(value: Any) -> str:
    return text_field(value, "content", MAX_CONTENT_CHARS)


def query(value: Any) -> str:
    return text_field(value, "query", MAX_QUERY_CHARS)


def label(value: Any, field: str, max_chars: int) -> str:
    """Names and types: one line, trimmed."""
    return text_field(value, field, max_chars, allow_newlines=False).strip()


def optional_label(value: Any, field: str, max_chars: int) -> str | None:
    return None if value is None else label(value, field, max_chars)


def unit_interval(value: Any, field: str) -> float:
    """A finite number in [0, 1], rounded to the two decimals the column keeps."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(f"{field} must be a number between 0 and 1, not {_preview(value)}")
    if not math.isfinite(value) or not 0 <= value <= 1:
        raise InvalidInput(f"{field} must be between 0 and 1, not {value}")
    return round(float(value), 2)


def similarity(value: Any, field: str = "min_similarity") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not -1 <= value <= 1:
        raise InvalidInput(f"{field} must be a number between -1 and 1, not {_preview(value)}")
    return float(value)


def limit(value: Any, field: str = "limit", maximum: int = MAX_LIMIT) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise InvalidInput(f"{field} must be a whole number from 1 to {maximum}, not {_preview(value)}")
    return value


def flag(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{field} must be true or false, not {_preview(value)}")
    return value


def uuid(value: Any, what: str) -> UUID:
    """A UUID from a UUID or its text; a malformed one is refused before any query."""
    if isinstance(value, UUID):
        return value
    if isinstance(value, str):
        try:
            return UUID(value.strip())
        except ValueError:
            pass
    raise InvalidInput(f"{what} {_preview(value)} is not a valid UUID")


def maybe_uuid(value: Any) -> UUID | None:
    """The UUID that `value` spells, or None when it is a name rather than an id."""
    try:
        return uuid(value, "id")
    except InvalidInput:
        return None


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def metadata(value: Any) -> dict[str, Any]:
    """A JSON object of bounded size and depth, with no NUL anywhere (jsonb refuses \\u0000)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"metadata must be a JSON object, not {type(value).__name__}")
    if _depth(value) > MAX_METADATA_DEPTH:
        raise InvalidInput(f"metadata is nested deeper than {MAX_METADATA_DEPTH} levels")
    try:
        encoded = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"metadata is not valid JSON: {exc}") from None
    _check_utf8(json.dumps(value, ensure_ascii=False), "metadata")
    if len(encoded.encode()) > MAX_METADATA_BYTES:
        raise InvalidInput(f"metadata is {len(encoded.encode()):,} bytes as JSON; the limit is {MAX_METADATA_BYTES:,}")
    if "\\u0000" in encoded:
        raise InvalidInput("metadata contains a NUL character")
    return value


def timestamp(value: Any, field: str) -> datetime | None:
    """A timezone-aware datetime from a datetime or ISO 8601 text; naive values are taken as UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(f"{field} {_preview(value)} is not an ISO 8601 timestamp") from None
    if not isinstance(value, datetime):
        raise InvalidInput(f"{field} must be a timestamp, not {type(value).__name__}")
    if not 1900 <= value.year <= 9999:
        raise InvalidInput(f"{field} {value.isoformat()} is out of range")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def embedding(value: Any, dim: int) -> np.ndarray:
    """A finite, non-zero vector of exactly `dim` numbers (cosine distance is undefined for zero)."""
    try:
        vector = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise InvalidInput(f"embedding must be a list of {dim} numbers") from None
    if vector.ndim != 1 or vector.shape[0] != dim:
        got = vector.shape[0] if vector.ndim == 1 else f"shape {vector.shape}"
        raise InvalidInput(f"embedding has {got} dimensions; this store's model produces {dim}")
    _check_rows(vector.reshape(1, dim), single=True)
    return vector


def embeddings(value: Any, dim: int, rows: int) -> np.ndarray:
    """`rows` vectors of `dim` numbers as a float32 array, each by the rules of `embedding`;
    the message names the first bad row."""
    try:
        vectors = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise InvalidInput(f"embeddings must be {rows} lists of {dim} numbers") from None
    if vectors.shape != (rows, dim):
        raise InvalidInput(f"embeddings have shape {vectors.shape}; {rows} memories of this store need ({rows}, {dim})")
    _check_rows(vectors, single=False)
    return vectors


def _check_rows(vectors: np.ndarray, *, single: bool) -> None:
    finite = np.isfinite(vectors).all(axis=1)
    nonzero = vectors.any(axis=1)
    if (finite & nonzero).all():
        return
    row = int(np.argmin(finite & nonzero))
    what = "contains NaN or infinite values" if not finite[row] else "is all zeros; cosine similarity is undefined for it"
    raise InvalidInput(f"embedding {what}" if single else f"memory {row + 1}: embedding {what}")
