"""The HTML report in a real headless browser (Chromium + chromedriver through selenium).

Loads a report with every section (plots, map, protocol tables, per-image table, cards, viewer)
from file://, checks that the page logs no console error, that sorting a column orders the rows,
that filtering hides rows and that the viewer's layer toggles show and hide layers. Screenshots go
to the test's temporary folder (a test run leaves the checkout as it was); set
``SAM2ELNET_TEST_ARTIFACTS=DIR`` to keep them in ``DIR/report-browser/`` to look at.

Skips only when no browser is available: selenium not installed, or no chromium/chromedriver on
PATH (``make test`` installs Debian's ``chromium`` + ``chromium-driver`` when run as root).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers_data import write_tif
from PIL import Image

from sam2elnet.pipeline.report import ReportItem
from sam2elnet.pipeline.report_protocol import write_protocol_report


def _browser() -> tuple[str, str]:
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("selenium is not installed (pip install -e '.[dev]')")
    binary = next(
        (p for n in ("chromium", "chromium-browser", "google-chrome") if (p := shutil.which(n))),
        None,
    )
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        pytest.skip(
            "no headless browser: install Debian's chromium and chromium-driver "
            "(make test does it when run as root)"
        )
    return binary, driver


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where the screenshots go: ``$SAM2ELNET_TEST_ARTIFACTS/report-browser`` when that is set,
    else the test's temporary folder."""
    keep = os.environ.get("SAM2ELNET_TEST_ARTIFACTS")
    return Path(keep) / "report-browser" if keep else tmp_path / "screenshots"


@pytest.fixture
def driver():
    binary, driver_path = _browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        "--allow-file-access-from-files",
    ):
        opts.add_argument(arg)
    opts.binary_location = binary
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(options=opts, service=Service(driver_path))
    drv.set_page_load_timeout(60)
    try:
        yield drv
    finally:
        drv.quit()


def _geotiff(path: Path, left: float, top: float, img: np.ndarray) -> None:
    from rasterio.transform import from_origin

    write_tif(path, img[None], transform=from_origin(left, top, 10.0, 10.0))  # EPSG:32633


def _report(tmp_path: Path) -> tuple[Path, list[ReportItem]]:
    """A protocol-style report over 8 georeferenced SAR-like images with labels and truth."""
    rng = np.random.default_rng(3)
    items = []
    yy, xx = np.mgrid[0:96, 0:96]
    for k in range(8):
        img = np.clip(rng.gamma(2.0, 40.0, (96, 96)), 0, 255).astype(np.uint8)
        cy, cx = 30 + 5 * k, 40 + 3 * k
        truth = (
            (yy - cy) ** 2 / 400 + (xx - cx) ** 2 / 225 < 1 if k != 7 else np.zeros((96, 96), bool)
        )
        label = np.roll(truth, k, axis=1) if k != 7 else (yy - 50) ** 2 + (xx - 50) ** 2 < 40
        img[truth] //= 3  # dark slick
        prob = np.clip(label * 0.8 + rng.random((96, 96)) * 0.2, 0, 1)
        _geotiff(
            tmp_path / f"scene_{k}.tif",
            500_000 + 1_000 * (k % 4),
            4_001_000 - 1_000 * (k // 4),
            img,
        )
        Image.fromarray(label.astype(np.uint8) * 255).save(tmp_path / f"scene_{k}_label.png")
        Image.fromarray(truth.astype(np.uint8) * 255).save(tmp_path / f"scene_{k}_mask.png")
        items.append(
            ReportItem(
                name=f"scene_{k}",
                image=tmp_path / f"scene_{k}.tif",
                output=tmp_path / f"scene_{k}_label.png",
                truth=tmp_path / f"scene_{k}_mask.png",
                probability=prob,
                predicted_iou=float(np.clip(0.95 - 0.11 * k + 0.05 * rng.standard_normal(), 0, 1)),
                kept=k < 5,
            )
        )
    row = {"hand_labels": 8, "train_images": 8, "iou": 0.05, "f1": 0.1, "precision": 0.05,
           "recall": 1.0, "miou": 0.025}  # fmt: skip
    results = {
        "table1": [
            dict(row, title="(a) 100 % original labels"),
            dict(row, title="(c) filtered auto-labels only", iou=0.61, miou=0.79, recall=0.8),
        ],
        "table2": [dict(row, labels="simulated coarse", title="SAM2-ELNet enhancement")],
        "autolabels": {"n": 8, "n_kept": 5, "threshold": 0.5, "spearman": 0.83, "spearman_p": 0.01},
        "split": {"labelled": 8, "unlabelled": 8, "test": 4, "test_source": "held-out 20 %"},
    }
    path = write_protocol_report(
        tmp_path / "report.html",
        results,
        items,
        title="Browser test report",
        notes=["synthetic scenes for the browser test"],
    )
    return path, items


def _errors(drv) -> list[dict]:
    return [e for e in drv.get_log("browser") if e.get("level") == "SEVERE"]


def _visible_names(drv) -> list[str]:
    return drv.execute_script(
        "return Array.from(document.querySelectorAll('#items tbody tr'))"
        ".filter(r => !r.hidden).map(r => r.dataset.name);"
    )


def _shot(drv, folder: Path, name: str, full: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{name}.png"
    if full:
        height = drv.execute_script("return document.documentElement.scrollHeight")
        drv.set_window_size(1400, min(int(height) + 40, 12000))
    drv.save_screenshot(str(out))
    if full:
        drv.set_window_size(1400, 1000)
    assert out.stat().st_size > 10_000  # a rendered page, not a blank one
    return out


def test_report_in_headless_browser(driver, shots: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    path, items = _report(tmp_path)
    driver.get(path.resolve().as_uri())
    # get() returns at the load event, but on a busy 2-core machine readyState was once still
    # 'loading' right after it: wait for 'complete' (a page that never completes still fails)
    WebDriverWait(driver, 60).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )
    assert driver.title == "Browser test report"
    assert _errors(driver) == []
    # every embedded picture decoded (a broken data URI has naturalWidth 0)
    broken = driver.execute_script(
        "return Array.from(document.images).filter(i => i.getAttribute('src') && i.complete"
        " && i.naturalWidth === 0).length;"
    )
    assert broken == 0
    assert len(driver.find_elements(By.CSS_SELECTOR, "#map rect.fp")) == 8
    assert "Every downstream model is degenerate" not in driver.page_source  # one row is fine
    assert len(driver.find_elements(By.CSS_SELECTOR, "tr.flagged")) == 2
    _shot(driver, shots, "report-full", full=True)

    # sorting: predicted IoU ascending, then descending
    pred = {i.name: i.predicted_iou for i in items}
    header = driver.find_element(By.CSS_SELECTOR, '#items th[data-key="predicted"]')
    header.click()
    assert _visible_names(driver) == sorted(pred, key=lambda n: pred[n])
    assert header.get_attribute("aria-sort") == "ascending"
    header.click()
    assert _visible_names(driver) == sorted(pred, key=lambda n: -pred[n])
    driver.find_element(By.CSS_SELECTOR, '#items th[data-key="name"]').click()
    assert _visible_names(driver) == sorted(pred)

    # filtering: by status, by name, by flag
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.ID, "f-status")).select_by_visible_text("rejected")
    assert _visible_names(driver) == ["scene_5", "scene_6", "scene_7"]
    Select(driver.find_element(By.ID, "f-status")).select_by_index(0)
    Select(driver.find_element(By.ID, "f-flag")).select_by_visible_text("false alarm")
    assert _visible_names(driver) == ["scene_7"]
    Select(driver.find_element(By.ID, "f-flag")).select_by_index(0)
    driver.find_element(By.ID, "f-name").send_keys("scene_3")
    assert _visible_names(driver) == ["scene_3"]
    assert "1 of 8 shown" in driver.find_element(By.ID, "f-count").text
    driver.find_element(By.ID, "f-name").clear()
    driver.execute_script("document.getElementById('f-name').dispatchEvent(new Event('input'))")
    assert len(_visible_names(driver)) == 8
    _shot(driver, shots, "report-table")

    # the full-size viewer: open from the table, toggle layers
    driver.find_element(By.CSS_SELECTOR, 'button.open[data-idx="2"]').click()
    assert driver.execute_script("return document.getElementById('viewer').open") is True
    assert driver.find_element(By.ID, "v-name").text == "scene_2"
    out_layer, truth_layer = (
        driver.find_element(By.ID, "v-output"),
        driver.find_element(By.ID, "v-truth"),
    )
    prob_layer = driver.find_element(By.ID, "v-prob")
    assert out_layer.is_displayed() and not truth_layer.is_displayed()
    assert not prob_layer.is_displayed()
    assert (
        driver.find_element(By.ID, "layer-input").get_attribute("disabled") is not None
    )  # none given
    driver.find_element(By.ID, "layer-truth").click()
    driver.find_element(By.ID, "layer-prob").click()
    assert truth_layer.is_displayed() and prob_layer.is_displayed()
    driver.find_element(By.ID, "layer-output").click()
    assert not out_layer.is_displayed()
    stack_w = driver.execute_script("return document.getElementById('v-stack').clientWidth")
    assert stack_w >= 96  # shown at least at native size
    _shot(driver, shots, "report-viewer")
    driver.find_element(By.ID, "layer-image").click()
    assert "im" not in driver.find_element(By.ID, "v-stack").get_attribute("class").replace(
        "stack", ""
    )
    driver.find_element(By.ID, "v-next").click()
    assert driver.find_element(By.ID, "v-name").text != "scene_2"
    driver.find_element(By.ID, "v-close").click()
    assert driver.execute_script("return document.getElementById('viewer').open") is False

    # a click on a map footprint opens that image
    driver.find_element(By.CSS_SELECTOR, '#map rect.fp[data-idx="6"]').click()
    assert driver.find_element(By.ID, "v-name").text == "scene_6"
    assert _errors(driver) == []
