"""Catalogues as spreadsheet programs export them, made here byte for byte, for the tests.

What each writes (checked against their export dialogs and sample files):

- Excel "CSV UTF-8 (Comma delimited)": a UTF-8 byte-order mark, CRLF line ends, the locale's list
  separator (``;`` in most of Europe, where ``,`` is the decimal mark), quotes only around cells
  that need them, a line break typed in a cell (Alt+Enter) as LF inside quotes, and rows of empty
  cells for formatted rows below the data. Serial numbers typed as ``1.`` stay text.
- Excel "Unicode Text": UTF-16 little-endian with a byte-order mark, tab-separated, CRLF.
- Google Sheets (File > Download > CSV): UTF-8 without a BOM, commas whatever the locale, CRLF, no
  line end after the last row.
- Numbers (Export To > CSV, Unicode UTF-8): no BOM, commas (semicolons where the decimal mark is a
  comma), the table's empty columns and rows exported as empty cells, and with "Include table
  names" the table's name on a line of its own above it.
- LibreOffice Calc (Save As > Text CSV): UTF-8, LF, the separator chosen in the dialog, and with
  "Quote all text cells" every cell that is not a number in quotes.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Sequence

Table = Sequence[Sequence[str]]


def _write(rows: Table, delimiter: str, newline: str, end: bool = True) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator=newline).writerows(rows)
    text = out.getvalue()
    return text if end else text.removesuffix(newline)


def excel_csv_utf8(rows: Table, delimiter: str = ";") -> bytes:
    width = len(rows[0])
    formatted_below = [[""] * width, [""] * width]
    return codecs.BOM_UTF8 + _write([*rows, *formatted_below], delimiter, "\r\n").encode()


def excel_unicode_text(rows: Table) -> bytes:
    return codecs.BOM_UTF16_LE + _write(rows, "\t", "\r\n").encode("utf-16-le")


def google_sheets(rows: Table) -> bytes:
    return _write(rows, ",", "\r\n", end=False).encode()


def numbers(rows: Table, delimiter: str = ",", table_name: str | None = "Table 1") -> bytes:
    padded = [[*row, "", "", ""] for row in rows]
    empty_rows = [[""] * len(padded[0])] * 3
    title = f"{table_name}\n" if table_name else ""
    return (title + _write([*padded, *empty_rows], delimiter, "\n")).encode()


def libreoffice(rows: Table, delimiter: str = ",", quote_all_text: bool = False) -> bytes:
    if not quote_all_text:
        return _write(rows, delimiter, "\n").encode()
    lines = []
    for row in rows:
        cells = [cell if cell.isdigit() else '"' + cell.replace('"', '""') + '"' for cell in row]
        lines.append(delimiter.join(cells) + "\n")
    return "".join(lines).encode()


EXPORTS: dict[str, Callable[[Table], bytes]] = {
    "Excel CSV UTF-8, semicolon locale": excel_csv_utf8,
    "Excel CSV UTF-8, comma locale": lambda rows: excel_csv_utf8(rows, ","),
    "Excel Unicode Text": excel_unicode_text,
    "Google Sheets": google_sheets,
    "Numbers, with the table name": numbers,
    "Numbers, semicolons, no table name": lambda rows: numbers(rows, ";", None),
    "LibreOffice, commas": libreoffice,
    "LibreOffice, semicolons, all text quoted": lambda rows: libreoffice(rows, ";", quote_all_text=True),
}

A = "https://img.example.com/a.jpg"
B = "https://img.example.com/b b.png"  # a file name with a space
C = "https://img.example.com/c.webp"
D = "https://bücher.example/d.jpg"  # an international host name


def kept_form(url: str) -> str:
    """The form the service keeps a URL of ``catalogue()`` in (spaces and hosts encoded)."""
    return url.replace(" ", "%20").replace("bücher.example", "xn--bcher-kva.example")


def catalogue(a: str = A, b: str = B, c: str = C, d: str = D) -> list[list[str]]:
    """A catalogue as people keep it: extra columns, a list of URLs on lines of their own, URLs
    separated by a semicolon, a name that looks like a formula, and a decimal comma."""
    return [
        ["S. No.", "Product Name", "Brand", "Input Image Urls", "Price"],
        ["1.", "Chaise « Lounge »", "Acme", f"{a}\n{b}", "12,50"],
        ["2.", 'Table "Oak"', "Bois;Fer", f"{c}; {d}", "99"],
        ["3.", "=1+2", "", c, ""],
    ]


def read_as(
    a: str = A, b: str = B, c: str = C, d: str = D
) -> list[tuple[int, tuple[str, ...], tuple[str, ...]]]:
    """What reading ``catalogue()`` gives: (serial, URLs as kept, other cells) per row."""
    return [
        (1, (kept_form(a), kept_form(b)), ("Acme", "12,50")),
        (2, (kept_form(c), kept_form(d)), ("Bois;Fer", "99")),
        (3, (kept_form(c),), ()),
    ]
