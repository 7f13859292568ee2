"""Per-window predicted IoU of ``elnet scene --quality-gpkg`` on a mosaic of tiles: where it holds.

Scores windows of a scene the way ``scene`` does (:class:`~sam2elnet.engine.scene_inputs.
SceneInputs` reads and normalises them, ``Predictor.predict`` scores each window's own
probabilities over its valid pixels at native resolution) and compares each with its true IoU
(``probability >= 0.5`` against ``--truth``, a 0/255 GeoTIFF on the scene's grid). Only windows
without nodata are kept, so a nodata border plays no part. Cases: windows aligned with the
mosaic's tiles (``--tile-px``), the same windows shifted by half a tile (across the seams),
windows of two tiles aligned (four tiles each), half-tile windows aligned, and, seam-free, each
aligned tile against the 2x-larger window made of it and its mirror images (continuous at every
joint, the same truth mirrored) and against the tile upscaled 2x. Prints per case: windows, mean
predicted and true IoU, Spearman between them.

Usage::

    python benchmarks/scene_window_quality.py --model runs/db/model.pt \\
        --image data/s1_db_utm.tif --truth data/s1_truth.tif --tile-px 256
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import rasterio
from scipy.stats import spearmanr

from sam2elnet.data.tiling import Window
from sam2elnet.engine.metrics.pixel import iou_per_sample
from sam2elnet.engine.predictor import Predictor
from sam2elnet.engine.scene_inputs import SceneInputs


def _true_ious(probs: list[np.ndarray], truth: list[np.ndarray], valid: list[np.ndarray]) -> list:
    """True IoU of each window: ``probability >= 0.5`` against its truth over its valid pixels
    (``(H, W)`` each; 1.0 when both are empty), by the product's
    :func:`~sam2elnet.engine.metrics.pixel.iou_per_sample`."""
    fg = np.stack([np.asarray(p) >= 0.5 for p in probs])
    return iou_per_sample(fg, np.stack(truth), np.stack(valid)).tolist()


def _windows(pred: Predictor, image: str, size: int, step: int, off: int) -> list:
    with SceneInputs(image, pred) as inp:
        wins = [
            Window(r, c, size, size)
            for r in range(off, inp.height - size + 1, step)
            for c in range(off, inp.width - size + 1, step)
        ]
        return [it for it in inp.read_windows(wins) if it[2].mean() >= 0.99]


def _mirror(a: np.ndarray) -> np.ndarray:
    top = np.concatenate([a, a[..., ::-1]], -1)
    return np.ascontiguousarray(np.concatenate([top, top[..., ::-1, :]], -2))


def _line(name: str, s: list[float], t: list[float]) -> None:
    sp = spearmanr(s, t).statistic
    print(
        f"{name}: n {len(s)} mean predicted {np.mean(s):.3f} true {np.mean(t):.3f} Spearman {sp:.3f}"
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--truth", required=True)
    ap.add_argument("--tile-px", type=int, default=256, help="size of the mosaic's tiles")
    a = ap.parse_args(argv)
    pred = Predictor.from_file(a.model, device="cpu")
    with rasterio.open(a.truth) as src:
        truth = src.read(1) > 127
    n = a.tile_px
    cases = {
        f"{n} px aligned with the tiles": (n, n, 0),
        f"{n} px shifted by {n // 2} (across seams)": (n, n, n // 2),
        f"{2 * n} px aligned (2x2 tiles)": (2 * n, 2 * n, 0),
        f"{n // 2} px aligned (quarter tiles)": (n // 2, n // 2, 0),
    }
    aligned: list = []  # the windows of the tiles, read once for the seam-free cases too
    for name, (size, step, off) in cases.items():
        s, t = [], []
        items = _windows(pred, a.image, size, step, off)
        if (size, step, off) == (n, n, 0):
            aligned = items
        for i in range(0, len(items), 8):
            chunk = items[i : i + 8]
            xs = [x for _w, x, _v, _c in chunk]
            probs, q = pred.predict(xs, valid=[v.astype(np.float32) for _w, _x, v, _c in chunk])
            s += [float(v) for v in q.predicted_iou]
            t += _true_ious(probs, [truth[w.slices] for w, *_ in chunk], [c[2] for c in chunk])
        _line(name, s, t)
    seamfree: dict[str, tuple[list[float], list[float]]] = {}
    for w, x, _v, _c in aligned[::2]:
        tt = truth[w.slices]
        up = np.stack([cv2.resize(b, (2 * n, 2 * n), interpolation=cv2.INTER_LINEAR) for b in x])
        tu = cv2.resize(tt.astype(np.uint8), (2 * n, 2 * n), interpolation=cv2.INTER_NEAREST) > 0
        for k, xx, tk in (
            ("tile alone", x, tt),
            (f"tile mirrored to {2 * n} px (seam-free)", _mirror(x), _mirror(tt)),
            ("tile upscaled 2x", up, tu),
        ):
            p, q = pred.predict([xx])
            seamfree.setdefault(k, ([], []))
            seamfree[k][0].append(float(q.predicted_iou[0]))
            seamfree[k][1].extend(_true_ious(p, [tk], [np.ones_like(tk)]))
    for k, (s, t) in seamfree.items():
        _line(k, s, t)
    a0, a1 = (np.array(v[0]) for v in list(seamfree.values())[:2])
    print(
        f"tile vs mirrored: mean |predicted difference| {np.abs(a0 - a1).mean():.3f}, "
        f"Spearman {spearmanr(a0, a1).statistic:.3f}"
    )


if __name__ == "__main__":
    main()
