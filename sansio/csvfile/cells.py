"""The rules on one row's serial number and product name (URL cells: ``sansio.urls``)."""

from __future__ import annotations

import re

from sansio.messages import show

MAX_SERIAL = 2**63 - 1  # the database column is a signed 64-bit integer
MAX_SERIAL_CHARS = 64  # Product.serial_text

SERIAL_RE = re.compile(r"([0-9]+)\.?")
_NAME_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def read_serial(text: str) -> tuple[int | None, str | None]:
    """``S. No.``: ASCII digits, an optional trailing dot (``1.``), spaces around; 1 to 2**63-1."""
    stripped = text.strip()
    match = SERIAL_RE.fullmatch(stripped)
    if not stripped:
        return None, "the serial number is empty"
    if len(text) > MAX_SERIAL_CHARS:
        return (
            None,
            f"the serial number cell is {len(text):,} characters long; the limit is {MAX_SERIAL_CHARS}",
        )
    if match is None:
        return None, f"{show(stripped)} is not a positive whole number"
    serial = int(match.group(1))
    if serial == 0:
        return None, f"{show(stripped)} is not a positive whole number (serial numbers start at 1)"
    if serial > MAX_SERIAL:
        return None, f"{show(stripped)} is too large for a serial number (at most {MAX_SERIAL})"
    return serial, None


def product_name_problem(name: str) -> str | None:
    """``Product Name``: not blank, no control characters other than tab and line breaks."""
    if not name.strip():
        return "the product name is empty"
    bad = _NAME_CONTROL.search(name)
    if bad:
        return f"the product name {show(name)} contains a control character (U+{ord(bad.group()):04X})"
    return None
