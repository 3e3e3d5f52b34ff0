"""Make docs/web-editor.png: the web companion's region editor over a demo-model image.

    python docs/web_editor_screenshot.py

Starts `kaika web --local` on a free port with a fresh DATA_DIR and the demo model, imagines the README's
prompt in headless Chromium (the distribution's /usr/bin/chromium and /usr/bin/chromedriver), presses U1,
opens Vary (Region), outlines the circle with the lasso and types a new prompt, then saves the page.
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
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.web.browser import new_driver  # noqa: E402  (the browser tests' Chromium, nothing downloaded)

OUTPUT = ROOT / "docs" / "web-editor.png"
PROMPT = "a red circle on a blue background --seed 3"


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


def main() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "DATA_DIR": str(Path(folder) / "data"), "MODEL": "", "HF_HUB_OFFLINE": "1"}
        kaika = Path(sys.executable).parent / "kaika"
        server = subprocess.Popen(
            [str(kaika), "web", "--local", "--port", str(port), "--owner", "Ada"], cwd=folder, env=env
        )
        driver = new_driver()
        try:
            wait_for_server(url)
            wait = WebDriverWait(driver, 180)
            driver.get(url + "/imagine")
            driver.find_element(By.NAME, "prompt").send_keys(PROMPT)
            driver.find_element(By.CSS_SELECTOR, ".imagine-form button[type=submit]").click()
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "section[data-status=done] img.grid"))
            driver.find_element(By.XPATH, "//button[normalize-space()='U1']").click()
            wait.until(lambda d: d.find_elements(By.LINK_TEXT, "Vary (Region)"))
            driver.find_element(By.LINK_TEXT, "Vary (Region)").click()
            canvas = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#region-editor canvas"))
            wait.until(
                lambda d: d.execute_script("return document.querySelector('.editor-stage img').complete")
            )
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
            assert driver.save_screenshot(str(OUTPUT)), "Chromium could not save the screenshot"
            print(f"saved {OUTPUT}")
        finally:
            driver.quit()
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
