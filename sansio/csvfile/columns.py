"""The header: which cells are the contract's columns, matched the way people spell them."""

from __future__ import annotations

import unicodedata

INPUT_COLUMNS = ("S. No.", "Product Name", "Input Image Urls")
OUTPUT_COLUMNS = (*INPUT_COLUMNS, "Output Image Urls")
SERIAL, NAME, URLS = INPUT_COLUMNS

# Normalised header name (casefolded, letters and digits only) -> the contract's column name.
HEADER_NAMES = {
    "sno": SERIAL,
    "serialno": SERIAL,
    "serialnumber": SERIAL,
    "productname": NAME,
    "inputimageurls": URLS,
    "inputimageurl": URLS,
}


def normalise_header(name: str) -> str:
    folded = unicodedata.normalize("NFKC", name).casefold()
    return "".join(ch for ch in folded if ch.isalnum())
