"""What one fetch may take: time, bytes, redirects, and the content types an image may come as."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FetchLimits:
    connect_timeout: float = 5.0
    read_timeout: float = 10.0  # the longest wait for any single read
    total_timeout: float = 30.0  # the whole exchange: lookup, redirects, headers and body
    # The longest wait for one of a host's connection slots (catalog/hostpolicy.py), on top of
    # total_timeout: a wait for our own turn is not the host's slowness.
    slot_wait: float = 300.0
    max_bytes: int = 25 * 1024 * 1024
    max_redirects: int = 5
    # What fetch_image accepts ("type/*" matches a whole family). Many CDNs label images
    # application/octet-stream or not at all; the image decoder is the real judge.
    allowed_content_types: tuple[str, ...] = (
        "image/*",
        "application/octet-stream",
        "binary/octet-stream",
    )
    allow_missing_content_type: bool = True
    user_agent: str = "catalogue-images/0.1 (+image fetcher)"
