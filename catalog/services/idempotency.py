"""Idempotent uploads, after the IETF httpapi Idempotency-Key draft.

A key is remembered per client for 24 hours with a fingerprint of what was sent (the file's bytes and
the options). The unique (client, key) row is the lock: the first upload inserts it before it accepts
the file, and binds it to its request in the transaction that stores the request, so a duplicate
either finds the answer (same fingerprint), a different body (422), or the first still being
accepted (409). A first upload that fails (a refused file, a crash) frees its key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import IO, Any

from django.contrib.auth.models import AnonymousUser, User
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from catalog.models import IdempotentUpload, ProcessingRequest

KEY_LIFETIME = timedelta(hours=24)
# A first upload still unbound after this long died half-way (the process was killed): its key is free.
ACCEPT_TIMEOUT = timedelta(minutes=10)
MAX_KEY_LENGTH = 255
_READ_CHUNK = 1024 * 1024


class KeyRefused(ValueError):
    """The header is not a usable key; ``str()`` says why."""


def parse_key(raw: str) -> str:
    """1-255 visible ASCII characters; the draft's quoted form (a structured-field string) is unquoted."""
    key = raw.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not key:
        raise KeyRefused("Idempotency-Key is empty: send 1 to 255 visible ASCII characters")
    if len(key) > MAX_KEY_LENGTH:
        raise KeyRefused(f"Idempotency-Key is {len(key)} characters long, over the {MAX_KEY_LENGTH} allowed")
    if any(not 0x21 <= ord(c) <= 0x7E for c in key):
        raise KeyRefused(
            "Idempotency-Key may hold only visible ASCII characters (no spaces or control codes)"
        )
    return key


def client_of(user: User | AnonymousUser | None, address: str) -> str:
    """Keys are per signed-in user (every user with REQUIRE_AUTH), else per client IP address."""
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return f"ip:{address or 'unknown'}"


def fingerprint(upload: IO[bytes], options: dict[str, Any]) -> str:
    """sha256 of the file's bytes and the options as accepted (defaults filled in, so leaving one out
    and sending its default are the same request). Leaves the file at its start."""
    digest = hashlib.sha256()
    upload.seek(0)
    for chunk in iter(lambda: upload.read(_READ_CHUNK), b""):
        digest.update(chunk)
    upload.seek(0)
    digest.update(b"\0" + json.dumps(options, sort_keys=True, default=str).encode())
    return digest.hexdigest()


class Seen(Enum):
    NEW = "new"  # this upload holds the key: accept it, then bind
    REPLAY = "replay"  # the same upload was accepted before: answer as then
    OTHER_BODY = "other_body"  # 422
    IN_PROGRESS = "in_progress"  # 409


@dataclass(frozen=True)
class KeyUse:
    seen: Seen
    row: IdempotentUpload | None = None
    request: ProcessingRequest | None = None


def use_key(client: str, key: str, fingerprint: str) -> KeyUse:
    """Take the key for this upload, or say what a duplicate should answer.

    A duplicate only reads: on SQLite a write would queue behind the first upload's transaction,
    and find the key bound once it gets through, instead of answering 409 at once.
    """
    existing = _live(client, key)
    if existing is None:
        now = timezone.now()
        IdempotentUpload.objects.filter(client=client, key=key).filter(
            Q(created_at__lt=now - KEY_LIFETIME)
            | Q(request__isnull=True, created_at__lt=now - ACCEPT_TIMEOUT)
        ).delete()
        try:
            with transaction.atomic():
                row = IdempotentUpload.objects.create(client=client, key=key, fingerprint=fingerprint)
            return KeyUse(Seen.NEW, row=row)
        except IntegrityError:
            existing = _live(client, key)
    if existing is None:  # taken and freed again in between (a refused first upload): it is in flux
        return KeyUse(Seen.IN_PROGRESS)
    if existing.fingerprint != fingerprint:
        return KeyUse(Seen.OTHER_BODY)
    if existing.request is None:
        return KeyUse(Seen.IN_PROGRESS)
    return KeyUse(Seen.REPLAY, request=existing.request)


def _live(client: str, key: str) -> IdempotentUpload | None:
    """The key's row unless it expired, or its upload was abandoned half-way."""
    now = timezone.now()
    rows = IdempotentUpload.objects.filter(client=client, key=key, created_at__gte=now - KEY_LIFETIME)
    rows = rows.exclude(request__isnull=True, created_at__lt=now - ACCEPT_TIMEOUT)
    return rows.select_related("request").first()


def bind(row: IdempotentUpload, request: ProcessingRequest) -> None:
    """Call in the transaction that stores ``request``: the key answers with it from then on."""
    IdempotentUpload.objects.filter(pk=row.pk).update(request=request)


def free(row: IdempotentUpload) -> None:
    """The upload the key was taken for was not accepted: the same key may be sent again."""
    IdempotentUpload.objects.filter(pk=row.pk, request__isnull=True).delete()


def forget_expired() -> int:
    """Keys past their 24 hours (retention calls this)."""
    deleted, _ = IdempotentUpload.objects.filter(created_at__lt=timezone.now() - KEY_LIFETIME).delete()
    return deleted
