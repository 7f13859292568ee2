"""The protocol's options and constants: :class:`ExperimentConfig`, table settings, the bar.

Part of :mod:`sam2elnet.pipeline.experiment` (the paper's protocol, ``elnet experiment``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sam2elnet.option_checks import WeightsFiles, check_options, same_setting
from sam2elnet.option_values import (
    CURVE_POINTS_MAX,
    ROAD_BUFFER_PX,
    CoarseProfile,
    ModelSize,
    Precision,
    TrunkScale,
    check_device,
    check_quality_folds,
    norm_precision_value,
    road_buffer_field,
    road_buffer_m_field,
    road_buffer_units,
    settle_road_buffer,
)
from sam2elnet.options import check_one_filter

RESULTS_VERSION = 1

RANDOM_INIT_EXPERIMENT_API = 'weights="none"'
"""How the Python API asks :class:`ExperimentConfig` for a randomly initialised encoder
(``weights=None`` is the cached checkpoint when there is one); the command line says
``--weights none`` (:data:`~sam2elnet.model.checkpoint_files.RANDOM_INIT_CLI`)."""

TABLE1_SETTINGS: dict[str, str] = {
    "full": "(a) 100 % original labels",
    "fraction": "(b) labelled fraction only",
    "auto_filtered": "(c) filtered auto-labels only",
    "fraction_auto_filtered": "(d) fraction + filtered auto-labels",
    "fraction_auto_all": "(e) fraction + all auto-labels (unfiltered)",
    "elnet_direct": "(f) SAM2-ELNet itself, annotating the test split",
}
DOWNSTREAM_EVAL_VERSION = 2
"""Part of every downstream fingerprint: results cached by an older evaluation (one without the
per-image counts the confidence intervals need) are trained and scored again."""
CONVERGED_GAIN = 0.01
"""A downstream model counts as converged when its test IoU changed by at most this (1 IoU point)
between the last two learning-curve points."""
UNFITTED_MIN_QUALITY = 0.5
"""The quality filter's default minimum predicted IoU when SAM2-ELNet's quality evaluator was not
fitted (neither --min-quality nor --target-precision given; fitted: its default target precision)."""
TARGET_RATIO = 0.97
"""The protocol's bar: a label-efficient setting "reaches" all hand labels at >= 97 % of its IoU."""
TABLE2_METHODS: dict[str, str] = {
    "coarse": "no change (labels as they are)",
    "morphological": "morphological clean-up",
    "guided": "image-guided filter",
    "grabcut": "GrabCut",
    "elnet": "SAM2-ELNet enhancement",
}
NO_ENHANCEMENT_DOWNSTREAM = (
    "table 2 scores the label sets themselves (label IoU against the true labels); downstream "
    "models were not trained on them (--no-enhancement-downstream, as elnet demo runs; elnet "
    "experiment --enhancement-downstream into the same --out trains just those)"
)
"""The ``skipped`` reason of table 2's rows and the one-line note under the table (results.md,
report.html) when ``enhancement_downstream`` is off."""


OWN_IS_TRUTH_NOTE = (
    "The dataset ships no separate coarse labels: the 'own labels' variant enhances the "
    "dataset's labels as they are, and only downstream test scores can be reported for it "
    "(there is no truer label to compare them with)."
)
"""The split's note (in ``split.json``) when the dataset's own labels are its truth; results
keep it only when table 2 has rows for the own labels."""
OWN_NOT_SCORED = (
    "Table 2 has no rows for the dataset's own labels: the dataset ships no separate coarse "
    "labels, so its own labels are the true labels and nothing truer can score them, and no "
    "downstream model is trained on them (--no-enhancement-downstream); they were not refined or "
    "enhanced (elnet experiment --enhancement-downstream into the same --out adds these rows, "
    "scored by downstream models)"
)
"""Why table 2 leaves out the "own" source (``results.json`` ``table2_absent``, results.md,
report.html): the dataset's labels are its truth and ``enhancement_downstream`` is off."""


def table2_downstream(results: Mapping[str, Any]) -> bool:
    """Whether a ``results.json`` dict's table 2 has downstream test scores.

    False: the experiment ran with ``enhancement_downstream=False`` and table 2 holds label
    scores only (:data:`NO_ENHANCEMENT_DOWNSTREAM`); results made before the option: True.
    """
    return bool((results.get("settings") or {}).get("enhancement_downstream", True))


REFINERS_DEFAULT = ("morphological", "guided", "grabcut")
BOOTSTRAP_SEED = 0
"""Fixed seed of every bootstrap interval: the same image resamples for every row of a table."""
RUN_PARTS = (
    ("", "its records and results (experiment.json, results.*, report.html)"),
    ("stages", "its stage records"),
    ("truth", "the decoded masks"),
    ("labelled", "the labelled subset"),
    ("unlabelled", "the unlabelled subset"),
    ("pool", "the training pool"),
    ("elnet", "the SAM2-ELNet model"),
    ("autolabels", "its auto-labels"),
    ("test", "the test split"),
    ("testlabels", "SAM2-ELNet's test labels"),
    ("labels", "the coarse, refined and enhanced labels"),
    ("downstream", "the downstream scores"),
)
"""What ``elnet experiment`` writes in ``OUT`` (``""``: ``OUT`` itself), with words for messages;
a stage re-run from scratch clears its sub-folders, so none may hold an input
(:func:`~sam2elnet.engine.folder_inputs.check_run_out`)."""


def upgrade_identity(d: dict[str, Any]) -> dict[str, Any]:
    """Bring the options of a run made by an earlier version up to today's names (in place).

    Runs made before ``--split-seed`` drew their test hold-out with ``seed + 1000``; that is
    their ``split_seed``; runs made before ``--quality-folds`` used no cross-fitting (0, None);
    runs made before ``--positive-values`` read their masks with the default rule (None); runs
    made before ``--trunk-scale`` had no such option (None, auto; the scale their network was
    built with is read from its model file into ``results.json``); runs
    made before the precision vocabulary was one spelled float32 ``fp32`` (read as ``32``, so an
    old float32 experiment continues with ``--precision 32``); runs made before
    ``--no-enhancement-downstream`` trained table 2's downstream models (True); runs made before
    ``--road-buffer`` measured roads with the default buffer (:data:`~sam2elnet.option_values.ROAD_BUFFER_PX`),
    runs made before ``--road-buffer-m`` in pixels (None); runs in metres made before the px
    default became None recorded ``road_buffer: 3.0`` beside ``road_buffer_m``: that px is
    dropped (None; :func:`~sam2elnet.option_values.road_buffer_units`, ``saved``), so they
    continue as the runs in metres they were (another px beside metres was refused by the
    training stage: such a run never trained, and it is left as recorded);
    runs made before ``--modality`` decided it in their split stage (``auto``).
    Used on ``experiment.json`` (resume check) and on ``results.json`` settings (``elnet
    experiment-summary``).

    Args:
        d: an identity or settings dict as stored in the run folder.

    Returns:
        ``d``, with the missing keys filled in.
    """
    if "split_seed" not in d and isinstance(d.get("seed"), int):
        d["split_seed"] = d["seed"] + 1000
    # runs made before --quality-folds fitted the evaluator without cross-fitting (the default)
    d.setdefault("quality_folds", 0)
    d.setdefault("quality_fold_epochs", None)
    d.setdefault("positive_values", None)
    d.setdefault("trunk_scale", None)  # made before --trunk-scale: auto (their scale: results)
    d.setdefault("road_buffer", ROAD_BUFFER_PX)  # made before --road-buffer: the default
    d.setdefault("road_buffer_m", None)  # made before --road-buffer-m: in px
    with contextlib.suppress(ValueError):  # both given: a run that never trained (see above)
        d["road_buffer"], d["road_buffer_m"] = road_buffer_units(
            d["road_buffer"], d["road_buffer_m"], saved=True
        )
    d.setdefault("modality", "auto")  # made before --modality: decided by the split (auto)
    if "downstream_epochs" in d:  # results.json settings (the identity holds no downstream options)
        d.setdefault("enhancement_downstream", True)
    if "precision" in d:
        d["precision"] = norm_precision_value(d["precision"])
    return d


DECIDED_BY_RUN: dict[str, tuple[Any, str]] = {
    "modality": ("auto", "--modality"),
    "trunk_scale": (None, "--trunk-scale"),
}
"""Identity options whose auto value (first) the run decides once: the modality in the split
stage, the trunk scale in SAM2-ELNet's training; with the flag, for messages. A resume that
gives explicitly what its auto decided is the same experiment (:func:`settings_diff`)."""


def settings_diff(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    decided: Mapping[str, Any],
    weights: WeightsFiles | None = None,
) -> tuple[list[str], list[str]]:
    """Compare a run's recorded identity with a re-run's, counting what auto decided.

    The downstream and quality-filter options (:attr:`ExperimentConfig.DOWNSTREAM`,
    :attr:`ExperimentConfig.FILTER`) may change and are left out; a ``--weights`` file written
    another way (relative / absolute), or the same bytes at another path, is the same setting
    (:func:`~sam2elnet.option_checks.same_setting`, the rule of ``elnet train --resume`` and
    ``elnet cv``; ``weights``: the comparison with the file the run recorded,
    :func:`~sam2elnet.model.checkpoint_files.weights_files`). A key of :data:`DECIDED_BY_RUN`
    recorded as auto and given explicitly by the re-run is the
    same setting when ``decided`` holds that key with the given value (``--modality sar`` into a
    run whose ``--modality auto`` decided sar); when the run has not decided it yet (no key in
    ``decided``) or decided otherwise, it is another setting, as any other changed option. One
    recorded explicitly and not given by the re-run (auto) is the same setting too: the run
    continues with its recorded value (``--modality sar`` given to the first run, none to the
    re-run), as ``elnet train --resume`` keeps the options not given.

    Args:
        old: the recorded identity (``experiment.json``, through :func:`upgrade_identity`).
        new: the re-run's identity (:meth:`ExperimentConfig.identity`).
        decided: what the run decided its auto options as (``{"modality": "sar",
            "trunk_scale": 2}``; a key only once its stage is done).
        weights: ``--weights`` compared with the file the run recorded (``experiment.json``
            ``resolved``); None: the paths as given.

    Returns:
        ``(same, diff)``: the keys the re-run gives explicitly as decided or leaves auto where
        the run recorded a value (sorted; the run continues with its record, ``old[key]``), and
        the differing options (sorted keys; :func:`setting_changes` says them as flags).
    """
    same, diff = [], []
    for k in sorted(set(old) | set(new)):
        if k in (*ExperimentConfig.DOWNSTREAM, *ExperimentConfig.FILTER) or same_setting(
            k, old.get(k), new.get(k), weights
        ):  # a --weights file written another way is the same setting (as train --resume)
            continue
        auto = DECIDED_BY_RUN.get(k, (object(), ""))[0]
        if new.get(k) == auto and k in old:  # not given now: the recorded value goes on
            same.append(k)
            continue
        if old.get(k) == auto and new.get(k) != auto and decided.get(k, auto) == new.get(k):
            same.append(k)
            continue
        diff.append(k)
    return same, diff


_API_ONLY = ("test_fraction", "sources")
"""Identity options without a flag of ``elnet experiment`` (named as ``ExperimentConfig``
fields in :func:`setting_changes`)."""


def _shown(key: str, value: Any) -> str:
    if key in DECIDED_BY_RUN and value == DECIDED_BY_RUN[key][0]:
        return "auto"
    if value is None:
        return "not given"
    if isinstance(value, (list, tuple)):
        return ",".join(_shown("", v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def setting_changes(
    diff: list[str],
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    decided: Mapping[str, Any],
    weights: WeightsFiles | None = None,
) -> list[str]:
    """The options of :func:`settings_diff`'s ``diff`` as the user typed them, with the value the
    experiment was started with: ``--image-size 256 (saved: 128)``, ``--modality sar (saved:
    auto, decided optical)``, ``--no-enhancement given (saved: left out)`` (the form of
    ``elnet cv`` and ``elnet train --resume``, :func:`~sam2elnet.option_checks.setting_change`);
    ``--weights`` with both files and what to do
    (:meth:`~sam2elnet.option_checks.WeightsFiles.change`; ``weights`` as for
    :func:`settings_diff`)."""
    lines = []
    for k in diff:
        if k == "weights":
            w = weights or WeightsFiles.as_given(old.get(k), new.get(k))
            lines.append(w.change(lambda v: _shown("weights", v)))
            continue
        if k == "enhancement":  # --no-enhancement: a switch, not a value
            lines.append(
                "--no-enhancement "
                + ("given (saved: left out)" if new.get(k) is False else "left out (saved: given)")
            )
            continue
        saved = _shown(k, old.get(k))
        if k in decided and saved == "auto":
            saved += f", decided {_shown(k, decided[k])}"
        name = f"{k}=" if k in _API_ONLY else "--" + k.replace("_", "-") + " "
        lines.append(f"{name}{_shown(k, new.get(k))} (saved: {saved})")
    return lines


class ExperimentConfig(BaseModel):
    """Options of one experiment; everything but the runtime options is fixed for a given ``out``.

    The one declaration of every option's default and range: ``elnet experiment`` takes its
    defaults from here and validates through it (:func:`sam2elnet.option_checks.check_options`), so an
    out-of-range value is one ``error:`` line before any work starts.
    """

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    data: Path
    out: Path
    fraction: float = Field(0.3, gt=0, lt=1)
    """Share of the training pool that keeps its labels (the paper's 30 %)."""
    epochs: int = Field(10, ge=1)
    downstream_epochs: int = Field(10, ge=1)
    downstream_steps: int | None = Field(None, ge=1)
    """Fixed optimiser steps for every downstream model (instead of epochs): settings with fewer
    training images then get the same number of updates, not proportionally fewer."""
    image_size: int = Field(256, ge=32)
    batch_size: int = Field(8, ge=1, le=1024)
    max_train: int | None = Field(None, ge=2)
    max_test: int | None = Field(None, ge=2)
    test_fraction: float = Field(0.2, gt=0, lt=1)
    size: ModelSize = "tiny"
    weights: str | None = None
    """SAM2 checkpoint; None = the cached official one for ``size`` when present, else random init;
    ``"none"`` = random init even when a cached checkpoint exists (as ``elnet train --weights none``)."""
    trunk: Literal["none", "last", "all"] = "none"
    trunk_scale: TrunkScale | None = None
    """SAM2-ELNet's trunk at full (1) or half (2) resolution (``elnet train --trunk-scale``);
    None = auto as in ``elnet train`` (:func:`sam2elnet.config.auto_trunk_scale`: full with SAM2
    weights or for roads, else half). The scale built is in ``results.json`` (``elnet``)."""
    seed: int = 0
    """Seed of the labelled/unlabelled draw, the training runs and the simulated coarse labels."""
    split_seed: int = 1000
    """Seed of the held-out test split (when the data has no test split of its own). Fixed by
    default and independent of ``seed``, so runs of several seeds score on one test set and
    ``elnet experiment-summary`` compares like with like."""
    quality_folds: int = Field(0, ge=0, le=20)
    """k-fold cross-fitting of SAM2-ELNet for its quality evaluator (``elnet train
    --quality-folds``): 0 = off, else 2-20 extra short trainings."""
    quality_fold_epochs: int | None = Field(None, ge=1)
    """Epochs of each cross-fitting network; None = ``epochs``."""
    positive_values: tuple[float, ...] | None = None
    """Mask values that mean "object" in the dataset's class-index masks (truth and its own coarse
    labels), e.g. ``(2,)``; the rest is background. None: the default rule (docs/data.md, mask
    values). The masks are decoded once, in the split stage (``OUT/truth/``)."""
    min_quality: float | None = Field(None, ge=0, le=1)
    """The quality filter: keep the auto-labels with predicted IoU >= this (0-1); None with
    ``target_precision`` None: the evaluator's default target precision when fitted, else 0.5.
    May change in a finished ``out`` (:attr:`FILTER`: the stored labels are filtered again)."""
    target_precision: float | None = Field(None, gt=0, le=1)
    """The quality filter: the threshold whose held-out precision of good labels is this (0-1];
    excludes ``min_quality``. May change in a finished ``out`` as ``min_quality``."""
    modality: Literal["auto", "sar", "optical"] = "auto"
    """SAR or optical images (``elnet train --modality``): how every image is read and scaled
    (SAM2-ELNet's training, the downstream U-Nets' normalisation, the classical refiners), the
    domain and category names. ``auto``: decided once, in the split stage, from the layout,
    ``dataset.json`` or the images (:func:`sam2elnet.data.modality.decide_modality`; grey images
    cannot tell and are read as optical with a warning). Part of the identity; an ``auto`` run
    continues with the value it decided given explicitly (:func:`settings_diff`)."""
    coarse_profile: CoarseProfile = "freehand"
    """Simulator profile of the "sim" coarse labels in table 2. Default: the held-out "freehand"
    family, which training never sees (sam2elnet.data.coarse.EVAL_ONLY_PROFILES), so the table
    measures generalisation to unseen coarse labels rather than fitting the simulator."""
    coarse_severity: float = Field(0.5, ge=0, le=1)
    refiners: tuple[str, ...] = REFINERS_DEFAULT
    """Classical baselines of table 2 (names of :data:`sam2elnet.pipeline.refine.REFINERS`)."""
    enhancement: bool = True
    sources: tuple[Literal["sim", "own"], ...] = ("sim", "own")
    """Label sources of table 2: simulated coarse labels and/or the dataset's own labels."""
    downstream_width: int = Field(16, ge=4, le=256)
    downstream_depth: int = Field(4, ge=1, le=6)
    downstream_curve_points: int = Field(6, ge=0, le=CURVE_POINTS_MAX)
    """Test-split evaluations during each downstream training (learning curves, ``curves.png``)."""
    enhancement_downstream: bool = True
    """Train a downstream model on every enhancement-table label set (the paper's table 2
    protocol: one U-Net per source x method, scored on the test split). False: table 2 scores
    those label sets against the true labels only (label IoU of all pool images and of the
    unlabelled part), no U-Net is trained on them; what ``elnet demo`` does to fit its time
    budget. Not part of the identity: switching it on later trains just the missing models."""
    road_buffer: float | None = road_buffer_field()
    """Buffer tolerance of the road measures (road data), px: of SAM2-ELNet's validation, its
    own test row (f) and every downstream model's test scores. Part of the identity. None
    (default): :data:`~sam2elnet.option_values.ROAD_BUFFER_PX`, or None with ``road_buffer_m``;
    both given: ValueError
    (:func:`~sam2elnet.option_values.road_buffer_units`, the rule of every configuration)."""
    road_buffer_m: float | None = road_buffer_m_field()
    """The same in ground metres instead (None: ``road_buffer`` px): each image's px from its
    own ground pixel size (:func:`sam2elnet.engine.road_buffer.road_buffers_px`; per_image.csv
    says each test image's). Part of the identity."""
    precision: Precision = "auto"
    """``auto``: bf16 autocast where the hardware computes bf16 natively, else float32
    (:func:`sam2elnet.engine.runtime.resolve_precision`); ``bf16``; ``32`` (float32; ``fp32``,
    the spelling of experiments made before, is read as ``32``). Part of the experiment's
    identity: an experiment started with ``bf16`` continues with ``--precision bf16``."""
    # runtime options (may change between runs of the same experiment)
    device: str = "cpu"
    resume: bool = False
    progress: bool = True
    report: bool = True
    eta_reference: dict[str, float] | None = None
    """Seconds one stage of each kind (``elnet``, ``downstream``, ...) takes on a reference
    machine, for the ETA of the kinds not timed yet in this run (``elnet demo`` gives its own:
    :func:`sam2elnet.pipeline.demo.reference_seconds`); None: those kinds make the ETA a
    lower bound."""

    RUNTIME: ClassVar[tuple[str, ...]] = (
        "out", "device", "resume", "progress", "report", "eta_reference",
    )  # fmt: skip
    # Downstream options are not part of the identity: every downstream training is cached under a
    # fingerprint of its config and labels, so changing them re-trains only the downstream models.
    DOWNSTREAM: ClassVar[tuple[str, ...]] = (
        "downstream_epochs",
        "downstream_steps",
        "downstream_width",
        "downstream_depth",
        "downstream_curve_points",
        "enhancement_downstream",
    )

    # The quality filter's options: recorded in the identity, but a re-run into the same ``out``
    # with other values filters the stored auto-labels again (their predicted quality is kept in
    # the annotate stage) instead of refusing; the downstream models trained on the kept labels
    # see other label sets and train again by their own keys.
    FILTER: ClassVar[tuple[str, ...]] = ("min_quality", "target_precision")

    _one_road_buffer = model_validator(mode="after")(settle_road_buffer)  # one unit
    _dev = field_validator("device")(classmethod(lambda cls, v: check_device(v)))

    _prec = field_validator("precision", mode="before")(
        classmethod(lambda cls, v: norm_precision_value(v))
    )

    @field_validator("refiners")
    @classmethod
    def _known_refiners(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        from sam2elnet.pipeline.refine import REFINERS

        bad = [r for r in v if r not in REFINERS or r == "no_change"]
        if bad:
            raise ValueError(
                f"unknown refiner{'' if len(bad) == 1 else 's'} {bad}; choose from morphological, "
                "guided, grabcut"
            )
        return v

    @field_validator("weights", mode="before")
    @classmethod
    def _norm_weights(cls, v: Any) -> Any:
        """'' / 'null' -> None (default); 'none' in any case -> 'none' (random init, as train)."""
        if v is None or (isinstance(v, str) and v.strip().lower() in {"", "null"}):
            return None
        if isinstance(v, str) and v.strip().lower() == "none":
            return "none"
        return str(v)

    _folds = field_validator("quality_folds")(classmethod(lambda cls, v: check_quality_folds(v)))

    @field_validator("positive_values")
    @classmethod
    def _some_values(cls, v: tuple[float, ...] | None) -> tuple[float, ...] | None:
        return tuple(v) if v else None

    @model_validator(mode="after")
    def _one_filter(self) -> ExperimentConfig:
        check_one_filter(self.min_quality, self.target_precision)
        return self

    def validate(self) -> None:  # type: ignore[override]
        """Check the options again (they are checked when the config is made; kept for callers
        that change fields afterwards).

        Raises:
            UserError: an option out of range (one line naming the flag and the range).
        """
        check_options(type(self), **self.model_dump())

    def identity(self) -> dict[str, Any]:
        """The options that define the experiment (a changed one means a different experiment).

        Returns:
            The options minus the runtime and downstream ones, ``data`` resolved, tuples as lists
            (what ``OUT/experiment.json`` holds and a re-run must match).
        """
        d = self.model_dump()
        for k in (*self.RUNTIME, *self.DOWNSTREAM):
            d.pop(k, None)
        d["data"] = str(Path(self.data).resolve())
        d["refiners"] = list(self.refiners)
        d["sources"] = list(self.sources)
        d["positive_values"] = list(self.positive_values) if self.positive_values else None
        return d
