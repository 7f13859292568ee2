"""The model at inference: :class:`Predictor`, a trained model file ready to label images.

:class:`Predictor` wraps a model file: normalisation, batched bf16 inference (images grouped by
size; padding to a multiple of 32 happens inside the model), test-time-augmentation views and the
label quality evaluator, all restored from the one model file. :class:`QualityScoringPredictor`
adapts it to scene prediction with per-window quality. The folder jobs built on it live in
:mod:`sam2elnet.engine.infer`; large scenes in :mod:`sam2elnet.engine.scene`, which calls
:meth:`Predictor.predict_arrays` on already normalised windows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sam2elnet.engine import memory
from sam2elnet.engine.coarse_rule import CoarseRule
from sam2elnet.engine.predict_inputs import check_batch_coarse, check_predict_inputs, predictor_repr
from sam2elnet.engine.quality_filter import (
    keep_threshold,
    more_labels_advice,
    no_evaluator_advice,
)
from sam2elnet.engine.runtime import (
    NON_FINITE_OUTPUT,
    autocast,
    resolve_device,
    resolve_precision,
    run_model,
    set_threads,
    speed_levers,
)
from sam2elnet.errors import BandCountError, CheckpointError, DataError, UserError
from sam2elnet.model.input_flags import unusable_text
from sam2elnet.model.io import check_weights_finite
from sam2elnet.model.quality import QualityEvaluator, QualityResult
from sam2elnet.model.quality_features import FEATURE_NAMES
from sam2elnet.option_checks import api_option, option_default
from sam2elnet.options import FolderJobOptions
from sam2elnet.utils.advice import plural
from sam2elnet.utils.run_warnings import warn_once
from sam2elnet.utils.shape_batches import batches_by_key

log = logging.getLogger(__name__)

__all__ = ["UNFITTED_EVALUATOR", "Predictor", "QualityScoringPredictor"]

UNFITTED_EVALUATOR = "this model's quality evaluator is not fitted"
"""The start of the warning a model with an unfitted evaluator gives when loaded, and its kind
(:func:`sam2elnet.utils.run_warnings.warn_once`; :func:`~sam2elnet.utils.run_warnings.hidden`
keeps it out where the caller has said it already)."""
OTHER_TTA = "TTA differs from the quality evaluator's"
"""The kind of the warning about a ``tta`` other than the evaluator was fitted with."""


def _mask(valid: np.ndarray) -> np.ndarray:
    """A valid mask (H, W) for :func:`~sam2elnet.engine.runtime.run_model`: bool kept as it is
    (one byte a pixel), any other dtype as float32 (1 = measured)."""
    a = np.asarray(valid)
    a = a[0] if a.ndim == 3 else a  # (1, H, W) as (H, W)
    return a if a.dtype == bool else a.astype(np.float32, copy=False)


class Predictor:
    """A trained model ready for inference (see module docstring).

    Made from a model and its ``extra`` record (:func:`sam2elnet.model.load_model`), or from a
    model file with :meth:`from_file`.

    Raises:
        CheckpointError: the model holds NaN/Inf weights, ``extra`` an invalid normalisation
            config or an unreadable quality evaluator (naming ``path`` when given).
        UserError: ``max_memory`` is not a size of at least 1 MiB, or ``device`` is unknown or
            CUDA is asked for where it is not available.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        extra: dict[str, Any],
        device: str = option_default(FolderJobOptions, "device"),
        precision: str = option_default(FolderJobOptions, "precision"),
        batch_size: int = option_default(FolderJobOptions, "batch_size"),
        tta: int | None = None,
        path: Path | None = None,
        channels_last: bool | None = None,
        compile: bool | None = None,
        max_memory: int | str | None = None,
        bf16_trunk: bool | None = None,
    ) -> None:
        from sam2elnet.data.normalize import NormalizationConfig

        set_threads()
        #: memory budget in bytes (``--max-memory``): batches are formed within it and the folder
        #: jobs predict images whose whole-image estimate exceeds it window by window
        self.max_memory = memory.parse_memory(
            memory.DEFAULT_MAX_MEMORY if max_memory is None else max_memory
        )
        self.path = path
        self.device = resolve_device(device)
        #: "bf16" or "32": ``precision`` resolved for this device ("auto": bf16 only where the
        #: hardware computes it natively; engine.runtime.resolve_precision)
        self.precision = resolve_precision(precision, self.device)
        self.batch_size = max(1, int(batch_size))
        self.model = model.to(self.device).eval()
        # what forward passes call: the model (channels-last, bf16 trunk by default) or its
        # compiled form (opt-in); see engine.runtime.speed_levers
        self.net = speed_levers(
            self.model,
            channels_last=channels_last,
            compile=compile,
            bf16_trunk=False if self.precision != "bf16" else bf16_trunk,
        )
        self.extra = extra
        norm = extra.get("normalization") or getattr(model.config, "normalization", None) or {}
        try:
            self.normalization = NormalizationConfig.model_validate(norm)
        except Exception as err:
            raise CheckpointError(
                f"model file has an invalid normalisation config ({err})", path
            ) from None
        self.in_bands = int(model.config.in_bands)
        check_weights_finite(self.model, path)
        try:
            self.evaluator = QualityEvaluator.from_state(extra.get("quality"))
        except (ValueError, KeyError, TypeError) as err:
            raise CheckpointError(
                f"the quality evaluator in this model file is unreadable ({err}); re-fit it with "
                "sam2elnet.engine.quality_fit.fit_quality or retrain",
                path,
            ) from None

        # a model loaded again (the stages of an experiment) says it once: keyed by its file
        # and the text, as Python's warnings said it once
        if not self.evaluator.fitted:
            why, advice = self.evaluator.warning or self.evaluator.status, more_labels_advice()
            if not extra.get("quality"):  # none stored: not "too few labels" (--no-quality)
                no_quality = api_option("fit_quality=False", "--no-quality")
                why = f"the model file holds none: trained with {no_quality}, or saved without one"
                advice = no_evaluator_advice(path)
            text = (
                f"{UNFITTED_EVALUATOR} ({why}); predicted IoUs are conservative (at most "
                f"{self.evaluator.prior:.2f}) and do not rank labels well - {advice}"
            )
            warn_once(log, UNFITTED_EVALUATOR, text, key=f"{path}: {text}")
        self.tta = self.evaluator.tta if tta is None else int(tta)
        if tta is not None and self.evaluator.fitted and tta != self.evaluator.tta:
            text = (
                f"tta={tta} differs from the {self.evaluator.tta} views the quality evaluator was "
                "fitted with; predicted IoUs will be less reliable"
            )
            warn_once(log, OTHER_TTA, text, key=f"{path}: {text}")

    def __repr__(self) -> str:
        return predictor_repr(self)

    @classmethod
    def from_file(
        cls,
        path: str | Path,
        device: str = option_default(FolderJobOptions, "device"),
        precision: str = option_default(FolderJobOptions, "precision"),
        batch_size: int = option_default(FolderJobOptions, "batch_size"),
        tta: int | None = None,
        channels_last: bool | None = None,
        compile: bool | None = None,
        max_memory: int | str | None = None,
        bf16_trunk: bool | None = None,
    ) -> Predictor:
        """Load a model file written by ``elnet train``.

        ``channels_last`` / ``bf16_trunk`` (on by default) / ``compile`` (opt-in): speed levers (see
        :func:`sam2elnet.engine.runtime.speed_levers`).

        Raises:
            CheckpointError: ``path`` does not exist, is truncated, is not a sam2elnet model file,
                holds NaN/Inf weights, an invalid normalisation config or an unreadable quality
                evaluator (one line naming ``path``).
            UserError: ``max_memory`` is not a size of at least 1 MiB, or ``device`` is unknown
                or CUDA is asked for where it is not available.
        """
        # the network's modules import transformers: loaded only when a model is built or read
        from sam2elnet.model import load_model

        p = Path(path)
        if not p.exists():
            raise CheckpointError("model file does not exist; train one with `elnet train`", p)
        try:
            model, extra = load_model(p)
        except UserError:
            raise
        except Exception as err:  # truncated or foreign files surface as many exception types
            raise CheckpointError(
                f"cannot read model file ({err.__class__.__name__}); it is truncated or not a "
                "sam2elnet model - re-copy it or retrain",
                p,
            ) from None
        return cls(
            model,
            extra,
            device=device,
            precision=precision,
            batch_size=batch_size,
            tta=tta,
            path=p,
            channels_last=channels_last,
            compile=compile,
            max_memory=max_memory,
            bf16_trunk=bf16_trunk,
        )

    # ---------------------------------------------------------------- memory
    def whole_bytes(self, pixels: int, batch: int = 1, coarse: bool = False) -> int:
        """Estimated peak resident bytes of predicting ``batch`` images of ``pixels`` px whole
        with this model, precision and TTA (:func:`sam2elnet.engine.memory.whole_image_bytes`)."""
        return memory.whole_image_bytes(pixels, batch=batch, **self._memory_kw(coarse))

    def fits_whole(self, pixels: int, coarse: bool = False) -> bool:
        """True when one image of ``pixels`` px may be predicted whole within ``max_memory``."""
        return self.whole_bytes(pixels, coarse=coarse) <= self.max_memory

    def fit_batch(self, pixels: int, coarse: bool = False) -> int:
        """Images of ``pixels`` px per forward: at most ``batch_size``, within ``max_memory``
        (at least 1)."""
        kw = self._memory_kw(coarse)
        return memory.fit_batch(pixels, self.max_memory, self.batch_size, **kw)

    def _memory_kw(self, coarse: bool) -> dict[str, Any]:
        if not hasattr(self, "_weights_bytes"):
            # the weights as loaded: a bf16 trunk (speed_levers) halves the model's bytes after
            # the load, but the load itself held the file's float32 tensors and the model's
            on_disk = self.path.stat().st_size if self.path and self.path.is_file() else 0
            self._weights_bytes = max(memory.model_bytes(self.model), on_disk)
        return {
            "size": str(getattr(self.model.config, "size", "tiny")),
            "precision": self.precision,
            "bands": self.in_bands,
            "tta": int(self.tta or 0),
            "coarse": coarse,
            "weights": self._weights_bytes,
        }

    # ---------------------------------------------------------------- preparing inputs
    def prepare(self, img: Any) -> tuple[np.ndarray, np.ndarray]:
        """RasterImage -> (normalised (C,H,W) float32 with the model's band count, valid (H,W)).

        Raises:
            BandCountError: the image has another band count than the model takes.
            DataError: the image cannot be normalised as the model was (e.g. per-band statistics
                for another band count).
        """
        from sam2elnet.data.input_kind import warn_input_kind
        from sam2elnet.data.normalize import normalize_for_model
        from sam2elnet.data.zero_pixels import warn_pixel_values

        x = normalize_for_model(img, self.normalization, self.in_bands, getattr(img, "path", None))
        valid = np.asarray(img.valid, dtype=bool)
        # the valid pixels (C, n): without nodata all of them, in the same order (no gather)
        data = img.data
        values = data.reshape(data.shape[0], -1) if img.nodata is None else data[:, valid]
        warn_pixel_values(getattr(img, "path", None), values, data.dtype, self.normalization)
        keep = valid if img.nodata is not None else None
        warn_input_kind(
            getattr(img, "path", None), data, keep, values, self.normalization, self.in_bands
        )
        return x, valid

    def set_bands(self, bands: Sequence[int] | None) -> Predictor:
        """Read these file bands (1-based, ``--bands 4,3,2``) instead of the ones the model was
        trained with (``normalization.band_select``); None keeps the model's choice.

        Raises:
            UserError: ``bands`` selects another number of bands than the model takes.
        """
        if bands:
            if len(bands) != self.in_bands:
                raise UserError(
                    f"{api_option('bands')} {','.join(map(str, bands))} selects "
                    f"{plural(len(bands), 'band')} "
                    f"but the model takes {self.in_bands}; "
                    f"give {plural(self.in_bands, 'band number')}"
                )
            self.normalization = self.normalization.model_copy(
                update={"band_select": [int(b) for b in bands]}
            )
        return self

    def read(self, path: str | Path) -> tuple[Any, np.ndarray, np.ndarray]:
        """Read and prepare one image file: (RasterImage, normalised array, valid mask).

        Returns:
            The RasterImage (file dtype), float32 (C, H, W) normalised as the model was trained
            (C: the model's band count) and bool (H, W), True where pixels hold data.

        Raises:
            BandCountError: the image has another band count than the model takes.
            DataError: the file is missing or unreadable, or all of it is nodata.
        """
        from sam2elnet.data.images import read_image

        img = read_image(path, sar=self.normalization.sar, bands=self.normalization.band_select)
        if img.nodata is not None and bool(img.nodata.all()):
            raise DataError(unusable_text("all nodata", "image"), path)
        x, valid = self.prepare(img)
        return img, x, valid

    # ---------------------------------------------------------------- prediction
    def predict_arrays(self, batch: np.ndarray, coarse: np.ndarray | None = None) -> np.ndarray:
        """Probabilities (B,h,w) float32 for already normalised arrays (B,C,h,w); no TTA, no scoring.

        The fast path for sliding-window scene inference (:mod:`sam2elnet.engine.scene`).
        ``coarse`` is (B,h,w) or (B,1,h,w) in {0,1} for enhancement. Batches come from the one
        grouping rule (:func:`~sam2elnet.utils.shape_batches.batches_by_key`), at most
        ``batch_size`` images and :data:`sam2elnet.engine.memory.BATCH_PIXELS` px per forward.

        Raises:
            DataError: ``batch`` is not (B, C, h, w) with the model's band count C, or
                ``coarse`` is neither (B, h, w) nor (B, 1, h, w).
            CheckpointError: finite inputs gave NaN/Inf outputs (a broken model file).
        """
        arr = np.asarray(batch, dtype=np.float32)
        if arr.ndim != 4 or arr.shape[1] != self.in_bands:
            raise DataError(f"expected arrays of shape (B, {self.in_bands}, h, w), got {arr.shape}")
        check_batch_coarse(arr.shape, coarse)
        out = np.empty((arr.shape[0], arr.shape[2], arr.shape[3]), dtype=np.float32)
        # at most batch_size images and memory.BATCH_PIXELS px per forward (faster on the CPU);
        # one shape, so the grouping rule gives consecutive runs of indices (slices, no copies)
        step = max(
            1, min(self.batch_size, memory.BATCH_PIXELS // max(1, arr.shape[2] * arr.shape[3]))
        )
        for sel in batches_by_key([arr.shape[2:]] * len(arr), step):
            s = sel[0]
            x = torch.from_numpy(arr[s : s + len(sel)]).to(self.device)
            c = None
            if coarse is not None:
                c = torch.from_numpy(np.asarray(coarse[s : s + len(sel)], dtype=np.float32))
                c = c.reshape(x.shape[0], 1, *x.shape[-2:]).to(self.device)
            with torch.no_grad(), autocast(self.device, self.precision):
                o = self.net(
                    x, c, None if c is None else torch.ones(x.shape[0], device=self.device)
                )
            if bool(torch.isfinite(x).all()) and not bool(torch.isfinite(o.logits).all()):
                raise CheckpointError(NON_FINITE_OUTPUT, self.path)
            out[s : s + len(x)] = torch.sigmoid(o.logits.float())[:, 0].cpu().numpy()
        return out

    def predict(
        self,
        images: Sequence[np.ndarray] | np.ndarray,
        coarse: Sequence[np.ndarray | None] | np.ndarray | None = None,
        valid: Sequence[np.ndarray | None] | None = None,
        rule: CoarseRule | None = None,
    ) -> tuple[list[np.ndarray], QualityResult]:
        """Probability maps and quality scores for normalised images (each (C,H,W), any sizes).

        ``images``: float (C, H, W), normalised as in training (:meth:`read` / :meth:`prepare`).
        ``coarse`` / ``valid``: None, or one (H, W) or (1, H, W) mask (or None) per image:
        coarse bool or 0/1; valid True / 1 where pixels hold data (the only pixels scored).

        Images are grouped by size (and coarse label or none) by the one grouping rule,
        :func:`~sam2elnet.utils.shape_batches.batches_by_key`, in batches of at most
        ``batch_size`` images whose memory estimate stays within ``max_memory`` (:meth:`fit_batch`,
        per size: fewer large images per batch); ``coarse`` (one (H,W) mask
        per image, or None) turns annotation into enhancement. Returns a list of (H,W) float32 maps
        in input order and a :class:`QualityResult` with one row per image. ``rule`` (a
        :class:`~sam2elnet.engine.coarse_rule.CoarseRule`) ties each enhanced map to its coarse
        label (images without one are not affected), see :func:`run_model`.

        Raises:
            DataError: before any forward, images that are not float (C, H, W), masks of
                another count or size, coarse values outside [0, 1] (:func:`check_predict_inputs`).
            BandCountError: an image has another band count than the model takes.
            CheckpointError: finite inputs gave NaN/Inf outputs (a broken model file).
        """
        n = len(images)
        check_predict_inputs(images, coarse, valid)
        keys: list[tuple[tuple[int, ...], bool]] = []  # (image shape, has a coarse label)
        for i, im in enumerate(images):
            keys.append((tuple(np.asarray(im).shape), coarse is not None and coarse[i] is not None))
        probs: list[np.ndarray | None] = [None] * n
        feats = np.zeros((n, len(FEATURE_NAMES)))
        embs: np.ndarray | None = None
        in_flags = [""] * n
        # one shape (and coarse or not) per batch, as many images as fit (fit_batch)
        for sel in batches_by_key(keys, lambda k: self.fit_batch(k[0][1] * k[0][2], coarse=k[1])):
            has_c = keys[sel[0]][1]
            x = torch.from_numpy(np.stack([np.asarray(images[i], np.float32) for i in sel]))
            if x.shape[1] != self.in_bands:
                raise BandCountError(
                    f"images have {x.shape[1]} bands but the model was trained for {self.in_bands}"
                )
            c = None
            if has_c:
                hw = tuple(x.shape[-2:])  # accept (H,W) or (1,H,W) coarse masks
                c = torch.from_numpy(
                    np.stack([np.asarray(coarse[i], np.float32).reshape(hw) for i in sel])  # type: ignore[index]
                )[:, None]
            v = None
            # bool masks (prepare's) stay one byte a pixel; run_model drops an all-valid mask
            if valid is not None and any(valid[i] is not None for i in sel):
                v = torch.from_numpy(
                    np.stack(
                        [
                            np.ones(x.shape[-2:], bool) if valid[i] is None else _mask(valid[i])
                            for i in sel
                        ]
                    )
                )
            try:
                res = run_model(
                    self.net,
                    x,
                    c,
                    device=self.device,
                    precision=self.precision,
                    tta=self.tta,
                    valid=v,
                    rule=rule if has_c else None,
                )
            except CheckpointError as err:
                raise CheckpointError(str(err), self.path) from None
            if embs is None:
                embs = np.zeros((n, res.embedding.shape[1]))
            for j, i in enumerate(sel):
                probs[i] = res.probs[j].numpy()
                feats[i] = res.features[j]
                embs[i] = res.embedding[j]
                in_flags[i] = res.flags[j] if res.flags else ""
        if not n:
            return [], QualityResult(np.zeros(0), feats, flags=[])
        scores, q_flags = self.evaluator.assess(feats, embs)
        # garbage inputs (all nodata, constant...) carry no label: score 0, never kept
        flags = [a or b for a, b in zip(in_flags, q_flags, strict=True)]
        scores = np.where([bool(f) for f in in_flags], 0.0, scores)
        return [p for p in probs if p is not None], QualityResult(scores, feats, flags=flags)

    # ---------------------------------------------------------------- thresholds
    def choose_threshold(
        self,
        min_quality: float | None = None,
        target_precision: float | None = None,
        tau: float | None = None,
    ) -> tuple[float | None, dict[str, Any]]:
        """Score threshold for keeping labels, and ``summary.json``'s ``filter`` entry:
        :func:`~sam2elnet.engine.quality_filter.keep_threshold` with this model's evaluator.

        Raises:
            UserError: both ``min_quality`` and ``target_precision`` given, a value out of range,
                or ``target_precision`` with an evaluator that was not fitted.
        """
        return keep_threshold(self.evaluator, min_quality, target_precision, tau, self.path)


class QualityScoringPredictor:
    """Adapter: a real :class:`Predictor` that also scores each window.

    ``Predictor.predict`` returns probabilities *and* the quality evaluator's predicted IoU from
    one forward (plus the evaluator's test-time views), so ``predict_arrays`` runs it and keeps
    the scores for the ``score_arrays`` call that :func:`~sam2elnet.engine.executors.run_batch` makes right after, on the same
    batch. Slower than plain ``predict_arrays`` by the TTA views; used only with ``--quality-gpkg``.
    """

    takes_valid = True  # run_batch hands it the windows' valid masks

    def __init__(self, predictor: Any) -> None:
        self.predictor = predictor
        self.in_bands = predictor.in_bands
        self.normalization = predictor.normalization
        self.fitted = bool(getattr(getattr(predictor, "evaluator", None), "fitted", False))
        self._scores: np.ndarray | None = None

    def predict_arrays(
        self, batch: np.ndarray, coarse: np.ndarray | None, valid: np.ndarray | None = None
    ) -> np.ndarray:
        """Probabilities (B, h, w) of ``batch``; each window's predicted IoU kept for
        :meth:`score_arrays`, scored over its ``valid`` pixels ((B, h, w), 1 = measured; None:
        all), as ``Predictor.predict`` scores an image with nodata in ``elnet annotate``."""
        c = None if coarse is None else list(coarse)
        v = None if valid is None else list(valid)
        probs, q = self.predictor.predict(list(batch), c, valid=v)
        self._scores = np.asarray(q.predicted_iou, dtype=np.float32)
        return np.stack(probs).astype(np.float32)

    def score_arrays(
        self, batch: np.ndarray, coarse: np.ndarray | None, probs: np.ndarray
    ) -> np.ndarray:
        if self._scores is None or len(self._scores) != len(batch):
            raise RuntimeError("score_arrays must follow predict_arrays on the same batch")
        out, self._scores = self._scores, None
        return out
