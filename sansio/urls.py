"""Which image URLs are accepted, and in what form they are kept: the one home of the URL rules.

A list of URLs in one cell (``read_url_list``), as spreadsheets hold them: a new URL starts wherever a
scheme (``https://``, ``http://``, or another, then refused), ``//`` or ``www.`` follows a comma, a
semicolon or whitespace; a line break, a tab, or a comma or semicolon with a space next to it always
ends an item. A comma or semicolon inside a URL with nothing of the sort after it stays in the URL
(image CDNs write ``w_100,h_100``). Two separators with nothing between (``a,,b``) or a separator
at either end of the list are an empty slot, refused: output slots are aligned with input slots.

One URL (``read_url``): absolute ``http`` or ``https``; a valid host name or IP literal; no user
name or password; no backslash (``\\`` is read as ``/`` by browsers but not by Python: a
parser-confusion trick); no control, invisible or whitespace character except the plain space,
which is percent-encoded (``my photo.jpg`` becomes ``my%20photo.jpg``); at most ``max_length``
characters as written. An international host name is IDNA-encoded (IDNA 2008 with the UTS #46
mapping, as browsers do, by the ``idna`` package), so what is kept and fetched is plain ASCII; a
host that cannot be encoded is refused saying why. Everything else in the URL is kept as written.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import IPv6Address

import idna

from sansio.messages import show

_LABEL = r"(?!-)[a-z0-9_-]{1,63}(?<!-)"
_ASCII_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_AUTHORITY_END = re.compile(r"[/?#]")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_URL_ASCII_BAD = re.compile(r"[\x00-\x1f\x7f\\]")
_INVISIBLE = ("Cc", "Cf", "Zl", "Zp", "Cs", "Co")

_SEPARATORS = re.compile(r"[\s,;]+")
_WHITESPACE = re.compile(r"\s")
_ITEM_AHEAD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://|//|www\.", re.IGNORECASE)
# A line break or a tab, or a comma or semicolon with whitespace next to it.
_ALWAYS_ENDS = re.compile(r"[\t\n\r\v\f\x1c-\x1f\x85\u2028\u2029]|[,;]\s|\s[,;]")


@dataclass(frozen=True)
class UrlList:
    urls: tuple[str, ...]  # each URL in the form kept and fetched (see ``read_url``), in order
    problems: tuple[str, ...]  # why the cell cannot be read, in plain words; empty if it can


def read_url_list(cell: str, *, max_urls: int = 100, max_length: int = 2_048) -> UrlList:
    """The URLs of one cell, or the problems that stop it being read (see the module's docstring)."""
    items, problems = _split(cell)
    if not items and not problems:
        return UrlList((), ("there is no image URL",))
    if len(items) > max_urls:
        return UrlList((), (f"the cell has {len(items):,} URLs; the limit is {max_urls:,}",))
    urls: list[str] = []
    for item in items:
        url, problem = read_url(item, max_length)
        if problem is not None:
            problems.append(problem)
        elif url is not None:
            urls.append(url)
    return UrlList(tuple(urls) if not problems else (), tuple(problems))


def _split(cell: str) -> tuple[list[str], list[str]]:
    text = cell.strip()
    plain = [part.strip() for part in text.split(",")]
    if all(part[:8].lower().startswith(("https://", "http://")) and _plain(part) for part in plain):
        return plain, []  # the common case, "a,b" or "a, b", read as the general rule below would
    items: list[str] = []
    problems: list[str] = []
    start, stop = 0, len(text)
    for run in _SEPARATORS.finditer(text):
        begin, end = run.span()
        separator = run.group()
        marks = sum(separator.count(mark) for mark in ",;")
        if begin == 0 or end == len(text):
            if begin == 0:
                start = end
            if end == len(text):
                stop = begin
            if marks:
                mark = "comma" if "," in separator else "semicolon"
                where = "at the start" if begin == 0 else "at the end"
                problems.append(f"an empty URL {where} of the list: remove the extra {mark}")
            continue
        if not (_ALWAYS_ENDS.search(separator) or _ITEM_AHEAD.match(text, end)):
            continue  # a space or a lone comma inside a URL
        items.append(text[start:begin])
        start = end
        if marks > 1:
            mark = {",,": "comma", ";;": "semicolon"}.get(
                "".join(c for c in separator if c in ",;"), "separator"
            )
            problems.append(f"an empty URL at position {len(items) + 1} of the list: remove the extra {mark}")
    if start < stop:
        items.append(text[start:stop])
    return items, problems


def _plain(part: str) -> bool:
    """No separator inside: neither whitespace nor a semicolon."""
    return ";" not in part and not _WHITESPACE.search(part)


def read_url(url: str, max_length: int = 2_048) -> tuple[str | None, str | None]:
    """``(the URL as kept, None)`` if ``url`` (already stripped) is acceptable, else ``(None, why)``."""
    if len(url) > max_length:
        return None, f"the URL {show(url)} is {len(url):,} characters long; the limit is {max_length:,}"
    scheme, _, rest = url.partition("://")
    end = _AUTHORITY_END.search(rest)
    authority, path = (rest[: end.start()], rest[end.start() :]) if end else (rest, "")
    problem = _char_problem(url) or _scheme_problem(url)
    if problem is None:
        authority, problem = _authority(authority)
    if problem is not None:
        return None, f"{show(url)} {problem}"
    return f"{scheme}://{authority}{path.replace(' ', '%20')}", None


# What is wrong with a URL, said after the URL: "'https://…' contains a backslash: use '/'".


def _char_problem(url: str) -> str | None:
    match = _URL_ASCII_BAD.search(url)
    ch = match.group() if match else ""
    if not ch and not url.isascii():
        ch = next((c for c in url if c != " " and (c.isspace() or unicodedata.category(c) in _INVISIBLE)), "")
    if not ch:
        return None
    if ch == "\\":
        return "contains a backslash: use '/'"
    if ch.isspace():
        name = unicodedata.name(ch, "").lower() or "whitespace character"
        return f"contains a {name} (U+{ord(ch):04X}): type a plain space, or remove it"
    kind = "a control" if unicodedata.category(ch) == "Cc" else "an invisible"
    return f"contains {kind} character (U+{ord(ch):04X})"


def _scheme_problem(url: str) -> str | None:
    if url[:8].lower().startswith(("https://", "http://")):
        return None
    head, separator, _ = url.partition("://")
    if not separator or not _SCHEME_RE.fullmatch(head):
        return "is not an absolute URL (it should start with https:// or http://)"
    if head.lower() not in ("http", "https"):
        return "is not an http or https URL"
    return None


@lru_cache(maxsize=4096)  # a catalogue names few hosts, many times
def _authority(authority: str) -> tuple[str, str | None]:
    """The authority with its host IDNA-encoded, read the way RFC 3986 splits it; or why not.

    The fetcher checks the address it leads to later.
    """
    parts = _host_and_port(authority)
    if isinstance(parts, str):
        return authority, parts
    host, after, bracketed = parts
    if bracketed:
        return authority, None if _valid_ipv6(host) else f"has an invalid host {show(host)}"
    ascii_host, problem = _ascii_host(host)
    if problem is not None:
        return authority, f"has a host name that cannot be used: {problem}"
    if not _valid_ascii_host(ascii_host.lower()):
        return authority, f"has an invalid host {show(host)}"
    return ascii_host + after, None


def _host_and_port(authority: str) -> tuple[str, str, bool] | str:
    """``(host, ":port" or "", bracketed)``, or why the authority cannot be read."""
    if "@" in authority:
        return "contains a user name or password, which are not accepted"
    bracketed = authority.startswith("[")
    if bracketed:
        host, close, after = authority[1:].partition("]")
        if not close:
            return f"has an invalid host {show(authority)}"
    else:
        host, colon, port = authority.partition(":")
        after = colon + port
    if not host:
        return "has no host name"
    port = after[1:]
    if after[:1] not in ("", ":") or (
        port and not (len(port) <= 5 and port.isascii() and port.isdigit() and 0 < int(port) < 65536)
    ):
        return f"has an invalid port {show(after)}"
    if " " in host:
        return f"has a space in its host name {show(host)}"
    return host, after, bracketed


@lru_cache(maxsize=4096)  # a catalogue names few hosts, many times
def _ascii_host(host: str) -> tuple[str, str | None]:
    """The host as DNS knows it: non-ASCII labels IDNA-encoded; or why it cannot be."""
    if host.isascii():
        return host, None
    try:
        mapped = idna.uts46_remap(host, std3_rules=False, transitional=False)
    except idna.IDNAError:
        return host, _idna_problem(host)
    labels = mapped.split(".")
    encoded: list[str] = []
    for label in labels:
        if label.isascii():
            encoded.append(label)
            continue
        try:
            encoded.append(idna.alabel(label).decode("ascii"))
        except idna.IDNABidiError:
            return host, f"{show(label)} mixes right-to-left and left-to-right writing"
        except idna.IDNAError:
            if len(label.encode("punycode")) + len("xn--") > 63:
                return host, f"the part {show(label)} is too long once encoded (at most 63 characters)"
            return host, _idna_problem(label)
    return ".".join(encoded), None


def _idna_problem(label: str) -> str:
    """In plain words, the first thing that stops ``label`` being an international domain name."""
    if label.startswith("-") or label.endswith("-"):
        return f"the part {show(label)} starts or ends with a hyphen"
    for ch in label:
        if ch.isascii() and (ch.isalnum() or ch in "-."):
            continue
        try:
            idna.alabel(ch)
        except idna.IDNAError:
            name = unicodedata.name(ch, "").lower()
            described = f"{show(ch)} ({name}, U+{ord(ch):04X})" if name else f"U+{ord(ch):04X}"
            return f"the character {described} is not allowed in a domain name"
    return f"{show(label)} is not a valid international domain name"


def _valid_ipv6(host: str) -> bool:
    try:
        IPv6Address(host)
    except ValueError:
        return False
    return True


@lru_cache(maxsize=4096)
def _valid_ascii_host(host: str) -> bool:
    return len(host) <= 253 and _ASCII_HOST.fullmatch(host) is not None
