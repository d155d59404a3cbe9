"""Reading a catalogue: the records of a file, the header, and the rules on each row's cells.

See the package's docstring for the rules; URL rules live in ``sansio.urls``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from sansio.csvfile.columns import HEADER_NAMES, INPUT_COLUMNS, NAME, SERIAL, URLS, normalise_header
from sansio.csvfile.records import locate_break
from sansio.csvfile.text import Stop, TextLines, TooLong, first_line
from sansio.messages import plural, show
from sansio.urls import url_problem

MAX_SERIAL = 2**63 - 1  # the database column is a signed 64-bit integer
MAX_SERIAL_CHARS = 64  # Product.serial_text

_SERIAL_RE = re.compile(r"([0-9]+)\.?")
_NAME_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


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
            raise Stop()
        self.problems.append(CsvProblem(line, column, message))

    def __iter__(self) -> Iterator[CatalogueRow]:
        self.problems, self.truncated = [], False
        needed = self.limits.record_chars + 1
        if csv.field_size_limit() < needed:
            csv.field_size_limit(needed)
        try:
            yield from _Parse(self).rows()
        except Stop:
            return


class _Parse:
    """One pass over a file; holds the header's column positions and the serials seen."""

    def __init__(self, owner: CatalogueReader) -> None:
        self.owner = owner
        self.limits = owner.limits
        self.report = owner.report
        self.lines = TextLines(owner.stream, owner.limits.record_chars, owner.report)
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
            except TooLong:
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
        located = locate_break("".join(self.lines.record))
        column = self.names.get(located.cell) if located else None
        if located is not None and located.unclosed:
            opened = start + located.line_offset
            where = "" if opened == start else f" (on line {opened})"
            self.report(
                start,
                column,
                f"a quoted cell is never closed: {show(first_line(located.snippet), 40)}{where} "
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
        located = locate_break("".join(self.lines.record))
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
            name = HEADER_NAMES.get(normalise_header(cell))
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
            message = f"the row has {plural(len(cells), 'cell')}; the header has {self.width}"
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
