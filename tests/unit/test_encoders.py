"""Files made by other real encoders (libjpeg-turbo, libwebp, libavif, libtiff, libvips, ImageMagick).

Each is made inside the test, into tmp_path, from a picture Pillow draws, and goes through the
transform with the same checks as the real-world corpus (tests/support/imagecheck.py). A test whose
tool is not installed skips, naming it: the tools come from Debian's packages `libjpeg-turbo-progs
webp libavif-bin libtiff-tools libvips-tools imagemagick` (`make encoders`, as root, installs them;
`make test` runs it).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image

from sansio.images import ImageRejected, transform
from sansio.reasons import Reason
from tests import corpus
from tests.support.imagecheck import Expect, assert_plain, check_output

SIZE = (161, 97)  # odd sides: rounding and chroma subsampling get tried


def source(folder: Path, name: str = "source.png", *, alpha: bool = False, shift: int = 0) -> Path:
    """A picture with structure; with ``alpha``, a transparent band across it."""
    picture = corpus.photo(SIZE, "RGBA" if alpha else "RGB")
    if alpha:
        mask = Image.new("L", SIZE, 255)
        mask.paste(0, (0, 30, SIZE[0], 60))
        picture.putalpha(mask)
    if shift:
        picture = picture.rotate(shift * 90, expand=False)
    path = folder / name
    picture.save(path)
    return path


def ppm(folder: Path) -> Path:
    path = folder / "source.ppm"
    Image.open(source(folder)).convert("RGB").save(path)
    return path


def run(*command: str | Path) -> None:
    subprocess.run([str(part) for part in command], check=True, capture_output=True, timeout=120)


@dataclass(frozen=True)
class Made:
    tool: str
    make: Callable[[Path], Path]  # writes the file into the folder and returns its path
    refused: Reason | None = None
    expect: Expect = field(default_factory=Expect)


def cjpeg(*flags: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        out = folder / "out.jpg"
        run("cjpeg", *flags, "-outfile", out, ppm(folder))
        return out

    return make


def cut_in_half(make: Callable[[Path], Path]) -> Callable[[Path], Path]:
    def cut(folder: Path) -> Path:
        path = make(folder)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return path

    return cut


def cwebp(folder: Path) -> Path:
    run(
        "cwebp",
        "-quiet",
        "-q",
        "80",
        "-alpha_q",
        "100",
        source(folder, alpha=True),
        "-o",
        folder / "out.webp",
    )
    return folder / "out.webp"


def img2webp(folder: Path) -> Path:
    frames = [source(folder, f"f{i}.png", shift=i) for i in range(3)]
    run("img2webp", "-loop", "3", "-lossy", "-d", "150", *frames, "-o", folder / "anim.webp")
    return folder / "anim.webp"


def avifenc(*flags: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        out = folder / "out.avif"
        run("avifenc", "-s", "10", *flags, source(folder, alpha=True), out)
        return out

    return make


def tiffcp(*flags: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        plain = folder / "plain.tif"
        Image.open(source(folder)).save(plain)
        run("tiffcp", *flags, plain, folder / "out.tif")
        return folder / "out.tif"

    return make


def vips(*steps: tuple[str, ...]) -> Callable[[Path], Path]:
    """``vips`` operations in a row, each reading the previous file: (operation, output name, args…)."""

    def make(folder: Path) -> Path:
        current = source(folder)
        for operation, name, *args in steps:
            out = folder / name
            run("vips", operation, current, out, *args)
            current = out
        return current

    return make


def magick(*args: str, alpha: bool = False, out: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        run("convert", source(folder, alpha=alpha), *args, folder / out)
        return folder / out

    return make


def magick_frames(*args: str, out: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        frames = [source(folder, f"f{i}.png", shift=i) for i in range(3)]
        run("convert", *args, *frames, folder / out)
        return folder / out

    return make


MADE = {
    "cjpeg baseline": Made("cjpeg", cjpeg("-quality", "90")),
    "cjpeg progressive": Made("cjpeg", cjpeg("-progressive")),
    "cjpeg arithmetic": Made("cjpeg", cjpeg("-arithmetic")),
    "cjpeg greyscale": Made("cjpeg", cjpeg("-grayscale")),
    "cjpeg cut in half": Made("cjpeg", cut_in_half(cjpeg("-quality", "90")), Reason.TRUNCATED),
    "cwebp lossy with alpha": Made("cwebp", cwebp, expect=Expect(transparent=True)),
    "img2webp animated": Made("img2webp", img2webp, expect=Expect(animated=True)),
    "avifenc 8-bit with alpha": Made("avifenc", avifenc(), expect=Expect(transparent=True)),
    "avifenc 10-bit 444": Made("avifenc", avifenc("-d", "10", "-y", "444"), expect=Expect(transparent=True)),
    "avifenc 12-bit 420": Made("avifenc", avifenc("-d", "12", "-y", "420"), expect=Expect(transparent=True)),
    "tiffcp lzw": Made("tiffcp", tiffcp("-c", "lzw")),
    "tiffcp deflate": Made("tiffcp", tiffcp("-c", "zip")),
    "tiffcp packbits": Made("tiffcp", tiffcp("-c", "packbits")),
    "tiffcp jpeg": Made("tiffcp", tiffcp("-c", "jpeg")),
    "tiffcp planar": Made("tiffcp", tiffcp("-p", "separate")),
    "tiffcp tiled": Made("tiffcp", tiffcp("-t", "-w", "64", "-l", "64")),
    "tiffcp cut in half": Made("tiffcp", cut_in_half(tiffcp("-c", "none")), Reason.TRUNCATED),
    "vips 16-bit png": Made("vips", vips(("colourspace", "out.png", "rgb16"))),
    "vips float tiff": Made(
        "vips",
        vips(("colourspace", "grey.v", "b-w"), ("cast", "out.tif", "float")),
        expect=Expect(wide_samples=True),
    ),
    "vips signed 16-bit tiff": Made(
        "vips",
        vips(
            ("colourspace", "grey.v", "b-w"),
            ("linear", "wide.v", "40", "--", "-5000"),
            ("cast", "out.tif", "short"),
        ),
        expect=Expect(wide_samples=True),
    ),
    "magick cmyk jpeg": Made("convert", magick("-colorspace", "CMYK", out="out.jpg")),
    "magick exif orientation 6": Made("convert", magick("-orient", "RightTop", out="out.jpg")),
    "magick palette png with alpha": Made(
        "convert", magick("-colors", "32", alpha=True, out="PNG8:out.png"), expect=Expect(transparent=True)
    ),
    "magick grey and alpha tiff": Made(
        "convert", magick("-colorspace", "Gray", alpha=True, out="out.tif"), expect=Expect(transparent=True)
    ),
    "magick 32-bit bmp with alpha": Made(
        "convert", magick(alpha=True, out="BMP3:out.bmp"), expect=Expect(transparent=True)
    ),
    "magick multi-page tiff": Made("convert", magick_frames(out="out.tif")),
    "magick animated gif playing twice": Made(
        "convert", magick_frames("-delay", "20", "-loop", "2", out="out.gif"), expect=Expect(animated=True)
    ),
    "magick gif playing once": Made(
        "convert", magick_frames("-delay", "20", out="out.gif"), expect=Expect(animated=True)
    ),
}


def installed(tool: str) -> bool:
    """The tool is on the PATH, and for ``convert`` it is ImageMagick's: some machines put a stand-in
    there that only turns a PNG into a PPM, and every other call fails."""
    if shutil.which(tool) is None:
        return False
    if tool != "convert":
        return True
    version = subprocess.run([tool, "-version"], capture_output=True, text=True, check=False, timeout=30)
    return "ImageMagick" in version.stdout


@pytest.mark.parametrize("name", list(MADE))
def test_file_made_by_another_encoder(name: str, tmp_path: Path) -> None:
    made = MADE[name]
    if not installed(made.tool):
        pytest.skip(f"{made.tool} is not installed (Debian: see this module's docstring, or `make encoders`)")
    path = made.make(tmp_path)
    data = path.read_bytes()
    try:
        result = transform(data)
    except ImageRejected as exc:
        assert made.refused is not None, f"{name} refused ({exc.code}: {exc}), expected an output"
        assert exc.code == made.refused, f"{name}: {exc.code} ({exc})"
        assert_plain(str(exc))
        return
    assert made.refused is None, f"{name} gave an output, expected a refusal: {made.refused}"
    check_output(name, data, result.data, result.format, made.expect)
