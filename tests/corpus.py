"""Test images, generated in memory (no binary files in git). Each function returns encoded bytes."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image, ImageCms, ImageDraw, ImageFilter


def photo(size: tuple[int, int] = (64, 48), mode: str = "RGB") -> Image.Image:
    """A picture with structure (gradients and noise), so encoders have real work to do."""
    noise = Image.effect_noise(size, 50).convert("L")
    across = Image.linear_gradient("L").rotate(90).resize(size)
    down = Image.linear_gradient("L").resize(size)
    rgb = Image.merge("RGB", (across, down, noise))
    if mode == "RGBA":
        return Image.merge("RGBA", (*rgb.split(), down))
    return rgb.convert(mode)


def textured(size: tuple[int, int] = (64, 48)) -> Image.Image:
    """Grain a few pixels wide over a gradient, as in fabric or wood (not pixel-wide noise)."""
    grain = Image.effect_noise(size, 60).convert("L").filter(ImageFilter.GaussianBlur(1.5))
    ramp = Image.linear_gradient("L").resize(size)
    return Image.merge("RGB", (grain, ramp, grain.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))


def labelled(size: tuple[int, int]) -> Image.Image:
    """Small dark text on white, as on a product label: what shows JPEG ringing first."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    for y in range(6, size[1] - 12, 16):
        draw.text((6, y), "Steel 18/8 750 ml SKU 4411-AB dishwasher safe " * 4, fill=(30, 30, 30))
    return image


def encode(image: Image.Image, fmt: str, **save: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **save)
    return buf.getvalue()


def jpeg(
    size: tuple[int, int] = (64, 48), *, orientation: int = 1, progressive: bool = False, gps: bool = False
) -> bytes:
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    if gps:
        exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}  # GPS IFD
        exif[0x010F] = "Camera maker"
    return encode(photo(size), "JPEG", quality=90, progressive=progressive, exif=exif.tobytes())


def jpeg_grey(size: tuple[int, int] = (64, 48)) -> bytes:
    return encode(photo(size, "L"), "JPEG", quality=90)


def jpeg_cmyk(size: tuple[int, int] = (64, 48)) -> bytes:
    """A CMYK JPEG as print workflows export them (Pillow writes the Adobe marker)."""
    return encode(photo(size).convert("CMYK"), "JPEG", quality=90)


def png_rgba(size: tuple[int, int] = (64, 48)) -> bytes:
    return encode(photo(size, "RGBA"), "PNG")


def png_palette_transparent(size: tuple[int, int] = (64, 48)) -> bytes:
    image = photo(size).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return encode(image, "PNG", transparency=0)


def png_16bit_grey(size: tuple[int, int] = (64, 48), level: int = 40000) -> bytes:
    return encode(Image.new("I;16", size, level), "PNG")


def png_grey_alpha(size: tuple[int, int] = (64, 48)) -> bytes:
    return encode(photo(size, "RGBA").convert("LA"), "PNG")


def png_with_icc(size: tuple[int, int] = (64, 48)) -> bytes:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return encode(photo(size), "PNG", icc_profile=srgb)


def webp(size: tuple[int, int] = (64, 48), *, lossless: bool = False, alpha: bool = False) -> bytes:
    return encode(photo(size, "RGBA" if alpha else "RGB"), "WEBP", lossless=lossless, quality=90)


def gif_animated(
    size: tuple[int, int] = (40, 30), frames: int = 3, duration: int = 120, loop: int = 0
) -> bytes:
    # Frames must differ, or the GIF writer merges them into one.
    images = [Image.new("RGB", size, (n * 50 % 256, 120, 255 - n * 30 % 256)) for n in range(frames)]
    return encode(images[0], "GIF", save_all=True, append_images=images[1:], duration=duration, loop=loop)


def bmp(size: tuple[int, int] = (64, 48)) -> bytes:
    return encode(photo(size), "BMP")


def tiff(size: tuple[int, int] = (64, 48), mode: str = "RGB") -> bytes:
    return encode(photo(size, mode), "TIFF")


def avif(size: tuple[int, int] = (64, 48)) -> bytes:
    return encode(photo(size), "AVIF", quality=80)


def truncated_jpeg(size: tuple[int, int] = (256, 256)) -> bytes:
    data = jpeg(size)
    return data[: len(data) // 2]


def bomb_png(size: tuple[int, int] = (20000, 20000)) -> bytes:
    """A PNG whose header claims a huge image; its pixels are never needed to refuse it."""
    small = encode(Image.new("1", (8, 8)), "PNG")
    ihdr = struct.pack(">IIBBBBB", size[0], size[1], 1, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    patched = struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk) & 0xFFFFFFFF)
    return small[:8] + patched + small[8 + 25 :]
