"""Label quality of the int8 trunk (``bench_infer --levers int8-trunk``) vs the model as shipped.

Loads a trained model file twice through the product's :class:`~sam2elnet.engine.predictor.Predictor`:
once as shipped (``--precision auto``, TTA views of its quality evaluator) and once in float32 with
the frozen trunk's ``nn.Linear`` layers dynamically quantised to int8
(``common.quantize_int8_trunk``). Both label the same images (read and normalised once, with
``Predictor.read``), alternately (shipped, int8, shipped, ...; ``--rounds``). Labels are
``probability > 0.5`` inside the image's valid pixels, as ``elnet annotate`` writes them; ground
truth is read with ``read_binary_mask`` and scored with ``engine.metrics`` like ``elnet evaluate``.

Prints: aggregate oil IoU (pixel-summed confusion, ``elnet evaluate``'s ``iou``) of each against the
ground truth and their difference; the per-image agreement IoU between the two label sets (mean,
min and its image) and the share of equal label pixels; the largest absolute probability and
predicted-IoU (quality score) differences; the wall and CPU seconds of each side (median of the
rounds, after one warm-up image each). Timings on a busy machine are not to be trusted: use
``bench_infer.py --levers default int8-trunk`` on a quiet one.

Usage::

    python benchmarks/int8_agreement.py --model run/model.pt \\
        --images ../shared/data/sos-dev/train/palsar ../shared/data/sos-dev/train/sentinel \\
        --masks ../shared/data/sos-dev/train --exclude-split run/splits.json --limit 40

``--images`` takes folders (SOS layout: ``<id>_sat.jpg`` next to ``<id>_mask.png`` is fine) or
files; ``--masks`` a folder searched like ``elnet evaluate --truth`` (sub-folders too), paired by
name (``<id>_sat.jpg`` <-> ``<id>_mask.png``). ``--limit N`` takes N pairs at even spacing over the
sorted list (so every sensor folder contributes). ``--exclude-split`` skips the ``train`` and
``val`` ids of a training run's ``splits.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import common  # noqa: F401  (first: the product's thread policy before torch loads OpenMP)

# isort: split
import numpy as np
from common import machine, quantize_int8_trunk

from sam2elnet.errors import UserError


def _pairs(images: list[str], masks: str, exclude: str | None) -> list[tuple[Path, Path]]:
    """(image, mask) pairs by :func:`mask_key`, sorted by image path; UserError when none."""
    from sam2elnet.data.naming import list_images, mask_key
    from sam2elnet.engine.eval_inputs import scan_masks

    truths = scan_masks(Path(masks), "masks")
    skip: set[str] = set()
    if exclude:
        try:
            split = json.loads(Path(exclude).read_text())
            skip = {str(i) for k in ("train", "val") for i in split.get(k) or []}
        except (OSError, ValueError, AttributeError) as err:
            raise UserError(
                f"cannot read the train / val ids ({err.__class__.__name__}); give the "
                "splits.json of a training run",
                exclude,
            ) from None
    files = sorted({f for folder in images for f in list_images(folder)})
    pairs = [
        (f, truths[mask_key(f.name)])
        for f in files
        if mask_key(f.name) in truths and mask_key(f.name) not in skip
    ]
    if not pairs:
        raise UserError(
            f"no image of --images has a mask in {masks} (paired by name, e.g. 10791_sat.jpg <-> "
            f"10791_mask.png{', not in --exclude-split' if skip else ''}); check both paths"
        )
    return pairs


def _even(items: list, limit: int | None) -> list:
    if not limit or limit >= len(items):
        return items
    idx = sorted({int(round(i)) for i in np.linspace(0, len(items) - 1, limit)})
    return [items[i] for i in idx]


def run(args: argparse.Namespace) -> dict:
    """Label ``args``' images both ways; return the numbers :func:`main` prints."""
    from sam2elnet.engine.eval_stream import read_binary_mask
    from sam2elnet.engine.metrics import Confusion, confusion, iou_per_sample, scores
    from sam2elnet.engine.predictor import Predictor

    pairs = _even(_pairs(args.images, args.masks, args.exclude_split), args.limit)
    kw = {"batch_size": args.batch, "tta": args.tta}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unfitted quality evaluator etc.: same for both sides
        preds = {
            "shipped": Predictor.from_file(args.model, **kw),
            "int8": Predictor.from_file(args.model, precision="32", **kw),
        }
    quantize_int8_trunk(preds["int8"].model)  # in place: .net is the same module
    xs, valids, truths, names = [], [], [], []
    for img, mask in pairs:
        _, x, valid = preds["shipped"].read(img)
        truth = read_binary_mask(mask)
        if truth.shape != valid.shape:
            raise UserError(f"mask is {truth.shape} px but its image {valid.shape}", mask)
        xs.append(x)
        valids.append(valid)
        truths.append(truth)
        names.append(img.name)
    for p in preds.values():  # warm-up (one-off kernel and weight-packing set-up)
        p.predict(xs[:1], valid=valids[:1])
    wall: dict[str, list[float]] = {k: [] for k in preds}
    cpu: dict[str, list[float]] = {k: [] for k in preds}
    out = {}
    for _ in range(args.rounds):
        for k, p in preds.items():
            t, c = time.perf_counter(), time.process_time()
            out[k] = p.predict(xs, valid=valids)
            wall[k].append(time.perf_counter() - t)
            cpu[k].append(time.process_time() - c)
    labels = {
        k: [(pr > 0.5) & v for pr, v in zip(o[0], valids, strict=True)] for k, o in out.items()
    }
    iou = {
        k: scores(sum((confusion(lb, t) for lb, t in zip(ls, truths, strict=True)), Confusion()))[
            "iou"
        ]
        for k, ls in labels.items()
    }
    agree = np.array(
        [
            float(iou_per_sample(a[None], b[None])[0])
            for a, b in zip(labels["shipped"], labels["int8"], strict=True)
        ]
    )
    equal = sum(int((a == b)[v].sum()) for a, b, v in zip(*labels.values(), valids, strict=True))
    probs = zip(out["shipped"][0], out["int8"][0], strict=True)
    return {
        "images": len(pairs),
        "precision_shipped": preds["shipped"].precision,
        "tta": preds["shipped"].tta,
        "iou_shipped": iou["shipped"],
        "iou_int8": iou["int8"],
        "iou_diff": iou["int8"] - iou["shipped"],
        "agreement_iou_mean": float(agree.mean()),
        "agreement_iou_min": float(agree.min()),
        "agreement_iou_min_image": names[int(agree.argmin())],
        "equal_label_pixels": equal / max(1, sum(int(v.sum()) for v in valids)),
        "max_abs_prob_diff": max(float(np.abs(a - b).max()) for a, b in probs),
        "max_abs_quality_diff": float(
            np.abs(out["shipped"][1].predicted_iou - out["int8"][1].predicted_iou).max()
        ),
        "wall_s": {k: statistics.median(v) for k, v in wall.items()},
        "cpu_s": {k: statistics.median(v) for k, v in cpu.items()},
        "rounds": args.rounds,
    }


def report(r: dict) -> None:
    """Print :func:`run`'s numbers."""
    print(
        f"{r['images']} images; as shipped: precision {r['precision_shipped']}, {r['tta']} TTA "
        "views; int8: float32 + int8 trunk linears, same views"
    )
    print(f"aggregate oil IoU vs truth: shipped {r['iou_shipped']:.4f}, int8 {r['iou_int8']:.4f}")
    print(f"  difference (int8 - shipped): {r['iou_diff']:+.4f}")
    print(
        f"agreement IoU int8 vs shipped labels: mean {r['agreement_iou_mean']:.4f}, min "
        f"{r['agreement_iou_min']:.4f} ({r['agreement_iou_min_image']}); equal label pixels "
        f"{r['equal_label_pixels']:.4%}"
    )
    print(
        f"max |probability difference| {r['max_abs_prob_diff']:.4f}; max |predicted-IoU "
        f"difference| {r['max_abs_quality_diff']:.4f}"
    )
    for k in ("shipped", "int8"):
        print(
            f"time {k:<8} wall {r['wall_s'][k]:8.2f} s  CPU {r['cpu_s'][k]:8.2f} s  (median of "
            f"{r['rounds']} alternated round(s))"
        )
    print(f"int8 / shipped: wall {r['wall_s']['shipped'] / r['wall_s']['int8']:.2f}x faster")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="a model file written by `elnet train`")
    ap.add_argument("--images", nargs="+", required=True, help="image folders or files")
    ap.add_argument("--masks", required=True, help="ground-truth mask folder (searched below)")
    ap.add_argument("--limit", type=int, default=None, help="at most N pairs, even spacing")
    ap.add_argument("--exclude-split", help="skip the train / val ids of this splits.json")
    ap.add_argument("--rounds", type=int, default=1, help="alternated timed rounds (default 1)")
    ap.add_argument("--batch", type=int, default=8, help="images per forward (product default 8)")
    ap.add_argument("--tta", type=int, default=None, help="views (default: the model's own)")
    ap.add_argument("--json", help="write the numbers here")
    args = ap.parse_args(argv)
    print(f"machine: {machine()}")
    try:
        r = run(args)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    report(r)
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
