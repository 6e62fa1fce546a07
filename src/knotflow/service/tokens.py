"""API tokens: `pat_` + 48 url-safe characters, shown once and stored only as their SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets
import time

from knotflow.ids import new_id
from knotflow.store.records import Token
from knotflow.store.repository import Store

TOKEN_PREFIX = "pat_"


def hash_token(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


async def create_token(store: Store, name: str, permissions: list[str],
                       space_ids: list[str] | None) -> tuple[Token, str]:
    """A new token; returns its record and its plaintext (the one time it is known)."""
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(36)
    token = Token(id=new_id(), name=name, permissions=list(permissions),
                  space_ids=None if space_ids is None else list(space_ids), created_at=int(time.time()))
    await store.add_token(token, hash_token(plaintext))
    return token, plaintext


async def find_token(store: Store, plaintext: str) -> Token | None:
    if not plaintext.startswith(TOKEN_PREFIX):
        return None
    return await store.token_by_hash(hash_token(plaintext))
