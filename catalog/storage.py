"""Fixed storage names for outputs, and absolute URLs for them."""

from __future__ import annotations

import uuid

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage


def output_image_name(request_id: uuid.UUID, serial_number: int, position: int, extension: str) -> str:
    """The same image of the same request always gets the same name: a retry overwrites, never adds."""
    return f"outputs/{request_id}/{serial_number}-{position + 1}.{extension}"


def preview_image_name(output_name: str) -> str:
    """The "before" picture of an output, under a fixed name of its own (a retry overwrites it).

    Named after the output, so an image that shares a repeated URL's output shares its preview too.
    """
    folder, _, file_name = output_name.removeprefix("outputs/").rpartition("/")
    return f"previews/{folder}/{file_name.rsplit('.', 1)[0]}.jpg"


def result_csv_name(request_id: uuid.UUID) -> str:
    return f"results/{request_id}.csv"


def save_bytes(name: str, data: bytes) -> str:
    saved = default_storage.save(name, ContentFile(data))
    if saved != name:  # storage settings must allow overwriting; anything else breaks idempotency
        raise RuntimeError(f"storage renamed {name!r} to {saved!r}: enable overwriting")
    return saved


def absolute_url(name: str, base_url: str) -> str:
    """S3 storages give absolute URLs; local storage gives a path we put behind the public base."""
    url = default_storage.url(name)
    if url.startswith(("http://", "https://")):
        return url
    return base_url.rstrip("/") + url
