"""The catalogue CSV reader and the result CSV writer (pure: no Django, no network).

The table of malformed inputs asserts, for each, the exact line, the column and a fragment of the one
message it gets; happy paths cover what real spreadsheets write; hypothesis checks that no input makes
the reader raise.
"""

from __future__ import annotations

import codecs
import csv
import io
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sansio.csvfile import (
    OUTPUT_COLUMNS,
    CatalogueReader,
    CatalogueRow,
    CsvLimits,
    CsvProblem,
    ResultRow,
    kept_column_names,
    neutralise_formula,
    write_result_csv,
)
from tests import spreadsheets

HEADER = "S. No.,Product Name,Input Image Urls\n"
A = "https://img.example.com/a.jpg"
B = "https://img.example.com/b.png"
C = "https://img.example.com/c.webp"
SERIAL, NAME, URLS = "S. No.", "Product Name", "Input Image Urls"


def read(data: bytes | str, **limits: Any) -> tuple[list[CatalogueRow], CatalogueReader]:
    raw = data.encode() if isinstance(data, str) else data
    reader = CatalogueReader(io.BytesIO(raw), CsvLimits(**limits))
    return list(reader), reader


def problems_of(data: bytes | str, **limits: Any) -> list[CsvProblem]:
    return read(data, **limits)[1].problems


# -- malformed inputs: (id, file, limits, line, column, message fragment) ----------------------------

Case = tuple[str, "bytes | str", dict[str, int], "int | None", "str | None", str]

MALFORMED: list[Case] = [
    # Not text, or not UTF-8
    ("empty file", b"", {}, None, None, "the file has no products: it is empty"),
    ("only a BOM", codecs.BOM_UTF8, {}, None, None, "the file has no products: it is empty"),
    ("only blank lines", "\n\r\n\n", {}, None, None, "the file has no products: it is empty"),
    ("header only", HEADER, {}, None, None, "the file has no products: it has only a header"),
    ("header and empty rows", HEADER + ",,\n\n , ,\n", {}, None, None, "it has only a header"),
    ("NUL byte", HEADER + f"1,SK\x00U,{A}\n", {}, None, None, "NUL character (line 2)"),
    (
        "Latin-1 text",
        HEADER.encode() + b"1,caf\xe9," + A.encode(),
        {},
        None,
        None,
        "line 2 has the byte 0xE9",
    ),
    ("Latin-1 header", b"S. N\xba,Product Name,Input Image Urls\n", {}, None, None, "not UTF-8 text: line 1"),
    ("truncated UTF-8 at the end", HEADER.encode() + b"1,x\xe2\x82", {}, None, None, "not UTF-8 text"),
    ("xlsx workbook", b"PK\x03\x04\x14\x00\x06\x00", {}, None, None, "an Excel workbook (.xlsx)"),
    ("xls workbook", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00", {}, None, None, "old-style Excel workbook"),
    ("PNG image", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", {}, None, None, "a PNG image, not a CSV"),
    ("PDF", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", {}, None, None, "a PDF document"),
    ("UTF-16 without BOM", HEADER.encode("utf-16-le"), {}, None, None, "UTF-16 text without a byte-order"),
    (
        "odd-length UTF-16",
        codecs.BOM_UTF16_LE + HEADER.encode("utf-16-le") + b"1",
        {},
        None,
        None,
        "not valid UTF-16-LE",
    ),
    # Header
    (
        "Windows-1252 export (Excel's plain 'CSV')",
        "S. No.;Product Name;Input Image Urls\r\n1;Crème brûlée;".encode("cp1252") + A.encode(),
        {},
        None,
        None,
        "line 2 has the byte 0xE8, not valid there; save it as 'CSV UTF-8",
    ),
    (
        "Mac Roman export (old Mac Excel)",
        "S. No.,Product Name,Input Image Urls\r1,Café,".encode("mac_roman") + A.encode(),
        {},
        None,
        None,
        "line 2 has the byte 0x8E",
    ),
    (
        "semicolons, a column missing",
        "S. No.;Name;Input Image Urls\n1;a;" + A,
        {},
        None,
        None,
        "the column 'Product Name' is missing (the header has 'S. No.', 'Name', 'Input Image Urls')",
    ),
    (
        "unclosed quote in a semicolon header",
        'S. No.;"Product Name;Input Image Urls\n1;a;b\n',
        {},
        1,
        None,
        "a quoted cell is never closed",
    ),
    (
        "missing column",
        f"S. No.,Name,Input Image Urls\n1,a,{A}\n",
        {},
        None,
        None,
        "the column 'Product Name' is missing (the header has 'S. No.', 'Name'",
    ),
    ("no header row", f"1,SKU1,{A}\n2,SKU2,{B}\n", {}, None, None, "the file has no header"),
    (
        "column twice",
        f"S. No.,Serial Number,Product Name,Input Image Urls\n1,1,a,{A}\n",
        {},
        1,
        None,
        "the column 'S. No.' appears twice in the header (cells 1 and 2)",
    ),
    (
        "unclosed quote in header",
        'S. No.,"Product Name,Input Image Urls\n',
        {},
        1,
        None,
        "a quoted cell is never closed",
    ),
    # Structure of rows
    (
        "unclosed quote",
        HEADER + f'1,"SKU1,{A}\n2,SKU2,{B}\n',
        {},
        2,
        NAME,
        "a quoted cell is never closed: '\"SKU1,https://img.example.com/a.jpg' has an opening",
    ),
    (
        "unclosed quote after a multiline record",
        HEADER + f'1,"two\nlines",{A}\n2,SKU2,"{B}\n',
        {},
        4,
        URLS,
        "never closed",
    ),
    (
        "unclosed quote opened on a later line",
        HEADER + f'1,"two\nlines","{A}\n',
        {},
        2,
        URLS,
        "(on line 3) has an opening quote",
    ),
    (
        "text after a closing quote",
        HEADER + f'1,"SKU"1,{A}\n',
        {},
        2,
        NAME,
        "text after a closing quote in '\"SKU\"1'",
    ),
    ("too few cells", HEADER + "1,SKU1\n", {}, 2, None, "the row has 2 cells; the header has 3"),
    ("one cell", HEADER + "1\n", {}, 2, None, "the row has 1 cell; the header has 3"),
    (
        "unquoted URL list",
        HEADER + f"1,SKU1,{A},{B}\n",
        {},
        2,
        None,
        "4 cells; the header has 3: put a list of URLs in double quotes",
    ),
    (
        "semicolon row",
        HEADER + f"1;SKU1;{A}\n",
        {},
        2,
        None,
        "the row has 1 cell; the header has 3: the row looks separated by semicolons, the header by commas",
    ),
    (
        "comma row in a semicolon file",
        f"S. No.;Product Name;Input Image Urls\n1,SKU1,{A}\n",
        {},
        2,
        None,
        "the row looks separated by commas, the header by semicolons",
    ),
    (
        "unclosed quote in a semicolon file",
        f'S. No.;Product Name;Input Image Urls\n1;"SKU1;{A}\n2;SKU2;{B}\n',
        {},
        2,
        NAME,
        "a quoted cell is never closed: '\"SKU1;https://img.example.com/a.jpg' has an opening",
    ),
    (
        "text after a closing quote in a tab file",
        f'S. No.\tProduct Name\tInput Image Urls\n1\t"SKU"1\t{A}\n',
        {},
        2,
        NAME,
        "text after a closing quote in '\"SKU\"1'",
    ),
    (
        "a value past the header's end",
        HEADER + f"1,SKU1,{A},,note\n",
        {},
        2,
        None,
        "the row has 5 cells; the header has 3",
    ),
    (
        "too many rows",
        HEADER + f"1,a,{A}\n2,b,{A}\n3,c,{A}\n",
        {"max_rows": 2},
        None,
        None,
        "more than 2 products",
    ),
    (
        "record over the cap",
        HEADER + '1,"' + "x\n" * 200,
        {"max_record_chars": 300},
        2,
        NAME,
        "longer than 300 characters (is a closing quote missing?)",
    ),
    (
        "line over the cap",
        HEADER + "1," + "x" * 400,
        {"max_record_chars": 300},
        2,
        None,
        "the row is longer than 300 characters;",
    ),
    (
        "cell over the byte cap",
        HEADER + f"1,{'é' * 40},{A}\n",
        {"max_field_bytes": 64},
        2,
        NAME,
        "the cell is 80 bytes long; the limit is 64",
    ),
    (
        "extra cell over the byte cap",
        f"S. No.,Product Name,Input Image Urls,Notes\n1,a,{A},{'n' * 70}\n",
        {"max_field_bytes": 64},
        2,
        None,
        "cell 4 is 70 bytes long",
    ),
    # S. No.
    (
        "serial not a number",
        HEADER + f"abc,SKU1,{A}\n",
        {},
        2,
        SERIAL,
        "'abc' is not a positive whole number",
    ),
    ("serial zero", HEADER + f"0,SKU1,{A}\n", {}, 2, SERIAL, "'0' is not a positive whole number"),
    ("serial negative", HEADER + f"-3,SKU1,{A}\n", {}, 2, SERIAL, "'-3' is not a positive whole number"),
    ("serial decimal", HEADER + f"1.5,SKU1,{A}\n", {}, 2, SERIAL, "'1.5' is not a positive whole number"),
    ("serial two dots", HEADER + f"1..,SKU1,{A}\n", {}, 2, SERIAL, "'1..' is not a positive whole number"),
    (
        "serial Arabic-Indic digit",
        HEADER + f"\u0661,SKU1,{A}\n",
        {},
        2,
        SERIAL,
        "is not a positive whole number",
    ),
    (
        "serial with underscore",
        HEADER + f"1_000,SKU1,{A}\n",
        {},
        2,
        SERIAL,
        "'1_000' is not a positive whole number",
    ),
    ("serial empty", HEADER + f" ,SKU1,{A}\n", {}, 2, SERIAL, "the serial number is empty"),
    (
        "serial too large",
        HEADER + f"9223372036854775808,SKU1,{A}\n",
        {},
        2,
        SERIAL,
        "too large for a serial number",
    ),
    (
        "serial cell too long",
        HEADER + f"{' ' * 70}1,SKU1,{A}\n",
        {},
        2,
        SERIAL,
        "71 characters long; the limit is 64",
    ),
    (
        "serial repeated",
        HEADER + f"1,a,{A}\n2,b,{B}\n1.,c,{C}\n",
        {},
        4,
        SERIAL,
        "the serial number 1 is repeated: it is already used on line 2",
    ),
    (
        "serial repeated with leading zeros",
        HEADER + f"7,a,{A}\n007,b,{B}\n",
        {},
        3,
        SERIAL,
        "already used on line 2",
    ),
    # Product Name
    ("name empty", HEADER + f"1,,{A}\n", {}, 2, NAME, "the product name is empty"),
    ("name blank", HEADER + f'1,"  \n ",{A}\n', {}, 2, NAME, "the product name is empty"),
    (
        "name with a control character",
        HEADER + f"1,SKU\x1b[31m,{A}\n",
        {},
        2,
        NAME,
        "contains a control character (U+001B)",
    ),
    # Input Image Urls
    ("no URL", HEADER + "1,SKU1,\n", {}, 2, URLS, "there is no image URL"),
    (
        "ftp URL",
        HEADER + "1,SKU1,ftp://x/y.jpg\n",
        {},
        2,
        URLS,
        "'ftp://x/y.jpg' is not an http or https URL",
    ),
    ("javascript URL", HEADER + "1,SKU1,javascript:alert(1)\n", {}, 2, URLS, "is not an absolute URL"),
    (
        "relative URL",
        HEADER + "1,SKU1,www.example.com/a.jpg\n",
        {},
        2,
        URLS,
        "'www.example.com/a.jpg' is not an absolute URL",
    ),
    ("one slash", HEADER + "1,SKU1,https:/img.example.com/a.jpg\n", {}, 2, URLS, "is not an absolute URL"),
    ("no host", HEADER + "1,SKU1,https:///a.jpg\n", {}, 2, URLS, "'https:///a.jpg' has no host name"),
    (
        "no-break space inside",
        HEADER + "1,SKU1,https://img.example.com/a\u00a0b.jpg\n",
        {},
        2,
        URLS,
        "contains a no-break space (U+00A0): type a plain space, or remove it",
    ),
    (
        "space in the host",
        HEADER + "1,SKU1,https://img example.com/a.jpg\n",
        {},
        2,
        URLS,
        "has a space in its host name 'img example.com'",
    ),
    (
        "a file name after a comma and a space",
        HEADER + f'1,SKU1,"{A}, b.jpg"\n',
        {},
        2,
        URLS,
        "'b.jpg' is not an absolute URL (it should start with https:// or http://)",
    ),
    (
        "a file name on the next line",
        HEADER + f'1,SKU1,"{A}\nb.jpg"\n',
        {},
        2,
        URLS,
        "'b.jpg' is not an absolute URL",
    ),
    (
        "a URL without its scheme after a space",
        HEADER + f'1,SKU1,"{A} www.example.com/b.jpg"\n',
        {},
        2,
        URLS,
        "'www.example.com/b.jpg' is not an absolute URL",
    ),
    (
        "an ftp URL after a semicolon",
        HEADER + f'1,SKU1,"{A};ftp://x/y.jpg"\n',
        {},
        2,
        URLS,
        "'ftp://x/y.jpg' is not an http or https URL",
    ),
    (
        "international host with a symbol",
        HEADER + "1,SKU1,https://a☃.example/a.jpg\n",
        {},
        2,
        URLS,
        "has a host name that cannot be used: the character '☃' (snowman, U+2603) is not allowed",
    ),
    (
        "international host mixing directions",
        HEADER + "1,SKU1,https://ab\u05d0.example/a.jpg\n",
        {},
        2,
        URLS,
        "mixes right-to-left and left-to-right writing",
    ),
    (
        "international host label too long",
        HEADER + f"1,SKU1,https://{'é' * 60}.example/a.jpg\n",
        {},
        2,
        URLS,
        "is too long once encoded (at most 63 characters)",
    ),
    (
        "international host with a hyphen at the end",
        HEADER + "1,SKU1,https://bücher-.example/a.jpg\n",
        {},
        2,
        URLS,
        "starts or ends with a hyphen",
    ),
    (
        "trailing comma",
        HEADER + f'1,SKU1,"{A},"\n',
        {},
        2,
        URLS,
        "an empty URL at the end of the list: remove the extra comma",
    ),
    ("two commas", HEADER + f'1,SKU1,"{A},,{B}"\n', {}, 2, URLS, "an empty URL at position 2 of the list"),
    (
        "two semicolons",
        HEADER + f'1,SKU1,"{A};;{B}"\n',
        {},
        2,
        URLS,
        "position 2 of the list: remove the extra semicolon",
    ),
    ("leading comma", HEADER + f'1,SKU1,", {A}"\n', {}, 2, URLS, "an empty URL at the start of the list"),
    (
        "trailing semicolon",
        HEADER + f'1,SKU1,"{A};\n"\n',
        {},
        2,
        URLS,
        "at the end of the list: remove the extra semicolon",
    ),
    (
        "user and password",
        HEADER + "1,SKU1,https://user:pw@img.example.com/a.jpg\n",
        {},
        2,
        URLS,
        "contains a user name or password",
    ),
    (
        "host confusion",
        HEADER + "1,SKU1,https://good.example@evil.example/a.jpg\n",
        {},
        2,
        URLS,
        "contains a user name or password",
    ),
    (
        "backslash",
        HEADER + "1,SKU1,https://evil.example\\@good.example/a.jpg\n",
        {},
        2,
        URLS,
        "contains a backslash",
    ),
    (
        "port out of range",
        HEADER + "1,SKU1,https://img.example.com:99999/a.jpg\n",
        {},
        2,
        URLS,
        "has an invalid port ':99999'",
    ),
    (
        "port not a number",
        HEADER + "1,SKU1,https://img.example.com:http/a.jpg\n",
        {},
        2,
        URLS,
        "has an invalid port ':http'",
    ),
    ("port zero", HEADER + "1,SKU1,https://img.example.com:0/a.jpg\n", {}, 2, URLS, "has an invalid port"),
    (
        "bad host character",
        HEADER + "1,SKU1,https://exa$mple.com/a.jpg\n",
        {},
        2,
        URLS,
        "has an invalid host 'exa$mple.com'",
    ),
    (
        "empty host label",
        HEADER + "1,SKU1,https://img..example.com/a.jpg\n",
        {},
        2,
        URLS,
        "has an invalid host",
    ),
    ("percent in host", HEADER + "1,SKU1,https://%65xample.com/a.jpg\n", {}, 2, URLS, "has an invalid host"),
    ("bad IPv6 literal", HEADER + "1,SKU1,http://[::zz]/a.jpg\n", {}, 2, URLS, "has an invalid host '::zz'"),
    (
        "zero-width space",
        HEADER + "1,SKU1,https://img.example.com/a\u200b.jpg\n",
        {},
        2,
        URLS,
        "an invisible character (U+200B)",
    ),
    (
        "right-to-left override",
        HEADER + "1,SKU1,https://img.example.com/\u202egpj.exe\n",
        {},
        2,
        URLS,
        "invisible character (U+202E)",
    ),
    (
        "control character",
        HEADER + "1,SKU1,https://img.example.com/a\x07.jpg\n",
        {},
        2,
        URLS,
        "a control character (U+0007)",
    ),
    (
        "URL too long",
        HEADER + f"1,SKU1,https://img.example.com/{'a' * 100}\n",
        {"max_url_length": 100},
        2,
        URLS,
        "is 124 characters long; the limit is 100",
    ),
    (
        "too many URLs",
        HEADER + f'1,SKU1,"{A},{B},{C}"\n',
        {"max_urls_per_row": 2},
        2,
        URLS,
        "the cell has 3 URLs; the limit is 2",
    ),
    (
        "cell starts with a line break",
        HEADER + f'1,SKU1,"\n{A}"\n',
        {},
        2,
        URLS,
        "starts with a tab or a line break",
    ),
    # Lines: a record is named by its first line, whatever the line endings
    (
        "after a multiline record",
        HEADER + f'1,"two\nlines",{A}\n2,SKU2,ftp://x\n',
        {},
        4,
        URLS,
        "not an http or https URL",
    ),
    (
        "CR line endings",
        HEADER.replace("\n", "\r") + f'1,"a\rb",{A}\r\r3,b,ftp://x\r',
        {},
        5,
        URLS,
        "'ftp://x'",
    ),
    ("CRLF line endings", HEADER.replace("\n", "\r\n") + f"\r\n1,a,{A}\r\n2,,{B}\r\n", {}, 4, NAME, "empty"),
    ("blank lines before the header", "\n\n" + HEADER + "1,a,ftp://x\n", {}, 4, URLS, "not an http"),
]


def test_the_table_is_big_enough() -> None:
    assert len(MALFORMED) >= 25
    assert len({case[0] for case in MALFORMED}) == len(MALFORMED)


@pytest.mark.parametrize(
    ("data", "limits", "line", "column", "fragment"),
    [c[1:] for c in MALFORMED],
    ids=[c[0] for c in MALFORMED],
)
def test_malformed(
    data: bytes | str, limits: dict[str, int], line: int | None, column: str | None, fragment: str
) -> None:
    rows, reader = read(data, **limits)
    assert len(reader.problems) == 1, reader.problems
    problem = reader.problems[0]
    assert (problem.line, problem.column) == (line, column), problem
    assert fragment in problem.message
    assert not reader.truncated
    assert len(problem.message) < 300
    assert not rows or all(r.line != line for r in rows)  # a row with a problem is never yielded


def test_every_problem_of_a_file_is_reported_in_order() -> None:
    data = HEADER + f"x,,ftp://a\n2,SKU2,{A}\n2,SKU3,{B}\n4,SKU4\n5,SKU5,{C}\n"
    rows, reader = read(data)
    assert [(p.line, p.column) for p in reader.problems] == [
        (2, SERIAL),
        (2, NAME),
        (2, URLS),
        (4, SERIAL),
        (5, None),
    ]
    assert [r.serial_number for r in rows] == [2, 5]


def test_several_bad_urls_in_one_cell_each_get_a_problem() -> None:
    problems = problems_of(HEADER + f'1,SKU1,"{A}, ftp://x/y.jpg ,{B}, /c.jpg"\n')
    assert [p.message for p in problems] == [
        "'ftp://x/y.jpg' is not an http or https URL",
        "'/c.jpg' is not an absolute URL (it should start with https:// or http://)",
    ]


def test_a_stray_quote_does_not_stop_the_check_of_later_rows() -> None:
    problems = problems_of(HEADER + f'1,"SKU"1,{A}\n2,SKU2,ftp://x\n')
    assert [(p.line, p.column) for p in problems] == [(2, NAME), (3, URLS)]


def test_values_in_messages_are_cut_short() -> None:
    (problem,) = problems_of(HEADER + f"{'9' * 30}x,SKU1,{A}\n")
    assert "'999" in problem.message
    (problem,) = problems_of(HEADER + f"1,SKU1,ftp://{'x' * 500}\n")
    assert "…'" in problem.message
    assert len(problem.message) < 150


# -- happy paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
@pytest.mark.parametrize("bom", [b"", codecs.BOM_UTF8], ids=["no BOM", "BOM"])
def test_line_endings_and_bom(newline: str, bom: bytes) -> None:
    text = HEADER + f'1,SKU1,"{A},{B}"\n' + f'2.,"Multi\nline ""name""",{C}\n' + "\n" + f"3,SKU3,{A}\n"
    rows, reader = read(bom + text.replace("\n", newline).encode())
    assert reader.problems == []
    assert [(r.line, r.serial_number, r.urls) for r in rows] == [
        (2, 1, (A, B)),
        (3, 2, (C,)),
        (6, 3, (A,)),
    ]
    assert rows[1].product_name == f'Multi{newline}line "name"'
    assert rows[1].serial_text == "2."


def test_the_contract_example() -> None:
    rows, reader = read(
        "S. No.,Product Name,Input Image Urls\n"
        '1,SKU1,"https://img.example.com/a.jpg,https://img.example.com/b.png"\n'
        "2,SKU2,https://img.example.com/c.webp\n"
    )
    assert reader.problems == []
    assert rows == [
        CatalogueRow(2, 1, "1", "SKU1", f"{A},{B}", (A, B)),
        CatalogueRow(3, 2, "2", "SKU2", C, (C,)),
    ]


@pytest.mark.parametrize(
    "header",
    [
        "S. No.,Product Name,Input Image Urls",
        "S.No.,Product Name,Input Image URLs",
        "S. No,product name,INPUT IMAGE URLS",
        "Serial Number,Product Name,Input Image Urls",
        " serial_number , Product-Name , Input Image URL ",
        '"S. No.","Product Name","Input Image Urls"',
        "\ufeffS. No.,Product Name,Input Image Urls",  # a second BOM, pasted in
        "\uff33\uff0e\uff2e\uff4f\uff0e,Product Name,Input Image Urls",  # full-width, NFKC-normalised
    ],
)
def test_header_spellings(header: str) -> None:
    rows, reader = read(f"{header}\n1,SKU1,{A}\n")
    assert reader.problems == []
    assert [r.serial_number for r in rows] == [1]


def test_extra_and_reordered_columns() -> None:
    rows, reader = read(f'Notes,Input Image Urls,Product Name,,S. No.\n"a, b",{A},SKU1,,7\n,{B},SKU2,x,8\n')
    assert reader.problems == []
    assert [(r.serial_number, r.product_name, r.urls) for r in rows] == [(7, "SKU1", (A,)), (8, "SKU2", (B,))]


@pytest.mark.parametrize(
    ("cell", "number"),
    [("1", 1), ("1.", 1), (" 12 ", 12), ("\t3.\t", 3), ("007", 7), ("9223372036854775807", 2**63 - 1)],
)
def test_serial_spellings(cell: str, number: int) -> None:
    rows, reader = read(HEADER + f"{cell},SKU1,{A}\n")
    assert reader.problems == []
    assert (rows[0].serial_number, rows[0].serial_text) == (number, cell)


@pytest.mark.parametrize(
    ("cell", "urls"),
    [
        (A, (A,)),
        (f"  {A}  ", (A,)),
        (f"{A} , {B}", (A, B)),
        (f"{A},\n{B}", (A, B)),
        (f" \t{A}", (A,)),
        ("HTTPS://IMG.EXAMPLE.COM/A.JPG", ("HTTPS://IMG.EXAMPLE.COM/A.JPG",)),
        (
            "http://127.0.0.1:8000/a.jpg?size=large&x=1#frag",
            ("http://127.0.0.1:8000/a.jpg?size=large&x=1#frag",),
        ),
        ("http://[::1]:8080/a.jpg", ("http://[::1]:8080/a.jpg",)),
        ("https://bücher.example/café.jpg", ("https://xn--bcher-kva.example/café.jpg",)),
        ("https://img.example.com./a%20b.jpg", ("https://img.example.com./a%20b.jpg",)),
        ("https://my_host.example.com/a.jpg", ("https://my_host.example.com/a.jpg",)),
    ],
)
def test_url_cells(cell: str, urls: tuple[str, ...]) -> None:
    quoted = '"' + cell.replace('"', '""') + '"'
    rows, reader = read(HEADER + f"1,SKU1,{quoted}\n")
    assert reader.problems == []
    assert rows[0].urls == urls
    assert rows[0].urls_text == cell


def test_cells_are_kept_exactly_as_written() -> None:
    rows, _ = read(HEADER + f'" 1. ","  Café  \t"," {A} ,{B} "\n')
    assert (rows[0].serial_text, rows[0].product_name, rows[0].urls_text) == (
        " 1. ",
        "  Café  \t",
        f" {A} ,{B} ",
    )


def test_blank_lines_and_empty_rows_are_skipped_but_counted() -> None:
    rows, reader = read(HEADER + f"\n,,\n  ,  , \n1,SKU1,{A}\n\n\n2,SKU2,{B}")
    assert reader.problems == []
    assert [r.line for r in rows] == [5, 8]


def test_no_newline_at_the_end() -> None:
    rows, reader = read(HEADER + f"1,SKU1,{A}")
    assert reader.problems == []
    assert rows[0].urls == (A,)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-32-be"])
def test_utf16_and_utf32_with_a_bom_are_converted(encoding: str) -> None:
    text = HEADER + f"1,Café ☕,{A}\r\n2,Ünïcødé,{B}\n"
    boms = {"utf-16-be": codecs.BOM_UTF16_BE, "utf-32-be": codecs.BOM_UTF32_BE}
    data = boms.get(encoding, b"") + text.encode(encoding)
    rows, reader = read(data)
    assert reader.problems == []
    assert [(r.line, r.product_name) for r in rows] == [(2, "Café ☕"), (3, "Ünïcødé")]


def test_unicode_names_and_quotes() -> None:
    rows, reader = read(HEADER + f'1,"Tee, ""Classic"" — 日本語 🎉",{A}\n')
    assert reader.problems == []
    assert rows[0].product_name == 'Tee, "Classic" — 日本語 🎉'


# -- spreadsheets as exported ------------------------------------------------------------------


@pytest.mark.parametrize("export", list(spreadsheets.EXPORTS.values()), ids=list(spreadsheets.EXPORTS))
def test_spreadsheet_exports_are_read(export: Any) -> None:
    rows, reader = read(export(spreadsheets.catalogue()))
    assert reader.problems == []
    assert [(r.serial_number, r.urls, r.kept) for r in rows] == spreadsheets.read_as()
    assert reader.columns == ("S. No.", "Product Name", "Brand", "Input Image Urls", "Price")
    assert [r.product_name for r in rows] == ["Chaise « Lounge »", 'Table "Oak"', "=1+2"]
    assert rows[0].urls_text == f"{spreadsheets.A}\n{spreadsheets.B}", "the cell is kept as written"
    assert rows[0].serial_text == "1."


@pytest.mark.parametrize(
    ("cell", "urls"),
    [
        (f"{A};{B}", (A, B)),
        (f"{A} ; {B}", (A, B)),
        (f"{A}\r\n{B}\r\n{C}", (A, B, C)),
        (f"{A}\n\n{B}", (A, B)),
        (f"{A}\t{B}", (A, B)),
        (f"{A} {B}", (A, B)),
        (f"{A},\n{B};\n{C}", (A, B, C)),
        ("https://img.example.com/my photo.jpg", ("https://img.example.com/my%20photo.jpg",)),
        ("https://img.example.com/a.jpg?name=my photo", ("https://img.example.com/a.jpg?name=my%20photo",)),
        ("https://res.example.com/w_100,h_100/a.jpg", ("https://res.example.com/w_100,h_100/a.jpg",)),
        ("https://img.example.com/a;v=2.jpg", ("https://img.example.com/a;v=2.jpg",)),
        ("https://BÜCHER.example:8443/a.jpg", ("https://xn--bcher-kva.example:8443/a.jpg",)),
        ("https://例え.テスト/a.jpg", ("https://xn--r8jz45g.xn--zckzah/a.jpg",)),
        ("https://\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\u3002com/a.jpg", ("https://example.com/a.jpg",)),
        ("https://straße.de/a.jpg", ("https://xn--strae-oqa.de/a.jpg",)),
        ("https://my_cdn.bücher.example/a.jpg", ("https://my_cdn.xn--bcher-kva.example/a.jpg",)),
    ],
)
def test_url_lists_as_people_write_them(cell: str, urls: tuple[str, ...]) -> None:
    quoted = '"' + cell.replace('"', '""') + '"'
    rows, reader = read(HEADER + f"1,SKU1,{quoted}\n")
    assert reader.problems == []
    assert rows[0].urls == urls
    assert rows[0].urls_text == cell


@pytest.mark.parametrize(
    ("first_lines", "delimiter"),
    [
        ("sep=;\r\n", ";"),
        ("sep=,\n", ","),
        (";;\r\n\r\n", ";"),
        ("Catalogue November\nTable 1\n", ";"),
    ],
)
def test_what_comes_before_the_header(first_lines: str, delimiter: str) -> None:
    header = HEADER.replace(",", delimiter)
    rows, reader = read(first_lines + header + f"1{delimiter}SKU1{delimiter}{A}\n")
    assert reader.problems == []
    assert [r.line for r in rows] == [first_lines.count("\n") + 2]


def test_only_two_title_lines_are_skipped() -> None:
    problems = problems_of("One\nTwo\nThree\n" + HEADER + f"1,SKU1,{A}\n")
    assert problems[0].message == "the column 'S. No.' is missing (the header has 'Three')"


def test_other_columns_are_kept_in_order() -> None:
    rows, reader = read(
        "Notes,Input Image Urls,Product Name,,S. No.,Output Image Urls\n"
        f'"a, b",{A},SKU1,,7,x\n,{B},SKU2,x,8,\n'
    )
    assert reader.problems == []
    assert [(r.serial_number, r.product_name, r.urls, r.kept) for r in rows] == [
        (7, "SKU1", (A,), ("a, b",)),
        (8, "SKU2", (B,), ("", "x")),
    ]
    assert reader.columns == ("Notes", "Input Image Urls", "Product Name", "", "S. No.", "Output Image Urls")
    assert kept_column_names(reader.columns) == ["Notes", "Column 4"]


def test_empty_columns_and_short_rows_from_spreadsheets() -> None:
    data = (
        "S. No.,Product Name,Input Image Urls,Brand,,,\n"
        f"1,a,{A},Acme,,,\n2,b,{B}\n3,c,{C},,,x,\n4,d,{A},,,,,,\n"
    )
    rows, reader = read(data)
    assert reader.problems == []
    assert [r.kept for r in rows] == [("Acme",), (), ("", "", "x"), ()]
    assert reader.columns == ("S. No.", "Product Name", "Input Image Urls", "Brand", "", "")
    _, reader = read(f"S. No.,Product Name,Input Image Urls,Brand,,\n1,a,{A},Acme,,\n")
    assert reader.columns == ("S. No.", "Product Name", "Input Image Urls", "Brand")


class TrickleStream(io.RawIOBase):
    """Hands over at most ``step`` bytes per read, to cut lines, CRLFs and characters anywhere."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._step, self._pos = data, step, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        n = self._step if size < 0 else min(size, self._step)
        chunk = self._data[self._pos : self._pos + n]
        self._pos += len(chunk)
        return chunk


@pytest.mark.parametrize("step", [1, 2, 3, 5])
def test_reads_cut_anywhere_give_the_same_result(step: int) -> None:
    text = HEADER.replace("\n", "\r\n") + f'1,"Café\r\nau lait",{A}\r\r\n2,Ünï,"{A},{B}"\r\n3,,ftp://x\r\n'
    data = codecs.BOM_UTF8 + text.encode()
    whole_rows, whole = read(data)
    stream = TrickleStream(data, step)
    reader = CatalogueReader(stream)  # type: ignore[arg-type]  # a raw stream is an IO[bytes] too
    assert list(reader) == whole_rows
    assert reader.problems == whole.problems
    assert [r.line for r in whole_rows] == [2, 5]
    assert [(p.line, p.column) for p in whole.problems] == [(6, NAME), (6, URLS)]


def test_a_second_pass_after_seek_gives_the_same_rows_and_leaves_the_stream_open() -> None:
    stream = io.BytesIO((HEADER + f'1,SKU1,"{A},{B}"\n2,SKU2,{C}\n').encode())
    first = list(CatalogueReader(stream))
    assert not stream.closed
    stream.seek(0)
    assert list(CatalogueReader(stream)) == first
    assert len(first) == 2


# -- caps ----------------------------------------------------------------------------------------


def test_problems_are_capped_and_truncation_is_flagged() -> None:
    bad = "".join(f"{n},,{A}\n" for n in range(1, 11))
    rows, reader = read(HEADER + bad, max_problems=3)
    assert rows == []
    assert [p.line for p in reader.problems] == [2, 3, 4]
    assert reader.truncated
    _, reader = read(HEADER + bad, max_problems=10)
    assert len(reader.problems) == 10
    assert not reader.truncated


def test_rows_up_to_the_cap_are_accepted() -> None:
    rows, reader = read(HEADER + f"1,a,{A}\n\n2,b,{B}\n", max_rows=2)
    assert reader.problems == []
    assert len(rows) == 2


def test_urls_and_lengths_up_to_the_caps_are_accepted() -> None:
    url = "https://img.example.com/" + "a" * 76
    assert len(url) == 100
    cell = ",".join([url] * 3)
    rows, reader = read(HEADER + f'1,SKU1,"{cell}"\n', max_url_length=100, max_urls_per_row=3)
    assert reader.problems == []
    assert rows[0].urls == (url, url, url)


def test_field_cap_counts_bytes_not_characters() -> None:
    assert problems_of(HEADER + f"1,{'é' * 32},{A}\n", max_field_bytes=64) == []
    (problem,) = problems_of(HEADER + f"1,{'é' * 33},{A}\n", max_field_bytes=64)
    assert problem.message == "the cell is 66 bytes long; the limit is 64"


def test_a_long_cell_elsewhere_does_not_stop_the_check() -> None:
    problems = problems_of(HEADER + f"1,{'x' * 100},{A}\n2,b,ftp://x\n", max_field_bytes=64)
    assert [(p.line, p.column) for p in problems] == [(2, NAME), (3, URLS)]


def test_an_unclosed_quote_in_a_big_file_names_its_line() -> None:
    rows = "".join(f"{n},SKU{n},{A}\n" for n in range(3, 20_000))
    problems = problems_of(HEADER + f'1,a,{A}\n2,"b,{A}\n' + rows, max_field_bytes=1024)
    assert [(p.line, p.column) for p in problems] == [(3, NAME)]
    assert "is a closing quote missing?" in problems[0].message


def test_the_global_field_size_limit_is_raised_never_lowered() -> None:
    previous = csv.field_size_limit()
    try:
        csv.field_size_limit(10)
        _, reader = read(HEADER + f"1,{'x' * 100},{A}\n")
        assert reader.problems == []
        assert csv.field_size_limit() >= CsvLimits().record_chars
        csv.field_size_limit(10**9)
        read(HEADER + f"1,a,{A}\n")
        assert csv.field_size_limit() == 10**9
    finally:
        csv.field_size_limit(previous)


class GeneratedCatalogue(io.RawIOBase):
    """A catalogue of ``rows`` products made as it is read: the file never exists whole."""

    def __init__(self, rows: int, path_length: int = 100) -> None:
        self._lines = self._make(rows, "x" * path_length)
        self._buffer = b""
        self.size = 0

    @staticmethod
    def _make(rows: int, path: str) -> Iterator[bytes]:
        yield HEADER.encode()
        for n in range(1, rows + 1):
            yield f'{n},Product {n},"{A}?{path}={n}, {B}?{path}={n}"\r\n'.encode()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while len(self._buffer) < len(buffer):
            more = next(self._lines, b"")
            if not more:
                break
            self._buffer += more
        n = min(len(buffer), len(self._buffer))
        buffer[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        self.size += n
        return n


def test_100000_rows() -> None:
    stream = GeneratedCatalogue(100_000)
    reader = CatalogueReader(stream)  # type: ignore[arg-type]  # a raw stream is an IO[bytes] too
    count = last = 0
    for row in reader:
        count, last = count + 1, row.line
    assert reader.problems == []
    assert (count, last) == (100_000, 100_001)
    assert stream.size > 25_000_000


def test_memory_stays_flat_whatever_the_file_size() -> None:
    stream = GeneratedCatalogue(10_000, path_length=1_500)
    tracemalloc.start()
    try:
        reader = CatalogueReader(stream)  # type: ignore[arg-type]
        count = sum(1 for _ in reader)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reader.problems == []
    assert count == 10_000
    assert stream.size > 30_000_000
    # What stays is a chunk or two, one row and the serials seen: far below the file's size.
    assert peak < 3_000_000, peak


class ExportedCatalogue(GeneratedCatalogue):
    """As Excel exports in a semicolon locale: a BOM, URLs on lines of their own, other columns."""

    @staticmethod
    def _make(rows: int, path: str) -> Iterator[bytes]:
        yield codecs.BOM_UTF8 + b"S. No.;Product Name;Brand;Input Image Urls;Notes\r\n"
        for n in range(1, rows + 1):
            yield f'{n}.;Product {n};Acme;"{A}?{path}={n}\n{B}?{path}={n}";{path}\r\n'.encode()


def test_memory_stays_flat_with_other_columns_and_url_lists() -> None:
    stream = ExportedCatalogue(10_000, path_length=1_000)
    tracemalloc.start()
    try:
        reader = CatalogueReader(stream)  # type: ignore[arg-type]
        count = sum(1 for row in reader if row.kept)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reader.problems == []
    assert count == 10_000
    assert stream.size > 30_000_000
    assert peak < 3_000_000, peak


# -- the result CSV ------------------------------------------------------------------------------


def written(rows: list[ResultRow]) -> str:
    out = io.StringIO()
    write_result_csv(rows, out)
    return out.getvalue()


def test_result_csv_shape() -> None:
    text = written(
        [
            ResultRow("1", "SKU1", f"{A},{B}", ["https://out.example/1.jpg", None]),
            ResultRow("2.", "SKU2", C, ["https://out.example/2.webp"]),
            ResultRow("3", "SKU3", f"{A}, {B}", [None, None]),
        ]
    )
    assert text.splitlines() == [
        "S. No.,Product Name,Input Image Urls,Output Image Urls",
        f'1,SKU1,"{A},{B}","https://out.example/1.jpg,"',
        f"2.,SKU2,{C},https://out.example/2.webp",
        f'3,SKU3,"{A}, {B}",","',
    ]
    assert text.endswith("\r\n")


def test_result_csv_round_trips_the_input_cells() -> None:
    data = HEADER + f'" 1. ","Tee, ""Classic""\nline two"," {A} ,{B} "\n2,Café ☕,{C}\n'
    rows, reader = read(data)
    assert reader.problems == []
    results = [
        ResultRow(r.serial_text, r.product_name, r.urls_text, [f"{u}.out" for u in r.urls]) for r in rows
    ]
    parsed = list(csv.reader(io.StringIO(written(results), newline="")))
    assert parsed[0] == list(OUTPUT_COLUMNS)
    assert parsed[1:] == [
        [r.serial_text, r.product_name, r.urls_text, ",".join(f"{u}.out" for u in r.urls)] for r in rows
    ]
    # And the result CSV is itself a valid input CSV, with the same rows.
    again, reader = read(written(results))
    assert reader.problems == []
    assert [(r.serial_text, r.product_name, r.urls_text) for r in again] == [
        (r.serial_text, r.product_name, r.urls_text) for r in rows
    ]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ('=HYPERLINK("http://evil","x")', '\'=HYPERLINK("http://evil","x")'),
        ("+1+2", "'+1+2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("\n=1+1", "'\n=1+1"),
        ("a=1+1", "a=1+1"),
        (" =1", " =1"),
        ("SKU-1", "SKU-1"),
        ("", ""),
        (A, A),
    ],
)
def test_formula_neutralisation(cell: str, expected: str) -> None:
    assert neutralise_formula(cell) == expected
    (_, cells) = list(csv.reader(io.StringIO(written([ResultRow("1", cell, A, [B])]), newline="")))
    assert cells == ["1", expected, A, B]


def test_formula_neutralisation_alters_only_serial_and_name_cells() -> None:
    rows, reader = read(HEADER + f'"\t1","=cmd|\' /C calc\'!A0"," {A}, {B}"\n')
    assert reader.problems == []
    (row,) = rows
    text = written([ResultRow(row.serial_text, row.product_name, row.urls_text, [None, f"{B}.out"])])
    (_, cells) = list(csv.reader(io.StringIO(text, newline="")))
    assert cells == ["'\t1", "'=cmd|' /C calc'!A0", f" {A}, {B}", f",{B}.out"]


@pytest.mark.parametrize("export", list(spreadsheets.EXPORTS.values()), ids=list(spreadsheets.EXPORTS))
def test_result_csv_echoes_every_input_column_in_place(export: Any) -> None:
    rows, reader = read(export(spreadsheets.catalogue()))
    results = [
        ResultRow(r.serial_text, r.product_name, r.urls_text, [f"{u}.out" for u in r.urls], r.kept)
        for r in rows
    ]
    out = io.StringIO()
    write_result_csv(results, out, reader.columns)
    parsed = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    table = spreadsheets.catalogue()
    assert parsed[0] == [*table[0], "Output Image Urls"]
    assert [row[:5] for row in parsed[1:]] == [
        [*row[:4], row[4]] if not row[1].startswith("=") else [row[0], "'" + row[1], *row[2:]]
        for row in table[1:]
    ]
    assert [row[5] for row in parsed[1:]] == [",".join(f"{u}.out" for u in r.urls) for r in rows]


def test_result_csv_header_uses_the_contract_names_and_drops_an_old_output_column() -> None:
    columns = ("Notes", "input image URLs", "=Brand", "S.No.", "Output Image Urls", "Product Name")
    out = io.StringIO()
    write_result_csv([ResultRow("1", "SKU1", A, [B], ["n", "-5"])], out, columns)
    assert list(csv.reader(io.StringIO(out.getvalue(), newline=""))) == [
        ["Notes", "Input Image Urls", "'=Brand", "S. No.", "Product Name", "Output Image Urls"],
        ["n", A, "'-5", "1", "SKU1", B],
    ]


def test_result_csv_of_a_request_made_before_columns_were_kept() -> None:
    out = io.StringIO()
    write_result_csv([ResultRow("1", "SKU1", A, [B])], out, [])
    assert out.getvalue().splitlines()[0] == ",".join(OUTPUT_COLUMNS)


# -- fuzzing: nothing escapes the reader but rows and problems --------------------------------------

FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SMALL = CsvLimits(max_rows=50, max_field_bytes=256, max_urls_per_row=5, max_url_length=100, max_problems=20)
TINY = CsvLimits(
    max_rows=2, max_field_bytes=10, max_urls_per_row=1, max_url_length=30, max_problems=2, max_record_chars=40
)
LIMITS = st.sampled_from([SMALL, TINY, CsvLimits()])
VALID = (HEADER + f'1,"Multi\nline",{A}\r\n2.,SKU2,"{A}, {B}"\r3,x,{B}\n').encode()


def check_reader(data: bytes, limits: CsvLimits = SMALL) -> None:
    reader = CatalogueReader(io.BytesIO(data), limits)
    rows = list(reader)
    assert len(reader.problems) <= limits.max_problems
    assert reader.problems or rows
    lines = [r.line for r in rows]
    assert lines == sorted(set(lines))
    for problem in reader.problems:
        assert problem.message
        assert problem.line is None or problem.line >= 1
        assert problem.column in (None, SERIAL, NAME, URLS)
    for row in rows:
        assert row.serial_number >= 1
        assert row.product_name.strip()
        assert 1 <= len(row.urls) <= limits.max_urls_per_row
        assert all(u.lower().startswith(("http://", "https://")) for u in row.urls)


@FUZZ
@given(st.binary(max_size=600))
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    check_reader(data)


@FUZZ
@given(
    st.sampled_from([HEADER.encode(), codecs.BOM_UTF8, codecs.BOM_UTF16_LE]), st.binary(max_size=300), LIMITS
)
def test_fuzz_bytes_after_a_header_or_a_bom(prefix: bytes, data: bytes, limits: CsvLimits) -> None:
    check_reader(prefix + data, limits)


@FUZZ
@given(
    st.lists(st.tuples(st.integers(0, len(VALID)), st.integers(0, 3), st.binary(max_size=3)), max_size=6),
    LIMITS,
)
def test_fuzz_a_valid_file_with_bytes_changed(edits: list[tuple[int, int, bytes]], limits: CsvLimits) -> None:
    data = bytearray(VALID)
    for position, deleted, inserted in edits:
        data[position : position + deleted] = inserted
    check_reader(bytes(data), limits)


@FUZZ
@given(st.text(max_size=400))
def test_fuzz_arbitrary_text(text: str) -> None:
    check_reader(text.encode("utf-8", "surrogatepass"))


CSVISH = st.lists(
    st.sampled_from([*',"\r\n;\t 1.a-=\x00é', "http://h.io/", "https://", "S. No.", "\ufeff"]), max_size=80
).map("".join)


@FUZZ
@given(CSVISH, st.sampled_from([b"", codecs.BOM_UTF8]))
def test_fuzz_csv_like_text_after_a_valid_header(body: str, bom: bytes) -> None:
    check_reader(bom + (HEADER + body).encode())


good_cell = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30).filter(
    lambda s: bool(s.strip())
)


@FUZZ
@given(
    st.lists(
        st.tuples(
            good_cell,
            st.lists(
                st.sampled_from([A, B, C, "http://[::1]/x.gif", "https://bücher.example/a?b=c"]),
                min_size=1,
                max_size=5,
            ),
        ),
        min_size=1,
        max_size=20,
    ),
    st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_fuzz_any_catalogue_written_by_csv_reads_back_exactly(
    products: list[tuple[str, list[str]]], newline: str
) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=newline)
    writer.writerow(["S. No.", "Product Name", "Input Image Urls"])
    for n, (name, urls) in enumerate(products, start=1):
        writer.writerow([f"{n}.", name, ", ".join(urls)])
    rows, reader = read(out.getvalue())
    assert reader.problems == []
    kept = {"https://bücher.example/a?b=c": "https://xn--bcher-kva.example/a?b=c"}
    assert [(r.serial_number, r.product_name, r.urls) for r in rows] == [
        (n, name, tuple(kept.get(u, u) for u in urls)) for n, (name, urls) in enumerate(products, start=1)
    ]
