"""Network egress for Python sandboxes (KNOTFLOW_CODE_EGRESS, off by default): the server's end of it.

A sandbox keeps its own empty network namespace: no host network is ever shared. Each Python sandbox gets a private
host directory holding a Unix socket on which the server's forward proxy (`knotflow.outbound.proxy`, every
connection through the HTTP request node's address guard) listens, bind-mounted read-only at `MOUNT`. Before it
serves, the template starts a relay (`_pyworker.py`) listening on 127.0.0.1:`RELAY_PORT` of the sandbox's own
loopback, which carries each connection to that socket; HTTP_PROXY/HTTPS_PROXY name the relay, so urllib and httpx
send every request to the proxy, which resolves names (the sandbox has no resolver) and connects.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

from knotflow.outbound.proxy import ForwardProxy, ProxyListener

MOUNT = "/sandbox/egress"
SOCKET_NAME = "proxy.sock"
RELAY_PORT = 3128
PROXY_URL = f"http://127.0.0.1:{RELAY_PORT}"
# The certificate authorities (Debian's ca-certificates), for urllib's and ssl's default contexts; httpx brings
# certifi's. Mounted read-only when egress is on.
CA_CERTIFICATES = "/etc/ssl/certs"


def environment() -> dict[str, str]:
    """What the sandbox's environment adds: the relay as every client's proxy, with no exceptions."""
    proxies = {name: PROXY_URL for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")}
    return {**proxies, "NO_PROXY": "", "no_proxy": ""}


def relay_config() -> dict[str, object]:
    """The template's `egress` setting: where the relay listens and where it connects."""
    return {"port": RELAY_PORT, "socket": f"{MOUNT}/{SOCKET_NAME}"}


class EgressSocket:
    """One sandbox's socket and the proxy listening on it; `directory` is what is mounted at MOUNT."""

    def __init__(self, base: str, listener: ProxyListener) -> None:
        self._base = base
        self.directory = os.path.join(base, "socket")
        self._listener = listener

    @classmethod
    async def open(cls, proxy: ForwardProxy) -> EgressSocket:
        # mkdtemp's directory is the server's alone (0700): no other user of the host reaches the socket. The one
        # inside it, which the sandbox sees as MOUNT, lets the sandbox's own uid through.
        base = tempfile.mkdtemp(prefix="knotflow-egress-")
        try:
            directory = os.path.join(base, "socket")
            os.mkdir(directory)
            os.chmod(directory, 0o755)
            listener = await proxy.listen(os.path.join(directory, SOCKET_NAME))
        except BaseException:
            shutil.rmtree(base, ignore_errors=True)
            raise
        return cls(base, listener)

    async def close(self) -> None:
        with contextlib.suppress(OSError):
            await self._listener.close()
        shutil.rmtree(self._base, ignore_errors=True)
