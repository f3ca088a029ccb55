"""The HTML report in real headless Chromium (Debian's /usr/bin/chromium driven by Playwright).

`make browser-deps` installs chromium when it is missing. In CI (env CI set) a missing chromium fails the test;
elsewhere it skips with the reason. Every request the page makes is recorded: a self-contained report makes
none but its own file:// load.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_report import PLOTS, TARGET, profiled  # noqa: F401  (the session fixture)
from toolkit.report import html

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # every test reads the session's real profile run

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# per figure: how many data marks it has, how many of them have a box on screen, and decoded image widths
PLOT_CHECK = """
figure => {
  const marks = [...figure.querySelectorAll('svg .data')];
  const drawn = marks.filter(m => { const b = m.getBoundingClientRect(); return b.width > 0 && b.height > 0; });
  return {name: figure.dataset.plot, marks: marks.length, drawn: drawn.length,
          images: marks.filter(m => m.tagName === 'image').map(m => m.getAttribute('href'))};
}
"""
IMAGE_WIDTH = """
async href => { const image = new Image(); image.src = href; await image.decode(); return image.naturalWidth; }
"""


def require_chromium() -> None:
    """Fail in CI, skip elsewhere, when Debian's chromium is not installed."""
    if CHROMIUM.is_file():
        return
    message = f"{CHROMIUM} is missing; run `make browser-deps` (apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def loaded(profiled: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:  # noqa: F811
    """The report opened in Chromium: page, console errors, outside requests, screenshot path."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    shot = tmp_path_factory.mktemp("browser") / "report.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 1400})
        errors: list[str] = []
        outside: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
        page.goto((profiled["out"] / "report.html").resolve().as_uri())
        page.wait_for_load_state("load")
        page.screenshot(path=str(shot))
        yield {"page": page, "errors": errors, "outside": outside, "shot": shot, **profiled}
        browser.close()


def test_console_has_no_errors_and_nothing_is_fetched(loaded: dict[str, Any]) -> None:
    assert loaded["errors"] == []
    assert loaded["outside"] == []


def test_every_plot_rendered_with_data(loaded: dict[str, Any]) -> None:
    page = loaded["page"]
    figures = [page.evaluate(PLOT_CHECK, handle) for handle in page.query_selector_all("figure[data-plot]")]
    assert sorted(f["name"] for f in figures) == sorted(PLOTS)
    for found in figures:
        assert found["marks"] > 0 and found["drawn"] == found["marks"], found["name"]
    images = [href for found in figures for href in found["images"]]
    assert len(images) == 3  # original, chosen, difference
    assert all(page.evaluate(IMAGE_WIDTH, href) == 97 for href in images)  # one pixel per frame


def test_page_shows_the_choice_and_every_manifest_number(loaded: dict[str, Any]) -> None:
    manifest = json.loads((loaded["artifacts"] / TARGET / "manifest.json").read_text())
    page = loaded["page"]
    assert page.inner_text("[data-role=chosen-variant]") == manifest["model"]["variant"]
    text = page.inner_text("body")
    assert manifest["choice"]["reasons"][0] in text
    missing = [path for path, value, _ in html.flatten(manifest) if str(value) not in text]
    assert missing == []


def test_screenshot_is_a_real_image(loaded: dict[str, Any]) -> None:
    data = loaded["shot"].read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(data[16:20], "big") == 1100
