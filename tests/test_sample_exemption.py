"""The sample images' exemption from the address policy covers that origin and path, nothing else."""

from __future__ import annotations

import pytest

from catalog.fetch import Fetcher, FetchError, FetchLimits

SAMPLES = "http://127.0.0.1:8000/samples/"


@pytest.fixture
def fetcher() -> Fetcher:
    return Fetcher(FetchLimits(), exempt_prefixes=(SAMPLES,))


def test_the_samples_are_allowed(fetcher: Fetcher) -> None:
    fetcher.check_url(SAMPLES + "armchair.jpg")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/admin/",  # the same origin, another path
        "http://127.0.0.1:8000/samples/../admin/",  # dot segments are resolved before the check
        "http://127.0.0.1:8001/samples/armchair.jpg",  # another port
        "https://127.0.0.1:8000/samples/armchair.jpg",  # another scheme
        "http://127.0.0.2:8000/samples/armchair.jpg",  # another address
    ],
)
def test_anything_else_on_loopback_is_refused_and_says_how_to_allow_it(fetcher: Fetcher, url: str) -> None:
    with pytest.raises(FetchError) as refused:
        fetcher.check_url(url)
    assert str(refused.value).endswith("a loopback address (allow it with FETCH_ALLOWED_PRIVATE_NETWORKS)")
