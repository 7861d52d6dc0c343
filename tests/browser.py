"""Open a report page in headless Chromium (Debian `chromium` + `chromium-driver`, driven by
selenium) and say what a user's browser sees: every image decoded, the tables and figures in
page order, console errors; and take a full-page screenshot."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1400,1000")


def chromium_missing() -> str | None:
    for exe in ("chromium", "chromedriver"):
        if shutil.which(exe) is None:
            return f"{exe} (Debian packages chromium and chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium (pip install -e '.[test]')"
    return None


# Everything the test asserts, read in one pass: images, and the page order of the headline tables,
# headline figures and the first detail section.
INSPECT = """
const imgs = Array.from(document.images).map(i => ({cls: i.className, q: i.dataset.question || '',
    complete: i.complete, w: i.naturalWidth, h: i.naturalHeight}));
const all = Array.from(document.querySelectorAll('table.headline, img.headline-figure, section.details, img'));
const pos = el => all.indexOf(el);
const tables = Array.from(document.querySelectorAll('table.headline')).map(t => ({q: t.dataset.question,
    pos: pos(t), rows: t.tBodies[0].rows.length}));
const figs = Array.from(document.querySelectorAll('img.headline-figure')).map(i => ({q: i.dataset.question, pos: pos(i)}));
const details = document.querySelector('section.details');
return {imgs: imgs, tables: tables, figs: figs, details_pos: details ? pos(details) : -1,
        height: document.documentElement.scrollHeight, text: document.body.innerText};
"""


def inspect(index_html: Path, screenshot: Path) -> dict:
    """Load ``index_html`` in headless Chromium; returns INSPECT's result plus ``console``
    (severe browser log entries) and writes a full-page PNG to ``screenshot``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    profile = tempfile.mkdtemp(prefix="aiotrace-chromium-")
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    try:
        driver.set_page_load_timeout(60)
        driver.get(Path(index_html).resolve().as_uri())
        result = driver.execute_script(INSPECT)
        result["console"] = [e for e in driver.get_log("browser") if e.get("level") in ("SEVERE", "ERROR")]
        driver.set_window_size(1400, min(int(result["height"]) + 50, 16000))
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(screenshot))
        driver.set_window_size(1400, 1000)
        driver.save_screenshot(str(screenshot.with_name(screenshot.stem + "-top.png")))
        return result
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
