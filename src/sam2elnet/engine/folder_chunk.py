"""The per-image work of a folder job, one chunk of images at a time: :func:`process_chunk`.

Read, predict, score, decide kept/rejected and write (labels, change maps, probability maps,
warped onto a map grid with ``--warp-to``). The local loop and each Ray worker run exactly this
code with the same :class:`ChunkSpec`, so the outputs are the same whichever backend runs it.

Which images make a chunk: :class:`ChunkPlanner` reads each image's size from its header once and
weighs it with the predictor's whole-image estimate
(:meth:`~sam2elnet.engine.predictor.Predictor.whole_bytes`): an image over ``--max-memory`` is
predicted window by window (:mod:`sam2elnet.engine.folder_large`), the others are grouped into
chunks that stay within it and end on whole forward batches (:func:`whole_batches`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.data.naming import GEO_SUFFIXES
from sam2elnet.data.vector_shared import (
    SharedRaster,
    SharedVector,
    frame_of,
    is_shared,
    say_file_notes,
    warn_no_features,
)
from sam2elnet.engine import memory
from sam2elnet.engine.change_maps import change_stats, write_change_map
from sam2elnet.engine.coarse_rule import CoarseRule
from sam2elnet.engine.predictor import Predictor
from sam2elnet.errors import DataError
from sam2elnet.model.input_flags import is_unusable, spread_flag
from sam2elnet.option_values import DEFAULT_LINE_WIDTH_UNIT, DEFAULT_WARP_METHOD, LineWidthUnit
from sam2elnet.utils.run_warnings import RunWarnings, warn_once

log = logging.getLogger(__name__)

__all__ = [
    "ChunkPlanner",
    "whole_batches",
    "ChunkSpec",
    "ChunkOutput",
    "CoarseFile",
    "process_chunk",
    "check_warp_input",
    "warp_outputs",
    "warn_gcps_only",
    "drop_counterpart",
]


CoarseFile = Path | SharedVector | SharedRaster
"""An image's coarse label in a folder job: its file (raster or vector), a vector file that
several images share, read once for the job (:func:`~sam2elnet.data.vector_shared.share_vectors`),
or one raster for all images (a regional label)."""


@dataclass(frozen=True)
class ChunkSpec:
    """What every chunk of one folder job needs besides its files (picklable, sent to workers).

    ``task`` is ``"annotate"`` or ``"enhance"``; ``out`` the run folder (on a file system every
    worker sees); ``threshold`` the score a label needs to be kept (chosen once for the whole job
    by :meth:`Predictor.choose_threshold`, so every worker applies the same); the rest are the
    enhance/annotate output options.
    """

    task: str
    out: Path
    threshold: float | None
    save_prob: bool = False
    save_changes: bool = True
    line_width: float | None = None
    line_width_unit: LineWidthUnit = DEFAULT_LINE_WIDTH_UNIT  # of line_width
    positive_values: tuple[float, ...] | None = None
    warp_to: str | None = None
    warp_method: str = DEFAULT_WARP_METHOD
    #: enhance: how far a label may depart from its coarse label (engine.coarse_rule)
    rule: CoarseRule | None = None

    def keeps(self, score: float) -> bool:
        """Whether a label of predicted IoU ``score`` clears the job's ``threshold`` (every label
        does without one; NaN clears none); a reject flag is checked apart."""
        return self.threshold is None or score >= self.threshold


@dataclass
class ChunkOutput:
    """Rows (``quality.csv``, input order) and skipped ``(image, reason)`` pairs of one chunk,
    and the warnings its images raised (``(logger, kind, text, key, item)``,
    :class:`~sam2elnet.utils.run_warnings.RunWarnings` ``pending``), which the job shows once
    per run."""

    rows: list[dict[str, Any]]
    skipped: list[tuple[str, str]]
    warnings: list[tuple[str, str, str, str | None, str | None]] = field(default_factory=list)


def process_chunk(
    pred: Predictor, spec: ChunkSpec, items: Sequence[tuple[Path, str, CoarseFile | None]]
) -> ChunkOutput:
    """Read, predict, score, decide and write one chunk of a folder job: the per-image work.

    The local loop and each Ray worker run exactly this function (with their own copy of the
    same predictor), so outputs are byte-identical whichever backend runs it. ``items`` are
    ``(image path, label file name, coarse label file or None)``; the images are predicted in one
    :meth:`Predictor.predict` call. An image that cannot be used (unreadable, all nodata, a band
    count the model cannot take, an unreadable coarse label: a :class:`DataError`) is returned in
    ``skipped`` with the error message, and the others go on. Labels go to ``OUT/labels/``
    (kept) or ``OUT/rejected/``, each written atomically (verified, then renamed); enhancement
    adds ``OUT/changes/`` maps, ``save_prob`` ``OUT/prob/`` maps. With ``spec.warp_to`` the
    label and probability GeoTIFFs are then warped onto a map grid (:func:`warp_outputs`); an
    image that cannot be warped is skipped before it is predicted. The warnings of the chunk's
    images are not logged here but returned (``warnings``) for the job's once-per-run scope.
    """
    with RunWarnings(collect=True) as found:
        out = _process_chunk(pred, spec, items)
    out.warnings = found.pending
    return out


def _process_chunk(
    pred: Predictor, spec: ChunkSpec, items: Sequence[tuple[Path, str, CoarseFile | None]]
) -> ChunkOutput:
    from sam2elnet.data.writers import write_mask

    loaded = []
    skipped: list[tuple[str, str]] = []
    for f, name, coarse_path in items:
        try:
            check_warp_input(spec, f)
            img, x, valid = pred.read(f)
            warn_gcps_only(spec, f, img.profile)
            coarse = None if coarse_path is None else _read_coarse(spec, f, img, coarse_path)
        except DataError as err:  # incl. a band count the model cannot take
            skipped.append((str(f), str(err)))
            continue
        loaded.append((f, name, coarse_path, img, x, valid, coarse))
    rows: list[dict[str, Any]] = []
    if not loaded:
        return ChunkOutput(rows, skipped)
    probs, quality = pred.predict(
        [it[4] for it in loaded],
        coarse=[it[6] for it in loaded],
        valid=[it[5] for it in loaded],
        **({} if spec.rule is None else {"rule": spec.rule}),  # annotate: predict() as before
    )
    for (f, name, coarse_path, img, _x, valid, coarse), prob, q in zip(
        loaded, probs, quality.rows(), strict=True
    ):
        q["quality_flag"] = explain_constant(img, q["quality_flag"])
        mask = (prob > 0.5) & valid
        kept = spec.keeps(q["predicted_iou"]) and not is_unusable(q["quality_flag"])
        rel = Path("labels" if kept else "rejected") / name
        row: dict[str, Any] = {"image": str(f), "label": str(rel), "kept": kept, **q}
        _write_extras(spec, img, prob, mask, coarse, coarse_path, row)
        write_mask(spec.out / rel, mask, like=img)
        try:
            warp_outputs(spec, [spec.out / rel, spec.out / row.get("prob", "")])
        except DataError as err:  # GDAL cannot warp it: no half result in labels/
            for p in (spec.out / rel, spec.out / row.get("prob", "")):
                if p != spec.out:
                    p.unlink(missing_ok=True)
            skipped.append((str(f), str(err)))
            continue
        drop_counterpart(spec.out, rel)
        rows.append(row)
    return ChunkOutput(rows, skipped)


def explain_constant(img: Any, flag: str) -> str:
    """``flag`` (a ``quality_flag``), with ``"constant image"`` replaced by
    :data:`~sam2elnet.model.quality_features.CLIPPED_FLAG` when the file's valid, finite pixels
    (``img``, a :class:`~sam2elnet.data.images.RasterImage`) do vary in some band: the image is
    not blank, the model's scaling clipped it to one value (the range warning says how to
    rescale it). Both flags reject the label."""
    if flag != "constant image":
        return flag

    data = np.asarray(img.data)
    vals = data[:, img.valid] if img.nodata is not None else data.reshape(data.shape[0], -1)
    varies = False
    for band in vals:
        band = band[np.isfinite(band)] if band.dtype.kind == "f" else band
        varies = varies or bool(band.size and band.min() != band.max())
    return spread_flag(True, 0.0, varies)


def check_warp_input(spec: ChunkSpec, f: Path) -> None:
    """With ``spec.warp_to``: DataError (the image is skipped with it) unless ``f`` is a GeoTIFF
    whose outputs can be warped (:func:`sam2elnet.data.warp.check_warpable`: a CRS + transform or
    at least 3 GCPs with a CRS). PNG/JPEG labels carry no georeference to warp."""
    if not spec.warp_to:
        return
    if f.suffix.lower() not in GEO_SUFFIXES:
        raise DataError(
            "is not a GeoTIFF: its label has no georeference to warp; drop --warp-to or give "
            "georeferenced GeoTIFFs",
            f,
        )
    from sam2elnet.data.warp import check_warpable

    check_warpable(f, spec.warp_to, spec.warp_method)


def warn_gcps_only(spec: ChunkSpec, f: Path, profile: dict[str, Any]) -> None:
    """Without ``spec.warp_to``, when ``f`` is a GeoTIFF georeferenced by GCPs only
    (``profile``: the image's, with ``gcps`` / ``gcp_crs``), the warning of ``elnet scene``
    (once per run and kind, the others counted): GCPs that can place it
    (:func:`~sam2elnet.engine.scene_inputs.gcps_kept_note`: its label GeoTIFF keeps the GCPs),
    or GCPs that cannot (:func:`~sam2elnet.engine.scene_inputs.unplaceable_gcps_note`: fewer
    than 3, or no CRS; its label has no usable georeference)."""
    gcps = profile.get("gcps")
    if spec.warp_to or not gcps or f.suffix.lower() not in GEO_SUFFIXES:
        return
    from sam2elnet.data.georef import grid_kind
    from sam2elnet.engine.scene_inputs import (
        GCPS_KEPT_KIND,
        UNPLACEABLE_GCPS_KIND,
        gcps_kept_note,
        unplaceable_gcps_note,
    )

    crs = profile.get("gcp_crs")
    if grid_kind({"gcps": gcps, "crs": crs}) == "gcps":
        warn_once(log, GCPS_KEPT_KIND, gcps_kept_note(f, len(gcps), crs))
    else:  # used as if it had no georeference
        warn_once(log, UNPLACEABLE_GCPS_KIND, unplaceable_gcps_note(f, len(gcps), crs))


def warp_outputs(spec: ChunkSpec, paths: Sequence[Path]) -> None:
    """Warp each existing output GeoTIFF in ``paths`` in place onto the ``spec.warp_to`` map grid
    (:func:`sam2elnet.data.warp.warp_to_map_grid`: nearest for labels, bilinear with NaN nodata
    for float probabilities); a note per file in the log (``--verbose``). No-op without
    ``warp_to``."""
    if not spec.warp_to:
        return
    from sam2elnet.data.warp import warp_to_map_grid

    for p in paths:
        if p.is_file() and p.suffix.lower() in GEO_SUFFIXES:
            info = warp_to_map_grid(p, None, spec.warp_to, method=spec.warp_method)
            if info is not None:
                log.info(info.note())


def _read_coarse(spec: ChunkSpec, f: Path, img: Any, label: CoarseFile) -> np.ndarray | None:
    """The coarse label of image ``f`` on its pixel grid, float32 (H, W) in {0, 1}; a vector
    file already read (:class:`~sam2elnet.data.vector_shared.SharedVector`) is not read again.
    Such a file serves several images: an image it does not touch gets an empty coarse label
    and one warning per run (:func:`~sam2elnet.data.vector_shared.warn_no_features`), not an
    error. One raster for several images (:class:`~sam2elnet.data.vector_shared.SharedRaster`)
    whose footprint misses the image gives None, with that warning: the image has no coarse
    label and is predicted as annotate predicts it
    (:class:`~sam2elnet.data.grid_cover.FootprintMissed`)."""
    from sam2elnet.data.grid_cover import FootprintMissed
    from sam2elnet.data.masks import read_mask_on_grid
    from sam2elnet.data.vector import is_vector_path, rasterize_vector

    if is_vector_path(label):
        shared = is_shared(label)
        notes: list[tuple[str, str]] = []
        coarse = rasterize_vector(
            label, f, frame=frame_of(label), line_width=spec.line_width,
            line_width_unit=spec.line_width_unit, shared=shared, note_kinds=notes,
        )  # fmt: skip
        if shared:
            say_file_notes(label, notes)  # no CRS, repairs: once for the file
            if not coarse.any():
                warn_no_features(f, label)
    else:
        try:
            coarse = read_mask_on_grid(
                label, img, spec.positive_values, label="coarse label", shared=is_shared(label),
                annotated=True,
            )[0]  # fmt: skip
        except FootprintMissed:  # a shared raster missing the image: no coarse label, not empty
            return None
    return coarse.astype(np.float32)


def _write_extras(
    spec: ChunkSpec,
    img: Any,
    prob: np.ndarray,
    mask: np.ndarray,
    coarse: np.ndarray | None,
    coarse_path: CoarseFile | None,
    row: dict[str, Any],
) -> None:
    """Enhancement's change counts and map, and the probability map, of one image (into ``row``)."""
    name = Path(row["label"]).name
    if coarse is not None:
        c = coarse > 0.5
        nodata = img.nodata if img.nodata is not None and img.nodata.shape == mask.shape else None
        row.update(coarse=str(coarse_path), **change_stats(c, mask, nodata))  # over valid pixels
        if spec.save_changes:
            row["changes"] = write_change_map(spec.out, name, c, mask, nodata, img)
    if spec.save_prob:
        row["prob"] = _write_prob(spec.out, name, prob, img)


def drop_counterpart(out: Path, rel: Path) -> None:
    """A label now in labels/ must not also be in rejected/ from an earlier run (or vice
    versa): the folders and quality.csv then describe the same, current decision."""
    other = "rejected" if rel.parts[0] == "labels" else "labels"
    (out / other / Path(*rel.parts[1:])).unlink(missing_ok=True)


def _write_prob(out: Path, name: str, prob: np.ndarray, img: Any) -> str:
    from sam2elnet.data.writers import write_probability

    rel = Path("prob") / name
    write_probability(out / rel, prob, like=img)
    return str(rel)


class ChunkPlanner:
    """A folder job's images weighed against its predictor's ``max_memory`` (sizes read once)."""

    def __init__(self, p: Predictor) -> None:
        self.p = p
        self._sizes: dict[Path, tuple[int, int] | None] = {}  # header sizes, read once per file

    def tiled(self, f: Path, coarse: bool) -> bool:
        """True when ``f`` is too large to predict whole within the predictor's ``max_memory``
        (header read only; unreadable files are left to the whole-image reader to report)."""
        px = self.pixels(f)
        return px is not None and not self.p.fits_whole(px, coarse=coarse)

    def size(self, f: Path) -> tuple[int, int] | None:
        """(height, width) px from ``f``'s header (:func:`memory.image_size`), read once; None
        when GDAL cannot open it."""
        if f not in self._sizes:
            self._sizes[f] = memory.image_size(f)
        return self._sizes[f]

    def pixels(self, f: Path) -> int | None:
        """Height x width from ``f``'s header (:meth:`size`), None when it cannot be read."""
        hw = self.size(f)
        return None if hw is None else hw[0] * hw[1]

    def chunks(self, files: Sequence[Path], coarse: bool) -> Iterator[list[Path]]:
        """Consecutive groups of at most ``4 x batch_size`` files whose summed whole-image
        estimate (:meth:`Predictor.whole_bytes` of their pixels) stays within ``max_memory``.

        A group of equally large images ends on a whole number of forward batches
        (:meth:`Predictor.fit_batch`) where it can, the rest starting the next group, so the job
        runs the full batches a plain loop over the images would: 16 images of 256 px in float32
        (4 per forward, 15 within the default budget) go as 12 + 4 (forwards of 4, 4, 4 | 4), not
        as 15 + 1 (4, 4, 4, 3 | 1)."""
        limit = max(1, self.p.batch_size * 4)
        group: list[Path] = []
        pixels = 0

        def over(px: int) -> bool:
            return self.p.whole_bytes(pixels + px, coarse=coarse) > self.p.max_memory

        for f in files:
            px = self.pixels(f) or 0
            if group and (len(group) >= limit or over(px)):
                keep = whole_batches(self.p, [self.pixels(g) for g in group], coarse)
                yield group[:keep]
                group = group[keep:]
                pixels = sum(self.pixels(g) or 0 for g in group)
                if group and over(px):  # the rest does not fit with f (a larger image)
                    yield group
                    group, pixels = [], 0
            group.append(f)
            pixels += px
        if group:
            yield group


def whole_batches(p: Predictor, pixels: Sequence[int | None], coarse: bool) -> int:
    """How many of a chunk's images (their header ``pixels``, None = unknown) it keeps when it is
    cut: the most whole forward batches (:meth:`Predictor.fit_batch`) when all are equally
    large, the rest (fewer than one batch) starting the next chunk; else all of them."""
    sizes = set(pixels)
    if len(sizes) != 1 or None in sizes:
        return len(pixels)
    step = p.fit_batch(int(sizes.pop() or 0), coarse=coarse)
    return len(pixels) - len(pixels) % step or len(pixels)
