"""🎞 Animate in a real browser (headless Chromium): pressed under a single image, its live page ends with a video
that plays; the gallery shows the video's first frame with its badge."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from pipeline.executor.local import LocalExecutor
from service.admission import Place
from service.jobs import ButtonAction
from service.wiring import Services
from storage.records import JobRecord
from tests.fixtures.reporters import outcome_of
from tests.web.browser import Browser
from tests.web.conftest import site_settings
from tests.web.helpers import OWNER, LiveServer

pytestmark = pytest.mark.slow

FRAMES = 4
HAVE_CURRENT_DATA = 2  # HTMLMediaElement.readyState: the frame at the current position can be shown


@pytest.fixture
def live_video_web(tiny_video_engine: Any, tiny_model_dir: Path, tmp_path: Path) -> Iterator[LiveServer]:
    """The companion served on a free port over a model that animates (4 frames a video), previews every step."""
    settings = site_settings(tiny_model_dir, tmp_path, video_frames=FRAMES)

    async def open_services() -> Services:
        return await Services.open(settings, LocalExecutor({None: tiny_video_engine}, preview_every=1))

    server = LiveServer(open_services, settings).start()
    yield server
    server.stop()


def a_single_image(live: LiveServer) -> JobRecord:
    async def make() -> JobRecord:
        assert live.services is not None
        jobs = live.services.jobs
        request = await jobs.parse_for(OWNER.id, "a red circle on a blue background --seed 3 --steps 2")
        grid = await outcome_of(await jobs.imagine(OWNER.requester, Place(None, None), request))
        pressed = await jobs.press(OWNER.requester, Place(None, None), ButtonAction.UPSCALE, grid.job.id, 0)
        return (await outcome_of(pressed)).job

    return live.call(make)


def test_animate_pressed_in_the_browser_ends_with_a_video_that_plays(
    live_video_web: LiveServer, browser_at: Callable[..., Browser]
) -> None:
    browser = browser_at(live_video_web.url, live_video_web)
    single = a_single_image(live_video_web)
    browser.sign_in_with_cookie(OWNER)
    browser.open(f"/imagine/{single.id}")
    browser.wait_for("section.live-job[data-status=done] img.grid")
    browser.driver.find_element(
        By.XPATH, "//form[@class='job-buttons']//button[normalize-space()='Animate (High motion)']"
    ).click()
    browser.wait_until(lambda _: browser.path != f"/imagine/{single.id}", "Animate opens its job's page")
    video_id = browser.path.removeprefix("/imagine/")

    video = browser.wait_for("section.live-job[data-status=done] video.video")
    assert video.get_attribute("src").endswith(f"/jobs/{video_id}/video.mp4")
    browser.driver.execute_script("arguments[0].play();", video)
    browser.wait_until(
        lambda driver: driver.execute_script("return arguments[0].readyState;", video) >= HAVE_CURRENT_DATA,
        "the video loads its frames",
    )
    width, duration, paused = browser.driver.execute_script(
        "return [arguments[0].videoWidth, arguments[0].duration, arguments[0].paused];", video
    )
    assert width == single.images[0].width and duration > 0 and not paused  # decoded, and playing
    assert "Extend" in browser.text() and "U1" not in browser.text()
    browser.screenshot("video")

    browser.open(f"/jobs/{video_id}")
    page_video = browser.wait_for(".job-images video")
    browser.wait_until(
        lambda driver: (
            driver.execute_script("return arguments[0].readyState;", page_video) >= HAVE_CURRENT_DATA
        ),
        "the job page's video loads its frames",
    )
    browser.screenshot("job page")

    browser.open("/")
    browser.wait_until(lambda _: browser.image_loaded(f"[data-job-id='{video_id}'] img"), "the card's frame")
    assert "video" in browser.driver.find_element(By.CSS_SELECTOR, f"[data-job-id='{video_id}']").text
    browser.screenshot("gallery")
