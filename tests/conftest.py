"""Shared test set-up. End-to-end tests start their own processes; see tests/support."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _fresh_throttle_counts(request: pytest.FixtureRequest) -> Iterator[None]:
    """Upload throttling counts live in the shared cache: start every Django test with none."""
    if "django_db_setup" not in request.fixturenames and "client" not in request.fixturenames:
        yield
        return
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
