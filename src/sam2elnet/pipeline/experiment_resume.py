"""A run into a folder that holds an experiment: which of its recorded settings it continues
with, or why it is refused as another experiment (:func:`settle_identity`). Part of
:mod:`sam2elnet.pipeline.experiment`.

A finished stage (a marker under ``OUT/stages``) makes ``OUT/experiment.json`` binding: options
given otherwise than recorded but meaning the same (an auto option the run decided, another
``--road-buffer`` on data that are not roads) continue the run as recorded and say so; any
other difference is a :class:`~sam2elnet.errors.UserError` naming each option with its saved
value.

``experiment.json`` holds the identity (:meth:`ExperimentConfig.identity`) and ``resolved``, what
the run recorded of its ``--weights`` file (its absolute path and SHA-256,
:func:`~sam2elnet.model.checkpoint_files.weights_record`, as ``elnet cv`` records it): a relative
``--weights`` given from another working folder is compared as the file it named, and the same
bytes at another path (another node) are the same setting
(:func:`~sam2elnet.model.checkpoint_files.weights_files`). Without ``--weights`` it records the
cached official checkpoint the run starts from in the same way (with ``"cached": true``), so other
bytes in the weights cache are another experiment too (:func:`_weights_compared`).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from sam2elnet.engine.road_buffer import buffer_said
from sam2elnet.errors import DataError, UserError
from sam2elnet.option_checks import WeightsFiles
from sam2elnet.pipeline.experiment_autolabels import record_filter_options
from sam2elnet.pipeline.experiment_config import (
    DECIDED_BY_RUN,
    ExperimentConfig,
    setting_changes,
    settings_diff,
    upgrade_identity,
)
from sam2elnet.pipeline.experiment_engine import built_trunk_scale, cached_weights
from sam2elnet.pipeline.experiment_split import Split, road_domain
from sam2elnet.pipeline.experiment_stages import Stages, stage_summary
from sam2elnet.utils.atomic import write_json_atomic

__all__ = ["settle_identity"]


def settle_identity(
    cfg: ExperimentConfig, out: Path
) -> tuple[ExperimentConfig, dict[str, Any], list[str]]:
    """(the options the run goes on with, their identity, lines to say) for a run into ``out``,
    with ``OUT/experiment.json`` (the identity and ``resolved``: the ``--weights`` file's path and
    SHA-256) written when it is new or changed (atomically).

    Where ``out`` holds a finished stage, the recorded identity decides: options that mean the
    same as recorded are taken as recorded (:func:`_resume_settings`), and an older ``annotate``
    marker gets the filter options of the run that made it
    (:func:`~sam2elnet.pipeline.experiment_autolabels.record_filter_options`).

    Raises:
        UserError: the options make another experiment than the one ``out`` holds (the message
            names each option as typed with its saved value).
    """
    from sam2elnet.model.checkpoint_files import weights_record  # torch: lazily

    ident_path = out / "experiment.json"
    ident = cfg.identity()
    finished = any((out / "stages").glob("*.json"))
    notes: list[str] = []
    if ident_path.is_file() and finished:
        old = json.loads(ident_path.read_text(encoding="utf-8"))
        resolved = old.pop("resolved", None)  # None: recorded before it (only the text)
        old = upgrade_identity(old)
        weights = _weights_compared(cfg, old.get("weights"), ident.get("weights"), resolved)
        same, refusal, notes = _resume_settings(out, old, ident, weights)
        if same:  # the same experiment, another way of saying it: the run goes on as recorded
            cfg = cfg.model_copy(update={k: old[k] for k in same})
            ident = cfg.identity()
        if refusal:
            raise UserError(refusal, out)
        record_filter_options(Stages(out, cfg.resume), old)  # before this run's are recorded
    if cfg.weights is None:  # the default: the cached official checkpoint, when there is one
        found = cached_weights(cfg.size)
        resolved_now = {**weights_record(found), "cached": True}
    else:
        resolved_now = weights_record(cfg.weights)
    record = {**ident, "resolved": resolved_now}
    if (
        not ident_path.is_file()
        or not finished
        or record != json.loads(ident_path.read_text("utf-8"))
    ):
        write_json_atomic(ident_path, record)
    return cfg, ident, notes


def _weights_compared(
    cfg: ExperimentConfig, saved: Any, given: Any, resolved: dict[str, Any] | None
) -> WeightsFiles:
    """The run's recorded ``weights`` (``saved``; ``resolved``: what ``experiment.json`` recorded
    of its file) and the re-run's (``given``, in ``cfg``), compared as files
    (:func:`~sam2elnet.model.checkpoint_files.weights_files`). The default (no ``weights``)
    stands for the cached official checkpoint the run found (recorded with ``"cached"``: its
    path and SHA-256, both None when none was cached) and the one found now (or ``"none"``), so
    other bytes in the cache are another setting, as another ``--weights`` file is; a record
    without ``"cached"`` (before 2026-12-05) compares the default as the text."""
    from sam2elnet.model.checkpoint_files import weights_files  # torch: lazily

    rec = resolved or {}
    was_cached = bool(rec.get("cached")) and saved is None
    then = (rec.get("weights_path") or "none") if was_cached else saved
    now = given
    if now is None and (was_cached or saved is not None):
        found = cached_weights(cfg.size)
        now = "none" if found is None else str(found)
    if then == saved and now == given:
        return weights_files(saved, given, resolved)
    return replace(weights_files(then, now, rec), shown=(saved, given))


def _decided(out: Path, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """What the run in ``out`` decided its auto options as, where a re-run gives them explicitly
    (:data:`~sam2elnet.pipeline.experiment_config.DECIDED_BY_RUN`): the modality from the split
    stage's record, the trunk scale from SAM2-ELNet's model file; a key only once its stage is
    done (an unreadable record: not decided)."""
    stage = {"modality": "split", "trunk_scale": "elnet"}
    decided: dict[str, Any] = {}
    for k, name in stage.items():
        if old.get(k) == new.get(k):
            continue
        try:
            summary = stage_summary(out, name)
            decided[k] = (
                summary["modality"] if k == "modality" else built_trunk_scale(summary["model"])
            )
        except (OSError, ValueError, KeyError, TypeError, UserError):
            continue
    return decided


def _not_roads(out: Path) -> str | None:
    """Why the data of the run in ``out`` are not roads (its split stage's record, through
    :func:`~sam2elnet.pipeline.experiment_split.road_domain`, as the run decides it), or None:
    road data, or the split record cannot be read (not known)."""
    try:
        summary = stage_summary(out, "split")
        guess = road_domain(Split(**summary))
    except (OSError, ValueError, KeyError, TypeError, UserError, DataError):
        return None
    return None if guess.roads else str(guess.reason)


def _buffer_said(d: dict[str, Any], flag: bool = True) -> str:
    """An identity's road buffer: ``--road-buffer 5`` / ``--road-buffer-m 2`` (``flag``), or
    ``5 px`` / ``2 m``."""
    m = d.get("road_buffer_m")
    if flag:
        return f"--road-buffer {d['road_buffer']:g}" if m is None else f"--road-buffer-m {m:g}"
    return buffer_said(d["road_buffer"], m)


def _resume_settings(
    out: Path, old: dict[str, Any], new: dict[str, Any], weights: WeightsFiles | None = None
) -> tuple[list[str], str | None, list[str]]:
    """(keys the run continues with as recorded, the refusal when options make another
    experiment, lines to say) for a re-run into ``out``:
    :func:`~sam2elnet.pipeline.experiment_config.settings_diff`, and another ``--road-buffer`` on
    data that are not roads (it changes no number there: the run keeps its recorded buffer); on
    road data, or when that is not known, it stays another setting. The refusal names each
    option as typed with its saved value
    (:func:`~sam2elnet.pipeline.experiment_config.setting_changes`); ``weights``: ``--weights``
    compared with the file the run recorded (None: the paths as given)."""
    decided = _decided(out, old, new)
    same, diff = settings_diff(old, new, decided, weights)
    notes: list[str] = []
    kept = [k for k in same if old[k] != DECIDED_BY_RUN[k][0]]  # recorded explicitly
    if kept:
        given = ", ".join(f"{DECIDED_BY_RUN[k][1]} {old[k]}" for k in kept)
        notes.append(f"continuing with {given}, as this experiment was started (not given now)")
    buffer = [k for k in ("road_buffer", "road_buffer_m") if k in diff]
    why = _not_roads(out) if buffer else None
    if why is not None:
        for k in buffer:
            diff.remove(k)
            same.append(k)
        notes.append(
            f"{_buffer_said(new)} changes no number here: the data are not "
            f"roads ({why}); the experiment keeps its {_buffer_said(old, flag=False)}"
        )
    if not diff:
        return same, None, notes
    why = (
        "; the downstream U-Nets keep no predictions to score again with another --road-buffer "
        "(on road data it means training them all again)"
        if buffer
        else ""
    )
    refusal = (
        "this folder holds an experiment with other settings: "
        f"{', '.join(setting_changes(diff, old, new, decided, weights))}{why}; give the saved "
        "values to continue it, or choose a new --out or delete the folder"
    )
    return same, refusal, notes
