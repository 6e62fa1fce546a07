"""Bearer personal access tokens, looked up hashed, with a short cache so the hot path rarely hits the database.

A revocation announced on the signals (`knotflow token revoke` with Redis) drops the token from the cache at once;
without Redis a server notices it when its cache entry runs out."""

from __future__ import annotations

import time

from starlette.requests import Request

from knotflow.errors import Unauthenticated
from knotflow.service.tokens import find_token
from knotflow.store.records import Token
from knotflow.store.repository import Store


class Authenticator:
    def __init__(self, store: Store, cache_seconds: float) -> None:
        self._store = store
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[Token | None, float]] = {}

    async def __call__(self, request: Request) -> Token:
        header = request.headers.get("authorization", "")
        scheme, _, plaintext = header.partition(" ")
        plaintext = plaintext.strip()
        if scheme.lower() != "bearer" or not plaintext:
            raise Unauthenticated("authentication is invalid: send 'Authorization: Bearer <token>'")
        now = time.monotonic()
        cached = self._cache.get(plaintext)
        if cached is not None and cached[1] > now:
            token = cached[0]
        else:
            token = await find_token(self._store, plaintext)
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[plaintext] = (token, now + self._cache_seconds)
        if token is None:
            raise Unauthenticated("authentication is invalid: the token is unknown")
        status = token.status(time.time())
        if status != "active":
            raise Unauthenticated(f"authentication is invalid: the token {token.name!r} was revoked"
                                  if status == "revoked" else
                                  f"authentication is invalid: the token {token.name!r} expired")
        return token

    def forget(self, token_id: str) -> None:
        """Drop the token from the cache: its next request reads it again (a signal handler: never raises)."""
        for plaintext in [key for key, (token, _) in self._cache.items() if token is not None and token.id == token_id]:
            self._cache.pop(plaintext, None)
