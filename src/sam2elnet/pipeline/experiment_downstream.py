"""The protocol's downstream settings and their trainings: which labels each plain U-Net learns
from (table 1's settings, table 2's label sets) and one cached training per setting, keyed by
the state of the label files it reads. Part of :mod:`sam2elnet.pipeline.experiment`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sam2elnet.data.load_cache import LoadCache
from sam2elnet.engine.downstream_pool import (
    DownstreamPool,
    at_most_threads,
    makespan,
    pool_workers,
)
from sam2elnet.option_values import CURVE_POINTS_MAX
from sam2elnet.pipeline.experiment_config import (
    DOWNSTREAM_EVAL_VERSION,
    NO_ENHANCEMENT_DOWNSTREAM,
    ExperimentConfig,
)
from sam2elnet.pipeline.experiment_split import Split
from sam2elnet.pipeline.experiment_stages import (
    Stages,
    file_stat,
    json_safe,
    out_relative,
    sha,
)
from sam2elnet.utils import threads as thread_policy  # per call: tests replace thread_count
from sam2elnet.utils.advice import plural
from sam2elnet.utils.atomic import write_json_atomic

Runs = dict[str, tuple[list[str], dict[str, str], int]]
"""{setting: (training ids, {id: label path}, hand labels it needs)}."""


def downstream_runs(
    split: Split,
    kept_ids: list[str],
    autolabels: dict[str, str],
    label_sets: dict[str, dict[str, dict[str, str]]],
) -> Runs:
    """Table 1's settings (a)-(e) and one ``enh_<source>_<method>`` setting per table-2 label set.

    Labelling cost: (a) the whole pool; (b)-(e) the labelled fraction (SAM2-ELNet learnt from it);
    a table-2 set one coarse hand label per pool image, plus the fraction for SAM2-ELNet's sets.
    """
    lab, unl = split.labelled, split.unlabelled
    merged = {**split.masks, **autolabels}
    runs: Runs = {
        "full": (split.pool, split.masks, len(split.pool)),
        "fraction": (lab, split.masks, len(lab)),
        "auto_filtered": (kept_ids, autolabels, len(lab)),
        "fraction_auto_filtered": (sorted(lab + kept_ids), merged, len(lab)),
        "fraction_auto_all": (sorted(lab + unl), merged, len(lab)),
    }
    for src, sets in label_sets.items():
        for method, labels in sets.items():
            hand = len(split.pool) + (len(lab) if method == "elnet" else 0)
            runs[f"enh_{src}_{method}"] = (split.pool, labels, hand)
    return runs


def _stored(stored: Path, curved: Sequence[Path]) -> Path | None:
    """The stored result of a training: its own (``stored``), else one of the same training
    with a learning curve (``curved``; only for a run that asks none); None when neither is."""
    return next((p for p in (stored, *curved) if p.is_file()), None)


def _none_ended() -> int:
    return 0


def downstream_lanes(
    stages: Stages, trainings: int, device: str, ended: Callable[[], int] = _none_ended
) -> int:
    """How many of ``trainings`` downstream trainings run side by side on ``device``
    (:func:`~sam2elnet.engine.downstream_pool.pool_workers`), set for the ETA of the
    ``downstream`` stages (:attr:`Stages.side_by_side`: that many at once on the thread
    policy's cores, :func:`~sam2elnet.engine.downstream_pool.makespan`): the planned count
    before they start, the count still to train once it is known. ``ended``: how many
    trainings have ended but are not recorded yet (no work left: three that end together are
    recorded one after another, and the first line's ETA counted the other two as to come)."""
    workers = pool_workers(trainings, device)
    cores = thread_policy.thread_count() if workers > 1 else 1

    def left(n: int) -> float:
        return makespan(max(0, n - ended()), workers, cores)

    stages.side_by_side["downstream"] = left
    return workers


def train_downstream(
    cfg: ExperimentConfig,
    stages: Stages,
    out: Path,
    split: Split,
    runs: Runs,
    dcfg: Any,
    norm: Any,
    roads: bool,
    road_buffers: Sequence[float] | None = None,
    meanwhile: Callable[[], Runs] | None = None,
) -> dict[str, dict[str, Any]]:
    """Train and score one downstream U-Net per setting of ``runs`` (``dcfg``: its
    :class:`~sam2elnet.engine.downstream.DownstreamConfig`) on the test split; {setting: result}.

    Each training is a ``downstream_<setting>`` stage keyed by a fingerprint of its label files
    (path, size, mtime), the config, normalisation, test images and evaluation version; a result
    is also kept under ``OUT/downstream/by_fingerprint/`` so the same labels trained under another
    setting name are not trained again (the stage is ``reused``). Table 2's settings are skipped (with the reason) when
    ``cfg.enhancement_downstream`` is off, a setting without training images too.

    The trainings still to do run side by side on a CPU, one torch thread each, as many at once
    as :func:`~sam2elnet.engine.downstream_pool.pool_workers` allows (the numbers are those of
    one after another: :mod:`~sam2elnet.engine.downstream_pool`); their stages are then
    recorded in order, each with its own training time.

    ``meanwhile``: other stages, which no training of ``runs`` needs, run in this process while
    the trainings train, once a CPU is free of them and on the torch threads free
    (:meth:`~sam2elnet.engine.downstream_pool.DownstreamPool.wait_for_core`: five trainings on
    two cores run three at a time, and these stages at once beside them on one thread; four
    on two cores, on one thread beside the last); it returns more settings (table 2's),
    handled as ``runs`` (skipped, reused or trained) and returned after them. In turn (one
    worker, a GPU) it runs before any training, as without it.
    """
    cache = LoadCache()  # the settings trained in this process decode each image once
    test_pairs = split.pairs(split.test)
    down: dict[str, dict[str, Any]] = {}
    # learning-curve points do not change the trained model; without them the key is the one of
    # runs made before curves existed, so those trainings are reused (--curve-points 0)
    dcfg_key = {k: v for k, v in dcfg.to_dict().items() if k != "curve_points" or v > 1}
    # float32 was spelled "fp32" before the one precision vocabulary; the key keeps that spelling
    # so float32 models trained before are reused, not trained again
    if dcfg_key.get("precision") == "32":
        dcfg_key["precision"] = "fp32"
    # a run asking no curve also takes a result trained with one (the same model and final
    # scores: the curve scoring is inference only, tests/engine/test_downstream.py), its curve
    # left out: --curve-points 4 then 0 does not train again (4 after 0 does: no curve to give)
    curve_keys = (
        [dcfg_key | {"curve_points": n} for n in range(2, CURVE_POINTS_MAX + 1)]
        if dcfg.curve_points <= 1
        else []
    )
    by_fp = out / "downstream" / "by_fingerprint"
    # setting -> (key, stored result, pairs, stored results of the same training with a curve)
    jobs: dict[str, tuple[str, Path, list, list[Path]]] = {}
    # each stage's marker, read once: passed on to stages.run below
    finished: dict[str, dict[str, Any] | None] = {}
    pending: dict[str, str] = {}  # fingerprint -> the first setting that trains it

    def rel(p: str | Path) -> str:
        return out_relative(str(p), out)

    def plan(settings: Runs) -> list[str]:
        """Fingerprint ``settings`` (into ``jobs``, ``finished``, ``down`` for the skipped ones);
        the settings among them that train (the first of each fingerprint still to do)."""
        new: list[str] = []
        for name, (ids, labels, _cost) in settings.items():
            if name.startswith("enh_") and not cfg.enhancement_downstream:
                down[name] = {"skipped": NO_ENHANCEMENT_DOWNSTREAM}  # table 2: label scores only
                continue
            if not ids:
                down[name] = {"skipped": "no training labels (the filter kept none)"}
                stages.drop("downstream")  # planned, never runs: not work the ETA waits for
                continue
            pairs = split.pairs(ids, labels)
            # labels by path *and* file state: a re-run earlier stage rewrites them under the
            # same names; paths inside OUT relative to it (a moved or copied run keeps its keys)
            inputs = {
                "pairs": [(rel(a), rel(b), *file_stat(b)) for a, b in pairs],
                "norm": norm.model_dump(mode="json"),
                "test": [rel(a) for a, _ in test_pairs],
                "eval": DOWNSTREAM_EVAL_VERSION,
                **({"roads": True} if roads else {}),
                **({"road_buffer_m": cfg.road_buffer_m} if roads and cfg.road_buffer_m else {}),
            }
            fp = sha(inputs | {"cfg": dcfg_key})
            curved = [by_fp / f"{sha(inputs | {'cfg': k})}.json" for k in curve_keys]
            jobs[name] = (fp, by_fp / f"{fp}.json", pairs, curved)
            finished[name] = stages.finished(f"downstream_{name}", fp, say=True)
            # not done before, not stored under another setting name, not trained under one
            if finished[name] is None and _stored(jobs[name][1], curved) is None:
                if fp not in pending:  # the same labels again: reused from the first's result
                    pending[fp] = name
                    new.append(name)
        return new

    # trainings still to do: side by side on a CPU, one thread each (engine.downstream_pool:
    # the same numbers either way)
    from sam2elnet.engine.downstream import train_and_evaluate

    first = plan(runs)
    started: dict[str, Any] = {}

    def ended() -> int:
        return sum(
            1 for k, run in started.items() if run.done() and f"downstream_{k}" not in stages.status
        )

    workers = downstream_lanes(stages, len(first), dcfg.device, ended)
    # bars of trainings side by side would overwrite each other: each says one line at its end
    run_cfg = dcfg if workers == 1 else dcfg.model_copy(update={"progress": False})
    buffers = cfg.road_buffer if road_buffers is None else road_buffers
    if workers > 1:
        cores = thread_policy.thread_count()
        stages.say(
            f"downstream: {plural(len(first), 'training')}, {workers} at a time on "
            f"{plural(cores, 'core')} (one CPU thread each: the same numbers as one after "
            "another; a training's time below is its CPU time)"
        )
    settings = dict(runs)
    with DownstreamPool(workers, dcfg.device) as pool:

        def submit(names: list[str]) -> None:
            for n in names:
                started[n] = pool.submit(
                    train_and_evaluate,
                    train_pairs=jobs[n][2],
                    test_pairs=test_pairs,
                    cfg=run_cfg,
                    norm_cfg=norm,
                    cache=cache if workers == 1 else None,
                    roads=roads,
                    road_buffer=buffers,
                )

        submit(first)
        took: dict[str, float] = {}

        def record(name: str) -> None:
            """Stage ``downstream_<name>``: the training's result (waited for), or reused."""
            fp, cache_file, _pairs, curved = jobs[name]

            def _train_one() -> dict:
                res, took[name] = started[name].result()
                d = json_safe(res.to_dict())
                write_json_atomic(cache_file, d)
                return d

            def _trained() -> dict | None:
                # the same labels trained under another setting name, or with a learning curve
                # this run does not ask for: taken at once (status reused, no ETA timing sample)
                found = _stored(cache_file, curved)
                if found is None:
                    return None
                d = json.loads(found.read_text(encoding="utf-8"))
                if found != cache_file:
                    d["curve"] = []  # what a run without a curve gives
                return d

            down[name] = stages.run(
                f"downstream_{name}",
                _train_one,
                key=fp,
                reuse=_trained,
                # side by side: the training's CPU time; in turn the stage's own wall time
                took=(lambda: took[name]) if workers > 1 else None,
                finished=finished[name],
            )

        if meanwhile is not None:
            free = pool.wait_for_core()
            # the trainings finished by now, in order, recorded first: their stage lines and
            # the ETA come before the other stages', as the work did
            for name in settings:
                if name not in down and (name in started and not started[name].done()):
                    break
                if name not in down:
                    record(name)
            with at_most_threads(free) if pool.cpu else contextlib.nullcontext():
                more = meanwhile()
            settings.update(more)
            submit(plan(more))
        for name in settings:
            if name not in down:  # not skipped, not recorded above
                record(name)
    return {n: down[n] for n in settings}
