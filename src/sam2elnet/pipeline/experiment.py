"""The paper's protocol as one command: ``elnet experiment --data DIR --out DIR``.

What it measures (and why each piece is there):

1. **Split.** A reproducible ``fraction`` (default 30 %) of the training pool keeps its labels; the
   rest is treated as unlabelled (its true labels are kept aside for scoring only). The test split is
   the dataset's own (``test/`` for SOS) when it has one, else a fixed, stratified 20 % hold-out.
2. **Fine-tune SAM2-ELNet** on the labelled fraction (the engine's ``train``; one model learns both
   annotation and enhancement).
3. **Auto-annotate** the unlabelled part, score every label with the quality evaluator, filter.
4. **Downstream models** (one plain U-Net, identical settings everywhere, see
   :mod:`sam2elnet.engine.downstream`) trained on (a) 100 % original labels, (b) the labelled fraction
   only, (c) filtered auto-labels only, (d) fraction + filtered auto-labels, (e) fraction + all
   auto-labels, and scored on the test split. Labelling cost = number of hand labels each needs.
5. **Auto-label quality**: IoU against the held-aside true labels (all and kept), how many were kept,
   the evaluator's Spearman correlation.
6. **Label enhancement table**: the training labels degraded by the coarse-label simulator ("sim"),
   and separately the dataset's own labels ("own": its ``coarse/`` labels when it ships them, else its
   labels as they are), each as is / refined by classical baselines (morphological, guided filter,
   GrabCut) / enhanced by SAM2-ELNet; downstream test scores for each, plus the label IoU against the
   true labels where those exist. Classical baselines are in the same table so the gain is measured.

Every stage writes its outputs under ``OUT`` and a done-marker ``OUT/stages/<stage>.json``; a stage
with a marker is skipped on re-run (same settings required). Delete a marker to re-run that stage;
downstream trainings and label scores are keyed by the state of the label files they read, so they
re-run by themselves when an earlier stage rewrote those files. ``resume=True`` additionally continues
stages that were interrupted half-way (ELNet training from ``last.pt``, annotation from the files
already written) instead of restarting them. All files are written atomically.

Outputs: ``results.md`` (both tables, costs, settings, weights), ``results.json``, ``results.png``,
``report.html``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sam2elnet.engine.metrics import BOOTSTRAP_RESAMPLES
from sam2elnet.errors import DataError, UserError
from sam2elnet.utils.atomic import write_json_atomic, write_text_atomic
from sam2elnet.utils.paths import link_or_copy

log = logging.getLogger(__name__)

RESULTS_VERSION = 1

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
TARGET_RATIO = 0.97
"""The protocol's bar: a label-efficient setting "reaches" all hand labels at >= 97 % of its IoU."""
TABLE2_METHODS: dict[str, str] = {
    "coarse": "no change (labels as they are)",
    "morphological": "morphological clean-up",
    "guided": "image-guided filter",
    "grabcut": "GrabCut",
    "elnet": "SAM2-ELNet enhancement",
}
REFINERS_DEFAULT = ("morphological", "guided", "grabcut")
BOOTSTRAP_SEED = 0
"""Fixed seed of every bootstrap interval: the same image resamples for every row of a table."""


@dataclass
class ExperimentConfig:
    """Options of one experiment; everything but the runtime options is fixed for a given ``out``."""

    data: Path
    out: Path
    fraction: float = 0.3
    epochs: int = 10
    downstream_epochs: int = 10
    downstream_steps: int | None = None
    """Fixed optimiser steps for every downstream model (instead of epochs): settings with fewer
    training images then get the same number of updates, not proportionally fewer."""
    image_size: int = 256
    batch_size: int = 8
    max_train: int | None = None
    max_test: int | None = None
    test_fraction: float = 0.2
    size: str = "tiny"
    weights: str | None = None
    """SAM2 checkpoint; None = the cached official one for ``size`` when present, else random init."""
    trunk: Literal["none", "last", "all"] = "none"
    seed: int = 0
    """Seed of the labelled/unlabelled draw, the training runs and the simulated coarse labels."""
    split_seed: int = 1000
    """Seed of the held-out test split (when the data has no test split of its own). Fixed by
    default and independent of ``seed``, so runs of several seeds score on one test set and
    ``elnet experiment-summary`` compares like with like."""
    min_quality: float | None = None
    target_precision: float | None = None
    coarse_profile: str = "freehand"
    """Simulator profile of the "sim" coarse labels in table 2. Default: the held-out "freehand"
    family, which training never sees (sam2elnet.data.coarse.EVAL_ONLY_PROFILES), so the table
    measures generalisation to unseen coarse labels rather than fitting the simulator."""
    coarse_severity: float = 0.5
    refiners: tuple[str, ...] = REFINERS_DEFAULT
    enhancement: bool = True
    sources: tuple[str, ...] = ("sim", "own")
    """Label sources of table 2: simulated coarse labels and/or the dataset's own labels."""
    downstream_width: int = 16
    downstream_depth: int = 4
    downstream_curve_points: int = 6
    """Test-split evaluations during each downstream training (learning curves, ``curves.png``)."""
    precision: Literal["bf16", "fp32"] = "bf16"
    # runtime options (may change between runs of the same experiment)
    device: str = "cpu"
    resume: bool = False
    progress: bool = True
    report: bool = True

    RUNTIME = ("out", "device", "resume", "progress", "report")
    # Downstream options are not part of the identity: every downstream training is cached under a
    # fingerprint of its config and labels, so changing them re-trains only the downstream models.
    DOWNSTREAM = (
        "downstream_epochs",
        "downstream_steps",
        "downstream_width",
        "downstream_depth",
        "downstream_curve_points",
    )

    def validate(self) -> None:
        """Raise UserError for options out of range (before any work is done)."""
        if not 0.0 < self.fraction < 1.0:
            raise UserError(f"--fraction {self.fraction} must be inside (0, 1), e.g. 0.3 for 30 %")
        if not 0.0 < self.test_fraction < 1.0:
            raise UserError(f"test fraction {self.test_fraction} must be inside (0, 1)")
        if self.min_quality is not None and self.target_precision is not None:
            raise UserError("give either --min-quality or --target-precision, not both")
        if self.min_quality is not None and not 0.0 <= self.min_quality <= 1.0:
            raise UserError(f"--min-quality {self.min_quality} must be in [0, 1]")
        if self.target_precision is not None and not 0.0 < self.target_precision <= 1.0:
            raise UserError(f"--target-precision {self.target_precision} must be in (0, 1]")
        for name in ("epochs", "downstream_epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1")
        if self.downstream_curve_points < 0:
            raise UserError("--curve-points must be 0 or more")
        if self.downstream_steps is not None and self.downstream_steps < 1:
            raise UserError("--downstream-steps must be at least 1")
        if self.image_size < 32:
            raise UserError(f"--image-size {self.image_size} is too small; use at least 32")
        for n in ("max_train", "max_test"):
            v = getattr(self, n)
            if v is not None and v < 2:
                raise UserError(f"--{n.replace('_', '-')} must be at least 2")
        from sam2elnet.pipeline.refine import REFINERS

        bad = [r for r in self.refiners if r not in REFINERS or r == "no_change"]
        if bad:
            raise UserError(f"unknown refiner(s) {bad}; choose from morphological, guided, grabcut")
        if not set(self.sources) <= {"sim", "own"}:
            raise UserError(
                f"unknown label source(s) {sorted(set(self.sources) - {'sim', 'own'})}; "
                "use sim and/or own"
            )

    def identity(self) -> dict[str, Any]:
        """The options that define the experiment (a changed one means a different experiment)."""
        d = asdict(self)
        for k in (*self.RUNTIME, *self.DOWNSTREAM):
            d.pop(k, None)
        d["data"] = str(Path(self.data).resolve())
        d["refiners"] = list(self.refiners)
        d["sources"] = list(self.sources)
        return d


# ----------------------------------------------------------------------------------- small helpers
def _sha(obj: Any) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _stat(path: Path) -> tuple[int, int]:
    """(size, mtime in ns) of a file: part of cache keys, so rewritten files invalidate them."""
    st = Path(path).stat()
    return st.st_size, st.st_mtime_ns


def _json_safe(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_safe(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, Path):
        return str(v)
    return v


def _clock(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss``) for progress lines."""
    sec = int(round(max(0.0, seconds)))
    h, rem = divmod(sec, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60}:{rem % 60:02d}"


class Stages:
    """Done-markers under ``OUT/stages``: a finished stage is skipped on re-run.

    ``resume=False`` clears the folders of an *unfinished* stage before running it again (a killed
    stage may have left partial outputs); ``resume=True`` lets the stage continue from them.
    """

    def __init__(self, out: Path, resume: bool, progress: bool = False) -> None:
        self.dir = out / "stages"
        self.resume = resume
        self.status: dict[str, str] = {}
        self.seconds: dict[str, float] = {}
        self.progress = progress
        self.plan: dict[str, int] = {}
        self._t0 = time.perf_counter()
        self._ran: dict[str, list[float]] = {}

    def expect(self, plan: dict[str, int]) -> None:
        """Stages still to come per kind (the name up to the first ``_``), for the ETA lines."""
        self.plan = dict(plan)

    @staticmethod
    def _kind(name: str) -> str:
        return name.split("_", 1)[0]

    def _eta(self) -> str:
        """ETA from the mean time of finished stages of each kind still planned.

        A kind not seen yet has no estimate: the ETA is then a lower bound and says which kind
        is missing (honest rather than guessed)."""
        left, unknown = 0.0, []
        for kind, n in self.plan.items():
            done = len(self._ran.get(kind, [])) + sum(
                1 for k, v in self.status.items() if v == "cached" and self._kind(k) == kind
            )
            rest = max(0, n - done)
            if not rest:
                continue
            if self._ran.get(kind):
                left += rest * sum(self._ran[kind]) / len(self._ran[kind])
            else:
                unknown.append(kind)
        eta = _clock(left)
        return (
            f"ETA {eta}"
            if not unknown
            else f"ETA >= {eta} (no {', '.join(unknown)} stage timed yet)"
        )

    def _say(self, text: str) -> None:
        msg = f"[{_clock(time.perf_counter() - self._t0)}] {text}"
        if self.progress:
            from tqdm import tqdm

            tqdm.write(msg, file=sys.stderr)
        else:  # --no-progress: the same stage lines, for logs (sam2elnet.progress logger)
            from sam2elnet.utils.progress import line

            line(msg)

    def marker(self, name: str) -> Path:
        return self.dir / f"{name}.json"

    def run(
        self,
        name: str,
        fn: Callable[[], dict[str, Any]],
        clear: Sequence[Path] = (),
        key: str | None = None,
    ) -> dict:
        """Run ``fn`` unless ``name`` is done (with the same input ``key``); return its summary.

        ``key`` fingerprints the stage's inputs (e.g. the label files a downstream model trains on):
        when an earlier stage was re-run and produced other inputs, the marker no longer matches.
        """
        m = self.marker(name)
        if m.is_file():
            try:
                rec = json.loads(m.read_text(encoding="utf-8"))
                if rec.get("key", key) == key:  # markers without a key predate keys
                    self.status[name] = "cached"
                    self.seconds[name] = float(rec.get("seconds", 0.0))
                    log.info("stage %s: done before, skipped", name)
                    self._say(f"stage {name}: done before, skipped")
                    return rec["summary"]
                log.info("stage %s: inputs changed since it ran; running it again", name)
            except (json.JSONDecodeError, KeyError):
                log.warning("stage marker %s is unreadable; running the stage again", m)
        if not self.resume:
            for d in clear:
                if d.is_dir():
                    shutil.rmtree(d)
                elif d.exists():
                    d.unlink()
        self._say(f"stage {name} ...")
        t0 = time.perf_counter()
        summary = _json_safe(fn())
        dt = time.perf_counter() - t0
        self._ran.setdefault(self._kind(name), []).append(dt)
        self.status[name] = "ran"
        self._say(f"stage {name}: done in {dt:.0f} s; {self._eta()}")
        write_json_atomic(
            m,
            {"stage": name, "key": key, "seconds": dt, "finished": time.time(), "summary": summary},
        )
        self.status[name] = "ran"
        self.seconds[name] = dt
        return summary


# ------------------------------------------------------------------------------------------ split
@dataclass
class Split:
    """Which images play which role (ids -> file paths), saved as ``OUT/split.json``."""

    modality: str
    layout: str
    labelled: list[str]
    unlabelled: list[str]
    test: list[str]
    images: dict[str, str]
    masks: dict[str, str]
    own: dict[str, str]
    """The dataset's own training labels for the enhancement table (coarse/ when shipped)."""
    own_is_truth: bool
    """True when ``own`` are the true labels themselves (no separate truth to score them)."""
    test_source: str
    notes: list[str] = field(default_factory=list)

    @property
    def pool(self) -> list[str]:
        return sorted(self.labelled + self.unlabelled)

    def pairs(
        self, ids: Sequence[str], labels: dict[str, str] | None = None
    ) -> list[tuple[Path, Path]]:
        lab = self.masks if labels is None else labels
        return [(Path(self.images[i]), Path(lab[i])) for i in ids]


def _cap(ids: list[str], n: int | None, seed: int) -> list[str]:
    if n is None or len(ids) <= n:
        return ids
    rng = np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, 77]))
    return sorted(rng.choice(ids, n, replace=False).tolist())


def make_split(cfg: ExperimentConfig) -> Split:
    """Discover the dataset and assign labelled / unlabelled / test roles reproducibly."""
    from sam2elnet.data.datasets import discover, mask_strata, split_fraction

    index = discover(cfg.data)
    samples = [s for s in index.samples if s.mask is not None]
    if not samples:
        raise DataError("no labelled image pairs found; the experiment needs labels", cfg.data)
    by_id = {s.id: s for s in samples}
    # the dataset's own evaluation split: SOS test/, CHN6-CUG val/ (its published evaluation set)
    found = index.splits
    eval_split = "test" if "test" in found else ("val" if "val" in found else None)
    test_ids = sorted(s.id for s in samples if eval_split and s.split == eval_split)
    notes: list[str] = []
    if test_ids:
        train_ids = sorted(s.id for s in samples if s.split == "train")
        test_source = f"dataset {eval_split} split"
        log.info(
            "experiment splits: labelled/unlabelled parts from train (%d), test from %s (%d)",
            len(train_ids),
            eval_split,
            len(test_ids),
        )
    else:
        ids = sorted(by_id)
        if len(ids) < 6:
            raise DataError(
                f"only {len(ids)} labelled pairs; the experiment needs at least 6 "
                "(test, labelled and unlabelled parts)",
                cfg.data,
            )
        strata = mask_strata([by_id[i] for i in ids])
        test_ids, train_ids = split_fraction(
            ids, cfg.test_fraction, seed=cfg.split_seed, strata=strata
        )
        test_source = (
            f"held-out {cfg.test_fraction:.0%} of the labelled pairs (seed {cfg.split_seed})"
        )
    train_ids = _cap(train_ids, cfg.max_train, cfg.seed)
    test_ids = _cap(test_ids, cfg.max_test, cfg.split_seed + 1)
    if len(train_ids) < 4:
        raise DataError(f"only {len(train_ids)} training pairs; need at least 4", cfg.data)
    strata = mask_strata([by_id[i] for i in train_ids])
    labelled, unlabelled = split_fraction(train_ids, cfg.fraction, seed=cfg.seed, strata=strata)
    if len(labelled) < 2 or not unlabelled:
        raise UserError(
            f"--fraction {cfg.fraction} of {len(train_ids)} training pairs leaves {len(labelled)} "
            f"labelled and {len(unlabelled)} unlabelled; use more data or another fraction",
            cfg.data,
        )
    has_coarse = all(by_id[i].coarse is not None for i in train_ids)
    own = {i: str(by_id[i].coarse if has_coarse else by_id[i].mask) for i in train_ids}
    if not has_coarse:
        notes.append(
            "The dataset ships no separate coarse labels: the 'own labels' variant enhances the "
            "dataset's labels as they are, and only downstream test scores can be reported for it "
            "(there is no truer label to compare them with)."
        )
    return Split(
        modality=index.modality,
        layout=index.layout,
        labelled=labelled,
        unlabelled=unlabelled,
        test=test_ids,
        images={i: str(by_id[i].image) for i in train_ids + test_ids},
        masks={i: str(by_id[i].mask) for i in train_ids + test_ids},
        own=own,
        own_is_truth=not has_coarse,
        test_source=test_source,
        notes=notes,
    )


def _write_subset(
    root: Path,
    split: Split,
    ids: Sequence[str],
    labels: dict[str, str] | None,
    with_masks: bool = True,
) -> Path:
    """A generic-layout folder of links (images/, masks/, dataset.json) the engine can read."""
    for i in ids:
        img = Path(split.images[i])
        link_or_copy(img, root / "images" / f"{i}{img.suffix.lower()}")
        if with_masks:
            lab = Path((labels or split.masks)[i])
            link_or_copy(lab, root / "masks" / f"{i}{lab.suffix.lower()}")
    write_json_atomic(
        root / "dataset.json",
        {"modality": split.modality, "layout": "generic", "source": "sam2elnet experiment subset"},
    )
    return root


# --------------------------------------------------------------------------------- label scoring
def score_labels(
    labels: dict[str, str], truth: dict[str, str], ids: Sequence[str]
) -> dict[str, Any]:
    """Pixel-aggregated and mean per-image IoU of ``labels`` against ``truth`` over ``ids``
    (pixels the truth marks as ignore / nodata are not counted)."""
    from sam2elnet.data.raster import read_mask, read_mask_valid
    from sam2elnet.engine.metrics import Confusion, confusion, scores

    total = Confusion()
    per_image = []
    for i in ids:
        t, valid = read_mask_valid(truth[i])
        p = read_mask(labels[i], shape=t.shape)
        c = confusion(p, t, valid)
        total = total + c
        per_image.append(scores(c)["iou"])
    s = scores(total) if ids else {"iou": float("nan"), "f1": float("nan")}
    return {
        "n": len(ids),
        "iou": s["iou"],
        "f1": s["f1"],
        "mean_image_iou": float(np.mean(per_image)) if per_image else float("nan"),
    }


# ------------------------------------------------------------------------------- engine adapters
def _weights(cfg: ExperimentConfig) -> tuple[str | None, str]:
    """(weights path or None, a sentence saying what the encoder starts from)."""
    if cfg.weights:
        p = Path(cfg.weights)
        if not p.is_file():
            raise UserError("SAM2 weights file does not exist; check --weights", p)
        return str(p), f"pretrained SAM2 Hiera-{cfg.size} weights from {p}"
    try:
        from sam2elnet.model.hiera import find_cached_weights

        found = find_cached_weights(cfg.size) if cfg.size != "micro" else None
    except (ImportError, Exception):  # noqa: BLE001 - a missing cache is not an error here
        found = None
    if found is not None:
        return str(
            found
        ), f"pretrained SAM2 Hiera-{cfg.size} weights from the local cache ({found})"
    return None, (
        f"RANDOMLY INITIALISED SAM2 Hiera-{cfg.size} encoder (no pretrained weights were available "
        f"locally; trunk training: {cfg.trunk}). Numbers are a floor, not what SAM2-ELNet reaches "
        "with real SAM2 weights."
    )


def _train_elnet(cfg: ExperimentConfig, data_dir: Path, run_dir: Path, weights: str | None) -> dict:
    from sam2elnet.config import TrainConfig
    from sam2elnet.engine.train import train

    resume = cfg.resume and (run_dir / "last.pt").is_file()
    if not resume and run_dir.exists():
        shutil.rmtree(run_dir)
    tcfg = TrainConfig(
        data=data_dir,
        out=run_dir,
        weights=weights,
        size=cfg.size,
        trunk=cfg.trunk,
        fraction=1.0,
        seed=cfg.seed,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        image_size=cfg.image_size,
        precision="bf16" if cfg.precision == "bf16" else "32",
        device=cfg.device,
        resume=resume,
        progress=cfg.progress,
    )
    res = train(tcfg)
    return {
        "model": str(res.best_path),
        "best_epoch": res.best_epoch,
        "best_val_iou": res.best_val_iou,
        "history": res.history,
        "quality": res.quality,
        "splits": {k: len(v) for k, v in res.splits.items()},
    }


def _rows_to_labels(result: Any, ids: Sequence[str]) -> tuple[dict[str, str], dict[str, float]]:
    """Label paths and predicted quality per id from an annotate/enhance FolderResult."""
    labels: dict[str, str] = {}
    quality: dict[str, float] = {}
    for row in result.rows:
        key = Path(str(row["image"])).stem
        labels[key] = str(Path(result.out_dir) / str(row["label"]))
        q = row.get("predicted_iou")
        quality[key] = float(q) if q not in (None, "") else float("nan")
    missing = [i for i in ids if i not in labels]
    if missing:
        raise DataError(
            f"{len(missing)} label(s) were not produced (e.g. {missing[0]}; see skipped.csv); "
            "fix or remove those images",
            result.out_dir,
        )
    return {i: labels[i] for i in ids}, {i: quality[i] for i in ids}


def _predictor(cfg: ExperimentConfig, model: str) -> Any:
    from sam2elnet.engine.infer import Predictor

    return Predictor.from_file(
        model, device=cfg.device, precision=cfg.precision, batch_size=cfg.batch_size
    )


def _annotate(cfg: ExperimentConfig, pred: Any, model: str, image_dir: Path, out_dir: Path) -> Any:
    from sam2elnet.engine.infer import annotate_folder

    return annotate_folder(
        model, image_dir, out_dir, resume=cfg.resume, progress=cfg.progress, predictor=pred
    )


def _enhance(
    cfg: ExperimentConfig, pred: Any, model: str, image_dir: Path, label_dir: Path, out_dir: Path
) -> Any:
    from sam2elnet.engine.infer import enhance_folder

    return enhance_folder(
        model,
        image_dir,
        label_dir,
        out_dir,
        resume=cfg.resume,
        progress=cfg.progress,
        predictor=pred,
        save_changes=False,
    )


def _threshold(cfg: ExperimentConfig, pred: Any) -> tuple[float, str]:
    """Quality threshold for filtering and a sentence saying how it was chosen.

    Default (neither option): the evaluator's default target precision when it was fitted, else a
    minimum predicted quality of 0.5.
    """
    if cfg.min_quality is not None:
        return cfg.min_quality, f"--min-quality {cfg.min_quality}"
    target = cfg.target_precision
    if target is None:
        if not pred.evaluator.fitted:
            why = pred.evaluator.warning or pred.evaluator.status
            return 0.5, (
                f"minimum predicted quality 0.5 (the quality evaluator was not fitted: {why}; "
                f"its scores are capped at {pred.evaluator.prior:.2f})"
            )
        from sam2elnet.config import QualityConfig

        target = QualityConfig().default_target_precision
    thr, info = pred.choose_threshold(None, target)
    choice = info.get("target_precision", {})
    how = (
        f"target precision {target:.2f} of 'IoU >= {choice.get('tau', float('nan')):.2f}' on "
        f"held-out labels -> threshold {thr:.3f}"
    )
    if not choice.get("achievable", True):
        how += " (not achievable on the held-out labels)"
    return float(thr), how


# ------------------------------------------------------------------------------------ the runner
def _downstream_cfg(cfg: ExperimentConfig) -> Any:
    from sam2elnet.engine.downstream import DownstreamConfig

    return DownstreamConfig(
        model_options={
            "width": cfg.downstream_width,
            "depth": cfg.downstream_depth,
            "norm": "batch",
        },
        epochs=cfg.downstream_epochs,
        steps=cfg.downstream_steps,
        image_size=cfg.image_size,
        batch_size=cfg.batch_size,
        precision=cfg.precision,
        device=cfg.device,
        seed=cfg.seed,
        curve_points=cfg.downstream_curve_points,
        progress=cfg.progress,
    )


def run_experiment(cfg: ExperimentConfig) -> dict[str, Any]:
    """Run (or continue) the whole protocol and write the results files; return results.json's dict."""
    cfg.validate()
    data = Path(cfg.data)
    if not data.exists():
        raise DataError("data folder does not exist; check --data", data)
    if data.is_dir() and not any(data.iterdir()):
        raise DataError("data folder is empty; put a dataset in it (see docs/data.md)", data)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ident_path = out / "experiment.json"
    ident = cfg.identity()
    finished = any((out / "stages").glob("*.json"))
    if ident_path.is_file() and finished:
        old = json.loads(ident_path.read_text(encoding="utf-8"))
        diff = sorted(
            k
            for k in set(old) | set(ident)
            if k not in cfg.DOWNSTREAM and old.get(k) != ident.get(k)
        )
        if diff:
            raise UserError(
                f"this folder holds an experiment with other settings ({', '.join(diff)}); "
                "choose a new --out or delete the folder",
                out,
            )
    if (
        not ident_path.is_file()
        or not finished
        or ident != json.loads(ident_path.read_text("utf-8"))
    ):
        write_json_atomic(ident_path, ident)

    stages = Stages(out, cfg.resume, progress=cfg.progress)
    n_src = len(cfg.sources) if cfg.enhancement else 0
    stages.expect(
        {
            "split": 1,
            "subsets": 1,
            "elnet": 1,
            "annotate": 1,
            "elnettest": 1,
            "autocounts": 1,
            "coarse": int(cfg.enhancement and "sim" in cfg.sources),
            "refine": n_src * len(cfg.refiners),
            "enhance": n_src,
            "downstream": 5 + n_src * (len(cfg.refiners) + 2),
            "labelscore": n_src * (len(cfg.refiners) + 2),
        }
    )
    t_start = time.perf_counter()
    weights, weights_note = _weights(cfg)

    # 1. split ---------------------------------------------------------------------------------
    def _split() -> dict:
        sp = make_split(cfg)
        return asdict(sp)

    split = Split(**stages.run("split", _split))
    lab_root, unl_root, pool_root = out / "labelled", out / "unlabelled", out / "pool"

    def _subsets() -> dict:
        _write_subset(lab_root, split, split.labelled, None)
        _write_subset(unl_root, split, split.unlabelled, None, with_masks=False)
        _write_subset(pool_root, split, split.pool, None)
        return {
            "labelled": len(split.labelled),
            "unlabelled": len(split.unlabelled),
            "pool": len(split.pool),
            "test": len(split.test),
        }

    stages.run("subsets", _subsets, clear=[lab_root, unl_root, pool_root])
    road_guess = _road_domain(split)
    roads = road_guess.roads
    if roads:
        log.info("roads data (%s): road measures in the tables", road_guess.reason)

    # 2. fine-tune SAM2-ELNet on the labelled fraction -------------------------------------------
    elnet = stages.run("elnet", lambda: _train_elnet(cfg, lab_root, out / "elnet", weights))
    model_path = elnet["model"]

    # 3. auto-annotate + filter -----------------------------------------------------------------
    auto_dir = out / "autolabels"

    def _auto() -> dict:
        from sam2elnet.engine.metrics import quality_stats

        pred = _predictor(cfg, model_path)
        res = _annotate(cfg, pred, model_path, unl_root / "images", auto_dir)
        labels, quality = _rows_to_labels(res, split.unlabelled)
        thr, how = _threshold(cfg, pred)
        kept = {i: bool(np.isfinite(q) and q >= thr) for i, q in quality.items()}
        fallback = None
        if not any(kept.values()):
            # Keep the better half by predicted quality. Calibrated scores tie a lot (isotonic
            # steps), so "> median" is tried first and ">= median" only when that keeps nothing.
            med = float(np.nanmedian(list(quality.values())))
            kept = {i: bool(q > med) for i, q in quality.items()}
            op = ">"
            if not any(kept.values()):
                kept = {i: bool(q >= med) for i, q in quality.items()}
                op = ">="
            fallback = (
                f"the filter ({how}) kept no label; fell back to keeping labels with "
                f"predicted quality {op} the median ({med:.3f})"
            )
            thr = med
        per_true = score_per_image(labels, split.masks, split.unlabelled)
        stats = quality_stats(
            [quality[i] for i in split.unlabelled],
            [per_true[i] for i in split.unlabelled],
            kept=[kept[i] for i in split.unlabelled],
        )
        kept_ids = [i for i in split.unlabelled if kept[i]]
        return {
            "labels": labels,
            "quality": quality,
            "true_iou": per_true,
            "kept": kept,
            "threshold": thr,
            "threshold_rule": how,
            "fallback": fallback,
            "n": len(labels),
            "n_kept": len(kept_ids),
            "iou_all": score_labels(labels, split.masks, split.unlabelled),
            "iou_kept": score_labels(labels, split.masks, kept_ids),
            "spearman": stats.spearman,
            "spearman_p": stats.spearman_p,
        }

    auto = stages.run("annotate", _auto, clear=[auto_dir])
    kept_ids = [i for i in split.unlabelled if auto["kept"][i]]
    norm = _norm_cfg(split)  # the same data-chosen scaling elnet train uses, for every run

    # 3b. SAM2-ELNet itself on the test split (scored exactly like the downstream models) ---------
    test_root, test_label_dir = out / "test", out / "testlabels"

    def _elnet_test() -> dict:
        from sam2elnet.engine.downstream import scores_from_counts

        _write_subset(test_root, split, split.test, None, with_masks=False)
        res = _annotate(
            cfg, _predictor(cfg, model_path), model_path, test_root / "images", test_label_dir
        )
        labels, _quality = _rows_to_labels(res, split.test)
        counts = counts_vs_truth(labels, split, split.test, norm=norm)
        metrics = scores_from_counts(counts.sum(axis=0))
        metrics["n_test"] = len(split.test)
        return {"metrics": metrics, "per_image": counts.tolist(), "labels": labels}

    down_direct = stages.run(
        "elnettest",
        _elnet_test,
        clear=[test_root, test_label_dir],
        key=_sha(_stat(Path(model_path))),
    )

    # per-image counts of the auto-labels vs the held-aside truth (for their confidence intervals)
    auto_counts = stages.run(
        "autocounts",
        lambda: {"per_image": counts_vs_truth(auto["labels"], split, split.unlabelled).tolist()},
        key=_sha([_stat(Path(auto["labels"][i])) for i in split.unlabelled]),
    )["per_image"]

    # 4./6. label sets for the enhancement table -----------------------------------------------
    label_sets: dict[str, dict[str, str]] = {}
    table2_rows: list[dict[str, Any]] = []
    if cfg.enhancement:
        label_sets = _enhancement_labels(cfg, stages, out, split, model_path)

    # downstream training ------------------------------------------------------------------------
    dcfg = _downstream_cfg(cfg)
    cache: dict = {}
    autolabels = auto["labels"]
    lab, unl = split.labelled, split.unlabelled
    merged = {**split.masks, **autolabels}
    runs: dict[str, tuple[list[str], dict[str, str], int]] = {
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

    test_pairs = split.pairs(split.test)
    down: dict[str, dict[str, Any]] = {}
    # learning-curve points do not change the trained model; without them the key is the one of
    # runs made before curves existed, so those trainings are reused (--curve-points 0)
    dcfg_key = {k: v for k, v in dcfg.to_dict().items() if k != "curve_points" or v > 1}
    for name, (ids, labels, _cost) in runs.items():
        if not ids:
            down[name] = {"skipped": "no training labels (the filter kept none)"}
            continue
        pairs = split.pairs(ids, labels)
        # labels by path *and* file state: a re-run earlier stage rewrites them under the same names
        fp = _sha(
            {
                "pairs": [(str(a), str(b), *_stat(b)) for a, b in pairs],
                "cfg": dcfg_key,
                "norm": norm.model_dump(mode="json"),
                "test": [str(a) for a, _ in test_pairs],
                "eval": DOWNSTREAM_EVAL_VERSION,
                **({"roads": True} if roads else {}),
            }
        )
        cache_file = out / "downstream" / "by_fingerprint" / f"{fp}.json"

        def _train_one(
            pairs: list = pairs, cache_file: Path = cache_file, name: str = name
        ) -> dict:
            from sam2elnet.engine.downstream import train_and_evaluate

            if cache_file.is_file():  # the same labels were trained under another setting name
                return json.loads(cache_file.read_text(encoding="utf-8"))
            res = train_and_evaluate(
                pairs, test_pairs, dcfg, norm_cfg=norm, cache=cache, roads=roads
            )
            d = _json_safe(res.to_dict())
            write_json_atomic(cache_file, d)
            return d

        down[name] = stages.run(f"downstream_{name}", _train_one, key=fp)

    # results ------------------------------------------------------------------------------------
    down["elnet_direct"] = {**down_direct, "n_train": len(lab)}
    runs["elnet_direct"] = (lab, split.masks, len(lab))
    test_groups = group_of(split, split.test)
    table1 = []
    per_image_rows: list[tuple[str, str, str, str, list[int]]] = []
    for key, title in TABLE1_SETTINGS.items():
        r = down.get(key, {})
        ids, _labels, cost = runs[key]
        row = _row(key, title, r, cost, len(ids))
        add_intervals(row, r.get("per_image"), split.test, test_groups, seed=BOOTSTRAP_SEED)
        table1.append(row)
        per_image_rows += _csv_rows(key, "test", split.test, test_groups, r.get("per_image"))
    if cfg.enhancement:
        for src, sets in label_sets.items():
            for method in sets:
                key = f"enh_{src}_{method}"
                r = down.get(key, {})
                row = _row(
                    key, TABLE2_METHODS.get(method, method), r, runs[key][2], len(split.pool)
                )
                add_intervals(row, r.get("per_image"), split.test, test_groups, seed=BOOTSTRAP_SEED)
                per_image_rows += _csv_rows(
                    key, "test", split.test, test_groups, r.get("per_image")
                )
                row["labels"] = "simulated coarse" if src == "sim" else "dataset's own"
                row["method"] = method
                row["source"] = src
                li = stages.run(
                    f"labelscore_{src}_{method}",
                    lambda sets=sets, method=method, src=src: _label_iou(split, sets[method], src),
                    key=_sha([_stat(Path(p)) for p in sets[method].values()]),
                )
                row.update({f"label_{k}": v for k, v in li.items()})
                table2_rows.append(row)
    unl_groups = group_of(split, split.unlabelled)
    auto_stats = {"iou_all": dict(auto["iou_all"]), "iou_kept": dict(auto["iou_kept"])}
    idx = {i: n for n, i in enumerate(split.unlabelled)}
    for name, ids in (("iou_all", split.unlabelled), ("iou_kept", kept_ids)):
        sub = [auto_counts[idx[i]] for i in ids]
        add_intervals(auto_stats[name], sub, ids, unl_groups, seed=BOOTSTRAP_SEED)
    per_image_rows += _csv_rows(
        "autolabels", "unlabelled", split.unlabelled, unl_groups, auto_counts
    )
    _write_per_image_csv(out / "per_image.csv", per_image_rows)
    verdict = verdict_lines(table1, {k: down.get(k, {}).get("per_image") for k in TABLE1_SETTINGS})

    results = {
        "version": RESULTS_VERSION,
        "data": str(Path(cfg.data).resolve()),
        "settings": {**ident, **{k: getattr(cfg, k) for k in cfg.DOWNSTREAM}},
        "weights": {"path": weights, "note": weights_note, "random_init": weights is None},
        "split": {
            "labelled": len(lab),
            "unlabelled": len(unl),
            "test": len(split.test),
            "test_source": split.test_source,
            "modality": split.modality,
            "layout": split.layout,
        },
        "elnet": {k: elnet.get(k) for k in ("model", "best_epoch", "best_val_iou", "quality")},
        "autolabels": {
            k: auto[k]
            for k in (
                "n",
                "n_kept",
                "threshold",
                "threshold_rule",
                "fallback",
                "iou_all",
                "iou_kept",
                "spearman",
                "spearman_p",
            )
        }
        | auto_stats,
        "downstream_config": dcfg.to_dict(),
        "table1": table1,
        "table2": table2_rows,
        "verdict": verdict,
        "bootstrap": {
            "resamples": BOOTSTRAP_RESAMPLES,
            "confidence": 0.95,
            "seed": BOOTSTRAP_SEED,
            "unit": "image",
            "method": "percentile",
        },
        "groups": sorted(set(test_groups.values())),
        "per_image_file": "per_image.csv",
        "curves_file": "curves.png"
        if any(len(row.get("curve") or []) > 1 for row in table1 + table2_rows)
        else None,
        "notes": split.notes
        + ([auto["fallback"]] if auto.get("fallback") else [])
        + (
            [
                f"Every downstream model trains for {cfg.downstream_epochs} epochs, so settings with "
                "fewer training images also get proportionally fewer optimiser steps; "
                "--downstream-steps gives every setting the same number of updates instead."
            ]
            if cfg.downstream_steps is None
            else []
        ),
        "stages": dict(stages.status),
        "stage_seconds": dict(stages.seconds),
        "seconds_this_run": time.perf_counter() - t_start,
    }
    results = _json_safe(results)
    write_json_atomic(out / "results.json", results)
    write_text_atomic(out / "results.md", render_markdown(results))
    _plot(results, out / "results.png")
    if results.get("curves_file"):
        _plot_curves(results, out / results["curves_file"])
    if cfg.report:
        _report(cfg, results, split, auto, out)
    return results


# ------------------------------------------------------------------- per-image counts and intervals
def counts_vs_truth(
    labels: dict[str, str], split: Split, ids: Sequence[str], norm: Any | None = None
) -> np.ndarray:
    """(N, 4) int64 confusion counts [tp, fp, fn, tn] of ``labels`` vs the true masks, per id.

    Pixels the truth marks as ignore / nodata are not counted; with ``norm`` (a normalisation
    config) the image's own nodata pixels are left out too, exactly as the downstream evaluation
    (:func:`sam2elnet.engine.downstream.confusion_per_image`) does, so rows scored either way are
    comparable.
    """
    from sam2elnet.data.raster import read_mask, read_mask_valid
    from sam2elnet.engine.metrics import confusion

    rows = np.zeros((len(ids), 4), dtype=np.int64)
    for n, i in enumerate(ids):
        if norm is not None:
            from sam2elnet.engine.downstream import load_pair

            _x, t, valid = load_pair(Path(split.images[i]), Path(split.masks[i]), norm)
        else:
            t, valid = read_mask_valid(split.masks[i])
        c = confusion(read_mask(labels[i], shape=t.shape), t, valid)
        rows[n] = (c.tp, c.fp, c.fn, c.tn)
    return rows


def group_of(split: Split, ids: Sequence[str]) -> dict[str, str]:
    """Reporting group of each id: the SOS sensor (``palsar`` / ``sentinel``, the sub-folder the
    image lies in) for the SOS layout, else one group ``all``."""
    from sam2elnet.data.datasets import SOS_SENSORS

    out = {}
    for i in ids:
        g = "all"
        if split.layout == "sos":
            parts = Path(split.images[i]).parts
            g = next((p for p in reversed(parts) if p in SOS_SENSORS), "all")
        out[i] = g
    return out


def _ci(counts: Any, seed: int) -> list[float] | None:
    from sam2elnet.engine.metrics import bootstrap_iou_ci

    if counts is None or len(counts) < 2:
        return None
    ci = bootstrap_iou_ci(counts, seed=seed)
    return None if ci is None else [ci[0], ci[1]]


def add_intervals(
    row: dict[str, Any],
    per_image: Sequence[Sequence[int]] | None,
    ids: Sequence[str],
    groups: dict[str, str],
    seed: int = BOOTSTRAP_SEED,
) -> None:
    """Add ``iou_ci`` (bootstrap 95 % interval over images) and ``by_group`` (per sensor: n, IoU,
    its interval, F1, precision, recall, two-class mIoU) to a table row, in place.

    ``per_image`` are the (N, 4) counts of ``ids`` in that order; None (a skipped setting) adds
    ``iou_ci = None`` and no groups. Raises ValueError when counts and ids differ in length.
    """
    from sam2elnet.engine.downstream import scores_from_counts

    if per_image is None or len(ids) == 0:
        row["iou_ci"] = None
        row["by_group"] = {}
        return
    c = np.asarray(per_image, dtype=np.int64).reshape(-1, 4)
    if len(c) != len(ids):
        raise ValueError(f"{len(c)} per-image counts for {len(ids)} images")
    row["iou_ci"] = _ci(c, seed)
    by: dict[str, Any] = {}
    for g in sorted(set(groups[i] for i in ids)):
        sel = np.array([groups[i] == g for i in ids])
        sc = scores_from_counts(c[sel].sum(axis=0))
        by[g] = {
            "n": int(sel.sum()),
            **{k: sc[k] for k in ("iou", "f1", "precision", "recall", "miou")},
            "iou_ci": _ci(c[sel], seed),
        }
    row["by_group"] = by


def _csv_rows(
    setting: str, part: str, ids: Sequence[str], groups: dict[str, str], per_image: Any
) -> list[tuple[str, str, str, str, list[int]]]:
    if per_image is None:
        return []
    return [
        (setting, part, i, groups[i], [int(v) for v in c])
        for i, c in zip(ids, per_image, strict=True)
    ]


def _write_per_image_csv(path: Path, rows: list[tuple[str, str, str, str, list[int]]]) -> None:
    """per_image.csv: setting, part (test / unlabelled), id, group, tp, fp, fn, tn (pixels)."""
    lines = ["setting,part,id,group,tp,fp,fn,tn"]
    lines += [f"{s},{p},{i},{g},{c[0]},{c[1]},{c[2]},{c[3]}" for s, p, i, g, c in rows]
    write_text_atomic(path, "\n".join(lines) + "\n")


def _pct(v: float) -> str:
    return f"{100 * v:.1f} %"


def verdict_lines(
    table1: list[dict[str, Any]], per_image: dict[str, Any], target: float = TARGET_RATIO
) -> list[str]:
    """Plain sentences: do (c) and (d) reach ``target`` x the IoU of (a), and at what labelling cost.

    The ratio's interval is a paired bootstrap over the same test images
    (:func:`sam2elnet.engine.metrics.bootstrap_ratio_ci`); the verdict is "reaches" when the point
    ratio is >= ``target``, and says whether the interval's lower end clears it too.
    """
    from sam2elnet.engine.metrics import bootstrap_ratio_ci

    rows = {r["setting"]: r for r in table1}
    a = rows.get("full")
    if not a or a.get("iou") in (None, 0) or a.get("skipped"):
        why = "was not trained" if not a or a.get("skipped") else "has test IoU 0"
        return [f"{TABLE1_SETTINGS['full']} {why}, so no ratio to it can be given."]
    out = []
    for key in ("auto_filtered", "fraction_auto_filtered"):
        r = rows.get(key)
        name = TABLE1_SETTINGS[key].split(" ", 1)[0]
        if not r or r.get("skipped") or r.get("iou") is None:
            out.append(f"{name} was not trained ({(r or {}).get('skipped', 'no result')}).")
            continue
        ratio = r["iou"] / a["iou"]
        ci = None
        if per_image.get(key) is not None and per_image.get("full") is not None:
            ci = bootstrap_ratio_ci(per_image[key], per_image["full"], seed=BOOTSTRAP_SEED)
        reach = "reaches" if ratio >= target else "does not reach"
        text = (
            f"{TABLE1_SETTINGS[key]} {reach} {target:.0%} of (a): IoU {r['iou']:.3f} vs "
            f"{a['iou']:.3f} = {_pct(ratio)} of (a)"
        )
        if ci is not None:
            text += f" (paired bootstrap 95 % CI of the ratio {_pct(ci[0])} – {_pct(ci[1])}"
            if ci[0] >= target:
                text += f"; the whole interval is above {target:.0%})"
            elif ci[1] < target:
                text += f"; the whole interval is below {target:.0%})"
            else:
                text += f"; the interval contains {target:.0%}, so the data cannot decide)"
        ca, cr = a.get("iou_ci"), r.get("iou_ci")
        if ca and cr:
            overlap = cr[0] <= ca[1] and ca[0] <= cr[1]
            text += "; the two IoUs' 95 % CIs " + ("overlap" if overlap else "do not overlap")
        saving = 1.0 - r["hand_labels"] / a["hand_labels"] if a["hand_labels"] else 0.0
        text += (
            f". It uses {r['hand_labels']} hand labels instead of {a['hand_labels']} "
            f"({_pct(saving)} fewer)."
        )
        out.append(text)
    return out


def score_per_image(
    labels: dict[str, str], truth: dict[str, str], ids: Sequence[str]
) -> dict[str, float]:
    """True IoU of each label (id -> IoU; truth ignore / nodata pixels not counted)."""
    from sam2elnet.data.raster import read_mask, read_mask_valid
    from sam2elnet.engine.metrics import confusion, scores

    out = {}
    for i in ids:
        t, valid = read_mask_valid(truth[i])
        out[i] = scores(confusion(read_mask(labels[i], shape=t.shape), t, valid))["iou"]
    return out


ROAD_KEYS = ("road_correctness", "road_completeness", "road_quality", "road_connectivity")


def _road_domain(split: Split) -> Any:
    """Whether the experiment's data are roads (sam2elnet.data.domain.detect_domain on the
    training pool's true masks): the tables then add the road measures."""
    from sam2elnet.data.domain import detect_domain

    return detect_domain(
        [split.masks[i] for i in split.pool], layout=split.layout, modality=split.modality
    )


def _row(key: str, title: str, r: dict, cost: int, n_train: int) -> dict[str, Any]:
    m = r.get("metrics", {})
    return {
        "setting": key,
        "title": title,
        "hand_labels": cost,
        "train_images": n_train,
        "iou": m.get("iou"),
        "f1": m.get("f1"),
        "precision": m.get("precision"),
        "recall": m.get("recall"),
        "miou": m.get("miou"),
        **{k: m[k] for k in ROAD_KEYS if k in m},
        "train_seconds": r.get("train_seconds"),
        "curve": r.get("curve") or [],
        "skipped": r.get("skipped"),
    }


def _label_iou(split: Split, labels: dict[str, str], src: str) -> dict[str, Any]:
    """Label IoU vs truth: all pool images and the unlabelled part (never seen by SAM2-ELNet)."""
    if src == "own" and split.own_is_truth:
        return {"iou_all": None, "iou_unlabelled": None, "note": "no separate truth"}
    return {
        "iou_all": score_labels(labels, split.masks, split.pool)["iou"],
        "iou_unlabelled": score_labels(labels, split.masks, split.unlabelled)["iou"],
    }


def _enhancement_labels(
    cfg: ExperimentConfig, stages: Stages, out: Path, split: Split, model_path: str
) -> dict[str, dict[str, dict[str, str]]]:
    """Label sets {source: {method: {id: path}}} for the enhancement table (cached stages)."""
    from sam2elnet.data.coarse import degrade, file_seed
    from sam2elnet.data.raster import read_mask, write_mask

    sim_dir = out / "labels" / "sim" / "coarse"

    def _degrade() -> dict:
        ious = []
        for i in split.pool:
            m = read_mask(split.masks[i])
            r = degrade(m, cfg.coarse_profile, cfg.coarse_severity, seed=file_seed(cfg.seed, i))
            write_mask(sim_dir / f"{i}.png", r.mask)
            ious.append(r.iou)
        return {"mean_iou": float(np.mean(ious)), "n": len(ious)}

    sources: dict[str, dict[str, str]] = {}
    if "sim" in cfg.sources:
        stages.run("coarse_sim", _degrade, clear=[sim_dir])
        sources["sim"] = {i: str(sim_dir / f"{i}.png") for i in split.pool}
    if "own" in cfg.sources:
        sources["own"] = dict(split.own)
    result: dict[str, dict[str, dict[str, str]]] = {}
    for src, base in sources.items():
        sets: dict[str, dict[str, str]] = {"coarse": base}
        for method in cfg.refiners:
            rdir = out / "labels" / src / method

            def _refine(base: dict = base, rdir: Path = rdir, method: str = method) -> dict:
                from sam2elnet.engine.downstream import load_pair
                from sam2elnet.pipeline.refine import refine

                norm = _norm_cfg(split)
                for i in split.pool:
                    x, m, _ = load_pair(Path(split.images[i]), Path(base[i]), norm)
                    write_mask(rdir / f"{i}.png", refine(method, x, m))
                return {"n": len(split.pool)}

            stages.run(f"refine_{src}_{method}", _refine, clear=[rdir])
            sets[method] = {i: str(rdir / f"{i}.png") for i in split.pool}
        edir = out / "labels" / src / "elnet"
        ldir = out / "labels" / src / "input"

        def _enh(base: dict = base, edir: Path = edir, ldir: Path = ldir) -> dict:
            for i in split.pool:
                link_or_copy(Path(base[i]), ldir / f"{i}{Path(base[i]).suffix.lower()}")
            res = _enhance(
                cfg, _predictor(cfg, model_path), model_path, out / "pool" / "images", ldir, edir
            )
            labels, quality = _rows_to_labels(res, split.pool)
            return {"labels": labels, "quality": quality}

        enh = stages.run(f"enhance_{src}", _enh, clear=[edir, ldir])
        sets["elnet"] = enh["labels"]
        result[src] = sets
    return result


def _norm_cfg(split: Split) -> Any:
    """Normalisation chosen from the training pool's images, exactly as ``elnet train`` chooses it
    (:func:`sam2elnet.data.normalize.fit_normalization`); never looks at the test images."""
    from sam2elnet.data.normalize import fit_normalization

    return fit_normalization([split.images[i] for i in sorted(split.pool)], split.modality)


# ----------------------------------------------------------------------------------- reporting
def _f(v: Any, nd: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _iou_ci(row: dict[str, Any]) -> str:
    """``0.712 [0.690, 0.733]`` (IoU and its bootstrap interval), or the IoU alone."""
    ci = row.get("iou_ci")
    if row.get("iou") is None:
        return "–"
    return f"{_f(row['iou'])} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else _f(row["iou"])


def _group_table(
    title: str, rows: list[dict[str, Any]], groups: list[str], name: Callable[[dict], str]
) -> list[str]:
    """Per-sensor lines (IoU with CI, F1, precision, recall, mIoU) of a table's rows."""
    lines = [
        "",
        f"### {title}",
        "",
        "| setting | sensor | test images | IoU [95 % CI] | F1 | precision | recall | mIoU |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        for g in groups:
            gr = (row.get("by_group") or {}).get(g)
            if not gr:
                continue
            lines.append(
                f"| {name(row)} | {g} | {gr['n']} | {_iou_ci(gr)} | {_f(gr['f1'])} | "
                f"{_f(gr['precision'])} | {_f(gr['recall'])} | {_f(gr['miou'])} |"
            )
    return lines


def _road_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Road measures of the table rows that have them (road data; empty list otherwise)."""
    have = [row for row in rows if any(row.get(k) is not None for k in ROAD_KEYS)]
    if not have:
        return []
    lines = [
        "",
        "Road measures of the same models (centre lines of prediction and truth within 3 px, "
        "lengths summed over the test images; Wiedemann et al. 1998; docs/evaluation.md):",
        "",
        "| setting | road correctness | road completeness | road quality | road connectivity |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in have:
        lines.append(f"| {row['title']} | " + " | ".join(_f(row.get(k)) for k in ROAD_KEYS) + " |")
    return lines


def render_markdown(r: dict[str, Any]) -> str:
    """results.md: both tables, labelling cost, auto-label quality, settings and weights."""
    s = r["settings"]
    a = r["autolabels"]
    sp = r["split"]
    lines = [
        "# SAM2-ELNet protocol experiment",
        "",
        f"Data: `{r['data']}` ({sp['layout']} layout, {sp['modality']}). "
        f"Training pool {sp['labelled'] + sp['unlabelled']} images: {sp['labelled']} labelled "
        f"({s['fraction']:.0%}), {sp['unlabelled']} treated as unlabelled. "
        f"Test: {sp['test']} images ({sp['test_source']}).",
        "",
        f"**Encoder:** {r['weights']['note']}",
        "",
        "## Table 1 — automatic annotation (downstream U-Net, test split, pixel-aggregated)",
        "",
        "IoU = oil (foreground) IoU with its bootstrap 95 % confidence interval over test images; "
        "mIoU = mean of oil and background IoU (the two-class mIoU SOS papers quote). Row (f) is "
        "SAM2-ELNet itself annotating the test images, to compare with (b), a plain U-Net trained "
        "on the same labelled fraction.",
        "",
        "| setting | hand labels | train images | IoU [95 % CI] | F1 | precision | recall | mIoU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in r["table1"]:
        if row.get("skipped"):
            lines.append(
                f"| {row['title']} | {row['hand_labels']} | {row['train_images']} | "
                f"skipped: {row['skipped']} | | | | |"
            )
            continue
        lines.append(
            f"| {row['title']} | {row['hand_labels']} | {row['train_images']} | "
            f"{_iou_ci(row)} | {_f(row['f1'])} | {_f(row['precision'])} | "
            f"{_f(row['recall'])} | {_f(row.get('miou'))} |"
        )
    lines += _road_table(r["table1"])
    if r.get("verdict"):
        lines += ["", "**Verdict.**", ""] + [f"- {v}" for v in r["verdict"]]
    groups = r.get("groups") or []
    if len(groups) > 1:
        lines += _group_table("Table 1 per sensor", r["table1"], groups, lambda row: row["title"])
    ia, ik = a["iou_all"], a["iou_kept"]
    lines += [
        "",
        f"Auto-labels: {a['n']} generated, {a['n_kept']} kept by the quality filter "
        f"({a['threshold_rule']}). IoU against the held-aside true labels: all {_iou_ci(ia)} "
        f"(mean per image {_f(ia['mean_image_iou'])}), kept {_iou_ci(ik)} "
        f"(mean per image {_f(ik['mean_image_iou'])}). Spearman correlation of predicted quality "
        f"vs true IoU: {_f(a['spearman'])}.",
    ]
    if len(groups) > 1 and ia.get("by_group"):
        per = []
        for g in groups:
            ga, gk = ia["by_group"].get(g), (ik.get("by_group") or {}).get(g)
            if ga:
                per.append(
                    f"{g}: all {_iou_ci(ga)} (n={ga['n']}), kept "
                    + (f"{_iou_ci(gk)} (n={gk['n']})" if gk else "–")
                )
        lines += ["", "Auto-label IoU per sensor: " + "; ".join(per) + "."]
    lines += [
        "",
        "Labelling cost = number of hand-drawn labels a setting needs; auto-label settings need only "
        "the labelled fraction (used to fine-tune SAM2-ELNet).",
    ]
    if r["table2"]:
        lines += [
            "",
            "## Table 2 — label enhancement vs classical refinement (same downstream U-Net)",
            "",
            "| training labels | method | hand labels | label IoU (all) | label IoU (unlabelled part) "
            "| test IoU [95 % CI] | F1 | precision | recall | mIoU |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in r["table2"]:
            lines.append(
                f"| {row['labels']} | {row['title']} | {row['hand_labels']} | "
                f"{_f(row.get('label_iou_all'))} | {_f(row.get('label_iou_unlabelled'))} | "
                f"{_iou_ci(row)} | {_f(row['f1'])} | {_f(row['precision'])} | "
                f"{_f(row['recall'])} | {_f(row.get('miou'))} |"
            )
        if len(groups) > 1:
            lines += _group_table(
                "Table 2 per sensor",
                r["table2"],
                groups,
                lambda row: f"{row['labels']}: {row['title']}",
            )
        lines += [
            "",
            "Label IoU is against the true labels; 'unlabelled part' are the images SAM2-ELNet never saw "
            "a true label of. Hand labels: every training image carries a coarse hand label; "
            "SAM2-ELNet additionally needed the precise labels of the labelled fraction to learn from.",
        ]
    lines += _curve_lines(r)
    if r.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in r["notes"]]
    d = r["downstream_config"]
    lines += [
        "",
        "## Settings",
        "",
        f"- SAM2-ELNet: size {s['size']}, trunk training {s['trunk']}, {s['epochs']} epochs, "
        f"{s['image_size']} px, batch {s['batch_size']}, {s['precision']}, seed {s['seed']}; "
        f"best epoch {r['elnet'].get('best_epoch')}, validation IoU {_f(r['elnet'].get('best_val_iou'))}.",
        f"- Downstream: {d['model']} {d['model_options']}, "
        + (f"{d['steps']} optimiser steps" if d.get("steps") else f"{d['epochs']} epochs")
        + f", {d['image_size']} px crops (evaluated at native size), "
        f"batch {d['batch_size']}, lr {d['lr']} (AdamW, warm-up + cosine), {d['precision']}, "
        f"seed {d['seed']} — identical for every setting.",
        f"- Coarse-label simulator: profile {s['coarse_profile']}, severity {s['coarse_severity']}.",
        *(
            [
                f"- Confidence intervals: percentile bootstrap (Efron & Tibshirani 1993) over "
                f"{r['bootstrap']['unit']}s, {r['bootstrap']['resamples']} resamples with "
                f"replacement, seed {r['bootstrap']['seed']}; each resample's IoU is "
                "pixel-aggregated from its images' confusion counts (per_image.csv)."
            ]
            if r.get("bootstrap")
            else []
        ),
        f"- Stages this run: {', '.join(f'{k}={v}' for k, v in r['stages'].items())}.",
        f"- Wall time this run: {r['seconds_this_run']:.0f} s.",
        "",
    ]
    return "\n".join(lines)


def convergence(curve: Sequence[dict[str, Any]]) -> tuple[float | None, str]:
    """(IoU change between the last two curve points, "converged" / "still rising" / "falling");
    (None, "no curve") with fewer than two points. Threshold: :data:`CONVERGED_GAIN`."""
    pts = [p for p in curve if p.get("iou") is not None]
    if len(pts) < 2:
        return None, "no curve"
    gain = float(pts[-1]["iou"] - pts[-2]["iou"])
    if abs(gain) <= CONVERGED_GAIN:
        return gain, "converged"
    return gain, "still rising" if gain > 0 else "falling"


def _curve_lines(r: dict[str, Any]) -> list[str]:
    """results.md section: the learning-curve figure and one line per model with its last change."""
    rows = [row for row in r["table1"] + r["table2"] if len(row.get("curve") or []) > 1]
    if not rows or not r.get("curves_file"):
        return []
    steps = [int(p["step"]) for p in rows[0]["curve"]]
    lines = [
        "",
        "## Downstream learning curves",
        "",
        f"![test IoU during training]({r['curves_file']})",
        "",
        "Each downstream model scored on the test split at evenly spaced optimiser steps "
        f"(inference only). 'converged' = test IoU changed by at most {CONVERGED_GAIN:.2f} over "
        "the last interval.",
        "",
        "| setting | " + " | ".join(f"step {s}" for s in steps) + " | last change | status |",
        "|---|" + "---:|" * len(steps) + "---:|---|",
    ]
    for row in rows:
        name = row["title"] if "labels" not in row else f"{row['labels']}: {row['title']}"
        by_step = {int(p["step"]): p.get("iou") for p in row["curve"]}
        gain, status = convergence(row["curve"])
        lines.append(
            f"| {name} | "
            + " | ".join(_f(by_step.get(s)) for s in steps)
            + f" | {'–' if gain is None else f'{gain:+.3f}'} | {status} |"
        )
    return lines


def _plot_curves(r: dict[str, Any], path: Path) -> None:
    """curves.png: test IoU vs optimiser step, one line per downstream setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sam2elnet.utils.atomic import atomic_path

    fig, ax = plt.subplots(figsize=(8, 5))
    for row in r["table1"] + r["table2"]:
        pts = [p for p in row.get("curve") or [] if p.get("iou") is not None]
        if len(pts) < 2:
            continue
        name = row["title"] if "labels" not in row else f"{row['labels']}: {row['method']}"
        ax.plot([p["step"] for p in pts], [p["iou"] for p in pts], marker="o", label=name)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("test IoU (pixel-aggregated)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("Downstream learning curves (same steps for every setting)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def _plot(r: dict[str, Any], path: Path) -> None:
    """results.png: downstream test IoU per setting and its labelling cost (hand labels)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sam2elnet.utils.atomic import atomic_path

    rows = [row for row in r["table1"] + r["table2"]]
    names = [
        (row["title"] if row in r["table1"] else f"{row['labels']}: {row['method']}")
        for row in rows
    ]
    iou = [row["iou"] if row["iou"] is not None else 0.0 for row in rows]
    cost = [row["hand_labels"] for row in rows]
    colors = ["tab:blue"] * len(r["table1"]) + ["tab:orange"] * len(r["table2"])
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.45 * len(rows) + 1.6), sharey=True)
    y = np.arange(len(rows))
    axes[0].barh(y, iou, color=colors)
    axes[0].set_yticks(y, names, fontsize=8)
    axes[0].invert_yaxis()
    axes[0].set_xlabel("downstream test IoU")
    axes[0].set_xlim(0, 1)
    for yy, v in zip(y, iou, strict=True):
        axes[0].text(v + 0.01, yy, f"{v:.3f}", va="center", fontsize=7)
    axes[1].barh(y, cost, color=colors)
    axes[1].set_xlabel("labelling cost (hand labels)")
    title = "SAM2-ELNet protocol" + (
        " (random-init encoder)" if r["weights"]["random_init"] else ""
    )
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def _report(cfg: ExperimentConfig, r: dict[str, Any], split: Split, auto: dict, out: Path) -> None:
    """report.html: tables, the plot, and the auto-labels next to the held-aside truth."""
    from sam2elnet.pipeline.report import ReportItem, write_protocol_report

    items = [
        ReportItem(
            name=i,
            image=split.images[i],
            output=auto["labels"][i],
            truth=split.masks[i],
            predicted_iou=auto["quality"].get(i),
            true_iou=auto["true_iou"].get(i),
            kept=auto["kept"].get(i),
        )
        for i in split.unlabelled
    ]
    write_protocol_report(
        out / "report.html",
        r,
        items,
        title="SAM2-ELNet protocol experiment",
        notes=[r["weights"]["note"], *r["notes"]],
        figure=(out / "results.png").read_bytes(),
        max_items=60,
    )
