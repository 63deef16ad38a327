"""Screenshot a page of the built site in headless Chromium (a check that it renders).

    .venv/bin/mkdocs build
    .venv/bin/python docs/screenshot.py [PAGE] [OUT.png]

defaults: ``site/getting-started/index.html`` to ``docs/figures/docs_getting_started.png``.
Needs Chromium and ChromeDriver (Debian: ``chromium chromium-driver``) and selenium (the
``dev`` extra).
"""

import shutil
import sys
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from stnca.export import HEADLESS_CHROMIUM_FLAGS

ROOT = Path(__file__).resolve().parents[1]


def screenshot(page: Path, out: Path, width: int = 1280, height: int = 1000) -> Path:
    """Open ``page`` (a file of the built site) and save what the browser shows to ``out``."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if chromium is None or chromedriver is None:
        sys.exit("needs chromium and chromedriver (Debian: chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*HEADLESS_CHROMIUM_FLAGS, f"--window-size={width},{height}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        driver.get(page.resolve().as_uri())
        driver.execute_script("return document.fonts.ready")
        out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(out))
    finally:
        driver.quit()
    return out


if __name__ == "__main__":
    page = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "site/getting-started/index.html"
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "docs/figures/docs_getting_started.png"
    if not page.is_file():
        sys.exit(f"{page} not found: build the site first (.venv/bin/mkdocs build)")
    print(f"wrote {screenshot(page, out)}")
