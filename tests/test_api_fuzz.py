"""Every operation of the OpenAPI schema fuzzed with Schemathesis against the live `memex serve`,
with a valid key of a tenant of its own: valid and invalid data, every default check (no 5xx,
status codes, content types, headers and bodies as the schema says, invalid data refused, the key
enforced, ...). A fixed seed; bounded by the examples per operation (about a minute in all)."""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

import pytest
import schemathesis

from core import admin
from core.api.app import create_app
from core.db import get_database
from tests.api_support import Server
from tests.conftest import unique

if os.environ.get("PYTEST_XDIST_WORKER"):  # its cases share one test id: pytest-xdist would run one of them
    raise pytest.UsageError("run tests/test_api_fuzz.py without -n (make test runs it on its own)")

config = schemathesis.Config.from_dict(
    {
        "seed": int(os.environ.get("MEMEX_FUZZ_SEED", "20261125")),
        "generation": {"max-examples": int(os.environ.get("MEMEX_FUZZ_EXAMPLES", "12")), "mode": "all"},
        "checks": {
            # A valid request is not promised a 2xx: an id that exists nowhere is 404, a user other
            # than a bound one 403, an existing store with another model 409, and the service's own
            # rules (a blank content, a request that names no user) 422.
            "positive_data_acceptance": {"expected-statuses": [200, 201, 204, 403, 404, 409, 422]},
        },
        "operations": [
            {
                # with skip_bad=true an import reports a bad line and goes on (200): by design, so
                # a line that breaks the schema is not "rejected" in the sense of this check
                "include-path": "/v1/import",
                "checks": {"negative_data_rejection": {"enabled": False}},
            }
        ],
    }
)
# the schema the server serves, made by the same code (from_dict: cases go out over real HTTP)
schema = schemathesis.openapi.from_dict(create_app(get_database()).openapi(), config=config)


@cache
def fuzz_key() -> str:
    """A key of a tenant of the fuzzer's own, bound to nothing: requests name users and stores."""
    db = get_database()
    return admin.create_key(db, admin.create_tenant(db, unique("fuzz")).id, name="schemathesis")[1]


@schema.auth()
class ApiKey:
    def get(self, case: schemathesis.Case, ctx: Any) -> str:
        return fuzz_key()

    def set(self, case: schemathesis.Case, data: str, ctx: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx: Any, value: Any) -> bytes:
    """The import body: the array the schema describes as one JSON value a line."""
    if isinstance(value, list):
        return b"".join(json.dumps(item).encode() + b"\n" for item in value)
    if isinstance(value, bytes):
        return value
    return json.dumps(value).encode()


@schema.parametrize()
def test_every_operation(case: schemathesis.Case, api_server: Server) -> None:
    case.call_and_validate(base_url=api_server.url)


def test_nothing_the_fuzzer_sent_made_the_server_fail(api_server: Server) -> None:
    """Runs after the fuzzing (pytest keeps the file's order): a failure logs a traceback."""
    assert "Traceback" not in api_server.log.read_text(errors="replace")
