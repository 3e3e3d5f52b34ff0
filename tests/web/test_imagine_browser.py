"""Imagine, the buttons and the region editor in a real browser (headless Chromium): the prompt box, the live
progress and the grid, U1 and V1, and a region painted in the editor whose outside pixels stay as they were."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from pipeline import editing
from pipeline.images import decode_image
from storage.records import JobKind, JobRecord, JobStatus
from tests.web.browser import Browser
from tests.web.helpers import OWNER

pytestmark = pytest.mark.slow


def job_on_page(browser: Browser) -> JobRecord:
    """The job whose page the tab shows, once it is done (from the server's storage)."""
    job_id = browser.path.removeprefix("/imagine/")
    live = browser.live
    assert live is not None
    job = live.call(lambda: live.services.storage.jobs.get(job_id))
    assert job is not None and job.status is JobStatus.DONE, job
    return job


def wait_for_result(browser: Browser) -> None:
    browser.wait_for("section.live-job[data-status=done] img.grid")
    browser.wait_until(lambda _: browser.image_loaded("img.grid"), "the result's image loads")


def press(browser: Browser, label: str) -> None:
    before = browser.path
    button = browser.driver.find_element(
        By.XPATH, f"//form[@class='job-buttons']//button[normalize-space()='{label}']"
    )
    button.click()
    browser.wait_until(lambda _: browser.path != before, f"{label} opens its job's page")


def test_imagine_shows_progress_then_the_grid_and_u1_and_v1_start_their_jobs(browser: Browser) -> None:
    browser.sign_in_with_cookie(OWNER)
    browser.open("/imagine")
    browser.wait_for("textarea[name=prompt]").send_keys(
        "a red circle on a blue background --seed 3 --steps 100"
    )
    browser.screenshot("prompt")
    browser.driver.find_element(By.CSS_SELECTOR, ".imagine-form button[type=submit]").click()
    browser.wait_until(lambda _: browser.path.startswith("/imagine/"), "the job's page opens")
    preview = browser.wait_for("section.live-job img.job-preview")  # shown with the first step's preview
    status = browser.driver.find_element(By.CSS_SELECTOR, ".job-status").text
    assert "% (step " in status and "/100)" in status, status
    assert preview.get_attribute("src").startswith("data:image/png;base64,")
    browser.screenshot("progress")
    wait_for_result(browser)
    browser.screenshot("grid")
    grid = job_on_page(browser)
    assert grid.kind == JobKind.IMAGINE and grid.requester_id == OWNER.id and len(grid.images) == 4

    press(browser, "U1")
    wait_for_result(browser)
    browser.screenshot("u1")
    upscale = job_on_page(browser)
    assert (upscale.kind, upscale.parent_job_id, upscale.parent_image_index) == (JobKind.UPSCALE, grid.id, 0)
    assert "Vary (Region)" in browser.text()

    browser.driver.back()
    wait_for_result(browser)
    press(browser, "V1")
    wait_for_result(browser)
    browser.screenshot("v1")
    variation = job_on_page(browser)
    assert (variation.kind, variation.parent_job_id, variation.parent_image_index) == (
        JobKind.VARIATION,
        grid.id,
        0,
    )
    assert len(variation.images) == 4


def drag(browser: Browser, canvas, points: list[tuple[int, int]]) -> None:
    """A stroke over `canvas` through `points` (pixels from its top-left corner)."""
    size = canvas.size
    chain = ActionChains(browser.driver)
    x, y = points[0]
    chain.move_to_element_with_offset(
        canvas, x - size["width"] // 2, y - size["height"] // 2
    ).click_and_hold()
    for nx, ny in points[1:]:
        chain.move_by_offset(nx - x, ny - y)
        x, y = nx, ny
    chain.release().perform()


def painted_share(browser: Browser) -> float:
    return browser.driver.execute_script(
        "const c = document.querySelector('#region-editor canvas');"
        "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 127) n++;"
        "return n / (c.width * c.height);"
    )


def test_a_region_drawn_in_the_editor_is_varied_and_everything_outside_stays(browser: Browser) -> None:
    live = browser.live
    assert live is not None
    browser.sign_in_with_cookie(OWNER)
    browser.open("/imagine")
    browser.wait_for("textarea[name=prompt]").send_keys("a red circle on a blue background --seed 3")
    browser.driver.find_element(By.CSS_SELECTOR, ".imagine-form button[type=submit]").click()
    browser.wait_until(lambda _: browser.path.startswith("/imagine/"), "the job's page opens")
    wait_for_result(browser)
    press(browser, "U2")
    wait_for_result(browser)
    single = job_on_page(browser)
    browser.driver.find_element(By.LINK_TEXT, "Vary (Region)").click()
    canvas = browser.wait_for("#region-editor canvas")
    assert browser.path == f"/imagine/{single.id}/region/0"
    submit = browser.driver.find_element(By.CSS_SELECTOR, "#region-editor button[type=submit]")
    assert not submit.is_enabled()  # nothing painted yet

    drag(browser, canvas, [(50, 50), (160, 100), (210, 210)])  # a brush stroke
    assert painted_share(browser) > 0.02
    browser.screenshot("brush")
    browser.driver.find_element(By.CSS_SELECTOR, "[data-command=undo]").click()
    assert painted_share(browser) == 0 and not submit.is_enabled()

    browser.driver.find_element(By.CSS_SELECTOR, "[data-tool=lasso]").click()
    drag(browser, canvas, [(30, 240), (240, 256), (224, 416), (48, 416)])
    lasso = painted_share(browser)
    assert 0.08 < lasso < 0.2  # the polygon is 12% of the canvas
    browser.driver.find_element(By.CSS_SELECTOR, "[data-tool=rectangle]").click()
    drag(browser, canvas, [(30, 30), (250, 160)])  # the top-left corner, in the left half
    assert painted_share(browser) > lasso + 0.05
    browser.driver.find_element(By.CSS_SELECTOR, "#region-editor textarea[name=prompt]").send_keys(
        "a yellow star"
    )
    browser.screenshot("painted")

    submit.click()
    browser.wait_until(lambda _: "/region/" not in browser.path, "the region job's page opens")
    wait_for_result(browser)
    browser.screenshot("region job")
    region = job_on_page(browser)
    assert (region.kind, region.parent_job_id, region.prompt) == (JobKind.REGION, single.id, "a yellow star")

    storage = live.services.storage
    source = np.asarray(decode_image(live.call(lambda: storage.images.get(single.images[0].storage_key))))
    upload = live.call(lambda: storage.uploads.get(region.params["drawn"]))
    drawn = live.call(lambda: storage.uploads.data(upload))
    outside = np.asarray(editing.drawn_mask(drawn, 64, 64)) == 0
    # Only the left half was painted (the editor is 512 pixels wide over the 64-pixel image).
    assert outside[:, 32 + editing.feather_width(64, 64) :].all()
    assert not outside[6:18, 6:29].any()  # the rectangle, (30, 30) to (250, 160) of 512, on the image
    for image in region.images:
        pixels = np.asarray(decode_image(live.call(lambda key=image.storage_key: storage.images.get(key))))
        assert (pixels[outside] == source[outside]).all()
        assert (pixels[~outside] != source[~outside]).any()
    with Image.open(browser.saved[-1]) as shot:
        assert shot.size[0] > 0


def test_a_prompt_of_several_jobs_opens_their_page_and_reloading_it_starts_nothing(browser: Browser) -> None:
    browser.sign_in_with_cookie(OWNER)
    browser.open("/imagine")
    browser.wait_for("textarea[name=prompt]").send_keys("a {red, blue} square --seed 2")
    browser.driver.find_element(By.CSS_SELECTOR, ".imagine-form button[type=submit]").click()
    browser.wait_until(lambda _: browser.path.startswith("/imagine/jobs"), "the jobs' page opens")
    browser.wait_until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "section.live-job[data-status=done] img.grid")) == 2,
        "both grids",
    )
    browser.wait_until(
        lambda d: d.execute_script(
            "return [...document.querySelectorAll('img.grid')].every(i => i.complete && i.naturalWidth > 0)"
        ),
        "both grids' images load",
    )
    browser.screenshot("several-jobs", full_page=True)
    live = browser.live
    assert live is not None

    def owners_jobs() -> list[JobRecord]:
        return live.call(lambda: live.services.storage.jobs.recent_for_user(OWNER.id))

    started = owners_jobs()
    assert sorted(job.prompt for job in started) == ["a blue square", "a red square"]
    browser.driver.refresh()  # a reload GETs the page: no "resubmit the form?", no new jobs
    browser.wait_until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "section.live-job[data-status=done] img.grid")) == 2,
        "both grids again",
    )
    assert [job.id for job in owners_jobs()] == [job.id for job in started]
