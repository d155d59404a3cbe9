"""Secrets for local development, made once per machine and kept under VAR_DIR, never in git.

Production must set its own (settings refuse to start without them); in development a fresh checkout
gets random ones on first start, so no key that signs sessions or webhooks is ever public.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured


def persisted_secret(path: Path, make: Callable[[], str]) -> str:
    """The secret in `path`, made with `make` and written there (mode 0600) if the file is absent.

    Several processes start at once on a fresh checkout (web, workers): each writes its candidate to a
    private temporary file and links it into place, which only the first one wins; the others read
    the winner's, so all of them agree.
    """
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "w") as out:
            out.write(make() + "\n")
        with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
    return _read(path)


def _read(path: Path) -> str:
    value = path.read_text().strip()
    if not value:
        raise ImproperlyConfigured(f"{path} is empty: delete it to have a new development secret made")
    return value


def new_webhook_secret() -> str:
    """In Standard Webhooks form: "whsec_" and 32 random key bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
