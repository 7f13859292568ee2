"""HTML report: written atomically, self-contained, sorted, with overlays and plots."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sam2elnet.pipeline.report import ReportItem, display_rgb, overlay_rgb, write_report


def _items(n: int = 6, bands: int = 1) -> list[ReportItem]:
    rng = np.random.default_rng(0)
    items = []
    for k in range(n):
        img = rng.gamma(1.0, 100.0, size=(bands, 48, 64)).astype(np.float32)  # SAR-like
        truth = np.zeros((48, 64), bool)
        truth[10:30, 10:40] = True
        out = np.zeros_like(truth)
        out[10 + k : 30, 10 : 40 - k] = True
        coarse = np.zeros_like(truth)
        coarse[5:35, 5:45] = True
        items.append(
            ReportItem(
                name=f"tile_{k}<b>",  # must be escaped
                image=img,
                input_label=coarse,
                output=out,
                truth=truth,
                predicted_iou=1.0 - 0.1 * k,
                true_iou=float((out & truth).sum() / (out | truth).sum()),
                kept=k < 3,
                extra={"area": int(out.sum())},
            )
        )
    return items


def test_report_self_contained(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    path = write_report(
        tmp_path / "sub" / "report.html",
        _items(),
        title="Test report",
        metrics={"iou": 0.5, "per sensor": {"palsar": 0.4, "sentinel": 0.6}},
        quality_threshold=0.75,
        notes=["first note", "second"],
        figures={"a line": fig},
        tables={"extra": [{"k": 1, "v": 0.25}, {"k": 2, "v": 0.5}]},
    )
    plt.close(fig)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "data:image/png;base64" in text
    assert 'src="http' not in text and "src='http" not in text and "<script" not in text
    assert "<link" not in text
    assert "tile_0&lt;b&gt;" in text and "tile_0<b>" not in text
    assert "Test report" in text and "first note" in text and "sentinel" in text
    assert "kept" in text and "rejected" in text
    # sorted by predicted quality, worst first
    names = re.findall(r"class='nm'>tile_(\d)", text)
    assert names == ["5", "4", "3", "2", "1", "0"]
    # no temporary files left behind
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]


def test_report_max_items_best_first_rgb_and_paths(tmp_path: Path) -> None:
    items = _items(5, bands=3)
    img = (np.random.default_rng(1).random((40, 40, 3)) * 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "img.png")
    Image.fromarray(np.eye(40, dtype=np.uint8) * 255).save(tmp_path / "m.png")
    items.append(ReportItem("from_files", image=tmp_path / "img.png", output=tmp_path / "m.png"))
    path = write_report(tmp_path / "r.html", items, title="t", max_items=3, order="best")
    text = path.read_text(encoding="utf-8")
    names = re.findall(r"class='nm'>([^<]+)<", text)
    assert names == ["tile_0&lt;b&gt;", "tile_1&lt;b&gt;", "tile_2&lt;b&gt;"]
    assert "3 of 6" in text


def test_report_without_scores(tmp_path: Path) -> None:
    items = [ReportItem(name=n, image=np.zeros((8, 8))) for n in ("b", "a")]
    text = write_report(tmp_path / "r.html", items, title="plain").read_text(encoding="utf-8")
    assert re.findall(r"class='nm'>([^<]+)<", text) == ["a", "b"]


def test_report_size_is_modest(tmp_path: Path) -> None:
    """200 noisy 256 px SAR tiles with 3 masks each stay well under 10 MB."""
    rng = np.random.default_rng(0)
    truth = np.zeros((256, 256), bool)
    truth[60:200, 40:220] = True
    items = [
        ReportItem(
            name=str(k),
            image=rng.gamma(1.0, 1.0, (1, 256, 256)).astype(np.float32),
            input_label=truth,
            output=truth,
            truth=truth,
            predicted_iou=rng.random(),
        )
        for k in range(200)
    ]
    size = write_report(tmp_path / "big.html", items, title="big").stat().st_size
    assert size < 10_000_000


def test_overlay_and_display() -> None:
    sar = np.random.default_rng(0).gamma(1.0, 1.0, (1, 20, 30)).astype(np.float32)
    sar[0, 0, 0] = np.nan
    rgb = display_rgb(sar)
    assert rgb.shape == (20, 30, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0].tolist() == [0, 0, 0]
    mask = np.zeros((20, 30), bool)
    mask[5:15, 5:15] = True
    ov = overlay_rgb(sar, mask, color=(255, 0, 0), alpha=0.5)
    assert ov.shape == (20, 30, 3)
    assert ov[5, 5].tolist() == [255, 0, 0]  # outline drawn solid
    assert np.array_equal(ov[~mask], rgb[~mask])  # outside the mask untouched
    # a half-size mask is resized to the image
    assert overlay_rgb(sar, mask[::2, ::2]).shape == (20, 30, 3)
    with pytest.raises(ValueError):
        display_rgb(np.zeros((2, 2, 2, 2)))


def test_write_run_report(tmp_path: Path) -> None:
    """Report of an annotate/enhance output folder, with true IoU from a truth folder."""
    import csv
    import json

    from sam2elnet.pipeline.report import write_run_report

    run, truth = tmp_path / "run", tmp_path / "gt"
    (run / "labels").mkdir(parents=True)
    (run / "rejected").mkdir()
    truth.mkdir()
    rows = []
    for k in range(3):
        m = np.zeros((20, 20), np.uint8)
        m[2 : 18 - 3 * k, 2:18] = 255
        rel = f"{'labels' if k < 2 else 'rejected'}/{k}_sat.png"
        Image.fromarray(m).save(run / rel)
        t = np.zeros((20, 20), np.uint8)
        t[2:18, 2:18] = 255
        Image.fromarray(t).save(truth / f"{k}_mask.png")
        Image.fromarray(np.full((20, 20), 90, np.uint8)).save(tmp_path / f"{k}_sat.png")
        rows.append(
            {
                "image": str(tmp_path / f"{k}_sat.png"),
                "label": rel,
                "predicted_iou": 0.9 - 0.2 * k,
                "kept": k < 2,
            }
        )
    with (run / "quality.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (run / "summary.json").write_text(
        json.dumps({"task": "annotate", "threshold": 0.6, "n_images": 3})
    )
    path = write_run_report(run, truth_dir=truth)
    assert path == run / "report.html"
    text = path.read_text(encoding="utf-8")
    assert "sam2elnet annotate" in text and "true IoU" in text and "rejected" in text
    assert text.count("class='card") == 3
