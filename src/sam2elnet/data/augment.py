"""Training augmentation of :class:`~sam2elnet.data.datasets.SegmentationDataset`: the
:class:`Augmentation` settings and the array operations a training sample goes through.

* geometry: :func:`crop_box` (a random square window at a random scale), :func:`window` (that
  crop, zero-padded past the border), :func:`resize` (to the crop size) and :func:`dihedral` (one
  of the 8 symmetries of the square);
* photometry: :func:`jitter` (brightness, contrast, gamma and per-band gain/offset on the
  normalised image, nodata kept 0).

All take and return numpy arrays (``(C, H, W)`` images, ``(H, W)`` labels); randomness comes from
the generator passed in, so a sample is reproducible from its seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from sam2elnet.option_values import AUGMENT_DEFAULTS

__all__ = ["Augmentation", "crop_box", "dihedral", "jitter", "resize", "window"]


def crop_box(
    rng: np.random.Generator, h: int, w: int, size: int, scale: tuple[float, float]
) -> tuple[int, int, int]:
    """A random square window (y, x, side) whose side is size * a log-uniform scale factor."""
    lo, hi = np.log(scale[0]), np.log(scale[1])
    side = int(round(size * float(np.exp(rng.uniform(lo, hi)))))
    side = max(8, min(side, max(h, w)))
    y = int(rng.integers(0, max(h - side, 0) + 1))
    x = int(rng.integers(0, max(w - side, 0) + 1))
    return y, x, side


def window(a: np.ndarray, y: int, x: int, side: int) -> np.ndarray:
    """Crop (..., H, W) to a side x side window, zero-padding past the border."""
    h, w = a.shape[-2:]
    out = np.zeros((*a.shape[:-2], side, side), dtype=a.dtype)
    hh, ww = min(side, h - y), min(side, w - x)
    out[..., :hh, :ww] = a[..., y : y + hh, x : x + ww]
    return out


def resize(a: np.ndarray, size: int, nearest: bool) -> np.ndarray:
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


def dihedral(a: np.ndarray, k: int) -> np.ndarray:
    """One of the 8 symmetries of the square (rotations by 90 degrees, with or without a flip)."""
    out = np.rot90(a, k % 4, axes=(-2, -1))
    if k >= 4:
        out = out[..., ::-1]
    return np.ascontiguousarray(out)


@dataclass(frozen=True)
class Augmentation:
    """Training augmentation of :class:`~sam2elnet.data.datasets.SegmentationDataset` (the one
    place it is defined).

    Geometry: a random square window whose side is the crop size times a log-uniform factor from
    ``scale`` (> 1 zooms out, < 1 zooms in; the window is then resized to the crop size, so object
    widths vary by that factor, as between sensors of different ground sampling distance), then one
    of the 8 dihedral symmetries. Photometry (on the normalised ~[0, 1] image; nodata stays 0):

    * ``photometric`` scales a global brightness shift of +-0.08, a contrast change of +-15 % and a
      gamma of exp(+-0.15) (all uniform); 0 = off.
    * ``band_jitter`` (multi-band images only) gives each band its own gain of 1 +- 2 x band_jitter
      and offset of +-band_jitter (uniform): colour casts between sources and acquisitions; 0 = off.

    :meth:`for_domain` gives the defaults, the same mild ones for every domain today: the
    stronger road set (scale 0.5-2, photometric 2, per-band 0.05), meant to carry roads-dev
    models over to imagery of other sources, bought no measurable cross-domain IoU and, with
    clDice, cost 3.9 road IoU points in 5-fold cross-validation without SAM2 weights
    (docs/training.md, "Recipe vs plain, all 5 folds").
    """

    scale: tuple[float, float] = AUGMENT_DEFAULTS["default"]["scale"]
    photometric: float = AUGMENT_DEFAULTS["default"]["photometric"]
    band_jitter: float = AUGMENT_DEFAULTS["default"]["band_jitter"]

    def __post_init__(self) -> None:
        lo, hi = (float(v) for v in self.scale)
        if not (0 < lo <= hi) or not np.isfinite(hi):
            raise ValueError(f"scale range must be 0 < low <= high, got {self.scale}")
        if self.photometric < 0 or self.band_jitter < 0:
            raise ValueError("photometric and band_jitter strengths must be >= 0")

    @classmethod
    def for_domain(cls, domain: str | None) -> Augmentation:
        """Defaults for ``domain`` (``"roads"``, ``None`` or any other name): its entry of
        :data:`~sam2elnet.option_values.AUGMENT_DEFAULTS`, else the ``default`` one."""
        return cls(**AUGMENT_DEFAULTS.get(domain or "default", AUGMENT_DEFAULTS["default"]))

    def describe(self) -> str:
        """One line for logs: 'scale 0.5-2, photometric 2, per-band 0.05'."""
        return (
            f"scale {self.scale[0]:g}-{self.scale[1]:g}, photometric {self.photometric:g}, "
            f"per-band {self.band_jitter:g}"
        )


def jitter(
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
