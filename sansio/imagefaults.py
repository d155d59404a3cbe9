"""What a file is, and why it cannot be processed, in plain words with a reason code (pure).

The transform asks Pillow first; only when Pillow refuses does this module look at the bytes itself
(signatures, PNG chunks, JPEG frame headers, TIFF and BMP headers) to say what is wrong in words a
person understands: "the file is cut off", "a 12-bit JPEG: not supported", "a damaged PNG: bad checksum
in chunk IDAT". Pillow's own exception text is never shown. Pillow has no exception classes for its
failures, so ``_pillow_says_truncated`` is the one place that reads its text, and only to pick a code.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from PIL import TiffImagePlugin, UnidentifiedImageError

from sansio.reasons import Reason

SUPPORTED = "JPEG, PNG, WebP, GIF, BMP, TIFF, AVIF"


class ImageRejected(ValueError):
    """The input is not an image we can or will process; the message is shown to the user."""

    def __init__(self, code: Reason, message: str) -> None:
        super().__init__(message)
        self.code = code


def cut_off() -> ImageRejected:
    return ImageRejected(Reason.TRUNCATED, "the file is cut off")


# --- What the first bytes say ------------------------------------------------------------------------

_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}
# Known formats we do not read: (signature, offset, what it is). Checked after the supported ones.
_UNSUPPORTED = (
    (b"8BPS", 0, "a Photoshop document (PSD)"),
    (b"\x00\x00\x01\x00", 0, "an icon file (ICO)"),
    (b"\x00\x00\x00\x0cjP  ", 0, "a JPEG 2000 image"),
    (b"\xff\x4f\xff\x51", 0, "a JPEG 2000 image"),
    (b"\xff\x0a", 0, "a JPEG XL image"),
    (b"\x00\x00\x00\x0cJXL ", 0, "a JPEG XL image"),
    (b"qoif", 0, "a QOI image"),
    (b"II\xbc", 0, "a JPEG XR image"),
)
_NOT_IMAGES = (
    (b"%pdf", "a PDF document"),
    (b"pk\x03\x04", "a ZIP archive"),
    (b"<!doctype html", "a web page (HTML)"),
    (b"<html", "a web page (HTML)"),
    (b"{", "JSON text"),
)


def sniff(data: bytes) -> str | None:  # noqa: PLR0911 - one answer per kind of file or fault
    """Pillow's name of a supported format the bytes start like, or None."""
    head = data[:32]
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:2] == b"BM":
        return "BMP"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if head[4:8] == b"ftyp" and _avif_brand(data):
        return "AVIF"
    return None


def _avif_brand(data: bytes) -> bool:
    size = int.from_bytes(data[:4], "big")
    brands = data[8:12], *(data[i : i + 4] for i in range(16, min(size, 64), 4))
    return any(brand in _AVIF_BRANDS for brand in brands)


def not_readable(data: bytes) -> ImageRejected:  # noqa: PLR0911 - one answer per kind of file or fault
    """Why bytes that are none of the supported formats cannot be processed."""
    head = data[:64]
    if not data.strip():
        return ImageRejected(Reason.NOT_AN_IMAGE, "the file is empty")
    if head[1:4] == b"PNG" and head[:1] in (b"\x89", b"\x09"):
        return ImageRejected(
            Reason.DAMAGED, "a damaged PNG: its signature is altered (was it sent as text, not binary?)"
        )
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return ImageRejected(Reason.UNSUPPORTED, "a HEIF/HEIC image (as iPhones take): not supported")
    for signature, offset, what in _UNSUPPORTED:
        if head[offset:].startswith(signature):
            return ImageRejected(Reason.UNSUPPORTED, f"{what}: not supported; send {SUPPORTED}")
    lowered = head.lstrip().lower()
    if lowered.startswith(b"<svg") or (lowered.startswith(b"<?xml") and b"<svg" in data[:2048].lower()):
        return ImageRejected(Reason.UNSUPPORTED, f"an SVG drawing: not supported; send {SUPPORTED}")
    for signature, what in _NOT_IMAGES:
        if lowered.startswith(signature):
            return ImageRejected(Reason.NOT_AN_IMAGE, f"{what}, not an image")
    return ImageRejected(Reason.NOT_AN_IMAGE, f"not an image in a supported format ({SUPPORTED})")


# --- Why a file of a supported format failed ----------------------------------------------------------


def explain(data: bytes, fmt: str, exc: BaseException) -> ImageRejected:
    """A reason for Pillow's failure ``exc`` at a file that starts like ``fmt``."""
    specific = {"JPEG": _jpeg_fault, "PNG": png_fault, "BMP": _bmp_fault, "TIFF": _tiff_fault}.get(fmt)
    if specific is not None:
        found = specific(data)
        if found is not None:
            return found
    if fmt == "GIF" and b"\x00\x00" in (data[6:8], data[8:10]):
        return _damaged(fmt, "its width or height is 0")
    if _pillow_says_truncated(exc):
        return cut_off()
    if fmt == "TIFF" and _tiff_directory_missing(data):
        return cut_off()
    if fmt == "TIFF" and isinstance(exc, (SyntaxError, UnidentifiedImageError)):
        return _tiff_layout(data) or _damaged(fmt, "its directory cannot be read")
    return _damaged(fmt, "its data cannot be decoded")


def _damaged(fmt: str, what: str) -> ImageRejected:
    return ImageRejected(Reason.DAMAGED, f"a damaged {_NAMES.get(fmt, fmt)}: {what}")


def _unsupported(what: str) -> ImageRejected:
    return ImageRejected(Reason.UNSUPPORTED, f"{what}: not supported")


_NAMES = {
    "AVIF": "AVIF image",
    "WEBP": "WebP image",
    "JPEG": "JPEG",
    "PNG": "PNG",
    "GIF": "GIF",
    "TIFF": "TIFF",
    "BMP": "BMP",
}


def _pillow_says_truncated(exc: BaseException) -> bool:
    if isinstance(exc, EOFError):
        return True
    text = str(exc).lower()
    return "truncated" in text and "chunk" not in text


# PNG


@dataclass(frozen=True)
class Chunk:
    kind: bytes
    start: int  # offset of the length field
    end: int  # offset after the CRC
    crc_ok: bool

    @property
    def critical(self) -> bool:
        return not self.kind[0] & 0x20  # lower-case first letter: ancillary


class _CutOff(Exception):
    pass


def png_chunks(data: bytes) -> Iterator[Chunk]:
    """The chunks after the signature; raises _CutOff when one runs past the end of the file."""
    pos = 8
    view = memoryview(data)  # checksums over slices of it copy nothing
    while pos < len(data):
        if pos + 12 > len(data):
            raise _CutOff
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        end = pos + 12 + length
        if end > len(data):
            raise _CutOff
        kind = data[pos + 4 : pos + 8]
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        yield Chunk(kind, pos, end, zlib.crc32(view[pos + 4 : end - 4]) == crc)
        pos = end
        if kind == b"IEND":
            return
    raise _CutOff  # no IEND


_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
# Chunks a picture cannot be shown right without; anything else is metadata a decoder may drop.
PNG_NEEDED = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"acTL", b"fcTL", b"fdAT"})


def png_fault(data: bytes) -> ImageRejected | None:  # noqa: PLR0911 - one answer per kind of file or fault
    """What is wrong with the PNG's structure, or None if its chunks are sound.

    A bad checksum in an ancillary chunk (metadata) is not a fault here: libpng drops such chunks
    and so does ``png_without_bad_metadata``.
    """
    if data[12:16] != b"IHDR" or data[8:12] != b"\x00\x00\x00\x0d":
        return _damaged("PNG", "it does not start with an IHDR chunk")
    chunks: list[Chunk] = []
    try:
        for chunk in png_chunks(data):
            if chunk.critical and not chunk.crc_ok:
                return _damaged("PNG", f"bad checksum in chunk {chunk.kind.decode('latin-1')}")
            chunks.append(chunk)
    except _CutOff:
        return cut_off()
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    if not width or not height:
        return _damaged("PNG", "its width or height is 0")
    if depth not in _PNG_DEPTHS.get(colour, ()):
        return _damaged("PNG", f"colour type {colour} with {depth}-bit samples does not exist")
    idat = [chunk for chunk in chunks if chunk.kind == b"IDAT"]
    if not idat:
        return _damaged("PNG", "it has no image data (IDAT)")
    # The start of the stream (64 KB of pixels) shows whether it is zlib at all; a small image's whole
    # stream, its Adler-32 too. A fault further on is Pillow's to find as it decodes.
    stream, decoded = zlib.decompressobj(), 0
    try:
        for chunk in idat:
            decoded += len(stream.decompress(memoryview(data)[chunk.start + 8 : chunk.end - 4], 1 << 16))
            if decoded >= 1 << 16 or stream.unconsumed_tail:
                break
    except zlib.error:
        return _damaged("PNG", "its compressed image data is corrupt")
    return None


def png_without_metadata(data: bytes, *, keep_sound: bool) -> bytes | None:
    """The PNG with its damaged ancillary chunks dropped (all of them unless ``keep_sound``).

    None when there is nothing to drop. Only metadata goes (text, EXIF, profile, gamma); the chunks
    that decide the pixels, their transparency and animation stay.
    """
    try:
        chunks = list(png_chunks(data))
    except _CutOff:
        return None
    kept = [c for c in chunks if c.kind in PNG_NEEDED or (keep_sound and c.crc_ok)]
    if len(kept) == len(chunks):
        return None
    out = io.BytesIO()
    out.write(data[:8])
    for chunk in kept:
        out.write(data[chunk.start : chunk.end])
    return out.getvalue()


# JPEG

_SOF_LOSSLESS = {0xC3, 0xC7, 0xCB, 0xCF}
_SOF = {0xC0, 0xC1, 0xC2, 0xC5, 0xC6, 0xC9, 0xCA, 0xCD, 0xCE} | _SOF_LOSSLESS


def _jpeg_fault(data: bytes) -> ImageRejected | None:  # noqa: PLR0911 - one answer per kind of file or fault
    pos = 2
    seen_sof = False
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return _damaged("JPEG", "its markers are corrupt")
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _SOF:
            if pos + 9 > len(data):
                return cut_off()
            precision, height, width = struct.unpack(">BHH", data[pos + 4 : pos + 9])
            if marker in _SOF_LOSSLESS:
                return _unsupported("a lossless JPEG")
            if precision != 8:
                return _unsupported(f"a {precision}-bit JPEG")
            if not width or not height:
                return _damaged("JPEG", "its width or height is 0")
            seen_sof = True
        if marker == 0xDA:  # SOS: entropy-coded data follows
            return None if seen_sof else _damaged("JPEG", "it has no frame header")
        pos += 2 + length
    if not seen_sof:
        return _damaged("JPEG", "it has no frame header") if pos < len(data) else cut_off()
    if pos >= len(data):
        return cut_off()
    return _damaged("JPEG", "it has no image data")


# BMP


def _bmp_fault(data: bytes) -> ImageRejected | None:
    if len(data) < 34:
        return cut_off()
    header, bits, compression = (
        int.from_bytes(data[14:18], "little"),
        int.from_bytes(data[28:30], "little"),
        int.from_bytes(data[30:34], "little"),
    )
    if compression == 4 and bits == 24:
        return _unsupported("a BMP with OS/2 RLE24 compression")
    if header in (16, 64):
        return _unsupported("an OS/2 2.x BMP")
    if compression in (4, 5):
        return _unsupported(f"a BMP holding a {'JPEG' if compression == 4 else 'PNG'}")
    if compression in (3, 6):
        return _unsupported("a BMP with an unusual bit-field layout")
    return None


# TIFF

_TIFF_COMPRESSIONS = {34925: "LZMA", 50000: "Zstandard", 50001: "WebP", 50002: "JPEG XL", 34712: "JPEG 2000"}
_TIFF_PHOTOMETRIC = {32844: "LogL", 32845: "LogLuv", 8: "CIELab", 9: "ICCLab", 10: "ITULab"}


def _tiff_fault(data: bytes) -> ImageRejected | None:
    """A compression or colour space we know Pillow does not read."""
    tags = _first_ifd(data)
    compression = tags.get(259)
    if isinstance(compression, int) and compression in _TIFF_COMPRESSIONS:
        return _unsupported(f"a {_TIFF_COMPRESSIONS[compression]}-compressed TIFF")
    photometric = tags.get(262)
    if isinstance(photometric, int) and photometric in _TIFF_PHOTOMETRIC:
        return _unsupported(f"a {_TIFF_PHOTOMETRIC[photometric]} TIFF")
    return None


def _tiff_directory_missing(data: bytes) -> bool:
    """The first directory's offset points past the end: the end of the file, which holds it, is gone."""
    if data[2:4] not in (b"*\x00", b"\x00*"):  # BigTIFF: not told
        return False
    offset = int.from_bytes(data[4:8], "little" if data[:2] == b"II" else "big")
    return offset + 2 > len(data)


def _tiff_layout(data: bytes) -> ImageRejected | None:
    """A TIFF Pillow would not open: its sample layout, in words."""
    tags = _first_ifd(data)
    bits, samples, planar = tags.get(258), tags.get(277, 1), tags.get(284, 1)
    if bits is None or not isinstance(samples, int):
        return None
    if not 1 <= samples <= 16:
        return _damaged("TIFF", f"it states {samples} samples per pixel")
    depth = bits[0] if isinstance(bits, tuple) and bits else bits
    layout = "separate planes" if planar == 2 else "one plane"
    return _unsupported(f"a TIFF with {samples} samples of {depth} bits per pixel in {layout}")


def _first_ifd(data: bytes) -> dict[int, object]:
    try:
        fp = io.BytesIO(data)
        ifd = TiffImagePlugin.ImageFileDirectory_v2(fp.read(8))
        fp.seek(ifd.next)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Corrupt EXIF data": what was read is used
            ifd.load(fp)
        return dict(ifd)
    except Exception:  # a directory we cannot read is simply not described
        return {}


# AVIF


def avif_size(data: bytes) -> tuple[int, int] | None:
    """The size an AVIF's first image-spatial-extents ("ispe") property states, if any."""
    at = data.find(b"ispe", 0, 1 << 16)
    if at < 0 or at + 16 > len(data):
        return None
    width, height = struct.unpack(">II", data[at + 8 : at + 16])
    return width, height
