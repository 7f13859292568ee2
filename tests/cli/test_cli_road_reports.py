"""How road results are reported: the printed evaluation table keeps the centre-line road
measures out of its pixel-summed section, the training log's validation road line names its
buffer, cv.md counts its cross-domain directions in words that agree with the number."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers_data import write_mask_png

from sam2elnet.cli import main


@pytest.fixture
def road_pair(tmp_path: Path) -> tuple[Path, Path]:
    """One 32 x 32 truth with a 3 px road (rows 15-17) and a prediction of its left half."""
    t = np.zeros((32, 32), bool)
    t[15:18, :] = True
    p = np.zeros_like(t)
    p[15:18, :16] = True
    write_mask_png(tmp_path / "truth" / "a_mask.png", t)
    write_mask_png(tmp_path / "pred" / "a_pred.png", p)
    return tmp_path / "pred", tmp_path / "truth"


def test_road_rows_are_not_under_the_pixel_summed_heading(
    road_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The road measures come from centre-line lengths, not pixel counts: they were printed
    (and shown in report.html) under the pixel-summed metrics; they have a table of their own."""
    pred, truth = road_pair
    argv = ["evaluate", "--pred", str(pred), "--truth", str(truth), "--roads", "--no-progress",
            "--json", str(tmp_path / "o" / "e.json"), "--report"]  # fmt: skip
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    at = {k: next(i for i, s in enumerate(lines) if k in s)
          for k in ("over the images", "IoU (foreground)", "road measure (centre-line",
                    "road correctness", "road connectivity")}  # fmt: skip
    assert at["over the images"] < at["IoU (foreground)"] < at["road measure (centre-line"]
    assert at["road measure (centre-line"] < at["road correctness"] < at["road connectivity"]
    page = (tmp_path / "o" / "report.html").read_text(encoding="utf-8")
    pixel, road = page.index("aggregate (pixel-summed)"), page.index("road measure (centre-line")
    assert pixel < road and "road quality" not in page[pixel:road]


def test_the_validation_road_line_names_its_buffer() -> None:
    """An epoch's log line gave road quality / completeness / correctness with no buffer."""
    from sam2elnet.engine.train_metrics import val_text

    row = {"val_loss": 0.4, "val_iou": 0.5, "val_iou_annotate": 0.4, "val_iou_enhance": 0.6,
           "val_coarse_iou": 0.55, "val_road_quality": 0.31, "val_road_completeness": 0.52,
           "val_road_correctness": 0.44}  # fmt: skip
    assert val_text(row, 0.5, roads=True, road_buffer=5.0).endswith(
        "road quality 0.310 completeness 0.520 correctness 0.440 (buffer 5 px)"
    )
    assert val_text(row, 0.5, roads=True).endswith("(buffer 3 px)")  # the default
    assert "buffer" not in val_text(row, 0.5, roads=False)


@pytest.mark.parametrize(("n", "said"), [(1, "(over 1 direction)."), (2, "(over 2 directions).")])
def test_cv_md_counts_its_directions(n: int, said: str) -> None:
    """A cross-domain run with one direction done said "over 1 directions"."""
    from sam2elnet.pipeline.crossval_report import render_markdown

    gap = {"mean": 0.1, "std": 0.0, "n": n}
    r = {"keys": [], "mode": "kfold", "folds_total": 2, "folds_done": n, "data": "d",
         "n_images": 9, "domain": "other", "domain_reason": "-", "folds": [],
         "summary": {"iou_gap": gap}, "train": {}, "seed": 0, "seconds_this_run": 1.0}  # fmt: skip
    assert f"In-domain minus cross-domain IoU: **{_pm(gap)}** {said}" in render_markdown(r)


def _pm(s: dict) -> str:
    from sam2elnet.pipeline.crossval_report import pm

    return pm(s)


def test_experiment_per_image_csv_records_the_road_buffer(tmp_path: Path) -> None:
    """per_image.csv of ``elnet experiment`` gave each test image's road measures without the
    buffer they were matched within (another --road-buffer: other numbers, the same columns)."""
    import csv

    from sam2elnet.pipeline.experiment_scores import write_per_image_csv

    rows = [("full", "test", "r0", "all", [5, 1, 2, 40, 30, 27, 30, 25, 1, 1]),
            ("autolabels", "unlabelled", "r1", "all", [4, 0, 0, 44])]  # fmt: skip
    write_per_image_csv(tmp_path / "per_image.csv", rows, road_buffer=5.0)
    with open(tmp_path / "per_image.csv", newline="") as fh:
        test, label = csv.DictReader(fh)
    assert list(test)[8:10] == ["road_buffer_px", "road_correctness"]
    assert (test["road_buffer_px"], test["road_correctness"]) == ("5.0", repr(27 / 30))
    assert label["road_buffer_px"] == "" and label["road_correctness"] == ""


def _geo_roads(root: Path, n: int = 4, size: int = 64, pixel: float = 0.5) -> Path:
    """GeoTIFF road scenes (RGB images, 0/255 masks) in EPSG:32633 with ``pixel`` m pixels."""
    import rasterio
    from affine import Affine
    from helpers_roads import road_mask

    rng = np.random.default_rng(0)
    geo = {"crs": "EPSG:32633", "transform": Affine(pixel, 0, 500_000, 0, -pixel, 4_000_000)}
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
    for i in range(n):
        m = road_mask(size, rng)
        img = np.where(m > 0, 120, 60)[None].repeat(3, 0).astype(np.uint8)
        img = (img + rng.integers(0, 20, img.shape)).astype(np.uint8)
        for path, arr in (
            (root / "images" / f"r{i}.tif", img),
            (root / "masks" / f"r{i}.tif", m[None]),
        ):
            with rasterio.open(path, "w", driver="GTiff", width=size, height=size,
                               count=arr.shape[0], dtype="uint8", **geo) as ds:  # fmt: skip
                ds.write(arr)
    return root


def test_stats_says_the_domain_and_the_road_width(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """elnet stats said the modality and dB choice of SAR data but nothing road-specific: it
    says the domain elnet train will detect and, for roads, the labels' road width beside the
    default road buffer, in metres where the images have a projected CRS."""
    import json

    from helpers_data import make_sos

    root = _geo_roads(tmp_path / "roads")
    out = tmp_path / "stats.json"
    assert main(["stats", "--data", str(root), "--no-progress", "--out", str(out)]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "domain: roads (thin, connected labels: median elongation" in said
    assert "report road completeness, correctness, quality and connectivity" in said
    assert "road width: median " in said and " px = " in said
    assert "--road-buffer 3 px (1.5 m at 0.5 m ground pixels)" in said
    payload = json.loads(out.read_text())
    assert payload["domain"]["domain"] == "roads"
    assert payload["pixel_size_m"] == pytest.approx(0.5 / 0.9996, rel=1e-6)  # UTM scale factor
    assert 2.5 < payload["road_width_px"] < 8  # 3-4 px roads
    sos = make_sos(tmp_path / "sos")
    assert main(["stats", "--data", str(sos), "--no-progress"]) == 0
    said = capsys.readouterr().out
    assert "domain: other (SAR data; " in said and "road width" not in said
