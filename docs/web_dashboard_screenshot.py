"""Make docs/web-dashboard.png: the web companion's admin dashboard over demo-model jobs.

    python docs/web_dashboard_screenshot.py

Records a few jobs with `kaika imagine`, `kaika upscale` and `kaika vary` in a fresh DATA_DIR (the demo
model), starts `kaika web --local` over it on a free port (the local user is an admin) and saves the whole
dashboard page as headless Chromium (the distribution's /usr/bin/chromium and /usr/bin/chromedriver) shows it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "docs")]

from web_editor_screenshot import free_port, wait_for_server  # noqa: E402

from tests.web.browser import new_driver  # noqa: E402  (the browser tests' Chromium, nothing downloaded)

OUTPUT = ROOT / "docs" / "web-dashboard.png"
PROMPTS = [
    "a red circle on a blue background --seed 3",
    "a yellow star on a green background --seed 8",
    "a white triangle on a purple background --seed 12",
]


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

        circle = run("imagine", PROMPTS[0])
        run("upscale", circle, "2")
        run("imagine", PROMPTS[1])
        run("vary", circle, "1")
        run("imagine", PROMPTS[2])
        server = subprocess.Popen(
            [kaika, "web", "--local", "--port", str(port), "--owner", "Ada"], cwd=folder, env=env
        )
        driver = new_driver()
        try:
            wait_for_server(url)
            driver.get(url + "/admin?window=7d")
            driver.execute_script(
                "return Promise.all([...document.images].map(i => i.complete ? 0 : new Promise(r => i.onload = r)))"
            )
            # The window as tall as the page, so the settings below the figures are in the picture too.
            page, inner = driver.execute_script(
                "return [document.documentElement.scrollHeight, innerHeight];"
            )
            driver.set_window_size(1280, 900 - inner + page)
            assert driver.save_screenshot(str(OUTPUT)), "Chromium could not save the screenshot"
            print(f"saved {OUTPUT}")
        finally:
            driver.quit()
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
