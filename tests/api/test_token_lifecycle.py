"""An expired or revoked token is refused (4100) with the reason; an active one works."""

from __future__ import annotations

import time

import pytest
from cozepy import Coze, CozeAPIError, TokenAuth

from knotflow.service.tokens import create_token, revoke_token
from knotflow.store.repository import Store
from tests.api.conftest import LiveServer


def test_expired_and_revoked_tokens_are_refused(live: LiveServer) -> None:
    async def make(store: Store) -> tuple[str, str, str]:
        _, expired = await create_token(store, "expired", ["run"], None, expires_at=time.time() - 1)
        _, later = await create_token(store, "later", ["run"], None, expires_at=time.time() + 3600)
        revoked, revoked_plain = await create_token(store, "gone", ["run"], None)
        await revoke_token(store, revoked.id)
        return expired, later, revoked_plain

    expired, later, revoked = live.call(make)
    assert Coze(auth=TokenAuth(later), base_url=live.base_url).workflows.list().items is not None
    for plaintext, reason in ((expired, "token 'expired' expired"), (revoked, "token 'gone' was revoked")):
        with pytest.raises(CozeAPIError) as caught:
            Coze(auth=TokenAuth(plaintext), base_url=live.base_url).workflows.list()
        assert caught.value.code == 4100 and reason in caught.value.msg
