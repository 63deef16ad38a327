"""Steps per second of the exported web page in headless Chromium, for the shipped models.

    python benchmarks/web_speed.py [--steps 300] [--screenshots DIR]

Exports each shipped model with `stnca export web` into a temporary folder, opens it in
Debian's Chromium (selenium), pauses the animation, warms the JavaScript up with 50 steps
and times `window.stnca.benchmark(steps)` (the update rule alone, no drawing) three times;
prints the best and the median. With --screenshots it also saves a screenshot of each page
after 150 steps of its animation.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from stnca.export import HEADLESS_CHROMIUM_FLAGS

MODELS = ("gray_scott_paper", "emoji_morph_cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--screenshots", type=Path, default=None)
    args = parser.parse_args()
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (*HEADLESS_CHROMIUM_FLAGS, "--window-size=1100,720"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        with tempfile.TemporaryDirectory() as folder:
            for name in MODELS:
                subprocess.run(
                    [sys.executable, "-m", "stnca", "export", "web", name, "--out", folder],
                    check=True,
                    capture_output=True,
                )
                driver.get((Path(folder) / f"{name}.html").resolve().as_uri())
                if args.screenshots is not None:
                    time.sleep(0.2)
                    driver.execute_script("window.stnca.load(0)")
                    while driver.execute_script("return window.stnca.steps()") < 150:
                        time.sleep(0.1)
                    args.screenshots.mkdir(parents=True, exist_ok=True)
                    driver.save_screenshot(str(args.screenshots / f"web_{name}.png"))
                driver.execute_script("window.stnca.pause(); window.stnca.benchmark(50)")
                rates = [
                    driver.execute_script(f"return window.stnca.benchmark({args.steps})")
                    for _ in range(3)
                ]
                size = driver.execute_script("return [window.stnca.height, window.stnca.width]")
                print(
                    f"{name:18s} {size[0]}x{size[1]}: best {max(rates):6.1f} steps/s, "
                    f"median {statistics.median(rates):6.1f} ({args.steps} steps x 3)"
                )
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
