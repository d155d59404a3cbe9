"""The web UI in a real headless Chromium, against the real service: upload, watch, download.

Screenshots are kept in test-artifacts/screenshots/ for people to look at (CI keeps the folder).
"""

from __future__ import annotations

import csv
import io
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright import sync_api

from tests.e2e.test_pipeline import photo
from tests.support.imageserver import ImageServer
from tests.support.stack import Stack

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "test-artifacts" / "screenshots"
PHONE: sync_api.ViewportSize = {"width": 390, "height": 844}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make browser)"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: sync_api.Browser) -> Iterator[sync_api.Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(30_000)
    opened = context.new_page()
    yield opened
    context.close()


def shot(page: sync_api.Page, name: str) -> None:
    page.screenshot(path=str(SHOTS / name), full_page=True)


LOW_CONTRAST_JS = """() => {
  const rgb = (c) => c.match(/[\\d.]+/g).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length < 4 || c[3] > 0) return c;
    }
    return [255, 255, 255];
  };
  const found = [];
  for (const el of document.querySelectorAll("body *")) {
    const text = [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.data.trim()).join("");
    if (!text || !el.checkVisibility()) continue;
    const a = lum(rgb(getComputedStyle(el).color)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) found.push(`${el.tagName} "${text.slice(0, 30)}" ${ratio.toFixed(2)}`);
  }
  return found;
}"""


def low_contrast(page: sync_api.Page) -> list[str]:
    """Text under WCAG AA's 4.5:1 against its background."""
    found: list[str] = page.evaluate(LOW_CONTRAST_JS)
    return found


def sticking_out(page: sync_api.Page, width: int = PHONE["width"]) -> list[str]:
    """Elements reaching past the right edge of a phone's screen (which would scroll sideways)."""
    found: list[str] = page.evaluate(
        """(width) => [...document.querySelectorAll("body *")]
             .filter((el) => el.getBoundingClientRect().right > width + 0.5)
             .map((el) => `${el.tagName}.${el.className} ${Math.round(el.getBoundingClientRect().right)}`)""",
        width,
    )
    return found


def catalogue_csv(server: ImageServer) -> tuple[bytes, int]:
    """Twelve photos served slowly (1 s each) so the bar is seen moving, and one image not there."""
    prefix = uuid.uuid4().hex
    urls = [
        server.add(f"{prefix}/{n}.jpg", photo((480 + n * 8, 360), "JPEG", quality=95), delay=1.0)
        for n in range(12)
    ]
    missing = server.url(f"{prefix}/missing.jpg")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["S. No.", "Product Name", "Input Image Urls"])
    for n in range(6):
        writer.writerow([n + 1, f"Armchair {n + 1}", f"{urls[2 * n]},{urls[2 * n + 1]}"])
    writer.writerow([7, "Footstool", missing])
    return out.getvalue().encode(), 7


def choose_csv(page: sync_api.Page, name: str, body: bytes) -> None:
    page.get_by_label("CSV file").set_input_files({"name": name, "mimeType": "text/csv", "buffer": body})


def test_a_bad_csv_is_refused_on_the_page_with_lines_and_columns(
    embedded_stack: Stack, page: sync_api.Page
) -> None:
    page.goto(embedded_stack.base_url + "/")
    expect = sync_api.expect
    expect(page.get_by_role("heading", name="Upload a catalogue")).to_be_visible()
    shot(page, "01-upload.png")

    bad = b"S. No.,Product Name,Input Image Urls\n1,Chair,https://img.example.com/a.jpg\nx,,ftp://nope\n"
    choose_csv(page, "broken.csv", bad)
    page.get_by_role("button", name="Upload and process").click()

    problems = page.get_by_role("alert")
    expect(problems).to_contain_text("broken.csv was not accepted")
    rows = problems.locator("tbody tr")
    expect(rows.filter(has_text="S. No.")).to_contain_text("3")
    expect(rows.filter(has_text="Product Name")).to_contain_text("3")
    expect(rows.filter(has_text="Input Image Urls")).to_contain_text("3")
    assert page.evaluate("document.activeElement.id") == "errors", "focus moves to the problems"
    assert low_contrast(page) == []
    shot(page, "02-refused.png")


def test_upload_watch_and_download(
    embedded_stack: Stack, image_server: ImageServer, page: sync_api.Page
) -> None:
    expect = sync_api.expect
    body, products = catalogue_csv(image_server)
    page.goto(embedded_stack.base_url + "/")
    choose_csv(page, "armchairs.csv", body)
    page.get_by_text("Options").click()
    page.get_by_label("Quality").fill("60")
    page.get_by_role("button", name="Upload and process").click()
    page.wait_for_url("**/requests/*/")
    request_id = page.url.rstrip("/").rsplit("/", 1)[1]
    expect(page.get_by_role("heading", name="armchairs.csv")).to_be_visible()

    bar = page.locator("[data-request] progress")
    page.evaluate("window.__same_document = true")
    # The bar moves by itself (the page polls); once complete the page shows the CSV link.
    download_link = page.get_by_role("link", name="Download the result CSV")
    seen: list[int] = []
    for _ in range(600):
        if download_link.is_visible():
            break
        value = int(bar.get_attribute("value") or 0)
        if not seen or (0 < value < 100 and not any(0 < v < 100 for v in seen)):
            shot(page, "03-progress.png")  # under way, for people to look at
        seen.append(value)
        page.wait_for_timeout(200)
    expect(download_link).to_be_visible(timeout=120_000)
    expect(bar).to_have_attribute("value", "100")
    expect(page.locator("[data-percent]")).to_have_text("100%")
    expect(page.locator('[data-count="done"]')).to_have_text("12")
    expect(page.locator('[data-count="failed"]')).to_have_text("1")
    assert seen == sorted(seen), f"the bar never goes back: {seen}"
    assert page.evaluate("window.__same_document === true"), "rows and link came without a reload"

    # The failing image names its reason, in the list and on its product's row.
    failures = page.get_by_role("region", name="Failed images (1)")
    expect(failures).to_contain_text("missing.jpg")
    expect(failures).to_contain_text("404")
    expect(page.locator("li.image-failed .reason")).to_contain_text("404")
    # Every "after" thumbnail really loaded from our storage.
    after = page.locator("table.products img[data-after]")
    expect(after).to_have_count(12)
    for n in range(12):
        thumbnail = after.nth(n)
        thumbnail.scroll_into_view_if_needed()
        # Scrolling only starts the load (the thumbnails are lazy): wait until the browser is done with
        # it, loaded or broken, then ask which.
        page.wait_for_function("img => img.complete", arg=thumbnail.element_handle(), timeout=60_000)
        assert thumbnail.evaluate("img => img.naturalWidth > 0"), f"thumbnail {n} is broken"
    shot(page, "04-done.png")
    assert low_contrast(page) == []

    with page.expect_download() as downloading:
        download_link.click()
    saved = Path(downloading.value.path())
    rows = list(csv.reader(io.StringIO(saved.read_text(encoding="utf-8-sig"))))
    assert rows[0][:3] == ["S. No.", "Product Name", "Input Image Urls"]
    assert len(rows) == products + 1
    first_outputs = [u.strip() for u in rows[1][3].split(",")]
    assert len(first_outputs) == 2 and all(u.startswith(embedded_stack.base_url) for u in first_outputs)

    page.get_by_role("link", name="Requests").click()
    row = page.locator(f"#r-{request_id}")
    expect(row).to_contain_text("Completed with errors")
    expect(row.locator("progress")).to_have_attribute("value", "100")
    shot(page, "05-requests.png")


def test_the_list_updates_live(embedded_stack: Stack, image_server: ImageServer, page: sync_api.Page) -> None:
    expect = sync_api.expect
    body, _ = catalogue_csv(image_server)
    code, accepted = embedded_stack.upload(body, filename="live.csv")
    assert code == 202
    page.goto(embedded_stack.base_url + "/requests/")
    row = page.locator(f"#r-{accepted['request_id']}")
    expect(row).to_contain_text("live.csv")
    # No reload: the row's bar and state change in place.
    page.evaluate("window.__same_document = true")
    expect(row.locator("progress")).to_have_attribute("value", "100", timeout=120_000)
    expect(row).to_contain_text("Completed with errors")
    expect(row).to_contain_text("12 done, 1 failed of 13")
    assert page.evaluate("window.__same_document === true"), "updated without reloading"


def test_keyboard_and_labels(embedded_stack: Stack, page: sync_api.Page) -> None:
    page.goto(embedded_stack.base_url + "/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    reached = set()
    for _ in range(15):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()"))
    assert {"file", "Upload and process"} <= reached, reached
    unlabelled = page.evaluate(
        """[...document.querySelectorAll('input:not([type=hidden]), select')]
             .filter(el => !el.labels || el.labels.length === 0).map(el => el.name)"""
    )
    assert unlabelled == []
    assert page.evaluate("document.documentElement.lang") == "en"
    assert low_contrast(page) == []
    page.evaluate(
        "document.querySelector('main').insertAdjacentHTML('beforeend', '<p style=\"color:#aaa\">pale</p>')"
    )
    assert [found.split(" ")[:2] for found in low_contrast(page)] == [["P", '"pale"']], "the check checks"


def test_a_phone_sees_the_request_without_sideways_scrolling(
    embedded_stack: Stack, image_server: ImageServer, browser: sync_api.Browser
) -> None:
    body, _ = catalogue_csv(image_server)
    code, accepted = embedded_stack.upload(body, filename="phone.csv")
    assert code == 202
    embedded_stack.wait_complete(accepted["request_id"])
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    phone = context.new_page()
    try:
        phone.goto(f"{embedded_stack.base_url}/requests/{accepted['request_id']}/")
        sync_api.expect(phone.get_by_role("link", name="Download the result CSV")).to_be_visible()
        assert sticking_out(phone) == []
        shot(phone, "06-phone-request.png")
        phone.goto(embedded_stack.base_url + "/")
        assert sticking_out(phone) == []
        shot(phone, "07-phone-upload.png")
    finally:
        context.close()
