"""A small annotate-like run folder for the review-loop tests (Label Studio, CVAT/COCO, GPKG)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from helpers_data import write_png, write_tif


def label_mask(h: int, w: int, seed: int) -> np.ndarray:
    """Bool mask with a holed rectangle, a disc and a speck (edge cases for RLE and polygons)."""
    rng = np.random.default_rng(seed)
    m = np.zeros((h, w), bool)
    r0, c0 = rng.integers(2, h // 3), rng.integers(2, w // 3)
    m[r0 : r0 + h // 3, c0 : c0 + w // 3] = True
    m[r0 + 3 : r0 + 6, c0 + 3 : c0 + 6] = False  # hole
    yy, xx = np.mgrid[:h, :w]
    m[((yy - 2 * h // 3) ** 2 + (xx - 2 * w // 3) ** 2) < (h // 6) ** 2] = True
    m[h - 2, 1] = True
    return m


def make_run(root: Path, scores: dict[str, float], h: int = 40, w: int = 48) -> Path:
    """``root/images/*.tif`` (uint16, georeferenced) + ``root/run/{labels,rejected}/*.tif``,
    ``quality.csv`` (image, label, predicted_iou, kept) and ``summary.json``, like ``elnet annotate``.

    Labels with a score below 0.5 go to ``rejected/``. Returns the run folder.
    """
    run = root / "run"
    rows = []
    for i, (name, q) in enumerate(scores.items()):
        img = np.random.default_rng(i).integers(100, 4000, (3, h, w)).astype(np.uint16)
        src = write_tif(root / "images" / f"{name}.tif", img)
        kept = q >= 0.5
        lab = label_mask(h, w, i).astype(np.uint8)[None] * 255
        sub = "labels" if kept else "rejected"
        write_tif(run / sub / f"{name}.tif", lab, nodata=127)
        rows.append(
            {"image": str(src), "label": f"{sub}/{name}.tif", "predicted_iou": q, "kept": kept}
        )
    with open(run / "quality.csv", "w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=list(rows[0]))
        wr.writeheader()
        wr.writerows(rows)
    (root / "model.pt").write_bytes(b"not a real model")
    (run / "summary.json").write_text(
        json.dumps({"task": "annotate", "model": str(root / "model.pt")})
    )
    return run


def make_png_images(root: Path, names: list[str], h: int = 32, w: int = 36) -> Path:
    """Plain 8-bit PNG images (no georeference)."""
    for i, n in enumerate(names):
        write_png(
            root / "pngs" / f"{n}.png",
            np.random.default_rng(i).integers(0, 255, (h, w, 3)).astype(np.uint8),
        )
    return root / "pngs"
