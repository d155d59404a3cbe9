from __future__ import annotations

import pytest

from sansio.backoff import backoff_seconds
from sansio.sizes import human_size


def test_backoff_doubles_up_to_the_cap_within_its_spread() -> None:
    for attempt, middle in [(1, 10), (2, 20), (3, 40), (9, 2560), (10, 3600), (30, 3600)]:
        waits = [backoff_seconds(attempt, first=10, cap=3600, spread=(0.75, 1.25)) for _ in range(200)]
        assert all(0.75 * middle <= wait <= 1.25 * middle for wait in waits), (
            attempt,
            min(waits),
            max(waits),
        )
        assert max(waits) - min(waits) > 0, "jittered"


def test_full_jitter_spreads_from_zero() -> None:
    waits = [backoff_seconds(4, first=2, cap=300, spread=(0.0, 1.0)) for _ in range(500)]
    assert all(0 <= wait <= 16 for wait in waits)
    assert min(waits) < 4 and max(waits) > 12


@pytest.mark.parametrize(
    ("size", "words"),
    [
        (0, "0 bytes"),
        (1023, "1023 bytes"),
        (1024, "1 KB"),
        (1946, "1.9 KB"),
        (65536, "64 KB"),
        (50 * 1024 * 1024, "50 MB"),
        (9.5 * 1024 * 1024, "9.5 MB"),
        (25 * 1024 * 1024 + 1, "25.0 MB"),
        (1024**4, "1048576 MB"),  # a hostile Content-Length, in full
    ],
)
def test_sizes_in_words(size: float, words: str) -> None:
    assert human_size(size) == words
