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
    """Files the service stores (outputs, result CSVs) go to a fresh folder on disk; returns it."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path), "base_url": "/media/", "allow_overwrite": True},
        },
    }
    return tmp_path


# Fixtures that start the service or a server as real processes (tests/e2e/conftest.py): a test using
# one is an end-to-end test, and `pytest -m "not e2e"` (the fast part) must leave it out.
PROCESS_FIXTURES = {"stack", "embedded_stack", "cluster", "json_stack", "image_server"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unmarked = [
        item.nodeid
        for item in items
        if item.get_closest_marker("e2e") is None
        and PROCESS_FIXTURES & set(getattr(item, "fixturenames", ()))
    ]
    if unmarked:
        raise pytest.UsageError("mark these @pytest.mark.e2e (they start processes): " + ", ".join(unmarked))
