"""Why an image gave no output: one fixed vocabulary for the status, the pages, the failures and metrics.

Every failure carries a ``Reason`` (the code: stable, for programs) and a message (for people, naming
what was wrong). Programs decide on the code, never on the message: metrics label by it, the status API
returns it beside the message, the request page shows its ``label``.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # The download (catalog/fetch/)
    BAD_URL = "bad_url"  # not an http(s) URL with a valid host and port
    BLOCKED = "blocked"  # the host is, or resolves to, an address the service may not fetch from
    NOT_FOUND = "not_found"  # HTTP 404 or 410
    HTTP_ERROR = "http_error"  # any other status than 200
    TOO_MANY_REDIRECTS = "too_many_redirects"
    UNREACHABLE = "unreachable"  # the name did not resolve, the connection or TLS failed or broke
    TIMEOUT = "timeout"
    TOO_LARGE = "too_large"  # the download is over the byte limit
    # What the bytes are (sansio/images.py)
    NOT_AN_IMAGE = "not_an_image"  # a web page, a PDF, an empty body: no image format at all
    UNSUPPORTED = "unsupported"  # an image format, or a variant of one, this service does not read
    TRUNCATED = "truncated"  # a supported format, cut off before its end
    DAMAGED = "damaged"  # a supported format whose data is corrupt
    IMAGE_TOO_LARGE = "image_too_large"  # over the pixel or frame limits
    # Our side
    STORAGE = "storage"  # the output could not be written
    INTERNAL = "internal"  # anything unexpected (a bug): the message says no more than that

    @property
    def label(self) -> str:
        """A few words for people (the request page), where the message says the details."""
        return _LABELS[self]


_LABELS = {
    Reason.BAD_URL: "invalid URL",
    Reason.BLOCKED: "address not allowed",
    Reason.NOT_FOUND: "not found",
    Reason.HTTP_ERROR: "HTTP error",
    Reason.TOO_MANY_REDIRECTS: "too many redirects",
    Reason.UNREACHABLE: "host unreachable",
    Reason.TIMEOUT: "timed out",
    Reason.TOO_LARGE: "download too large",
    Reason.NOT_AN_IMAGE: "not an image",
    Reason.UNSUPPORTED: "unsupported image",
    Reason.TRUNCATED: "file cut off",
    Reason.DAMAGED: "damaged image",
    Reason.IMAGE_TOO_LARGE: "image too large",
    Reason.STORAGE: "storage error",
    Reason.INTERNAL: "internal error",
}


def label(code: str) -> str:
    """The label of a stored code; an empty or unknown one (a row older than codes) has none."""
    try:
        return Reason(code).label
    except ValueError:
        return ""
