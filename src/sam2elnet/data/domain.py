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

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sam2elnet.utils.advice import plural

Domain = Literal["roads", "other"]
ELONGATION_MIN = 15.0
#: the end of the reason :func:`detect_domain` gives when too few labels have objects to judge
#: their shape (``elnet evaluate`` then says the road measures are off, and how to turn them on)
UNJUDGED = "with objects to judge the shape"

__all__ = [
    "AppearanceSplit",
    "DomainGuess",
    "UNJUDGED",
    "appearance_features",
    "appearance_split",
    "category_name",
    "detect_domain",
    "line_shape",
    "median_width_px",
    "resolve_domain",
    "road_measures_wanted",
]


@dataclass(frozen=True)
class DomainGuess:
    """The domain and why (one phrase for the log)."""

    domain: Domain
    reason: str
    #: the user chose the domain (``--domain``), so the log line need not say how to override it
    given: bool = False

    @property
    def roads(self) -> bool:
        return self.domain == "roads"


CATEGORY_NAMES = {"roads": "road", "road": "road", "oil-spill": "oil spill"}
"""Object category names of the domains and synthetic tasks (``dataset.json`` ``"task"``)."""


def category_name(
    domain: str | None, modality: str | None = None, task: str | None = None
) -> str | None:
    """The object category of labels of a domain, for exports (COCO category, Label Studio label).

    Args:
        domain: ``"roads"`` / ``"other"`` as a model records it (``extra.train.domain``), or None.
        modality: ``"sar"`` / ``"optical"`` (``extra.train.modality``), or None.
        task: a synthetic dataset's task (``"road"`` / ``"oil-spill"``, ``dataset.json``), or None.

    Returns:
        ``"road"`` for roads; ``"oil spill"`` for the oil-spill task or for a non-road SAR model
        (the project's SAR data are oil-spill scenes, as :func:`detect_domain` assumes); None
        when nothing tells (the caller's default, e.g. ``"foreground"``).
    """
    if task in CATEGORY_NAMES:
        return CATEGORY_NAMES[task]
    if domain == "roads":
        return "road"
    if domain == "other" and modality == "sar":
        return "oil spill"
    return None


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


SHAPE_WINDOW = 2048
"""Side (px) of the centre window read from a label too large to read whole (a windowed
GeoTIFF, :func:`sam2elnet.data.windowed.use_windows`) for the shape rule: the rule compares
piece length to width, which a 2,048 px window of a road network still shows."""


def _shape_sample(path: str | Path, read_mask: Any, positive_values: Any) -> np.ndarray:
    """The label whole, or for a large GeoTIFF label its centre :data:`SHAPE_WINDOW` window
    (decoded like the whole file, :mod:`sam2elnet.data.windowed_mask`)."""
    from sam2elnet.data import windowed, windowed_mask

    if not windowed.use_windows(path):
        return read_mask(path, positive_values=positive_values)
    plan = windowed_mask.mask_plan(path, positive_values=positive_values)
    side = SHAPE_WINDOW
    r0, c0 = max(0, (plan.height - side) // 2), max(0, (plan.width - side) // 2)
    return windowed_mask.read_mask_window(plan, r0, c0, side, side)[0]


def detect_domain(
    masks: Sequence[str | Path],
    layout: str | None = None,
    modality: str | None = None,
    meta: dict[str, Any] | None = None,
    positive_values: tuple[float, ...] | None = None,
    max_masks: int = 16,
    read: Callable[..., np.ndarray] | None = None,
) -> DomainGuess:
    """Guess the domain of a labelled set (see the module docstring for the rules).

    Args:
        masks: label files (any format :func:`sam2elnet.data.raster.read_mask` reads).
        layout: dataset layout ("chn6", "sos", "generic") or None.
        modality: "sar" / "optical" or None (unknown: the shape rule decides).
        meta: the dataset's ``dataset.json`` content, if any.
        positive_values: object value(s) of class-index masks.
        max_masks: at most this many masks are read (evenly spread over ``masks``).
        read: the reader of a whole label, ``read(path, positive_values=...)`` -> bool (H, W)
            (raising DataError for an unusable file); default
            :func:`sam2elnet.data.masks.read_mask`. ``elnet evaluate`` passes one that keeps
            what it read for its pair loop. Labels read by windows do not use it.

    Unreadable masks are passed over (the training run reports them elsewhere).
    """
    from sam2elnet.data.masks import read_mask
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
            s = line_shape(_shape_sample(paths[int(i)], read or read_mask, positive_values))
        except DataError:
            continue
        if s is not None:
            shapes.append(s)
        if len(shapes) >= max_masks:
            break
    if len(shapes) < 3:
        return DomainGuess("other", f"only {plural(len(shapes), 'label')} {UNJUDGED}")
    elongation = float(np.median([piece / max(width, 1e-9) for width, piece in shapes]))
    facts = f"median elongation {elongation:.1f} over {len(shapes)} labels"
    if elongation >= ELONGATION_MIN:
        return DomainGuess("roads", f"thin, connected labels: {facts}")
    return DomainGuess("other", f"labels are not line networks: {facts}")


def median_width_px(masks: Sequence[str | Path], max_masks: int = 16) -> tuple[float, int] | None:
    """Median object width of a labelled set, px, and how many labels it is over: each mask's
    mean width is its object area / centre-line length (:func:`line_shape`; a road's width),
    over up to ``max_masks`` masks with objects, evenly spread. None when no mask read has an
    object (unreadable masks are passed over, as in :func:`detect_domain`)."""
    from sam2elnet.data.masks import read_mask
    from sam2elnet.errors import DataError

    paths = list(masks)
    picks = np.unique(np.linspace(0, len(paths) - 1, min(len(paths), max_masks)).astype(int))
    widths: list[float] = []
    for i in picks.tolist() if paths else []:
        try:
            m = _shape_sample(paths[int(i)], read_mask, None)
        except DataError:
            continue
        s = line_shape(m)
        if s is not None:
            widths.append(s[0] * max(m.shape))
    return (float(np.median(widths)), len(widths)) if widths else None


def resolve_domain(
    choice: str, guess: DomainGuess | None, reason: str | None = None, given: bool | None = None
) -> DomainGuess:
    """``choice`` ("auto" / "roads" / "other"): a forced choice wins over the guess.

    ``reason``: why the choice was forced, for the log line (default ``given: --domain <choice>``;
    ``elnet cv`` passes its own, as it decides the domain once for every fold). ``given``: the user
    gave the domain (default: when ``reason`` is None); a domain ``elnet cv`` detected is not."""
    if choice in {"roads", "other"}:
        told = reason is None if given is None else given
        return DomainGuess(choice, reason or f"given: --domain {choice}", told)  # type: ignore[arg-type]
    return guess or DomainGuess("other", "not detected")


def road_measures_wanted(
    choice: bool | str,
    truth_masks: Sequence[str | Path],
    positive_values: tuple[float, ...] | None = None,
    read: Callable[..., np.ndarray] | None = None,
) -> tuple[bool, str]:
    """(compute road measures?, why) for an evaluation: ``choice`` True / False as given, or
    ``"auto"``: when :func:`detect_domain` finds the ground-truth masks to be road networks
    (reading them with ``read``, as there).

    Raises:
        UserError: ``choice`` is none of True, False, "auto".
    """
    from sam2elnet.errors import UserError

    if choice is True or choice is False:
        return choice, "asked for" if choice else "not asked for"
    if choice != "auto":
        raise UserError(f"roads must be True, False or 'auto', got {choice!r}")
    guess = detect_domain(truth_masks, positive_values=positive_values, read=read)
    why = f"auto: {guess.domain}, {guess.reason}"
    logging.getLogger(__name__).info("road measures %s (%s)", "on" if guess.roads else "off", why)
    return guess.roads, why


# ----------------------------------------------------------------------------- appearance groups
FEATURE_NAMES = ("brightness", "contrast", "red-ness", "green-ness", "blue-ness", "saturation")


def appearance_features(path: str | Path) -> np.ndarray:
    """Simple appearance statistics of one image file: float64 array, one value per
    :data:`FEATURE_NAMES` entry.

    The raw pixel values are scaled to [0, 1] by the data type's range (8 / 16 bit; float data by
    its own 1..99 % range); bands past the third are not used (alpha bands never reach here:
    :func:`sam2elnet.data.raster.read_image` drops them). Brightness = mean over bands and pixels; contrast = standard deviation
    of the per-pixel band mean; X-ness = mean chromaticity of band X (band / sum of bands, 1/3 for
    grey); saturation = mean over pixels of (max band - min band). Grey (1-band) images have
    chromaticities 1/3 and saturation 0. Nodata pixels are left out.
    """
    from sam2elnet.data.images import read_image

    img = read_image(path)
    a = np.asarray(img.data, dtype=np.float64)[:3]  # alpha bands are dropped by read_image
    if np.issubdtype(img.data.dtype, np.integer):
        a = a / float(np.iinfo(img.data.dtype).max)
    else:
        lo, hi = np.nanpercentile(a, [1, 99])
        a = (a - lo) / max(float(hi - lo), 1e-12)
    a = np.clip(np.nan_to_num(a), 0.0, 1.0)
    valid = img.valid
    px = a[:, valid] if valid.any() else a.reshape(a.shape[0], -1)
    if px.shape[0] == 1:
        px = np.repeat(px, 3, axis=0)
    if px.shape[0] == 2:
        px = np.concatenate([px, px[1:]], axis=0)
    grey = px.mean(0)
    chroma = px / np.maximum(px.sum(0, keepdims=True), 1e-6)
    chroma[:, px.sum(0) <= 1e-6] = 1.0 / 3.0
    sat = px.max(0) - px.min(0)
    return np.array(
        [grey.mean(), grey.std(), *chroma.mean(1).tolist(), sat.mean()], dtype=np.float64
    )


@dataclass(frozen=True)
class AppearanceSplit:
    """Two appearance groups of a set of images (see :func:`appearance_split`)."""

    groups: tuple[list[str], list[str]]
    """ids of group A (low side of the main appearance axis) and group B (high side)."""
    axis: dict[str, float]
    """weight of each feature in the main axis (unit vector over standardised features)."""
    means: tuple[dict[str, float], dict[str, float]]
    """mean raw features of group A and group B."""
    separation: float
    """distance of the two group means along the axis, in standard deviations of the axis."""

    def describe(self) -> str:
        """One line: what distinguishes the groups, e.g. 'A (30): darker ...; B (30): ...'."""
        names = sorted(self.axis, key=lambda k: -abs(self.axis[k]))[:2]
        a, b = self.means
        parts = ", ".join(f"{k} {a[k]:.2f} vs {b[k]:.2f}" for k in names)
        return (
            f"group A ({len(self.groups[0])} images) vs group B ({len(self.groups[1])}): {parts}; "
            f"separation {self.separation:.1f} SD"
        )


def appearance_split(images: dict[str, str | Path], progress: bool = False) -> AppearanceSplit:
    """Split images into two visibly different halves by appearance (for cross-domain tests).

    Every image gets :func:`appearance_features`; the features are standardised, their first
    principal component (the direction along which the images differ most: typically dark vs
    bright, or green countryside vs grey towns) is computed, and the images are split at its
    median: group A below, group B above. Balanced halves, deterministic (ties by id).

    Args:
        images: id -> image file.

    Raises:
        DataError: fewer than 4 images.
    """
    from sam2elnet.errors import DataError
    from sam2elnet.utils.progress import track

    ids = sorted(images)
    if len(ids) < 4:
        raise DataError(f"a cross-domain split needs at least 4 images, got {len(ids)}")
    feats = np.stack(
        [appearance_features(images[i]) for i in track(ids, "appearance", "image", progress)]
    )
    sd = feats.std(0)
    z = (feats - feats.mean(0)) / np.where(sd > 1e-12, sd, 1.0)
    _, _, vt = np.linalg.svd(z, full_matrices=False)
    axis = vt[0]
    if axis[int(np.argmax(np.abs(axis)))] < 0:  # sign convention: the dominant feature grows
        axis = -axis
    score = z @ axis
    order = sorted(range(len(ids)), key=lambda k: (score[k], ids[k]))
    half = len(ids) // 2
    a_idx, b_idx = order[:half], order[half:]
    spread = float(score.std()) or 1.0
    sep = float(abs(score[b_idx].mean() - score[a_idx].mean()) / spread)

    def means(idx: list[int]) -> dict[str, float]:
        return {n: float(v) for n, v in zip(FEATURE_NAMES, feats[idx].mean(0), strict=True)}

    return AppearanceSplit(
        groups=(sorted(ids[k] for k in a_idx), sorted(ids[k] for k in b_idx)),
        axis={n: float(v) for n, v in zip(FEATURE_NAMES, axis, strict=True)},
        means=(means(a_idx), means(b_idx)),
        separation=sep,
    )
