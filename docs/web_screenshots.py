"""Make the web companion's pictures in docs/: web-gallery.png, web-dashboard.png and web-editor.png.

    python docs/web_screenshots.py

Records a few demo-model jobs with `kaika imagine`, `kaika upscale` and `kaika vary` in a fresh DATA_DIR,
starts `kaika web --local` over it on a free port and, in headless Chromium (the distribution's
/usr/bin/chromium and /usr/bin/chromedriver, the browser tests' driver), saves the gallery and the admin
dashboard; then imagines the README's prompt in the browser, presses U1, opens Vary (Region), outlines the
circle with the lasso, types a new prompt and saves the editor.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.web.browser import new_driver  # noqa: E402  (the browser tests' Chromium, nothing downloaded)

DOCS = ROOT / "docs"
PROMPT = "a red circle on a blue background --seed 3"
GALLERY_PROMPTS = [
    PROMPT,
    "a yellow star on a green background --ar 3:2 --seed 8",
    "a white triangle on a purple background --seed 12",
]
WAIT_FOR_IMAGES = (
    "return Promise.all([...document.images].map(i => i.complete ? 0 : new Promise(r => i.onload = r)))"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_server(url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/imagine", timeout=2)
            return
        except urllib.error.HTTPError:  # an answer: it is serving
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"kaika web did not answer at {url} within {seconds} s")


def save(driver: WebDriver, name: str) -> None:
    output = DOCS / name
    assert driver.save_screenshot(str(output)), "Chromium could not save the screenshot"
    print(f"saved {output}")


def gallery(driver: WebDriver, url: str) -> None:
    driver.get(url + "/")
    driver.execute_script(WAIT_FOR_IMAGES)
    save(driver, "web-gallery.png")


def dashboard(driver: WebDriver, url: str) -> None:
    driver.get(url + "/admin?window=7d")
    driver.execute_script(WAIT_FOR_IMAGES)
    # The window as tall as the page, so the settings below the figures are in the picture too.
    window = driver.get_window_size()
    page, inner = driver.execute_script("return [document.documentElement.scrollHeight, innerHeight];")
    driver.set_window_size(window["width"], window["height"] - inner + page)
    save(driver, "web-dashboard.png")
    driver.set_window_size(window["width"], window["height"])


def editor(driver: WebDriver, url: str) -> None:
    wait = WebDriverWait(driver, 180)
    driver.get(url + "/imagine")
    driver.find_element(By.NAME, "prompt").send_keys(PROMPT)
    driver.find_element(By.CSS_SELECTOR, ".imagine-form button[type=submit]").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "section[data-status=done] img.grid"))
    driver.find_element(By.XPATH, "//button[normalize-space()='U1']").click()
    wait.until(lambda d: d.find_elements(By.LINK_TEXT, "Vary (Region)"))
    driver.find_element(By.LINK_TEXT, "Vary (Region)").click()
    canvas = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#region-editor canvas"))
    wait.until(lambda d: d.execute_script("return document.querySelector('.editor-stage img').complete"))
    driver.find_element(By.CSS_SELECTOR, "[data-tool=lasso]").click()
    # A lasso around the circle, right of the image's middle (the demo model's image for this seed).
    points = [(-40, -130), (120, -150), (235, -20), (210, 120), (80, 160), (-50, 90)]
    chain = ActionChains(driver).move_to_element_with_offset(canvas, *points[0]).click_and_hold()
    previous = points[0]
    for point in points[1:] + points[:1]:
        chain.move_by_offset(point[0] - previous[0], point[1] - previous[1])
        previous = point
    chain.release().perform()
    driver.find_element(By.CSS_SELECTOR, "#region-editor textarea[name=prompt]").send_keys(
        "a yellow star on a blue background"
    )
    driver.execute_script("window.scrollTo(0, 0)")
    save(driver, "web-editor.png")


def main() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "DATA_DIR": str(Path(folder) / "data"), "MODEL": "", "HF_HUB_OFFLINE": "1"}
        kaika = str(Path(sys.executable).parent / "kaika")

        def run(*args: str) -> str:
            done = subprocess.run(
                [kaika, *args, "--owner", "Ada", "--out", "out"], cwd=folder, env=env, check=True,
                capture_output=True, text=True,
            )  # fmt: skip
            return done.stdout.splitlines()[0]  # the job id

        circle = run("imagine", GALLERY_PROMPTS[0])
        run("upscale", circle, "2")
        run("imagine", GALLERY_PROMPTS[1])
        run("vary", circle, "1")
        run("imagine", GALLERY_PROMPTS[2])
        server = subprocess.Popen(
            [kaika, "web", "--local", "--port", str(port), "--owner", "Ada"], cwd=folder, env=env
        )
        driver = new_driver()
        try:
            wait_for_server(url)
            gallery(driver, url)
            dashboard(driver, url)
            editor(driver, url)
        finally:
            driver.quit()
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
