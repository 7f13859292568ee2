"""The steps :func:`~sam2elnet.engine.infer.annotate_folder` and
:func:`~sam2elnet.engine.infer.enhance_folder` share: :class:`FolderSettings` (the job's options,
given once, checked before anything is read), :class:`FolderModel` (the loaded predictor, the
precision that runs and the keep threshold) and the run of the
:class:`~sam2elnet.engine.folder_job.FolderJob` with ``summary.json``'s entries of both tasks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from sam2elnet.data.run_model import model_record
from sam2elnet.engine.folder_chunk import ChunkSpec, CoarseFile
from sam2elnet.engine.folder_inputs import check_resume_model
from sam2elnet.engine.folder_job import FinishHook, FolderJob, FolderResult
from sam2elnet.engine.folder_workers import (
    ExecutorFactory,
    executor_record,
    job_executor,
    job_predictor,
)
from sam2elnet.engine.predictor import Predictor
from sam2elnet.engine.runtime import announce_predictor_precision
from sam2elnet.errors import UserError
from sam2elnet.model.input_flags import unusable_counts
from sam2elnet.option_checks import api_flags, check_options
from sam2elnet.options import FolderJobOptions
from sam2elnet.utils.batch import unusable_summary

__all__ = ["FolderModel", "FolderSettings", "domain_summary", "warp_summary"]


def warp_summary(spec: ChunkSpec) -> dict[str, str] | None:
    """``summary.json``'s ``warp`` entry: where the outputs were warped to (None: kept)."""
    return {"to": spec.warp_to, "method": spec.warp_method} if spec.warp_to else None


def domain_summary(pred: Any) -> dict[str, Any]:
    """``summary.json``'s ``domain`` entry: the model's domain and modality as training recorded
    them, and the object category name exports default to (``"road"``, ``"oil spill"``; None
    when the model does not tell; :func:`sam2elnet.data.domain.category_name`)."""
    from sam2elnet.data.domain import category_name

    extra = getattr(pred, "extra", None)
    train = extra.get("train") if isinstance(extra, dict) else None
    train = train if isinstance(train, dict) else {}
    domain, modality = train.get("domain"), train.get("modality")
    return {"domain": domain, "modality": modality, "category": category_name(domain, modality)}


@dataclass
class FolderSettings:
    """The settings :func:`~sam2elnet.engine.infer.annotate_folder` and
    :func:`~sam2elnet.engine.infer.enhance_folder` share, given once by each,
    and the steps both take with them, in order: :meth:`check` (the options' ranges, before
    anything is read), :meth:`load` (the model) and :meth:`run` (the :class:`FolderJob`)."""

    #: the model file; None: ``predictor``'s own file (:attr:`Predictor.path`), or none (a
    #: model in memory: ``summary.json`` records ``"model": null`` and its ``model_config``)
    model_path: str | Path | None
    out_dir: str | Path
    min_quality: float | None
    target_precision: float | None
    tau: float | None
    resume: bool
    on_finish: FinishHook | None
    save_prob: bool
    batch_size: int
    device: str
    precision: str
    tta: int | None
    progress: bool
    predictor: Predictor | None
    tile: int | None  # None: chosen to fit max_memory (engine.window_size.resolve_tile)
    overlap: int
    bands: Sequence[int] | None
    max_memory: int | str | None
    executor_factory: ExecutorFactory | None
    warp_to: str | None
    warp_method: str
    echo: Callable[[str], None] | None
    #: every label unusable raises DataError (the commands); False: recorded in the result's
    #: ``unusable`` for the caller to report (the pipelines: a cv fold, an experiment stage)
    unusable_is_error: bool = True
    t0: float = field(default_factory=time.perf_counter)  # the job's start (summary's seconds)

    @classmethod
    def from_arguments(cls, arguments: Mapping[str, Any]) -> FolderSettings:
        """The settings among a folder job's ``arguments`` (its ``locals()`` on entry): every
        field of this class taken by name, the task's own arguments (``images``, ``labels``,
        ``split``, ...) left out, so an option both jobs share is declared here and in the two
        public signatures only.

        Raises:
            TypeError: ``arguments`` lacks a field without a default (a signature out of step).
        """
        names = {f.name for f in fields(cls) if f.init and f.name != "t0"}
        return cls(**{k: v for k, v in arguments.items() if k in names})

    def check(self, **task_options: Any) -> None:
        """The API applies the CLI's ranges too (one declaration: options.FolderJobOptions; the
        task's own ``task_options`` with the shared ones) and the ``--warp-to`` /
        ``--warp-method`` check of ``scene`` and ``export``
        (:func:`sam2elnet.data.warp.check_warp_options`); ``warp_to`` becomes the checked value.

        ``model_path`` None becomes ``predictor``'s file (:attr:`Predictor.path`), if it has one.

        Raises:
            UserError: the first option out of its range, or an unknown CRS / method; neither
                ``model_path`` nor ``predictor`` given, or a ``predictor`` without a model file
                with ``executor_factory`` (its workers load the model from the file).
        """
        from sam2elnet.data.warp import check_warp_options

        if self.model_path is None and self.predictor is not None:
            self.model_path = self.predictor.path
        if self.model_path is None and self.predictor is None:
            raise UserError("give model_path (a model file) or predictor (a Predictor)")
        if self.model_path is None and self.executor_factory is not None:
            raise UserError(
                "executor_factory's workers load the model from its file, and this "
                "predictor has none: save the model (sam2elnet.model.io.save_model) and give "
                "model_path, or run without executor_factory"
            )

        check_options(
            FolderJobOptions, api_flags(FolderJobOptions), min_quality=self.min_quality,
            target_precision=self.target_precision, tau=self.tau, batch_size=self.batch_size,
            device=self.device, precision=self.precision, tta=self.tta, tile=self.tile,
            overlap=self.overlap, max_memory=self.max_memory, **task_options,
        )  # fmt: skip
        self.warp_to = check_warp_options(self.warp_to, self.warp_method)

    def load(self) -> FolderModel:
        """Check that ``resume`` continues with the same model and ``bands`` (before the model loads:
        UserError otherwise), load the predictor (or take ``predictor``), set its ``bands``, log
        the precision that runs and choose the job's threshold."""
        t_load = time.perf_counter()
        model_id = check_resume_model(
            self.out_dir, self.model_path, self.resume, self.bands,
            model_name="model_path", out_name="out_dir",
        )  # fmt: skip
        pred = job_predictor(
            self.predictor, self.model_path, self.device, self.precision, self.batch_size,
            self.tta, self.max_memory,
        )  # fmt: skip
        pred.set_bands(self.bands)
        prec = announce_predictor_precision(self.precision, pred, self.echo)
        threshold, info = pred.choose_threshold(self.min_quality, self.target_precision, self.tau)
        dt = time.perf_counter() - t_load
        return FolderModel(model_id, pred, prec, threshold, info, dt)

    def spec(self, task: str, model: FolderModel, **task_options: Any) -> ChunkSpec:
        """The job's :class:`ChunkSpec`: the shared output options (folder, ``model``'s
        threshold, ``save_prob``, the checked ``warp_to``) and the task's own ``task_options``."""
        return ChunkSpec(
            task, Path(self.out_dir), model.threshold, save_prob=self.save_prob,
            warp_to=self.warp_to, warp_method=self.warp_method, **task_options,
        )  # fmt: skip

    def run(
        self,
        model: FolderModel,
        spec: ChunkSpec,
        fields: Sequence[str],
        files: Sequence[Path],
        coarse_of: Callable[[Path], CoarseFile] | None = None,
        summary: dict[str, Any] | None = None,
        skipped: Sequence[dict[str, str]] = (),
    ) -> FolderResult:
        """Run the :class:`FolderJob` of ``spec`` over ``files`` (``fields``: the columns of
        ``quality.csv``; ``coarse_of``: an image's coarse label, enhance) and write
        ``summary.json``: the entries of both tasks (among them ``window``: the windows' side,
        px, ``tile_auto`` whether it was chosen, and ``overlap``), the task's own ``summary``,
        then ``warp``.
        ``skipped``: the rows (:meth:`~sam2elnet.utils.batch.SkipLog.rows`) of the images left
        out before the job (enhance ``--skip-missing``: no coarse label,
        :func:`~sam2elnet.utils.batch.unlabelled_skips`), listed in ``skipped.csv`` and counted as
        skipped (no ``skipping`` warning each: the caller names them in one note).

        Raises:
            DataError: nothing was produced (every image skipped: nothing is left behind), or,
                with :attr:`unusable_is_error`, nothing usable (every label rejected as unusable
                whatever the filter, a :func:`~sam2elnet.model.input_flags.is_unusable` flag such
                as ``constant image``: the outputs and ``summary.json`` stay as the record;
                :meth:`~sam2elnet.utils.batch.SkipLog.nothing_usable`). Without it the result's
                ``unusable`` says so instead."""
        with (
            FolderJob(
                model.pred, spec, fields, resume=self.resume, progress=self.progress,
                tile=self.tile, overlap=self.overlap, model_id=model.model_id,
            ) as job,
            job_executor(self.executor_factory, model.pred, self.model_path) as ex,
        ):  # fmt: skip
            job.executor = ex
            job.skips.items.extend(skipped)  # already recorded: no warning, reason as it is
            n_before = len(job.done)
            t_images = time.perf_counter()
            job.run(files, coarse_of)
            extra = {
                # what the total ``seconds`` (from the job's start) is made of, the rest being
                # listing the images, starting the workers and writing the outputs
                "seconds_model_load": model.load_seconds,
                "seconds_images": time.perf_counter() - t_images,
                "task": spec.task,
                "backend": executor_record(ex),  # what ran the images: local, ray (workers)
                "model": None if self.model_path is None else model_record(self.model_path),
                "model_version": model.model_id["model_version"] if model.model_id else None,
                "domain": domain_summary(model.pred),
                "filter": model.filter_info,
                # the windows of images too large to predict whole: {"tile": px, "tile_auto":
                # chosen (no --tile), "overlap": px}
                "window": {**job.window.record(), "overlap": self.overlap}
                if job.window is not None
                else None,
                # a model in memory (no file to name): what is known of it, the config a model
                # file would hold (sam2elnet.model.ModelConfig)
                **(
                    {"model_config": model.pred.model.config.model_dump()}
                    if self.model_path is None
                    else {}
                ),
                **model.precision,
                **(summary or {}),
                "warp": warp_summary(spec),
            }
            result = job.finish(self.t0, n_before, extra, self.on_finish)
            n_made = len(result.rows)
            unusable = unusable_counts(result.summary.get("n_flagged") or {})
            result.unusable = unusable_summary(n_made, unusable)
            if result.unusable is not None and self.unusable_is_error:
                them = "label" if n_made == 1 else "labels"
                err = job.skips.nothing_usable(
                    n_made, unusable, files,
                    "give images that hold something to label (not blank, all-nodata or mask "
                    "tiles) in the value range the model was trained on; the "
                    f"{them} in rejected/ and quality.csv stay in {spec.out} as the record",
                )  # fmt: skip
                if err is not None:
                    raise err
            return result


@dataclass(frozen=True)
class FolderModel:
    """The model side of a folder job (:meth:`FolderSettings.load`)."""

    #: the model file's identity, recorded in OUT/model_id.json (check_resume_model)
    model_id: dict[str, str] | None
    pred: Predictor
    #: summary.json's precision entries (announce_predictor_precision)
    precision: dict[str, Any]
    #: the predicted IoU a label needs to be kept (None: all kept)
    threshold: float | None
    #: summary.json's ``filter`` entry (Predictor.choose_threshold)
    filter_info: dict[str, Any]
    #: seconds :meth:`FolderSettings.load` took (model file read, threshold chosen)
    load_seconds: float = 0.0
