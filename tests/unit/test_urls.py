"""The URL rules on their own (``sansio.urls``); the CSV tests cover them inside files."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sansio.urls import read_url, read_url_list

URLS = st.sampled_from(
    [
        "https://img.example.com/a.jpg",
        "http://img.example.com:8080/p/b.png?x=1&y=2",
        "https://res.example.com/w_100,h_100/c.webp",
        "https://img.example.com/a;v=2.jpg",
        "HTTPS://IMG.EXAMPLE.COM/D.GIF",
        "http://[::1]/e.jpg",
    ]
)
SEPARATORS = st.sampled_from([",", ", ", " ,", ";", "; ", "\n", "\r\n", " ", "\t", ",\n", " ;\r\n", "  "])


@settings(max_examples=300, deadline=None)
@given(st.lists(URLS, min_size=1, max_size=6), st.lists(SEPARATORS, min_size=5, max_size=5), st.booleans())
def test_any_separators_between_urls_give_the_urls(
    urls: list[str], separators: list[str], padded: bool
) -> None:
    cell = urls[0] + "".join(sep + url for sep, url in zip(separators, urls[1:], strict=False))
    if padded:
        cell = f"  {cell} \n"
    read = read_url_list(cell)
    assert read.problems == ()
    assert read.urls == tuple(urls)


def test_what_is_kept_of_a_url() -> None:
    assert read_url("https://Bücher.Example/my photo.jpg?q=a b#c d") == (
        "https://xn--bcher-kva.example/my%20photo.jpg?q=a%20b#c%20d",
        None,
    )
    assert read_url("https://img.example.com/café.jpg") == ("https://img.example.com/café.jpg", None)
    url, problem = read_url("https://user@img.example.com/a.jpg")
    assert url is None
    assert (
        problem
        == "'https://user@img.example.com/a.jpg' contains a user name or password, which are not accepted"
    )
