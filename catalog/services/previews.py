"""The comparison page's "before" picture, made when a page first asks for it, then kept.

Workers make outputs only: a before picture for every image cost 2.5 ms of the worker's 28 ms an
image and a 60-220 KB file beside each output, for pictures a person looks at a few of. The first
look at an image's comparison downloads its input again (through the same guarded client as the
workers, so the page never hotlinks an original and every address rule holds), checks that it is
still the bytes the output was made from, and stores the frame the encoder was given under
``previews/`` (catalog/storage.py); later looks, and every image sharing that output, read the file.

In the web process, at most BEFORE_PICTURES_AT_ONCE are made at a time, each within
IMAGE_PREVIEW_TIMEOUT: a slow or wedged host holds one of the server's threads for that long at
most, and never all of them.
"""

from __future__ import annotations

import threading
import time
from typing import Literal

from django.conf import settings
from django.core.files.storage import default_storage

from catalog import workerresources
from catalog.fetch import FetchError
from catalog.models import ContentOutput, ProductImage
from catalog.services.producing import transform_options
from catalog.storage import content_key_of, preview_image_name, save_bytes
from sansio.contentkeys import content_hash
from sansio.imagefaults import ImageRejected
from sansio.images import before_picture
from sansio.reasons import Reason

BEFORE_PICTURES_AT_ONCE = 2  # per web process, which serves the pages with 4 threads

Why = Reason | Literal["changed", "busy"]


class BeforeUnavailable(Exception):
    """No before picture: ``code`` says why; ``str()`` says it to a person."""

    def __init__(self, code: Why, message: str) -> None:
        super().__init__(message)
        self.code = code


@workerresources.once
def _makers() -> threading.BoundedSemaphore:
    return threading.BoundedSemaphore(BEFORE_PICTURES_AT_ONCE)


def before_picture_name(image: ProductImage) -> str:
    """The storage name of ``image``'s before picture, made now if it is not there yet.

    ``image`` is done (it has an output) and its request is loaded. BeforeUnavailable when it cannot
    be made: its input no longer downloads, or is not what the output was made from.
    """
    name = preview_image_name(image.output_file)
    if default_storage.exists(name):
        return name
    started = time.monotonic()
    timeout = settings.IMAGE_PREVIEW_TIMEOUT
    if not _makers().acquire(timeout=timeout):
        raise BeforeUnavailable("busy", "Other before pictures are being made just now: reload in a moment.")
    try:
        if default_storage.exists(name):  # made by another look while this one waited
            return name
        left = max(0.001, timeout - (time.monotonic() - started))
        try:
            body = workerresources.fetcher().fetch_image(image.input_url, total_timeout=left).body
        except FetchError as exc:
            raise BeforeUnavailable(exc.code, f"Its input could not be downloaded again: {exc}") from exc
        made = ContentOutput.objects.filter(key=content_key_of(image.output_file))
        made_from = made.values_list("input_hash", flat=True).first()  # None: an output of old
        if made_from is not None and content_hash(body) != made_from:
            raise BeforeUnavailable(
                "changed", "Its input has changed at its source since the output was made from it."
            )
        try:
            data = before_picture(body, transform_options(image.request), settings.IMAGE_PREVIEW_SIZE)
        except ImageRejected as exc:
            raise BeforeUnavailable(exc.code, f"Its input could not be read again: {exc}") from exc
        return save_bytes(name, data)
    finally:
        _makers().release()
