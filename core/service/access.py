"""Who may open which tenant in the explorer, as PostgreSQL answers it (migration 012): the
explorer connects as memex_app and asks these functions; it cannot read the analysts or their
memberships itself. Tenant-scoped work then goes through MemoryService.for_analyst."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from core import validation
from core.db import Database, database_errors
from core.errors import Unauthenticated
from core.models import Membership
from core.passwords import matches
from core.sql import analysts

# Every wrong password costs this long, besides the lock the database sets after the third.
WRONG_PASSWORD_DELAY_S = 1.0


class Access:
    def __init__(self, db: Database):
        self.db = db

    def tenants(self, email: str) -> list[Membership]:
        """The tenants an analyst may open and the role in each (all of them for an operator)."""
        with database_errors(), self.db.app.begin() as conn:
            return analysts.tenants_of(conn, _email(email))

    def is_operator(self, email: str) -> bool:
        with database_errors(), self.db.app.begin() as conn:
            return analysts.is_operator(conn, _email(email))

    def sign_in(self, email: str, password: str) -> str:
        """The analyst's email when the password is theirs. Unauthenticated otherwise, in the
        same words for an unknown email and a wrong password; a locked account says until when."""
        address = _email(email)
        with database_errors(), self.db.app.begin() as conn:
            found = analysts.credentials(conn, address)
        if found is not None and found[1] is not None and found[1] > datetime.now(UTC):
            wait = int((found[1] - datetime.now(UTC)).total_seconds()) + 1
            raise Unauthenticated(f"too many wrong passwords: try again in {wait} s")
        if found is None or not matches(found[0], password):
            with database_errors(), self.db.app.begin() as conn:
                analysts.attempt(conn, address, False)
            time.sleep(WRONG_PASSWORD_DELAY_S)
            raise Unauthenticated("wrong email or password")
        with database_errors(), self.db.app.begin() as conn:
            analysts.attempt(conn, address, True)
        return address


def _email(email: str) -> str:
    return validation.label(email, "email", 320).lower()
