"""Finding image/label pairs in a folder and serving them to PyTorch.

Layouts (detected automatically by :func:`discover`, or chosen with ``layout=``):

- ``sos``: Deep-SAR Oil Spill. ``train/<sensor>/<id>_sat.jpg`` + ``<id>_mask.png``, and
  ``test/<sensor>/sat/<id>_sat.jpg`` + ``test/<sensor>/gt/<id>_mask.png``; sensors palsar, sentinel.
- ``chn6``: CHN6-CUG roads. ``images/<id>_sat.jpg`` + ``gt/<id>_mask.png``, optionally under
  ``train/`` and ``val/``.
- ``generic``: ``images/`` + ``masks/`` (or ``labels/``) matched by file stem, optionally under split
  folders; an optional ``coarse/`` folder holds coarse labels, an optional ``dataset.json`` (as
  written by ``elnet synth``) states the modality.

Files that find no partner are listed in ``DatasetIndex.unmatched`` and reported, never silently
dropped. The :class:`SegmentationDataset` loads lazily, one file at a time, and reads large
GeoTIFFs by windows (:mod:`sam2elnet.data.windowed`).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from sam2elnet.data.images import read_image
from sam2elnet.data.masks import read_mask, read_mask_valid
from sam2elnet.data.naming import IMAGE_SUFFIXES, IMAGE_TAGS, MASK_TAGS
from sam2elnet.data.normalize import NormalizationConfig, normalize
from sam2elnet.errors import BandCountError, DataError

log = logging.getLogger(__name__)

LAYOUTS = ("auto", "sos", "chn6", "generic")
SOS_SENSORS = ("palsar", "sentinel")
_SPLITS = ("train", "val", "test")
_IMAGE_TAGS = IMAGE_TAGS
_MASK_TAGS = MASK_TAGS


@dataclass(frozen=True)
class Sample:
    """One image with its label (``mask`` None for unlabelled images) and optional coarse label."""

    id: str
    image: Path
    mask: Path | None
    coarse: Path | None = None
    split: str | None = None
    sensor: str | None = None


@dataclass
class DatasetIndex:
    """What :func:`discover` found: the pairs, the layout, unmatched files and the modality."""

    root: Path
    layout: str
    samples: list[Sample]
    unmatched: list[Path] = field(default_factory=list)
    modality: Literal["sar", "optical"] = "optical"
    meta: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[tuple[str, str], int]:
        """Number of pairs per (split, sensor); '-' where the layout has none."""
        c = Counter((s.split or "-", s.sensor or "-") for s in self.samples)
        return dict(sorted(c.items()))

    @property
    def ids(self) -> list[str]:
        """Sample ids in index order."""
        return [s.id for s in self.samples]

    @property
    def splits(self) -> dict[str, int]:
        """Pairs per split folder found (``train``/``val``/``test``); empty for a flat layout."""
        c = Counter(s.split for s in self.samples if s.split is not None)
        return {k: c[k] for k in _SPLITS if k in c}


# --------------------------------------------------------------------------- file matching
def _files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


def _key(path: Path, tags: Sequence[str]) -> str:
    """File stem without a role tag (``123_sat`` -> ``123``, ``123_mask`` -> ``123``)."""
    stem = path.stem
    for tag in tags:
        if stem.lower().endswith(tag) and len(stem) > len(tag):
            return stem[: -len(tag)]
    return stem


def _pair(
    images: list[Path],
    masks: list[Path],
    split: str | None,
    sensor: str | None,
    coarse_dir: Path | None = None,
) -> tuple[list[Sample], list[Path]]:
    """Match images to masks by key; return samples and the files left without a partner."""
    img_by_key = {_key(p, _IMAGE_TAGS): p for p in images}
    mask_by_key = {_key(p, _MASK_TAGS): p for p in masks}
    coarse_by_key = {_key(p, _MASK_TAGS): p for p in _files(coarse_dir)} if coarse_dir else {}
    samples = [
        Sample(k, img_by_key[k], mask_by_key[k], coarse_by_key.get(k), split, sensor)
        for k in sorted(img_by_key)
        if k in mask_by_key
    ]
    unmatched = [p for k, p in img_by_key.items() if k not in mask_by_key]
    unmatched += [p for k, p in mask_by_key.items() if k not in img_by_key]
    return samples, sorted(unmatched)


def _split_by_suffix(files: list[Path]) -> tuple[list[Path], list[Path], list[Path]]:
    """SOS training folders mix ``*_sat`` images and ``*_mask`` labels in one folder."""
    imgs = [p for p in files if p.stem.lower().endswith("_sat")]
    masks = [p for p in files if p.stem.lower().endswith("_mask")]
    other = [p for p in files if p not in imgs and p not in masks]
    return imgs, masks, other


# --------------------------------------------------------------------------- layouts
def _sos_roots(root: Path) -> list[tuple[str | None, Path]]:
    """(split, folder holding sensor folders): the dataset root, or one split folder."""
    found = [
        (s, root / s)
        for s in ("train", "test")
        if any((root / s / n).is_dir() for n in SOS_SENSORS)
    ]
    if not found and any((root / n).is_dir() for n in SOS_SENSORS):
        found = [(root.name if root.name in _SPLITS else None, root)]
    return found


def _discover_sos(
    root: Path, splits: set[str] | None, sensors: set[str] | None
) -> tuple[list[Sample], list[Path]]:
    samples: list[Sample] = []
    unmatched: list[Path] = []
    for split, base in _sos_roots(root):
        if splits and split not in splits:
            continue
        for sensor in SOS_SENSORS:
            folder = base / sensor
            if not folder.is_dir() or (sensors and sensor not in sensors):
                continue
            if (folder / "sat").is_dir() or (folder / "gt").is_dir():
                s, u = _pair(_files(folder / "sat"), _files(folder / "gt"), split, sensor)
            else:
                imgs, masks, other = _split_by_suffix(_files(folder))
                s, u = _pair(imgs, masks, split, sensor)
                u = sorted(u + other)
            samples += s
            unmatched += u
    return samples, unmatched


def _split_dirs(root: Path, image_dir: str) -> list[tuple[str | None, Path]]:
    if (root / image_dir).is_dir():
        return [(root.name if root.name in _SPLITS else None, root)]
    return [(s, root / s) for s in _SPLITS if (root / s / image_dir).is_dir()]


def _discover_folders(
    root: Path, mask_dirs: Sequence[str], splits: set[str] | None
) -> tuple[list[Sample], list[Path]]:
    samples: list[Sample] = []
    unmatched: list[Path] = []
    for split, base in _split_dirs(root, "images"):
        if splits and split not in splits:
            continue
        mdir = next((base / m for m in mask_dirs if (base / m).is_dir()), None)
        if mdir is None:
            unmatched += _files(base / "images")
            continue
        coarse = base / "coarse" if (base / "coarse").is_dir() else None
        s, u = _pair(_files(base / "images"), _files(mdir), split, None, coarse)
        samples += s
        unmatched += u
    return samples, unmatched


def _detect(root: Path) -> str | None:
    if _sos_roots(root):
        return "sos"
    for _split, base in _split_dirs(root, "images"):
        if (base / "gt").is_dir():
            return "chn6"
        if (base / "masks").is_dir() or (base / "labels").is_dir():
            return "generic"
    return None


def _read_meta(root: Path) -> dict[str, Any]:
    meta_path = root / "dataset.json"
    if not meta_path.is_file():
        return {}
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"cannot parse dataset.json ({err}); fix or delete it", meta_path) from None
    return meta if isinstance(meta, dict) else {}


def _unique_ids(samples: list[Sample]) -> list[Sample]:
    """Ids must be unique (they name output files); prefix split/sensor only where they clash."""
    dup = {k for k, n in Counter(s.id for s in samples).items() if n > 1}
    if not dup:
        return samples
    out = []
    for s in samples:
        if s.id in dup:
            prefix = "_".join(x for x in (s.split, s.sensor) if x)
            s = Sample(
                f"{prefix}_{s.id}" if prefix else s.id, s.image, s.mask, s.coarse, s.split, s.sensor
            )
        out.append(s)
    return out


def discover(
    root: str | Path,
    layout: str = "auto",
    split: str | Sequence[str] | None = None,
    sensors: str | Sequence[str] | None = None,
    modality: Literal["sar", "optical"] | None = None,
    report_unmatched: bool = True,
) -> DatasetIndex:
    """Find image/label pairs under ``root``.

    ``split`` / ``sensors`` restrict SOS (and split-folder) datasets; ``modality`` overrides the
    layout's default (SOS: sar, CHN6: optical, generic: ``dataset.json`` or optical).
    Unmatched files are counted (warning) and listed (info level, i.e. ``--verbose``).
    """
    base = Path(root)
    if not base.exists():
        raise DataError("dataset folder does not exist; check the path", base)
    if not base.is_dir():
        raise DataError(
            "expected a dataset folder, got a file; pass the folder holding images/", base
        )
    if not any(base.iterdir()):
        raise DataError("dataset folder is empty; put images and labels in it", base)
    if layout not in LAYOUTS:
        raise DataError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    found = _detect(base) if layout == "auto" else layout
    if found is None:
        raise DataError(
            "no recognisable dataset layout; expected images/ + masks/ (or labels/, gt/), "
            "or SOS train/<sensor>/ folders (see docs/data.md)",
            base,
        )
    splits = {split} if isinstance(split, str) else (set(split) if split else None)
    sens = {sensors} if isinstance(sensors, str) else (set(sensors) if sensors else None)
    if sens and not sens <= set(SOS_SENSORS):
        raise DataError(
            f"unknown sensor(s) {sorted(sens - set(SOS_SENSORS))}; SOS has {', '.join(SOS_SENSORS)}"
        )
    meta = _read_meta(base)
    if found == "sos":
        samples, unmatched = _discover_sos(base, splits, sens)
        default_modality = "sar"
    elif found == "chn6":
        samples, unmatched = _discover_folders(base, ("gt",), splits)
        default_modality = "optical"
    else:
        samples, unmatched = _discover_folders(base, ("masks", "labels"), splits)
        default_modality = meta.get("modality", "optical")
    if unmatched and report_unmatched:
        log.warning(
            "%d file(s) under %s have no image/label partner (listed with --verbose)",
            len(unmatched),
            base,
        )
        for p in unmatched:
            log.info("unmatched: %s", p)
    if not samples:
        what = f" for split={sorted(splits)}" if splits else ""
        what += f" sensors={sorted(sens)}" if sens else ""
        raise DataError(
            f"found the {found} layout but no image/label pairs{what} "
            f"({len(unmatched)} unmatched files); check file names (<id>_sat / <id>_mask or equal stems)",
            base,
        )
    mod = modality or default_modality
    if mod not in ("sar", "optical"):
        mod = "optical"
    return DatasetIndex(base, found, _unique_ids(samples), unmatched, mod, meta)


@dataclass(frozen=True)
class SplitChoice:
    """Which split folders of a dataset a command uses (see :func:`select_split`)."""

    index: DatasetIndex
    """The dataset re-discovered with only the chosen splits (ids stable for that choice)."""
    found: dict[str, int]
    """Pairs per split folder found under the root (empty: no split folders)."""
    used: list[str] | None
    """Split names used, or None for a layout without split folders (all pairs used)."""

    def describe(self, purpose: str = "training") -> str:
        """One line for logs: ``splits found: train (6455), test (1615); training on: train``."""
        if not self.found:
            return f"no split folders found; {purpose} on all {len(self.index.samples)} pairs"
        found = ", ".join(f"{k} ({n})" for k, n in self.found.items())
        used = ", ".join(self.used or [])
        return f"splits found: {found}; {purpose} on: {used} ({len(self.index.samples)} pairs)"


def select_split(
    root: str | Path,
    split: str | Sequence[str] | None = None,
    *,
    layout: str = "auto",
    sensors: str | Sequence[str] | None = None,
    modality: Literal["sar", "optical"] | None = None,
    default: str = "train",
    purpose: str = "training",
) -> SplitChoice:
    """Discover ``root`` and keep only the split folders a command should use.

    ``split`` names them explicitly (``train``, ``val``, ``test``; DataError naming the splits
    found when one is absent). Without it, a split-aware layout (SOS ``train/`` + ``test/``,
    CHN6-CUG ``train/`` + ``val/``, generic ``train/``/``val/``/``test/`` folders) uses only the
    ``default`` split, so training never sees the official test images; a root holding only
    other splits is used whole, with a warning. A flat layout (no split folders) is used whole.
    """
    index = discover(root, layout=layout, sensors=sensors, modality=modality)
    found = index.splits
    if split:
        want = [split] if isinstance(split, str) else list(dict.fromkeys(split))
        bad = [w for w in want if w not in _SPLITS]
        if bad:
            raise DataError(f"unknown split {bad[0]!r}; choose from {', '.join(_SPLITS)}")
        if not found:
            raise DataError(
                f"--split {','.join(want)} given but the dataset has no split folders "
                "(train/, val/, test/); drop --split to use every pair",
                index.root,
            )
        missing = [w for w in want if w not in found]
        if missing:
            raise DataError(
                f"split {missing[0]!r} not found; this dataset has: {', '.join(found)}",
                index.root,
            )
        used: list[str] | None = want
    elif not found:
        used = None
    elif default in found:
        used = [default]
    else:
        used = list(found)
        log.warning(
            "no %r split folder under %s; %s on the split(s) found: %s",
            default,
            index.root,
            purpose,
            ", ".join(used),
        )
    if used is not None and set(used) != set(found):
        index = discover(
            root,
            layout=index.layout,
            split=used,
            sensors=sensors,
            modality=modality,
            report_unmatched=False,
        )
    return SplitChoice(index, found, used)


def image_size(path: str | Path) -> tuple[int, int]:
    """(H, W) of an image file from its header only (no pixel decoding)."""
    p = Path(path)
    if not p.is_file():
        raise DataError("file does not exist; check the path", p)
    if p.suffix.lower() in (".tif", ".tiff"):
        return read_image(p).shape
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(p) as im:
            w, h = im.size
    except (UnidentifiedImageError, OSError):
        raise DataError(
            "cannot decode image (corrupt, truncated or not an image); re-export it or remove it", p
        ) from None
    return h, w


def verify_pairs(
    samples: Sequence[Sample], strict: bool = True, progress: bool = False
) -> list[Sample]:
    """Check every image/label pair has the same size (headers only, fast).

    ``strict``: the first mismatch is a DataError naming both files. Otherwise (batch mode)
    mismatched pairs are skipped with a warning and the good ones returned.
    """
    from tqdm import tqdm

    good = []
    for s in tqdm(samples, desc="check pairs", disable=not progress, leave=False):
        shape = image_size(s.image)
        bad = [p for p in (s.mask, s.coarse) if p is not None and image_size(p) != shape]
        if not bad:
            good.append(s)
            continue
        msg = f"size {image_size(bad[0])[::-1]} differs from image {s.image} {shape[::-1]} (WxH); re-export the label at the image's size or remove the pair"
        if strict:
            raise DataError(msg, bad[0])
        log.warning("skipping %s: %s", bad[0], msg)
    return good


# --------------------------------------------------------------------------- fraction splits
def split_fraction(
    ids: Sequence[str],
    fraction: float,
    seed: int = 0,
    strata: Sequence[str] | None = None,
) -> tuple[list[str], list[str]]:
    """Select ``fraction`` of ``ids`` reproducibly; return (selected, rest), each sorted.

    With ``strata`` (one label per id, e.g. "empty"/"oil") the fraction is taken per stratum and
    every non-empty stratum with at least two members contributes at least one id to each side, so
    both empty and non-empty masks are represented in the labelled part.
    """
    if not 0.0 <= fraction <= 1.0:
        raise DataError(f"fraction {fraction} is outside [0, 1]; e.g. 0.3 for 30 %")
    ids = [str(i) for i in ids]
    if len(set(ids)) != len(ids):
        raise DataError("ids passed to split_fraction are not unique")
    if strata is not None and len(strata) != len(ids):
        raise DataError(f"{len(strata)} strata labels for {len(ids)} ids; give one label per id")
    groups: dict[str, list[str]] = {}
    for i, sid in enumerate(ids):
        groups.setdefault(str(strata[i]) if strata is not None else "", []).append(sid)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 3001]))
    selected: list[str] = []
    for name in sorted(groups):
        members = sorted(groups[name])
        n = len(members)
        k = int(round(fraction * n))
        if strata is not None and n >= 2 and 0.0 < fraction < 1.0:
            k = min(max(k, 1), n - 1)
        order = rng.permutation(n)
        selected += [members[j] for j in order[:k]]
    chosen = set(selected)
    return sorted(chosen), sorted(i for i in ids if i not in chosen)


def mask_strata(samples: Sequence[Sample], progress: bool = False) -> list[str]:
    """ "empty" / "object" per sample, for stratified splits (reads each mask once)."""
    from tqdm import tqdm

    out = []
    for s in tqdm(samples, desc="strata", disable=not progress, leave=False):
        out.append("object" if s.mask is not None and read_mask(s.mask).any() else "empty")
    return out


# --------------------------------------------------------------------------- the torch Dataset
def match_bands(x: np.ndarray, bands: int | None, path: Path | str | None) -> np.ndarray:
    """Make the band count what the model expects where that is unambiguous (grey <-> grey stored
    as identical channels), else :class:`~sam2elnet.errors.BandCountError`."""
    if bands is None or x.shape[0] == bands:
        return x
    if x.shape[0] == 1:
        return np.repeat(x, bands, axis=0)
    if bands == 1 and np.allclose(x, x[:1], atol=2.0 / 255):
        return np.ascontiguousarray(x[:1])
    raise BandCountError(
        f"unsupported band count: image has {x.shape[0]} bands but the model was trained for "
        f"{bands}; choose {bands} band(s) with --bands (e.g. --bands "
        f"{','.join(str(i) for i in range(1, bands + 1))}) or train a model on this kind of image",
        path,
    )


def _crop_box(
    rng: np.random.Generator, h: int, w: int, size: int, scale: tuple[float, float]
) -> tuple[int, int, int]:
    """A random square window (y, x, side) whose side is size * a log-uniform scale factor."""
    lo, hi = np.log(scale[0]), np.log(scale[1])
    side = int(round(size * float(np.exp(rng.uniform(lo, hi)))))
    side = max(8, min(side, max(h, w)))
    y = int(rng.integers(0, max(h - side, 0) + 1))
    x = int(rng.integers(0, max(w - side, 0) + 1))
    return y, x, side


def _window(a: np.ndarray, y: int, x: int, side: int) -> np.ndarray:
    """Crop (..., H, W) to a side x side window, zero-padding past the border."""
    h, w = a.shape[-2:]
    out = np.zeros((*a.shape[:-2], side, side), dtype=a.dtype)
    hh, ww = min(side, h - y), min(side, w - x)
    out[..., :hh, :ww] = a[..., y : y + hh, x : x + ww]
    return out


def _resize(a: np.ndarray, size: int, nearest: bool) -> np.ndarray:
    """Resize (C, H, W) or (H, W) to size x size; nearest for labels, area/linear for images."""
    if a.shape[-2:] == (size, size):
        return a
    if nearest:
        interp = cv2.INTER_NEAREST
    else:
        interp = cv2.INTER_AREA if a.shape[-1] > size else cv2.INTER_LINEAR
    if a.ndim == 2:
        return cv2.resize(a, (size, size), interpolation=interp)
    return np.stack([cv2.resize(c, (size, size), interpolation=interp) for c in a])


def _dihedral(a: np.ndarray, k: int) -> np.ndarray:
    """One of the 8 symmetries of the square (rotations by 90 degrees, with or without a flip)."""
    out = np.rot90(a, k % 4, axes=(-2, -1))
    if k >= 4:
        out = out[..., ::-1]
    return np.ascontiguousarray(out)


@dataclass(frozen=True)
class Augmentation:
    """Training augmentation of :class:`SegmentationDataset` (the one place it is defined).

    Geometry: a random square window whose side is the crop size times a log-uniform factor from
    ``scale`` (> 1 zooms out, < 1 zooms in; the window is then resized to the crop size, so object
    widths vary by that factor, as between sensors of different ground sampling distance), then one
    of the 8 dihedral symmetries. Photometry (on the normalised ~[0, 1] image; nodata stays 0):

    * ``photometric`` scales a global brightness shift of +-0.08, a contrast change of +-15 % and a
      gamma of exp(+-0.15) (all uniform); 0 = off.
    * ``band_jitter`` (multi-band images only) gives each band its own gain of 1 +- 2 x band_jitter
      and offset of +-band_jitter (uniform): colour casts between sources and acquisitions; 0 = off.

    :meth:`for_domain` gives the defaults: mild for SAR / generic data, stronger for roads, where
    models must carry over to imagery from other sources (issue #14: a roads-dev model fell from
    ~0.50 validation IoU to 0.23 road IoU on aerial images of another source).
    """

    scale: tuple[float, float] = (0.75, 1.33)
    photometric: float = 1.0
    band_jitter: float = 0.0

    def __post_init__(self) -> None:
        lo, hi = (float(v) for v in self.scale)
        if not (0 < lo <= hi) or not np.isfinite(hi):
            raise ValueError(f"scale range must be 0 < low <= high, got {self.scale}")
        if self.photometric < 0 or self.band_jitter < 0:
            raise ValueError("photometric and band_jitter strengths must be >= 0")

    @classmethod
    def for_domain(cls, domain: str | None) -> Augmentation:
        """Defaults for ``domain`` ("roads" or anything else)."""
        if domain == "roads":
            return cls(scale=(0.5, 2.0), photometric=2.0, band_jitter=0.05)
        return cls()

    def describe(self) -> str:
        """One line for logs: 'scale 0.5-2, photometric 2, per-band 0.05'."""
        return (
            f"scale {self.scale[0]:g}-{self.scale[1]:g}, photometric {self.photometric:g}, "
            f"per-band {self.band_jitter:g}"
        )


def _jitter(
    x: np.ndarray, valid: np.ndarray, rng: np.random.Generator, aug: Augmentation
) -> np.ndarray:
    """Photometric augmentation of a normalised (C, H, W) image (see :class:`Augmentation`);
    nodata pixels stay 0. Draws nothing from ``rng`` for a disabled part, so a setting of 0 leaves
    the random stream of the other augmentations as it was."""
    strength = aug.photometric
    if strength <= 0 and (aug.band_jitter <= 0 or x.shape[0] < 2):
        return x
    y = x
    if aug.band_jitter > 0 and x.shape[0] > 1:
        c = x.shape[0]
        gain = 1.0 + rng.uniform(-2.0, 2.0, size=(c, 1, 1)) * aug.band_jitter
        offset = rng.uniform(-1.0, 1.0, size=(c, 1, 1)) * aug.band_jitter
        y = np.clip(y * gain + offset, 0.0, 1.0)
    if strength > 0:
        b = rng.uniform(-0.08, 0.08) * strength
        con = 1.0 + rng.uniform(-0.15, 0.15) * strength
        g = float(np.exp(rng.uniform(-0.15, 0.15) * strength))
        mean = float(y[:, valid].mean()) if valid.any() else 0.5
        y = np.clip((y - mean) * con + mean + b, 0.0, 1.0) ** g
    return (y * valid[None]).astype(np.float32)


class SegmentationDataset(Dataset):
    """PyTorch map-style dataset of (image, mask, valid, coarse) tensors.

    Training (``train=True``): the :class:`Augmentation` (random square crop at a random scale
    resized to ``size``, one of the 8 dihedral symmetries, photometric jitter; default
    ``Augmentation()``) and, with probability ``coarse_prob``, a coarse
    label (the sample's own ``coarse`` file when it has one, else simulated by
    :func:`sam2elnet.data.coarse.degrade`). Randomness comes from a generator seeded by
    (seed, epoch, index): the same seed and epoch give the same item, in any worker.

    Evaluation (``train=False``): no augmentation; ``eval_mode="resize"`` resizes the whole image to
    ``size``, ``"pad"`` shrinks it to fit (keeping the aspect ratio) and pads (pad is invalid).
    A coarse label is given whenever ``coarse_prob > 0`` (file, else simulated with a fixed seed).
    Masks are read by :func:`sam2elnet.data.masks.read_mask_valid` (``positive_values`` for
    class-index masks); their ignore / nodata pixels are 0 in ``valid``, so no loss sees them.

    Large GeoTIFFs (a whole read above ``window_bytes``, default
    :data:`sam2elnet.data.windowed.WINDOW_MIN_BYTES` = 64 MB, and larger than the largest crop)
    are never read whole: a training item reads only its crop's window (the same random box, so
    the item is identical to the whole-read one; per-image percentile normalisation uses the
    file's statistics sample, see :mod:`sam2elnet.data.windowed`), and an evaluation item
    decimates the file to at least ``4 * size`` px per side before resizing as usual (close to,
    not bit-identical with, resizing the whole image). Other files keep the whole read.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        norm_cfg: NormalizationConfig | None = None,
        size: int = 256,
        train: bool = True,
        seed: int = 0,
        coarse_prob: float = 0.5,
        coarse_profile: str = "mixed",
        coarse_severity: tuple[float, float] = (0.2, 0.8),
        augmentation: Augmentation | None = None,
        bands: int | None = None,
        eval_mode: Literal["resize", "pad"] = "resize",
        positive_values: tuple[float, ...] | None = None,
        window_bytes: int | None = None,
    ) -> None:
        if train:
            from sam2elnet.data.coarse import check_train_profile

            check_train_profile(coarse_profile)  # held-out (evaluation-only) profiles refused
        self.samples = list(samples)
        self.norm_cfg = norm_cfg or NormalizationConfig()
        self.size = int(size)
        self.train = train
        self.seed = int(seed)
        self.coarse_prob = float(coarse_prob)
        self.coarse_profile = coarse_profile
        self.coarse_severity = coarse_severity
        self.augmentation = augmentation or Augmentation()
        self.bands = bands
        self.eval_mode = eval_mode
        self.positive_values = positive_values
        self.window_bytes = window_bytes
        self.epoch = 0
        self._plans: dict[int, tuple[Any, Any, Any] | None] = {}
        self._norms: dict[int, NormalizationConfig] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation stream (call once per epoch, before iterating)."""
        self.epoch = int(epoch)

    def _rng(self, index: int) -> np.random.Generator:
        epoch = self.epoch if self.train else 0
        return np.random.default_rng(
            np.random.SeedSequence([self.seed & 0xFFFFFFFF, epoch, index, 17])
        )

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Full-size normalised image, mask, valid and coarse file (if any), without augmentation."""
        s = self.samples[index]
        img = read_image(s.image, sar=self.norm_cfg.sar, bands=self.norm_cfg.band_select)
        x = match_bands(normalize(img, self.norm_cfg), self.bands, s.image)
        valid = img.valid
        if s.mask is not None:
            mask, mask_valid = read_mask_valid(
                s.mask, shape=img.shape, image_path=s.image, positive_values=self.positive_values
            )
            if mask_valid is not None:  # ignore / nodata in the truth: out of losses and metrics
                valid = valid & mask_valid
        else:
            mask = np.zeros(img.shape, dtype=bool)
        coarse = read_mask(s.coarse, shape=img.shape, image_path=s.image) if s.coarse else None
        return x, mask, valid, coarse

    # ------------------------------------------------------------------ windowed reads
    def windowed(self, index: int) -> tuple[Any, Any, Any] | None:
        """(image plan, mask plan, coarse plan) when sample ``index`` is read by windows (a large
        GeoTIFF, :func:`sam2elnet.data.windowed.use_windows`), else None (whole reads).

        A mask or coarse label that cannot be windowed (PNG, JPEG) has plan None and is read
        whole, then cropped. Plans are computed on first use (one streamed pass per file) and
        cached; :meth:`prepare_windows` computes them up front.
        """
        if index in self._plans:
            return self._plans[index]
        from sam2elnet.data import windowed as win

        s = self.samples[index]
        side = int(round(self.size * max(self.augmentation.scale))) if self.train else self.size
        plans = None
        if win.use_windows(s.image, self.window_bytes, side):
            ip = win.image_plan(s.image, sar=self.norm_cfg.sar, bands=self.norm_cfg.band_select)
            mp = cp = None
            if s.mask is not None and win.windowable(s.mask):
                mp = win.mask_plan(s.mask, ip.shape, s.image, self.positive_values)
            elif s.mask is not None:
                log.info(
                    "%s is read by windows but its label %s is %s (no windowed reads): the label "
                    "is decoded whole for every crop; save it as a tiled GeoTIFF to avoid that",
                    s.image,
                    s.mask,
                    s.mask.suffix,
                )
            if s.coarse is not None and win.windowable(s.coarse):
                cp = win.mask_plan(s.coarse, ip.shape, s.image)
            plans = (ip, mp, cp)
        self._plans[index] = plans
        return plans

    def prepare_windows(self) -> int:
        """Decide whole vs windowed reads for every sample now (in this process, so DataLoader
        workers inherit the plans); return how many samples are read by windows."""
        return sum(self.windowed(i) is not None for i in range(len(self.samples)))

    def _norm_for(self, index: int, plan: Any) -> NormalizationConfig:
        """The normalisation of a windowed sample: per-image percentiles (``percentile``
        method) become a ``fixed`` range from the file's statistics sample, so every window is
        scaled like the whole image; global methods are used as they are."""
        cfg = self.norm_cfg
        if cfg.method != "percentile":
            return cfg
        if index not in self._norms:
            from sam2elnet.data.normalize import image_percentiles
            from sam2elnet.data.windowed import sample_image

            low, high = image_percentiles(sample_image(plan), cfg)
            self._norms[index] = cfg.model_copy(
                update={"method": "fixed", "low": low, "high": high}
            )
        return self._norms[index]

    def _label_part(
        self,
        index: int,
        path: Path | None,
        plan: Any,
        shape: tuple[int, int],
        box: tuple[int, int, int, int] | None,
        step: int = 1,
        coarse: bool = False,
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(object, valid) of a label over ``box`` (row, col, rows, cols) or decimated by
        ``step``: windowed when ``plan`` is given, else from a whole read."""
        from sam2elnet.data import windowed as win

        if path is None:
            return None, None
        if plan is not None:
            if box is not None:
                return win.read_mask_window(plan, *box)
            return win.read_mask_decimated(plan, step)
        s = self.samples[index]
        pv = None if coarse else self.positive_values
        m, v = read_mask_valid(path, shape=shape, image_path=s.image, positive_values=pv)
        if box is not None:
            r, c, h, w = box
            sl = (slice(r, r + h), slice(c, c + w))
        else:
            sl = (slice(None, None, step), slice(None, None, step))
        return m[sl], (None if v is None else v[sl])

    def load_window(
        self, index: int, box: tuple[int, int, int, int] | None, step: int = 1
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Like :meth:`load` for a windowed sample, but only rows ``r : r + h`` and columns
        ``c : c + w`` of ``box = (r, c, h, w)`` (clipped to the image), or with ``box`` None every
        ``step``-th row and column: the same values as the same pixels of :meth:`load`."""
        from sam2elnet.data import windowed as win

        plans = self.windowed(index)
        if plans is None:
            raise ValueError(f"sample {index} is not read by windows")
        ip, mp, cp = plans
        s = self.samples[index]
        img = (
            win.read_image_window(ip, *box)
            if box is not None
            else win.read_image_decimated(ip, step)
        )
        x = match_bands(normalize(img, self._norm_for(index, ip)), self.bands, s.image)
        valid = img.valid
        mask, mask_valid = self._label_part(index, s.mask, mp, ip.shape, box, step)
        if mask is None:
            mask = np.zeros(img.shape, dtype=bool)
        elif mask_valid is not None:
            valid = valid & mask_valid
        coarse, _ = self._label_part(index, s.coarse, cp, ip.shape, box, step, coarse=True)
        return x, mask, valid, coarse

    def _geometry_train(
        self,
        rng: np.random.Generator,
        arrays: list[np.ndarray],
        labels: list[bool],
        side: int | None = None,
    ) -> list[np.ndarray]:
        """Random crop (unless ``side`` is given: ``arrays`` are that crop already, read by
        windows), resize to ``size`` and one of the 8 symmetries."""
        if side is None:
            h, w = arrays[0].shape[-2:]
            y, x, side = _crop_box(rng, h, w, self.size, self.augmentation.scale)
            arrays = [_window(a, y, x, side) for a in arrays]
        else:
            arrays = [_window(a, 0, 0, side) for a in arrays]
        k = int(rng.integers(8))
        out = []
        for a, is_label in zip(arrays, labels, strict=True):
            a = _resize(a, self.size, nearest=is_label)
            out.append(_dihedral(a, k))
        return out

    def _geometry_eval(self, arrays: list[np.ndarray], labels: list[bool]) -> list[np.ndarray]:
        if self.eval_mode == "resize":
            return [
                _resize(a, self.size, nearest=lab) for a, lab in zip(arrays, labels, strict=True)
            ]
        h, w = arrays[0].shape[-2:]
        f = min(1.0, self.size / max(h, w))
        nh, nw = max(1, int(round(h * f))), max(1, int(round(w * f)))
        out = []
        for a, lab in zip(arrays, labels, strict=True):
            if (nh, nw) != (h, w):
                interp = cv2.INTER_NEAREST if lab else cv2.INTER_AREA
                a = (
                    cv2.resize(a, (nw, nh), interpolation=interp)
                    if a.ndim == 2
                    else np.stack([cv2.resize(c, (nw, nh), interpolation=interp) for c in a])
                )
            out.append(_window(a, 0, 0, self.size))
        return out

    def _coarse(
        self, rng: np.random.Generator, mask: np.ndarray, coarse: np.ndarray | None, index: int
    ) -> tuple[np.ndarray, float]:
        from sam2elnet.data.coarse import degrade

        use = rng.random() < self.coarse_prob if self.train else self.coarse_prob > 0
        sev_u = rng.random()
        sub_seed = int(rng.integers(1 << 31))
        if not use:
            return np.zeros_like(mask), 0.0
        if coarse is not None:
            return coarse, 1.0
        lo, hi = self.coarse_severity
        sev = lo + (hi - lo) * sev_u
        return degrade(mask, self.coarse_profile, sev, sub_seed).mask, 1.0

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = self._rng(index)
        plans = self.windowed(index)
        side = None
        if plans is None:
            x, mask, valid, coarse = self.load(index)
        elif self.train:  # read only the crop (same random box as a whole read would take)
            h, w = plans[0].shape
            y0, x0, side = _crop_box(rng, h, w, self.size, self.augmentation.scale)
            x, mask, valid, coarse = self.load_window(index, (y0, x0, side, side))
        else:  # evaluation resizes the whole image: decimate to >= 4 x size first
            step = max(1, min(plans[0].shape) // (4 * self.size))
            x, mask, valid, coarse = self.load_window(index, None, step)
        arrays: list[np.ndarray] = [x, mask.astype(np.uint8), valid.astype(np.uint8)]
        labels = [False, True, True]
        if coarse is not None:
            arrays.append(coarse.astype(np.uint8))
            labels.append(True)
        geo = (
            self._geometry_train(rng, arrays, labels, side)
            if self.train
            else self._geometry_eval(arrays, labels)
        )
        x, m, v = geo[0].astype(np.float32), geo[1] > 0, geo[2] > 0
        c = geo[3] > 0 if coarse is not None else None
        if self.train:
            x = _jitter(x, v, rng, self.augmentation)
        cm, has = self._coarse(rng, m, c, index)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(x)),
            "mask": torch.from_numpy(m[None].astype(np.float32)),
            "valid": torch.from_numpy(v[None].astype(np.float32)),
            "coarse": torch.from_numpy(np.ascontiguousarray(cm)[None].astype(np.float32)),
            "has_coarse": torch.tensor(has, dtype=torch.float32),
            "id": self.samples[index].id,
        }
