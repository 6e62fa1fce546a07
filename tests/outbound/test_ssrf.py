"""The SSRF battery through the real HTTP request node, the real guarded client and URL fetcher: loopback in every
spelling, and redirects from an allowed loopback server to loopback addresses that are not allowed, against
listeners that count every connection they accept. Every target is on loopback, so even a broken guard sends
nothing off this machine; private, link-local and metadata ranges are checked on the guard's decision alone
(test_guard.py)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.canvases import http_request, http_workflow, ref
from tests.fakes.http_target import HttpTarget, Reply
from tests.nodes.helpers import run_outbound

REFUSAL = r"non-public address|Invalid IPv4 address"


@pytest.fixture(scope="module")
def listeners() -> Iterator[dict[str, HttpTarget | None]]:
    """One port P on 127.0.0.1 and (if the machine has IPv6) on ::1, another on 127.0.0.2."""
    v4 = HttpTarget("127.0.0.1").start()
    v4.route("/hop", lambda request: Reply(int(request.query["status"][0]),
                                           headers=[("Location", request.query["to"][0])]))
    v4.route("/ok", Reply(body="reached"))
    v6: HttpTarget | None = HttpTarget("::1", v4.port, routes={"/ok": Reply(body="reached")})
    try:
        v6.start()  # type: ignore[union-attr]
    except OSError:  # no IPv6 on this machine: its spellings are still refused, by the guard's decision
        v6 = None
    other = HttpTarget("127.0.0.2").start()
    try:
        yield {"v4": v4, "v6": v6, "other": other}
    finally:
        for target in (v4, v6, other):
            if target is not None:
                target.stop()


@contextlib.contextmanager
def untouched(*targets: HttpTarget | None) -> Iterator[None]:
    before = [(t.connections, len(t.requests)) if t else (0, 0) for t in targets]
    yield
    after = [(t.connections, len(t.requests)) if t else (0, 0) for t in targets]
    assert after == before, "a refused request reached a listener"


def url_workflow(**node: Any) -> dict[str, Any]:
    return http_workflow(http_request("{{block_output_100001.url}}", **node), ("url", "string"))


SPELLINGS = [
    "http://127.0.0.1:{p}/ok", "http://localhost:{p}/ok", "http://LocalHost.:{p}/ok", "http://127.0.0.1.:{p}/ok",
    "http://[::1]:{p}/ok", "http://[::]:{p}/ok", "http://[0:0:0:0:0:0:0:1]:{p}/ok",
    "http://[::ffff:127.0.0.1]:{p}/ok", "http://[::ffff:7f00:1]:{p}/ok", "http://[0:0:0:0:0:ffff:127.0.0.1]:{p}/ok",
    "http://[::127.0.0.1]:{p}/ok", "http://[64:ff9b::7f00:1]:{p}/ok", "http://[2002:7f00:1::]:{p}/ok",
    "http://2130706433:{p}/ok", "http://017700000001:{p}/ok", "http://0x7f000001:{p}/ok",
    "http://0x7f.0.0.1:{p}/ok", "http://0177.0.0.1:{p}/ok", "http://0177.0.0.01:{p}/ok", "http://127.1:{p}/ok",
    "http://127.0.1:{p}/ok", "http://0.0.0.0:{p}/ok", "http://0:{p}/ok", "http://user:pw@127.0.0.1:{p}/ok",
    "http://example.com@127.0.0.1:{p}/ok", "http://127.0.0.1:{p}#@example.com/ok", "https://127.0.0.1:{p}/ok",
]


@pytest.mark.parametrize("spelling", SPELLINGS)
async def test_loopback_in_every_spelling_is_refused(spelling: str, listeners: dict[str, HttpTarget | None],
                                                     tmp_path: Path) -> None:
    v4 = listeners["v4"]
    assert v4 is not None
    url = spelling.format(p=v4.port)
    with untouched(*listeners.values()):
        result, error, _ = await run_outbound(url_workflow(), {"url": url}, tmp_path, allow="")
    assert error is not None, f"{url} was requested: {result}"
    assert re.search(REFUSAL, error.message), error.message
    assert "attempts" not in error.message  # a refusal is not retried


async def test_the_listeners_are_reachable_when_allowed(listeners: dict[str, HttpTarget | None],
                                                        tmp_path: Path) -> None:
    # The control: with the allow-list the same node reaches them, so "nothing reached them" above means refused.
    v4, v6 = listeners["v4"], listeners["v6"]
    assert v4 is not None
    for url, target in ((f"http://127.0.0.1:{v4.port}/ok", v4), (f"http://[::1]:{v4.port}/ok", v6)):
        if target is None:
            continue
        before = len(target.requests)
        result, error, _ = await run_outbound(url_workflow(), {"url": url}, tmp_path, allow="127.0.0.1,::1")
        assert error is None and result is not None and result.output["body"] == "reached"
        assert len(target.requests) == before + 1


REDIRECT_TARGETS = [
    "http://127.0.0.2:{q}/x", "http://2130706434:{q}/x", "http://0x7f000002:{q}/x", "http://127.0.0.02:{q}/x",
    "http://[::ffff:127.0.0.2]:{q}/x", "http://[::1]:{p}/ok", "http://[::]:{p}/ok", "http://0.0.0.0:{p}/ok",
]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("location", REDIRECT_TARGETS)
async def test_a_redirect_to_a_refused_address_is_refused(location: str, status: int,
                                                          listeners: dict[str, HttpTarget | None],
                                                          tmp_path: Path) -> None:
    v4, v6, other = listeners["v4"], listeners["v6"], listeners["other"]
    assert v4 is not None and other is not None
    to = location.format(p=v4.port, q=other.port)
    hops = len(v4.requests)
    body = {"bodyType": "RAW_TEXT", "bodyData": {"rawText": "secret"}}
    with untouched(v6, other):
        result, error, _ = await run_outbound(url_workflow(method="POST", body=body),
                                      {"url": f"http://127.0.0.1:{v4.port}/hop?status={status}&to={to}"}, tmp_path,
                                      allow="127.0.0.1")  # 127.0.0.1 only: not 127.0.0.2, ::1, 0.0.0.0
    assert error is not None, f"the redirect to {to} was followed: {result}"
    assert re.search(REFUSAL, error.message), error.message
    assert "attempts" not in error.message
    assert [r.path for r in v4.requests[hops:]] == ["/hop"]  # the first hop was allowed and made


async def test_the_files_a_body_reads_are_guarded_too(listeners: dict[str, HttpTarget | None],
                                                     tmp_path: Path) -> None:
    v4 = listeners["v4"]
    assert v4 is not None
    # The file is read before the request is sent: the refusal comes from the file fetcher.
    body = {"bodyType": "BINARY", "bodyData": {"binary": {"fileURL": {**ref("100001", "file"), "assistType": 1}}}}
    canvas = http_workflow(http_request(f"http://127.0.0.1:{v4.port}/ok", "POST", body=body), ("file", "string"))
    with untouched(*listeners.values()):
        _, error, _ = await run_outbound(canvas, {"file": f"http://[::ffff:127.0.0.1]:{v4.port}/ok"}, tmp_path,
                                         allow="")
    assert error is not None and "the binary body" in error.message and "non-public address" in error.message
