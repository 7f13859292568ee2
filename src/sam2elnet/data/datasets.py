"""The PyTorch training / evaluation dataset: image, mask, valid and coarse tensors per sample.

:class:`SegmentationDataset` loads lazily, one file at a time, and augments for training (random
scaled crops, the 8 dihedral symmetries, mild photometric jitter: :mod:`sam2elnet.data.augment`;
coarse labels from files or simulated by :func:`sam2elnet.data.coarse.degrade`). Finding the pairs
is :mod:`sam2elnet.data.layouts`; fraction splits are :mod:`sam2elnet.data.splits`; this module
re-exports their public names (and :class:`~sam2elnet.data.augment.Augmentation`, the pair size
checks of :mod:`sam2elnet.data.pair_sizes`), so ``from sam2elnet.data.datasets import discover``
keeps working.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from sam2elnet.data.augment import Augmentation, crop_box, dihedral, jitter, resize, window
from sam2elnet.data.band_match import match_bands
from sam2elnet.data.images import read_image
from sam2elnet.data.layout_places import SOS_SENSORS
from sam2elnet.data.layouts import LAYOUTS, DatasetIndex, Sample, discover
from sam2elnet.data.load_cache import LoadCache
from sam2elnet.data.masks import read_mask, read_mask_valid
from sam2elnet.data.normalize import NormalizationConfig, image_percentiles, normalize_for_model
from sam2elnet.data.splits import SplitChoice, mask_strata, select_split, split_fraction

log = logging.getLogger(__name__)

__all__ = [
    "LAYOUTS",
    "Augmentation",
    "SOS_SENSORS",
    "DatasetIndex",
    "Sample",
    "SegmentationDataset",
    "SplitChoice",
    "discover",
    "mask_strata",
    "match_bands",
    "select_split",
    "split_fraction",
]


class SegmentationDataset(Dataset):
    """PyTorch map-style dataset of (image, mask, valid, coarse) tensors.

    Training (``train=True``): the :class:`Augmentation` (random square crop at a random scale
    resized to ``size``, one of the 8 dihedral symmetries, photometric jitter; default
    ``Augmentation()``) and, with probability ``coarse_prob``, a coarse
    label (the sample's own ``coarse`` file when it has one, else simulated by
    :func:`sam2elnet.data.coarse.degrade`). Randomness comes from a generator seeded by
    (seed, epoch, index): the same seed and epoch give the same item, in any worker.

    Evaluation (``train=False``): no augmentation, deterministic; ``eval_mode="resize"`` resizes the
    whole image to ``size``, ``"pad"`` shrinks it to fit (keeping the aspect ratio) and pads (pad is
    invalid), ``"native"`` keeps the native pixel scale, as ``elnet annotate`` / ``enhance``
    predict: the centred window of at most ``size`` px per side, so the whole image along a side
    that is not longer (a 400 x 300 px image at ``size`` 256 gives its centred 256 x 256 px window,
    a 200 x 300 px one 200 x 256 px), like one tile of annotate's whole-image windows. Native
    items are not padded: the network pads its input to a multiple of 32 px and crops the output
    back (``SAM2ELNet.forward``), as at inference, so padding never reaches a loss or a metric; items
    of several shapes are batched by shape (:func:`sam2elnet.utils.shape_batches.batches_by_key`).
    Validation during training and the quality evaluator's samples use ``"native"``.
    A coarse label is given whenever ``coarse_prob > 0`` (file, else simulated with a fixed seed).
    Masks are read by :func:`sam2elnet.data.masks.read_mask_valid` (``positive_values`` for
    class-index masks); their ignore / nodata pixels are 0 in ``valid``, so no loss sees them.

    ``cache`` (:class:`~sam2elnet.data.load_cache.LoadCache`, None: none) keeps whole reads
    (:meth:`load`) in memory, so an image is decoded once, not once an epoch; the same items
    either way. Several datasets may share one (keyed by files, band count, normalisation and
    ``positive_values``).

    Large GeoTIFFs (a whole read above ``window_bytes``, default
    :data:`sam2elnet.data.windowed.WINDOW_MIN_BYTES` = 64 MB, and larger than the largest crop)
    are never read whole: a training item reads only its crop's window (the same random box, so
    the item is identical to the whole-read one; per-image percentile normalisation uses the
    file's statistics sample, see :mod:`sam2elnet.data.windowed_image`), a ``"native"``
    evaluation item only its centred window, and a ``"resize"`` / ``"pad"`` one decimates the file
    to at least ``4 * size`` px per side before resizing as usual (close to, not bit-identical
    with, resizing the whole image). Other files keep the whole read.

    Raises:
        DataError: ``train=True`` with a ``coarse_profile`` training must not use (held out for
            evaluation, or unknown; :func:`sam2elnet.data.coarse.check_train_profile`).
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
        eval_mode: Literal["resize", "pad", "native"] = "resize",
        positive_values: tuple[float, ...] | None = None,
        window_bytes: int | None = None,
        cache: LoadCache | None = None,
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
        self.cache = cache
        self._norm_key = self.norm_cfg.model_dump_json()  # a cache key part (shared caches)
        # in shared memory: DataLoader workers (persistent across epochs) hold their own copy of
        # the dataset made when they started, so a plain attribute set in the main process
        # would never reach them and every epoch would repeat the first one's crops and
        # coarse labels (seen on a GPU: training IoU 0.97, validation falling from epoch ~20)
        self._epoch = torch.zeros((), dtype=torch.int64)
        if train:  # evaluation draws no augmentation: no shared memory needed
            self._epoch.share_memory_()
        self._plans: dict[int, tuple[Any, Any, Any] | None] = {}
        self._norms: dict[int, NormalizationConfig] = {}

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def epoch(self) -> int:
        """The epoch whose augmentation stream ``__getitem__`` draws (0 until :meth:`set_epoch`)."""
        return int(self._epoch.item())

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation stream (call once per epoch, before iterating). Seen by
        DataLoader workers already running (``persistent_workers``) as well: the value lives in
        shared memory."""
        self._epoch.fill_(int(epoch))

    def _rng(self, index: int) -> np.random.Generator:
        epoch = self.epoch if self.train else 0
        return np.random.default_rng(
            np.random.SeedSequence([self.seed & 0xFFFFFFFF, epoch, index, 17])
        )

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Full-size normalised image, mask, valid and coarse file (if any), without augmentation;
        from the ``cache`` when one is given and ``bands`` is set (read-only arrays then).

        Raises:
            BandCountError: the image has another band count than the model takes.
            DataError: the image, mask or coarse label is missing, unreadable or of another size.
        """
        if self.cache is None or self.bands is None:  # bands not set yet: not kept
            return self._read(index)
        s = self.samples[index]
        # grey is read as 1 or 3 bands; one cache may serve datasets normalised differently, or
        # reading another class of a class-index mask
        key = (
            str(s.image),
            str(s.mask),
            str(s.coarse),
            self.bands,
            self._norm_key,
            None if self.positive_values is None else tuple(self.positive_values),
        )
        return self.cache.fetch(key, lambda: self._read(index))  # type: ignore[return-value]

    def _read(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """:meth:`load` from the files."""
        s = self.samples[index]
        img = read_image(s.image, sar=self.norm_cfg.sar, bands=self.norm_cfg.band_select)
        x = normalize_for_model(img, self.norm_cfg, self.bands, s.image)
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

        Raises:
            DataError: a file of the sample is missing or unreadable.
        """
        if index in self._plans:
            return self._plans[index]
        from sam2elnet.data import windowed as win
        from sam2elnet.data.windowed_image import image_plan
        from sam2elnet.data.windowed_mask import mask_plan

        s = self.samples[index]
        side = int(round(self.size * max(self.augmentation.scale))) if self.train else self.size
        plans = None
        if win.use_windows(s.image, self.window_bytes, side):
            ip = image_plan(s.image, sar=self.norm_cfg.sar, bands=self.norm_cfg.band_select)
            mp = cp = None
            if s.mask is not None and win.windowable(s.mask):
                mp = mask_plan(s.mask, ip.shape, s.image, self.positive_values)
            elif s.mask is not None:
                log.info(
                    "%s is read by windows but its label %s is %s (no windowed reads): the label "
                    "is decoded whole for every crop; save it as a tiled GeoTIFF to avoid that",
                    s.image,
                    s.mask,
                    s.mask.suffix,
                )
            if s.coarse is not None and win.windowable(s.coarse):
                cp = mask_plan(s.coarse, ip.shape, s.image)
            plans = (ip, mp, cp)
        self._plans[index] = plans
        return plans

    def prepare_windows(self) -> int:
        """Decide whole vs windowed reads for every sample now (in this process, so DataLoader
        workers inherit the plans); return how many samples are read by windows.

        Raises:
            DataError: a file of a sample is missing or unreadable (:meth:`windowed`).
        """
        return sum(self.windowed(i) is not None for i in range(len(self.samples)))

    def _norm_for(self, index: int, plan: Any) -> NormalizationConfig:
        """The normalisation of a windowed sample: per-image percentiles (``percentile``
        method) become a ``fixed`` range from the file's statistics sample, so every window is
        scaled like the whole image; global methods are used as they are."""
        cfg = self.norm_cfg
        if cfg.method != "percentile":
            return cfg
        if index not in self._norms:
            from sam2elnet.data.windowed_image import sample_image

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
        from sam2elnet.data import windowed_mask

        if path is None:
            return None, None
        if plan is not None:
            if box is not None:
                return windowed_mask.read_mask_window(plan, *box)
            return windowed_mask.read_mask_decimated(plan, step)
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
        ``step``-th row and column: the same values as the same pixels of :meth:`load`.

        Raises:
            BandCountError: the image has another band count than the model takes.
            DataError: a window of the image, mask or coarse label cannot be read.
        """
        from sam2elnet.data import windowed_image

        plans = self.windowed(index)
        if plans is None:
            raise ValueError(f"sample {index} is not read by windows")
        ip, mp, cp = plans
        s = self.samples[index]
        img = (
            windowed_image.read_image_window(ip, *box)
            if box is not None
            else windowed_image.read_image_decimated(ip, step)
        )
        x = normalize_for_model(img, self._norm_for(index, ip), self.bands, s.image)
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
            y, x, side = crop_box(rng, h, w, self.size, self.augmentation.scale)
            arrays = [window(a, y, x, side) for a in arrays]
        else:
            arrays = [window(a, 0, 0, side) for a in arrays]
        k = int(rng.integers(8))
        out = []
        for a, is_label in zip(arrays, labels, strict=True):
            a = resize(a, self.size, nearest=is_label)
            out.append(dihedral(a, k))
        return out

    def _centred_box(self, h: int, w: int) -> tuple[int, int, int, int]:
        """(row, col, height, width) of the centred window of at most ``size`` px per side."""
        ch, cw = min(h, self.size), min(w, self.size)
        return (h - ch) // 2, (w - cw) // 2, ch, cw

    def _geometry_eval(self, arrays: list[np.ndarray], labels: list[bool]) -> list[np.ndarray]:
        if self.eval_mode == "native":
            r, c, ch, cw = self._centred_box(*arrays[0].shape[-2:])
            return [np.ascontiguousarray(a[..., r : r + ch, c : c + cw]) for a in arrays]
        if self.eval_mode == "resize":
            return [
                resize(a, self.size, nearest=lab) for a, lab in zip(arrays, labels, strict=True)
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
            out.append(window(a, 0, 0, self.size))
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
            y0, x0, side = crop_box(rng, h, w, self.size, self.augmentation.scale)
            x, mask, valid, coarse = self.load_window(index, (y0, x0, side, side))
        elif self.eval_mode == "native":  # native scale: only the centred window is read
            x, mask, valid, coarse = self.load_window(index, self._centred_box(*plans[0].shape))
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
            x = jitter(x, v, rng, self.augmentation)
        cm, has = self._coarse(rng, m, c, index)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(x)),
            "mask": torch.from_numpy(m[None].astype(np.float32)),
            "valid": torch.from_numpy(v[None].astype(np.float32)),
            "coarse": torch.from_numpy(np.ascontiguousarray(cm)[None].astype(np.float32)),
            "has_coarse": torch.tensor(has, dtype=torch.float32),
            "id": self.samples[index].id,
        }
