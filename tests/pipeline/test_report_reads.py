"""The report reads each item's masks once: for its table row and its card (they were read twice,
once for each), also an evaluated pair (its prediction was read as the label and again with the
truth) and a vector coarse label (rasterised onto the image for each)."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from helpers_data import count_vector_reads, write_png, write_tif
from shapely.geometry import box

X0, Y0 = 500_000.0, 4_000_000.0  # EPSG:32633, 10 m pixels


def _pairs(tmp_path: Path, n: int = 3) -> tuple[Path, Path]:
    """``n`` 32 x 32 PNG predictions and truths (a square each, shifted by 4 px in the truth)."""
    pred, truth = tmp_path / "pred", tmp_path / "truth"
    for k in range(n):
        p = np.zeros((32, 32), np.uint8)
        p[8:24, 8:24] = 255
        t = np.zeros((32, 32), np.uint8)
        t[8 + k : 24 + k, 8:24] = 255
        write_png(pred / f"a{k}.png", p)
        write_png(truth / f"a{k}.png", t)
    return pred, truth


def _count_mask_reads(m: pytest.MonkeyPatch) -> Counter[str]:
    """Count :func:`sam2elnet.data.masks.read_mask_valid` calls by file name (every reader of a
    mask file of the evaluation and the report goes through it)."""
    import sam2elnet.data.masks as masks

    seen: Counter[str] = Counter()
    real = masks.read_mask_valid

    def spy(path, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        seen[f"{Path(path).parent.name}/{Path(path).name}"] += 1
        return real(path, *args, **kwargs)

    m.setattr(masks, "read_mask_valid", spy)
    return seen


def test_evaluate_report_reads_each_pair_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report of a 3-pair evaluation (``elnet evaluate --report``) reads each file once (it
    read each prediction 4 times and each truth twice: for the row and the card, the prediction
    as the label and again with its truth)."""
    from sam2elnet.engine.evaluate import evaluate_folders
    from sam2elnet.pipeline.report import write_evaluation_report

    pred, truth = _pairs(tmp_path)
    res = evaluate_folders(pred, truth, progress=False)
    with monkeypatch.context() as m:
        seen = _count_mask_reads(m)
        write_evaluation_report(res, tmp_path / "report.html")
    assert dict(seen) == {f"{d}/a{k}.png": 1 for d in ("pred", "truth") for k in range(3)}
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    # the cards still draw every layer: label, truth and errors of each pair
    for key in ("output", "truth", "errors"):
        assert len(re.findall(rf'<img alt="" data-layer="{key}" src="data:', page)) == 3, key
    assert '<div class="err">' not in page


def test_report_reads_once_when_the_order_needs_the_masks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Items without any IoU given, more than ``max_items``: the order (true IoU) comes from the
    masks, so a shown card reads its item again; the rows read each file once."""
    from sam2elnet.pipeline.report import ReportItem, write_report

    pred, truth = _pairs(tmp_path)
    items = [
        ReportItem(f"a{k}", output=pred / f"a{k}.png", truth=truth / f"a{k}.png") for k in range(3)
    ]
    with monkeypatch.context() as m:
        seen = _count_mask_reads(m)
        write_report(tmp_path / "r.html", items, title="t", max_items=1)
    # a0 has the best IoU (1.0): the two others are read for their rows only, the worst (a2)
    # for its card too
    assert seen == {
        "pred/a0.png": 1, "truth/a0.png": 1, "pred/a1.png": 1, "truth/a1.png": 1,
        "pred/a2.png": 2, "truth/a2.png": 2,
    }  # fmt: skip
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert len(re.findall(r'<img alt="" data-layer="errors" src="data:', page)) == 1
    assert 'id="card-2"' in page and 'id="card-0"' not in page and 'id="card-1"' not in page


def _image(path: Path, x0: float) -> None:
    write_tif(path, np.full((1, 32, 32), 90, np.uint8), x0=x0)


@pytest.mark.filterwarnings("ignore:'crs' was not provided:UserWarning")
def test_vector_coarse_label_is_rasterised_once_per_card(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An evaluated enhance run whose coarse labels were QGIS polygons (one .gpkg per image): the
    report rasterised each onto its image twice (row and card); now once, and the card still
    draws it and the row scores it (input IoU)."""
    import sam2elnet.data.vector as vector
    from sam2elnet.engine.evaluate import evaluate_folders
    from sam2elnet.pipeline.report import write_evaluation_report

    pred, truth = _pairs(tmp_path)
    images = tmp_path / "images"
    images.mkdir()
    for k in range(3):
        _image(images / f"a{k}.tif", X0 + 320 * k)
        # cols / rows 8..23 of the image, as the prediction's square
        x, y = X0 + 320 * k, Y0
        sq = box(x + 80, y - 240, x + 240, y - 80)
        gpd.GeoDataFrame({"id": [1]}, geometry=[sq], crs="EPSG:32633").to_file(
            images / f"a{k}.gpkg"
        )
    res = evaluate_folders(pred, truth, progress=False)
    res.images = [
        dataclasses.replace(
            r,
            image_path=str(images / f"{r.name}.tif"),
            input_label_path=str(images / f"{r.name}.gpkg"),
        )
        for r in res.images
    ]
    calls: list[str] = []
    real = vector.rasterize_vector

    def spy(path, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        calls.append(Path(path).name)
        return real(path, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(vector, "rasterize_vector", spy)
        write_evaluation_report(res, tmp_path / "r.html")
    assert sorted(calls) == ["a0.gpkg", "a1.gpkg", "a2.gpkg"]
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert len(re.findall(r'<img alt="" data-layer="input" src="data:', page)) == 3
    assert "cannot read" not in page and '<div class="err">' not in page


@pytest.mark.filterwarnings("ignore:'crs' was not provided:UserWarning")
def test_one_vector_coarse_label_for_many_images_is_read_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``elnet enhance --labels lines.gpkg`` (one file for 3 georeferenced images): the run's
    report read the file once per card (3 reads); now once for all, each card still drawing its
    part (a 16 x 16 px square on each image) and its row scoring it (input IoU vs the truth)."""
    import csv

    from sam2elnet.pipeline.report import write_run_report

    run, truth = tmp_path / "run", tmp_path / "truth"
    images = tmp_path / "images"
    images.mkdir()
    squares, rows = [], []
    for k in range(3):
        x = X0 + 320 * k
        _image(images / f"a{k}.tif", x)
        squares.append(box(x + 80, Y0 - 240, x + 240, Y0 - 80))  # cols / rows 8..23
        label = np.zeros((32, 32), np.uint8)
        label[8:24, 8:24] = 255
        write_png(run / "labels" / f"a{k}.png", label)
        t = np.zeros((32, 32), np.uint8)
        t[8:24, 8:28] = 255  # 16 x 20 px; the square covers 16 x 16 of it
        write_png(truth / f"a{k}.png", t)
        rows.append({"image": str(images / f"a{k}.tif"), "label": f"labels/a{k}.png",
                     "predicted_iou": 0.5 + 0.1 * k, "kept": True,
                     "coarse": str(tmp_path / "lines.gpkg")})  # fmt: skip
    gpd.GeoDataFrame({"id": [1, 2, 3]}, geometry=squares, crs="EPSG:32633").to_file(
        tmp_path / "lines.gpkg"
    )
    with (run / "quality.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with monkeypatch.context() as m:
        opened = count_vector_reads(m)
        page = write_run_report(run, kind="enhance", truth_dir=truth).read_text(encoding="utf-8")
    assert opened == ["lines.gpkg"]
    assert len(re.findall(r'<img alt="" data-layer="input" src="data:', page)) == 3
    assert "cannot read" not in page and '<div class="err">' not in page
    assert page.count('data-v="0.8"') >= 3  # input IoU = true IoU = 256 / 320 on every row
