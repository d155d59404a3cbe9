"""Whatever bytes arrive as the CSV, the upload endpoint answers 202, 400 or 413: never 500."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.throttling import ScopedRateThrottle

HEADER = b"S. No.,Product Name,Input Image Urls\n"
row = st.tuples(
    st.text(alphabet="0123456789.- x", max_size=6),
    st.text(max_size=12),
    st.lists(
        st.sampled_from(["https://img.example.com/a.jpg", "ftp://x/y", "", " ", '"', "http://"]), max_size=3
    ),
).map(lambda r: f'{r[0]},{r[1]},"{",".join(r[2])}"\n'.encode())
bodies = st.one_of(
    st.binary(max_size=400),
    st.lists(row, max_size=6).map(lambda rows: HEADER + b"".join(rows)),
    st.text(max_size=300).map(str.encode),
)


@pytest.mark.django_db
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_no_upload_body_makes_the_endpoint_fail(
    client: Client, django_capture_on_commit_callbacks, monkeypatch: pytest.MonkeyPatch, body: bytes
) -> None:
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"upload": "1000000/minute"})  # on purpose
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post("/api/upload/", {"file": SimpleUploadedFile("fuzz.csv", body, "text/csv")})
    assert response.status_code in (202, 400, 413), response.content[:300]
    payload = response.json()
    if response.status_code == 400:
        assert payload["errors"], "a refusal names at least one problem"
        assert all({"line", "column", "message"} <= set(error) for error in payload["errors"])
