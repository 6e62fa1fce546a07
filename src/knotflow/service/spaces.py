"""The space a request that names none works in (an upload, a conversation created on its own)."""

from __future__ import annotations

from knotflow.errors import PermissionDenied
from knotflow.store.records import Token
from knotflow.store.repository import Store


async def token_space(store: Store, token: Token) -> str:
    """The token's first space, or the default space for a token that may use every space."""
    if token.space_ids is None:
        return (await store.ensure_space()).id
    if not token.space_ids:
        raise PermissionDenied("the token has no access to any space")
    # ensure_space: a token may name a space that has no row yet, and rows that belong to a space reference it.
    return (await store.ensure_space(token.space_ids[0])).id
