"""Encoding: the resized pixels written as the output format, with the settings measured for it.

Pure (no Django, no network); sansio/images.py calls it once the frame (or every frame of an
animation) is resized. A failure here is ours, not the file's: ``EncodeFailed``.
"""

from __future__ import annotations

import contextlib
import io
import os
import queue
from collections.abc import Iterator
from typing import IO

from PIL import Image

from sansio.pixelmodes import flatten

# Encoder settings, measured on this machine's kind (2 cores) with `make bench` inputs:
# - JPEG optimize (Huffman tables per image): -42 % bytes for +1.6 ms on a 1500x1000 output.
# - PNG compress_level 3: 30 ms against 97 ms at Pillow's default 6, for +6 % bytes (level 1: 18 ms,
#   +11 %; 9: 883 ms, -5 %). PNG stays lossless: "quality" does not apply to it (Pillow ignores it
#   too); palette quantization would save ~75 % but changes pixels, so it is not done silently.
# - WebP method 0: 40 ms against 82 ms at method 4, for +4 % bytes.
# - AVIF under output_format=auto, which encodes it up to four times: libavif speed 10, 11 ms
#   against 102 ms at the default 6 on a 0.25 MP photo, for +11 % bytes (output_format=avif keeps 6).
JPEG_OPTIMIZE = True
AVIF_AUTO_SPEED = 10
PNG_COMPRESS_LEVEL = 3
WEBP_METHOD = 0


class EncodeFailed(RuntimeError):
    """The input was read, but its output could not be written: our fault, not the file's (internal)."""


# Pillow encodes into a file with a descriptor with the GIL released (ImageFile._save's
# encode_to_file), but into a BytesIO chunk by chunk with it held: a 0.5 MP JPEG's whole ~5 ms
# encode, during which a worker process's download and database threads cannot run (a thread
# counting in a loop beside it ran at half speed; beside an encode into a file, at full speed). So
# still images are encoded into an in-memory file (memfd: no disk, nothing outside this process),
# reused: one per thread encoding at once, emptied after each output is read back.
_SPOOLS: queue.SimpleQueue[IO[bytes]] = queue.SimpleQueue()


def _close_inherited_spools() -> None:
    """In a forked child: its parent's spools are the same files, which both would write at once."""
    while True:
        try:
            _SPOOLS.get_nowait().close()
        except queue.Empty:
            return


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_inherited_spools)


@contextlib.contextmanager
def _spool() -> Iterator[IO[bytes]]:
    if not hasattr(os, "memfd_create"):  # not Linux: the GIL stays held, nothing else changes
        yield io.BytesIO()
        return
    try:
        spool = _SPOOLS.get_nowait()
    except queue.Empty:
        spool = open(os.memfd_create("encoded", os.MFD_CLOEXEC), "w+b")  # noqa: SIM115 - kept for reuse
    try:
        yield spool
    finally:
        spool.seek(0)
        spool.truncate()  # its pages go back to the system; an output can be megabytes
        _SPOOLS.put(spool)


def _written(spool: IO[bytes]) -> bytes:
    """All the spool holds, as BytesIO.getvalue() gives it: it was empty before this output, which an
    encoder may have written out of order (its size, not its position, is the output's length)."""
    if isinstance(spool, io.BytesIO):
        return spool.getvalue()
    spool.flush()
    return os.pread(spool.fileno(), os.fstat(spool.fileno()).st_size, 0)


def encode(
    im: Image.Image, out_format: str, quality: int, background: tuple[int, ...], icc: bytes | None
) -> bytes:
    with _spool() as spool:
        _encode_into(spool, im, out_format, quality, background=background, icc=icc)
        return _written(spool)


def _encode_into(
    buf: IO[bytes],
    im: Image.Image,
    out_format: str,
    quality: int,
    *,
    background: tuple[int, ...],
    icc: bytes | None,
) -> None:
    extra: dict[str, object] = {}
    if icc:
        extra["icc_profile"] = icc
    if out_format == "JPEG":
        flat = flatten(im, background)
        flat.save(buf, "JPEG", quality=quality, optimize=JPEG_OPTIMIZE, **extra)
    elif out_format == "PNG":
        im.save(buf, "PNG", compress_level=PNG_COMPRESS_LEVEL, **extra)
    elif out_format == "WEBP":
        im.save(buf, "WEBP", quality=quality, method=WEBP_METHOD, **extra)
    elif out_format == "GIF":
        im.save(buf, "GIF")
    else:
        im.save(buf, out_format, quality=quality, **extra)


def encode_animation(
    frames: list[Image.Image],
    durations: list[int],
    out_format: str,
    quality: int,
    *,
    loop: int | None,
    default_image: bool,
) -> bytes:
    """The frames as one animation (GIF, WebP or APNG), each with its duration; EncodeFailed if not.

    ``default_image``: the first frame is an APNG's default image, shown only where animation is not.
    A GIF without a loop count (no NETSCAPE block) plays once: it stays without one as a GIF, and
    gets a count of 1 (one play) as WebP or APNG, where 0 means forever.
    """
    buf = io.BytesIO()
    save: dict[str, object] = {"save_all": True, "append_images": frames[1:], "duration": durations}
    if loop is not None or out_format != "GIF":
        save["loop"] = 1 if loop is None else int(loop)
    if out_format == "GIF":
        save["disposal"] = 2
    elif out_format == "PNG":
        save["compress_level"] = PNG_COMPRESS_LEVEL
        if default_image:
            # an APNG whose first image is only for viewers without animation keeps it so; the
            # durations are then the animation's frames' only
            save["default_image"] = True
            save["duration"] = durations[1:]
    else:
        save["quality"] = quality
        save["method"] = WEBP_METHOD
    try:
        frames[0].save(buf, out_format, **save)
    except Exception as exc:
        raise EncodeFailed(f"the animated {out_format} output could not be encoded") from exc
    return buf.getvalue()
