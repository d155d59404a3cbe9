"""Reading a catalogue: the records of a file, the header, and the rules on each row's cells.

See the package's docstring for the rules; URL rules live in ``sansio.urls``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO

from sansio.csvfile.catalogue import CatalogueRow, CsvLimits, CsvProblem
from sansio.csvfile.cells import SERIAL_RE, product_name_problem, read_serial
from sansio.csvfile.columns import (
    DELIMITER_NAMES,
    DELIMITERS,
    NAME,
    SERIAL,
    URLS,
    Layout,
    choose_delimiter,
    read_header,
)
from sansio.csvfile.records import locate_break
from sansio.csvfile.text import Stop, TextLines, TooLong, first_line
from sansio.messages import plural, show
from sansio.urls import read_url_list

_SEP_LINE = re.compile(r"sep=(.)", re.IGNORECASE)
_BLANK = ' \t\r\n,;"'  # what a row of empty cells is made of, whatever the separator
_MAX_TITLES = 2  # lines with one cell above the header that are skipped


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
    # The header as written, up to its last named column or the last column a row fills in: what
    # the result CSV echoes (with ``CatalogueRow.kept``). Final once the iteration is over.
    columns: tuple[str, ...] = ()

    def report(self, line: int | None, column: str | None, message: str) -> None:
        if len(self.problems) >= self.limits.max_problems:
            self.truncated = True
            raise Stop()
        self.problems.append(CsvProblem(line, column, message))

    def __iter__(self) -> Iterator[CatalogueRow]:
        self.problems, self.truncated, self.columns = [], False, ()
        needed = self.limits.record_chars + 1
        if csv.field_size_limit() < needed:
            csv.field_size_limit(needed)
        try:
            yield from _Parse(self).rows()
        except Stop:
            return


class _Parse:
    """One pass over a file; holds the separator, the header's layout and the serials seen."""

    def __init__(self, owner: CatalogueReader) -> None:
        self.owner = owner
        self.limits = owner.limits
        self.report = owner.report
        self.lines = TextLines(owner.stream, owner.limits.record_chars, owner.report)
        self.line_feed = iter(self.lines)  # one iterator, shared by the header's reader and the rows'
        self.delimiter = ","
        self.layout = read_header(())
        self.names: dict[int, str] = {}  # cell index -> contract column
        self.seen: dict[int, int] = {}  # serial -> line of its first row

    def _next(self, reader: Iterator[list[str]]) -> tuple[int, list[str] | csv.Error | None]:
        """The next record and the line it starts on; None at the end; the error if it is broken."""
        start = self.lines.lines_read + 1
        self.lines.new_record(start)
        try:
            return start, next(reader)
        except StopIteration:
            return start, None
        except csv.Error as err:
            return start, err

    def rows(self) -> Iterator[CatalogueRow]:
        try:
            if not self._find_header():
                return
            reader = csv.reader(self.line_feed, strict=True, delimiter=self.delimiter)
            products = 0
            while True:
                start, cells = self._next(reader)
                if cells is None:
                    break
                if isinstance(cells, csv.Error):
                    if not self._structural(cells, start):
                        return
                    products += 1  # a broken row is still a row: not "only a header"
                    continue
                if not any(cell.strip() for cell in cells):
                    continue  # a blank line, or a row of empty cells
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
        except TooLong:
            self._too_long(self.lines.record_start)
            return
        if products == 0:
            self.report(None, None, "the file has no products: it has only a header")

    # -- structure ------------------------------------------------------------------------------

    def _find_header(self) -> bool:
        """Read up to the header (skipping blank rows, a ``sep=`` line and titles) and choose the
        separator; report what is wrong with it, and return False, if it is not a usable header."""
        reader = csv.reader(self.line_feed, strict=True)
        candidates: Sequence[str] = DELIMITERS
        titles = 0
        while True:
            start, cells = self._next(reader)
            if cells is None:
                self.report(None, None, "the file has no products: it is empty")
                return False
            record = "".join(self.lines.record)
            if not record.strip(_BLANK):
                continue  # a blank line, or a row of empty cells whatever the separator
            declared = _SEP_LINE.fullmatch(record.strip("\r\n"))
            if declared and declared.group(1) in DELIMITERS:
                candidates = (declared.group(1),)  # Excel's 'sep=;' line names the separator
                continue
            chosen = choose_delimiter(record, candidates)
            if isinstance(cells, csv.Error) and (chosen is None or not chosen[1].positions):
                self._structural(cells, start)  # read with commas, as it is not a header either way
                return False
            assert chosen is not None  # the comma read it
            self.delimiter, layout = chosen
            if not layout.positions:
                broken = [d for d in candidates if d in record and choose_delimiter(record, (d,)) is None]
                if broken:  # no contract column, and a separator it has cannot read it: say why
                    self.delimiter = broken[0]
                    self._structural(csv.Error(), start)
                    return False
                if not any(d in record for d in DELIMITERS) and titles < _MAX_TITLES:
                    titles += 1  # a title above the table (Numbers' "Include table names")
                    continue
            return self._header(layout, start)

    def _structural(self, err: csv.Error, start: int) -> bool:
        """Report a csv.Error; True if parsing can go on from the next line."""
        located = locate_break("".join(self.lines.record), self.delimiter)
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
        located = locate_break("".join(self.lines.record), self.delimiter)
        column = self.names.get(located.cell) if located else None
        hint = " (is a closing quote missing?)" if located and located.unclosed else ""
        self.report(
            start,
            column,
            f"the row is longer than {self.limits.record_chars:,} characters{hint}; "
            "the rest of the file was not checked",
        )

    def _header(self, layout: Layout, line: int) -> bool:
        self.layout, self.names = layout, layout.names
        cells = layout.header
        if layout.missing:
            if SERIAL_RE.fullmatch(cells[0].strip()) and any("://" in c for c in cells):
                self.report(
                    None,
                    None,
                    "the file has no header: the first row should be 'S. No.,Product Name,Input Image Urls'",
                )
                return False
            for name in layout.missing:
                self.report(
                    None, None, f"the column {name!r} is missing (the header has {layout.describe()})"
                )
        for message in layout.duplicates:
            self.report(line, None, message)
        if layout.missing or layout.duplicates:
            return False
        named = max(i for i, cell in enumerate(cells) if cell.strip()) + 1
        self.owner.columns = cells[:named]
        return True

    # -- rows -----------------------------------------------------------------------------------

    def _row(self, cells: list[str], line: int) -> CatalogueRow | None:
        report = self.report
        layout = self.layout
        width = len(layout.header)
        if len(cells) > width and not any(cells[width:]):
            cells = cells[:width]  # empty cells past the header's end, as spreadsheets pad rows
        if len(cells) < width and all(i < len(cells) for i in layout.positions.values()):
            cells = cells + [""] * (width - len(cells))  # a short row: its last (other) cells are empty
        if len(cells) != width:
            report(line, None, self._width_problem(cells, width))
            return None
        before = len(self.owner.problems)
        cap = self.limits.max_field_bytes
        if max(map(len, cells)) * 4 > cap:  # one look at the longest cell for the common short row
            for index, cell in enumerate(cells):
                if len(cell) * 4 > cap and (size := len(cell.encode("utf-8", "surrogatepass"))) > cap:
                    column = self.names.get(index)
                    where = "the cell" if column else f"cell {index + 1}"
                    report(line, column, f"{where} is {size:,} bytes long; the limit is {cap:,}")
        if len(self.owner.problems) > before:
            return None
        positions = layout.positions
        serial_text, name, urls_text = (
            cells[positions[SERIAL]],
            cells[positions[NAME]],
            cells[positions[URLS]],
        )
        serial = self._serial(serial_text, line)
        name_problem = product_name_problem(name)
        if name_problem:
            report(line, NAME, name_problem)
        urls = self._urls(urls_text, line)
        if serial is None or name_problem or urls is None:
            return None
        kept = [cells[i] for i in layout.kept]
        while kept and not kept[-1]:
            kept.pop()
        if kept:
            self._keep_columns_up_to(layout.kept[len(kept) - 1])
        return CatalogueRow(line, serial, serial_text, name, urls_text, urls, tuple(kept))

    def _width_problem(self, cells: list[str], width: int) -> str:
        message = f"the row has {plural(len(cells), 'cell')}; the header has {width}"
        if len(cells) == 1:
            for delimiter in DELIMITERS:
                if delimiter != self.delimiter and delimiter in cells[0]:
                    return (
                        f"{message}: the row looks separated by {DELIMITER_NAMES[delimiter]}, "
                        f"the header by {DELIMITER_NAMES[self.delimiter]}"
                    )
        if len(cells) > width and any(c.strip().lower().startswith("http") for c in cells[2:]):
            return f"{message}: put a list of URLs in double quotes"
        return message

    def _keep_columns_up_to(self, index: int) -> None:
        """A row fills in a column the header leaves unnamed: the result CSV echoes up to it."""
        if index >= len(self.owner.columns):
            self.owner.columns = self.layout.header[: index + 1]

    def _serial(self, text: str, line: int) -> int | None:
        serial, message = read_serial(text)
        if serial is not None and (first := self.seen.setdefault(serial, line)) != line:
            message = f"the serial number {serial} is repeated: it is already used on line {first}"
        if message is not None:
            self.report(line, SERIAL, message)
            return None
        return serial

    def _urls(self, text: str, line: int) -> tuple[str, ...] | None:
        if text.startswith(("\t", "\r", "\n")):
            self.report(line, URLS, "the cell starts with a tab or a line break: remove it")
            return None
        limits = self.limits
        read = read_url_list(text, max_urls=limits.max_urls_per_row, max_length=limits.max_url_length)
        for problem in read.problems:
            self.report(line, URLS, problem)
        return None if read.problems else read.urls
