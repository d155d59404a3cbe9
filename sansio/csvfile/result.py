"""The result CSV: the input cells echoed, each product's output URLs after them."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO

from sansio.csvfile.columns import OUTPUT_COLUMNS

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
