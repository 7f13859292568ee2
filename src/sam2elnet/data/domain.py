"""Which application domain a labelled dataset belongs to: roads (thin, connected line networks)
or anything else (oil slicks, buildings, fields, ...).

The domain switches on what the road-extraction field uses (road measures in every report, the
clDice topology loss, stronger augmentation). :func:`detect_domain` decides from facts in this
order, and says which one decided:

1. the CHN6-CUG layout (a road dataset) -> roads;
2. a ``dataset.json`` with ``"task": "road"`` (written by ``elnet synth --task road``) -> roads;
3. SAR modality -> other (the project's SAR data are oil-spill scenes);
4. the shape of the labels (optical or unknown data): up to ``max_masks`` masks with objects,
   evenly spread, are thinned to centre lines; a mask's *elongation* is the mean length of its
   connected centre-line pieces divided by its mean object width (area / centre-line length).
   The labels are roads when the median elongation is at least ``ELONGATION_MIN`` (long, thin,
   connected pieces). Calibration (percentiles 10/50/90 of per-mask elongation): roads-dev (ETH
   aerial roads) 17 / 37 / 94; sos-dev oil slicks 3.6 / 7.3 / 15; sos-2k 3.4 / 7.2 / 16; ellipses
   and building-like blobs stay below 3.

Override with ``domain="roads"`` / ``"other"`` (``--domain``) where the guess is wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

Domain = Literal["roads", "other"]
DOMAINS = ("auto", "roads", "other")
ELONGATION_MIN = 15.0

__all__ = ["DOMAINS", "DomainGuess", "detect_domain", "line_shape", "resolve_domain"]


@dataclass(frozen=True)
class DomainGuess:
    """The domain and why (one phrase for the log)."""

    domain: Domain
    reason: str

    @property
    def roads(self) -> bool:
        return self.domain == "roads"


def line_shape(mask: np.ndarray) -> tuple[float, float] | None:
    """(mean width / image side, mean centre-line piece length / image side) of a bool (H, W) mask.

    Width = object area / skeleton length; pieces are the 8-connected components of the skeleton
    (``skimage.morphology.skeletonize``). ``None`` for a mask without object or without background.
    """
    from scipy import ndimage
    from skimage.morphology import skeletonize

    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2 or not m.any() or m.all():
        return None
    sk = skeletonize(m)
    length = int(sk.sum())
    if length == 0:
        return None
    _, pieces = ndimage.label(sk, structure=np.ones((3, 3), dtype=bool))
    side = float(max(m.shape))
    return float(m.sum()) / length / side, length / max(pieces, 1) / side


def detect_domain(
    masks: Sequence[str | Path],
    layout: str | None = None,
    modality: str | None = None,
    meta: dict[str, Any] | None = None,
    positive_values: tuple[float, ...] | None = None,
    max_masks: int = 16,
) -> DomainGuess:
    """Guess the domain of a labelled set (see the module docstring for the rules).

    Args:
        masks: label files (any format :func:`sam2elnet.data.raster.read_mask` reads).
        layout: dataset layout ("chn6", "sos", "generic") or None.
        modality: "sar" / "optical" or None (unknown: the shape rule decides).
        meta: the dataset's ``dataset.json`` content, if any.
        positive_values: object value(s) of class-index masks.
        max_masks: at most this many masks are read (evenly spread over ``masks``).

    Unreadable masks are passed over (the training run reports them elsewhere).
    """
    from sam2elnet.data.raster import read_mask
    from sam2elnet.errors import DataError

    if layout == "chn6":
        return DomainGuess("roads", "CHN6-CUG road layout")
    task = str((meta or {}).get("task", "")).lower()
    if task in {"road", "roads"}:
        return DomainGuess("roads", f"dataset.json task {task!r}")
    if modality == "sar":
        return DomainGuess("other", "SAR data")
    paths = list(masks)
    if not paths:
        return DomainGuess("other", "no labels to look at")
    n = len(paths)
    first = np.unique(np.linspace(0, n - 1, min(n, max_masks)).astype(int)).tolist()
    spare = np.unique(np.linspace(0, n - 1, min(n, 4 * max_masks)).astype(int)).tolist()
    picks = first + [i for i in spare if i not in set(first)]  # evenly spread, then fill-ins
    shapes: list[tuple[float, float]] = []
    for i in picks:
        try:
            s = line_shape(read_mask(paths[int(i)], positive_values=positive_values))
        except DataError:
            continue
        if s is not None:
            shapes.append(s)
        if len(shapes) >= max_masks:
            break
    if len(shapes) < 3:
        return DomainGuess("other", f"only {len(shapes)} label(s) with objects to judge the shape")
    elongation = float(np.median([piece / max(width, 1e-9) for width, piece in shapes]))
    facts = f"median elongation {elongation:.1f} over {len(shapes)} labels"
    if elongation >= ELONGATION_MIN:
        return DomainGuess("roads", f"thin, connected labels: {facts}")
    return DomainGuess("other", f"labels are not line networks: {facts}")


def resolve_domain(choice: str, guess: DomainGuess | None) -> DomainGuess:
    """``choice`` ("auto" / "roads" / "other"): a forced choice wins over the guess."""
    if choice in {"roads", "other"}:
        return DomainGuess(choice, "chosen with --domain")  # type: ignore[arg-type]
    return guess or DomainGuess("other", "not detected")
