"""Every batch that holds back ``skipping`` warnings (after :data:`WARN_EACH` of a reason) says
the rest in its summary warning: export, train and stats too, whose skip lists were written from
a copy of the items (``SkipLog(what, items)``) or not at all, so the files after the first three
of a reason went unmentioned (found in review: six corrupt labels given to ``elnet export``
printed three ``skipping`` lines and nothing for the other three)."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
from helpers_data import make_dataset, small_cfg

CORRUPT = "cannot decode image (corrupt, truncated or not an image); re-export it or remove it"


def _summaries(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "more " in r.getMessage()]


def test_export_names_the_labels_after_the_first_three(tmp_path: Path, caplog) -> None:
    from sam2elnet.export.api import export_labels

    labels = tmp_path / "labels"
    labels.mkdir()
    m = np.zeros((32, 32), np.uint8)
    m[8:20, 8:20] = 255
    cv2.imwrite(str(labels / "good.png"), m)
    for k in range(1, 6):
        (labels / f"bad{k}.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    caplog.set_level(logging.WARNING)
    res = export_labels(labels, tmp_path / "out" / "labels.gpkg", progress=False)
    assert res.skipped_csv == tmp_path / "out" / "labels_gpkg_skipped.csv"
    assert _summaries(caplog) == [
        f"skipping 2 more labels for the reason given above ({CORRUPT}): bad4.png, bad5.png; "
        f"all listed in {res.skipped_csv}"
    ]


def test_train_names_the_pairs_after_the_first_three(tmp_path: Path, caplog) -> None:
    from sam2elnet.engine.train import train

    data = make_dataset(tmp_path / "data", n=10, size=32)
    for k in range(5):
        (data / "images" / f"s0{k}.png").write_bytes(b"not a png")
    caplog.set_level(logging.WARNING)
    train(small_cfg(data, tmp_path / "run", fit_quality=False))
    (summary,) = _summaries(caplog)
    assert summary.startswith("skipping 2 more images for the reason given above (")
    held, listed = summary.split("): ")[-1].split("; all listed in ")
    assert listed == str(tmp_path / "run" / "skipped.csv")
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipping /")]
    named = {Path(s.split(": ")[0].split()[1]).name for s in said} | set(held.split(", "))
    assert named == {f"s0{k}.png" for k in range(5)}  # the three warned and the two held


def test_stats_names_the_pairs_after_the_first_three(tmp_path: Path, caplog) -> None:
    from sam2elnet.data.stats import dataset_stats

    data = make_dataset(tmp_path / "data", n=9, size=32)
    for k in range(5):
        (data / "images" / f"s0{k}.png").write_bytes(b"not a png")
    caplog.set_level(logging.WARNING)
    st = dataset_stats(data, check=True, progress=False)
    assert len(st.skipped) == 5
    (summary,) = _summaries(caplog)
    assert summary.startswith("skipping 2 more files for the reason given above (")
    assert summary.endswith("): s03.png, s04.png")


def test_export_warp_names_the_labels_after_the_first_three(tmp_path: Path, caplog) -> None:
    """--warp-to: labels that cannot be warped are skipped before the export proper (their own
    skip log, its items handed on); the ones after the first three are named too."""
    from helpers_data import write_tif

    from sam2elnet.export.api import export_labels

    labels = tmp_path / "labels"
    labels.mkdir()
    m = np.zeros((1, 32, 32), np.uint8)
    m[0, 8:20, 8:20] = 255
    write_tif(labels / "geo.tif", m, 127)  # EPSG:32633, 10 m pixels
    for k in range(1, 6):
        (labels / f"plain{k}.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    caplog.set_level(logging.WARNING)
    res = export_labels(labels, tmp_path / "out" / "labels.gpkg", warp_to="utm", progress=False)
    assert res.skipped_csv is not None and len(res.skipped) == 5
    (summary,) = _summaries(caplog)
    assert summary.startswith("skipping 2 more labels for the reason given above (")
    assert summary.endswith(f"): plain4.png, plain5.png; all listed in {res.skipped_csv}")
