"""From bytes to the text's physical lines: which encoding, what is not text at all, and a cap.

UTF-8, with or without a byte-order mark. A UTF-16 or UTF-32 file *with* a byte-order mark (Excel's
"Unicode Text") is converted, since its BOM says reliably what it is. Anything else that is not
UTF-8 (Windows-1252, UTF-16 without a BOM, a workbook, an image, a NUL byte anywhere) is refused
whole, with a message that says what the file looks like. Line endings LF, CRLF and CR all work.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterator
from typing import IO

CHUNK_BYTES = 64 * 1024

_BOMS = (  # longest first: the UTF-32-LE mark starts with the UTF-16-LE one
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_MAGIC = (
    (b"PK\x03\x04", "an Excel workbook (.xlsx) or another ZIP archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old-style Excel workbook (.xls) or another Office file"),
    (b"%PDF-", "a PDF document"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
)
SAVE_AS = "save it as 'CSV UTF-8 (comma delimited)'"

NEWLINE = re.compile(r"\r\n|\r|\n")


class Stop(Exception):
    """Nothing more can be read reliably (or the problem cap is reached): end the iteration."""


class TooLong(Exception):
    """The current record grew over the cap: reported by the parser, which knows the columns."""


def count_lines(text: str) -> int:
    return len(NEWLINE.findall(text))


def first_line(text: str) -> str:
    return NEWLINE.split(text, maxsplit=1)[0]


class TextLines:
    """The stream's physical lines, decoded, terminators kept, for ``csv.reader``.

    Reads in chunks; refuses what is not text; keeps the current record's lines (for locating a
    structural error) and stops a record that grows over the cap, which bounds memory.
    """

    def __init__(
        self, stream: IO[bytes], record_cap: int, report: Callable[[int | None, str | None, str], None]
    ) -> None:
        self._report = report
        self._stream = stream
        self._cap = record_cap
        self.encoding = "utf-8"
        self.lines_read = 0
        self.record_start = 1
        self.record: list[str] = []
        self._record_chars = 0

    def new_record(self, start: int) -> None:
        self.record_start = start
        self.record = []
        self._record_chars = 0

    def _read(self, size: int = CHUNK_BYTES) -> bytes:
        data = self._stream.read(size)
        return bytes(data) if data else b""

    def _whole_file(self, message: str) -> Stop:
        self._report(None, None, message)
        return Stop()

    def _first_chunk(self) -> bytes:
        data = self._read()
        while data and len(data) < 8:  # a raw stream may hand over fewer bytes than asked for
            more = self._read()
            if not more:
                break
            data += more
        for bom, encoding in _BOMS:
            if data.startswith(bom):
                self.encoding = encoding
                return data[len(bom) :]
        for magic, what in _MAGIC:
            if data.startswith(magic):
                raise self._whole_file(f"the file is {what}, not a CSV text file: {SAVE_AS}")
        head = data[:512]
        if b"\x00" in head:
            odd, even = head[1::2].count(0), head[0::2].count(0)
            if max(odd, even) >= 0.8 * (len(head) // 2) and min(odd, even) == 0:
                raise self._whole_file(
                    f"the file looks like UTF-16 text without a byte-order mark, not UTF-8: {SAVE_AS}"
                )
        return data

    def _decode_problem(self, err: UnicodeDecodeError, pending: str) -> Stop:
        before = err.object[: err.start].decode(self.encoding, errors="replace")
        line = self.lines_read + count_lines(pending + before) + 1
        if self.encoding == "utf-8":
            bad = err.object[err.start : err.start + 1].hex().upper()
            message = f"the file is not UTF-8 text: line {line} has the byte 0x{bad}, not valid there"
            return self._whole_file(f"{message}; {SAVE_AS}")
        name = self.encoding.upper()
        return self._whole_file(f"the file is not valid {name} text (line {line}): {SAVE_AS}")

    def _count(self, line: str) -> None:
        self._record_chars += len(line)
        if self._record_chars > self._cap:
            raise TooLong

    def __iter__(self) -> Iterator[str]:
        data = self._first_chunk()
        decoder = codecs.getincrementaldecoder(self.encoding)("strict")
        pending = ""
        while True:
            final = not data
            try:
                text = decoder.decode(data, final)
            except UnicodeDecodeError as err:
                raise self._decode_problem(err, pending) from None
            text = pending + text
            nul = text.find("\x00")
            if nul >= 0:
                at = self.lines_read + count_lines(text[:nul]) + 1
                raise self._whole_file(
                    f"the file contains a NUL character (line {at}): it is binary, not CSV text; {SAVE_AS}"
                )
            pos, size = 0, len(text)
            for match in NEWLINE.finditer(text):
                end = match.end()
                if end == size and not final and match.group() == "\r":
                    break  # its \n may start the next chunk
                line = text[pos:end]
                pos = end
                self._count(line)
                self.lines_read += 1
                self.record.append(line)
                yield line
            pending = text[pos:]
            if final:
                if pending:
                    self._count(pending)
                    self.lines_read += 1
                    self.record.append(pending)
                    yield pending
                return
            if self._record_chars + len(pending) > self._cap:
                raise TooLong
            data = self._read()
