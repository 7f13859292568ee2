"""Picture grids of synthetic scenes (image / exact mask / coarse label) for docs and sanity checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sam2elnet.data.coarse import PROFILES, degrade
from sam2elnet.data.synthetic import make_scene
from sam2elnet.utils.atomic import atomic_path


def _show(ax, img: np.ndarray, title: str | None) -> None:
    if img.ndim == 3:
        img = img[0] if img.shape[0] == 1 else np.moveaxis(img, 0, 2)
    ax.imshow(
        img, cmap="gray", vmin=0, vmax=255 if img.dtype == np.uint8 else 1, interpolation="nearest"
    )
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


def preview_grid(
    task: str,
    out: str | Path,
    n: int = 4,
    size: int = 128,
    seed: int = 0,
    profile: str = "mixed",
    severity: float = 0.5,
) -> Path:
    """Save an n-row grid: synthetic image | exact mask | simulated coarse label (with its IoU)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(n, 3, figsize=(4.2, 1.45 * n), dpi=90, squeeze=False)
    for r in range(n):
        sc = make_scene(task, size, seed + r)
        co = degrade(sc.mask, profile, severity, seed + r)
        top = r == 0
        _show(axes[r, 0], sc.image, "image" if top else None)
        _show(axes[r, 1], sc.mask.astype(np.float32), "exact mask" if top else None)
        _show(
            axes[r, 2],
            co.mask.astype(np.float32),
            f"coarse ({profile}) IoU {co.iou:.2f}" if top else f"IoU {co.iou:.2f}",
        )
    fig.tight_layout(pad=0.3)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(out)


def profiles_grid(
    task: str,
    out: str | Path,
    size: int = 128,
    seed: int = 0,
    severities: tuple[float, ...] = (0.25, 0.5, 1.0),
) -> Path:
    """Save a grid of every coarse profile (rows) at several severities (columns) on one scene."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sc = make_scene(task, size, seed)
    fig, axes = plt.subplots(
        len(PROFILES),
        len(severities) + 1,
        figsize=(1.3 * (len(severities) + 1), 1.35 * len(PROFILES)),
        dpi=90,
        squeeze=False,
    )
    for r, prof in enumerate(PROFILES):
        _show(axes[r, 0], sc.mask.astype(np.float32), "exact" if r == 0 else None)
        axes[r, 0].set_ylabel(prof, fontsize=8)
        for c, sev in enumerate(severities, start=1):
            res = degrade(sc.mask, prof, sev, seed)
            _show(axes[r, c], res.mask.astype(np.float32), f"s={sev:g} IoU {res.iou:.2f}")
    fig.tight_layout(pad=0.3)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(out)
