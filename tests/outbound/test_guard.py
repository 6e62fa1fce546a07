"""The address guard's decision alone: which addresses it permits, with and without the allow-list. Nothing here
opens a connection or asks DNS (host names are literals or numeric spellings, read without the resolver), so
no packet leaves the machine even with a broken guard; the battery through the real node is test_ssrf.py."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import pytest

from knotflow.contract import HttpRequest, HttpSendError
from knotflow.outbound.guard import AddressPolicy, OutboundRefused, literal_address
from knotflow.outbound.http import GuardedHttpClient
from tests.fakes.http_target import outbound_services

REFUSED = [
    # loopback, unspecified
    "127.0.0.1", "127.255.255.254", "0.0.0.0", "0.1.2.3", "::1", "::",
    # private
    "10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.255.255", "192.168.0.1", "fc00::1", "fd12:3456::1",
    # link-local, and the cloud metadata services on it (AWS, GCP, Azure; AWS's IPv6 one; Oracle's; Alibaba's)
    "169.254.0.1", "169.254.169.254", "fe80::1", "fd00:ec2::254", "192.0.0.192", "100.100.100.200",
    # shared address space (carrier-grade NAT), benchmarking, documentation, reserved, broadcast, multicast
    "100.64.0.1", "198.18.0.1", "192.0.2.1", "198.51.100.1", "203.0.113.1", "240.0.0.1", "255.255.255.255",
    "224.0.0.1", "239.255.255.250", "ff02::1", "ff05::1:3", "2001:db8::1", "100::1",
    # IPv6 spellings of internal IPv4 addresses: mapped, IPv4-compatible, 6to4, NAT64, Teredo; deprecated site-local
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::127.0.0.1", "::10.0.0.1",
    "2002:7f00:1::", "2002:a9fe:a9fe::1", "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::a00:1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2", "fec0::1",
]
PERMITTED = ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2002:808:808::1",
             "64:ff9b::808:808"]


@pytest.mark.parametrize("address", REFUSED)
def test_internal_addresses_are_refused(address: str) -> None:
    assert not AddressPolicy().permits(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PERMITTED)
def test_public_addresses_are_permitted(address: str) -> None:
    assert AddressPolicy().permits(ipaddress.ip_address(address))


def test_the_allow_list() -> None:
    policy = AddressPolicy("10.0.0.0/8, intranet.local fd00::/8\n127.0.0.1")
    assert policy.hosts == {"intranet.local"}
    assert policy.permits(ipaddress.ip_address("10.9.8.7"))
    assert policy.permits(ipaddress.ip_address("::ffff:10.9.8.7"))  # the IPv4 address it spells is allowed
    assert policy.permits(ipaddress.ip_address("fd12::1"))
    assert policy.permits(ipaddress.ip_address("127.0.0.1"))
    assert not policy.permits(ipaddress.ip_address("127.0.0.2"))
    assert not policy.permits(ipaddress.ip_address("172.16.0.1"))
    assert not policy.permits(ipaddress.ip_address("169.254.169.254"))


@pytest.mark.parametrize(("host", "address"), [
    ("2130706433", "127.0.0.1"), ("017700000001", "127.0.0.1"), ("0x7f000001", "127.0.0.1"),
    ("0x7f.0.0.1", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"), ("127.1", "127.0.0.1"), ("0", "0.0.0.0"),
    ("[::ffff:7f00:1]", "::ffff:7f00:1"), ("169.254.169.254", "169.254.169.254"), ("0xa9.0xfe.0xa9.0xfe",
                                                                                    "169.254.169.254"),
])
async def test_numeric_spellings_are_addresses_never_names(host: str, address: str) -> None:
    assert literal_address(host) == ipaddress.ip_address(address)
    with pytest.raises(OutboundRefused, match=f"non-public address {address}"):
        await AddressPolicy().addresses(host, 80)


def test_names_are_not_numeric_spellings() -> None:
    for name in ("example.com", "cafe.be", "deadbeef", "1.2.3.4.5", "0x1g"):
        assert literal_address(name) is None


async def test_an_allowed_host_name_is_trusted_whatever_it_resolves_to() -> None:
    assert await AddressPolicy("localhost").addresses("localhost", 80)  # resolved from /etc/hosts
    with pytest.raises(OutboundRefused, match="'localhost'"):
        await AddressPolicy().addresses("localhost", 80)


async def test_the_client_refuses_other_schemes_and_classifies_failures(tmp_path: Path) -> None:
    async with outbound_services(tmp_path, "127.0.0.1") as (http, _):
        assert isinstance(http, GuardedHttpClient)
        for url in ("file:///etc/passwd", "ftp://example.com/x", "gopher://127.0.0.1:70/", "example.com/x"):
            with pytest.raises(HttpSendError, match="only http and https") as refused:
                await http.send(HttpRequest("GET", url))
            assert not refused.value.transient
        with pytest.raises(HttpSendError) as bad:
            await http.send(HttpRequest("GET", "http://[::1"))
        assert not bad.value.transient
        with socket.socket() as unused:  # a port nothing listens on: the connection is refused, which may pass
            unused.bind(("127.0.0.1", 0))
            port = unused.getsockname()[1]
        with pytest.raises(HttpSendError) as refused_connection:
            await http.send(HttpRequest("GET", f"http://127.0.0.1:{port}/"))
        assert refused_connection.value.transient
