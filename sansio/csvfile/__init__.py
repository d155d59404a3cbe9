"""Input catalogue CSV: parse and validate, strictly and streaming; result CSV: write.

Reading (``CatalogueReader``) follows the contract's "Input CSV": it reads spreadsheets as people
export them, and refuses clearly what it cannot read. One module per subject: ``text`` (bytes to
lines), ``columns`` (the header and the separator), ``reader`` (records and rows), ``cells`` (serial
and name), ``records`` (locating a broken record), ``catalogue`` (what a reading gives), ``result``
(the result CSV); the rules on URLs are in ``sansio.urls``.

- Text: UTF-8, with or without a byte-order mark; UTF-16 or UTF-32 *with* a byte-order mark (Excel's
  "Unicode Text") is converted. Anything else (Windows-1252 or Mac Roman from Excel's plain "CSV",
  UTF-16 without a BOM, a workbook, an image, a NUL byte anywhere) is refused whole, naming the line
  and the byte and how to export: guessing a legacy code page would corrupt names silently. Line
  endings LF, CRLF and CR all work.
- Separator: the one of ``,``, ``;`` and tab that reads the header as the contract's columns (commas
  first), or the one an Excel ``sep=;`` first line names. Blank rows and rows of empty cells
  (``;;;``) before the header, and up to two one-cell title lines above it (Numbers), are skipped.
- Structure: the csv module in strict mode, so an unterminated quote or text after a closing quote is
  an error naming the line where the record starts, never a cell that swallows the rest of the file.
  A row is at most ``max_record_chars`` characters (default 4 x ``max_field_bytes`` + 4,096), which
  bounds memory whatever the file holds; every cell is checked against ``max_field_bytes`` in UTF-8.
- Header: names matched ignoring case, spacing and punctuation. Other columns are kept: each row
  carries their cells (``CatalogueRow.kept``) and ``CatalogueReader.columns`` the header to echo (up
  to the last named column or the last one a row fills in, so the empty columns Numbers and Sheets
  add are dropped). A missing or doubled contract column refuses the file.
- Rows: blank lines, and rows whose cells are all empty, are skipped. A row may have fewer cells than
  the header when what is missing is none of the contract's columns, or more when the extra ones are
  empty; otherwise it is refused. ``S. No.`` and ``Product Name``: see ``cells``. ``Input Image
  Urls``: see ``sansio.urls.read_url_list``; the cell must not start with a tab or line break (see
  ``write_result_csv``). A row carries its three cells exactly as written (the result CSV echoes
  them) next to the parsed serial and the URLs in the form they are kept.
- Problems carry the 1-based line where the record starts (header = line 1 when the file starts with
  it) and the contract's column name; whole-file problems have neither. Parsing goes on after a row's
  problems (and after a stray quote, from the next line) to report as many as ``max_problems``; it
  stops at problems after which nothing reliable can be said (not text, a record over the size cap,
  an unclosed quote, too many rows, a bad header).

``csv.field_size_limit`` is process-global: each reader raises it to at least its record cap and
never lowers it, so concurrent readers with different limits cannot trip each other; field sizes are
checked here, in bytes, with a clear message.
"""

from sansio.csvfile.catalogue import CatalogueRow, CsvLimits, CsvProblem
from sansio.csvfile.columns import INPUT_COLUMNS, OUTPUT_COLUMNS, kept_column_names, normalise_header
from sansio.csvfile.reader import CatalogueReader
from sansio.csvfile.result import ResultRow, neutralise_formula, write_result_csv

__all__ = [
    "INPUT_COLUMNS",
    "OUTPUT_COLUMNS",
    "CatalogueReader",
    "CatalogueRow",
    "CsvLimits",
    "CsvProblem",
    "ResultRow",
    "kept_column_names",
    "neutralise_formula",
    "normalise_header",
    "write_result_csv",
]
