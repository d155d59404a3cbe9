"""The result CSV: the input cells echoed, each product's output URLs after them."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO

from sansio.csvfile.columns import INPUT_COLUMNS, NAME, SERIAL, URLS, output_plan

_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")


def neutralise_formula(cell: str) -> str:
    """OWASP's CSV-injection defence: a cell that a spreadsheet could take for a formula gets a ``'``."""
    return "'" + cell if cell.startswith(_FORMULA_TRIGGERS) else cell


@dataclass(frozen=True)
class ResultRow:
    serial_text: str
    product_name: str
    urls_text: str
    output_urls: Sequence[str | None]  # one slot per input URL; None where the image failed
    kept: Sequence[str] = ()  # the cells of the input's other columns, in order (trailing empties may be cut)


def write_result_csv(rows: Iterable[ResultRow], out: IO[str], columns: Sequence[str] = INPUT_COLUMNS) -> None:
    """Write the result CSV for an input whose header was ``columns``.

    Every input column in its place (the contract's three under the contract's names, the others as
    written), then ``Output Image Urls``; each row's input cells as written and its output URLs.
    Every cell goes through ``neutralise_formula`` (OWASP: a cell starting with ``=``, ``+``, ``-``,
    ``@``, tab, CR or LF gets a leading ``'`` so a spreadsheet shows it as text). Of the input cells,
    URL cells are never altered by this: an accepted one starts with a URL or a space (the reader
    refuses one that starts with a tab or line break); the output cell starts with a URL or, when the
    first image failed, with a comma. Lines end in CRLF (RFC 4180); no byte-order mark.
    """
    writer = csv.writer(out, lineterminator="\r\n")
    header, plan = output_plan(columns)
    writer.writerow([neutralise_formula(name) for name in header])
    for row in rows:
        contract = {SERIAL: row.serial_text, NAME: row.product_name, URLS: row.urls_text}
        kept = row.kept
        cells = [contract[p] if isinstance(p, str) else (kept[p] if p < len(kept) else "") for p in plan]
        cells.append(",".join(url or "" for url in row.output_urls))
        writer.writerow([neutralise_formula(cell) for cell in cells])
