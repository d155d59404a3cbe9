"""The comparison page's "before" pictures, the sample catalogue's images, the download names: pure parts."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from catalog.downloads import result_file_name, zip_file_name
from catalog.storage import preview_image_name
from sansio import samples
from sansio.images import TransformOptions, before_picture, transform


def picture(size: tuple[int, int], mode: str = "RGB", fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    Image.linear_gradient("L").resize(size).convert(mode).save(buf, fmt)
    return buf.getvalue()


def test_a_transform_makes_no_preview() -> None:
    """The worker makes outputs only: a "before" picture is made when a page asks for one."""
    assert not hasattr(transform(picture((400, 300))), "preview")


@pytest.mark.parametrize(
    ("size", "mode", "fmt", "expected"),
    [
        ((2000, 1000), "RGB", "JPEG", (500, 250)),  # the output is 1000x500: halved to fit in 640
        ((3000, 600), "RGB", "JPEG", (500, 100)),  # 1500x300: a third
        ((800, 600), "RGB", "JPEG", (400, 300)),  # within 640: the output's own size
        ((900, 900), "RGBA", "PNG", (450, 450)),  # transparency flattened, as a JPEG
    ],
)
def test_the_preview_is_what_the_encoder_was_given_reduced_by_a_whole_factor_to_fit(
    size: tuple[int, int], mode: str, fmt: str, expected: tuple[int, int]
) -> None:
    made = before_picture(picture(size, mode, fmt), TransformOptions(), 640)
    with Image.open(io.BytesIO(made)) as preview:
        assert preview.format == "JPEG" and preview.size == expected


def test_the_preview_is_upright_as_the_output_is() -> None:
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: shown rotated a quarter turn
    Image.linear_gradient("L").resize((800, 400)).convert("RGB").save(buf, "JPEG", exif=exif)
    output = transform(buf.getvalue())
    with Image.open(io.BytesIO(before_picture(buf.getvalue(), TransformOptions(), 1024))) as preview:
        assert preview.size == (output.width, output.height) == (200, 400)


def test_an_animation_previews_its_first_frame() -> None:
    data, _ = samples.sample_image("clock.gif") or (b"", "")
    assert Image.open(io.BytesIO(before_picture(data, TransformOptions(), 640))).size == (240, 240)


def test_the_preview_is_named_after_its_output() -> None:
    assert preview_image_name("outputs/6f1c/12-2.webp") == "previews/6f1c/12-2.jpg"


def test_download_names_follow_the_upload() -> None:
    assert result_file_name("chairs.csv") == "chairs-result.csv"
    assert result_file_name("Chairs.CSV") == "Chairs-result.csv"
    assert result_file_name("..\\evil/x.csv") == "x-result.csv"
    assert zip_file_name("chairs.csv") == "chairs-images.zip"


def test_every_sample_decodes_and_is_always_the_same() -> None:
    for sample in samples.SAMPLES:
        found = samples.sample_image(sample.name)
        assert found is not None
        data, content_type = found
        with Image.open(io.BytesIO(data)) as image:
            assert image.size == sample.size and image.format == sample.format
        assert content_type == samples.CONTENT_TYPES[sample.format]
        samples.sample_image.cache_clear()
        assert samples.sample_image(sample.name) == found, "drawn the same every time"
    assert samples.sample_image("nothing.jpg") is None


def test_the_sample_catalogue_points_at_the_samples() -> None:
    rows = samples.catalogue_rows("http://127.0.0.1:8000")
    assert rows[0] == ["S. No.", "Product Name", "Input Image Urls"]
    urls = [u for row in rows[1:] for u in row[2].split(",")]
    assert len(urls) == 9 and all(u.startswith("http://127.0.0.1:8000/samples/") for u in urls)
    names = {u.rsplit("/", 1)[1] for u in urls}
    assert names - {s.name for s in samples.SAMPLES} == {samples.MISSING, samples.NOT_AN_IMAGE}
