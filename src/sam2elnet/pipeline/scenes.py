"""Scene job front doors: folders of scenes, model loading and the job behind ``elnet scene``.

:func:`scene_job` is what ``elnet scene`` runs: it loads the predictor (a model file, or
``builtin:smoothing`` for a model-free dry run), picks the local or Ray backend and predicts one
scene (:func:`sam2elnet.engine.scene.predict_scene`) or a folder of scenes (:func:`predict_scenes`,
resumable through ``manifest.jsonl``; the scenes, coarse labels and outputs of a folder:
:mod:`sam2elnet.pipeline.scene_files`). These live in the pipeline layer because they wire engine
parts together (:class:`~sam2elnet.engine.predictor.Predictor`,
:class:`~sam2elnet.engine.distributed.RayExecutor`, :func:`~sam2elnet.engine.scene.predict_scene`).
"""

from __future__ import annotations

import functools
import math
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sam2elnet.data.naming import PROB_SUFFIX, TILES_SUFFIX, scene_companion
from sam2elnet.data.run_model import BUILTIN_PREFIX, record_model_identity
from sam2elnet.data.runfolder import SCENE_MANIFEST, SKIPPED_CSV
from sam2elnet.data.vector_shared import warn_no_width
from sam2elnet.engine.executors import SmoothingPredictor
from sam2elnet.engine.predictor import Predictor, QualityScoringPredictor
from sam2elnet.engine.runtime import announce_predictor_precision
from sam2elnet.engine.scene import SceneResult, predict_scene
from sam2elnet.engine.scene_checks import check_scene_paths
from sam2elnet.engine.scene_inputs import (
    coarse_options,
    open_scene,
    precheck_coarse,
    precheck_scene,
)
from sam2elnet.engine.window_size import WindowSize, resolve_tile
from sam2elnet.errors import DataError, UserError
from sam2elnet.option_checks import api_option, option_default
from sam2elnet.option_values import DEFAULT_WARP_METHOD
from sam2elnet.options import OVERLAP_DEFAULT, TILE_MIN, SceneOptions
from sam2elnet.pipeline.scene_files import (
    check_scene_outputs,
    list_scenes,
    match_coarse,
    scene_outputs,
    shared_coarse,
)
from sam2elnet.utils.advice import plural
from sam2elnet.utils.atomic import remove_stale_temps
from sam2elnet.utils.batch import SkipLog, short_reason
from sam2elnet.utils.run_warnings import RunWarnings, repeated_notes

__all__ = [
    "BUILTIN_PREFIX",
    "SceneBatchResult",
    "load_scene_predictor",
    "predict_scenes",
    "scene_job",
]


# --------------------------------------------------------------------------------------------
# folders of scenes, resumable


@dataclass
class SceneBatchResult:
    """What a folder run did: finished, skipped (already done on resume) and failed items."""

    done: list[str]
    skipped: list[str]
    failed: dict[str, str]
    manifest: Path
    #: ``skipped.csv`` (scene, reason) of the scenes in :attr:`failed`; None when none failed
    skipped_csv: Path | None = None
    #: the batch's warnings by kind, each logged once (:meth:`RunWarnings.record
    #: <sam2elnet.utils.run_warnings.RunWarnings.record>`: warning, count, first)
    warnings: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> str:
        """Lines for the CLI: ``1 scene predicted, 0 already done, 2 skipped`` and the manifest
        path. Scenes that cannot be used are called skipped, as in every batch command
        (:mod:`sam2elnet.utils.batch`); their reasons are not repeated here: each was logged once
        as ``warning: skipping SCENE: reason`` and is kept in :attr:`failed` and in the
        manifest and ``skipped.csv`` (:attr:`skipped_csv`), which the line says."""
        n = len(self.done)
        s = (
            f"{plural(n, 'scene')} predicted, {len(self.skipped)} already done, "
            f"{len(self.failed)} skipped"
        )
        if self.failed:
            s += " (reasons: the warnings above and the manifest)"
        return s + f"\nmanifest: {self.manifest}"

    def skip_log(self) -> SkipLog:
        """:attr:`failed` as the batch's skip log (scene, reason)."""
        return SkipLog("scene", [{"scene": k, "reason": v} for k, v in self.failed.items()])

    def nothing_done(self, where: str | Path, discard: bool = False) -> DataError | None:
        """The error of a run in which every scene failed and none was done before (``where``:
        the scene folder; :meth:`~sam2elnet.utils.batch.SkipLog.nothing_done`, naming
        :attr:`skipped_csv`), else None. ``discard``: the run made the output folder; it is removed
        (no folder holding only a record of failures is left), and with it the list."""
        if not self.failed or self.done or self.skipped:
            return None
        if discard:
            shutil.rmtree(self.manifest.parent, ignore_errors=True)
        return self.skip_log().nothing_done(len(self.failed), where, csv=self.skipped_csv)

    def notes(self) -> list[str]:
        """One closing line per kind of warning that several scenes gave (each shown once)."""
        return repeated_notes(self.warnings, "scene")


def predict_scenes(
    inputs: str | Path | Iterable[str | Path],
    out_dir: str | Path,
    predictor: Any,
    *,
    resume: bool = False,
    prob: bool = False,
    quality: bool = False,
    coarse: str | Path | None = None,
    progress: bool = True,
    record: dict[str, Any] | None = None,
    model_id: dict[str, str] | None = None,
    **scene_kwargs: Any,
) -> SceneBatchResult:
    """Predict every scene of a folder (or list) into ``out_dir``, resumably.

    Outputs per scene ``S``: ``S.tif`` (labels), ``S_prob.tif`` (``prob``), ``S_tiles.gpkg``
    (``quality``). ``out_dir/manifest.jsonl`` records each finished or failed scene (fsync'd);
    with ``resume=True`` scenes recorded as done (whose outputs exist) are skipped, so a killed job
    continues where it stopped and ends with identical outputs (every file is written atomically).
    A scene that cannot be used (corrupt, all nodata, constant, wrong bands) is recorded as failed
    with the reason and the batch goes on; at the end ``out_dir/skipped.csv`` (scene, reason)
    lists this run's failed scenes (a resumed run retries an earlier run's), or an earlier list
    is removed when none failed (:meth:`~sam2elnet.utils.batch.SkipLog.write_csv`).
    ``coarse`` is a label file or a folder matched by file stem.
    ``record`` entries (e.g. the precision that ran) are added to each finished scene's manifest
    line. ``model_id``: the identity of the model file
    (:func:`~sam2elnet.engine.folder_inputs.check_resume_model`), written to
    ``out_dir/model_id.json`` once the folder is locked
    (:func:`~sam2elnet.data.run_model.record_model_identity`), as annotate and enhance record
    theirs: ``--resume`` with another model is refused, exports tag the labels with its version.
    Other keyword arguments go to :func:`predict_scene`.

    Raises:
        DataError: ``inputs`` does not exist or holds no scene (``.tif`` / ``.tiff`` ...), or a
            ``coarse`` vector file that cannot be read. A scene that fails is no error: it is
            recorded and skipped; when every scene failed the result's
            :meth:`SceneBatchResult.nothing_done` is the error to raise (``elnet scene`` does).
        LockedError: another job is writing into ``out_dir``.
        UserError: ``out_dir`` is a file or one of the inputs, or invalid scene options
            (``tile`` / ``overlap``, output names; :func:`predict_scene`).
    """
    from sam2elnet.utils.lock import output_lock

    out = Path(out_dir)
    scenes = list_scenes(inputs)

    with output_lock(out), RunWarnings("scene") as warned:  # one job per output folder
        res = _predict_scenes(
            scenes, out, predictor, resume, prob, quality, coarse, progress, record, model_id,
            scene_kwargs,
        )  # fmt: skip
    res.warnings = warned.record()
    return res


def _predict_scenes(
    scenes: list[Path],
    out: Path,
    predictor: Any,
    resume: bool,
    prob: bool,
    quality: bool,
    coarse: str | Path | None,
    progress: bool,
    record: dict[str, Any] | None,
    model_id: dict[str, str] | None,
    scene_kwargs: dict[str, Any],
) -> SceneBatchResult:
    from sam2elnet.utils.manifest import Manifest

    if resume:
        remove_stale_temps(out)
    record_model_identity(out, model_id, resume)  # before any label is written
    mpath = out / SCENE_MANIFEST
    if not resume and mpath.exists():
        mpath.unlink()
    manifest = Manifest.load(mpath)
    done: list[str] = []
    skipped: list[str] = []
    failed: dict[str, str] = {}
    shared = shared_coarse(coarse, scenes)
    warned = SkipLog("scene")
    for scene in scenes:
        key = scene.name
        if resume and manifest.is_done(key):
            skipped.append(key)
            continue
        outs = scene_outputs(out, scene, prob, quality)
        try:
            res = predict_scene(
                scene,
                outs["label"],
                predictor,
                coarse=shared or match_coarse(coarse, scene),
                prob_path=outs["prob"],
                quality_gpkg=outs["quality"],
                progress=progress,
                **scene_kwargs,
            )
        except DataError as err:
            reason = short_reason(str(err), scene)  # the manifest's item names the scene
            warned.add(scene, reason)  # a warning each, or many of one reason summarised
            manifest.mark_failed(key, reason)
            failed[key] = reason
            continue
        manifest.mark_done(
            key,
            [p for p in outs.values() if p is not None],
            foreground_fraction=round(res.foreground_fraction, 6),
            windows=res.n_predicted,
            **(record or {}),
        )
        done.append(key)
    res = SceneBatchResult(done=done, skipped=skipped, failed=failed, manifest=mpath)
    res.skipped_csv = res.skip_log().write_csv(out / SKIPPED_CSV)  # the run's, or none
    warned.warn_held(res.skipped_csv)
    return res


# --------------------------------------------------------------------------------------------
# loading predictors and the job behind ``elnet scene``


def load_scene_predictor(
    model: str | Path,
    *,
    quality: bool = False,
    device: str = option_default(SceneOptions, "device"),
    precision: str = option_default(SceneOptions, "precision"),
    batch_size: int = option_default(SceneOptions, "batch_size"),
    tta: int | None = None,
    in_bands: int = 1,
    max_memory: int | str | None = None,
) -> Any:
    """Load the predictor for scene jobs (picklable via functools.partial for Ray workers).

    ``model`` is a model file written by ``elnet train``, or ``builtin:smoothing`` for a model-free
    dry run (:class:`SmoothingPredictor`: checks tiling, georeference and outputs on a scene in
    seconds before committing CPU hours). ``quality`` wraps the real predictor so each window is
    also scored by the label quality evaluator. ``max_memory`` (bytes or ``"800M"``; None: the
    default budget) caps the windows per forward (``Predictor.fit_batch``).

    Raises:
        UserError: a ``builtin:`` name other than ``builtin:smoothing``, or a ``device`` that
            is unknown or not available (:func:`~sam2elnet.engine.runtime.resolve_device`).
        CheckpointError: ``model`` is missing, damaged or not a sam2elnet model file
            (:meth:`~sam2elnet.engine.predictor.Predictor.from_file`).
    """
    m = str(model)
    if m.startswith(BUILTIN_PREFIX):
        name = m[len(BUILTIN_PREFIX) :]
        if name != "smoothing":
            raise UserError(f"unknown built-in model {name!r}; the only one is builtin:smoothing")
        return SmoothingPredictor(in_bands=in_bands, score=False)
    p = Predictor.from_file(
        m,
        device=device,
        precision=precision,
        batch_size=batch_size,
        tta=tta,
        max_memory=max_memory,
    )
    return QualityScoringPredictor(p) if quality else p


def _check_warp(src: Path, scene_kwargs: dict[str, Any]) -> None:
    """``--warp-to`` / ``--warp-method`` in ``scene_kwargs`` checked before the model loads: the
    values (:func:`~sam2elnet.data.warp.check_warp_options`; ``warp_to`` replaced by the checked
    value) and, for one scene, that ``src`` can be warped
    (:func:`~sam2elnet.data.warp.check_warpable`: a georeference or at least 3 GCPs with a CRS).
    Scenes of a folder are checked one by one as they run (one that cannot be warped is skipped
    with the reason, like any unusable scene)."""
    if not scene_kwargs.get("warp_to"):
        return
    from sam2elnet.data.warp import check_warp_options, check_warpable

    method = scene_kwargs.get("warp_method", DEFAULT_WARP_METHOD)
    scene_kwargs["warp_to"] = check_warp_options(scene_kwargs["warp_to"], method)
    if not src.is_dir():
        check_warpable(src, scene_kwargs["warp_to"], method)


def _check_window_memory(
    predictor: Any,
    src: Path,
    window: WindowSize,
    coarse: bool,
    shape: tuple[int, int] | None = None,
) -> None:
    """Refuse a ``--tile`` whose one window does not fit the predictor's ``--max-memory``
    (a scene's windows are ``min(tile, side)`` px per side; a folder's: its largest scene
    window, from the headers; scenes that cannot be read are left to the batch), naming the
    largest tile that fits. Predictors without a budget (``builtin:smoothing``) pass.
    ``shape``: one scene's (height, width) px where its header was read already
    (:func:`~sam2elnet.engine.scene_inputs.precheck_scene`); else it is opened here.
    ``window``: the side, given or chosen (:func:`~sam2elnet.engine.window_size.resolve_tile`).

    Raises:
        UserError: the window does not fit. DataError: one scene that cannot be opened."""
    import rasterio

    net = getattr(predictor, "predictor", predictor)  # QualityScoringPredictor wraps one
    if not isinstance(net, Predictor):
        return
    tile = window.tile
    if not src.is_dir():
        if shape is None:
            with open_scene(src) as ds:
                shape = (ds.height, ds.width)
        h, w = min(tile, shape[0]), min(tile, shape[1])
    else:  # the largest window of the folder's scenes (a folder of 512 px scenes: 512 x 512)
        h = w = 0
        for scene in list_scenes(src):
            try:
                with rasterio.open(scene) as ds:
                    sh, sw = min(tile, ds.height), min(tile, ds.width)
            except Exception:  # noqa: BLE001 - skipped and reported when its turn comes
                continue
            if sh * sw > h * w:
                h, w = sh, sw
        if h * w == 0:
            h = w = tile
    if net.fits_whole(h * w, coarse=coarse):
        return
    fits = [t for t in range(TILE_MIN, tile, 16) if net.fits_whole(t * t, coarse=coarse)]
    need = net.whole_bytes(h * w, coarse=coarse) / 1e9
    base = net.whole_bytes(0, coarse=coarse) / 1e9  # the model and runtime, before any pixel
    budget = api_option("max_memory")
    what = (
        f"--tile {fits[-1]} fits it (give a smaller --tile, or a larger {budget})"
        if fits
        else f"the model and runtime alone take about {base:.2f} GB of it, so no --tile keeps "
        f"to it: give {budget} {math.ceil(need * 100) / 100:g}G or more"
    )
    named = "float32" if net.precision == "32" else net.precision  # was "at 32 precision"
    raise UserError(
        f"{budget} {net.max_memory / 1e9:g}G: one {h} x {w} px window ({window.flag}) needs "
        f"about {need:.2f} GB with this model at {named} precision; {what}"
    )


def scene_job(
    image: str | Path,
    out: str | Path,
    model: str | Path,
    *,
    labels: str | Path | None = None,
    layer: str | None = None,
    prob: bool = False,
    quality: bool = False,
    resume: bool = False,
    backend: str = option_default(SceneOptions, "backend"),
    address: str | None = None,
    workers: int = option_default(SceneOptions, "workers"),
    device: str = option_default(SceneOptions, "device"),
    precision: str = option_default(SceneOptions, "precision"),
    max_memory: int | str | None = None,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
    **scene_kwargs: Any,
) -> SceneResult | SceneBatchResult:
    """What ``elnet scene`` does: one scene (``image`` a file) or a folder of scenes, locally or on Ray.

    For a single scene ``out`` is the label GeoTIFF; ``prob`` / ``quality`` write
    ``<out stem>_prob.tif`` / ``<out stem>_tiles.gpkg`` next to it. For a folder ``out`` is a
    folder (see :func:`predict_scenes`, resumable with ``resume``; the folder records its model
    in ``model_id.json``). The outputs (:func:`~sam2elnet.pipeline.scene_files.check_scene_outputs`), ``warp_to`` /
    ``warp_method`` (:func:`_check_warp`) and, for a folder with ``resume``, that the model is the
    one the folder records (:func:`~sam2elnet.engine.folder_inputs.check_resume_model`) are
    checked before the model loads, as is ``layer`` (``--layer``: the layer read from a vector
    ``labels`` file, :func:`~sam2elnet.pipeline.scene_files.shared_coarse`); so is, for one
    scene, that it is not all nodata or constant
    (:func:`~sam2elnet.engine.scene_inputs.precheck_scene`: refused in about a second, not after
    the model loaded and Ray workers started), and that the scene takes its ``labels``
    (:func:`~sam2elnet.engine.scene_inputs.precheck_coarse`). A model's precision is logged once (``precision: ...``, to
    ``echo`` or the log at INFO) and, for a folder, recorded in each manifest line
    (``precision_option`` / ``precision_resolved``). ``max_memory`` (``--max-memory``; None:
    the predictor's default budget, no check) caps the windows per forward; given, a window of
    ``tile`` px that alone exceeds it is a :class:`~sam2elnet.errors.UserError` naming the
    largest ``--tile`` that fits (:func:`_check_window_memory`), before any window is read.
    ``tile`` not given (or None): the largest window of up to 1024 px that fits the predictor's
    budget (:func:`~sam2elnet.engine.window_size.resolve_tile`), said once (``windows of 768 px
    (auto: ...)``, to ``echo`` or the log at INFO) and, for a folder, recorded in each manifest
    line (``tile``, ``tile_auto``). Every label (one scene's, each of a folder's)
    records the model file and its category in its tags (:mod:`sam2elnet.data.label_tags`).

    Raises:
        UserError: an unknown ``backend``, outputs that are inputs or folders / files of the
            wrong kind, invalid ``warp_to`` / ``warp_method`` / ``tile`` / ``overlap``, a window
            over ``max_memory``, ``layer`` without a vector ``labels`` file, or ``resume`` into a
            folder made with another model or ``--bands``.
        DataError: ``image`` missing or unreadable, one scene all nodata or constant (before
            the model loads), a folder with no scene, unreadable ``labels`` (one scene's:
            also not overlapping it, before the model loads); for one scene what
            :func:`~sam2elnet.engine.scene.predict_scene` raises (a folder's scenes are skipped,
            see :func:`predict_scenes`).
        CheckpointError: ``model`` is missing, damaged or not a sam2elnet model file.
        LockedError: another job is writing into ``out`` (a folder of scenes).
    """
    if backend not in ("local", "ray"):
        raise UserError(f"unknown backend {backend!r}; use local or ray")
    src, dst = Path(image), Path(out)
    one = {  # a single scene's outputs, as predict_scene gets them below
        "prob_path": scene_companion(dst, PROB_SUFFIX) if prob else None,
        "quality_gpkg": scene_companion(dst, TILES_SUFFIX) if quality else None,
    }
    check_scene_outputs(image, out, labels, prob, quality)  # before the model loads
    if not src.is_dir():  # and the names predict_scene refuses (out not .tif), also before
        check_scene_paths(src, dst, coarse=labels, **one)
    _check_warp(src, scene_kwargs)
    shape = None  # one scene's (height, width), once its header is read
    if not src.is_dir() and not scene_kwargs.get("keep_unusable"):
        # a scene no model can label (all nodata, constant) is refused before the model loads
        # and Ray starts; a folder's scenes are checked as each runs (skipped, the batch goes on)
        shape = precheck_scene(src, scene_kwargs.get("bands"))
    from sam2elnet.data.label_tags import label_tags
    from sam2elnet.engine.folder_inputs import check_resume_model

    # the model's identity (a file's bytes, or builtin:smoothing by name), before the model
    # loads; a folder records it (model_id.json), and --resume into it with another model or
    # --bands is refused
    model_id = check_resume_model(out, model, resume and src.is_dir(), scene_kwargs.get("bands"))
    labels = shared_coarse(labels, list_scenes(src) if src.is_dir() else [src], layer) or labels
    warn_no_width(labels, scene_kwargs.get("line_width"))  # said once for a shared file
    if labels is not None and not src.is_dir():  # one scene's labels it refuses: before the model
        precheck_coarse(src, labels, **coarse_options(scene_kwargs))
    batch_size = int(scene_kwargs.get("batch_size", option_default(SceneOptions, "batch_size")))
    factory = functools.partial(
        load_scene_predictor,
        model,
        quality=quality,
        device=device,
        precision=precision,
        batch_size=batch_size,
        max_memory=max_memory,
    )
    predictor = factory()
    ov, coarse = int(scene_kwargs.get("overlap", OVERLAP_DEFAULT)), labels is not None
    window = resolve_tile(scene_kwargs.get("tile"), predictor, overlap=ov, coarse=coarse)
    scene_kwargs["tile"] = window.tile  # --tile not given: the largest that fits the budget
    if max_memory is not None:
        _check_window_memory(predictor, src, window, coarse, shape)
    record: dict[str, Any] = {}
    net = getattr(predictor, "predictor", predictor)  # QualityScoringPredictor wraps one
    if isinstance(net, Predictor):  # builtin:smoothing runs no model: no precision
        record = announce_predictor_precision(precision, net, echo)
        scene_kwargs["tags"] = label_tags(model_id, getattr(net, "extra", None))  # every label
    window.say(echo)
    record.update(window.record())  # each manifest line: {"tile": px, "tile_auto": chosen}
    executor = None
    if backend == "ray":
        from sam2elnet.engine.distributed import RayExecutor

        executor = RayExecutor(factory, num_workers=workers, address=address)
    try:
        if src.is_dir():
            return predict_scenes(
                src,
                out,
                predictor,
                resume=resume,
                prob=prob,
                quality=quality,
                coarse=labels,
                executor=executor,
                progress=progress,
                record=record,
                model_id=model_id,
                **scene_kwargs,
            )
        return predict_scene(
            src,
            dst,
            predictor,
            coarse=labels,
            **one,
            executor=executor,
            progress=progress,
            **scene_kwargs,
        )
    finally:
        if executor is not None:
            executor.close()
