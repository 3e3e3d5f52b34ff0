"""Browser tests of the web companion: headless Chromium from the distribution's packages (`chromium`,
`chromium-driver`), driven by Selenium, with screenshots kept as test artifacts.

    def test_gallery(browser):                           # the `browser` fixture (tests/web/conftest.py)
        browser.sign_in_by_link(OWNER)                   # the real /signin/link/<token> step
        browser.open("/")                                # live_web's address + path
        browser.wait_for("h1")                           # an element, once it is there and shown
        browser.screenshot("gallery")                    # <screenshots>/<test>-01-gallery.png (path printed)

`browser.driver` is the Selenium WebDriver, `browser.live` the `live_web` server. For a server of its own
(the real `kaika web` process), `browser_at(url)` gives a Browser over the same Chromium.

The browser and its driver are the distribution's (/usr/bin/chromium, /usr/bin/chromedriver, installed by
.ci/run when missing): both paths are given to Selenium, so Selenium Manager never runs and nothing is
downloaded. Screenshots go to <system temp>/kaika-screenshots/<time>-<pid>/ (the last KEEP_RUNS runs' are kept,
whatever else runs pytest meanwhile); the folder is printed at the end of the run.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.web.helpers import LiveServer
from web.members import Member

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WINDOW = (1280, 900)
WAIT_SECONDS = 60.0  # a tiny model's job on a busy 2-core machine, or a page over a cold server
SCREENSHOTS_ROOT = Path(tempfile.gettempdir()) / "kaika-screenshots"
KEEP_RUNS = 10
INSTALL_HINT = "apt-get install -y chromium chromium-driver (.ci/run does this when they are missing)"


def new_driver() -> WebDriver:
    """Headless Chromium at CHROMIUM through CHROMEDRIVER (no Selenium Manager: both paths are given)."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--no-sandbox",  # tests run as root in CI containers, where Chromium's sandbox cannot start
        "--disable-dev-shm-usage",  # containers' /dev/shm is small
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--force-device-scale-factor=1",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    return webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))


def new_screenshots_folder() -> Path:
    """A folder of this run's own under SCREENSHOTS_ROOT; older runs' beyond the last KEEP_RUNS are removed."""
    SCREENSHOTS_ROOT.mkdir(parents=True, exist_ok=True)
    runs = sorted(SCREENSHOTS_ROOT.iterdir(), key=lambda folder: folder.stat().st_mtime)
    for old in runs[: max(len(runs) - KEEP_RUNS + 1, 0)]:
        shutil.rmtree(old, ignore_errors=True)
    folder = SCREENSHOTS_ROOT / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    folder.mkdir()
    return folder


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:80] or "shot"


class Browser:
    """A signed-out Chromium tab on the server at `url`; `screenshot(name)` saves a numbered PNG of the page."""

    def __init__(
        self, driver: WebDriver, url: str, screenshots: Path, test_name: str, live: LiveServer | None = None
    ) -> None:
        self.driver = driver
        self.url = url.rstrip("/")
        self.live = live
        self._screenshots = screenshots
        self._test = _slug(test_name)
        self._taken = 0
        self.saved: list[Path] = []

    def open(self, path: str = "/") -> None:
        self.driver.get(self.url + path)

    @property
    def path(self) -> str:
        """The path (and query) of the page the tab shows now."""
        parts = urlsplit(self.driver.current_url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def text(self) -> str:
        """The page's visible text."""
        return self.driver.find_element(By.TAG_NAME, "body").text

    def wait_for(self, css: str, seconds: float = WAIT_SECONDS) -> WebElement:
        """The first element matching `css`, once it is shown (fails with the page's text after `seconds`)."""
        try:
            return WebDriverWait(self.driver, seconds).until(
                expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, css))
            )
        except WebDriverException as error:
            raise AssertionError(
                f"no visible {css!r} on {self.path} after {seconds} s:\n{self.text()}"
            ) from error

    def wait_until(self, check: Callable[[WebDriver], Any], what: str, seconds: float = WAIT_SECONDS) -> Any:
        try:
            return WebDriverWait(self.driver, seconds).until(check)
        except WebDriverException as error:
            raise AssertionError(f"{what}: not within {seconds} s on {self.path}:\n{self.text()}") from error

    def screenshot(self, name: str, *, full_page: bool = False) -> Path:
        """A PNG of the tab as it is now (`full_page`: the whole page, as tall as it is), saved as
        <screenshots>/<test>-<NN>-<name>.png (path printed)."""
        self._taken += 1
        path = self._screenshots / f"{self._test}-{self._taken:02d}-{_slug(name)}.png"
        size = self.driver.get_window_size()
        if full_page:  # a window as tall as the page (what the window adds around the page kept)
            page, inner = self.driver.execute_script(
                "return [document.documentElement.scrollHeight, window.innerHeight];"
            )
            self.driver.set_window_size(size["width"], size["height"] - int(inner) + int(page))
        try:
            assert self.driver.save_screenshot(str(path)), f"Chromium could not save {path}"
        finally:
            if full_page:
                self.driver.set_window_size(size["width"], size["height"])
        self.saved.append(path)
        print(f"screenshot: {path}")
        return path

    def image_loaded(self, css: str) -> bool:
        """Whether the <img> matching `css` has loaded a picture (not a broken image)."""
        element = self.wait_for(css)
        return bool(
            self.driver.execute_script(
                "return arguments[0].complete && arguments[0].naturalWidth > 0;", element
            )
        )

    # --- signing in ---------------------------------------------------------------------------------------

    def sign_in_by_link(self, member: Member, next_path: str = "/") -> None:
        """Sign in as `member` the way a member does: open the one-time link the bot's /web sends (its page's
        script presses Continue), and wait until the browser is signed in and on `next_path`."""
        from service.signin import new_signin_link

        live = self._live()
        link = live.call(
            lambda: new_signin_link(live.services.storage, live.settings, member.id, member.name)
        )
        query = "" if next_path == "/" else f"?{urlencode({'next': next_path})}"
        self.driver.get(self.url + urlsplit(link.url).path + query)
        self.wait_until(
            lambda driver: not urlsplit(driver.current_url).path.startswith("/signin"),
            f"signing in by link as {member.name}",
        )

    def sign_in_with_cookie(self, member: Member) -> None:
        """Sign in as `member` by setting the session cookie signing in would set (quicker than the link)."""
        live = self._live()
        self.open("/signin")
        self.driver.add_cookie(live.session_cookie(member))

    def sign_out(self) -> None:
        self.driver.delete_all_cookies()

    def _live(self) -> LiveServer:
        assert self.live is not None and self.live.services is not None, "this browser has no live_web server"
        return self.live


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    return f"{' and '.join(missing)} missing: {INSTALL_HINT}" if missing else None


def chrome_driver(request: pytest.FixtureRequest) -> Iterator[WebDriver]:
    """One Chromium for the session (skipped where it is not installed, failed under --require-services)."""
    problem = chromium_missing()
    if problem is not None:
        if request.config.getoption("--require-services"):
            pytest.fail(f"browser tests: {problem}")
        pytest.skip(f"browser tests: {problem}")
    driver = new_driver()
    try:
        yield driver
    finally:
        driver.quit()
