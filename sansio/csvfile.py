"""Input catalogue CSV: parse and validate, strictly and streaming; result CSV: write.

Reading (``CatalogueReader``) follows the contract's "Input CSV" and is built to refuse clearly:

- Text: UTF-8, with or without a byte-order mark. A UTF-16 or UTF-32 file *with* a byte-order mark
  (Excel's "Unicode Text") is converted, since its BOM says reliably what it is. Anything else that is
  not UTF-8 (Windows-1252, UTF-16 without a BOM, a workbook, an image, a NUL byte anywhere) is refused
  whole, with a message that says what the file looks like. Line endings LF, CRLF and CR all work.
- Structure: the csv module in strict mode, so an unterminated quote or text after a closing quote is
  an error naming the line where the record starts, never a cell that swallows the rest of the file.
  A row is at most ``max_record_chars`` characters (default 4 x ``max_field_bytes`` + 4,096), which
  bounds memory whatever the file holds; every cell is checked against ``max_field_bytes`` in UTF-8.
- Header: the first non-blank record. Names are matched ignoring case, spacing and punctuation
  (``S.No.``, ``S. No``, ``Serial Number``, ``Input Image URLs``, ``Input Image URL``). Unknown extra
  columns are allowed and ignored, but every row must have as many cells as the header. A missing
  required column, or a required column named twice, refuses the file. A file that looks semicolon-
  or tab-separated is told so.
- Rows: blank lines, and rows whose cells are all empty (spreadsheets export those as ``,,``), are
  skipped. ``S. No.``: ASCII digits, optional trailing dot, spaces around allowed, 1 to 2**63-1, at
  most 64 characters, unique (a repeat names the line of the first). ``Product Name``: not blank, no
  control characters other than tab and line breaks. ``Input Image Urls``: one or more absolute
  http(s) URLs separated by commas, whitespace around each ignored; an empty slot (``a,,b`` or a
  trailing comma) is refused because output slots are aligned with input slots by position. Each URL
  has a valid host name or IP literal, no user name or password, no whitespace, control, invisible
  character or backslash (``\\`` is read as ``/`` by browsers but not by Python: a parser-confusion
  trick), at most ``max_url_length`` characters; at most ``max_urls_per_row`` URLs. The cell must not
  start with a tab or line break (see ``write_result_csv``). A row carries its three cells exactly
  as written (the result CSV echoes them) next to the parsed serial and URLs.
- Problems carry the 1-based line where the record starts (header = line 1 when the file starts with
  it) and the contract's column name; whole-file problems have neither. Parsing goes on after a row's
  problems (and after a stray quote, from the next line) to report as many as ``max_problems``; it
  stops at problems after which nothing reliable can be said (not text, a record over the size cap,
  an unclosed quote, too many rows, a bad header).

``csv.field_size_limit`` is process-global: each reader raises it to at least its record cap and
never lowers it, so concurrent readers with different limits cannot trip each other; field sizes are
checked here, in bytes, with a clear message.
"""

from __future__ import annotations

import codecs
import csv
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from ipaddress import IPv6Address
from typing import IO

INPUT_COLUMNS = ("S. No.", "Product Name", "Input Image Urls")
OUTPUT_COLUMNS = (*INPUT_COLUMNS, "Output Image Urls")
SERIAL, NAME, URLS = INPUT_COLUMNS

MAX_SERIAL = 2**63 - 1  # the database column is a signed 64-bit integer
MAX_SERIAL_CHARS = 64  # Product.serial_text
SHOWN_CHARS = 80  # values quoted in messages are cut to this
CHUNK_BYTES = 64 * 1024

# Normalised header name (casefolded, letters and digits only) -> the contract's column name.
_HEADER_NAMES = {
    "sno": SERIAL,
    "serialno": SERIAL,
    "serialnumber": SERIAL,
    "productname": NAME,
    "inputimageurls": URLS,
    "inputimageurl": URLS,
}

_BOMS = (  # longest first: the UTF-32-LE mark starts with the UTF-16-LE one
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_MAGIC = (
    (b"PK\x03\x04", "an Excel workbook (.xlsx) or another ZIP archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old-style Excel workbook (.xls) or another Office file"),
    (b"%PDF-", "a PDF document"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
)
SAVE_AS = "save it as 'CSV UTF-8 (comma delimited)'"

_NEWLINE = re.compile(r"\r\n|\r|\n")
_QUOTED = re.compile(r'"[^"]*(?:""[^"]*)*"')
_UNQUOTED = re.compile(r"[^,\r\n]*")
_SERIAL_RE = re.compile(r"([0-9]+)\.?")
_LABEL = r"(?!-)[a-z0-9_-]{1,63}(?<!-)"
_ASCII_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_AUTHORITY_END = re.compile(r"[/?#]")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_NAME_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_URL_ASCII_BAD = re.compile(r"[\x00-\x20\x7f\\]")
_INVISIBLE = ("Cc", "Cf", "Zl", "Zp", "Cs", "Co")
_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")


@dataclass(frozen=True)
class CsvLimits:
    max_rows: int = 200_000
    max_field_bytes: int = 65_536
    max_urls_per_row: int = 100
    max_url_length: int = 2_048
    max_problems: int = 100
    # Longest record (all its lines, in characters); None: 4 x max_field_bytes + 4,096.
    max_record_chars: int | None = None

    @property
    def record_chars(self) -> int:
        if self.max_record_chars is not None:
            return self.max_record_chars
        return 4 * self.max_field_bytes + 4_096


@dataclass(frozen=True)
class CsvProblem:
    line: int | None
    column: str | None
    message: str


@dataclass(frozen=True)
class CatalogueRow:
    line: int  # 1-based line of the file where the record starts; the header is line 1
    serial_number: int
    serial_text: str  # the cell exactly as written, echoed in the result CSV
    product_name: str  # the cell exactly as written (checked not blank once stripped), echoed too
    urls_text: str  # the cell exactly as written
    urls: tuple[str, ...]  # each URL with the whitespace around it removed, in order


class _Stop(Exception):
    """Nothing more can be read reliably (or the problem cap is reached): end the iteration."""


class _TooLong(Exception):
    """The current record grew over the cap: reported by the parser, which knows the columns."""


def show(value: str, limit: int = SHOWN_CHARS) -> str:
    """A value quoted for a message: cut to ``limit`` characters, control characters escaped."""
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    return repr(value)


def normalise_header(name: str) -> str:
    folded = unicodedata.normalize("NFKC", name).casefold()
    return "".join(ch for ch in folded if ch.isalnum())


def neutralise_formula(cell: str) -> str:
    """OWASP's CSV-injection defence: a cell that a spreadsheet could take for a formula gets a ``'``."""
    return "'" + cell if cell.startswith(_FORMULA_TRIGGERS) else cell


def _count_lines(text: str) -> int:
    return len(_NEWLINE.findall(text))


def _first_line(text: str) -> str:
    return _NEWLINE.split(text, maxsplit=1)[0]


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


class _Lines:
    """The stream's physical lines, decoded, terminators kept, for ``csv.reader``.

    Reads in chunks; refuses what is not text; keeps the current record's lines (for locating a
    structural error) and stops a record that grows over the cap, which bounds memory.
    """

    def __init__(self, reader: CatalogueReader) -> None:
        self._owner = reader
        self._stream = reader.stream
        self._cap = reader.limits.record_chars
        self.encoding = "utf-8"
        self.lines_read = 0
        self.record_start = 1
        self.record: list[str] = []
        self._record_chars = 0

    def new_record(self, start: int) -> None:
        self.record_start = start
        self.record = []
        self._record_chars = 0

    def _read(self, size: int = CHUNK_BYTES) -> bytes:
        data = self._stream.read(size)
        return bytes(data) if data else b""

    def _whole_file(self, message: str) -> _Stop:
        self._owner.report(None, None, message)
        return _Stop()

    def _first_chunk(self) -> bytes:
        data = self._read()
        while data and len(data) < 8:  # a raw stream may hand over fewer bytes than asked for
            more = self._read()
            if not more:
                break
            data += more
        for bom, encoding in _BOMS:
            if data.startswith(bom):
                self.encoding = encoding
                return data[len(bom) :]
        for magic, what in _MAGIC:
            if data.startswith(magic):
                raise self._whole_file(f"the file is {what}, not a CSV text file: {SAVE_AS}")
        head = data[:512]
        if b"\x00" in head:
            odd, even = head[1::2].count(0), head[0::2].count(0)
            if max(odd, even) >= 0.8 * (len(head) // 2) and min(odd, even) == 0:
                raise self._whole_file(
                    f"the file looks like UTF-16 text without a byte-order mark, not UTF-8: {SAVE_AS}"
                )
        return data

    def _decode_problem(self, err: UnicodeDecodeError, pending: str) -> _Stop:
        before = err.object[: err.start].decode(self.encoding, errors="replace")
        line = self.lines_read + _count_lines(pending + before) + 1
        if self.encoding == "utf-8":
            bad = err.object[err.start : err.start + 1].hex().upper()
            message = f"the file is not UTF-8 text: line {line} has the byte 0x{bad}, not valid there"
            return self._whole_file(f"{message}; {SAVE_AS}")
        name = self.encoding.upper()
        return self._whole_file(f"the file is not valid {name} text (line {line}): {SAVE_AS}")

    def _count(self, line: str) -> None:
        self._record_chars += len(line)
        if self._record_chars > self._cap:
            raise _TooLong

    def __iter__(self) -> Iterator[str]:
        data = self._first_chunk()
        decoder = codecs.getincrementaldecoder(self.encoding)("strict")
        pending = ""
        while True:
            final = not data
            try:
                text = decoder.decode(data, final)
            except UnicodeDecodeError as err:
                raise self._decode_problem(err, pending) from None
            text = pending + text
            nul = text.find("\x00")
            if nul >= 0:
                at = self.lines_read + _count_lines(text[:nul]) + 1
                raise self._whole_file(
                    f"the file contains a NUL character (line {at}): it is binary, not CSV text; {SAVE_AS}"
                )
            pos, size = 0, len(text)
            for match in _NEWLINE.finditer(text):
                end = match.end()
                if end == size and not final and match.group() == "\r":
                    break  # its \n may start the next chunk
                line = text[pos:end]
                pos = end
                self._count(line)
                self.lines_read += 1
                self.record.append(line)
                yield line
            pending = text[pos:]
            if final:
                if pending:
                    self._count(pending)
                    self.lines_read += 1
                    self.record.append(pending)
                    yield pending
                return
            if self._record_chars + len(pending) > self._cap:
                raise _TooLong
            data = self._read()


@dataclass(frozen=True)
class _Break:
    """Where the csv module gave up on a record, replayed: the cell's index and what went wrong."""

    unclosed: bool  # True: a quoted cell never closed; False: text after a closing quote
    cell: int
    line_offset: int  # lines after the record's first where the bad cell's quote opened
    snippet: str


def _locate_break(record: str) -> _Break | None:
    """Replay the excel dialect (strict) over a record's text to find the cell the csv error is in."""
    pos, cell = 0, 0
    while True:
        if record.startswith('"', pos):
            match = _QUOTED.match(record, pos)
            if match is None:
                return _Break(True, cell, _count_lines(record[:pos]), record[pos:])
        else:
            match = _UNQUOTED.match(record, pos)
            assert match is not None  # matches the empty string too
        end = match.end()
        following = record[end : end + 1]
        if following != ",":
            if following in ("", "\r", "\n"):
                return None
            tail = _UNQUOTED.match(record, end)
            assert tail is not None
            return _Break(False, cell, _count_lines(record[:pos]), record[pos : tail.end()])
        pos, cell = end + 1, cell + 1


@dataclass
class CatalogueReader:
    """Iterate to get the valid rows; afterwards ``problems`` holds every problem found (up to a cap).

    A caller must consume the whole iterator and then check ``problems``: a file with any problem
    is refused whole. Streams: reads the binary stream in chunks and never closes it, so the caller
    can seek back and read it again with a new reader. Iterate each reader once.
    """

    stream: IO[bytes]
    limits: CsvLimits = field(default_factory=CsvLimits)
    problems: list[CsvProblem] = field(default_factory=list)
    truncated: bool = False  # more problems than max_problems were found

    def report(self, line: int | None, column: str | None, message: str) -> None:
        if len(self.problems) >= self.limits.max_problems:
            self.truncated = True
            raise _Stop()
        self.problems.append(CsvProblem(line, column, message))

    def __iter__(self) -> Iterator[CatalogueRow]:
        self.problems, self.truncated = [], False
        needed = self.limits.record_chars + 1
        if csv.field_size_limit() < needed:
            csv.field_size_limit(needed)
        try:
            yield from _Parse(self).rows()
        except _Stop:
            return


class _Parse:
    """One pass over a file; holds the header's column positions and the serials seen."""

    def __init__(self, owner: CatalogueReader) -> None:
        self.owner = owner
        self.limits = owner.limits
        self.report = owner.report
        self.lines = _Lines(owner)
        self.width = 0
        self.positions: dict[str, int] = {}  # contract column -> cell index
        self.names: dict[int, str] = {}  # cell index -> contract column
        self.seen: dict[int, int] = {}  # serial -> line of its first row

    def rows(self) -> Iterator[CatalogueRow]:
        reader = csv.reader(self.lines, strict=True)
        header_seen = False
        products = 0
        while True:
            start = reader.line_num + 1
            self.lines.new_record(start)
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as err:
                if not self._structural(err, start) or not header_seen:
                    return
                products += 1  # a broken row is still a row: not "only a header"
                continue
            except _TooLong:
                self._too_long(start)
                return
            if not any(cell.strip() for cell in cells):
                continue  # a blank line, or a row of empty cells
            if not header_seen:
                header_seen = True
                if not self._header(cells, start):
                    return
                continue
            products += 1
            if products > self.limits.max_rows:
                self.report(
                    None,
                    None,
                    f"the file has more than {self.limits.max_rows:,} products (the limit): "
                    "split it into smaller files",
                )
                return
            row = self._row(cells, start)
            if row is not None:
                yield row
        if not header_seen:
            self.report(None, None, "the file has no products: it is empty")
        elif products == 0:
            self.report(None, None, "the file has no products: it has only a header")

    # -- structure ------------------------------------------------------------------------------

    def _structural(self, err: csv.Error, start: int) -> bool:
        """Report a csv.Error; True if parsing can go on from the next line."""
        located = _locate_break("".join(self.lines.record))
        column = self.names.get(located.cell) if located else None
        if located is not None and located.unclosed:
            opened = start + located.line_offset
            where = "" if opened == start else f" (on line {opened})"
            self.report(
                start,
                column,
                f"a quoted cell is never closed: {show(_first_line(located.snippet), 40)}{where} "
                "has an opening quote but no closing one; the rest of the file was not checked",
            )
            return False
        if located is not None:
            self.report(
                start,
                column,
                f"text after a closing quote in {show(located.snippet)}: "
                'a quote inside a quoted cell must be doubled ("")',
            )
            return True
        if "field larger than field limit" in str(err):  # another user of the csv module lowered it
            self.report(start, None, f"a cell is longer than {csv.field_size_limit():,} characters")
            return False
        self.report(start, None, f"the row cannot be read as CSV ({err})")
        return False

    def _too_long(self, start: int) -> None:
        located = _locate_break("".join(self.lines.record))
        column = self.names.get(located.cell) if located else None
        hint = " (is a closing quote missing?)" if located and located.unclosed else ""
        self.report(
            start,
            column,
            f"the row is longer than {self.limits.record_chars:,} characters{hint}; "
            "the rest of the file was not checked",
        )

    def _header(self, cells: list[str], line: int) -> bool:
        self.width = len(cells)
        duplicates: list[str] = []
        for index, cell in enumerate(cells):
            name = _HEADER_NAMES.get(normalise_header(cell))
            if name is None:
                continue
            if name in self.positions:
                duplicates.append(
                    f"the column {name!r} appears twice in the header "
                    f"(cells {self.positions[name] + 1} and {index + 1})"
                )
                continue
            self.positions[name] = index
            self.names[index] = name
        missing = [name for name in INPUT_COLUMNS if name not in self.positions]
        if missing:
            text = "".join(self.lines.record)
            for separator, label in ((";", "semicolon"), ("\t", "tab")):
                if text.count(separator) >= 2 and text.count(separator) > text.count(","):
                    self.report(None, None, f"the file looks {label}-separated; use commas")
                    return False
            if _SERIAL_RE.fullmatch(cells[0].strip()) and any("://" in c for c in cells):
                self.report(
                    None,
                    None,
                    "the file has no header: the first row should be 'S. No.,Product Name,Input Image Urls'",
                )
                return False
            found = ", ".join(show(c, 40) for c in cells[:10]) + (", …" if len(cells) > 10 else "")
            for name in missing:
                self.report(None, None, f"the column {name!r} is missing (the header has {found})")
        for message in duplicates:
            self.report(line, None, message)
        return not missing and not duplicates

    # -- rows -----------------------------------------------------------------------------------

    def _row(self, cells: list[str], line: int) -> CatalogueRow | None:
        report = self.report
        if len(cells) != self.width:
            message = f"the row has {_plural(len(cells), 'cell')}; the header has {self.width}"
            if len(cells) == 1 and ";" in cells[0]:
                message += ": the row looks semicolon-separated; use commas"
            elif len(cells) > self.width and any(c.strip().lower().startswith("http") for c in cells[2:]):
                message += ": put a list of URLs in double quotes"
            report(line, None, message)
            return None
        before = len(self.owner.problems)
        cap = self.limits.max_field_bytes
        for index, cell in enumerate(cells):
            if len(cell) * 4 > cap and (size := len(cell.encode("utf-8", "surrogatepass"))) > cap:
                column = self.names.get(index)
                where = "the cell" if column else f"cell {index + 1}"
                report(line, column, f"{where} is {size:,} bytes long; the limit is {cap:,}")
        if len(self.owner.problems) > before:
            return None
        serial_text = cells[self.positions[SERIAL]]
        name = cells[self.positions[NAME]]
        urls_text = cells[self.positions[URLS]]
        serial = self._serial(serial_text, line)
        name_problem = _name_problem(name)
        if name_problem:
            report(line, NAME, name_problem)
        urls = self._urls(urls_text, line)
        if serial is None or name_problem or urls is None:
            return None
        return CatalogueRow(line, serial, serial_text, name, urls_text, urls)

    def _serial(self, text: str, line: int) -> int | None:
        stripped = text.strip()
        match = _SERIAL_RE.fullmatch(stripped)
        if not stripped:
            message = "the serial number is empty"
        elif len(text) > MAX_SERIAL_CHARS:
            message = (
                f"the serial number cell is {len(text):,} characters long; the limit is {MAX_SERIAL_CHARS}"
            )
        elif match is None:
            message = f"{show(stripped)} is not a positive whole number"
        elif (serial := int(match.group(1))) == 0:
            message = f"{show(stripped)} is not a positive whole number (serial numbers start at 1)"
        elif serial > MAX_SERIAL:
            message = f"{show(stripped)} is too large for a serial number (at most {MAX_SERIAL})"
        elif (first := self.seen.setdefault(serial, line)) != line:
            message = f"the serial number {serial} is repeated: it is already used on line {first}"
        else:
            return serial
        self.report(line, SERIAL, message)
        return None

    def _urls(self, text: str, line: int) -> tuple[str, ...] | None:
        if not text.strip():
            self.report(line, URLS, "there is no image URL")
            return None
        if text.startswith(("\t", "\r", "\n")):
            self.report(line, URLS, "the cell starts with a tab or a line break: remove it")
            return None
        items = [item.strip() for item in text.split(",")]
        limit = self.limits.max_urls_per_row
        if len(items) > limit:
            self.report(line, URLS, f"the cell has {len(items):,} URLs; the limit is {limit:,}")
            return None
        ok = True
        for position, url in enumerate(items, start=1):
            if not url:
                where = "at the end" if position == len(items) else f"at position {position}"
                message = f"an empty URL {where} of the list: remove the extra comma"
            else:
                message = url_problem(url, self.limits.max_url_length) or ""
            if message:
                self.report(line, URLS, message)
                ok = False
        return tuple(items) if ok else None


def _name_problem(name: str) -> str | None:
    if not name.strip():
        return "the product name is empty"
    bad = _NAME_CONTROL.search(name)
    if bad:
        return f"the product name {show(name)} contains a control character (U+{ord(bad.group()):04X})"
    return None


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


@dataclass(frozen=True)
class ResultRow:
    serial_text: str
    product_name: str
    urls_text: str
    output_urls: Sequence[str | None]  # one slot per input URL; None where the image failed


def write_result_csv(rows: Iterable[ResultRow], out: IO[str]) -> None:
    """Write the result CSV: the contract's header, then each row's input cells and its output URLs.

    Every cell goes through ``neutralise_formula`` (OWASP: a cell starting with ``=``, ``+``, ``-``,
    ``@``, tab, CR or LF gets a leading ``'`` so a spreadsheet shows it as text). Only the serial and
    product name cells can be altered by this: an accepted input URL cell starts with a URL or a
    space (the reader refuses one that starts with a tab or line break), and the output cell starts
    with a URL or, when the first image failed, with a comma. So URLs are never changed.
    Lines end in CRLF (RFC 4180); no byte-order mark.
    """
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(OUTPUT_COLUMNS)
    for row in rows:
        outputs = ",".join(url or "" for url in row.output_urls)
        writer.writerow(
            [neutralise_formula(c) for c in (row.serial_text, row.product_name, row.urls_text, outputs)]
        )
