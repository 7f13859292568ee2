"""Scene-global normalisation: one scaling for every window of a scene.

:func:`make_scene_normalizer` freezes a predictor's normalisation into statistics of the whole
scene (a decimated overview read, :data:`_OVERVIEW_PIXELS`), so neighbouring windows see
identical pixel values and no seams appear; :class:`SceneNormalizer` applies it to a window.
Used by :class:`sam2elnet.engine.scene_inputs.SceneInputs`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from sam2elnet.data.tiling import decimated_read, overview_alpha
from sam2elnet.data.validity import alpha_tagged, dataset_valid, is_alpha_band
from sam2elnet.errors import DataError

__all__ = [
    "SceneNormalizer",
    "ValueSpread",
    "make_scene_normalizer",
    "range_flag",
    "raw_flag",
    "row_strips",
    "scan_flag",
    "unusable_scene_error",
]

_OVERVIEW_PIXELS = 1_000_000
"""Pixels of the decimated overview read that fixes the normalisation statistics."""


def unusable_scene_error(flag: str, path: Any, stale_overviews: bool = False) -> DataError:
    """The error of a scene that gets no label: ``flag`` (:data:`~sam2elnet.model.input_flags.
    REJECT_FLAGS`: ``all nodata``, ``constant image``, the clipped flag; the words of
    :func:`~sam2elnet.model.input_flags.spread_flag`), what it means and what to do
    (:func:`~sam2elnet.model.input_flags.unusable_text`), naming ``path`` (the scene). The one
    wording of ``elnet scene`` and a batch's skip reason. ``stale_overviews``: the file's
    overviews showed valid pixels that no full-resolution window holds (they were built before
    the pixels were overwritten); the message says to rebuild them."""
    from sam2elnet.model.input_flags import unusable_text

    text = unusable_text(flag, "scene")
    if stale_overviews:
        text += (
            "; its overviews (the reduced-resolution copies GIS programs show when zoomed out) "
            "hold data its full-resolution pixels do not: they are out of date, rebuild them "
            "(gdaladdo -clean, then gdaladdo)"
        )
    return DataError(text, path)


@dataclass
class SceneNormalizer:
    """Scene-global normalisation: the same scaling for every window.

    ``cfg`` is a NormalizationConfig whose statistics are fixed (``fixed``/``stats`` method), or
    None for the built-in fallback (per-band ``low``/``high`` linear stretch). Nodata pixels become
    0 after scaling, exactly as :func:`sam2elnet.data.normalize.normalize` treats single images in
    training and in ``elnet annotate``, so a scene window looks to the model like a chip would.
    """

    low: np.ndarray
    high: np.ndarray
    cfg: Any = None
    bands: list[int] | None = None  # 1-based band indexes read from the source (None: all)
    repeat: int = 0  # >0: the single band read is repeated to this many (band_layout "repeat")
    alpha: bool = False  # the last file band is alpha (a mask), by data.images.is_alpha_band
    overview_varies: bool = False
    """The valid pixels of the decimated overview (or sample) that fixed the statistics vary
    after scaling: the scene is certainly not constant (:meth:`SceneInputs.check_usable
    <sam2elnet.engine.scene_inputs.SceneInputs.check_usable>` then reads nothing more)."""

    def __call__(self, data: np.ndarray, valid: np.ndarray) -> np.ndarray:
        if self.repeat:  # before scaling: per-band statistics of the model apply to each copy
            data = np.repeat(data, self.repeat, axis=0)
        return self._scale(data, valid)

    def _scale(self, data: np.ndarray, valid: np.ndarray) -> np.ndarray:
        if self.cfg is not None:
            from sam2elnet.data.normalize import normalize

            return normalize(data, self.cfg, valid=valid)
        xf = np.nan_to_num(data.astype(np.float32))
        scale = np.maximum(self.high - self.low, 1e-6)
        out = (xf - self.low[:, None, None]) / scale[:, None, None]
        np.clip(out, 0.0, 1.0, out=out)
        out *= valid[None]
        return out.astype(np.float32, copy=False)


def _overview(
    src: Any, bands: list[int], max_pixels: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Decimated (C, h, w) data and (h, w) valid mask of the scene (statistics, coarse checks)."""
    return decimated_read(src, bands, max_pixels or _OVERVIEW_PIXELS)


def row_strips(src: Any, rows: int = 256) -> Iterator[Any]:
    """Full-width rasterio windows of about ``rows`` rows (a multiple of the file's block
    height), top to bottom: a full-resolution pass over a scene in bounded memory (one strip)."""
    from rasterio.windows import Window as RioWindow

    bh = int(src.block_shapes[0][0]) if src.block_shapes else 1
    step = bh * max(1, rows // max(bh, 1))
    for r in range(0, src.height, step):
        yield RioWindow(0, r, src.width, min(step, src.height - r))


def _sample_valid(src: Any, bands: list[int], alpha: bool, want: int = 200_000) -> np.ndarray:
    """Full-resolution sample of valid pixels (C, n), for scenes whose overview shows none: 64
    rows spread over the scene first, then, when those hold none either, every row (strip by
    strip, stopping at ``want`` pixels), so a small valid patch between the sampled rows is found
    and ``n == 0`` means the scene has no valid pixel at all."""
    from rasterio.windows import Window as RioWindow

    step = max(1, src.height // 64)
    sparse = (RioWindow(0, r, src.width, 1) for r in range(0, src.height, step))
    for wins in (sparse, row_strips(src)):
        chunks: list[np.ndarray] = []
        got = 0
        for win in wins:
            d = src.read(bands, window=win)
            v = dataset_valid(src, alpha, window=win)
            if np.issubdtype(d.dtype, np.floating):
                v &= np.all(np.isfinite(d), axis=0)
            if v.any():
                chunks.append(d[:, v])
                got += int(v.sum())
                if got >= want:
                    break
        if chunks:
            return np.concatenate(chunks, axis=1)
    return np.zeros((len(bands), 0))


def _scene_bands(
    src: Any, cfg: Any, in_bands: int | None, bands: list[int] | None
) -> tuple[list[int], np.ndarray, np.ndarray, bool]:
    """The file bands (1-based) a scene is read with: the whole-image reader's rules applied to
    the decimated overview (:func:`sam2elnet.data.images.overview_bands`; ``bands`` or else the
    model's ``band_select``). Predictors without a normalisation config (``builtin:smoothing``, a
    dry run) take the first band when they take one and none is chosen. Returns the bands, the
    overview's (len(bands), h, w) data and (h, w) valid mask, and whether the last band is alpha."""
    from sam2elnet.data.images import overview_bands

    data, valid = _overview(src, list(range(1, src.count + 1)))
    if bands is None and getattr(cfg, "band_select", None):
        bands = list(cfg.band_select)  # the bands the model was trained on (train --bands)
    tagged = alpha_tagged(src)
    sar = bool(getattr(cfg, "sar", False))
    chosen = overview_bands(data, valid, tagged, bands, sar, src.name)
    if cfg is None and in_bands == 1 and len(chosen) > 1 and not bands:
        chosen = chosen[:1]
    return chosen, data[[b - 1 for b in chosen]], valid, is_alpha_band(tagged, data[-1])


def make_scene_normalizer(
    src: Any, predictor: Any, bands: list[int] | None = None
) -> SceneNormalizer:
    """Freeze the predictor's normalisation into scene-global statistics.

    * The bands read follow the whole-image reader (:func:`_scene_bands`); their count is matched
      to the model's by the one rule of every prediction path
      (:func:`sam2elnet.data.band_match.band_layout`): a single band is repeated to a 3-band
      optical model's R, G, B, a grey image stored as identical bands feeds a one-band model its
      first band, any other mismatch (a single band into a VV+VH model included) is the same
      BandCountError as for a whole image.
    * ``percentile`` (per-image) configs become ``fixed`` with per-band low/high = the configured
      percentiles of a decimated overview read (after dB conversion when ``to_db``): per-window
      percentiles would give every tile a different brightness scale and visible seams.
    * ``fixed`` / ``stats`` configs are already global and are used as they are.
    * Without a config (simple predictors) the overview's 1st/99th percentiles stretch to [0, 1].

    Raises DataError when the scene holds no valid pixel at all, BandCountError for a band
    count the model cannot take.
    """
    from sam2elnet.data.band_match import band_layout, identical_bands
    from sam2elnet.data.input_kind import warn_input_kind

    cfg = getattr(predictor, "normalization", None)
    in_bands = getattr(predictor, "in_bands", None)
    chosen = list(bands) if bands else None  # --bands, for the band-count message
    bands, data, valid, alpha = _scene_bands(src, cfg, in_bands, bands)
    if valid.any():
        pix = data[:, valid]
    else:
        pix = _sample_valid(src, bands, alpha)
        if pix.shape[1] == 0:
            raise unusable_scene_error("all nodata", src.name)

    def identical() -> bool:
        norm = _normalizer_from_pixels(src, cfg, bands, pix, warn=False)
        x = norm(pix[:, None, :], np.ones((1, pix.shape[1]), bool))
        return identical_bands(x, pix[:, None, :])

    # the band count first: a count the model cannot take is that error, with no range warning
    layout = band_layout(
        len(bands),
        in_bands,
        identical,
        src.name,
        sar=bool(getattr(cfg, "sar", False)),
        names=getattr(cfg, "band_names", None),
        select=getattr(cfg, "band_select", None),
        chosen=chosen,
        file_bands=int(src.count),
        colour=len(bands) == 3 and data.dtype == np.uint8,  # RGB, alpha left out
    )
    warn_input_kind(src.name, data, valid, pix, cfg, in_bands, chosen)  # the Predictor's warnings
    if layout == "first":
        bands, pix = bands[:1], pix[:1]
    norm = _normalizer_from_pixels(src, cfg, bands, pix)
    norm.alpha = alpha
    if layout == "repeat":
        norm.repeat = int(in_bands)
    ranges = (pix.min(axis=1).astype(np.float64), pix.max(axis=1).astype(np.float64))
    norm.overview_varies = range_flag(norm, ranges, pix.dtype) == ""
    return norm


def _normalizer_from_pixels(
    src: Any, cfg: Any, bands: list[int], pix: np.ndarray, warn: bool = True
) -> SceneNormalizer:
    """The :class:`SceneNormalizer` of ``bands`` from valid raw pixels ``pix`` (C, n); ``warn``
    logs the untagged-zero and input range warnings
    (:func:`~sam2elnet.data.zero_pixels.warn_pixel_values`, the Predictor's; once per run)."""
    from sam2elnet.data.normalize import NormalizationConfig, to_db
    from sam2elnet.data.zero_pixels import warn_pixel_values

    if warn and isinstance(cfg, NormalizationConfig):
        warn_pixel_values(src.name, pix, src.dtypes[bands[0] - 1], cfg)
    pix = pix.astype(np.float32)
    if cfg is not None:
        method = getattr(cfg, "method", None)
        if method == "percentile":
            work = to_db(pix, cfg.db_floor) if getattr(cfg, "to_db", False) else pix
            lo, hi = np.percentile(work, [cfg.p_low, cfg.p_high], axis=1)
            cfg = cfg.model_copy(
                update={
                    "method": "fixed",
                    "low": [float(v) for v in lo],
                    "high": [float(v) for v in hi],
                }
            )
        return SceneNormalizer(low=np.zeros(0), high=np.zeros(0), cfg=cfg, bands=bands)
    lo, hi = np.percentile(pix, [1.0, 99.0], axis=1).astype(np.float32)
    return SceneNormalizer(low=lo, high=hi, cfg=None, bands=bands)


class ValueSpread:
    """Streaming per-band value ranges of a scene's valid pixels, gathered as the windows are read
    (no second read), for the scene's ``quality_flag``
    (:func:`sam2elnet.model.quality_features.spread_flag`, the whole-image rule).

    :meth:`add` takes each window's raw (C, h, w) pixels, its scaled model input and its (h, w)
    valid mask; it stops looking once the scaled values vary (a scene with content costs the
    min/max of its first windows only, a constant scene one min/max per window).
    """

    def __init__(self) -> None:
        self.seen = False
        self.varies = False  # the scaled values vary: the scene is usable
        self.file_varies = False  # the raw values vary (a constant scaled scene was clipped)
        self._scaled: tuple[np.ndarray, np.ndarray] | None = None
        self._raw: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, data: np.ndarray, x: np.ndarray, valid: np.ndarray) -> None:
        """Count one window: ``data`` its raw pixels, ``x`` scaled, ``valid`` bool (h, w)."""
        from sam2elnet.model.input_flags import CONSTANT_SPREAD

        self.seen = self.seen or bool(valid.any())
        if self.varies or not valid.any():
            return
        self._scaled, spread = _range_update(self._scaled, x, valid)
        self.varies = spread > CONSTANT_SPREAD
        if not self.varies and not self.file_varies:
            self._raw, raw = _range_update(self._raw, data, valid)
            self.file_varies = raw > 0

    @property
    def flag(self) -> str:
        """``""``, ``"all nodata"``, ``"constant image"`` or ``"constant after scaling (...)"``."""
        from sam2elnet.model.input_flags import spread_flag

        return spread_flag(self.seen, float("inf") if self.varies else 0.0, self.file_varies)


def range_flag(
    norm: SceneNormalizer, ranges: tuple[np.ndarray, np.ndarray] | None, dtype: Any
) -> str:
    """The scene's ``quality_flag`` (:func:`~sam2elnet.model.input_flags.spread_flag`, the
    whole-image rule) from the per-band (low, high) raw values of its valid pixels (``ranges``,
    float64 (C,) each, as :func:`_range_update` gathers them; None: no valid pixel), ``dtype``
    the file's. Exact without scaling every pixel: each scaling (fixed, stats, frozen
    percentile, dB, the fallback stretch) maps a band's values by one non-decreasing function,
    so the scaled range of a band is the scaled high minus the scaled low."""
    from sam2elnet.model.input_flags import spread_flag

    if ranges is None:
        return spread_flag(False, 0.0)
    lo, hi = ranges
    pair = np.stack([lo, hi], axis=1)[:, None, :].astype(dtype)  # (C, 1, 2): each band's ends
    x = norm(pair, np.ones((1, 2), bool))
    spread = float(np.abs(x[:, 0, 1] - x[:, 0, 0]).max())
    return spread_flag(True, spread, bool((hi > lo).any()))


def scan_flag(norm: SceneNormalizer, strips: Iterable[tuple[np.ndarray, np.ndarray]]) -> str:
    """:func:`range_flag` of a scene read strip by strip: ``strips`` yields each strip's raw
    (C, h, w) pixels and (h, w) bool valid mask (the windows' rule). Stops at the first strip
    after which the scaled values vary (``""``: usable), so only a flat or empty scene is read to
    its end. Reads, never predicts: the check before the windows go to the model."""
    ranges: tuple[np.ndarray, np.ndarray] | None = None
    dtype: Any = None
    for data, valid in strips:
        if not valid.any():
            continue
        ranges, raw = _range_update(ranges, data, valid)
        dtype = data.dtype
        if raw > 0 and range_flag(norm, ranges, dtype) == "":
            return ""
    return range_flag(norm, ranges, dtype)


def raw_flag(src: Any, bands: list[int] | None = None) -> tuple[str, bool]:
    """The flag of a scene's *file* pixels, for any model: ``"all nodata"``, ``"constant image"``
    (every valid pixel of every band looked at one value) or ``""``; and, for ``"all nodata"``,
    whether the decimated overview shows valid pixels that no full-resolution pixel holds
    (overviews out of date).

    ``src``: an open rasterio dataset; ``bands``: 1-based file bands (numbers out of range are
    dropped), None: every band but an alpha one (:func:`~sam2elnet.data.tiling.overview_alpha`).
    Full-width strips (:func:`row_strips`) are read top to bottom until the valid pixels vary, so
    a scene with content costs its first strips (those with valid pixels) and only a flat or
    empty scene is read to its end; the overview is read only to name stale overviews.
    Validity: :func:`~sam2elnet.data.validity.dataset_valid` and finite values, the windows'
    rule. Raises ``rasterio.errors.RasterioError`` on a read error.
    """
    from sam2elnet.model.input_flags import spread_flag

    alpha = overview_alpha(src, _OVERVIEW_PIXELS)
    n = src.count - int(alpha)
    chosen = [b for b in bands if 1 <= b <= n] if bands else list(range(1, n + 1))
    if not chosen:
        return "", False
    ranges: tuple[np.ndarray, np.ndarray] | None = None
    for win in row_strips(src):
        d = src.read(chosen, window=win)
        v = dataset_valid(src, alpha, window=win)
        if d.dtype.kind == "f":
            v &= np.all(np.isfinite(d), axis=0)
        if v.any():
            ranges, spread = _range_update(ranges, d, v)
            if spread > 0:
                return "", False
    stale = False
    if ranges is None and src.overviews(chosen[0]):
        stale = bool(decimated_read(src, chosen, _OVERVIEW_PIXELS, alpha=alpha)[1].any())
    return spread_flag(ranges is not None, 0.0), stale


def _range_update(
    prev: tuple[np.ndarray, np.ndarray] | None, a: np.ndarray, valid: np.ndarray
) -> tuple[tuple[np.ndarray, np.ndarray], float]:
    """Per-band (low, high) of ``prev`` widened by the valid pixels of ``a`` (C, h, w), and the
    widest band range so far (float64, so an int raster's range is exact). Masked reductions
    (``where=``): no copy of the valid pixels."""
    if valid.all():
        lo, hi = a.min((1, 2)), a.max((1, 2))
    else:
        big = np.inf if a.dtype.kind == "f" else np.iinfo(a.dtype).max
        small = -np.inf if a.dtype.kind == "f" else np.iinfo(a.dtype).min
        lo = np.minimum.reduce(a, axis=(1, 2), where=valid[None], initial=big)
        hi = np.maximum.reduce(a, axis=(1, 2), where=valid[None], initial=small)
    lo, hi = lo.astype(np.float64), hi.astype(np.float64)
    if prev is not None:
        lo, hi = np.minimum(lo, prev[0]), np.maximum(hi, prev[1])
    return (lo, hi), float((hi - lo).max())
