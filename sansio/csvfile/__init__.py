"""Input catalogue CSV: parse and validate, strictly and streaming; result CSV: write.

Reading (``CatalogueReader``) follows the contract's "Input CSV" and is built to refuse clearly.
One module per subject: ``text`` (bytes to lines), ``records`` (locating a broken record),
``columns`` (the header), ``reader`` (rows and their cells), ``result`` (the result CSV); the
rules on a URL are in ``sansio.urls``.

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

from sansio.csvfile.columns import INPUT_COLUMNS, OUTPUT_COLUMNS, normalise_header
from sansio.csvfile.reader import CatalogueReader, CatalogueRow, CsvLimits, CsvProblem
from sansio.csvfile.result import ResultRow, neutralise_formula, write_result_csv

__all__ = [
    "INPUT_COLUMNS",
    "OUTPUT_COLUMNS",
    "CatalogueReader",
    "CatalogueRow",
    "CsvLimits",
    "CsvProblem",
    "ResultRow",
    "neutralise_formula",
    "normalise_header",
    "write_result_csv",
]
