"""Network egress for Python code (KNOTFLOW_CODE_EGRESS): off by default, nothing leaves a sandbox; on, HTTP and
HTTPS go through the server's proxy and its address guard, with urllib and httpx, sync and async.

Every target is a real server on loopback started here, counting every connection it accepts: a refusal is shown
by the proxy's answer and by listeners that nothing reached. Private, link-local and metadata ranges are the
guard's decision alone (tests/outbound/test_guard.py): no packet leaves loopback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from knotflow.sandbox import CodeSandbox, SandboxOptions
from tests.fakes.http_target import HttpTarget, Recorded, Reply, self_signed
from tests.outbound.test_ssrf import SPELLINGS, untouched
from tests.sandbox.conftest import failure, js, python

pytestmark = pytest.mark.asyncio(loop_scope="module")

IDLE = 2.0  # the allowed pool's idle timeout: a silent server ends in a 504 this soon
MAX_CONNECTIONS = 4
GUARD = "non-public address"

# Helpers the sandboxed code starts with: an outcome as {"status", "text"} or {"error"}, never an exception.
FETCH = '''
import json, ssl, urllib.error, urllib.request
import httpx

def context(params):
    return ssl.create_default_context(cadata=params["ca"]) if params.get("ca") else None

def urllib_fetch(url, body=None, ca=None):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=20, context=ca) as response:
            return {"status": response.status, "text": response.read().decode()}
    except urllib.error.HTTPError as error:
        return {"status": error.code, "text": error.read().decode()}
    except Exception as error:
        return {"error": f"{type(error).__name__}: {error}"}

def httpx_fetch(url, body=None, ca=None):
    try:
        with httpx.Client(verify=ca or True, follow_redirects=True, timeout=20) as client:
            response = client.post(url, json=body) if body is not None else client.get(url)
            return {"status": response.status_code, "text": response.text}
    except Exception as error:
        return {"error": f"{type(error).__name__}: {error}"}

async def httpx_async_fetch(url, body=None, ca=None):
    try:
        async with httpx.AsyncClient(verify=ca or True, follow_redirects=True, timeout=20) as client:
            response = await (client.post(url, json=body) if body is not None else client.get(url))
            return {"status": response.status_code, "text": response.text}
    except Exception as error:
        return {"error": f"{type(error).__name__}: {error}"}

async def every_client(url, body=None, ca=None):
    return {"urllib": urllib_fetch(url, body, ca), "httpx": httpx_fetch(url, body, ca),
            "httpx_async": await httpx_async_fetch(url, body, ca)}
'''

# CONNECT spoken by hand over a raw socket, to the relay (TCP) or to the proxy's socket itself (Unix).
RAW_CONNECT = '''
import socket

def raw(address, request, whole=False):
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as connection:
        connection.settimeout(20)
        connection.connect(address)
        connection.sendall(request.encode())
        answer = b""
        head = b"\\r\\n\\r\\n" in answer
        while whole or not head or (answer.startswith(b"HTTP/1.1 4") and not answer.endswith(b"\\n\\n")):
            chunk = connection.recv(4096)
            if not chunk:
                break
            answer += chunk
            head = b"\\r\\n\\r\\n" in answer
        return answer.decode()
'''


def slow(request: Recorded) -> Reply:
    time.sleep(IDLE * 2.5)
    return Reply(body="late")


@pytest.fixture(scope="module")
def listeners(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, HttpTarget | None]]:
    """127.0.0.1:P (and ::1:P when the machine has IPv6), 127.0.0.2, and an HTTPS server on 127.0.0.1."""
    v4 = HttpTarget("127.0.0.1").start()
    v4.route("/hop", lambda request: Reply(int(request.query["status"][0]),
                                           headers=[("Location", request.query["to"][0])]))
    v4.route("/ok", Reply(body="reached"))
    v4.route("/slow", slow)
    v6: HttpTarget | None = HttpTarget("::1", v4.port, routes={"/ok": Reply(body="reached")})
    try:
        v6.start()  # type: ignore[union-attr]
    except OSError:
        v6 = None
    other = HttpTarget("127.0.0.2", routes={"/ok": Reply(body="reached")}).start()
    context, certificate = self_signed(tmp_path_factory.mktemp("tls"))
    tls = HttpTarget("127.0.0.1", tls=context, certificate=certificate).start()
    try:
        yield {"v4": v4, "v6": v6, "other": other, "tls": tls}
    finally:
        for target in (v4, v6, other, tls):
            if target is not None:
                target.stop()


async def pool(options: SandboxOptions) -> AsyncIterator[CodeSandbox]:
    sandbox = CodeSandbox(options)
    try:
        await sandbox.start()
        yield sandbox
    finally:
        await sandbox.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def allowed() -> AsyncIterator[CodeSandbox]:
    """Egress on, loopback's 127.0.0.1 allowed (KNOTFLOW_URL_FETCH_ALLOW=127.0.0.1)."""
    options = SandboxOptions(python_workers=1, js_workers=1, timeout=20, egress=True, egress_allow="127.0.0.1",
                             egress_idle_timeout=IDLE, egress_max_connections=MAX_CONNECTIONS)
    async for sandbox in pool(options):
        yield sandbox


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def guarded() -> AsyncIterator[CodeSandbox]:
    """Egress on, nothing but public addresses allowed."""
    async for sandbox in pool(SandboxOptions(python_workers=1, js_workers=0, timeout=30, egress=True)):
        yield sandbox


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def off() -> AsyncIterator[CodeSandbox]:
    """The default: no egress."""
    async for sandbox in pool(SandboxOptions(python_workers=1, js_workers=0, timeout=10)):
        yield sandbox


def target(listeners: dict[str, HttpTarget | None], name: str) -> HttpTarget:
    found = listeners[name]
    assert found is not None
    return found


# --- off -------------------------------------------------------------------------------------------------------

async def test_without_egress_nothing_leaves_the_sandbox(off: CodeSandbox,
                                                         listeners: dict[str, HttpTarget | None]) -> None:
    v4 = target(listeners, "v4")
    code = '''
import os, socket, urllib.request
async def main(args):
    outcomes = {}
    for name, attempt in {
        "urllib": lambda: urllib.request.urlopen(args.params["url"], timeout=5),
        "relay": lambda: socket.create_connection(("127.0.0.1", 3128), timeout=5),
        "direct": lambda: socket.create_connection(("127.0.0.1", args.params["port"]), timeout=5),
    }.items():
        try:
            attempt()
            outcomes[name] = "connected"
        except Exception as error:
            outcomes[name] = f"{type(error).__name__}: {error}"
    proxies = {name: value for name, value in os.environ.items() if "proxy" in name.lower()}
    return {"outcomes": outcomes, "proxies": proxies, "socket_dir": os.path.exists("/sandbox/egress"),
            "certificates": os.path.exists("/etc/ssl")}
'''
    with untouched(*listeners.values()):
        output = await python(off, code, {"url": f"{v4.base_url}/ok", "port": v4.port})
    assert output["proxies"] == {} and output["socket_dir"] is False and output["certificates"] is False
    for name, outcome in output["outcomes"].items():
        assert outcome.startswith(("URLError", "ConnectionRefusedError", "OSError")), (name, outcome)
    error = await failure(off, "python", "import httpx\ndef main(args):\n    return {}")
    assert error.message == "ModuleNotFoundError: No module named 'httpx'"


# --- on, the target allowed --------------------------------------------------------------------------------------

async def test_urllib_and_httpx_get_and_post_through_the_proxy(allowed: CodeSandbox,
                                                               listeners: dict[str, HttpTarget | None],
                                                               caplog: pytest.LogCaptureFixture) -> None:
    v4 = target(listeners, "v4")
    before = len(v4.requests)
    code = FETCH + '''
import os
async def main(args):
    url = args.params["url"]
    return {"proxies": {name: value for name, value in os.environ.items() if "proxy" in name.lower()},
            "certificates": os.path.isfile("/etc/ssl/certs/ca-certificates.crt"),
            "get": await every_client(url + "/anything?n=1"),
            "post": await every_client(url + "/anything", {"k": [1, "x"]})}
'''
    with caplog.at_level(logging.INFO, "knotflow.outbound.proxy"):
        output = await python(allowed, code, {"url": v4.base_url})
    lines = [record for record in caplog.records if record.getMessage() == "code egress"]
    assert sorted((r.method, r.host, r.port, r.status) for r in lines) == sorted(  # type: ignore[attr-defined]
        [("GET", "127.0.0.1", v4.port, 200)] * 3 + [("POST", "127.0.0.1", v4.port, 200)] * 3)
    relay = "http://127.0.0.1:3128"
    assert output["proxies"] == {"HTTP_PROXY": relay, "HTTPS_PROXY": relay, "http_proxy": relay,
                                 "https_proxy": relay, "NO_PROXY": "", "no_proxy": ""}
    assert output["certificates"] is True
    for client in ("urllib", "httpx", "httpx_async"):
        got, posted = output["get"][client], output["post"][client]
        assert got["status"] == 200, (client, got)
        assert json.loads(got["text"])["args"] == {"n": "1"}
        assert posted["status"] == 200, (client, posted)
        assert json.loads(posted["text"])["json"] == {"k": [1, "x"]}
    arrived = v4.requests[before:]
    assert sorted(request.method for request in arrived) == ["GET"] * 3 + ["POST"] * 3
    assert all("proxy-connection" not in request.headers for request in arrived)


async def test_https_goes_through_a_connect_tunnel_end_to_end(allowed: CodeSandbox,
                                                             listeners: dict[str, HttpTarget | None]) -> None:
    tls = target(listeners, "tls")
    code = FETCH + '''
async def main(args):
    url = args.params["url"] + "/anything?tls=1"
    return {"trusted": await every_client(url, {"a": 1}, context(args.params)),
            "untrusted": await every_client(url)}
'''
    output = await python(allowed, code, {"url": tls.base_url, "ca": tls.certificate})
    for client, outcome in output["trusted"].items():
        assert outcome["status"] == 200, (client, outcome)
        assert json.loads(outcome["text"])["json"] == {"a": 1}
    # TLS is the client's own, end to end: the proxy sees bytes, and an unknown certificate fails verification.
    for client, outcome in output["untrusted"].items():
        assert "CERTIFICATE_VERIFY_FAILED" in outcome.get("error", ""), (client, outcome)


async def test_a_redirect_to_a_forbidden_address_is_refused(allowed: CodeSandbox,
                                                           listeners: dict[str, HttpTarget | None]) -> None:
    v4, other = target(listeners, "v4"), target(listeners, "other")
    code = FETCH + '''
async def main(args):
    return {to: await every_client(args.params["hop"] + "?status=302&to=" + to) for to in args.params["to"]}
'''
    forbidden = [f"{other.base_url}/ok", f"http://[::1]:{v4.port}/ok", f"http://127.0.0.2:{v4.port}/ok"]
    with untouched(other, listeners["v6"]):
        output = await python(allowed, code, {"hop": f"{v4.base_url}/hop", "to": forbidden})
    for to, outcomes in output.items():
        for client, outcome in outcomes.items():
            assert outcome["status"] == 403 and GUARD in outcome["text"], (to, client, outcome)
            assert "KNOTFLOW_URL_FETCH_ALLOW" in outcome["text"]


async def test_the_proxy_adds_no_header_of_its_own(allowed: CodeSandbox,
                                                  listeners: dict[str, HttpTarget | None]) -> None:
    v4 = target(listeners, "v4")
    code = RAW_CONNECT + '''
async def main(args):
    url = args.params["url"]
    request = (f"GET {url} HTTP/1.1\\r\\nHost: x\\r\\nX-Mine: 1\\r\\nProxy-Connection: keep-alive\\r\\n"
               "Connection: close\\r\\n\\r\\n")
    return {"answer": raw(("127.0.0.1", 3128), request, whole=True)}
'''
    before = len(v4.requests)
    answer = (await python(allowed, code, {"url": f"{v4.base_url}/ok"}))["answer"]
    assert answer.startswith("HTTP/1.1 200 ") and answer.endswith("reached"), answer
    (arrived,) = v4.requests[before:]
    # Host is the URL's (where the proxy connects); the hop-by-hop headers are gone; nothing is added.
    assert arrived.headers == {"host": f"127.0.0.1:{v4.port}", "x-mine": "1"}


async def test_a_silent_server_ends_in_a_504_not_a_hang(allowed: CodeSandbox,
                                                       listeners: dict[str, HttpTarget | None]) -> None:
    v4 = target(listeners, "v4")
    started = time.monotonic()
    output = await python(allowed, FETCH + '''
async def main(args):
    return urllib_fetch(args.params["url"])
''', {"url": f"{v4.base_url}/slow"})
    assert output["status"] == 504, output
    assert time.monotonic() - started < IDLE * 2.5


async def test_an_unreachable_server_is_a_502(allowed: CodeSandbox, listeners: dict[str, HttpTarget | None]) -> None:
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    output = await python(allowed, FETCH + '''
async def main(args):
    return await every_client(args.params["url"])
''', {"url": f"http://127.0.0.1:{port}/"})
    for client, outcome in output.items():
        assert outcome["status"] == 502 and outcome["text"].startswith("127.0.0.1: "), (client, outcome)


async def test_connections_at_once_are_capped_per_sandbox(allowed: CodeSandbox,
                                                         listeners: dict[str, HttpTarget | None]) -> None:
    v4 = target(listeners, "v4")
    code = '''
import socket
async def main(args):
    held, answers = [], []
    for _ in range(args.params["count"]):
        connection = socket.create_connection(("127.0.0.1", 3128), timeout=10)
        target = f"127.0.0.1:{args.params['port']}"
        connection.sendall(f"CONNECT {target} HTTP/1.1\\r\\nHost: {target}\\r\\n\\r\\n".encode())
        answers.append(connection.recv(4096).decode().split("\\r\\n")[0])
        held.append(connection)
    return {"answers": answers}
'''
    output = await python(allowed, code, {"port": v4.port, "count": MAX_CONNECTIONS + 1})
    assert output["answers"] == ["HTTP/1.1 200 Connection established"] * MAX_CONNECTIONS + [
        "HTTP/1.1 503 Service Unavailable"]
    # The connections end with the call (the relay passes their end on, within milliseconds): a later call has its
    # full share again.
    for _ in range(50):
        output = await python(allowed, code, {"port": v4.port, "count": MAX_CONNECTIONS})
        if output["answers"] == ["HTTP/1.1 200 Connection established"] * MAX_CONNECTIONS:
            break
        await asyncio.sleep(0.1)
    assert output["answers"] == ["HTTP/1.1 200 Connection established"] * MAX_CONNECTIONS


async def test_the_relay_comes_back_after_code_kills_it(allowed: CodeSandbox,
                                                       listeners: dict[str, HttpTarget | None]) -> None:
    v4 = target(listeners, "v4")
    # Every process of the sandbox but the call's own, its template and the namespace's init: the relay.
    killer = FETCH + '''
import os, signal, time
async def main(args):
    mine = {os.getpid(), os.getppid(), 1}
    killed = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) not in mine:
            try:
                os.kill(int(name), signal.SIGKILL)
                killed.append(int(name))
            except OSError:
                pass
    return {"killed": killed, "then": urllib_fetch(args.params["url"])}
'''
    output = await python(allowed, killer, {"url": f"{v4.base_url}/ok"})
    assert output["killed"]
    # Within the same call: the connection waits in the template's listening socket for the relay it restarts.
    assert output["then"] == {"status": 200, "text": "reached"}
    output = await python(allowed, FETCH + '''
async def main(args):
    return urllib_fetch(args.params["url"])
''', {"url": f"{v4.base_url}/ok"})
    assert output == {"status": 200, "text": "reached"}


async def test_requests_that_are_no_proxy_requests_get_a_400(allowed: CodeSandbox) -> None:
    code = RAW_CONNECT + '''
async def main(args):
    return {"origin": raw(("127.0.0.1", 3128), "GET /ok HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"),
            "garbage": raw(("127.0.0.1", 3128), "\\x16\\x03\\x01 hello\\r\\n\\r\\n"),
            "connect": raw(("127.0.0.1", 3128), "CONNECT nowhere HTTP/1.1\\r\\n\\r\\n"),
            "scheme": raw(("127.0.0.1", 3128), "GET ftp://127.0.0.1/x HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")}
'''
    output = await python(allowed, code)
    for name, answer in output.items():
        assert answer.startswith("HTTP/1.1 400 "), (name, answer)


async def test_egress_is_for_python_only(allowed: CodeSandbox) -> None:
    output = await js(allowed, "function main() { return { fetch: typeof fetch, XHR: typeof XMLHttpRequest } }")
    assert output == {"fetch": "undefined", "XHR": "undefined"}


# --- on, loopback not allowed: the SSRF battery through the proxy -------------------------------------------------

async def test_loopback_in_every_spelling_is_refused_through_the_proxy(guarded: CodeSandbox,
                                                                     listeners: dict[str, HttpTarget | None]) -> None:
    v4 = target(listeners, "v4")
    urls = [spelling.format(p=v4.port) for spelling in SPELLINGS]
    code = FETCH + '''
async def main(args):
    return {url: await every_client(url) for url in args.params["urls"]}
'''
    with untouched(*listeners.values()):
        output = await python(guarded, code, {"urls": urls})
    for url, outcomes in output.items():
        for client, outcome in outcomes.items():
            if "error" in outcome:  # refused before anything was sent: the client's own URL check, or a tunnel
                assert url.startswith("https:") or "Invalid" in outcome["error"] or "nonnumeric port" in \
                    outcome["error"], (url, client, outcome)
                if url.startswith("https:"):
                    assert "403" in outcome["error"], (url, client, outcome)
            elif outcome["status"] == 400:  # an address httpx will not read (the C resolver would: 0177.0.0.1)
                assert "Invalid IPv4 address" in outcome["text"], (url, client, outcome)
            else:
                assert outcome["status"] == 403 and GUARD in outcome["text"], (url, client, outcome)


async def test_a_raw_connect_to_loopback_is_refused(guarded: CodeSandbox, listeners: dict[str, HttpTarget | None],
                                                   caplog: pytest.LogCaptureFixture) -> None:
    v4 = target(listeners, "v4")
    code = RAW_CONNECT + '''
async def main(args):
    port = args.params["port"]
    answers = {}
    for host in ("127.0.0.1", "localhost", "[::1]", "2130706433", "0x7f.1", "0.0.0.0", "[::ffff:127.0.0.1]"):
        request = f"CONNECT {host}:{port} HTTP/1.1\\r\\nHost: {host}:{port}\\r\\n\\r\\n"
        answers["relay " + host] = raw(("127.0.0.1", 3128), request)
        answers["socket " + host] = raw("/sandbox/egress/proxy.sock", request)
    # The proxy itself (3128 here is the sandbox's own loopback, not the server's) and a plain request to loopback.
    answers["self"] = raw(("127.0.0.1", 3128), "GET http://127.0.0.1:3128/ HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
    return answers
'''
    with untouched(*listeners.values()), caplog.at_level(logging.INFO, "knotflow.outbound.proxy"):
        output = await python(guarded, code, {"port": v4.port})
    for name, answer in output.items():
        assert answer.startswith("HTTP/1.1 403 Forbidden"), (name, answer)
        assert GUARD in answer, (name, answer)
    refusals = [record for record in caplog.records if record.getMessage() == "code egress refused"]
    assert len(refusals) == len(output) and all(record.levelno == logging.WARNING for record in refusals)
    assert {(record.host, record.port) for record in refusals} >= {("2130706433", v4.port), ("::1", v4.port)}  # type: ignore[attr-defined]
    assert all(GUARD in record.reason for record in refusals)  # type: ignore[attr-defined]
