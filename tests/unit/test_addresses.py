"""Table tests of the address policy: every forbidden range's edges and the neighbours just outside.

Covers what imgproxy's ``VerifySourceNetwork`` tests cover (loopback, unspecified, link-local, private,
global unicast, an invalid address, a host with a port) and the ranges and forms it does not.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest

from sansio.addresses import IPAddress, forbidden_reason, ip_from_host, parse_networks

LOOPBACK = "a loopback address"
PRIVATE = "a private address"
LINK_LOCAL = "a link-local address"
CGNAT = "a shared (CGNAT) address"
MULTICAST = "a multicast address"
RESERVED = "a reserved address"
DOC = "a documentation address"
BENCH = "a benchmarking address"
METADATA = "the cloud metadata address"
IETF = "a reserved (IETF protocol assignments) address"

# (address, reason or None for allowed). Each range: first, last, and the neighbours just outside.
IPV4_TABLE: list[tuple[str, str | None]] = [
    ("0.0.0.0", "the unspecified address"),
    ("0.0.0.1", "a reserved ('this network') address"),
    ("0.255.255.255", "a reserved ('this network') address"),
    ("1.0.0.0", None),
    ("9.255.255.255", None),
    ("10.0.0.0", PRIVATE),
    ("10.255.255.255", PRIVATE),
    ("11.0.0.0", None),
    ("100.63.255.255", None),
    ("100.64.0.0", CGNAT),
    ("100.127.255.255", CGNAT),
    ("100.128.0.0", None),
    ("100.100.100.200", METADATA),
    ("126.255.255.255", None),
    ("127.0.0.0", LOOPBACK),
    ("127.0.0.1", LOOPBACK),
    ("127.255.255.255", LOOPBACK),
    ("128.0.0.0", None),
    ("169.253.255.255", None),
    ("169.254.0.0", LINK_LOCAL),
    ("169.254.0.1", LINK_LOCAL),
    ("169.254.169.253", LINK_LOCAL),
    ("169.254.169.254", METADATA),
    ("169.254.169.255", LINK_LOCAL),
    ("169.254.170.2", METADATA),
    ("169.254.255.255", LINK_LOCAL),
    ("169.255.0.0", None),
    ("172.15.255.255", None),
    ("172.16.0.0", PRIVATE),
    ("172.31.255.255", PRIVATE),
    ("172.32.0.0", None),
    ("191.255.255.255", None),
    ("192.0.0.0", IETF),
    ("192.0.0.255", IETF),
    ("192.0.1.0", None),
    ("192.0.1.255", None),
    ("192.0.2.0", DOC),
    ("192.0.2.255", DOC),
    ("192.0.3.0", None),
    ("192.88.98.255", None),
    ("192.88.99.0", "a reserved (6to4 relay anycast) address"),
    ("192.88.99.255", "a reserved (6to4 relay anycast) address"),
    ("192.88.100.0", None),
    ("192.167.255.255", None),
    ("192.168.0.0", PRIVATE),
    ("192.168.0.1", PRIVATE),
    ("192.168.255.255", PRIVATE),
    ("192.169.0.0", None),
    ("198.17.255.255", None),
    ("198.18.0.0", BENCH),
    ("198.19.255.255", BENCH),
    ("198.20.0.0", None),
    ("198.51.99.255", None),
    ("198.51.100.0", DOC),
    ("198.51.100.255", DOC),
    ("198.51.101.0", None),
    ("203.0.112.255", None),
    ("203.0.113.0", DOC),
    ("203.0.113.255", DOC),
    ("203.0.114.0", None),
    ("223.255.255.255", None),
    ("224.0.0.0", MULTICAST),
    ("239.255.255.255", MULTICAST),
    ("240.0.0.0", RESERVED),
    ("255.255.255.254", RESERVED),
    ("255.255.255.255", "the broadcast address"),
    ("8.8.8.8", None),
    ("93.184.216.34", None),
]

IPV6_TABLE: list[tuple[str, str | None]] = [
    ("::", "the unspecified address"),
    ("::1", LOOPBACK),
    ("::2", "an IPv4-compatible form of 0.0.0.2, a reserved ('this network') address"),
    # IPv4-mapped: judged as the IPv4 address it is
    ("::ffff:127.0.0.1", "an IPv4-mapped form of 127.0.0.1, a loopback address"),
    ("::ffff:10.0.0.1", "an IPv4-mapped form of 10.0.0.1, a private address"),
    ("::ffff:169.254.169.254", "an IPv4-mapped form of 169.254.169.254, the cloud metadata address"),
    ("::ffff:100.64.0.1", "an IPv4-mapped form of 100.64.0.1, a shared (CGNAT) address"),
    ("::ffff:0.0.0.0", "an IPv4-mapped form of 0.0.0.0, the unspecified address"),
    ("::ffff:8.8.8.8", None),
    ("::fffe:ffff:ffff", RESERVED),  # just below ::ffff:0:0/96
    ("::1:0:0:0", RESERVED),  # just above it
    # IPv4-compatible (deprecated): refused even around a global address
    ("::127.0.0.1", "an IPv4-compatible form of 127.0.0.1, a loopback address"),
    ("::10.0.0.1", "an IPv4-compatible form of 10.0.0.1, a private address"),
    ("::8.8.8.8", "an IPv4-compatible form of 8.8.8.8, deprecated and never routed"),
    # NAT64 well-known prefix: judged by the embedded address
    ("64:ff9b::7f00:1", "a NAT64 form of 127.0.0.1, a loopback address"),
    ("64:ff9b::a9fe:a9fe", "a NAT64 form of 169.254.169.254, the cloud metadata address"),
    ("64:ff9b::808:808", None),
    ("64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff", RESERVED),
    ("64:ff9b:0:0:0:1::", RESERVED),  # just past 64:ff9b::/96
    ("64:ff9b:1::", "a local-use NAT64 address"),
    ("64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "a local-use NAT64 address"),
    ("64:ff9b:2::", RESERVED),
    ("100::", "a reserved (discard-only) address"),
    ("100::ffff:ffff:ffff:ffff", "a reserved (discard-only) address"),
    ("100:0:0:1::", RESERVED),
    # 6to4: judged by the embedded address
    ("2002:7f00:1::", "a 6to4 form of 127.0.0.1, a loopback address"),
    ("2002:a00:1::1", "a 6to4 form of 10.0.0.1, a private address"),
    ("2002:c0a8:101::", "a 6to4 form of 192.168.1.1, a private address"),
    ("2002:0:0::", "a 6to4 form of 0.0.0.0, the unspecified address"),
    ("2002:808:808::1", None),
    ("2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None),
    ("2003::", None),
    # 2001::/23 and its special blocks
    ("2001::", "a Teredo address"),
    ("2001:0:ffff:ffff:ffff:ffff:ffff:ffff", "a Teredo address"),
    ("2001:1::1", IETF),
    ("2001:2::", BENCH),
    ("2001:2:0:ffff:ffff:ffff:ffff:ffff", BENCH),
    ("2001:2:1::", IETF),
    ("2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", IETF),
    ("2001:200::", None),
    ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", None),
    ("2001:db8::", DOC),
    ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", DOC),
    ("2001:db9::", None),
    ("3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None),
    ("3fff::", DOC),
    ("3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", DOC),
    ("3fff:1000::", None),
    ("5eff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", RESERVED),  # outside 2000::/3 altogether
    ("5f00::", "a reserved (SRv6) address"),
    ("5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "a reserved (SRv6) address"),
    ("5f01::", RESERVED),
    ("3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None),
    ("4000::", RESERVED),
    ("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", RESERVED),
    ("fc00::", "a unique local (private) address"),
    ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "a unique local (private) address"),
    ("fd00:ec2::254", METADATA),
    ("fd00:ec2::253", "a unique local (private) address"),
    ("fe00::", RESERVED),
    ("fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", RESERVED),
    ("fe80::", LINK_LOCAL),
    ("fe80::1%eth0", LINK_LOCAL),
    ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", LINK_LOCAL),
    ("fec0::", "a site-local address"),
    ("feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "a site-local address"),
    ("ff00::", MULTICAST),
    ("ff02::1", MULTICAST),
    ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", MULTICAST),
    ("1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", RESERVED),
    ("2000::", None),
    ("2606:4700:4700::1111", None),
    ("2a00:1450:4001::200e", None),
]


@pytest.mark.parametrize(("address", "reason"), IPV4_TABLE + IPV6_TABLE)
def test_policy_without_allowlist(address: str, reason: str | None) -> None:
    assert forbidden_reason(ip_address(address)) == reason


def test_tables_cover_both_outcomes_in_numbers() -> None:
    # The note in the report counts these; keep them honest.
    rows = IPV4_TABLE + IPV6_TABLE
    assert sum(1 for _, reason in rows if reason) >= 95
    assert sum(1 for _, reason in rows if reason is None) >= 30


# --- allowlist: exempts its own range, nothing else -------------------------------------------------

ALLOW_TABLE: list[tuple[tuple[str, ...], str, bool]] = [
    # (allowed networks, address, passes?)
    (("127.0.0.1/32",), "127.0.0.1", True),
    (("127.0.0.1/32",), "127.0.0.2", False),
    (("127.0.0.1/32",), "127.0.0.0", False),
    (("127.0.0.1/32",), "10.0.0.1", False),
    (("127.0.0.1/32",), "0.0.0.0", False),  # 0.0.0.0 also reaches localhost; it is not 127.0.0.1
    (("127.0.0.1/32",), "::1", False),
    (("127.0.0.1/32",), "::ffff:127.0.0.1", True),  # the same host through a dual-stack socket
    (("127.0.0.1/32",), "::127.0.0.1", False),
    (("127.0.0.1/32",), "2002:7f00:1::", False),
    (("127.0.0.1/32",), "64:ff9b::7f00:1", False),
    (("127.0.0.1/32",), "169.254.169.254", False),
    (("127.0.0.1/32",), "8.8.8.8", True),  # a global address needs no exemption
    (("10.1.0.0/16",), "10.1.0.0", True),
    (("10.1.0.0/16",), "10.1.255.255", True),
    (("10.1.0.0/16",), "10.0.255.255", False),
    (("10.1.0.0/16",), "10.2.0.0", False),
    (("10.1.0.0/16", "192.168.5.0/24"), "192.168.5.77", True),
    (("10.1.0.0/16", "192.168.5.0/24"), "192.168.6.1", False),
    (("169.254.0.0/16",), "169.254.1.1", True),
    (("169.254.0.0/16",), "169.254.169.254", False),  # metadata needs to be named exactly
    (("169.254.169.254/32",), "169.254.169.254", True),
    (("0.0.0.0/0",), "169.254.169.254", False),
    (("0.0.0.0/0",), "127.0.0.1", True),
    (("0.0.0.0/0",), "::1", False),
    (("fd00::/8",), "fd12::1", True),
    (("fd00::/8",), "fd00:ec2::254", False),
    (("fd00::/8",), "fc00::1", False),
    (("::1/128",), "::1", True),
    (("::1/128",), "127.0.0.1", False),
]


@pytest.mark.parametrize(("allowed", "address", "passes"), ALLOW_TABLE)
def test_allowlist_exempts_only_its_range(allowed: tuple[str, ...], address: str, passes: bool) -> None:
    result = forbidden_reason(ip_address(address), parse_networks(allowed))
    assert (result is None) is passes, result


def test_parse_networks() -> None:
    assert [str(n) for n in parse_networks(["127.0.0.1/32", " 10.1.2.3/16 ", ""])] == [
        "127.0.0.1/32",
        "10.1.0.0/16",
    ]
    with pytest.raises(ValueError, match="does not appear"):
        parse_networks(["not-a-network"])


# --- host notations: what getaddrinfo / inet_aton would make of them -----------------------------------

HOST_TABLE: list[tuple[str, IPAddress | None]] = [
    ("127.0.0.1", IPv4Address("127.0.0.1")),
    ("2130706433", IPv4Address("127.0.0.1")),
    ("0x7f000001", IPv4Address("127.0.0.1")),
    ("0X7F000001", IPv4Address("127.0.0.1")),
    ("017700000001", IPv4Address("127.0.0.1")),
    ("0177.0.0.1", IPv4Address("127.0.0.1")),
    ("0177.0000.0000.0001", IPv4Address("127.0.0.1")),
    ("127.1", IPv4Address("127.0.0.1")),
    ("127.0.1", IPv4Address("127.0.0.1")),
    ("0x7f.1", IPv4Address("127.0.0.1")),
    ("0x7f.0x0.0x0.0x1", IPv4Address("127.0.0.1")),
    ("0x7f.0.0.01", IPv4Address("127.0.0.1")),
    ("10.0x10203", IPv4Address("10.1.2.3")),
    ("0xa9fea9fe", IPv4Address("169.254.169.254")),
    ("2852039166", IPv4Address("169.254.169.254")),
    ("0", IPv4Address("0.0.0.0")),
    ("0x0", IPv4Address("0.0.0.0")),
    ("4294967295", IPv4Address("255.255.255.255")),
    ("[::1]", IPv6Address("::1")),
    ("::1", IPv6Address("::1")),
    ("[::ffff:127.0.0.1]", IPv6Address("::ffff:127.0.0.1")),
    ("[0:0:0:0:0:ffff:7f00:1]", IPv6Address("::ffff:127.0.0.1")),
    ("[fe80::1%25eth0]", IPv6Address("fe80::1%eth0")),
    # names (None): inet_aton refuses these, so getaddrinfo resolves them and the answer is checked
    ("4294967296", None),
    ("256.0.0.1", None),
    ("1.2.3.256", None),
    ("1.16777216", None),
    ("1.65536", IPv4Address("1.1.0.0")),
    ("1.2.3.4.5", None),
    ("08.0.0.1", None),
    ("0x", None),
    ("0xg1", None),
    ("127.0.0.1.", None),
    ("", None),
    ("-1", None),
    ("+1", None),
    ("\uff11\uff12\uff17.0.0.1", None),  # fullwidth digits: a name; its resolution is checked
    ("img.example.com", None),
    ("localhost", None),
    ("1e3", None),
    ("127.0.0.1.nip.io", None),
    ("not-an-ip", None),
]


@pytest.mark.parametrize(("host", "expected"), HOST_TABLE)
def test_ip_from_host(host: str, expected: IPAddress | None) -> None:
    assert ip_from_host(host) == expected


@pytest.mark.parametrize("host", ["[not-v6]", "[127.0.0.1]", "[::1", "::1]"])
def test_bad_bracketed_hosts_raise(host: str) -> None:
    with pytest.raises(ValueError):
        ip_from_host(host)


@pytest.mark.parametrize(
    "host", ["2130706433", "0x7f000001", "0177.0.0.1", "127.1", "0x7f.1", "017700000001", "[::ffff:7f00:1]"]
)
def test_alternative_notations_of_loopback_are_refused(host: str) -> None:
    ip = ip_from_host(host)
    assert ip is not None
    assert forbidden_reason(ip) is not None
    assert "loopback" in (forbidden_reason(ip) or "")


def test_notations_agree_with_the_system_resolver() -> None:
    """Our reading of numeric hosts is the one getaddrinfo (glibc inet_aton) has."""
    import socket

    for host, expected in HOST_TABLE:
        if expected is None or host.startswith("[") or ":" in host:
            continue
        resolved = {info[4][0] for info in socket.getaddrinfo(host, 80, type=socket.SOCK_STREAM)}
        assert resolved == {str(expected)}, host
