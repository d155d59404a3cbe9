"""Fixed storage names for outputs, and absolute URLs for them."""

from __future__ import annotations

import uuid

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage


def content_output_name(key: str, extension: str) -> str:
    """Outputs are named by their content key (sansio.contentkeys): the same input and options, one file."""
    return f"outputs/by-content/{key}.{extension}"


def content_key_of(output_name: str) -> str | None:
    """The content key an output is named by (content_output_name); None for an older name."""
    folder, _, file_name = output_name.rpartition("/")
    return file_name.rsplit(".", 1)[0] if folder == "outputs/by-content" else None


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
