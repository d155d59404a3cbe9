"""Every file of the real-world corpus (../shared/realworld) through the transform, outcome asserted.

The files are read in place, never copied into the project. Where they are: $SHARED_DIR/realworld, else
<repo root>/../shared/realworld (as CI lays it out); the tests skip, saying so, when it is absent.

EXPECTED names each file's outcome: OK (an output is made) or the reason code it is refused with. For an
output the test checks, against Pillow's own reading of the input: it decodes; it has the contract's size
(half the upright size) and format; it is oriented once (its pixels match the upright input's, which a
second or missing rotation would not); transparency, animation timing and loop count are kept where the
output format can hold them; colours are sane (no black or white page from wide samples). A refusal must
carry a plain message: no Python exception text, no Pillow message.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sansio.images import ImageRejected, transform
from sansio.reasons import Reason
from tests.support.imagecheck import Expect, assert_plain, check_output

OK = None
DAMAGED, TRUNCATED, UNSUPPORTED = Reason.DAMAGED, Reason.TRUNCATED, Reason.UNSUPPORTED
NOT_AN_IMAGE, IMAGE_TOO_LARGE = Reason.NOT_AN_IMAGE, Reason.IMAGE_TOO_LARGE


def shared_dir() -> Path:
    """$SHARED_DIR, else the ``shared`` folder beside the repository (CI's layout)."""
    configured = os.environ.get("SHARED_DIR")
    return Path(configured) if configured else Path(__file__).resolve().parents[2].parent / "shared"


REALWORLD = shared_dir() / "realworld"
needs_corpus = pytest.mark.skipif(
    not (REALWORLD / "MANIFEST.tsv").is_file(),
    reason=f"the real-world corpus is not at {REALWORLD} (set SHARED_DIR to the folder holding realworld/)",
)

# Every file of MANIFEST.tsv: OK, or the code it is refused with.
EXPECTED: dict[str, Reason | None] = {
    "exiforient-Landscape_0.jpg": OK,
    "exiforient-Landscape_1.jpg": OK,
    "exiforient-Landscape_3.jpg": OK,
    "exiforient-Landscape_5.jpg": OK,
    "exiforient-Landscape_6.jpg": OK,
    "exiforient-Landscape_8.jpg": OK,
    "exiforient-Portrait_1.jpg": OK,
    "exiforient-Portrait_5.jpg": OK,
    "exiforient-Portrait_6.jpg": OK,
    "exiforient-Portrait_8.jpg": OK,
    "imagegif-beacon.gif": OK,
    "imagegif-interlaced.gif": OK,
    "imagegif-issue-101-infinite-empty-loop.gif": IMAGE_TOO_LARGE,
    "imagegif-issue-117-out-of-range.gif": TRUNCATED,
    "imagegif-issue-96-small-codesize.gif": DAMAGED,
    "imagegif-moon_impact.gif": OK,
    "imagepng-F-exif-chunk-early.png": OK,
    "imagepng-PngSuite.png": OK,
    "imagepng-Transparency.png": OK,
    "imagepng-basi0g16.png": OK,
    "imagepng-basi4a16.png": OK,
    "imagepng-basi6a16.png": OK,
    "imagepng-basn0g01.png": OK,
    "imagepng-basn0g04.png": OK,
    "imagepng-basn0g08.png": OK,
    "imagepng-basn0g16.png": OK,
    "imagepng-basn2c16.png": OK,
    "imagepng-basn3p01.png": OK,
    "imagepng-basn3p04.png": OK,
    "imagepng-basn3p08.png": OK,
    "imagepng-basn4a08.png": OK,
    "imagepng-basn6a08.png": OK,
    "imagepng-basn6a16.png": OK,
    "imagepng-broken_iccp.png": OK,
    "imagepng-cdfn2c08.png": OK,
    "imagepng-cicp_pq.png": OK,
    "imagepng-ctzn0g04.png": OK,
    "imagepng-g25n2c08.png": OK,
    "imagepng-invalid_palette_index.png": OK,
    "imagepng-kodim23.png": OK,
    "imagepng-oi9n2c16.png": OK,
    "imagepng-pp0n6a08.png": OK,
    "imagepng-s01n3p01.png": OK,
    "imagepng-s39i3p04.png": OK,
    "imagepng-tango-icon-address-book-new-128-rsvg-convert.png": OK,
    "imagepng-tbbn3p08.png": OK,
    "imagepng-tbrn2c08.png": OK,
    "imagepng-tbwn0g16.png": OK,
    "imagepng-tm3n3p02.png": OK,
    "imagepng-tp0n3p08.png": OK,
    "imagepng-tp1n3p08.png": OK,
    "imagepng-x_ihdr_missing.png": DAMAGED,
    "imagepng-x_unexpected_eof.png": DAMAGED,
    "imagepng-xc1n0g08.png": DAMAGED,
    "imagepng-xc9n2c08.png": DAMAGED,
    "imagepng-xcrn0g04.png": DAMAGED,
    "imagepng-xcsn0g01.png": DAMAGED,
    "imagepng-xd0n2c08.png": DAMAGED,
    "imagepng-xdtn0g01.png": DAMAGED,
    "imagepng-xhdn0g08.png": DAMAGED,
    "imagepng-xlfn0g04.png": DAMAGED,
    "imagepng-xs1n0g01.png": DAMAGED,
    "imagepng-xs7n0g01.png": DAMAGED,
    "imagers-Core_8_Bit.bmp": OK,
    "imagers-advertises_rgba_but_frames_are_rgb.webp": OK,
    "imagers-anim.webp": OK,
    "imagers-ball.png": OK,
    "imagers-cat.jpg": OK,
    "imagers-exif-xmp-metadata.jpg": OK,
    "imagers-interlaced.gif": OK,
    "imagers-issue_1455_undersized.gif": OK,
    "imagers-lossy_alpha.webp": OK,
    "imagers-oob.gif": OK,
    "imagers-oss-fuzz-36829.jpeg": DAMAGED,
    "imagers-panic.webp": OK,
    "imagers-portrait_2.jpg": OK,
    "imagers-rgb24rle24.bmp": UNSUPPORTED,
    "imagetiff-cmyk-4c-8b.tiff": UNSUPPORTED,
    "imagetiff-dscf0013.tif": TRUNCATED,
    "imagetiff-flower-rgb-planar-12.tif": UNSUPPORTED,
    "imagetiff-flower-separated-contig-16.tif": OK,
    "imagetiff-gradient-1c-32b-float.tiff": OK,
    "imagetiff-int16.tif": OK,
    "imagetiff-logluv-3c-16b.tiff": UNSUPPORTED,
    "imagetiff-minisblack-1c-16b.tiff": OK,
    "imagetiff-minisblack-2c-8b-alpha.tiff": UNSUPPORTED,
    "imagetiff-off_luv24.tif": UNSUPPORTED,
    "imagetiff-seq-1c-8b-multipage-adeefdcc.tiff": OK,
    "imagetiff-seq-4c-8b-rgba-unassoc-50969cda.tiff": OK,
    "imagetiff-tiled-jpeg-ycbcr.tif": OK,
    "imagetiff-ycbcr-cat.tif": OK,
    "imagetiff-zackthecat.tif": OK,
    "imagewebp-2_webp_a.webp": OK,
    "imagewebp-dark.webp": OK,
    "imagewebp-lossless_indexed_1bit_palette.webp": OK,
    "imagewebp-random_lossy.webp": OK,
    "jpegdecoder-16bit-qtables.jpg": OK,
    "jpegdecoder-c3018ebe53d0046eecb58858ca869a99.jpg": TRUNCATED,
    "jpegdecoder-d22db5be7594c17a18a047ca9264ea0a.jpg": OK,
    "jpegdecoder-empty.jpg": NOT_AN_IMAGE,
    "jpegdecoder-extraneous-bytes-after-sos.jpg": OK,
    "jpegdecoder-invalid-dimensions.jpg": DAMAGED,
    "jpegdecoder-jpeg_lossless_sel1.jpg": UNSUPPORTED,
    "jpegdecoder-jpg-cmyk-1.jpg": OK,
    "jpegdecoder-jpg-cmyk-2.jpg": OK,
    "jpegdecoder-jpg-size-1x1.jpg": OK,
    "jpegdecoder-jpg-srgb-icc.jpg": OK,
    "jpegdecoder-missing-sos.jpg": DAMAGED,
    "jpegdecoder-mjpeg.jpg": OK,
    "jpegdecoder-partial_progressive.jpg": OK,
    "jpegdecoder-progressive-missing-ac.jpg": OK,
    "jpegdecoder-restarts.jpg": OK,
    "jpegdecoder-tower_progressive.jpg": OK,
    "jpegdecoder-ycck.jpg": OK,
    "libavif-ArcTriomphe-cHRM-orig.png": OK,
    "libavif-abc_color_irot_alpha_irot.avif": OK,
    "libavif-alpha_noispe.avif": DAMAGED,
    "libavif-apple_gainmap_new.jpg": OK,
    "libavif-clap_irot_imir_non_essential.avif": DAMAGED,
    "libavif-colors-animated-8bpc.avif": OK,
    "libavif-kodim03_grayscale_gamma1.6.png": OK,
    "libavif-paris_exif_orientation_5.jpg": OK,
    "libavif-paris_icc_exif_xmp.png": OK,
    "libavif-seine_sdr_gainmap_srgb.avif": OK,
    "libavif-sofa_grid1x5_420.avif": OK,
    "libjpegturbo-monkey12.jpg": UNSUPPORTED,
    "libjpegturbo-testimgari.jpg": OK,
    "libjpegturbo-testimgint.jpg": OK,
    "libjpegturbo-testorig.jpg": OK,
    "libjpegturbo-vgl_6434_0018a.bmp": OK,
    "libpng-bad_iCCP.png": DAMAGED,
    "libpng-badadler.png": DAMAGED,
    "libpng-badcrc.png": DAMAGED,
    "libpng-empty_ancillary_chunks.png": OK,
    "libpng-gray-16-sRGB-tRNS.png": OK,
    "libpng-huge_iCCP_chunk.png": TRUNCATED,
    "libpng-rgb-alpha-16-1.8.png": OK,
    "libpng-toucan.png": OK,
    "libvips-17000x17000.avif": IMAGE_TOO_LARGE,
    "libvips-1bit.tif": OK,
    "libvips-5.jpg": OK,
    "libvips-6.jpg": OK,
    "libvips-avif-orientation-6.avif": OK,
    "libvips-big-height.webp": OK,
    "libvips-blankpage.pdf": NOT_AN_IMAGE,
    "libvips-blankpage.svg": UNSUPPORTED,
    "libvips-cogs.gif": OK,
    "libvips-cramps.gif": OK,
    "libvips-dispose-background.gif": OK,
    "libvips-invalid_multiframe.gif": DAMAGED,
    "libvips-looks-like-svg.webp": OK,
    "libvips-ojpeg-strip.tif": OK,
    "libvips-sample-xyb.jpg": OK,
    "libvips-sample.jpg": OK,
    "libvips-sample.tif": OK,
    "libvips-small.bmp": OK,
    "libvips-trans-x.gif": OK,
    "libvips-truncated.gif": TRUNCATED,
    "libvips-truncated.jpg": TRUNCATED,
    "libvips-ultra-hdr.jpg": OK,
    "libwebp-alpha_no_compression.webp": OK,
    "libwebp-bad_palette_index.webp": OK,
    "libwebp-lossless1.webp": OK,
    "libwebp-lossless_color_transform.webp": OK,
    "libwebp-lossy_alpha1.webp": OK,
    "libwebp-lossy_alpha4.webp": OK,
    "libwebp-one_color_no_palette.webp": OK,
    "libwebp-small_1x1.webp": OK,
    "libwebp-small_31x13.webp": OK,
    "libwebp-very_short.webp": OK,
    "libwebp-vp80-00-comprehensive-001.webp": OK,
    "linku-fox.profile0.10bpc.yuv420.monochrome.odd-width.avif": OK,
    "linku-fox.profile0.8bpc.yuv420.avif": OK,
    "linku-fox.profile2.12bpc.yuv444.odd-width.odd-height.avif": OK,
    "linku-kimono.mirror-vertical.rotate270.crop.avif": OK,
    "linku-kimono.rotate90.avif": OK,
    "linku-plum-blossom-small.profile0.8bpc.yuv420.alpha-full.avif": DAMAGED,
    "linku-red-at-12-oclock-with-color-profile.jpg": OK,
    "pillow-10ct_32bit_128.tiff": OK,
    "pillow-12bit.cropped.tif": OK,
    "pillow-16bit.MM.deflate.tif": OK,
    "pillow-200x32_rgba_tl_rle.tga": NOT_AN_IMAGE,
    "pillow-bmpsuite-b-badrle.bmp": OK,
    "pillow-bmpsuite-b-pal8badindex.bmp": OK,
    "pillow-bmpsuite-b-reallybig.bmp": IMAGE_TOO_LARGE,
    "pillow-bmpsuite-b-shortfile.bmp": TRUNCATED,
    "pillow-bmpsuite-g-pal1.bmp": OK,
    "pillow-bmpsuite-g-pal4rle.bmp": OK,
    "pillow-bmpsuite-g-rgb16-565.bmp": OK,
    "pillow-bmpsuite-g-rgb32bf.bmp": UNSUPPORTED,
    "pillow-bmpsuite-q-pal4rletrns.bmp": OK,
    "pillow-bmpsuite-q-pal8os2v2-16.bmp": UNSUPPORTED,
    "pillow-bmpsuite-q-rgb24jpeg.bmp": UNSUPPORTED,
    "pillow-bmpsuite-q-rgb32fakealpha.bmp": OK,
    "pillow-bmpsuite-q-rgba16-4444.bmp": UNSUPPORTED,
    "pillow-bmpsuite-q-rgba32.bmp": OK,
    "pillow-broken.png": DAMAGED,
    "pillow-broken_data_stream.png": DAMAGED,
    "pillow-chi.gif": OK,
    "pillow-decompression_bomb.gif": IMAGE_TOO_LARGE,
    "pillow-delay.png": OK,
    "pillow-different_transparency.gif": OK,
    "pillow-duplicate_frame.gif": OK,
    "pillow-exif.avif": OK,
    "pillow-exif.png": OK,
    "pillow-exif_imagemagick_orientation.png": OK,
    "pillow-g4_orientation_3.tif": OK,
    "pillow-g4_orientation_6.tif": OK,
    "pillow-g4_orientation_8.tif": OK,
    "pillow-hopper.Lab.tif": OK,
    "pillow-hopper.heif": UNSUPPORTED,
    "pillow-hopper.psd": UNSUPPORTED,
    "pillow-hopper.tif": OK,
    "pillow-hopper.webp": OK,
    "pillow-hopper_16bit_qtables.jpg": OK,
    "pillow-hopper_bad_exif.jpg": OK,
    "pillow-hopper_idat_after_image_end.png": OK,
    "pillow-hopper_lzma.tif": OK,
    "pillow-hopper_orientation_5.jpg": OK,
    "pillow-hopper_orientation_6.webp": OK,
    "pillow-hopper_orientation_8.jpg": OK,
    "pillow-hopper_webp.tif": UNSUPPORTED,
    "pillow-i_trns.png": OK,
    "pillow-icc-after-SOF.jpg": OK,
    "pillow-icc_profile.png": OK,
    "pillow-icc_profile_big.jpg": OK,
    "pillow-iss634.gif": OK,
    "pillow-iss634.webp": OK,
    "pillow-junk_jpeg_header.jpg": OK,
    "pillow-l_trns.png": OK,
    "pillow-libtiff_segfault.tif": DAMAGED,
    "pillow-mode_16bit.png": OK,
    "pillow-multipage.tiff": OK,
    "pillow-old-style-jpeg-compression.tif": OK,
    "pillow-orientation_rectangle.jpg": OK,
    "pillow-pil_sample_cmyk.jpg": OK,
    "pillow-png_decompression_dos.png": OK,
    "pillow-python.ico": UNSUPPORTED,
    "pillow-rot1mir0.avif": OK,
    "pillow-star.avifs": OK,
    "pillow-sugarshack.mpo": OK,
    "pillow-tRNS_null_1x1.png": OK,
    "pillow-test-card-lossless.jp2": UNSUPPORTED,
    "pillow-tiff_16bit_RGBa.tiff": OK,
    "pillow-tiff_strip_cmyk_jpeg.tif": OK,
    "pillow-tiff_wrong_bits_per_sample.tiff": OK,
    "pillow-total-pages-zero.tif": OK,
    "pillow-transparency.avif": OK,
    "pillow-transparent.gif": OK,
    "pillow-transparent.webp": OK,
    "pillow-truncated_app14.jpg": OK,
    "pillow-truncated_jpeg.jpg": TRUNCATED,
    "pillow-ultrahdr.jpg": TRUNCATED,
    "pillow-xmp_tags_orientation.avif": OK,
    "pillow-zero_width.gif": DAMAGED,
}

# Beyond the checks every output gets: what a file is there to prove.
ANIMATED = {  # file: frames the output plays (inputs with a frame Pillow merges as a duplicate: fewer)
    "imagewebp-random_lossy.webp",
    "libvips-big-height.webp",
    "pillow-iss634.webp",
    "pillow-different_transparency.gif",
    "pillow-delay.png",
    "imagers-anim.webp",
}
TRANSPARENT = {  # colour keys, 16-bit keys, palettes with alpha: some pixels must come out transparent
    "imagepng-tbwn0g16.png",
    "pillow-i_trns.png",
    "pillow-l_trns.png",
    "imagepng-tbrn2c08.png",
    "imagepng-tbbn3p08.png",
    "imagepng-tp1n3p08.png",
}
WIDE_SAMPLES = {  # float and signed 16-bit TIFFs: mapped to a visible range, not a black page
    "pillow-10ct_32bit_128.tiff",
    "imagetiff-gradient-1c-32b-float.tiff",
    "imagetiff-int16.tif",
}
# Pixels compared with a reference Pillow cannot make the same way (its convert of these differs from
# the colour-managed or mapped one): only size, format and the specific checks apply.
NO_PIXEL_REFERENCE = WIDE_SAMPLES | {"pillow-12bit.cropped.tif"}
SAME_FRAMES = {"imagers-issue_1455_undersized.gif"}  # identical frames: one still, shown as long as both


def corpus_files() -> list[str]:
    if not (REALWORLD / "MANIFEST.tsv").is_file():
        return sorted(EXPECTED)
    lines = (REALWORLD / "MANIFEST.tsv").read_text().splitlines()[1:]
    return [line.split("\t", 1)[0] for line in lines if line.strip()]


@needs_corpus
def test_the_table_names_every_file_of_the_manifest() -> None:
    assert set(corpus_files()) == set(EXPECTED)
    assert len(EXPECTED) == 255


@needs_corpus
@pytest.mark.parametrize("name", corpus_files())
def test_real_world_file(name: str) -> None:
    data = (REALWORLD / name).read_bytes()
    expected = EXPECTED[name]
    try:
        result = transform(data)
    except ImageRejected as exc:
        assert expected is not None, f"{name} refused ({exc.code}: {exc}), expected an output"
        assert exc.code == expected, f"{name}: {exc.code} ({exc}), expected {expected}"
        assert_plain(str(exc))
        return
    assert expected is None, f"{name} gave an output, expected a refusal: {expected}"
    expect = Expect(
        animated=name in ANIMATED,
        transparent=name in TRANSPARENT,
        wide_samples=name in WIDE_SAMPLES,
        compare_pixels=name not in NO_PIXEL_REFERENCE,
        same_frames=name in SAME_FRAMES,
    )
    check_output(name, data, result.data, result.format, expect)
