"""What the pages hand out as files: the result CSV's name, and a ZIP of a request's outputs.

The ZIP is written to a stream as it is sent (zipfile on an unseekable writer: sizes go in data
descriptors), one output at a time, so a 100,000-image request never sits in memory or on disk.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import PurePosixPath

from django.core.files.storage import default_storage

from catalog import selectors
from catalog.models import ProcessingRequest

COPY_BYTES = 256 * 1024


def _stem(upload_name: str) -> str:
    stem = PurePosixPath(upload_name.replace("\\", "/")).name
    return (stem[:-4] if stem.lower().endswith(".csv") else stem) or "catalogue"


def result_file_name(upload_name: str) -> str:
    """``chairs.csv`` → ``chairs-result.csv``, as `manage.py submit` names it."""
    return f"{_stem(upload_name)}-result.csv"


def zip_file_name(upload_name: str) -> str:
    return f"{_stem(upload_name)}-images.zip"


class _Chunks:
    """A write-only, unseekable file whose writes are collected until taken."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes, /) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


def zip_chunks(request: ProcessingRequest) -> Iterator[bytes]:
    """The ZIP, piece by piece: ``<stem>/<serial>-<n>.<ext>`` for each output, and the result CSV.

    Stored, not deflated: the images are compressed already, and deflating them costs CPU for nothing.
    """
    stem = _stem(request.name)
    sink = _Chunks()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as archive:
        entries = [
            (name, f"{stem}/{PurePosixPath(name).name}")
            for name in selectors.output_files(request).values_list("output_file", flat=True)
        ]
        if request.result_file:
            entries.append((request.result_file, f"{stem}/{result_file_name(request.name)}"))
        for name, arcname in entries:
            with default_storage.open(name, "rb") as source, archive.open(arcname, "w") as dest:
                while block := source.read(COPY_BYTES):
                    dest.write(block)
                    yield sink.take()
            yield sink.take()
    yield sink.take()
