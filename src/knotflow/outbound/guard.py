"""The outbound address guard: a request a workflow chose must not become a way into the server's own network
(SSRF).

Every TCP connection, redirects included, resolves the host name itself and refuses unless every address is
public — not loopback, private, link-local (cloud metadata), shared, multicast, reserved, documentation or
unspecified, nor an IPv6 form that embeds such an IPv4 address (mapped, 6to4, NAT64) — or is allowed by
KNOTFLOW_URL_FETCH_ALLOW (host names and CIDRs). The check happens where the socket is opened, so a name that
resolves differently the second time (DNS rebinding) gains nothing, and a redirect is checked like the first
hop. Numeric host spellings the C resolver would accept (`2130706433`, `0x7f.1`, `127.1`) are read as the
address they spell, never sent to DNS. Proxies from the environment are not used: they would connect on our
behalf, past the check.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from knotflow.errors import NodeError

REFUSED_CODE = 720701014
ALLOW_SETTING = "KNOTFLOW_URL_FETCH_ALLOW"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Never public, whatever `is_global` says in this Python version (its tables changed between releases).
_NEVER_PUBLIC: tuple[IPNetwork, ...] = tuple(ipaddress.ip_network(net) for net in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
    "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    "::/96", "100::/64", "2001::/23", "2001:db8::/32", "64:ff9b:1::/48", "fc00::/7", "fe80::/10", "fec0::/10",
    "ff00::/8",
))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# What the C resolver reads as an IPv4 address (inet_aton): decimal, octal and hex parts, one to four of them.
_NUMERIC_HOST = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}", re.IGNORECASE)


class OutboundRefused(NodeError):
    """A request knotflow will not make: its address is not public, its scheme is not http(s), …"""

    def __init__(self, message: str) -> None:
        super().__init__(message, internal_code=REFUSED_CODE)


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for: IPv4-mapped, 6to4 or the NAT64 well-known prefix."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def literal_address(host: str) -> IPAddress | None:
    """The address a host names without DNS: an IP literal, or a numeric IPv4 spelling; None for a name."""
    name = host.strip("[]")
    try:
        return ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        pass
    if _NUMERIC_HOST.fullmatch(name):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            return None
    return None


class AddressPolicy:
    """Which addresses an outbound connection may reach: public ones, and what the allow-list names."""

    def __init__(self, allow: str = "") -> None:
        self.hosts: set[str] = set()
        self.networks: list[IPNetwork] = []
        for entry in re.split(r"[\s,]+", allow.strip()):
            if not entry:
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.hosts.add(entry.lower().rstrip("."))

    def _allowed(self, address: IPAddress) -> bool:
        return any(address.version == network.version and address in network for network in self.networks)

    def permits(self, address: IPAddress) -> bool:
        if self._allowed(address):
            return True
        if isinstance(address, ipaddress.IPv6Address):
            inner = embedded_ipv4(address)
            if inner is not None:
                return self.permits(inner)
        if any(address.version == network.version and address in network for network in _NEVER_PUBLIC):
            return False
        return address.is_global and not address.is_multicast

    async def addresses(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for `host`; OutboundRefused unless every one of them is permitted."""
        name = host.lower().rstrip(".")
        literal = literal_address(name)
        if literal is not None:
            resolved = [literal]
        else:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(name, port, type=socket.SOCK_STREAM)
            except (socket.gaierror, UnicodeError) as exc:
                # A connection error like any other: the HTTP client may try again, the fetcher reports it.
                raise httpcore.ConnectError(f"cannot resolve host {host!r}: {exc}") from exc
            resolved = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos))
        if name not in self.hosts:
            refused = [address for address in resolved if not self.permits(address)]
            if refused:
                raise OutboundRefused(
                    f"refusing to connect to {host!r}: it resolves to the non-public address {refused[0]} "
                    f"(allow it with {ALLOW_SETTING})"
                )
        return [str(address) for address in resolved]


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, but a TCP connection goes only to addresses the policy permits."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        failure: Exception | None = None
        for address in await self._policy.addresses(host, port):
            try:
                # TLS still verifies and sends SNI for `host`: httpcore starts it on this stream with the URL's host.
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                failure = exc
        raise failure or httpcore.ConnectError(f"no address to connect to for {host!r}")

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise OutboundRefused("connecting over a unix socket is not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """An httpx transport whose every connection passes the address policy."""

    def __init__(self, policy: AddressPolicy) -> None:
        super().__init__(trust_env=False)
        # httpx builds its httpcore pool without a way to pass a network backend; this pool is the same one
        # with the guarded backend. tests/outbound/test_guard.py fails if a connection ever bypasses it.
        self._pool = httpcore.AsyncConnectionPool(ssl_context=_ssl_context(), network_backend=_GuardedBackend(policy))


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle takes tens of milliseconds; a context is safe to share once configured.
    return httpx.create_ssl_context(trust_env=False)


def guarded_client(allow: str, **options: Any) -> httpx.AsyncClient:
    """An httpx client that reaches only what the policy permits, with no proxy from the environment."""
    return httpx.AsyncClient(transport=GuardedTransport(AddressPolicy(allow)), trust_env=False, **options)
