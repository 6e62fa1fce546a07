"""Coze's error envelope, and the log id every response carries."""

from __future__ import annotations

import os
import time
from typing import Any

from starlette.responses import Response

from knotflow.dsl import jsonutil

LOGID_HEADER = "x-tt-logid"
# knotflow's own (cozepy ignores it): the run a stream belongs to, known from the first byte.
EXECUTE_ID_HEADER = "X-Knotflow-Execute-Id"


def new_logid() -> str:
    """Coze's format: yyyyMMddHHmmss followed by 20 uppercase hex digits."""
    return time.strftime("%Y%m%d%H%M%S") + os.urandom(10).hex().upper()


class JSONBody(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return jsonutil.dumpb(content)


def ok(data: Any, logid: str) -> Response:
    return JSONBody({"code": 0, "msg": "", "data": data, "detail": {"logid": logid}}, headers={LOGID_HEADER: logid})


def error(code: int, msg: str, logid: str, **extra: Any) -> Response:
    body = {"code": code, "msg": msg, "detail": {"logid": logid}, **extra}
    return JSONBody(body, status_code=200, headers={LOGID_HEADER: logid})
