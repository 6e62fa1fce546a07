"""The console's sign-in sessions, each standing for one API token. Only the SHA-256 of a session's cookie value
is stored, as for tokens: a copy of the table signs nobody in."""

from __future__ import annotations

from sqlalchemy import delete, insert, select

from knotflow.store import tables as t
from knotflow.store.base import Repository
from knotflow.store.records import ConsoleSession, Token
from knotflow.store.tokens import token_from_row


class SessionStore(Repository):
    async def add_session(self, session: ConsoleSession) -> None:
        """Store a new session, and drop the expired ones while at it (they are never read again)."""
        s = t.console_sessions
        async with self._writer.begin() as conn:
            await conn.execute(delete(s).where(s.c.expires_at < session.created_at))
            await conn.execute(insert(s).values(id_hash=session.id_hash, token_id=session.token_id,
                                                csrf=session.csrf, created_at=session.created_at,
                                                expires_at=session.expires_at))

    async def session_token(self, id_hash: str, now: float) -> tuple[ConsoleSession, Token] | None:
        """The unexpired session with this hash and the token it stands for (None when either is gone)."""
        s = t.console_sessions
        query = (
            select(s, t.tokens)
            .join(t.tokens, t.tokens.c.id == s.c.token_id)
            .where(s.c.id_hash == id_hash, s.c.expires_at > now)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        if row is None:
            return None
        session = ConsoleSession(id_hash=row["id_hash"], token_id=row["token_id"], csrf=row["csrf"],
                                 created_at=row["created_at"], expires_at=row["expires_at"])
        return session, token_from_row(row)

    async def delete_session(self, id_hash: str) -> None:
        s = t.console_sessions
        async with self._writer.begin() as conn:
            await conn.execute(delete(s).where(s.c.id_hash == id_hash))
