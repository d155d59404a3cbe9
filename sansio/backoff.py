"""How long to wait before trying again: one rule for image retries and webhook retries."""

from __future__ import annotations

import random


def backoff_seconds(attempt: int, *, first: float, cap: float, spread: tuple[float, float]) -> float:
    """`first` seconds after attempt 1, doubling with each attempt up to `cap`, times a random factor
    drawn from `spread`: (0, 1) is "full jitter", (0.75, 1.25) is ±25 %. The jitter keeps many
    failures at once (a host down for a whole request) from coming back all at once."""
    delay = min(cap, first * 2.0 ** (attempt - 1))
    return delay * random.uniform(*spread)  # noqa: S311 - jitter, not security
