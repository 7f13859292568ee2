"""Folder jobs: enhance coarse labels and annotate images with a trained SAM2-ELNet, scoring each label.

One concept, the annotate/enhance folder job (resume, CSV tables, summary, large-scene dispatch),
which is why the module is longer than 500 lines. The model side is
:class:`~sam2elnet.engine.predictor.Predictor` (re-exported here).

* :func:`annotate_folder` / :func:`enhance_folder` are the folder jobs behind ``elnet annotate`` and
  ``elnet enhance``: unreadable images are skipped and listed, outputs are written atomically, a
  killed job continues with ``resume=True``, and ``min_quality`` / ``target_precision`` split the
  labels into ``labels/`` (kept) and ``rejected/``.

Large GeoTIFF scenes are handled by :mod:`sam2elnet.engine.scene`, which calls
:meth:`Predictor.predict_arrays` (or :class:`QualityScoringPredictor`) on already normalised windows.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.data.naming import GEO_SUFFIXES, IMAGE_SUFFIXES
from sam2elnet.data.runfolder import (
    QUALITY_CSV,
    SKIPPED_CSV,
    read_csv_rows,
    write_csv_table,
    write_summary,
)
from sam2elnet.engine import memory
from sam2elnet.engine.coarse_rule import CoarseRule
from sam2elnet.engine.executors import CallExecutor, LocalExecutor, run_batch
from sam2elnet.engine.predictor import Predictor, QualityScoringPredictor
from sam2elnet.engine.runtime import (
    ModelRun,
    run_model,
)
from sam2elnet.engine.scene import predict_scene
from sam2elnet.errors import BandCountError, DataError, UserError
from sam2elnet.model.quality import (
    FEATURE_NAMES,
    REJECT_FLAGS,
)
from sam2elnet.utils.atomic import remove_stale_temps
from sam2elnet.utils.batch import SkipLog
from sam2elnet.utils.lock import output_lock

log = logging.getLogger(__name__)

__all__ = [
    "BandCountError",
    "ModelRun",
    "run_model",
    "Predictor",
    "QualityScoringPredictor",
    "FolderResult",
    "annotate_folder",
    "enhance_folder",
    "list_images",
]


# ----------------------------------------------------------------------------- folder jobs
def list_images(images: str | Path | Sequence[str | Path]) -> list[Path]:
    """Image files of a folder (sorted), a single file, or a list; UserError when there are none.

    In folders that mix ``*_sat`` images with ``*_mask`` labels (the SOS layout) the masks are left out.
    """
    if isinstance(images, (str, Path)):
        p = Path(images)
        if not p.exists():
            raise UserError("image path does not exist; check the path", p)
        if p.is_file():
            return [p]
        files = sorted(
            f
            for f in p.iterdir()
            if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".")
        )
        if any(f.stem.lower().endswith("_sat") for f in files):
            files = [f for f in files if not f.stem.lower().endswith(("_mask", "_gt"))]
        if not files:
            raise UserError("no images (.png/.jpg/.tif) in the folder; check the path", p)
        return files
    files = [Path(f) for f in images]
    if not files:
        raise UserError("no images given")
    return files


def _split_samples(root: Any, split: str | Sequence[str], purpose: str) -> list[Any]:
    """Samples (image, mask, coarse) of one split of a dataset root: the one place annotate and
    enhance pick a split (:func:`sam2elnet.data.datasets.select_split`; DataError naming the
    splits found when one is absent)."""
    from sam2elnet.data.datasets import select_split

    if not isinstance(root, (str, Path)):
        raise UserError("--split needs --images to be a dataset folder")
    choice = select_split(root, split, purpose=purpose)
    log.info(choice.describe(purpose))
    return list(choice.index.samples)


def _split_images(root: Any, split: str | Sequence[str]) -> list[Path]:
    """Image files of one split of a dataset root (:func:`_split_samples`)."""
    return [s.image for s in _split_samples(root, split, "annotating")]


def _out_name(path: Path) -> str:
    return path.stem + (".tif" if path.suffix.lower() in GEO_SUFFIXES else ".png")


def _unique_names(files: Sequence[Path]) -> dict[Path, str]:
    names: dict[Path, str] = {}
    seen: dict[str, int] = defaultdict(int)
    for f in files:
        name = _out_name(f)
        seen[name] += 1
        if seen[name] > 1:  # same stem in different folders (file lists)
            name = f"{Path(name).stem}_{seen[name]}{Path(name).suffix}"
        names[f] = name
    return names


@dataclass
class FolderResult:
    """What a folder job produced."""

    out_dir: Path
    rows: list[dict[str, Any]]
    skipped: list[dict[str, str]]
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def n_kept(self) -> int:
        return sum(1 for r in self.rows if r.get("kept") in (True, "1", 1, "True"))


FinishHook = Callable[[FolderResult], dict[str, Any]]
"""Called with the finished job's result before ``summary.json`` is written; the entries it
returns are added to the summary (the pipeline writes ``report.html`` this way)."""


def _read_done(out: Path, fields: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Rows of a previous run's quality.csv whose label file exists, is non-empty and decodes
    (for resume; anything else is redone). A quality.csv that is not text raises a DataError."""
    from sam2elnet.data.raster import verify_written

    path = out / QUALITY_CSV
    if not path.is_file():
        return {}
    done = {}
    try:
        rows = read_csv_rows(path)
    except DataError as err:
        raise DataError(
            f"{str(err).removeprefix(f'{path}: ')}; not a quality.csv written by elnet: delete "
            "it to redo every image, or drop --resume",
            path,
        ) from None
    redo = 0
    for row in rows:
        label = out / (row.get("label") or "")
        if not row.get("label") or not row.get("image") or not label.is_file():
            continue
        try:
            ok = label.stat().st_size > 0 and verify_written(label)
        except Exception:  # noqa: BLE001  (any failure to re-read: redo the image)
            ok = False
        if not ok:
            redo += 1
            label.unlink(missing_ok=True)
            continue
        row["kept"] = row.get("kept") in ("1", "True", "true")
        done[row["image"]] = row
    if redo:
        log.warning("%d empty or unreadable label(s) in %s will be redone", redo, out)
    return done


# ----------------------------------------------------------------------------- per-chunk work
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
    positive_values: tuple[float, ...] | None = None
    warp_to: str | None = None
    warp_method: str = "tps"
    #: enhance: how far a label may depart from its coarse label (engine.coarse_rule)
    rule: CoarseRule | None = None


@dataclass
class ChunkOutput:
    """Rows (``quality.csv``, input order) and skipped ``(image, reason)`` pairs of one chunk."""

    rows: list[dict[str, Any]]
    skipped: list[tuple[str, str]]


def process_chunk(
    pred: Predictor, spec: ChunkSpec, items: Sequence[tuple[Path, str, Path | None]]
) -> ChunkOutput:
    """Read, predict, score, decide and write one chunk of a folder job: the per-image work.

    The local loop and each Ray worker run exactly this function (with their own copy of the
    same predictor), so outputs are byte-identical whichever backend runs it. ``items`` are
    ``(image path, label file name, coarse label path or None)``; the images are predicted in one
    :meth:`Predictor.predict` call. An image that cannot be used (unreadable, all nodata, a band
    count the model cannot take, an unreadable coarse label: a :class:`DataError`) is returned in
    ``skipped`` with the error message, and the others go on. Labels go to ``OUT/labels/``
    (kept) or ``OUT/rejected/``, each written atomically (verified, then renamed); enhancement
    adds ``OUT/changes/`` maps, ``save_prob`` ``OUT/prob/`` maps. With ``spec.warp_to`` the
    label and probability GeoTIFFs are then warped onto a map grid (:func:`_warp_outputs`); an
    image that cannot be warped is skipped before it is predicted.
    """
    from sam2elnet.data.raster import write_mask

    loaded = []
    skipped: list[tuple[str, str]] = []
    for f, name, coarse_path in items:
        try:
            _check_warp_input(spec, f)
            img, x, valid = pred.read(f)
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
        mask = (prob > 0.5) & valid
        kept = (spec.threshold is None or q["predicted_iou"] >= spec.threshold) and q[
            "quality_flag"
        ] not in REJECT_FLAGS
        rel = Path("labels" if kept else "rejected") / name
        row: dict[str, Any] = {"image": str(f), "label": str(rel), "kept": kept, **q}
        _write_extras(spec, img, prob, mask, coarse, coarse_path, row)
        write_mask(spec.out / rel, mask, like=img)
        try:
            _warp_outputs(spec, [spec.out / rel, spec.out / row.get("prob", "")])
        except DataError as err:  # GDAL cannot warp it: no half result in labels/
            for p in (spec.out / rel, spec.out / row.get("prob", "")):
                if p != spec.out:
                    p.unlink(missing_ok=True)
            skipped.append((str(f), str(err)))
            continue
        _drop_counterpart(spec.out, rel)
        rows.append(row)
    return ChunkOutput(rows, skipped)


def _check_warp_input(spec: ChunkSpec, f: Path) -> None:
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


def _warp_outputs(spec: ChunkSpec, paths: Sequence[Path]) -> None:
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


def _read_coarse(spec: ChunkSpec, f: Path, img: Any, label: Path) -> np.ndarray:
    """The coarse label of image ``f`` on its pixel grid, float32 (H, W) in {0, 1}."""
    from sam2elnet.data.raster import read_mask_on_grid
    from sam2elnet.data.vector import is_vector_path, rasterize_vector

    if is_vector_path(label):
        coarse = rasterize_vector(label, f, line_width=spec.line_width)
    else:
        coarse = read_mask_on_grid(label, img, spec.positive_values)[0]
    return coarse.astype(np.float32)


def _write_extras(
    spec: ChunkSpec,
    img: Any,
    prob: np.ndarray,
    mask: np.ndarray,
    coarse: np.ndarray | None,
    coarse_path: Path | None,
    row: dict[str, Any],
) -> None:
    """Enhancement's change counts and map, and the probability map, of one image (into ``row``)."""
    from sam2elnet.data.raster import write_image

    name = Path(row["label"]).name
    if coarse is not None:
        c = coarse > 0.5
        added = int(np.count_nonzero(mask & ~c))
        removed = int(np.count_nonzero(c & ~mask))
        row.update(
            coarse=str(coarse_path),
            added_px=added,
            removed_px=removed,
            changed_frac=(added + removed) / max(1, mask.size),
        )
        if spec.save_changes:
            rel = Path("changes") / (Path(name).stem + ".png")
            write_image(spec.out / rel, _change_map(c, mask))
            row["changes"] = str(rel)
    if spec.save_prob:
        row["prob"] = _write_prob(spec.out, name, prob, img)


def _drop_counterpart(out: Path, rel: Path) -> None:
    """A label now in labels/ must not also be in rejected/ from an earlier run (or vice
    versa): the folders and quality.csv then describe the same, current decision."""
    other = "rejected" if rel.parts[0] == "labels" else "labels"
    (out / other / Path(*rel.parts[1:])).unlink(missing_ok=True)


def _window_batch(
    pred: Predictor, batch: np.ndarray, coarse: np.ndarray | None, scored: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """One window batch of the large-image path (scored by the evaluator when ``scored``)."""
    return run_batch(QualityScoringPredictor(pred) if scored else pred, batch, coarse)


class _CallWindows:
    """The large-image path's window batches through the job's executor (same workers)."""

    def __init__(self, executor: CallExecutor, scored: bool) -> None:
        self.executor, self.scored = executor, scored

    def map_batches(
        self, items: Iterable[tuple[np.ndarray, np.ndarray | None]]
    ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        return self.executor.map_calls(_window_batch, ((b, c, self.scored) for b, c in items))


def load_predictor(
    model_path: str | Path,
    *,
    device: str = "cpu",
    precision: str = "bf16",
    batch_size: int = 8,
    tta: int | None = None,
    max_memory: int | str | None = None,
    bands: Sequence[int] | None = None,
) -> Predictor:
    """The predictor of a folder job from its options (:meth:`Predictor.from_file` plus
    :meth:`Predictor.set_bands`): what each Ray worker builds once, from a
    ``functools.partial`` of this function (picklable)."""
    pred = Predictor.from_file(
        model_path,
        device=device,
        precision=precision,
        batch_size=batch_size,
        tta=tta,
        max_memory=max_memory,
    )
    return pred.set_bands(bands)


ExecutorFactory = Callable[[Callable[[], Predictor]], Any]
"""Given the job's predictor factory (a picklable zero-argument callable), an executor with
``map_calls`` and ``close`` that runs the per-chunk work elsewhere, e.g.
``functools.partial(RayExecutor, num_workers=4, address="auto")``."""


class _Job:
    """Shared machinery of annotate and enhance: chunked reading, prediction, writing, resume."""

    def __init__(
        self,
        predictor: Predictor,
        out: Path,
        fields: Sequence[str],
        threshold: float | None,
        save_prob: bool,
        resume: bool,
        progress: bool,
        desc: str,
        tile: int = 1024,
        overlap: int = 128,
        executor: CallExecutor | None = None,
    ) -> None:
        self.p, self.out, self.fields = predictor, out, list(fields)
        #: runs the per-chunk work: this process (LocalExecutor) or Ray actors (RayExecutor)
        self.executor: CallExecutor = executor if executor is not None else LocalExecutor(predictor)
        self.order: dict[str, int] = {}  # image -> position in the job's input list
        self.tile, self.overlap = tile, overlap
        self.line_width: float | None = None  # width of vector line labels (roads), map units
        self.save_changes = False  # enhance: change maps of scenes too (whole images: write())
        self.positive_values: tuple[float, ...] | None = None  # enhance: class-index coarse labels
        self.spec = ChunkSpec(desc, out, threshold)  # the job's output options (set by run)
        self.rule: CoarseRule | None = None  # enhance: --new-objects / --max-growth
        self.threshold, self.save_prob, self.progress, self.desc = (
            threshold,
            save_prob,
            progress,
            desc,
        )
        self._created = not out.exists()
        self._lock = contextlib.ExitStack()
        self._lock.enter_context(output_lock(out))  # one job per output folder
        try:
            if resume:
                remove_stale_temps(out)
            self.done = _read_done(out, fields) if resume else {}
        except BaseException:
            self._lock.close()
            raise
        self.rows: list[dict[str, Any]] = []
        self.skips = SkipLog("image")
        self.skipped: list[dict[str, str]] = self.skips.items
        self._last_flush = time.monotonic()

    def __enter__(self) -> _Job:
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.close()

    def discard_if_empty(self) -> None:
        """Nothing was produced: remove what this job wrote (and the folder if it made it)."""
        if self.rows:
            return
        for name in ("quality.csv", "skipped.csv", "summary.json"):
            if self._created:
                (self.out / name).unlink(missing_ok=True)
        if self._created:
            self._lock.close()
            import shutil

            for sub in ("labels", "rejected", "prob", "tiles", "changes"):
                with contextlib.suppress(OSError):
                    (self.out / sub).rmdir()
            with contextlib.suppress(OSError):
                shutil.rmtree(self.out) if not any(self.out.iterdir()) else None

    def flush(self, final: bool = False) -> None:
        """Rewrite quality.csv (atomically) at most every few seconds, so resume loses little."""
        if final or time.monotonic() - self._last_flush > 5.0:
            write_csv_table(self.out / QUALITY_CSV, self.rows, self.fields)
            self._last_flush = time.monotonic()

    def decide(self, score: float) -> bool:
        return self.threshold is None or score >= self.threshold

    def label_path(self, name: str, kept: bool) -> Path:
        return self.out / ("labels" if kept else "rejected") / name

    def run_scene(self, f: Path, name: str, coarse: Path | None) -> None:
        """Predict one large GeoTIFF scene with the streaming sliding-window path.

        Only the windows in flight are in memory; the label is a tiled GeoTIFF with the scene's
        georeference, and ``tiles/<scene>.gpkg`` holds per-window quality for reviewers.
        """
        tif = Path(name).with_suffix(".tif").name
        try:
            _check_warp_input(self.spec, f)
        except DataError as err:
            self.skips.add(f, err)
            return
        if coarse is not None and self.rule is not None and self.rule.active:
            log.warning(
                "%s: predicted window by window; --new-objects drop / --max-growth apply to "
                "whole images only and are not applied to this scene",
                f.name,
            )
        scorer = QualityScoringPredictor(self.p) if self.p.evaluator.fitted else self.p
        tile_px = self.tile * self.tile
        if not self.p.fits_whole(tile_px, coarse=coarse is not None):
            need = memory.format_bytes(self.p.whole_bytes(tile_px, coarse=coarse is not None))
            log.warning(
                "%s: one %d px window needs about %s, more than --max-memory %s; "
                "give a smaller --tile",
                f.name,
                self.tile,
                need,
                memory.format_bytes(self.p.max_memory),
            )
        try:
            res = predict_scene(
                f,
                self.out / "labels" / tif,
                scorer,
                tile=self.tile,
                overlap=self.overlap,
                batch_size=self.p.fit_batch(tile_px, coarse=coarse is not None),
                coarse=coarse,
                line_width=self.line_width,
                coarse_positive_values=self.positive_values,
                prob_path=(self.out / "prob" / tif) if self.save_prob else None,
                quality_gpkg=self.out / "tiles" / f"{Path(tif).stem}.gpkg",
                progress=self.progress,
                executor=_CallWindows(self.executor, scorer is not self.p),
            )
        except DataError as err:  # incl. a band count the model cannot take: skip, go on
            self.skips.add(f, err)
            return
        changes: dict[str, Any] = {}
        if coarse is not None:  # enhance: the same change statistics / map as whole images
            changes = _scene_changes(
                f,
                coarse,
                self.out / "labels" / tif,
                self.out / "changes" / Path(name).stem if self.save_changes else None,
                png=name != tif,
                line_width=self.line_width,
                positive_values=self.positive_values,
            )
        try:  # after the change statistics, which are counted on the scene grid
            _warp_outputs(self.spec, [self.out / "labels" / tif, self.out / "prob" / tif])
        except DataError as err:
            for sub in ("labels", "prob"):
                (self.out / sub / tif).unlink(missing_ok=True)
            self.skips.add(f, err)
            return
        if name != tif:  # PNG/JPEG input: the label keeps the whole-image path's PNG name
            _tif_to_png(self.out / "labels" / tif, self.out / "labels" / name)
            if self.save_prob:
                _tif_to_png(self.out / "prob" / tif, self.out / "prob" / name, prob=True)
        score = res.predicted_iou
        kept = self.decide(score) if score is not None else True
        if not kept:
            (self.out / "rejected").mkdir(parents=True, exist_ok=True)
            os.replace(self.out / "labels" / name, self.out / "rejected" / name)
        self.drop_counterpart(Path("labels" if kept else "rejected") / name)
        row: dict[str, Any] = {
            "image": str(f),
            "label": str(Path("labels" if kept else "rejected") / name),
            "kept": kept,
            "predicted_iou": float("nan") if score is None else score,
            "foreground_frac": res.foreground_fraction,
        }
        if coarse is not None:
            row["coarse"] = str(coarse)
            row.update(changes)
        if self.save_prob:
            row["prob"] = str(Path("prob") / name)
        self.rows.append(row)
        self.flush()

    def run(
        self,
        files: Sequence[Path],
        spec: ChunkSpec,
        coarse_of: Callable[[Path], Path] | None = None,
    ) -> None:
        """Label ``files`` (done rows of a resumed run are kept, not redone).

        Images whose whole-image memory estimate exceeds the predictor's ``max_memory``
        (:meth:`Predictor.fits_whole`) go through the sliding-window :meth:`run_scene` instead,
        whatever their format; ``coarse_of(path)`` gives an image's coarse label file (raster or
        vector; enhancement). The others are cut into chunks of at most ``4 x batch_size`` images
        whose whole-image estimate stays within ``max_memory`` (:meth:`chunks`), and every chunk
        goes through :func:`process_chunk` on the job's executor: in this process, or on a Ray
        actor. Rows and skips come back in chunk order whichever runs them, so ``quality.csv`` is
        the same.
        """
        names = _unique_names(files)
        self.spec = spec  # run_scene's warp options
        self.order = {str(f): i for i, f in enumerate(files)}
        todo = []
        for f in files:
            key = str(f)
            if key in self.done:
                self.rows.append(self.done[key])
            elif self.tiled(f, coarse_of is not None):
                self.run_scene(f, names[f], coarse_of(f) if coarse_of else None)
            else:
                todo.append(f)
        from sam2elnet.utils.progress import progress_bar

        chunks = list(self.chunks(todo, coarse_of is not None))
        work = (
            (spec, [(f, names[f], coarse_of(f) if coarse_of else None) for f in chunk])
            for chunk in chunks
        )
        bar = progress_bar(len(todo), self.desc, "img", self.progress)
        try:
            results = self.executor.map_calls(process_chunk, work)
            for chunk, res in zip(chunks, results, strict=True):
                for item, reason in res.skipped:
                    self.skips.add(item, reason)
                self.rows.extend(res.rows)
                bar.update(len(chunk))
                bar.set_postfix(
                    kept=sum(1 for r in self.rows if r["kept"] in (True, "True", "1")),
                    skipped=len(self.skipped),
                    refresh=False,
                )
                self.flush()
        finally:
            bar.close()
            self.flush(final=True)
            if self.skipped or (self.out / "skipped.csv").exists():
                write_csv_table(self.out / SKIPPED_CSV, self.skipped, ["image", "reason"])
        if not self.rows and self.skipped:
            self.discard_if_empty()
            raise self.skips.nothing_done(len(self.skipped))

    def tiled(self, f: Path, coarse: bool) -> bool:
        """True when ``f`` is too large to predict whole within the predictor's ``max_memory``
        (header read only; unreadable files are left to the whole-image reader to report)."""
        px = memory.image_pixels(f)
        return px is not None and not self.p.fits_whole(px, coarse=coarse)

    def chunks(self, files: Sequence[Path], coarse: bool) -> Iterator[list[Path]]:
        """Consecutive groups of at most ``4 x batch_size`` files whose summed whole-image
        estimate (:meth:`Predictor.whole_bytes` of their pixels) stays within ``max_memory``."""
        limit = max(1, self.p.batch_size * 4)
        group: list[Path] = []
        pixels = 0
        for f in files:
            px = memory.image_pixels(f) or 0
            over = self.p.whole_bytes(pixels + px, coarse=coarse) > self.p.max_memory
            if group and (len(group) >= limit or over):
                yield group
                group, pixels = [], 0
            group.append(f)
            pixels += px
        if group:
            yield group

    def drop_counterpart(self, rel: Path) -> None:
        """See :func:`_drop_counterpart`."""
        _drop_counterpart(self.out, rel)

    def on_disk(self) -> None:
        """Keep only rows whose label file is on disk, in input order (so a resumed or
        distributed run writes the same quality.csv); warn about label files no row lists."""
        self.rows = [r for r in self.rows if (self.out / str(r["label"])).is_file()]
        self.rows.sort(key=lambda r: self.order.get(str(r["image"]), len(self.order)))
        listed = {str(Path(str(r["label"]))) for r in self.rows}
        extra = [
            p
            for sub in ("labels", "rejected")
            if (self.out / sub).is_dir()
            for p in (self.out / sub).iterdir()
            if p.is_file()
            and not p.name.startswith(".")
            and str(p.relative_to(self.out)) not in listed
        ]
        self.unlisted = len(extra)
        if extra:
            log.warning(
                "%d label file(s) in %s are from an earlier run and not in quality.csv "
                "(e.g. %s); delete them or re-run with --resume",
                len(extra),
                self.out,
                extra[0].name,
            )

    def finish(
        self, t0: float, n_before: int, extra: dict[str, Any], on_finish: FinishHook | None
    ) -> FolderResult:
        """Summarise the job (rows reconciled with the files on disk), run ``on_finish`` (its
        entries join the summary), write ``summary.json``; return the result."""
        self.on_disk()
        self.flush(final=True)
        summary = self.summary(t0, len(self.rows) - n_before, extra)
        summary["unlisted_label_files"] = self.unlisted
        result = FolderResult(self.out, self.rows, self.skipped, summary)
        if on_finish is not None:
            summary.update(on_finish(result))
        write_summary(self.out, summary)
        return result

    def summary(self, t0: float, n_new: int, extra: dict[str, Any]) -> dict[str, Any]:
        scores = [float(r["predicted_iou"]) for r in self.rows]
        kept = sum(1 for r in self.rows if r["kept"] in (True, "True", "1"))
        flagged: dict[str, int] = defaultdict(int)
        for r in self.rows:
            if r.get("quality_flag"):
                flagged[str(r["quality_flag"])] += 1
        dt = time.perf_counter() - t0
        return {
            "n_images": len(self.rows),
            "n_kept": kept,
            "n_rejected": len(self.rows) - kept,
            "n_skipped": len(self.skipped),
            "n_flagged": dict(flagged),
            "mean_predicted_iou": float(np.mean(scores)) if scores else None,
            "threshold": self.threshold,
            "seconds": dt,
            "images_per_s": n_new / dt if dt > 0 else None,
            "evaluator": {
                "fitted": self.p.evaluator.fitted,
                "status": self.p.evaluator.status,
                "warning": self.p.evaluator.warning or None,
                "tta": self.p.tta,
                "heldout_metrics": {
                    k: (None if isinstance(v, float) and math.isnan(v) else v)
                    for k, v in self.p.evaluator.metrics.items()
                },
            },
            **extra,
        }


def _scene_changes(
    scene: Path,
    coarse: Path,
    label_tif: Path,
    out_stem: Path | None,
    *,
    png: bool,
    line_width: float | None,
    positive_values: tuple[float, ...] | None = None,
) -> dict[str, Any]:
    """Change statistics (``added_px``, ``removed_px``, ``changed_frac``) of an enhanced scene and,
    with ``out_stem``, its change map (colours of :func:`_change_map`), read and written in row
    strips so memory stays a strip whatever the scene size.

    The enhanced label is the scene path's label GeoTIFF (255 = object; 0 and 127 = nodata are
    not); the coarse label is read on the scene grid as the scene path reads it
    (:class:`~sam2elnet.engine.scene_inputs.CoarseSource`: a raster warped onto the grid, or a
    vector file rasterised). The map is ``<out_stem>.tif`` (tiled GeoTIFF with the label's
    georeference) for GeoTIFF scenes and ``<out_stem>.png`` for PNG/JPEG inputs (``png``), as the
    whole-image path names it; the ``changes`` entry is its path relative to the output folder.
    """
    import rasterio
    import rasterio.shutil

    from sam2elnet.data.tiling import Window
    from sam2elnet.engine.scene_inputs import CoarseSource, open_scene
    from sam2elnet.utils.atomic import atomic_path

    added = removed = 0
    with contextlib.ExitStack() as stack:
        stack.enter_context(rasterio.Env(GDAL_PAM_ENABLED="NO", GDAL_CACHEMAX=64))
        src = stack.enter_context(open_scene(scene))
        lab = stack.enter_context(rasterio.open(label_tif))
        cs = CoarseSource(coarse, src, line_width=line_width, positive_values=positive_values)
        stack.callback(cs.close)
        h, w = lab.height, lab.width
        dst = None
        if out_stem is not None:
            out_stem.parent.mkdir(parents=True, exist_ok=True)
            final = out_stem.with_suffix(".tif")
            tmp = stack.enter_context(atomic_path(final))
            profile = {
                "driver": "GTiff",
                "height": h,
                "width": w,
                "count": 3,
                "dtype": "uint8",
                "tiled": True,
                "blockxsize": 256,
                "blockysize": 256,
                "compress": "deflate",
                "BIGTIFF": "IF_SAFER",
            }
            if lab.crs is not None:
                profile.update(crs=lab.crs, transform=lab.transform)
            dst = stack.enter_context(rasterio.open(tmp, "w", **profile))
            if lab.crs is None and lab.gcps[0]:  # GCP-only scene (Sentinel-1 GRD): keep them
                dst.gcps = lab.gcps
        rows = max(256, (4_000_000 // max(1, w)) // 256 * 256)
        for r0 in range(0, h, rows):
            win = Window(r0, 0, min(rows, h - r0), w)
            mask = lab.read(1, window=win.to_rasterio()) == 255
            c = cs.read(win) > 0
            added += int(np.count_nonzero(mask & ~c))
            removed += int(np.count_nonzero(c & ~mask))
            if dst is not None:
                dst.write(_change_map(c, mask), window=win.to_rasterio())
    out: dict[str, Any] = {
        "added_px": added,
        "removed_px": removed,
        "changed_frac": (added + removed) / max(1, h * w),
    }
    if out_stem is not None:
        final = out_stem.with_suffix(".tif")
        if png:  # GDAL's PNG driver copies row by row from the GeoTIFF: memory stays small
            with (
                atomic_path(out_stem.with_suffix(".png")) as tmp_png,
                rasterio.Env(GDAL_PAM_ENABLED="NO"),
            ):
                rasterio.shutil.copy(final, tmp_png, driver="PNG")
            final.unlink()
            final = out_stem.with_suffix(".png")
        out["changes"] = str(final.relative_to(out_stem.parent.parent))
    return out


def _tif_to_png(tif: Path, png: Path, prob: bool = False) -> None:
    """Rewrite a scene-path output GeoTIFF (``tif``, removed afterwards) as the PNG the
    whole-image path writes for PNG/JPEG inputs: labels keep their uint8 values (0/255, 127 =
    nodata); float32 probabilities become ``round(p * 255)`` with nodata as 0. The uint8 label is
    read whole (1 byte per pixel, far below the network's working set)."""
    import rasterio

    from sam2elnet.data.raster import LABEL_NODATA, LABEL_OBJECT, write_mask, write_probability

    with rasterio.open(tif) as ds:
        arr = ds.read(1)
    if prob:
        write_probability(png, np.nan_to_num(arr, nan=0.0))
    else:
        write_mask(png, arr == LABEL_OBJECT, nodata=arr == LABEL_NODATA)
    tif.unlink()


def _predictor(
    predictor: Predictor | None,
    model_path: str | Path,
    device: str,
    precision: str,
    batch_size: int,
    tta: int | None,
    max_memory: int | str | None,
) -> Predictor:
    """The given predictor (with ``max_memory`` applied when given) or one loaded from file."""
    if predictor is None:
        return Predictor.from_file(
            model_path,
            device=device,
            precision=precision,
            batch_size=batch_size,
            tta=tta,
            max_memory=max_memory,
        )
    if max_memory is not None:
        predictor.max_memory = memory.parse_memory(max_memory)
    return predictor


def _write_prob(out: Path, name: str, prob: np.ndarray, img: Any) -> str:
    from sam2elnet.data.raster import write_probability

    rel = Path("prob") / name
    write_probability(out / rel, prob, like=img)
    return str(rel)


def _check_job_options(
    warp_to: str | None = None, warp_method: str = "tps", **values: Any
) -> str | None:
    """The API applies the CLI's ranges too (one declaration: config.FolderJobOptions) and the
    ``--warp-to`` / ``--warp-method`` check of ``scene`` and ``export``
    (:func:`sam2elnet.data.warp.check_warp_options`); returns the checked ``warp_to``."""
    from sam2elnet.config import FolderJobOptions, check_options
    from sam2elnet.data.warp import check_warp_options

    check_options(FolderJobOptions, **values)
    return check_warp_options(warp_to, warp_method)


def _warp_summary(spec: ChunkSpec) -> dict[str, str] | None:
    """``summary.json``'s ``warp`` entry: where the outputs were warped to (None: kept)."""
    return {"to": spec.warp_to, "method": spec.warp_method} if spec.warp_to else None


def annotate_folder(
    model_path: str | Path,
    images: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    *,
    min_quality: float | None = None,
    target_precision: float | None = None,
    tau: float | None = None,
    resume: bool = False,
    on_finish: FinishHook | None = None,
    save_prob: bool = False,
    batch_size: int = 8,
    device: str = "cpu",
    precision: str = "bf16",
    tta: int | None = None,
    progress: bool = True,
    predictor: Predictor | None = None,
    tile: int = 1024,
    overlap: int = 128,
    bands: Sequence[int] | None = None,
    split: str | Sequence[str] | None = None,
    max_memory: int | str | None = None,
    executor_factory: ExecutorFactory | None = None,
    warp_to: str | None = None,
    warp_method: str = "tps",
) -> FolderResult:
    """Label every image of ``images`` from scratch and score each label.

    With ``split`` (e.g. ``"test"``) ``images`` is a labelled dataset root (SOS, CHN6-CUG, generic
    split folders) and the images of that split are labelled (all sensors).

    Writes ``OUT/labels/`` (kept labels; all when no filter is given), ``OUT/rejected/`` (labels
    below the threshold), ``OUT/prob/`` (with ``save_prob``), ``OUT/quality.csv`` (image, label,
    predicted_iou, kept, uncertainty features), ``OUT/skipped.csv`` and ``OUT/summary.json``.

    ``max_memory`` (bytes, or a size such as ``"1.5G"``; default
    :data:`~sam2elnet.engine.memory.DEFAULT_MAX_MEMORY`) is the memory budget: images whose
    whole-image estimate exceeds it are predicted window by window (``tile``/``overlap``), with
    the same label name and georeference.

    ``executor_factory`` (see :data:`ExecutorFactory`; the pipeline's ``backend="ray"``) runs the
    per-image work (:func:`process_chunk`) and the windows of large images on other workers, each
    loading the model once; outputs are the same byte for byte as without it.

    ``warp_to`` (``utm`` or a CRS such as ``EPSG:4326``; :func:`sam2elnet.data.warp.parse_warp_crs`)
    warps every label and probability GeoTIFF onto a regular map grid in that CRS after it is
    written, as ``elnet scene --warp-to`` does (:func:`sam2elnet.data.warp.warp_to_map_grid`,
    GCP transformer ``warp_method``: ``tps`` or ``polynomial``; labels nearest, nodata kept).
    Images that cannot be warped (PNG/JPEG, no georeference, fewer than 3 GCPs) are skipped with
    the reason. An unknown CRS or method raises UserError before anything is read.
    """
    warp_to = _check_job_options(
        min_quality=min_quality, target_precision=target_precision, tau=tau,
        batch_size=batch_size, device=device, precision=precision, tta=tta, tile=tile,
        overlap=overlap, max_memory=max_memory, warp_to=warp_to, warp_method=warp_method,
    )  # fmt: skip
    t0 = time.perf_counter()
    files = _split_images(images, split) if split else list_images(images)
    pred = _predictor(predictor, model_path, device, precision, batch_size, tta, max_memory)
    pred.set_bands(bands)
    threshold, thr_info = pred.choose_threshold(min_quality, target_precision, tau)
    out = Path(out_dir)
    fields = ["image", "label", "predicted_iou", "kept", "quality_flag", "prob", *FEATURE_NAMES]
    spec = ChunkSpec(
        "annotate", out, threshold, save_prob=save_prob, warp_to=warp_to, warp_method=warp_method
    )
    with (
        _Job(
            pred, out, fields, threshold, save_prob, resume, progress, "annotate", tile, overlap
        ) as job,
        _executor(executor_factory, pred, model_path) as ex,
    ):
        job.executor = ex
        n_before = len(job.done)
        job.run(files, spec)
        extra = {
            "task": "annotate",
            "model": str(model_path),
            "filter": thr_info,
            "warp": _warp_summary(spec),
        }
        return job.finish(t0, n_before, extra, on_finish)


@contextlib.contextmanager
def _executor(
    make: ExecutorFactory | None, pred: Predictor, model_path: str | Path
) -> Iterator[CallExecutor]:
    """The job's executor: this process, or ``make(factory)`` whose workers each build a
    predictor like ``pred`` (same file, device, precision, batch size, TTA, memory budget and
    bands, so they predict exactly as it does); closed when the job ends."""
    if make is None:
        yield LocalExecutor(pred)
        return
    import functools

    factory = functools.partial(
        load_predictor,
        str(pred.path or model_path),
        device=str(pred.device),
        precision=pred.precision,
        batch_size=pred.batch_size,
        tta=pred.tta,
        max_memory=pred.max_memory,
        bands=pred.normalization.band_select,
    )
    ex = make(factory)
    try:
        yield ex
    finally:
        ex.close()


class _LabelIndex(dict):
    """Coarse label per image key; a single vector file serves every image (``default``)."""

    default: Path | None = None

    def __missing__(self, key: str) -> Path:
        if self.default is None:
            raise KeyError(key)
        return self.default

    def __contains__(self, key: object) -> bool:
        return self.default is not None or dict.__contains__(self, key)


def _label_index(labels: str | Path) -> _LabelIndex:
    """Coarse labels by image key: raster masks and/or vector files (GeoJSON, GeoPackage, ...) in a
    folder, matched by name, or one vector file covering all images."""
    from sam2elnet.data.naming import mask_key
    from sam2elnet.data.vector import is_vector_path

    root = Path(labels)
    idx = _LabelIndex()
    if root.is_file() and is_vector_path(root):
        idx.default = root
        return idx
    if not root.is_dir():
        raise UserError(
            "label path does not exist or is neither a folder nor a vector file "
            "(.geojson/.gpkg/.shp); check --labels",
            root,
        )
    for f in sorted(root.iterdir()):
        ok = f.suffix.lower() in IMAGE_SUFFIXES or is_vector_path(f)
        if f.is_file() and ok and not f.name.startswith("."):
            idx.setdefault(mask_key(f.name), f)
    return idx


def _change_map(coarse: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """RGB (3,H,W) uint8: white = kept foreground, green = added, red = removed, black = background."""
    rgb = np.zeros((3, *mask.shape), np.uint8)
    both = coarse & mask
    added = mask & ~coarse
    removed = coarse & ~mask
    rgb[:, both] = 255
    rgb[1, added] = 200
    rgb[0, removed] = 220
    return rgb


def enhance_folder(
    model_path: str | Path,
    images: str | Path | Sequence[str | Path],
    labels: str | Path | None,
    out_dir: str | Path,
    *,
    skip_missing: bool = False,
    min_quality: float | None = None,
    target_precision: float | None = None,
    tau: float | None = None,
    resume: bool = False,
    on_finish: FinishHook | None = None,
    save_prob: bool = False,
    save_changes: bool = True,
    batch_size: int = 8,
    device: str = "cpu",
    precision: str = "bf16",
    tta: int | None = None,
    progress: bool = True,
    predictor: Predictor | None = None,
    tile: int = 1024,
    overlap: int = 128,
    line_width: float | None = None,
    bands: Sequence[int] | None = None,
    positive_values: tuple[float, ...] | None = None,
    max_memory: int | str | None = None,
    split: str | Sequence[str] | None = None,
    executor_factory: ExecutorFactory | None = None,
    warp_to: str | None = None,
    warp_method: str = "tps",
    new_objects: str = "drop",
    max_growth: float | None = None,
) -> FolderResult:
    """Enhance the coarse label of every image (labels matched by name: ``<id>_sat.jpg`` pairs
    with ``<id>_mask.png``, ``<id>.png`` ...).

    With ``split`` (e.g. ``"test"``) ``images`` is a dataset root and that split's images are
    enhanced, exactly as :func:`annotate_folder` picks them; ``labels`` may then be None to use
    the split's own ``coarse/`` folders (DataError when the split has none).

    Writes ``OUT/labels/`` (enhanced labels, GeoTIFF with the source georeference when the image is
    a GeoTIFF), ``OUT/changes/`` (RGB change maps: green added, red removed; images on the window
    path get theirs strip by strip, a tiled GeoTIFF for GeoTIFF scenes), ``OUT/prob/`` (with
    ``save_prob``), ``OUT/quality.csv`` (+ added/removed pixel counts) and ``OUT/summary.json``.
    Images without a label are an error naming them unless ``skip_missing``. Raster coarse
    labels are placed on the image grid by :func:`sam2elnet.data.raster.read_mask_on_grid` (by
    map position when both are georeferenced) and decoded with ``positive_values`` if given.
    ``max_memory`` routes images too large to predict whole to the window-by-window path, as in
    :func:`annotate_folder`, and ``executor_factory`` spreads the work as there. ``warp_to`` /
    ``warp_method`` warp the enhanced labels and probability maps onto a map grid as in
    :func:`annotate_folder` (change statistics and change maps stay on the image grid).

    ``new_objects`` (``"drop"``, the default, or ``"keep"``) and ``max_growth`` (px, or None)
    tie each enhanced label to its coarse label (:class:`~sam2elnet.engine.coarse_rule.CoarseRule`):
    by default predicted objects that do not overlap the coarse label are removed, so an empty
    coarse label stays empty. Whole images only; images on the window path are enhanced without
    the rule (a warning names them).
    """
    from sam2elnet.data.naming import mask_key

    warp_to = _check_job_options(
        min_quality=min_quality, target_precision=target_precision, tau=tau,
        batch_size=batch_size, device=device, precision=precision, tta=tta, tile=tile,
        overlap=overlap, line_width=line_width, max_memory=max_memory, warp_to=warp_to,
        warp_method=warp_method, new_objects=new_objects, max_growth=max_growth,
    )  # fmt: skip
    rule = CoarseRule(new_objects, max_growth)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    if labels is None and not split:
        raise UserError(
            "enhance needs --labels (a folder or a vector file of coarse labels), or --split "
            "with a dataset whose split folders hold a coarse/ folder"
        )
    samples = _split_samples(images, split, "enhancing") if split else None
    files = [s.image for s in samples] if samples is not None else list_images(images)
    if labels is not None:
        label_idx = _label_index(labels)
        label_map = {f: label_idx[mask_key(f.name)] for f in files if mask_key(f.name) in label_idx}
        where = str(labels)
    else:  # the split's own coarse/ folders
        label_map = {s.image: s.coarse for s in samples or () if s.coarse is not None}
        names = [split] if isinstance(split, str) else list(split or ())
        where = f"the coarse/ folders of split {','.join(names)}"
        if not label_map:
            raise DataError(
                f"{where} hold no coarse labels (no coarse/ folder next to images/); "
                "give the coarse labels with --labels FOLDER",
                images if isinstance(images, (str, Path)) else None,
            )
    missing = [f for f in files if f not in label_map]
    if missing and not skip_missing:
        names = ", ".join(f.name for f in missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise DataError(
            f"{len(missing)} image(s) have no label in {where}: {names}; add the labels or pass "
            "--skip-missing to enhance only the others"
        )
    files = [f for f in files if f in label_map]
    if not files:
        raise DataError("no image has a matching label; check --images and --labels", labels)
    pred = _predictor(predictor, model_path, device, precision, batch_size, tta, max_memory)
    pred.set_bands(bands)
    threshold, thr_info = pred.choose_threshold(min_quality, target_precision, tau)
    out = Path(out_dir)
    fields = [
        "image",
        "label",
        "predicted_iou",
        "kept",
        "quality_flag",
        "coarse",
        "changes",
        "prob",
        "added_px",
        "removed_px",
        "changed_frac",
        *FEATURE_NAMES,
    ]
    spec = ChunkSpec(
        "enhance",
        out,
        threshold,
        save_prob=save_prob,
        save_changes=save_changes,
        line_width=line_width,
        positive_values=tuple(positive_values) if positive_values else None,
        warp_to=warp_to,
        warp_method=warp_method,
        rule=rule,
    )
    with (
        _Job(
            pred, out, fields, threshold, save_prob, resume, progress, "enhance", tile, overlap
        ) as job,
        _executor(executor_factory, pred, model_path) as ex,
    ):
        job.executor = ex
        n_before = len(job.done)
        job.line_width = line_width
        job.save_changes = save_changes
        job.positive_values = spec.positive_values
        job.rule = rule
        job.run(files, spec, coarse_of=label_map.__getitem__)
        extra = {
            "task": "enhance",
            "model": str(model_path),
            "filter": thr_info,
            "coarse_rule": rule.as_dict(),
            "n_missing_labels": len(missing),
            "missing_labels": [str(m) for m in missing],
            "warp": _warp_summary(spec),
        }
        return job.finish(t0, n_before, extra, on_finish)
