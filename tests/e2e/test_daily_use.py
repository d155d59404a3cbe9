"""The pages people live in, in a real Chromium at desktop and phone width, on the sample catalogue.

`manage.py demo` fills a request (7 images done, 2 failing on purpose); every check waits on a
condition (a response, an image's load, a URL), never on time. Screenshots go to
test-artifacts/screenshots/ for people to look at.
"""

from __future__ import annotations

import csv
import io
import re
import signal
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright import sync_api

from sansio import samples
from tests.e2e.test_browser import CHROMIUM, PHONE, SHOTS, low_contrast, sticking_out
from tests.support.stack import REPO, Stack

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make browser)"),
]

DESKTOP: sync_api.ViewportSize = {"width": 1280, "height": 900}
WIDTHS = {"desktop": DESKTOP, "phone": PHONE}
FITS = """() => document.documentElement.scrollWidth <= innerWidth
  && [...document.querySelectorAll(".results")].every((e) => e.scrollWidth <= e.clientWidth)"""
ALL_IMAGES_LOADED = "() => [...document.images].every((i) => i.complete && i.naturalWidth > 0)"


@pytest.fixture(scope="module")
def demo(embedded_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The sample catalogue's request id, completed."""
    folder = tmp_path_factory.mktemp("demo")
    done = subprocess.run(
        [sys.executable, str(REPO / "manage.py"), "demo", "--server", embedded_stack.base_url],
        cwd=folder,
        env=embedded_stack.env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    found = re.search(r"/requests/([0-9a-f-]{36})/", done.stdout)
    assert found, done.stdout
    return found.group(1)


@pytest.fixture(scope="module")
def chromium() -> Iterator[sync_api.Browser]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def open_page(browser: sync_api.Browser, width: str, timezone: str = "UTC") -> sync_api.Page:
    phone = width == "phone"
    context = browser.new_context(
        viewport=WIDTHS[width], is_mobile=phone, has_touch=phone, accept_downloads=True, timezone_id=timezone
    )
    context.set_default_timeout(30_000)
    return context.new_page()


def load_every_image(page: sync_api.Page) -> None:
    """Scroll each image into view (they load lazily), then wait until every one has loaded."""
    images = page.locator("img")
    for n in range(images.count()):
        images.nth(n).scroll_into_view_if_needed()
    page.wait_for_function(ALL_IMAGES_LOADED)


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_a_request_page_full_of_the_sample_catalogue(
    embedded_stack: Stack, demo: str, chromium: sync_api.Browser, width: str
) -> None:
    expect = sync_api.expect
    page = open_page(chromium, width, timezone="Asia/Kolkata")
    try:
        response = page.goto(f"{embedded_stack.base_url}/requests/{demo}/")
        assert response is not None and response.status == 200
        products = page.locator("table.products tbody tr")
        expect(products).to_have_count(6)
        # Every picture is an output, none hotlinked from /samples/ (before pictures are on the
        # comparison pages, made when one is first opened).
        expect(page.locator("table.products img")).to_have_count(7)
        sources = page.locator("table.products img").evaluate_all("els => els.map((e) => e.src)")
        assert all("/media/outputs/" in s for s in sources), sources
        expect(page.locator("table.products figcaption").first).to_contain_text("Before")
        load_every_image(page)
        # Failures in words, without an image (so never a broken-image icon).
        failed = page.locator("li.image-failed")
        expect(failed).to_have_count(2)
        expect(failed.nth(0)).to_contain_text("sent text/plain, not an image")
        expect(failed.nth(1)).to_contain_text("HTTP 404")
        assert failed.locator("img").count() == 0
        # The time in the reader's zone, named; the UTC original kept in the datetime attribute.
        uploaded = page.locator("p.meta time")
        expect(uploaded).to_have_text(re.compile(r"GMT\+5:30"))
        assert uploaded.get_attribute("datetime")
        expect(page.locator('[data-count="failed"]')).to_have_class(re.compile("count-failed"))
        assert low_contrast(page) == []
        if width == "phone":
            assert sticking_out(page) == []
        page.screenshot(path=str(SHOTS / f"10-request-{width}.png"), full_page=True)
    finally:
        page.context.close()


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_the_failed_only_filter(
    embedded_stack: Stack, demo: str, chromium: sync_api.Browser, width: str
) -> None:
    expect = sync_api.expect
    page = open_page(chromium, width)
    try:
        page.goto(f"{embedded_stack.base_url}/requests/{demo}/")
        page.get_by_role("link", name="Only failed images (2)").click()
        page.wait_for_url("**/?show=failed")
        rows = page.locator("table.products tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.nth(0)).to_contain_text("Glass vase")
        expect(rows.nth(1)).to_contain_text("Bookshelf")
        expect(page.locator("table.products img")).to_have_count(0)  # only the failed images are listed
        expect(page.locator("li.image-failed")).to_have_count(2)
        page.screenshot(path=str(SHOTS / f"11-failed-only-{width}.png"), full_page=True)
        page.get_by_role("link", name="All products").click()
        page.wait_for_url(re.compile(r"/requests/[0-9a-f-]+/\?$"))
        expect(rows).to_have_count(6)
    finally:
        page.context.close()


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_the_comparison_opened_from_a_product(
    embedded_stack: Stack, demo: str, chromium: sync_api.Browser, width: str
) -> None:
    expect = sync_api.expect
    page = open_page(chromium, width)
    try:
        page.goto(f"{embedded_stack.base_url}/requests/{demo}/")
        page.get_by_role("link", name="Compare image 1 of Armchair before and after").click()
        page.wait_for_url(f"**/requests/{demo}/compare/1/1/")
        expect(page.get_by_role("heading", level=1)).to_contain_text("Armchair")
        before, after = page.locator("img[data-before]"), page.locator("img[data-after]")
        page.wait_for_function(ALL_IMAGES_LOADED)
        sizes = [
            img.evaluate("i => [i.naturalWidth, i.getBoundingClientRect().width]") for img in (before, after)
        ]
        assert sizes[0][0] == sizes[1][0] == 800, sizes  # the preview is the 800x600 frame the encoder had
        assert abs(sizes[0][1] - sizes[1][1]) < 1, "shown at the same size"
        assert sizes[0][1] >= (500 if width == "desktop" else 300), "at a size where compression shows"
        if width == "desktop":  # side by side
            tops = [img.evaluate("i => i.getBoundingClientRect().top") for img in (before, after)]
            assert tops[0] == tops[1]
        else:
            assert sticking_out(page) == []
        assert low_contrast(page) == []
        page.screenshot(path=str(SHOTS / f"12-compare-{width}.png"), full_page=True)
    finally:
        page.context.close()


def test_downloads_the_result_csv_and_a_zip_of_the_outputs(
    embedded_stack: Stack, demo: str, chromium: sync_api.Browser
) -> None:
    page = open_page(chromium, "desktop")
    try:
        page.goto(f"{embedded_stack.base_url}/requests/{demo}/")
        with page.expect_download() as csv_download:
            page.get_by_role("link", name="Download the result CSV").click()
        assert csv_download.value.suggested_filename == "sample-catalogue-result.csv"
        rows = list(csv.reader(io.StringIO(Path(csv_download.value.path()).read_text(encoding="utf-8-sig"))))
        assert rows[0][-1] == "Output Image Urls" and len(rows) == 7

        with page.expect_download() as zip_download:
            page.get_by_role("link", name="Download all images (ZIP)").click()
        assert zip_download.value.suggested_filename == "sample-catalogue-images.zip"
        with zipfile.ZipFile(zip_download.value.path()) as archive:
            names = archive.namelist()
            assert len(names) == 8 and "sample-catalogue/sample-catalogue-result.csv" in names, names
            for name in names:
                if not name.endswith(".csv"):
                    Image.open(io.BytesIO(archive.read(name))).verify()
    finally:
        page.context.close()
    # Streamed: sent in chunks as it is written, with no length known up front.
    head = embedded_stack.http.request("GET", f"{embedded_stack.base_url}/requests/{demo}/images.zip")
    assert head.status == 200 and head.headers["Content-Type"] == "application/zip"
    assert "Content-Length" not in head.headers and head.headers.get("Transfer-Encoding") == "chunked"


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_the_requests_list_in_colour_with_a_download(
    embedded_stack: Stack, demo: str, chromium: sync_api.Browser, width: str
) -> None:
    expect = sync_api.expect
    page = open_page(chromium, width)
    try:
        page.goto(f"{embedded_stack.base_url}/requests/")
        row = page.locator(f"#r-{demo}")
        expect(row).to_contain_text("Completed with errors")
        expect(row.locator(".count-done")).to_have_text("7 done")
        expect(row.locator(".count-failed")).to_have_text("2 failed")
        expect(row.locator("time")).to_have_text(re.compile(r"UTC$"))  # the zone named, here UTC
        done_colour = row.locator(".count-done").evaluate("e => getComputedStyle(e).color")
        failed_colour = row.locator(".count-failed").evaluate("e => getComputedStyle(e).color")
        assert done_colour != failed_colour
        with page.expect_download() as download:
            row.get_by_role("link", name="Result CSV").click()
        assert download.value.suggested_filename == "sample-catalogue-result.csv"
        if width == "phone":
            assert sticking_out(page) == []
        assert low_contrast(page) == []
        page.screenshot(path=str(SHOTS / f"13-requests-{width}.png"), full_page=True)
    finally:
        page.context.close()


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_an_unknown_request_gets_the_sites_404(
    embedded_stack: Stack, chromium: sync_api.Browser, width: str
) -> None:
    page = open_page(chromium, width)
    try:
        response = page.goto(f"{embedded_stack.base_url}/requests/00000000-0000-4000-8000-000000000000/")
        assert response is not None and response.status == 404
        sync_api.expect(page.get_by_role("heading", name="Not found")).to_be_visible()
        sync_api.expect(page.get_by_role("link", name="Your requests")).to_be_visible()
        page.screenshot(path=str(SHOTS / f"14-not-found-{width}.png"), full_page=True)
    finally:
        page.context.close()


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_option_errors_beside_their_field(
    embedded_stack: Stack, chromium: sync_api.Browser, width: str
) -> None:
    expect = sync_api.expect
    page = open_page(chromium, width)
    try:
        page.goto(embedded_stack.base_url + "/")
        body = b"S. No.,Product Name,Input Image Urls\n1,Chair,https://img.example.com/a.jpg\n"
        page.get_by_label("CSV file").set_input_files(
            {"name": "chairs.csv", "mimeType": "text/csv", "buffer": body}
        )
        page.get_by_text("Options").click()
        page.get_by_label("Quality").fill("0")
        with page.expect_response(lambda r: r.request.method == "POST") as answer:
            page.get_by_role("button", name="Upload and process").click()
        assert answer.value.status == 400
        quality = page.get_by_label("Quality")
        expect(quality).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#quality-error")).to_contain_text("a whole number from 1 to 100, or auto")
        expect(page.locator("table.problems")).to_have_count(0)
        # The same word for the option everywhere: the form's, the request page's.
        expect(page.get_by_label("Output format").locator("option:checked")).to_have_text("Same as the input")
        if width == "phone":
            assert sticking_out(page) == []
        page.screenshot(path=str(SHOTS / f"15-option-error-{width}.png"), full_page=True)
    finally:
        page.context.close()


def test_the_api_explorer_uploads_a_file_and_links_back(
    embedded_stack: Stack, chromium: sync_api.Browser
) -> None:
    expect = sync_api.expect
    page = open_page(chromium, "desktop")
    try:
        page.goto(embedded_stack.base_url + "/api/docs/")
        paths = page.locator(".opblock-summary-path")
        expect(paths.first).to_have_text("/api/upload/")  # upload first: it is what one does first
        expect(page.get_by_role("link", name="← Back to the app")).to_have_attribute("href", "/")
        page.locator(".opblock-post .opblock-summary").first.click()
        page.get_by_role("button", name="Try it out").click()
        upload = page.locator(".opblock-post").first
        expect(upload.locator('input[type="file"]')).to_have_count(1)
        values = upload.locator("input[type=text], textarea").evaluate_all("els => els.map((e) => e.value)")
        assert "string" not in values, values
        upload.locator('input[type="file"]').set_input_files(
            {
                "name": "one.csv",
                "mimeType": "text/csv",
                "buffer": b"S. No.,Product Name,Input Image Urls\n"
                + f"1,Rug,{embedded_stack.base_url}/samples/rug.webp\n".encode(),
            }
        )
        with page.expect_response("**/api/upload/") as answer:
            upload.get_by_role("button", name="Execute").click()
        assert answer.value.status == 202, answer.value.text()
        page.screenshot(path=str(SHOTS / "16-api-docs.png"), full_page=False)
    finally:
        page.context.close()


def test_the_icon_is_served(embedded_stack: Stack) -> None:
    moved = embedded_stack.get(f"{embedded_stack.base_url}/favicon.ico")
    assert moved.status == 301 and moved.headers["Location"] == "/static/catalog/icon.svg"
    icon = embedded_stack.get(embedded_stack.base_url + moved.headers["Location"])
    assert icon.status == 200 and icon.headers["Content-Type"].startswith("image/svg+xml")
    lines = embedded_stack.log_path("web").read_text(errors="replace").splitlines()
    assert [line for line in lines if "favicon" in line and (" 404 " in line or "WARNING" in line)] == []


def test_make_runs_banner_and_one_log_line_per_call(tmp_path: Path) -> None:
    """`manage.py runstack` (what `make run` starts): says what it uses, logs each call once."""
    stack = Stack(tmp_path)
    stack.migrate()
    once = str(uuid.uuid4())
    log = (tmp_path / "runstack.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runstack", "--concurrency=1", "--web-workers=1"],
        cwd=REPO,
        env=stack.env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        stack.wait_healthy()
        assert stack.get(f"{stack.base_url}/requests/{once}/").status == 404  # an unknown id: 404 page
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    text = (tmp_path / "runstack.log").read_text(errors="replace")
    assert f"on http://127.0.0.1:{stack.port}/" in text
    assert "database: SQLite, file" in text and "broker:   embedded, files under" in text
    assert "storage:  local folder" in text
    assert "config.broker:Transport" not in text and "-------------- celery@" not in text
    calls = [line for line in text.splitlines() if once in line]
    assert len(calls) == 1, calls  # ours, not also gunicorn's access line or Django's "Not Found"
    assert calls[0].endswith(" 404 in " + calls[0].rsplit(" in ", 1)[1])


def test_the_admin_is_read_only_and_fits_1280(
    embedded_stack: Stack, demo: str, chromium: sync_api.Browser
) -> None:
    """As the README says to make one: `APP_ENV=development .venv/bin/python manage.py createsuperuser`."""
    made = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "createsuperuser",
            "--noinput",
            "--username=ops",
            "--email=ops@example.com",
        ],
        cwd=REPO,
        env={**embedded_stack.env, "DJANGO_SUPERUSER_PASSWORD": "a long local password"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    expect = sync_api.expect
    page = open_page(chromium, "desktop")
    try:
        page.goto(embedded_stack.base_url + "/admin/login/")
        page.get_by_label("Username").fill("ops")
        page.get_by_label("Password").fill("a long local password")
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/admin/")
        expect(page.get_by_role("link", name="Webhook deliveries")).to_be_visible()
        expect(page.locator(".app-catalog a.addlink")).to_have_count(0)  # (users and tokens keep theirs)
        page.goto(f"{embedded_stack.base_url}/admin/catalog/processingrequest/?q={demo}")
        expect(page.locator("#result_list tbody tr")).to_have_count(1)
        assert page.evaluate(FITS), "the list fits at 1280 px, no sideways scrolling"
        page.screenshot(path=str(SHOTS / "17-admin-requests.png"), full_page=True)
        page.goto(f"{embedded_stack.base_url}/admin/catalog/productimage/?status__exact=failed")
        expect(page.locator("#result_list tbody tr")).to_have_count(2)
        assert page.evaluate(FITS), "the list fits at 1280 px, no sideways scrolling"
        page.locator("#result_list tbody tr a").first.click()
        expect(page.locator("input[type=text], textarea, select")).to_have_count(0)  # nothing to edit
        expect(page.get_by_role("button", name="Save")).to_have_count(0)
        page.screenshot(path=str(SHOTS / "18-admin-image.png"), full_page=True)
    finally:
        page.context.close()


def test_a_before_picture_that_does_not_load_shows_a_box_not_a_broken_icon(
    embedded_stack: Stack, demo: str, chromium: sync_api.Browser
) -> None:
    """As a before picture removed from storage after its page was made (a purge)."""
    page = open_page(chromium, "desktop")
    try:
        page.route("**/media/previews/**", lambda route: route.fulfill(status=404, body="gone"))
        page.goto(f"{embedded_stack.base_url}/requests/{demo}/compare/1/1/")
        box = page.locator(".compare .no-preview")
        sync_api.expect(box).to_have_text("No preview")
        assert page.locator("img[data-before]").count() == 0
        page.wait_for_function(ALL_IMAGES_LOADED)  # the output beside it shows
    finally:
        page.context.close()


def test_a_request_where_every_image_failed_has_a_red_bar(
    embedded_stack: Stack, chromium: sync_api.Browser
) -> None:
    missing = f"{embedded_stack.base_url}/samples/{samples.MISSING}"
    body = f"S. No.,Product Name,Input Image Urls\n1,Gone,{missing}\n".encode()
    code, accepted = embedded_stack.upload(body, filename="gone.csv")
    assert code == 202
    assert embedded_stack.wait_complete(accepted["request_id"])["status"] == "failed"
    page = open_page(chromium, "desktop")
    try:
        page.goto(f"{embedded_stack.base_url}/requests/{accepted['request_id']}/")
        bar = page.locator("[data-request] progress")
        sync_api.expect(bar).to_have_class("bar-failed")
        rendered = Image.open(io.BytesIO(bar.screenshot())).convert("RGB")
        fill = rendered.getpixel((rendered.width // 2, rendered.height // 2))
        assert fill == (164, 14, 38), fill  # as drawn: --bad, not the accent blue of work under way
        sync_api.expect(page.locator(".state")).to_have_text("Failed")
    finally:
        page.context.close()
