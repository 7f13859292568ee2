"""One annotate/enhance folder job at work: :class:`FolderJob` and what it returns.

:class:`FolderJob` holds the output folder (locked, one job at a time), the resume state and the
rows: it sends whole images in memory-sized chunks
(:class:`~sam2elnet.engine.folder_chunk.ChunkPlanner`) to
:func:`~sam2elnet.engine.folder_chunk.process_chunk` on the job's executor, predicts images too
large for memory window by window (:mod:`sam2elnet.engine.folder_large`), keeps ``quality.csv``
/ ``skipped.csv`` current (atomically, so a killed job resumes) and writes ``summary.json``. The entry functions are
:func:`sam2elnet.engine.infer.annotate_folder` and :func:`sam2elnet.engine.infer.enhance_folder`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.data.run_model import MODEL_ID_JSON, record_model_identity
from sam2elnet.data.runfolder import (
    QUALITY_CSV,
    SKIPPED_CSV,
    SUMMARY_JSON,
    csv_table_text,
    row_kept,
    run_image_path,
    run_row_paths,
    write_summary,
)
from sam2elnet.engine.executors import CallExecutor, LocalExecutor
from sam2elnet.engine.folder_chunk import ChunkPlanner, ChunkSpec, CoarseFile, process_chunk
from sam2elnet.engine.folder_inputs import read_done, unique_names
from sam2elnet.engine.folder_large import WindowedImages, predict_large
from sam2elnet.engine.predictor import Predictor
from sam2elnet.engine.window_size import WindowSize, resolve_tile
from sam2elnet.model.input_flags import is_unusable
from sam2elnet.option_checks import option_default
from sam2elnet.options import FolderJobOptions
from sam2elnet.utils.advice import plural
from sam2elnet.utils.atomic import remove_stale_temps, write_bytes_atomic, write_text_atomic
from sam2elnet.utils.batch import SkipLog
from sam2elnet.utils.lock import output_lock
from sam2elnet.utils.run_warnings import RunWarnings

log = logging.getLogger(__name__)

__all__ = ["FolderResult", "FinishHook", "FolderJob"]


@dataclass
class FolderResult:
    """What a folder job produced: ``rows`` (one dict per image, the columns of
    ``OUT/quality.csv``), ``skipped`` (``{"file", "reason"}`` each) and ``summary`` (the
    ``OUT/summary.json`` record)."""

    out_dir: Path
    rows: list[dict[str, Any]]
    skipped: list[dict[str, str]]
    summary: dict[str, Any] = field(default_factory=dict)
    #: set when every label is unusable whatever the filter (all constant / all-nodata images),
    #: what happened, e.g. ``all 3 labels were rejected as unusable whatever the filter (3 x
    #: constant image)`` (:func:`~sam2elnet.utils.batch.unusable_summary`); None otherwise. Only
    #: a job run with ``unusable_is_error=False`` returns such a result (the pipelines)
    unusable: str | None = None

    @property
    def n_kept(self) -> int:
        return sum(1 for r in self.rows if row_kept(r))

    def __repr__(self) -> str:
        """One line: the folder and counts (``rows`` / ``skipped`` / ``summary`` hold the data)."""
        return (
            f"FolderResult(out_dir={self.out_dir!r}, {plural(len(self.rows), 'row')} "
            f"({self.n_kept} kept), {len(self.skipped)} skipped, unusable={self.unusable!r})"
        )


FinishHook = Callable[[FolderResult], dict[str, Any]]
"""Called with the finished job's result before ``summary.json`` is written; the entries it
returns are added to the summary (the pipeline writes ``report.html`` this way)."""


class FolderJob:
    """Shared machinery of annotate and enhance: chunked reading, prediction, writing, resume."""

    def __init__(
        self,
        predictor: Predictor,
        spec: ChunkSpec,
        fields: Sequence[str],
        *,
        resume: bool = False,
        progress: bool = True,
        tile: int | None = None,
        overlap: int = option_default(FolderJobOptions, "overlap"),
        executor: CallExecutor | None = None,
        model_id: dict[str, str] | None = None,
    ) -> None:
        """``spec``: the job's output options (task, folder, threshold, ...), the same for the
        whole images (:func:`process_chunk`) and the scenes (:meth:`run_scene`). ``fields``: the
        columns of ``quality.csv``. ``resume`` keeps the rows (and labels) of an earlier run;
        ``tile`` / ``overlap`` (px) are the windows of images too large to predict whole;
        ``tile`` None: chosen when the job runs (:func:`~sam2elnet.engine.window_size.
        resolve_tile`: the largest that fits the predictor's ``max_memory``, :attr:`window`).
        ``model_id``: the identity of the model file (:func:`~sam2elnet.engine.folder_inputs.
        check_resume_model`), written to ``OUT/model_id.json`` once the folder is locked."""
        out = spec.out
        self.p, self.spec, self.out, self.fields = predictor, spec, out, list(fields)
        #: runs the per-chunk work: this process (LocalExecutor) or Ray actors (RayExecutor)
        self.executor: CallExecutor = executor if executor is not None else LocalExecutor(predictor)
        self.order: dict[str, int] = {}  # image -> position in the job's input list
        #: which images go window by window, and in which memory-sized chunks the rest go
        self.planner = ChunkPlanner(predictor)
        self.tile, self.overlap = tile, overlap
        #: the window side :meth:`run` resolves from ``tile`` (said once, with the first image
        #: predicted window by window; recorded in ``summary.json``)
        self.window: WindowSize | None = None
        self._window_said = False
        #: the images :meth:`run_scene` predicted window by window, for one summary line
        self.windowed = WindowedImages()
        self.progress = progress
        self._created = not out.exists()
        self._lock = contextlib.ExitStack()
        self._lock.enter_context(output_lock(out))  # one job per output folder
        try:
            if resume:
                remove_stale_temps(out)
            self.done = read_done(out, fields) if resume else {}
            #: an earlier run's model_id.json (None: none), put back when this run produces
            #: nothing (:meth:`discard_if_empty`): its labels are still that model's
            ident = out / MODEL_ID_JSON
            self._earlier_id = ident.read_bytes() if ident.is_file() else None
            record_model_identity(out, model_id, resume)  # before any label is written
        except BaseException:
            self._lock.close()
            raise
        self.rows: list[dict[str, Any]] = []
        self.skips = SkipLog("image")
        self.skipped: list[dict[str, str]] = self.skips.items
        #: the job's warnings, each kind shown once (utils.run_warnings); open while in ``with``
        self.warnings = RunWarnings("image")
        self._last_flush = time.monotonic()
        self._written: str | None = None  # quality.csv's text as this job last wrote it
        #: rows of an earlier run (``--resume``) whose image is not in this run's list: kept in
        #: ``quality.csv`` (their labels stay in the folder), joined to :attr:`rows` after :meth:`run`
        self.earlier: list[dict[str, Any]] = []

    def __enter__(self) -> FolderJob:
        self.warnings.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.warnings.__exit__()
        self._lock.close()

    def discard_if_empty(self) -> None:
        """Nothing was produced: remove what this job wrote (and the folder if it made it).

        In a folder that existed (the user's, or an earlier run's) only the skip list stays from
        this run: ``quality.csv`` was never written (:meth:`flush` writes none without a row)
        and ``summary.json`` is written only by :meth:`finish`, so an earlier run's stay as they
        were; ``model_id.json`` is put back as the earlier run left it, or removed when there
        was none. A job that produced labels, even only rejected ones, keeps its record."""
        if self.rows:
            return
        if not self._created:
            ident = self.out / MODEL_ID_JSON
            if self._earlier_id is None:
                ident.unlink(missing_ok=True)
            else:
                write_bytes_atomic(ident, self._earlier_id)
            return
        for name in (QUALITY_CSV, SKIPPED_CSV, SUMMARY_JSON, MODEL_ID_JSON):
            (self.out / name).unlink(missing_ok=True)
        self._lock.close()

        for sub in ("labels", "rejected", "prob", "tiles", "changes"):
            with contextlib.suppress(OSError):
                (self.out / sub).rmdir()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.out) if not any(self.out.iterdir()) else None

    def flush(self, final: bool = False, always: bool = False) -> None:
        """Rewrite quality.csv (atomically) at most every few seconds, so resume loses little;
        not when it would hold the text it already holds (a job's end flushes after its last
        chunk and again in :meth:`finish`: one write and ``fsync`` less per job), and not before
        the job has a row unless ``always`` (:meth:`finish`): a job that produces nothing leaves
        no header-only table, nor replaces an earlier run's."""
        if not (self.rows or always or self._written is not None):
            return
        if final or time.monotonic() - self._last_flush > 5.0:
            text = csv_table_text(self.rows + self.earlier, self.fields)
            if text != self._written:
                write_text_atomic(self.out / QUALITY_CSV, text)
                self._written = text
            self._last_flush = time.monotonic()

    def refiltered(self, row: dict[str, Any]) -> dict[str, Any]:
        """A row reused by ``--resume`` under this run's filter: kept when its predicted IoU
        clears the threshold (and no reject flag is set), its label moved between ``labels/``
        and ``rejected/`` when the decision changed. A resumed run given another
        ``--min-quality`` / ``--target-precision`` printed and recorded the new threshold but left
        the earlier run's kept / rejected split. Rows without a score keep their decision."""
        try:
            score = float(str(row.get("predicted_iou") or "nan"))
        except ValueError:
            score = math.nan
        if not math.isfinite(score) or not row.get("label"):
            return row
        kept = self.spec.keeps(score) and not is_unusable(row.get("quality_flag"))
        if kept == row_kept(row):
            return row
        src = self.out / str(row["label"])
        rel = Path("labels" if kept else "rejected") / src.name
        (self.out / rel).parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, self.out / rel)
        return {**row, "kept": kept, "label": str(rel)}

    def run_scene(self, f: Path, name: str, coarse: CoarseFile | None) -> dict[str, Any] | None:
        """Predict one image too large to predict whole window by window
        (:func:`~sam2elnet.engine.folder_large.predict_large`); its row joins the job's and is
        returned, or the reason it was skipped its skip list (None returned)."""
        window = self.window  # resolved once for the job by run()
        assert window is not None
        if not self._window_said:  # said once, with the first image that goes by windows
            from sam2elnet.utils.progress import line

            self._window_said = True
            window.say(line)
        row = predict_large(
            self.p, self.spec, self.executor, self.skips, f, name, coarse,
            window=window, overlap=self.overlap, progress=self.progress,
            size=self.planner.size(f), tally=self.windowed,
        )  # fmt: skip
        if row is None:
            return None
        self.rows.append(run_row_paths(row))
        self.flush()
        return row

    def run(
        self, files: Sequence[Path], coarse_of: Callable[[Path], CoarseFile] | None = None
    ) -> None:
        """Label ``files`` (done rows of a resumed run are kept, not redone).

        With ``--resume`` the earlier run's rows of images not in ``files`` (a shorter or other
        list than the first run's) stay too, under this run's filter, after this run's rows in
        their earlier order: ``quality.csv`` keeps listing every label file in the folder. When
        every image of ``files`` is skipped the job fails as without them.

        Images whose whole-image memory estimate exceeds the predictor's ``max_memory``
        (:meth:`Predictor.fits_whole`) go through the sliding-window :meth:`run_scene` instead,
        whatever their format; ``coarse_of(path)`` gives an image's coarse label file (raster or
        vector; enhancement). The others are cut into chunks of at most ``4 x batch_size`` images
        whose whole-image estimate stays within ``max_memory`` (:meth:`chunks`), and every chunk
        goes through :func:`process_chunk` (with the job's ``spec``) on the job's executor: in
        this process, or on a Ray actor. Rows and skips come back in chunk order whichever runs
        them, so ``quality.csv`` is the same.
        """
        names = unique_names(files)
        # the windows of images too large to predict whole (enhance's carry the coarse label)
        self.window = resolve_tile(
            self.tile, self.p, overlap=self.overlap, coarse=coarse_of is not None
        )
        # one image (none skipped before the job): its own error line, no batch summary
        self.skips.single = len(files) == 1 and not self.skips.items
        # by absolute path: quality.csv's image (run_image_path), also from another folder
        self.order = {run_image_path(f): i for i, f in enumerate(files)}
        # rows of images that moved with the run folder: keyed by where they are now
        self.done = _moved_done(self.done, files, names, self.out)
        # an earlier run's images not given this time: their rows stay with their labels
        self.earlier = [r for k, r in self.done.items() if k not in self.order]
        todo: list[Path] = []
        large: list[Path] = []  # too large to predict whole: window by window (run_scene)
        for f in files:
            key = run_image_path(f)
            if key in self.done:
                # a row written relative to this working folder (before): now absolute
                self.rows.append(self.refiltered({**self.done[key], "image": key}))
            elif self.planner.tiled(f, coarse_of is not None):
                large.append(f)
            else:
                todo.append(f)
        from sam2elnet.utils.progress import bar_wanted, line, progress_bar

        # the bar counts every image this run predicts, whole or window by window (each of
        # those draws its window bar below it while it runs, cleared when done)
        bar = progress_bar(len(todo) + len(large), self.spec.task, "img", self.progress)
        kept = skipped = 0  # of the bar's images (not resumed rows)
        try:
            for f in large:
                row = self.run_scene(f, names[f], coarse_of(f) if coarse_of else None)
                kept += row is not None and row_kept(row)
                skipped += row is None
                bar.update(1)
                bar.set_postfix(kept=kept, skipped=skipped, refresh=False)
            # the window-by-window images in one line, not one closing window line per image;
            # as every stage line, only without a bar (the bar counted them)
            note = self.windowed.summary(self.spec.task, self.window, self.p.max_memory)
            if note is not None and not bar_wanted(self.progress):
                line(note)

            chunks = list(self.planner.chunks(todo, coarse_of is not None))
            work = (
                (self.spec, [(f, names[f], coarse_of(f) if coarse_of else None) for f in chunk])
                for chunk in chunks
            )
            results = self.executor.map_calls(process_chunk, work)
            for chunk, res in zip(chunks, results, strict=True):
                self.warnings.replay(res.warnings)
                for item, reason in res.skipped:
                    self.skips.add(item, reason)
                # absolute here, not in the workers (whose working folder may differ)
                self.rows.extend(run_row_paths(r) for r in res.rows)
                kept += sum(1 for r in res.rows if row_kept(r))
                skipped += len(res.skipped)
                bar.update(len(chunk))
                bar.set_postfix(kept=kept, skipped=skipped, refresh=False)
                self.flush()
        finally:
            bar.close()
            self.flush(final=True)
            self.skips.write_csv(self.out / SKIPPED_CSV)  # an earlier run's list: removed
        if not self.rows and self.skipped:  # the list stays only in a folder that stays
            self.discard_if_empty()
            raise self.skips.nothing_done(len(self.skipped), csv=self.out / SKIPPED_CSV)
        # after this run's rows (on_disk: input order first); refiltered only now, so a job that
        # fails above moves none of their labels
        self.rows.extend(self.refiltered(r) for r in self.earlier)
        self.earlier = []

    def on_disk(self) -> None:
        """Keep only rows whose label file is on disk, in input order (so a resumed or
        distributed run writes the same quality.csv); warn about label files no row lists."""
        self.rows = [r for r in self.rows if (self.out / str(r["label"])).is_file()]
        self.rows.sort(key=lambda r: self.order.get(run_image_path(r["image"]), len(self.order)))
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
            one = len(extra) == 1
            log.warning(
                "%s in %s %s from an earlier run and not in quality.csv (e.g. %s); delete %s or "
                "re-run with --resume",
                plural(len(extra), "label file"),
                self.out,
                "is" if one else "are",
                extra[0].name,
                "it" if one else "them",
            )

    def finish(
        self, t0: float, n_before: int, extra: dict[str, Any], on_finish: FinishHook | None
    ) -> FolderResult:
        """Summarise the job (rows reconciled with the files on disk), run ``on_finish`` (its
        entries join the summary), write ``summary.json``; return the result."""
        self.on_disk()
        self.flush(final=True, always=True)
        summary = self.summary(t0, len(self.rows) - n_before, extra)
        summary["unlisted_label_files"] = self.unlisted
        summary["n_resumed"] = n_before  # rows of the earlier run kept by --resume, not redone
        # images this run predicted window by window (too large to predict whole), their windows
        summary["n_windowed"] = self.windowed.n_images
        summary["n_windows"] = self.windowed.n_windows
        summary["warnings"] = self.warnings.record()  # each kind was logged once, with a count
        result = FolderResult(self.out, self.rows, self.skipped, summary)
        if on_finish is not None:
            summary.update(on_finish(result))
        write_summary(self.out, summary)
        return result

    def summary(self, t0: float, n_new: int, extra: dict[str, Any]) -> dict[str, Any]:
        scores = [float(r["predicted_iou"]) for r in self.rows]
        kept = sum(1 for r in self.rows if row_kept(r))
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
            "threshold": self.spec.threshold,
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


def _moved_done(
    done: dict[str, dict[str, Any]], files: Sequence[Path], names: dict[Path, str], out: Path
) -> dict[str, dict[str, Any]]:
    """``done`` (:func:`~sam2elnet.engine.folder_inputs.read_done`: rows keyed by the image's
    absolute path) with the rows of images that moved together with the run folder ``out``
    keyed by their paths now. A row whose image path is gone (the project moved, or was copied
    to another machine) is the row of the image of ``files`` that is not done, writes its
    label's file name (``names``: :func:`~sam2elnet.engine.folder_inputs.unique_names`) and
    lies where it lay beside the run folder: the old path ends with the image's path from the
    folder that holds both it and ``out`` now (``images/a.png`` of ``proj/images/a.png`` beside
    ``proj/auto``; an image of another folder, ``batch2/a.png`` after ``batch1/a.png``, is
    not it). Without it such a ``--resume`` redid every image, and ``quality.csv`` listed each
    label twice (the old row kept as an earlier run's)."""
    gone: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    for key, row in done.items():
        if not Path(key).exists():
            gone.setdefault(Path(str(row["label"])).name, []).append((Path(key).parts, key))
    if not gone:
        return done
    home = os.path.abspath(out)
    moved = dict(done)
    for f in files:
        key = run_image_path(f)
        root = os.path.commonpath([key, home])
        tail = Path(os.path.relpath(key, root)).parts
        olds = [k for parts, k in gone.get(names[f], []) if parts[-len(tail) :] == tail]
        if key not in moved and len(olds) == 1 and olds[0] in moved:
            row = moved.pop(olds[0])
            was = Path(olds[0]).parents[len(tail) - 1]  # the folder that held both before
            moved[key] = {**row, "image": key, **_moved_coarse(row, was, Path(root))}
    return moved


def _moved_coarse(row: dict[str, Any], was: Path, now: Path) -> dict[str, str]:
    """``{"coarse": path}``: enhance's coarse label of a row whose image moved from below ``was``
    to below ``now`` (:func:`_moved_done`), where it lies now when it is gone from its recorded
    path and lay below ``was`` too (it moved with the image and the run folder); ``{}``
    otherwise (no coarse label, it did not move, or it is not found)."""
    coarse = str(row.get("coarse") or "")
    if not coarse or Path(coarse).exists() or not Path(coarse).is_relative_to(was):
        return {}
    there = now / Path(coarse).relative_to(was)
    return {"coarse": str(there)} if there.exists() else {}
