"""Console sign-in: a person proves they hold an API token once and gets a session that stands for it.

The browser keeps the session's id in an HttpOnly cookie; the store keeps only its SHA-256 (as for tokens), the
token it stands for, its expiry and a CSRF token, which the console sends back on every change (a cookie alone
never suffices to change anything). The token itself is never stored in the browser.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from knotflow.errors import Unauthenticated
from knotflow.service.tokens import find_token
from knotflow.store.records import ConsoleSession, Token
from knotflow.store.repository import Store


@dataclass(slots=True, frozen=True)
class SignedIn:
    session_id: str  # the cookie's value: shown to the browser only
    session: ConsoleSession
    token: Token


ACTIVE = "active"  # Token.status of a token that works


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class ConsoleSessions:
    def __init__(self, store: Store, ttl: float) -> None:
        self._store = store
        self.ttl = ttl

    async def sign_in(self, plaintext_token: str) -> SignedIn:
        token = await find_token(self._store, plaintext_token.strip())
        if token is None:
            raise Unauthenticated("the token is unknown")
        status = token.status(time.time())
        if status != ACTIVE:
            raise Unauthenticated(f"the token {token.name!r} {'was revoked' if status == 'revoked' else 'expired'}")
        session_id = secrets.token_urlsafe(32)
        now = time.time()
        session = ConsoleSession(id_hash=_hash(session_id), token_id=token.id, csrf=secrets.token_urlsafe(32),
                                 created_at=now, expires_at=now + self.ttl)
        await self._store.add_session(session)
        return SignedIn(session_id, session, token)

    async def resolve(self, session_id: str) -> tuple[ConsoleSession, Token] | None:
        """The live session with this id and its token; None for an unknown, expired or signed-out one, and for
        one whose token was revoked or expired since."""
        if not session_id:
            return None
        now = time.time()
        found = await self._store.session_token(_hash(session_id), now)
        return found if found is not None and found[1].status(now) == ACTIVE else None

    async def sign_out(self, session_id: str) -> None:
        await self._store.delete_session(_hash(session_id))
