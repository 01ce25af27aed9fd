"""Headless Chromium for the browser tests: Playwright driving the system's Chromium.

A pytest plugin module (``pytest_plugins = ["browser_fixture"]``, or import its
fixtures). Every page a test opens is watched: a request to any host but
127.0.0.1 is refused before it leaves and fails the test, and so does any
console error or uncaught exception. ``.ci/run`` installs Chromium from the
system's packages (``playwright install`` downloads nothing here).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = os.environ.get("GRIDGEO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
LOCAL_HOSTS = {"127.0.0.1"}
WALL = {"width": 1920, "height": 1080}


class Watch:
    """What a page asked for and complained about."""

    def __init__(self):
        self.requests: list[str] = []
        self.foreign: list[str] = []
        self.errors: list[str] = []

    def attach(self, page) -> None:
        page.on("request", self._request)
        page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text} ({m.location})"))
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        page.route("**/*", self._route)

    def _request(self, request) -> None:
        self.requests.append(request.url)
        if not _local(request.url):
            self.foreign.append(request.url)

    @staticmethod
    def _route(route) -> None:
        if _local(route.request.url):
            route.continue_()
        else:
            route.abort("blockedbyclient")  # nothing leaves the machine, and the test fails below

    def paths(self, prefix: str = "") -> list[str]:
        """The paths requested so far that start with ``prefix``."""
        return [urlsplit(u).path for u in self.requests if urlsplit(u).path.startswith(prefix)]

    def check(self) -> None:
        assert not self.foreign, f"the page asked for hosts other than 127.0.0.1: {self.foreign[:10]}"
        assert not self.errors, "console errors:\n" + "\n".join(self.errors[:20])


def _local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("data", "blob", "about") or (parts.hostname or "") in LOCAL_HOSTS


@pytest.fixture(scope="session")
def chromium():
    """The system's Chromium, headless, shared by the session's tests."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"Chromium not found at {CHROMIUM}: install it (apt-get install chromium) "
                           "or point GRIDGEO_CHROMIUM at it")
    with sync_playwright() as p:
        # launch() gives Chromium a fresh temporary user data directory of its own
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def open_page(chromium):
    """``open_page(url, viewport=WALL, before=None) -> (page, watch)``: a page in a fresh context,
    ready when the map says so, checked at the end; ``before(page)`` runs before it loads."""
    opened = []

    def _open(url: str, *, viewport: dict = WALL, before=None,
              ready: str | None = "document.body.dataset.ready === '1'"):
        context = chromium.new_context(viewport=viewport, locale="zh-CN", service_workers="block")
        page = context.new_page()
        watch = Watch()
        watch.attach(page)
        opened.append((context, watch))
        if before:
            before(page)
        page.goto(url)
        if ready:
            page.wait_for_function(ready, timeout=60_000)
        return page, watch

    yield _open
    for context, watch in opened:
        context.close()
        watch.check()


FITS_JS = """
    // fits(el, text): whether a text, in the element's font, fits the room inside the element
    const measure = document.createElement('canvas').getContext('2d');
    const fits = (el, text) => {
        const cs = getComputedStyle(el);
        measure.font = `${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
        const inner = el.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
        return measure.measureText(text).width <= inner + 0.5;
    };
"""
"""A piece of JavaScript for a page's tests of words cut short (menus, placeholders, buttons)."""


def screenshot(page, name: str, *, selector: str | None = None) -> bytes:
    """Save a screenshot into test-artifacts/ (kept as a test artefact) and return its PNG bytes."""
    ARTIFACTS.mkdir(exist_ok=True)
    target = page.locator(selector) if selector else page
    return target.screenshot(path=str(ARTIFACTS / name))


def export_downloads(page, kinds=("png", "pdf", "xlsx")) -> dict[str, tuple[str, bytes]]:
    """Click the one map's export links (``#export-png`` ...) as a user does, the menu opened again when a
    download closed it: ``{kind: (suggested file name, bytes)}``."""
    downloads = {}
    for which in kinds:
        with page.expect_download(timeout=120_000) as info:
            if not page.locator(f"#export-{which}").is_visible():
                page.click("#export summary")
            page.click(f"#export-{which}")
        downloads[which] = (info.value.suggested_filename, open(info.value.path(), "rb").read())
    return downloads
