"""The admin dashboard and the `kaika web --local` playground in a real browser (headless Chromium), with a
screenshot of each step (tests/web/browser.py says where they go)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from service.administration import OUTSIDE_SERVERS
from service.admission import Place
from service.wiring import Services
from tests.fixtures.metrics import free_port
from tests.fixtures.reporters import outcome_of
from tests.web.browser import Browser
from tests.web.helpers import ADMIN, OTHER, OWNER
from web.members import NOT_ADMIN, Member

pytestmark = pytest.mark.slow

REPOSITORY = Path(__file__).resolve().parents[2]
START_SECONDS = 180.0  # the demo model loads before the companion listens, on a busy 2-core machine
LOCAL_OWNER = "Tester"
DEMO_PROMPTS = (
    "a red circle on a blue background --seed 3",
    "a yellow star on a purple background --seed 11",
)


def imagined(services: Services, member: Member, prompt: str) -> Callable[[], object]:
    """A coroutine function running `member`'s /imagine of `prompt` to its end (for `live_web.call`)."""

    async def run() -> None:
        jobs = services.jobs
        await outcome_of(
            await jobs.imagine(member.requester, Place(None, None), await jobs.parse_for(member.id, prompt))
        )

    return run


def test_an_admin_signed_in_by_link_sees_the_chart_and_sets_the_quota(browser: Browser) -> None:
    live = browser.live
    assert live is not None and live.services is not None
    for member, prompt in ((OWNER, "a red circle --seed 1"), (OTHER, "a blue square --seed 2")):
        live.call(imagined(live.services, member, prompt))

    browser.sign_in_by_link(ADMIN, "/admin")
    assert browser.path == "/admin"
    assert browser.wait_for("#jobs").text == "2"
    browser.wait_until(lambda _: browser.image_loaded("#jobs-per-day"), "the jobs-per-day chart loads")
    chart = browser.wait_for("#jobs-per-day")
    assert browser.driver.execute_script("return arguments[0].naturalWidth;", chart) == 800
    members = browser.wait_for("#by-member").text
    assert "Ada" in members and "Bob" in members
    browser.screenshot("dashboard", full_page=True)

    quota = browser.wait_for("#quota-form input[name=jobs]")
    quota.clear()
    quota.send_keys("many")
    browser.driver.find_element(By.CSS_SELECTOR, "#quota-form button[type=submit]").click()
    refusal = browser.wait_for(".refusal")
    assert refusal.text == "The daily quota must be a whole number of jobs, 0 or more (got 'many')."
    browser.screenshot("quota-refused")
    assert live.call(lambda: live.services.storage.guilds.settings(OUTSIDE_SERVERS)).daily_quota is None

    quota = browser.wait_for("#quota-form input[name=jobs]")
    quota.clear()
    quota.send_keys("3")
    browser.driver.find_element(By.CSS_SELECTOR, "#quota-form button[type=submit]").click()
    notice = browser.wait_for("#settings .notice")
    assert notice.text == "Daily quota: 3 jobs per member per 24 hours."
    assert browser.driver.execute_script(  # the page opens where the change was made, the notice in sight
        "const box = arguments[0].getBoundingClientRect(); return box.top >= 0 && box.bottom <= innerHeight;",
        notice,
    )
    browser.screenshot("quota-saved")
    assert live.call(lambda: live.services.storage.guilds.settings(OUTSIDE_SERVERS)).daily_quota == 3


def test_a_member_who_is_not_an_admin_is_refused_the_dashboard(browser: Browser) -> None:
    browser.sign_in_by_link(OWNER)
    assert browser.wait_for(".member-name").text == OWNER.name
    assert not browser.driver.find_elements(By.CSS_SELECTOR, "header nav a[href='/admin']")
    browser.open("/admin")
    assert browser.wait_for("section.error h1").text == "Not allowed"
    assert browser.wait_for("section.error .message").text == NOT_ADMIN
    assert not browser.driver.find_elements(By.ID, "jobs-per-day")
    browser.screenshot("refused")


class WebProcess:
    """`kaika web --local` in a process of its own on a fresh DATA_DIR with the demo model (MODEL empty)."""

    def __init__(self, folder: Path) -> None:
        assert not (folder / "data").exists()  # a fresh DATA_DIR: nothing made before the process
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / "web.log"
        environment = {
            **os.environ,
            "PYTHONPATH": str(REPOSITORY),
            "DATA_DIR": str(folder / "data"),
            "MODEL": "",
            "DEVICE": "cpu",
            "DTYPE": "float32",
            "OMP_NUM_THREADS": "2",
        }
        for name in ("DATABASE_URL", "EXECUTOR", "MODELS", "COOKIE_SECRET", "WEB_BASE_URL"):
            environment.pop(name, None)
        with self.log_path.open("ab") as log:
            # cwd outside the repository, so a developer's .env cannot change what runs.
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "cli.main",
                    "web",
                    "--local",
                    "--port",
                    str(self.port),
                    "--owner",
                    LOCAL_OWNER,
                ],
                cwd=folder,
                env=environment,
                stdout=log,
                stderr=log,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_listening(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while "Kaika's web companion is at" not in self.log():
            assert self.process.poll() is None, f"kaika web exited:\n{self.log()[-3000:]}"
            assert time.monotonic() < deadline, (
                f"kaika web did not listen within {START_SECONDS} s:\n{self.log()}"
            )
            time.sleep(0.2)

    def stop(self) -> int:
        self.process.terminate()
        return self.process.wait(30)


@pytest.fixture
def playground(tmp_path: Path) -> Iterator[WebProcess]:
    web = WebProcess(tmp_path)
    try:
        web.wait_listening()
        yield web
    finally:
        if web.process.poll() is None:
            assert web.stop() == 0, web.log()[-3000:]


def test_the_local_playground_from_a_fresh_data_dir_signs_the_visitor_in_with_the_demo_model(
    playground: WebProcess, browser_at: Callable[..., Browser]
) -> None:
    browser = browser_at(playground.url)
    browser.open("/")
    assert browser.path == "/"  # no sign-in page: the visitor is the local user
    assert browser.wait_for(".member-name").text == LOCAL_OWNER
    assert browser.wait_for("header .badge").text == "local"
    assert "You have no jobs yet." in browser.text()
    browser.screenshot("empty-gallery")

    for prompt in DEMO_PROMPTS:
        browser.open("/imagine")
        browser.wait_for("textarea[name=prompt]").send_keys(prompt)
        browser.driver.find_element(By.CSS_SELECTOR, "form.imagine-form button[type=submit]").click()
        browser.wait_until(lambda _: browser.path.startswith("/imagine/"), "the job's page opens")
        browser.wait_for("section.live-job[data-status=done] img.grid", seconds=180)

    browser.open("/")
    cards = browser.driver.find_elements(By.CSS_SELECTOR, "article.job-card")
    assert len(cards) == 2
    assert "a yellow star on a purple background" in cards[0].text  # newest first
    browser.wait_until(
        lambda driver: all(
            driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0;", image)
            for image in driver.find_elements(By.CSS_SELECTOR, "article.job-card img")
        ),
        "the gallery's images load",
    )
    browser.screenshot("gallery")

    browser.open("/admin?window=7d")  # the local user is an admin
    browser.wait_until(lambda _: browser.image_loaded("#jobs-per-day"), "the jobs-per-day chart loads")
    assert browser.wait_for("#jobs").text == "2"
    assert "local kaika-demo" in browser.wait_for("#workers").text
    assert "Outside servers" in browser.wait_for("#settings").text  # the local user administers every server
    browser.wait_for("#quota-form")
    # The README's docs/web-gallery.png and docs/web-dashboard.png are these two screenshots.
    browser.screenshot("dashboard", full_page=True)
