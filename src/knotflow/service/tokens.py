"""API tokens: `pat_` + 48 url-safe characters, shown once and stored only as their SHA-256 hash."""

from __future__ import annotations

import hashlib
import re
import secrets
import time

from knotflow.errors import BadRequest, NotFound
from knotflow.ids import new_id
from knotflow.service.access import PERMISSIONS
from knotflow.store.records import Token
from knotflow.store.repository import Store

TOKEN_PREFIX = "pat_"


def hash_token(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


async def create_token(store: Store, name: str, permissions: list[str],
                       space_ids: list[str] | None, expires_at: float | None = None) -> tuple[Token, str]:
    """A new token; returns its record and its plaintext (the one time it is known). Checks nothing: see
    `issue_token` for what an operator asks for."""
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(36)
    token = Token(id=new_id(), name=name, permissions=list(permissions),
                  space_ids=None if space_ids is None else list(space_ids), created_at=int(time.time()),
                  expires_at=expires_at)
    await store.add_token(token, hash_token(plaintext))
    return token, plaintext


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """`30d`, `12h`, `90m`, `3600s` or `3600` (seconds) as seconds; more than zero."""
    match = _DURATION.fullmatch(text.strip().lower())
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)] if match else 0.0
    if seconds <= 0:
        raise BadRequest(f"{text!r} is no duration: write e.g. 30d, 12h, 90m or 3600s (more than zero)")
    return seconds


async def issue_token(store: Store, name: str, permissions: list[str], space_ids: list[str] | None,
                      expires_in: float | None = None) -> tuple[Token, str]:
    """A token as an operator asks for it: a name, known permissions, spaces that exist, an optional lifetime."""
    if not name.strip():
        raise BadRequest("a token needs a non-empty name")
    unknown = [permission for permission in permissions if permission not in PERMISSIONS]
    if unknown:
        raise BadRequest(f"unknown permission {', '.join(map(repr, unknown))}: a token may have "
                         f"{', '.join(sorted(PERMISSIONS))}")
    if space_ids is not None:
        missing = [space_id for space_id in space_ids if await store.get_space(space_id) is None]
        if missing:
            known = ", ".join(space.id for space in await store.list_spaces()) or "none yet"
            raise BadRequest(
                f"space {', '.join(missing)} does not exist (spaces: {known}); a space is created by importing a "
                "workflow into it: knotflow workflow import FILE --space ID")
    expires_at = None if expires_in is None else time.time() + expires_in
    return await create_token(store, name.strip(), permissions, space_ids, expires_at)


async def revoke_token(store: Store, token_id: str) -> Token:
    """Revoke a token for good (it stops working within the server's 5-second token cache)."""
    token = await store.revoke_token(token_id, time.time())
    if token is None:
        raise NotFound(f"token {token_id} does not exist (knotflow token list shows them)")
    return token


async def find_token(store: Store, plaintext: str) -> Token | None:
    if not plaintext.startswith(TOKEN_PREFIX):
        return None
    return await store.token_by_hash(hash_token(plaintext))
