"""Spaces and API tokens. Tokens are stored by the hash of their plaintext, which only the service sees."""

from __future__ import annotations

import time

from sqlalchemy import RowMapping, func, insert, select, update

from knotflow.dsl import jsonutil
from knotflow.ids import new_id
from knotflow.store import tables as t
from knotflow.store.base import Repository, dumps
from knotflow.store.records import Space, Token


def _space(row: RowMapping) -> Space:
    return Space(id=row["id"], name=row["name"], created_at=int(row["created_at"]))


def token_from_row(row: RowMapping) -> Token:
    space_ids = row["space_ids"]
    return Token(
        id=row["id"],
        name=row["name"],
        permissions=list(jsonutil.loads(row["permissions"])),
        space_ids=None if space_ids is None else list(jsonutil.loads(space_ids)),
        created_at=int(row["created_at"]),
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )


class TokenStore(Repository):
    async def ensure_space(self, space_id: str | None = None, name: str = "Personal") -> Space:
        """The space with this id, created if absent; with no id, the first space (created if none)."""
        query = select(t.spaces)
        query = (
            query.where(t.spaces.c.id == space_id)
            if space_id is not None
            else query.order_by(t.spaces.c.created_at, t.spaces.c.id).limit(1)
        )
        async with self._writer.begin() as conn:
            row = (await conn.execute(query)).mappings().first()
            if row is not None:
                return _space(row)
            now = time.time()
            space = Space(id=space_id or new_id(), name=name, created_at=int(now))
            await conn.execute(
                self._insert(t.spaces)
                .values(id=space.id, name=space.name, created_at=now)
                .on_conflict_do_nothing(index_elements=[t.spaces.c.id])
            )
        return space

    async def get_space(self, space_id: str) -> Space | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(t.spaces).where(t.spaces.c.id == space_id))).mappings().first()
        return None if row is None else _space(row)

    async def add_token(self, token: Token, token_hash: str) -> None:
        async with self._writer.begin() as conn:
            await conn.execute(
                insert(t.tokens).values(
                    id=token.id,
                    name=token.name,
                    token_hash=token_hash,
                    permissions=dumps(token.permissions),
                    space_ids=None if token.space_ids is None else dumps(token.space_ids),
                    created_at=token.created_at,
                    expires_at=token.expires_at,
                    revoked_at=token.revoked_at,
                )
            )

    async def list_tokens(self) -> list[Token]:
        """Every token, oldest first (never their hashes)."""
        query = select(t.tokens).order_by(t.tokens.c.created_at, t.tokens.c.id)
        async with self._engine.connect() as conn:
            return [token_from_row(row) for row in (await conn.execute(query)).mappings().all()]

    async def revoke_token(self, token_id: str, at: float) -> Token | None:
        """Mark the token revoked at `at` (kept if it already was); None when there is no such token."""
        async with self._writer.begin() as conn:
            await conn.execute(update(t.tokens).where(t.tokens.c.id == token_id, t.tokens.c.revoked_at.is_(None))
                               .values(revoked_at=at))
            row = (await conn.execute(select(t.tokens).where(t.tokens.c.id == token_id))).mappings().first()
        return None if row is None else token_from_row(row)

    async def token_by_hash(self, token_hash: str) -> Token | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(t.tokens).where(t.tokens.c.token_hash == token_hash))).mappings().first()
        return None if row is None else token_from_row(row)

    async def list_spaces(self, space_ids: list[str] | None = None) -> list[Space]:
        """The spaces with these ids that exist (every space for None), oldest first."""
        query = select(t.spaces).order_by(t.spaces.c.created_at, t.spaces.c.id)
        if space_ids is not None:
            query = query.where(t.spaces.c.id.in_(space_ids))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_space(row) for row in rows]

    async def count_tokens(self) -> int:
        async with self._engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(t.tokens))).scalar_one())
