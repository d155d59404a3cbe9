"""Which image URLs are accepted: the one home of the rules on a URL as people give it.

A URL is absolute ``http`` or ``https``, with a valid host name or IP literal, no user name or
password, no whitespace, control, invisible character or backslash (``\\`` is read as ``/`` by
browsers but not by Python: a parser-confusion trick), and at most ``max_length`` characters.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from ipaddress import IPv6Address

from sansio.messages import show

_LABEL = r"(?!-)[a-z0-9_-]{1,63}(?<!-)"
_ASCII_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_AUTHORITY_END = re.compile(r"[/?#]")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_URL_ASCII_BAD = re.compile(r"[\x00-\x20\x7f\\]")
_INVISIBLE = ("Cc", "Cf", "Zl", "Zp", "Cs", "Co")


def url_problem(url: str, max_length: int = 2_048) -> str | None:
    """Why ``url`` (already stripped) is not an acceptable image URL, or None."""
    shown = show(url)
    if len(url) > max_length:
        return f"the URL {shown} is {len(url):,} characters long; the limit is {max_length:,}"
    return _char_problem(url, shown) or _scheme_problem(url, shown) or _host_problem(url, shown)


def _char_problem(url: str, shown: str) -> str | None:
    match = _URL_ASCII_BAD.search(url)
    ch = match.group() if match else ""
    if not ch and not url.isascii():
        ch = next((c for c in url if c.isspace() or unicodedata.category(c) in _INVISIBLE), "")
    if not ch:
        return None
    if ch == "\\":
        return f"{shown} contains a backslash: use '/'"
    if ch.isspace():
        return f"{shown} contains a space or line break (separate URLs with commas)"
    kind = "a control" if unicodedata.category(ch) == "Cc" else "an invisible"
    return f"{shown} contains {kind} character (U+{ord(ch):04X})"


def _scheme_problem(url: str, shown: str) -> str | None:
    head, separator, _ = url.partition("://")
    if not separator or not _SCHEME_RE.fullmatch(head):
        return f"{shown} is not an absolute URL (it should start with https:// or http://)"
    if head.lower() not in ("http", "https"):
        return f"{shown} is not an http or https URL"
    return None


def _host_problem(url: str, shown: str) -> str | None:
    """The authority part, read the way RFC 3986 splits it (the fetcher checks the address later)."""
    authority = url.partition("://")[2]
    end = _AUTHORITY_END.search(authority)
    if end is not None:
        authority = authority[: end.start()]
    if "@" in authority:
        return f"{shown} contains a user name or password, which are not accepted"
    bracketed = authority.startswith("[")
    if bracketed:
        host, close, after = authority[1:].partition("]")
        if not close:
            return f"{shown} has an invalid host {show(authority)}"
    else:
        host, colon, port = authority.partition(":")
        after = colon + port
    if not host:
        return f"{shown} has no host name"
    port = after[1:]
    if after[:1] not in ("", ":") or (
        port and not (len(port) <= 5 and port.isascii() and port.isdigit() and 0 < int(port) < 65536)
    ):
        return f"{shown} has an invalid port {show(after)}"
    if not _valid_host(host.lower(), bracketed=bracketed):
        return f"{shown} has an invalid host {show(host)}"
    return None


@lru_cache(maxsize=4096)  # a catalogue names few hosts, many times
def _valid_host(host: str, *, bracketed: bool) -> bool:
    if bracketed:
        try:
            IPv6Address(host)
        except ValueError:
            return False
        return True
    if len(host) > 253:
        return False
    if host.isascii():
        return _ASCII_HOST.fullmatch(host) is not None
    labels = host.removesuffix(".").split(".")
    return all(
        0 < len(label) <= 63
        and not label.startswith("-")
        and not label.endswith("-")
        and all(ch.isalnum() or ch in "-_" for ch in label)
        for label in labels
    )
