"""Synthetic scenes with exact ground truth, for tests, demos and measuring label enhancement.

Two tasks, each drawn by its own module: ``oil-spill`` (single-band SAR-like sea with slicks
and look-alikes, :mod:`sam2elnet.data.synthetic_sar`) and ``road`` (3-band aerial-like images
with a road network partly hidden by trees, :mod:`sam2elnet.data.synthetic_roads`); both return
a :class:`~sam2elnet.data.synthetic_scene.Scene`. This module picks the task
(:func:`make_scene`) and writes a dataset folder (:func:`generate_dataset`).

Everything is vectorised with numpy/OpenCV; one 256 px scene takes a few milliseconds.
Same seed, same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.data.coarse import degrade
from sam2elnet.data.synthetic_roads import road_scene
from sam2elnet.data.synthetic_sar import oil_spill_scene
from sam2elnet.data.synthetic_scene import Scene
from sam2elnet.data.writers import write_image, write_mask
from sam2elnet.errors import DataError
from sam2elnet.option_checks import option_default
from sam2elnet.options import SynthOptions
from sam2elnet.utils.atomic import write_json_atomic

GENERATOR_VERSION = "1.0"
TASKS = {"oil-spill": "sar", "road": "optical"}


def make_scene(
    task: str, size: int = 256, seed: int | np.random.Generator = 0, **params: Any
) -> Scene:
    """A synthetic scene of ``task`` ("oil-spill" or "road").

    Raises:
        DataError: ``task`` is none of :data:`TASKS`.
    """
    if task == "oil-spill":
        return oil_spill_scene(size, seed, **params)
    if task == "road":
        return road_scene(size, seed, **params)
    raise DataError(f"unknown synthetic task {task!r}; choose one of {', '.join(TASKS)}")


def _remove_stale(root: Path, count: int) -> None:
    """Delete items numbered >= count left by an earlier, larger run, so the folder matches dataset.json."""
    for sub in ("images", "masks", "coarse"):
        for f in (root / sub).glob("*.png"):
            if f.stem.isdigit() and int(f.stem) >= count:
                f.unlink()


def generate_dataset(
    out: str | Path,
    task: str = option_default(SynthOptions, "task"),
    count: int = option_default(SynthOptions, "count"),
    size: int = option_default(SynthOptions, "size"),
    seed: int = 0,
    coarse_profile: str = option_default(SynthOptions, "coarse_profile"),
    coarse_severity: float = option_default(SynthOptions, "coarse_severity"),
    progress: bool = True,
) -> Path:
    """Write ``count`` scenes in the generic layout (images/, masks/, coarse/) plus dataset.json.

    Item ``i`` depends only on (seed, i), so datasets of different counts share their first items.
    Returns the path of dataset.json.

    Raises:
        DataError: an unknown ``task``, ``count`` < 1, ``size`` < 32 px or ``out`` an existing
            file (before anything is written); an unknown ``coarse_profile`` or
            ``coarse_severity`` outside [0, 1] (at the first scene), or a file that cannot be
            written.
        UserError: ``out/dataset.json`` is a folder.
    """
    from sam2elnet.utils.progress import track

    if task not in TASKS:
        raise DataError(f"unknown synthetic task {task!r}; choose one of {', '.join(TASKS)}")
    if count < 1:
        raise DataError(f"count must be at least 1, got {count}")
    if size < 32:
        raise DataError(f"size must be at least 32 px, got {size}")
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise DataError("output path exists and is a file; choose a folder", root)
    ious = []
    n_empty = 0
    for i in track(range(count), f"synth {task}", "scene", progress):
        ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, i, 101])
        scene_ss, coarse_ss = ss.spawn(2)
        scene = make_scene(task, size, np.random.default_rng(scene_ss))
        coarse = degrade(
            scene.mask, coarse_profile, coarse_severity, np.random.default_rng(coarse_ss)
        )
        name = f"{i:05d}.png"
        write_image(root / "images" / name, scene.image)
        write_mask(root / "masks" / name, scene.mask)
        write_mask(root / "coarse" / name, coarse.mask)
        ious.append(coarse.iou)
        n_empty += int(not scene.mask.any())
    _remove_stale(root, count)
    meta = {
        "task": task,
        "modality": TASKS[task],
        "layout": "generic",
        "count": count,
        "size": size,
        "seed": seed,
        "generator": "sam2elnet.data.synthetic",
        "generator_version": GENERATOR_VERSION,
        "coarse": {
            "profile": coarse_profile,
            "severity": coarse_severity,
            "mean_iou": round(float(np.mean(ious)), 6),
        },
        "empty_masks": n_empty,
    }
    return write_json_atomic(root / "dataset.json", meta)
