"""The transform on a generated corpus: size, mode, format, orientation, alpha, profile, metadata."""

from __future__ import annotations

import io
import os
import select
import signal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms

from sansio import encoding, images
from sansio.images import ImageRejected, TransformOptions, transform
from sansio.reasons import Reason
from tests import corpus


def opened(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def grey(image: Image.Image, xy: tuple[int, int]) -> int:
    value = image.getpixel(xy)
    assert isinstance(value, (int, float)), value  # a one-band image gives a number
    return int(value)


@pytest.mark.parametrize(
    ("name", "data", "fmt", "mode"),
    [
        ("baseline jpeg", corpus.jpeg((640, 480)), "JPEG", "RGB"),
        ("progressive jpeg", corpus.jpeg((640, 480), progressive=True), "JPEG", "RGB"),
        ("greyscale jpeg", corpus.jpeg_grey((640, 480)), "JPEG", "L"),
        ("cmyk jpeg", corpus.jpeg_cmyk((640, 480)), "JPEG", "RGB"),
        ("rgba png", corpus.png_rgba((640, 480)), "PNG", "RGBA"),
        ("palette png with transparency", corpus.png_palette_transparent((640, 480)), "PNG", "RGBA"),
        ("16-bit grey png", corpus.png_16bit_grey((640, 480)), "PNG", "L"),
        ("grey+alpha png", corpus.png_grey_alpha((640, 480)), "PNG", "LA"),
        ("lossy webp", corpus.webp((640, 480)), "WEBP", "RGB"),
        ("lossless webp", corpus.webp((640, 480), lossless=True), "WEBP", "RGB"),
        ("webp with alpha", corpus.webp((640, 480), alpha=True), "WEBP", "RGBA"),
        ("bmp", corpus.bmp((640, 480)), "JPEG", "RGB"),
        ("tiff", corpus.tiff((640, 480)), "JPEG", "RGB"),
        ("tiff with alpha", corpus.tiff((640, 480), "RGBA"), "PNG", "RGBA"),
        ("avif", corpus.avif((640, 480)), "JPEG", "RGB"),
    ],
)
def test_every_common_input_halves_and_keeps_or_picks_its_format(
    name: str, data: bytes, fmt: str, mode: str
) -> None:
    result = transform(data)
    out = opened(result.data)
    assert (out.format, out.size, out.mode) == (fmt, (320, 240), mode), name
    assert (result.width, result.height, result.format) == (320, 240, fmt)
    assert (result.input_width, result.input_height) == (640, 480)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_and_the_tag_reset(orientation: int) -> None:
    result = transform(corpus.jpeg((200, 100), orientation=orientation))
    out = opened(result.data)
    assert out.size == ((50, 100) if orientation >= 5 else (100, 50))
    assert out.getexif().get(0x0112, 1) == 1


def test_gps_and_camera_metadata_are_stripped() -> None:
    out = opened(transform(corpus.jpeg((200, 100), gps=True)).data)
    assert not out.getexif()
    assert "exif" not in out.info


def test_icc_profile_is_kept_when_pixels_were_not_converted() -> None:
    source = corpus.png_with_icc((200, 100))
    out = opened(transform(source, TransformOptions(output_format="webp")).data)
    assert out.info.get("icc_profile") == opened(source).info["icc_profile"]


def test_transparency_is_flattened_on_white_for_jpeg() -> None:
    clear = corpus.encode(Image.new("RGBA", (40, 40), (0, 0, 0, 0)), "PNG")
    out = opened(transform(clear, TransformOptions(output_format="jpeg")).data)
    assert out.mode == "RGB"
    assert out.getpixel((10, 10)) == (255, 255, 255)


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    out = opened(transform(corpus.png_16bit_grey(level=40000)).data)
    assert abs(grey(out, (5, 5)) - 40000 // 256) <= 1  # a plain convert would give 255


def test_palette_images_are_resized_smoothly() -> None:
    stripes = Image.new("P", (100, 100))
    stripes.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    stripes.putdata([(x % 2) for _ in range(100) for x in range(100)])
    out = opened(transform(corpus.encode(stripes, "PNG")).data)
    assert 100 <= grey(out.convert("L"), (10, 10)) <= 155, "averaged, not nearest-neighbour"


def test_animated_gif_keeps_every_frame_timing_and_loop() -> None:
    out = opened(transform(corpus.gif_animated((40, 30), frames=4, duration=120, loop=2)).data)
    assert (out.format, out.size, getattr(out, "n_frames", 1)) == ("GIF", (20, 15), 4)
    assert out.info["loop"] == 2
    durations = []
    for n in range(4):
        out.seek(n)
        durations.append(out.info["duration"])
    assert durations == [120] * 4


@pytest.mark.parametrize("output_format", ["jpeg", "png", "webp", "avif"])
def test_output_format_option(output_format: str) -> None:
    result = transform(corpus.png_rgba((101, 51)), TransformOptions(output_format=output_format))
    out = opened(result.data)
    assert out.format == output_format.upper()
    assert out.size == (50, 26)  # round(50.5) = 50 (half to even), round(25.5) = 26
    assert result.extension == {"jpeg": "jpg"}.get(output_format, output_format)
    if output_format in ("png", "webp", "avif"):
        assert "A" in out.getbands()


def test_quality_changes_jpeg_size() -> None:
    source = corpus.jpeg((640, 480))
    small = transform(source, TransformOptions(quality=20)).data
    large = transform(source, TransformOptions(quality=90)).data
    assert len(small) < len(large)


def test_odd_and_tiny_sizes_never_reach_zero() -> None:
    out = opened(transform(corpus.png_rgba((1, 1))).data)
    assert out.size == (1, 1)
    assert opened(transform(corpus.jpeg((3, 5)), TransformOptions(scale=0.01)).data).size == (1, 1)


@pytest.mark.parametrize(
    ("data", "code", "message"),
    [
        # Pillow's own guard trips first; the message is ours, naming the size
        (corpus.bomb_png(), Reason.IMAGE_TOO_LARGE, "image is 20000x20000 = 400 MP, over the 50 MP limit"),
        (
            corpus.bomb_png((9000, 9000)),
            Reason.IMAGE_TOO_LARGE,
            "image is 9000x9000 = 81 MP, over the 50 MP limit",
        ),
        (corpus.truncated_jpeg(), Reason.TRUNCATED, "the file is cut off"),
        (b"<html>not an image</html>", Reason.NOT_AN_IMAGE, "a web page (HTML), not an image"),
        (
            b"\x00\x01 binary",
            Reason.NOT_AN_IMAGE,
            "not an image in a supported format (JPEG, PNG, WebP, GIF, BMP, TIFF, AVIF)",
        ),
        (b"", Reason.NOT_AN_IMAGE, "the file is empty"),
    ],
)
def test_bad_inputs_are_refused_with_a_code_and_a_message(data: bytes, code: Reason, message: str) -> None:
    with pytest.raises(ImageRejected) as refused:
        transform(data)
    assert (refused.value.code, str(refused.value)) == (code, message)


def test_frame_cap() -> None:
    with pytest.raises(ImageRejected, match="frames, over the 3 frame limit"):
        transform(corpus.gif_animated(frames=5), TransformOptions(max_frames=3))


def test_pixel_cap_is_configurable() -> None:
    with pytest.raises(ImageRejected, match=r"over the 0\.001 MP limit"):
        transform(corpus.jpeg((64, 48)), TransformOptions(max_pixels=1000))


def test_cmyk_with_an_srgb_conversion_drops_the_cmyk_profile() -> None:
    out = opened(transform(corpus.jpeg_cmyk((64, 48))).data)
    assert out.mode == "RGB"
    profile = out.info.get("icc_profile")
    if profile:
        assert ImageCms.ImageCmsProfile(io.BytesIO(profile)).profile.xcolor_space.strip() == "RGB"


@settings(max_examples=60, deadline=None)
@given(
    width=st.integers(1, 120),
    height=st.integers(1, 120),
    mode=st.sampled_from(["RGB", "RGBA", "L", "LA", "P"]),
    fmt=st.sampled_from(["PNG", "WEBP", "JPEG", "GIF"]),
    scale=st.floats(0.01, 1.0),
)
def test_any_size_mode_and_scale_gives_the_rounded_size(
    width: int, height: int, mode: str, fmt: str, scale: float
) -> None:
    image = Image.new(mode, (width, height))
    if fmt == "JPEG" and mode not in ("RGB", "L"):
        image = image.convert("RGB")
    result = transform(corpus.encode(image, fmt), TransformOptions(scale=scale))
    expected = (max(1, round(width * scale)), max(1, round(height * scale)))
    assert opened(result.data).size == expected


def test_an_encoder_failure_is_ours_not_the_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """The input was fine: no reason code about the file, the service reports an internal error."""

    def broken(*args: object) -> bytes:
        raise OSError("encoder error -9")

    monkeypatch.setattr(encoding, "encode", broken)
    with pytest.raises(images.EncodeFailed):
        transform(corpus.jpeg((64, 48)))


@pytest.mark.parametrize("out_format", ["JPEG", "PNG", "WEBP", "GIF"])
def test_an_output_encoded_through_the_reused_in_memory_file_is_the_same_as_through_bytesio(
    out_format: str,
) -> None:
    # Encoding into a file lets Pillow release the GIL (sansio/encoding.py); the bytes must not change,
    # and a spool reused after a bigger output must not keep that output's tail.
    big = Image.effect_noise((300, 200), 60).convert("RGB")
    small = Image.linear_gradient("L").convert("RGB").resize((40, 30))
    for im in (big, small, big):
        expected = io.BytesIO()
        if out_format == "JPEG":
            im.save(expected, "JPEG", quality=50, optimize=encoding.JPEG_OPTIMIZE)
        elif out_format == "PNG":
            im.save(expected, "PNG", compress_level=encoding.PNG_COMPRESS_LEVEL)
        elif out_format == "WEBP":
            im.save(expected, "WEBP", quality=50, method=encoding.WEBP_METHOD)
        else:
            im.save(expected, "GIF")
        assert encoding.encode(im, out_format, 50, (255, 255, 255), None) == expected.getvalue()


def test_a_forked_child_does_not_write_into_its_parents_spool() -> None:
    im = Image.linear_gradient("L").convert("RGB")
    first = encoding.encode(im, "JPEG", 50, (255, 255, 255), None)  # leaves a spool in the queue
    reader, writer = os.pipe()
    ready: list[int] = []
    pid = os.fork()
    if pid == 0:  # the child: its encode must not use the parent's file; it never returns to pytest
        try:
            ok = encoding._SPOOLS.empty() and encoding.encode(im, "JPEG", 50, (255, 255, 255), None) == first
            os.write(writer, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(writer)
    try:
        ready, _, _ = select.select([reader], [], [], 30)  # a child stuck would never write
        assert ready and os.read(reader, 1) == b"1"
    finally:
        os.close(reader)
        if not ready:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
