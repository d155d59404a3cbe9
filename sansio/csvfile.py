"""Input catalogue CSV: parse and validate; result CSV: write.

Placeholder with the final interface; the hardened parser replaces the bodies.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO

INPUT_COLUMNS = ("S. No.", "Product Name", "Input Image Urls")
OUTPUT_COLUMNS = (*INPUT_COLUMNS, "Output Image Urls")


@dataclass(frozen=True)
class CsvLimits:
    max_rows: int = 200_000
    max_field_bytes: int = 65_536
    max_urls_per_row: int = 100
    max_url_length: int = 2_048
    max_problems: int = 100


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
    product_name: str
    urls_text: str  # the cell exactly as written
    urls: tuple[str, ...]


@dataclass
class CatalogueReader:
    """Iterate to get the valid rows; afterwards ``problems`` holds every problem found (up to a cap).

    A caller must consume the whole iterator and then check ``problems``: a file with any problem
    is refused whole.
    """

    stream: IO[bytes]
    limits: CsvLimits = field(default_factory=CsvLimits)
    problems: list[CsvProblem] = field(default_factory=list)
    truncated: bool = False  # more problems than max_problems were found

    def __iter__(self) -> Iterator[CatalogueRow]:
        # Detach afterwards: closing the wrapper would close the caller's stream, which reads it twice.
        text = io.TextIOWrapper(self.stream, encoding="utf-8-sig", newline="")
        try:
            yield from self._rows(text)
        finally:
            text.detach()

    def _rows(self, text: IO[str]) -> Iterator[CatalogueRow]:
        reader = csv.reader(text, strict=True)
        header = next(reader, None)
        if header is None:
            self.problems.append(CsvProblem(None, None, "the file is empty"))
            return
        seen: set[int] = set()
        for row in reader:
            line = reader.line_num
            serial_text, name, urls_text = row[0], row[1], row[2]
            serial = int(serial_text.rstrip("."))
            if serial in seen:
                self.problems.append(CsvProblem(line, "S. No.", f"serial number {serial} is repeated"))
            seen.add(serial)
            urls = tuple(u.strip() for u in urls_text.split(",") if u.strip())
            yield CatalogueRow(line, serial, serial_text, name, urls_text, urls)


@dataclass(frozen=True)
class ResultRow:
    serial_text: str
    product_name: str
    urls_text: str
    output_urls: Sequence[str | None]  # one slot per input URL; None where the image failed


def write_result_csv(rows: Iterable[ResultRow], out: IO[str]) -> None:
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(OUTPUT_COLUMNS)
    for row in rows:
        outputs = ",".join(url or "" for url in row.output_urls)
        writer.writerow([row.serial_text, row.product_name, row.urls_text, outputs])
