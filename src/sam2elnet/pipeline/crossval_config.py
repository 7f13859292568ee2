"""The options of ``elnet cv``: :class:`CVConfig` (defaults and ranges declared once).

Part of :mod:`sam2elnet.pipeline.crossval`; a module of its own so the CLI can take its defaults
from here without importing the cross-validation run (``elnet --help`` stays fast).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sam2elnet.config import TRAIN_QUALITY_FIELDS, TRAIN_RUNTIME_FIELDS, TrainConfig
from sam2elnet.errors import UserError
from sam2elnet.option_checks import check_options, option_change, same_setting
from sam2elnet.option_values import (
    Precision,
    check_device,
    norm_precision_value,
    road_buffer_field,
    road_buffer_m_field,
    settle_road_buffer,
)

__all__ = ["CV_PARTS", "RESCORE_ONLY", "CVConfig", "changed_options"]

CV_PARTS = (
    ("", "its tables (cv.json, cv.md, cv_config.json)"),
    ("folds", "its folds (image subsets, models, predictions)"),
)
"""What ``elnet cv`` writes in ``OUT`` (``""``: ``OUT`` itself), with words for messages
(:func:`~sam2elnet.engine.folder_inputs.check_run_out`)."""

# TrainConfig fields a CV run sets itself (per fold) and so may not be given as options
_OWN_FIELDS = (
    "data", "out", "resume", "fraction", "domain", "progress", "road_buffer", "road_buffer_m",
)  # fmt: skip
RESCORE_ONLY = ("road_buffer", "road_buffer_m")
"""Options that change how the stored test predictions are scored, not the networks: a re-run
into the same ``OUT`` with another value scores the finished folds again (nothing is trained or
predicted again) instead of refusing."""
# TrainConfig fields that do not change a fold's result (left out of the run's identity): the
# runtime options of elnet train --resume, config.TRAIN_RUNTIME_FIELDS; the quality evaluator's
# (config.TRAIN_QUALITY_FIELDS) stay in, as cv reports its Spearman


class CVConfig(BaseModel):
    """Options of one cross-validation run.

    The one declaration of every option's default and range: ``elnet cv`` takes its defaults from
    here and validates through it (:func:`sam2elnet.option_checks.check_options`), so an out-of-range
    value is one ``error:`` line before any work starts. Made directly, a bad value raises
    ``pydantic.ValidationError``.

    Attributes:
        data: labelled dataset folder (any layout ``elnet train`` reads; its training split).
        out: output folder.
        mode: ``kfold`` or ``cross-domain``.
        folds: k of k-fold (2-20; ignored by ``cross-domain``, which has 2 directions).
        seed: seed of the fold assignment (and of every training run unless ``train`` sets one).
        in_domain_fraction: cross-domain only: share of the training group tested in-domain
            (0.05-0.5).
        domain: ``auto`` / ``roads`` / ``other`` (see :mod:`sam2elnet.data.domain`).
        train: further :class:`~sam2elnet.config.TrainConfig` options (epochs, size, image_size,
            topology_loss, aug_*...), validated by :meth:`validate` before any work.
        max_folds: run only the first N folds (smoke runs; the summary says so).
        only_folds: run only the folds named (``fold-3`` or ``3``; cross-domain ``A-to-B`` /
            ``B-to-A``), e.g. one fold per machine or GPU, each into its own ``OUT``; copy their
            ``folds/<name>`` folders into one ``OUT`` and run the same command without it to
            summarise them all (finished folds are reused, see
            :mod:`sam2elnet.pipeline.crossval_reuse`). Not with ``max_folds``; names are
            checked against the plan (:func:`~sam2elnet.pipeline.crossval_plan.select_folds`).
        road_buffer: buffer tolerance of the road measures, px (road data): of the test scores
            and of each fold's validation measures (``metrics.csv``). Not fixed per ``OUT``
            (:data:`RESCORE_ONLY`): a re-run with another value scores the finished folds'
            stored test predictions again; their validation rows keep the buffer they were
            logged with.
        road_buffer_m: the same in ground metres instead (None: ``road_buffer`` px), each
            image's px from its own ground pixel size
            (:func:`sam2elnet.engine.road_buffer.road_buffers_px`); also :data:`RESCORE_ONLY`.
            One of the two (:func:`~sam2elnet.option_values.road_buffer_units`): ``road_buffer``
            None is :data:`~sam2elnet.option_values.ROAD_BUFFER_PX`, or None with
            ``road_buffer_m``; both given is a ValueError.
        batch_size / device / precision: of the annotation of the test images.
        report: write ``report.html`` for the run and for every fold
            (:mod:`sam2elnet.pipeline.report_cv`).
    """

    model_config = ConfigDict(extra="forbid")

    data: Path
    out: Path
    mode: Literal["kfold", "cross-domain"] = "kfold"
    folds: int = Field(5, ge=2, le=20)
    seed: int = 0
    in_domain_fraction: float = Field(0.25, ge=0.05, le=0.5)
    domain: Literal["auto", "roads", "other"] = "auto"
    train: dict[str, Any] = Field(default_factory=dict)
    max_folds: int | None = Field(None, ge=1)
    only_folds: list[str] | None = None
    road_buffer: float | None = road_buffer_field()
    road_buffer_m: float | None = road_buffer_m_field()
    progress: bool = True
    batch_size: int = Field(8, ge=1, le=1024)
    device: str = "cpu"
    precision: Precision = "auto"
    report: bool = False

    _one_road_buffer = model_validator(mode="after")(settle_road_buffer)  # one unit
    _dev = field_validator("device")(classmethod(lambda cls, v: check_device(v)))
    _prec = field_validator("precision", mode="before")(
        classmethod(lambda cls, v: norm_precision_value(v))
    )

    def validate(self) -> Any:  # type: ignore[override]
        """Check every option again before any work; return a template TrainConfig.

        The options are checked when the config is made; this checks them once more (for
        callers that change fields afterwards) and validates the ``train`` options.

        Raises:
            UserError: an option out of range, naming the flag.
        """
        check_options(type(self), **self.model_dump())
        if self.max_folds and self.only_folds:
            raise UserError("give --fold or --max-folds, not both")
        bad = sorted(set(self.train) & set(_OWN_FIELDS))
        if bad:
            raise UserError(f"cross-validation sets {', '.join(bad)} itself; leave it out")
        return check_options(
            TrainConfig,
            {"num_workers": "--workers"},
            **{"seed": self.seed, **self.train, "data": self.data, "out": self.out / "folds"},
        )

    def identity(self) -> dict[str, Any]:
        """Everything that fixes the results (runtime options left out)."""
        d = self.model_dump()
        runtime = ("out", "progress", "max_folds", "only_folds", "batch_size", "device")
        for k in (*runtime, "precision", "report"):
            d.pop(k)
        d["data"] = str(Path(self.data).resolve())
        d["train"] = {k: v for k, v in sorted(self.train.items()) if k not in TRAIN_RUNTIME_FIELDS}
        return json.loads(json.dumps(d, default=str))


def _train_settings(cfg: CVConfig, train: dict[str, Any], seed: Any) -> dict[str, Any] | None:
    """What the folds' training runs with for the ``train`` options given with ``seed``: every
    TrainConfig field that changes a fold's result, defaults filled in (a default given
    explicitly and one left out are one setting); None when they no longer validate (a record
    of an older version)."""
    from sam2elnet.pipeline.crossval_reuse import fold_settings

    values = {"seed": seed, **train, "data": cfg.data, "out": Path(cfg.out) / "folds"}
    try:
        tcfg = check_options(TrainConfig, **values)
    except UserError:
        return None
    d = tcfg.model_dump(mode="json")
    both = {**fold_settings(tcfg), **{k: d[k] for k in TRAIN_QUALITY_FIELDS}}
    return json.loads(json.dumps(both, default=str))


def same_domain(recorded: dict[str, Any], given: str) -> bool:
    """Whether ``--domain given`` is the domain of the run recorded in ``OUT/cv_config.json``:
    the same value, or ``auto`` on one side and on the other the domain the run decided
    (``resolved.domain``): ``--domain roads`` into a run whose ``auto`` detected roads, or no
    ``--domain`` into a run started with ``--domain roads`` (it goes on with the recorded value,
    :func:`keep_recorded_domain`)."""
    old = recorded.get("domain")
    resolved = (recorded.get("resolved") or {}).get("domain")
    return old == given or ("auto" in (old, given) and resolved in (old, given))


def keep_recorded_domain(cfg: CVConfig, recorded: dict[str, Any]) -> tuple[CVConfig, str | None]:
    """``cfg`` with the recorded ``--domain`` when it is the same domain written another way
    (:func:`same_domain`), so the run goes on as it was started, and a line to say when it was
    given then and not now (None otherwise)."""
    old = recorded.get("domain")
    if old in (None, cfg.domain) or not same_domain(recorded, cfg.domain):
        return cfg, None
    note = None
    if cfg.domain == "auto":
        note = f"continuing with --domain {old}, as this run was started (not given now)"
    return cfg.model_copy(update={"domain": old}), note


def changed_options(cfg: CVConfig, recorded: dict[str, Any]) -> list[str]:
    """The options of ``cfg`` that would change the results of the run recorded in
    ``OUT/cv_config.json`` (``recorded``, :meth:`CVConfig.identity` plus ``resolved``), each as
    ``--epochs 5 (saved: 10)``; empty when the run may go on.

    Only what changes a fold's result counts. Left out: the runtime options (not in the
    identity: ``--no-progress``, ``--report``, ``--max-folds``, ``--device``, ``--precision``,
    the annotation's batch size, the thread count, ``--verbose``), :data:`RESCORE_ONLY` (its
    folds are scored again), and the option the mode ignores (``--folds`` of a cross-domain run,
    ``--in-domain-fraction`` of a k-fold one), and a ``--domain`` that is the run's domain
    written another way (:func:`same_domain`). The training options are compared as the folds'
    training runs with them (:func:`_train_settings`: ``--epochs 10`` given is the default left
    out), file and folder paths however written (:func:`~sam2elnet.option_checks.same_setting`, the
    rule of ``elnet train --resume``).
    """
    old = {k: v for k, v in recorded.items() if k != "resolved"}
    new = cfg.identity()
    skip = {*RESCORE_ONLY, "train"}
    if old.get("mode") == new["mode"]:
        skip.add("folds" if new["mode"] == "cross-domain" else "in_domain_fraction")
    if same_domain(recorded, new["domain"]):
        skip.add("domain")
    diff = [
        option_change(k, new.get(k), old.get(k))
        for k in sorted(set(old) | set(new))
        if k not in skip and not same_setting(k, old.get(k), new.get(k))
    ]
    old_train, new_train = old.get("train") or {}, new["train"]
    was = _train_settings(cfg, old_train, old.get("seed"))
    now = _train_settings(cfg, new_train, new.get("seed"))
    if was is None or now is None:  # an older record: compare the options as given
        was, now = old_train, new_train
    # --weights as the run recorded its file (resolved: weights_path, weights_sha256): at
    # another path (the run continued on another node) the same bytes
    from sam2elnet.model.checkpoint_files import weights_files

    weights = weights_files(was.get("weights"), now.get("weights"), recorded.get("resolved"))
    diff += [
        weights.change() if k == "weights" else option_change(k, now.get(k), was.get(k))
        for k in sorted(set(was) | set(now))
        if not same_setting(k, was.get(k), now.get(k), weights)
        and not (k == "seed" and "seed" not in old_train and "seed" not in new_train)
    ]
    return diff


EPOCHS_BEFORE_AUTO = 10
"""What ``--epochs`` left out meant before it became auto (2026-12-04): a ``cv_config.json``
without ``resolved.epochs_auto`` and without ``train.epochs`` was a run of 10 epochs."""


def keep_recorded_epochs(
    cfg: CVConfig, recorded: dict[str, Any]
) -> tuple[CVConfig, dict, str | None]:
    """A run recorded before ``--epochs`` was auto that left it out trained 10 epochs: its record
    with them (``recorded``'s ``train.epochs``), ``cfg`` going on with them when ``--epochs`` is
    not given now, and a line to say so (None when nothing applies)."""
    if (recorded.get("resolved") or {}).get("epochs_auto") or "epochs" in (
        recorded.get("train") or {}
    ):
        return cfg, recorded, None
    recorded = {
        **recorded,
        "train": {**(recorded.get("train") or {}), "epochs": EPOCHS_BEFORE_AUTO},
    }
    if "epochs" in cfg.train:
        return cfg, recorded, None
    cfg = cfg.model_copy(update={"train": {**cfg.train, "epochs": EPOCHS_BEFORE_AUTO}})
    note = (
        f"continuing with --epochs {EPOCHS_BEFORE_AUTO}, the default when this run was started "
        "(--epochs is auto since 2026-12-04)"
    )
    return cfg, recorded, note


def check_rerun(cfg: CVConfig, recorded: dict[str, Any]) -> tuple[CVConfig, str | None]:
    """A run of ``cfg`` into a folder holding the run recorded in ``OUT/cv_config.json``
    (``recorded``): refused when options would change its folds' results
    (:func:`changed_options`); else ``cfg`` as the run goes on (:func:`keep_recorded_epochs`,
    :func:`keep_recorded_domain`) and a line to say, or None.

    Raises:
        UserError: one line naming each changed option with its saved value.
    """
    cfg, recorded, epochs_note = keep_recorded_epochs(cfg, recorded)
    diff = changed_options(cfg, recorded)
    if diff:
        raise UserError(
            f"folder holds a cross-validation run with other settings: {', '.join(diff)}; "
            "they would change its folds' results: give the saved values to continue it, or "
            "choose a new --out",
            cfg.out,
        )
    cfg, note = keep_recorded_domain(cfg, recorded)
    notes = [n for n in (epochs_note, note) if n]
    return cfg, "; ".join(notes) if notes else None
