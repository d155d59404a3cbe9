"""The header: which cells are the contract's columns, which are kept as they are, and the separator.

Names are matched ignoring case, spacing and punctuation (``S.No.``, ``S. No``, ``Serial Number``,
``Input Image URLs``, ``Input Image URL``). Every other column is kept and echoed in its place in the
result CSV, except an ``Output Image Urls`` column (a result CSV sent again), which the new one
replaces. The separator is the one of ``,``, ``;`` and tab that splits the header into the most
contract columns (commas first when that is a tie): Excel writes semicolons in many locales and tabs
in its "Unicode Text" export.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from sansio.messages import show

INPUT_COLUMNS = ("S. No.", "Product Name", "Input Image Urls")
OUTPUT_URLS = "Output Image Urls"
OUTPUT_COLUMNS = (*INPUT_COLUMNS, OUTPUT_URLS)
SERIAL, NAME, URLS = INPUT_COLUMNS
DELIMITERS = (",", ";", "\t")
DELIMITER_NAMES = {",": "commas", ";": "semicolons", "\t": "tabs"}

# Normalised header name (casefolded, letters and digits only) -> the contract's column name.
HEADER_NAMES = {
    "sno": SERIAL,
    "serialno": SERIAL,
    "serialnumber": SERIAL,
    "productname": NAME,
    "inputimageurls": URLS,
    "inputimageurl": URLS,
}
_REPLACED = frozenset({"outputimageurls", "outputimageurl"})


def normalise_header(name: str) -> str:
    folded = unicodedata.normalize("NFKC", name).casefold()
    return "".join(ch for ch in folded if ch.isalnum())


@dataclass(frozen=True)
class Layout:
    """A header read: where each contract column is, and which other columns are kept, in order."""

    header: tuple[str, ...]  # the cells as written
    positions: dict[str, int] = field(default_factory=dict)  # contract column -> cell index
    kept: tuple[int, ...] = ()  # indices of the other columns that are echoed, in order
    duplicates: tuple[str, ...] = ()  # messages: a contract column named twice

    @property
    def missing(self) -> list[str]:
        return [name for name in INPUT_COLUMNS if name not in self.positions]

    @property
    def names(self) -> dict[int, str]:
        return {index: name for name, index in self.positions.items()}

    def describe(self) -> str:
        """The header's first cells, for a message."""
        cells = self.header
        return ", ".join(show(c, 40) for c in cells[:10]) + (", …" if len(cells) > 10 else "")


def read_header(cells: Sequence[str]) -> Layout:
    positions: dict[str, int] = {}
    kept: list[int] = []
    duplicates: list[str] = []
    for index, cell in enumerate(cells):
        normalised = normalise_header(cell)
        name = HEADER_NAMES.get(normalised)
        if name is None:
            if normalised not in _REPLACED:
                kept.append(index)
        elif name in positions:
            cells_named = f"cells {positions[name] + 1} and {index + 1}"
            duplicates.append(f"the column {name!r} appears twice in the header ({cells_named})")
        else:
            positions[name] = index
    return Layout(tuple(cells), positions, tuple(kept), tuple(duplicates))


def choose_delimiter(record: str, candidates: Sequence[str] = DELIMITERS) -> tuple[str, Layout] | None:
    """The separator that reads ``record`` (a header's text) as the most contract columns.

    None if no candidate can read it as CSV at all.
    """
    best: tuple[str, Layout] | None = None
    for delimiter in candidates:
        try:
            cells = next(csv.reader(io.StringIO(record, newline=""), delimiter=delimiter, strict=True), [])
        except csv.Error:
            continue
        layout = read_header(cells)
        if best is None or len(layout.positions) > len(best[1].positions):
            best = (delimiter, layout)
    return best


def kept_column_names(columns: Sequence[str]) -> list[str]:
    """The names of the other columns, in order, for people: an unnamed one is "Column 5"."""
    layout = read_header(columns)
    return [layout.header[i].strip() or f"Column {i + 1}" for i in layout.kept]


def output_plan(columns: Sequence[str]) -> tuple[list[str], list[str | int]]:
    """The result CSV's header for an input header (the contract's names, the others as written,
    then the output URLs) and, for each input column echoed, a contract column's name or the index
    of the kept cell that fills it. No columns: the contract's three.
    """
    layout = read_header(columns or INPUT_COLUMNS)
    names = layout.names
    kept = {index: number for number, index in enumerate(layout.kept)}
    header: list[str] = []
    plan: list[str | int] = []
    for index, cell in enumerate(layout.header):
        if index in names:
            header.append(names[index])
            plan.append(names[index])
        elif index in kept:
            header.append(cell)
            plan.append(kept[index])
    return [*header, OUTPUT_URLS], plan
