"""Drive the demo page in a real headless Chromium (Selenium): click Sample, wait for the grid, take a screenshot.

Needs Debian's ``chromium`` + ``chromium-driver`` (or any Chrome/Chromedriver pair given by path) and ``selenium``.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars")
"""Headless, offline-quiet Chromium: no sandbox (root in a container), no GPU, no update/sync/QUIC traffic."""


def _find(name: str, *candidates: str) -> str:
    for candidate in (name, *candidates):
        found = shutil.which(candidate)
        if found:
            return found
    raise OSError(f"{name} not found: apt-get install -y chromium chromium-driver (or pass its path)")


def screenshot_sample(url: str, output: str | Path, width: int = 1280, height: int = 1300, timeout_s: float = 180,
                      chromium: str | None = None, chromedriver: str | None = None) -> dict:
    """Open ``url``, press the Sample tab's button with its defaults, wait for the grid, save a PNG to ``output``.

    Returns what the browser saw: seconds from the click to the grid, the grid's natural size, the page title.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    profile = tempfile.mkdtemp(prefix="qiren-gen-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium or _find("chromium", "chromium-browser", "google-chrome")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(chromedriver or _find("chromedriver")), options=options)
    try:
        driver.get(url)
        wait = WebDriverWait(driver, timeout_s)
        button = wait.until(ec.element_to_be_clickable((By.ID, "sample-button")))
        start = time.perf_counter()
        button.click()
        grid = wait.until(lambda d: next((img for img in d.find_elements(By.CSS_SELECTOR, "#sample-grid img")
                                          if d.execute_script("return arguments[0].complete && "
                                                              "arguments[0].naturalWidth > 0", img)), None))
        seconds = time.perf_counter() - start
        size = driver.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", grid)
        time.sleep(0.5)  # let the progress overlay fade out
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(output))
        return {"click_to_grid_s": seconds, "grid_size": tuple(size), "title": driver.title}
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


__all__ = ["CHROMIUM_FLAGS", "screenshot_sample"]
