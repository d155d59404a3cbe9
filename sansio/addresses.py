"""Which IP addresses the service may fetch from: pure policy, no sockets, no DNS.

Only global unicast addresses pass. Everything in IANA's special-purpose registries that is not
globally reachable is refused with a short reason, and so is every IPv6 form that embeds a refused
IPv4 address (IPv4-mapped, IPv4-compatible, 6to4, NAT64). Python's ``ipaddress`` flags are not used
for the decision: they call 6to4, NAT64 and ``::127.0.0.1`` global and CGNAT not private, and they
change between Python versions.

``allowed`` networks (``FETCH_ALLOWED_PRIVATE_NETWORKS``) exempt the addresses inside them and
nothing else. A cloud metadata address is exempt only when an allowed network is exactly that
address (a /32 or /128): a broad ``169.254.0.0/16`` or ``0.0.0.0/0`` never opens it.

``ip_from_host`` reads a URL host the way ``getaddrinfo``/``inet_aton`` would, so ``2130706433``,
``0x7f000001``, ``0177.0.0.1``, ``127.1`` and ``0x7f.1`` are judged as the loopback address they are.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

__all__ = [
    "IPAddress",
    "IPNetwork",
    "forbidden_reason",
    "ip_from_host",
    "parse_networks",
]

_v4 = IPv4Network
_v6 = IPv6Network

METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    {
        IPv4Address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack, Oracle, DigitalOcean …
        IPv4Address("169.254.170.2"),  # AWS ECS task metadata
        IPv4Address("100.100.100.200"),  # Alibaba Cloud
        IPv6Address("fd00:ec2::254"),  # AWS IMDS over IPv6
    }
)
_METADATA = "the cloud metadata address"

# First match wins, so the more specific entries come first.
_V4_RANGES: tuple[tuple[IPv4Network, str], ...] = (
    (_v4("0.0.0.0/32"), "the unspecified address"),
    (_v4("0.0.0.0/8"), "a reserved ('this network') address"),
    (_v4("10.0.0.0/8"), "a private address"),
    (_v4("100.64.0.0/10"), "a shared (CGNAT) address"),
    (_v4("127.0.0.0/8"), "a loopback address"),
    (_v4("169.254.0.0/16"), "a link-local address"),
    (_v4("172.16.0.0/12"), "a private address"),
    (_v4("192.0.0.0/24"), "a reserved (IETF protocol assignments) address"),
    (_v4("192.0.2.0/24"), "a documentation address"),
    (_v4("192.88.99.0/24"), "a reserved (6to4 relay anycast) address"),
    (_v4("192.168.0.0/16"), "a private address"),
    (_v4("198.18.0.0/15"), "a benchmarking address"),
    (_v4("198.51.100.0/24"), "a documentation address"),
    (_v4("203.0.113.0/24"), "a documentation address"),
    (_v4("224.0.0.0/4"), "a multicast address"),
    (_v4("255.255.255.255/32"), "the broadcast address"),
    (_v4("240.0.0.0/4"), "a reserved address"),
)

_MAPPED = _v6("::ffff:0:0/96")
_COMPATIBLE = _v6("::/96")
_NAT64 = _v6("64:ff9b::/96")
_SIX_TO_FOUR = _v6("2002::/16")
_GLOBAL_UNICAST = _v6("2000::/3")
_COMPAT_FORM = "an IPv4-compatible"

_V6_RANGES: tuple[tuple[IPv6Network, str], ...] = (
    (_v6("::/128"), "the unspecified address"),
    (_v6("::1/128"), "a loopback address"),
    (_v6("64:ff9b:1::/48"), "a local-use NAT64 address"),
    (_v6("100::/64"), "a reserved (discard-only) address"),
    (_v6("2001::/32"), "a Teredo address"),
    (_v6("2001:2::/48"), "a benchmarking address"),
    (_v6("2001::/23"), "a reserved (IETF protocol assignments) address"),
    (_v6("2001:db8::/32"), "a documentation address"),
    (_v6("3fff::/20"), "a documentation address"),
    (_v6("5f00::/16"), "a reserved (SRv6) address"),
    (_v6("fc00::/7"), "a unique local (private) address"),
    (_v6("fe80::/10"), "a link-local address"),
    (_v6("fec0::/10"), "a site-local address"),
    (_v6("ff00::/8"), "a multicast address"),
)


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """``("127.0.0.1/32", "10.1.0.0/16")`` as network objects; raises ValueError for a bad entry."""
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs if cidr.strip())


def forbidden_reason(ip: IPAddress, allowed: Iterable[IPNetwork] = ()) -> str | None:
    """``None`` if the service may connect to ``ip``; otherwise why not, e.g. ``"a private address"``.

    The reason reads after the address: ``f"{ip} is {reason}"``.
    """
    reason = _classify(ip)
    if reason is None or _exempt(ip, tuple(allowed)):
        return None
    return reason


def _classify(ip: IPAddress) -> str | None:
    if isinstance(ip, IPv4Address):
        return _classify_v4(ip)
    return _classify_v6(ip)


def _classify_v4(ip: IPv4Address) -> str | None:
    if ip in METADATA_ADDRESSES:
        return _METADATA
    for network, reason in _V4_RANGES:
        if ip in network:
            return reason
    return None


def _classify_v6(ip: IPv6Address) -> str | None:
    plain = IPv6Address(int(ip))  # without a %scope, which would not change where it leads
    if plain in METADATA_ADDRESSES:
        return _METADATA
    embedded = _embedded_v4(plain)
    if embedded is not None:
        form, v4 = embedded
        inner = _classify_v4(v4)
        if inner is None and form == _COMPAT_FORM:
            inner = "deprecated and never routed"
        return None if inner is None else f"{form} form of {v4}, {inner}"
    for network, reason in _V6_RANGES:
        if plain in network:
            return reason
    return None if plain in _GLOBAL_UNICAST else "a reserved address"


def _embedded_v4(ip: IPv6Address) -> tuple[str, IPv4Address] | None:
    """The IPv4 address an IPv6 address stands for, with the form's name ("a 6to4"), if it is one."""
    if ip in _MAPPED:
        return "an IPv4-mapped", IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _NAT64:
        return "a NAT64", IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _SIX_TO_FOUR:
        return "a 6to4", IPv4Address((int(ip) >> 80) & 0xFFFFFFFF)
    if ip in _COMPATIBLE and int(ip) > 1:  # :: and ::1 are the unspecified and loopback addresses
        return _COMPAT_FORM, IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _exempt(ip: IPAddress, allowed: tuple[IPNetwork, ...]) -> bool:
    candidates: list[IPAddress] = [ip]
    if isinstance(ip, IPv6Address):
        candidates = [IPv6Address(int(ip))]
        if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d is a.b.c.d on a dual-stack socket
            candidates.append(ip.ipv4_mapped)
    for candidate in candidates:
        metadata = candidate in METADATA_ADDRESSES
        for network in allowed:
            if network.version != candidate.version or candidate not in network:
                continue
            if not metadata or network.num_addresses == 1:
                return True
    return False


def ip_from_host(host: str) -> IPAddress | None:
    """The IP address a URL host denotes, or ``None`` if it is a name to resolve.

    Accepts ``[v6]`` and bare IPv6, and every IPv4 notation ``inet_aton`` does: one to four parts,
    each decimal, octal (leading ``0``) or hex (``0x``), the last part filling the remaining bytes.
    Raises ValueError for a bracketed host that is not an IPv6 address.
    """
    if host.startswith("[") or host.endswith("]"):
        if not (host.startswith("[") and host.endswith("]")):
            raise ValueError(f"{host!r} is not a valid host")
        return IPv6Address(host[1:-1].replace("%25", "%"))
    if ":" in host:
        try:
            return IPv6Address(host.replace("%25", "%"))
        except ValueError:
            return None
    return _inet_aton(host)


_MAX_PARTS = 4


def _inet_aton(host: str) -> IPv4Address | None:
    parts = host.split(".")
    if not 1 <= len(parts) <= _MAX_PARTS:
        return None
    values: list[int] = []
    for part in parts:
        value = _number(part)
        if value is None:
            return None
        values.append(value)
    *leading, last = values
    if any(value > 0xFF for value in leading) or last >= 1 << (8 * (_MAX_PARTS + 1 - len(values))):
        return None
    number = last
    for index, value in enumerate(leading):
        number |= value << (8 * (3 - index))
    return IPv4Address(number)


def _number(part: str) -> int | None:
    """One ``inet_aton`` part: ``0x1f`` hex, ``017`` octal, ``17`` decimal; None if it is not one."""
    if not part.isascii():
        return None
    lowered = part.lower()
    try:
        if lowered.startswith("0x"):
            digits = lowered[2:]
            return int(digits, 16) if digits and all(c in "0123456789abcdef" for c in digits) else None
        if not lowered.isdigit():
            return None
        if len(lowered) > 1 and lowered.startswith("0"):
            return int(lowered, 8)
        return int(lowered, 10)
    except ValueError:  # "08": not octal, and inet_aton refuses it too
        return None
