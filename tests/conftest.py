"""Shared test set-up. End-to-end tests start their own processes; see tests/support."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


@pytest.fixture
def media(tmp_path: Path, settings: Any) -> Path:
    """Default storage on local disk under tmp_path (returned), overwriting as the service's does."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path), "base_url": "/media/", "allow_overwrite": True},
        },
    }
    return tmp_path
