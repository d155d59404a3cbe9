"""What reading a catalogue gives: its limits, the rows read and the problems found."""

from __future__ import annotations

from dataclasses import dataclass


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
    urls: tuple[str, ...]  # each URL in the form kept and fetched (see ``sansio.urls``), in order
    kept: tuple[str, ...] = ()  # the cells of the other columns, in order, without trailing empty ones
