"""Where the csv module gave up on a record: replayed to name the cell and the line for people."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from sansio.csvfile.text import count_lines

_QUOTED = re.compile(r'"[^"]*(?:""[^"]*)*"')


@dataclass(frozen=True)
class Break:
    """Where the csv module gave up on a record, replayed: the cell's index and what went wrong."""

    unclosed: bool  # True: a quoted cell never closed; False: text after a closing quote
    cell: int
    line_offset: int  # lines after the record's first where the bad cell's quote opened
    snippet: str


def locate_break(record: str, delimiter: str = ",") -> Break | None:
    """Replay the excel dialect (strict) over a record's text to find the cell the csv error is in."""
    unquoted = _unquoted(delimiter)
    pos, cell = 0, 0
    while True:
        if record.startswith('"', pos):
            match = _QUOTED.match(record, pos)
            if match is None:
                return Break(True, cell, count_lines(record[:pos]), record[pos:])
        else:
            match = unquoted.match(record, pos)
            assert match is not None  # matches the empty string too
        end = match.end()
        following = record[end : end + 1]
        if following != delimiter:
            if following in ("", "\r", "\n"):
                return None
            tail = unquoted.match(record, end)
            assert tail is not None
            return Break(False, cell, count_lines(record[:pos]), record[pos : tail.end()])
        pos, cell = end + 1, cell + 1


@lru_cache(maxsize=4)
def _unquoted(delimiter: str) -> re.Pattern[str]:
    return re.compile(rf"[^{re.escape(delimiter)}\r\n]*")
