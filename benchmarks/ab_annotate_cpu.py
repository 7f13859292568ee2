"""CPU milliseconds per image of ``annotate`` end to end and of the bare forward, in one process,
with parts of an earlier revision patched back in: an A/B of the work around the network that
load on a shared machine disturbs far less than wall time.

``annotate_folder`` is called as ``bench_infer.py``'s annotate row calls it (synthetic SAR PNGs,
Hiera-tiny with random weights, batch 8, one view, the predictor passed in), alternately with the
bare forward on the same normalised images (in annotate's batches) and with each *variant*: ``new`` (this tree),
``bare`` (the forward only), or ``+``-joined lever names whose functions are taken from the
earlier revision's source (``--old-src``, e.g. ``git archive e5adc64 src | tar -x -C /tmp/old``):

* ``features``: ``engine.runtime.run_model`` with that revision's quality features, input flags
  and finiteness checks;
* ``inputrange``: ``data.input_range.check_input_range`` as the image reads call it;
* ``nomask``: ``Predictor.predict`` (all-valid batches sent with a mask of ones).

Printed: the CPU ms per image (``time.process_time``, all threads of this process) of each, in
its fastest round (the least disturbed by other load: the steadier figure on a busy machine) and
its median round, the excess over the bare forward, and whether each variant's labels are byte-identical to
``new``'s and its ``quality.csv`` identical (its rows matched by the image's name under the
images folder, :func:`quality_rows`, not by the absolute path annotate records). Run it with ``SAM2ELNET_THREADS=1`` so that the
forward and the work around it are counted alike.

Usage::

    SAM2ELNET_THREADS=1 python benchmarks/ab_annotate_cpu.py --old-src /tmp/old/src \\
        --variants bare features+inputrange+nomask new --rounds 15
    SAM2ELNET_THREADS=1 python benchmarks/ab_annotate_cpu.py --old-src /tmp/old/src --parts \\
        --variants features+inputrange+nomask --rounds 20     # the changed parts alone

``--parts`` is the steadier figure on a busy machine: the job's own noise (file I/O, the other
parts) stays out of it.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import itertools
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import common  # noqa: F401  (first: the product's thread policy before torch loads OpenMP)

# isort: split
import numpy as np
import torch
from common import alternate_rounds, build_ours, save_ours, write_images


def _load_old(src: Path, name: str, rel: str) -> Any:
    """The module file ``rel`` of the earlier revision under ``src`` (its imports resolve to this
    tree's package)."""
    spec = importlib.util.spec_from_file_location(name, src / "sam2elnet" / rel)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _levers(src: Path) -> dict[str, list[tuple[Any, str, Any]]]:
    """Lever name -> ``(object, attribute, earlier value)`` to patch."""
    import sam2elnet.data.zero_pixels as zero_pixels
    import sam2elnet.engine.predictor as predictor

    qf = _load_old(src, "old_quality_features", "model/quality_features.py")
    rt = _load_old(src, "old_runtime", "engine/runtime.py")
    rt.input_flags, rt.uncertainty_features = qf.input_flags, qf.uncertainty_features
    ir = _load_old(src, "old_input_range", "data/input_range.py")
    pr = _load_old(src, "old_predictor", "engine/predictor.py")
    return {
        "features": [(predictor, "run_model", rt.run_model)],
        "inputrange": [(zero_pixels, "check_input_range", ir.check_input_range)],
        "nomask": [(predictor.Predictor, "predict", pr.Predictor.predict)],
    }


@contextlib.contextmanager
def _patched(levers: dict, names: list[str]) -> Iterator[None]:
    saved = []
    for name in names:
        for obj, attr, value in levers[name]:
            saved.append((obj, attr, getattr(obj, attr)))
            setattr(obj, attr, value)
    try:
        yield
    finally:
        for obj, attr, value in reversed(saved):
            setattr(obj, attr, value)


def _parts(args: argparse.Namespace, levers: dict, pred: Any, files: list[Path]) -> int:
    """``--parts``: CPU ms per image of reading the images and of predicting them, each
    variant (not ``bare``) alternated with ``new`` after one warm-up round
    (:func:`common.alternate_rounds`); predictions checked equal bit for bit."""
    loaded = [pred.read(f) for f in files]
    xs, valid = [it[1] for it in loaded], [it[2] for it in loaded]
    variants = ["new", *(v for v in args.variants if v not in ("bare", "new"))]

    def predict(v: str) -> tuple:
        with _patched(levers, [] if v == "new" else v.split("+")):
            return pred.predict(xs, valid=valid)

    def read(v: str) -> list:
        with _patched(levers, [] if v == "new" else v.split("+")):
            return [pred.read(f) for f in files]

    ref = predict("new")
    for v in variants[1:]:
        got = predict(v)
        same = all(np.array_equal(a, b) for a, b in zip(got[0], ref[0], strict=True))
        same = same and np.array_equal(got[1].features, ref[1].features)
        print(f"{v}: probabilities and features equal bit for bit {same}")
    fns = {
        (part, v): functools.partial(fn, v)
        for v in variants
        for part, fn in (("read", read), ("predict", predict))
    }
    times = alternate_rounds(fns, args.rounds, time.process_time)
    n = len(files)
    print(f"{args.size} px, {n} images, {args.rounds} rounds: CPU ms / image, fastest and median")
    for (part, v), t in times.items():
        print(f"  {part:8s} {v:30s} {1e3 * min(t) / n:8.2f} {1e3 * statistics.median(t) / n:8.2f}")
    return 0


def quality_rows(table: Path, images: Path) -> dict[str, dict[str, str]]:
    """The rows of a job's ``quality.csv`` keyed by each image's name relative to ``images``
    (the ``--images`` folder of that job; its file name when it lies elsewhere), the ``image``
    column itself so written: ``annotate`` records absolute image paths, which differ between
    two jobs run on copies of the images in different folders (two revisions, two work
    folders) although the rows match. The other columns as written (``label`` / ``prob`` are
    relative to the run folder)."""
    import csv
    import os

    root = os.path.abspath(images)
    rows: dict[str, dict[str, str]] = {}
    with table.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            path = os.path.abspath(row["image"])  # an older relative one: of the working folder
            inside = os.path.commonpath([path, root]) == root
            key = Path(os.path.relpath(path, root)).as_posix() if inside else Path(path).name
            rows[key] = {**row, "image": key}
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old-src", type=Path, help="the earlier revision's src/ folder")
    ap.add_argument("--size", type=int, default=256, help="image size in px (square)")
    ap.add_argument("--n", type=int, default=None, help="images (default 8 <= 256 px, else 4)")
    ap.add_argument("--rounds", type=int, default=9, help="alternating timed rounds")
    ap.add_argument("--variants", nargs="+", default=["bare", "new"])
    ap.add_argument(
        "--parts",
        action="store_true",
        help="time the changed parts alone instead of the job: reading the images "
        "(Predictor.read) and predicting them (Predictor.predict: forward, checks, quality "
        "features), each variant against new",
    )
    args = ap.parse_args(argv)
    from sam2elnet.engine.infer import annotate_folder
    from sam2elnet.engine.predictor import Predictor

    names = {n for v in args.variants if v not in ("bare", "new") for n in v.split("+")}
    if names and args.old_src is None:
        ap.error("levers need --old-src")
    levers = _levers(args.old_src) if names else {}
    if unknown := names - set(levers):
        ap.error(f"unknown levers: {sorted(unknown)}; known: {sorted(levers)}")
    n = args.n or (8 if args.size <= 256 else 4)
    work = Path(tempfile.mkdtemp(prefix="ab_annotate_"))
    images = work / "img"
    files = write_images(images, n, args.size)
    model = save_ours(build_ours("tiny"), work / "model.pt")
    pred = Predictor.from_file(model, batch_size=8, tta=0)
    if args.parts:
        code = _parts(args, levers, pred, files)
        shutil.rmtree(work, ignore_errors=True)
        return code
    xs = torch.from_numpy(np.stack([pred.read(f)[1] for f in files]))
    count = itertools.count()
    step = pred.fit_batch(args.size * args.size)  # annotate's batch (2 at 512 px, bf16)
    last: dict[str, Path] = {}  # each variant's latest output folder (all removed at the end)

    def bare() -> None:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            for s in range(0, n, step):
                torch.sigmoid(pred.net(xs[s : s + step]).logits.float())

    def run(variant: str) -> None:
        if variant == "bare":
            bare()
            return
        out = work / f"{variant}-{next(count)}"
        with _patched(levers, [] if variant == "new" else variant.split("+")):
            annotate_folder(model, files, out, predictor=pred, progress=False)
        last[variant] = out  # nothing removed here: the round is being timed

    times = alternate_rounds(
        {v: functools.partial(run, v) for v in args.variants}, args.rounds, time.process_time
    )
    print(f"{args.size} px, {n} images, {args.rounds} rounds, {torch.get_num_threads()} thread(s)")
    print("CPU ms / image (over the bare forward): the fastest round, the median round")
    for stat in (min, statistics.median):
        ms = {v: 1e3 * stat(t) / n for v, t in times.items()}
        for v in args.variants:
            extra = f"{ms[v] - ms['bare']:8.2f}" if "bare" in ms and v != "bare" else ""
            print(f"  {stat.__name__:6s} {v:30s} {ms[v]:8.2f}  {extra}")
    ref = last.get("new")
    for v, out in last.items():
        if ref is None or v == "new":
            continue
        same = all(
            (out / p.relative_to(ref)).read_bytes() == p.read_bytes() for p in ref.rglob("*.png")
        )
        # rows matched by the image's name under the images folder, not its absolute path
        q_same = quality_rows(ref / "quality.csv", images) == quality_rows(
            out / "quality.csv", images
        )
        print(f"{v}: labels byte-identical {same}, quality.csv identical {q_same}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
