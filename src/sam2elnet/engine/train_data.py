"""Training data: the split, domain, normalisation and dataset items of a training run.

:func:`prepare_data` splits the labelled set reproducibly (labelled part / held out / validation),
checks the labels (degenerate masks, band counts, image/mask pairs:
:mod:`sam2elnet.engine.train_checks`) and builds the training and validation datasets;
:class:`CachedDataset` keeps decoded validation items in memory.
Used by :func:`sam2elnet.engine.train.train`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from sam2elnet.config import TrainConfig
from sam2elnet.data.runfolder import SKIPPED_CSV
from sam2elnet.engine.train_checks import check_labels, check_pairs, positive_values
from sam2elnet.errors import DataError, UserError
from sam2elnet.option_checks import api_option
from sam2elnet.utils.advice import plural
from sam2elnet.utils.batch import SkipLog

__all__ = [
    "CachedDataset",
    "TrainData",
    "init_model_normalization",
    "prepare_data",
    "split_note",
    "training_domain",
    "training_recipe",
]


# ----------------------------------------------------------------------------- data
@dataclass
class TrainData:
    norm: Any
    in_bands: int
    modality: str
    train_samples: list[Any]
    val_samples: list[Any]
    splits: dict[str, list[str]]
    source_splits: list[str] | None = None
    notes: list[str] = field(default_factory=list)
    select_by_loss: bool = False  # validation split without object pixels
    warnings: list[str] = field(default_factory=list)  # for the log, after the notes
    #: image/mask pairs that could not be read: writing RUN/skipped.csv through it
    #: (``SkipLog.write_csv``) also gives the summary warning of the pairs it did not warn about
    #: one by one
    skip_log: SkipLog = field(default_factory=lambda: SkipLog("image"))
    domain: Any = None  # sam2elnet.data.domain.DomainGuess
    #: the --init-model file's payload (model.io.read_model_file), read once for the run:
    #: normalisation and domain here, the network in train_setup.build_model_for
    init_payload: dict[str, Any] | None = None

    @property
    def skipped(self) -> list[dict[str, str]]:
        """The pairs that could not be read, one row each (image, id, reason), as in
        ``RUN/skipped.csv``: :attr:`skip_log`'s rows."""
        return self.skip_log.items


def cv_fold_meta(index: Any) -> dict[str, Any] | None:
    """The ``cv`` record ``elnet cv`` puts in a fold's ``train-data/dataset.json`` (fold name,
    the data folder, the domain it decided and why), or None for any other data folder."""
    cv = (getattr(index, "meta", None) or {}).get("cv")
    return cv if isinstance(cv, dict) else None


def training_domain(
    cfg: TrainConfig,
    index: Any,
    samples: Sequence[Any],
    init_payload: dict[str, Any] | None = None,
) -> Any:
    """The run's :class:`~sam2elnet.data.domain.DomainGuess`: ``cfg.domain`` when forced, else
    the ``--init-model``'s (fine-tuning keeps its recipe, as it keeps its normalisation: a few
    reviewed road labels must not turn a roads model into an "other" run), else detected from
    the layout, ``dataset.json`` and the training labels' shape. ``init_payload``: the
    ``--init-model`` file already read (else it is read here)."""
    from sam2elnet.data.domain import detect_domain, resolve_domain

    if cfg.domain == "auto" and cfg.init_model is not None:
        inherited = _init_model_extra(cfg, init_payload).get("train", {}).get("domain")
        if inherited in ("roads", "other"):
            why = f"the {api_option('init_model')}'s, {cfg.init_model}"
            return resolve_domain(inherited, None, why, given=False)

    if cfg.domain != "auto":
        cv = cv_fold_meta(index)
        if cv is not None and cv.get("domain") == cfg.domain:  # elnet cv decided it for all folds
            reason = str(cv.get("domain_reason", "?"))
            why = f"decided once by elnet cv for every fold: {reason}"
            given = cv.get("domain_given", reason.startswith("given: --domain"))
            return resolve_domain(cfg.domain, None, why, given=bool(given))
        return resolve_domain(cfg.domain, None)
    return detect_domain(
        [s.mask for s in samples],
        layout=index.layout,
        modality=index.modality,
        meta=index.meta,
        positive_values=positive_values(cfg),
    )


def training_recipe(cfg: TrainConfig, domain: Any) -> tuple[Any, Any, str]:
    """(LossWeights, Augmentation, one log line) of a run in ``domain``: options given win,
    ``auto`` / unset ones take the defaults, the same in every domain: no topology loss and
    :meth:`~sam2elnet.data.augment.Augmentation.for_domain`'s augmentation. Before 2026-12-04 roads took
    clDice and a stronger augmentation; 5-fold cross-validation on roads-dev measured that recipe
    3.9 road IoU points below the plain one without SAM2 weights (docs/training.md, "Recipe vs
    plain, all 5 folds"), so ``--topology-loss cldice`` and the ``--aug-*`` options give it."""
    from sam2elnet.data.augment import Augmentation
    from sam2elnet.engine.losses import LossWeights

    roads = domain is not None and domain.roads
    topo = "none" if cfg.topology_loss == "auto" else cfg.topology_loss
    weights = LossWeights(
        boundary=cfg.loss_boundary,
        deep_supervision=cfg.loss_deep_supervision,
        edge=cfg.loss_edge,
        topology=cfg.topology_weight if topo == "cldice" else 0.0,
        topology_iterations=cfg.topology_iterations,
    )
    aug = Augmentation.for_domain("roads" if roads else None)
    given = {
        "scale": cfg.aug_scale,
        "photometric": cfg.aug_photometric,
        "band_jitter": cfg.aug_band_jitter,
    }
    aug = replace(aug, **{k: v for k, v in given.items() if v is not None})
    name = "roads" if roads else "other"
    why = domain.reason if domain is not None else "not detected"
    cldice = api_option("topology_loss='cldice'", "--topology-loss cldice")
    if topo == "cldice":
        none = api_option("topology_loss='none'", "--topology-loss none")
        loss_txt = (
            f"clDice topology loss on (weight {weights.topology:g}, {cldice}; {none} turns it off)"
        )
    elif roads and cfg.topology_loss == "auto":
        loss_txt = (
            "no topology loss (auto: clDice cost road IoU on roads-dev without SAM2 weights, "
            f"docs/training.md; {cldice} adds it)"
        )
    else:
        given_none = cfg.topology_loss == "none"
        loss_txt = "no topology loss" + (
            "" if given_none else f" ({cldice} adds clDice for thin structures)"
        )
    road_txt = ", road measures in validation" if roads else ""
    domains = api_option("domain='roads'|'other'", "--domain roads|other")
    hint = "" if domain is not None and domain.given else f"; {domains} overrides"
    line = f"domain: {name} ({why}{hint}){road_txt}; {loss_txt}; augmentation: {aug.describe()}"
    return weights, aug, line


def init_model_normalization(cfg: TrainConfig, payload: dict[str, Any] | None = None) -> Any:
    """The normalisation ``cfg.init_model`` was trained with (``NormalizationConfig``), or None
    without ``--init-model``, with ``--norm-stats`` (which wins) or for a file that records none.

    Fine-tuning feeds the network the input scaling it learned (band collapse of grey-as-RGB SAR,
    fixed / dB / stats ranges): a folder of reviewed SOS JPEGs in the generic layout, without a
    ``dataset.json``, would otherwise read as 3-band optical with per-image stretches.
    ``payload``: the file already read (:func:`~sam2elnet.model.io.read_model_file`), else it is
    read here.

    Raises:
        CheckpointError: the file is not a readable sam2elnet model file.
    """
    from sam2elnet.data.normalize import NormalizationConfig
    from sam2elnet.model.io import read_model_file

    if cfg.init_model is None or cfg.norm_stats is not None:
        return None
    payload = read_model_file(cfg.init_model) if payload is None else payload
    norm = (payload.get("extra") or {}).get("normalization")
    norm = norm or (payload.get("config") or {}).get("normalization")
    return NormalizationConfig.model_validate(norm) if norm else None


def _init_model_extra(cfg: TrainConfig, payload: dict[str, Any] | None) -> dict[str, Any]:
    """The ``extra`` record of ``cfg.init_model`` (``{}`` without one, or for a file that has
    none, e.g. a model written before the record existed); ``payload``: the file already read."""
    from sam2elnet.model.io import read_model_file

    if cfg.init_model is None:
        return {}
    if payload is None:
        payload = read_model_file(cfg.init_model)
    extra = payload.get("extra")
    return extra if isinstance(extra, dict) else {}


def prepare_data(cfg: TrainConfig) -> TrainData:
    from sam2elnet.data.band_match import band_descriptions
    from sam2elnet.data.modality import with_modality
    from sam2elnet.data.norm_fit import fit_normalization, load_norm_stats, read_image_or_sample
    from sam2elnet.data.normalize import NormalizationConfig, describe
    from sam2elnet.data.splits import select_split, split_fraction
    from sam2elnet.data.zero_pixels import check_zero_training
    from sam2elnet.model.io import read_model_file

    given = None if cfg.modality == "auto" else cfg.modality
    choice = select_split(
        cfg.data, cfg.split, layout=cfg.layout, sensors=cfg.sensor, modality=given
    )
    index, modality = with_modality(choice.index, cfg.bands)
    notes = [""]  # the split line, written once the training / validation ids are known
    samples = [s for s in index.samples if s.mask is not None]
    by_id = {s.id: s for s in samples}
    ids = sorted(by_id)
    if cfg.train_ids is not None:  # an explicit id list (quality cross-fitting networks)
        want = set(cfg.train_ids)
        labelled, held_out = [i for i in ids if i in want], []
        if len(labelled) < len(want):
            k = len(want) - len(labelled)
            if len(want) == 1:
                head = "the only requested training id is not a labelled image"
            else:
                are = "is not a labelled image" if k == 1 else "are not labelled images"
                head = f"{k} of the {len(want)} requested training ids {are}"
            raise UserError(f"{head} of this data folder", cfg.data)
    elif cfg.fraction < 1.0:
        labelled, held_out = split_fraction(ids, cfg.fraction, seed=cfg.seed)
    else:
        labelled, held_out = ids, []
    if not labelled:
        raise UserError(
            f"{api_option('fraction')} {cfg.fraction} of {plural(len(ids), 'labelled image')} "
            f"selects none; raise {api_option('fraction')}",
            cfg.data,
        )
    if cfg.val_fraction > 0 and len(labelled) >= 2:
        val_ids, train_ids = split_fraction(labelled, cfg.val_fraction, seed=cfg.seed + 1)
        if not val_ids:  # at least one validation image when asked for any
            val_ids, train_ids = train_ids[:1], train_ids[1:]
    else:
        val_ids, train_ids = [], list(labelled)
    if cfg.max_train is not None and len(train_ids) > cfg.max_train:
        rng = np.random.default_rng(cfg.seed)
        train_ids = sorted(rng.choice(train_ids, cfg.max_train, replace=False).tolist())
    if not train_ids:
        raise UserError(
            "no training images left after the validation split; lower "
            f"{api_option('val_fraction')}",
            cfg.data,
        )
    # --init-model: its network's input scaling, whatever this folder's layout suggests; the
    # file is read once here (normalisation, domain, then the network: TrainData.init_payload)
    init_payload = None if cfg.init_model is None else read_model_file(cfg.init_model)
    init_norm = init_model_normalization(cfg, init_payload)
    modality_warning, modality_note = [], [modality.line()]  # logged after the normalisation
    if init_norm is not None and init_norm.sar and index.modality != "sar":
        index = replace(index, modality="sar")  # domain detection and the model file's record
        init = api_option("init_model")
        modality_note = [f"modality: sar (the {init}'s normalisation, {cfg.init_model})"]
    elif modality.undecided:
        modality_warning, modality_note = modality_note, []
    reading = init_norm or NormalizationConfig.for_modality(index.modality)
    if cfg.bands or init_norm is None:
        reading = reading.model_copy(update={"band_select": cfg.bands})
    # one batch policy: pairs that cannot be read are skipped (listed in RUN/skipped.csv)
    zeros: dict[str, float] = {}  # image -> share of untagged pixels <= 0 (check_zero_training)
    skips = check_pairs(
        [by_id[i] for i in [*train_ids, *val_ids]],
        reading,
        cfg.progress,
        positive_values(cfg),
        zeros,
    )
    bad = {s["id"] for s in skips.items}
    train_ids = [i for i in train_ids if i not in bad]
    val_ids = [i for i in val_ids if i not in bad]
    if not train_ids:
        if bad:
            raise skips.nothing_done(len(skips), cfg.data, csv=Path(cfg.out) / SKIPPED_CSV)
        raise UserError(f"no training images left; check {api_option('data')}", cfg.data)
    notes[0] = split_note(
        choice, len(ids), len(train_ids), len(val_ids), len(held_out), len(bad), cfg
    )
    train_samples = [by_id[i] for i in train_ids]
    val_samples = [by_id[i] for i in val_ids]
    val_warnings = check_labels(cfg, train_samples, val_samples)  # logged after the notes
    if cfg.norm_stats is not None:
        norm = load_norm_stats(cfg.norm_stats)
        if cfg.bands:
            norm = norm.model_copy(update={"band_select": list(cfg.bands)})
        source = f"from {cfg.norm_stats}"
    elif init_norm is not None:
        norm, source = reading, f"the {api_option('init_model')}'s, {cfg.init_model}"
    else:
        norm = fit_normalization([s.image for s in train_samples], index.modality, bands=cfg.bands)
        source = f"from {min(len(train_samples), 32)} training images"
    notes.append(f"{describe(norm)} ({source})")
    notes += modality_note
    first = read_image_or_sample(by_id[train_ids[0]].image, sar=norm.sar, bands=norm.band_select)
    names = band_descriptions(by_id[train_ids[0]].image, norm.band_select)
    if len(names) == first.bands and all(names):  # e.g. VV, VH: named in band-count errors
        norm = norm.model_copy(update={"band_names": names})
    n_low = len(norm.low or [])
    if n_low > 1 and n_low != first.bands:
        raise DataError(
            f"{api_option('norm_stats')} has statistics for {n_low} bands but the training "
            f"images have {first.bands}; compute them with `elnet stats --data` on this dataset",
            cfg.norm_stats,
        )
    used = {str(by_id[i].image) for i in [*train_ids, *val_ids]}
    zero_warning = check_zero_training({k: v for k, v in zeros.items() if k in used}, norm)
    # "unused": labelled pairs left out by --max-train (or not in train_ids), never trained on
    # nor validated on: listed so that a user (and read_id_list) can tell which they are
    seen = {*train_ids, *val_ids, *held_out, *bad}
    unused = [i for i in ids if i not in seen]
    splits = {"train": train_ids, "val": val_ids, "held_out": held_out, "unused": unused}
    domain = training_domain(cfg, index, train_samples, init_payload)
    return TrainData(
        norm=norm,
        in_bands=first.bands,
        modality=index.modality,
        train_samples=train_samples,
        val_samples=val_samples,
        splits=splits,
        source_splits=choice.used,
        notes=notes,
        warnings=modality_warning + val_warnings + ([zero_warning] if zero_warning else []),
        select_by_loss=bool(val_warnings),
        skip_log=skips,
        domain=domain,
        init_payload=init_payload,
    )


def split_note(
    choice: Any, n_pairs: int, n_train: int, n_val: int, n_held: int, n_bad: int, cfg: Any
) -> str:
    """The run's first log line: what the data folder holds and what the run uses of it, counts
    that add up (``n_pairs`` labelled pairs = training + validation + held out + unused).

    Example: ``splits found: train (6455), test (1615); using: train (6455 labelled pairs):
    training on 1646, validation 290, held out 4519 (--fraction 0.3)``.

    Args:
        choice: the :class:`~sam2elnet.data.splits.SplitChoice` the pairs come from.
        n_pairs: labelled pairs of the chosen split(s).
        n_train, n_val, n_held: ids of the run's training / validation / held-out parts.
        n_bad: pairs dropped as unreadable (``RUN/skipped.csv``), training and validation.
        cfg: the run's configuration (``fraction``, ``max_train``, ``train_ids`` are named).
    """
    if choice.found:
        found = ", ".join(f"{k} ({n})" for k, n in choice.found.items())
        pool = f"splits found: {found}; using: {', '.join(choice.used or [])} ({n_pairs} labelled pairs)"
    elif (
        cv := cv_fold_meta(choice.index)
    ) is not None:  # a fold's link folder: no splits by design
        fold = str(cv.get("fold", "?"))
        pool = (
            f"cross-validation {fold if fold.startswith('fold') else 'fold ' + fold}: "
            f"{n_pairs} labelled pairs (the fold's "
            f"training images of {cv.get('data', '?')})"
        )
    else:
        pool = f"no split folders found; {n_pairs} labelled pairs"
    parts = [f"training on {n_train}", f"validation {n_val}"]
    if n_held:
        given = api_option(f"fraction={cfg.fraction:g}", f"--fraction {cfg.fraction:g}")
        parts.append(f"held out {n_held} ({given})")
    if n_bad:
        parts.append(f"skipped {n_bad} unreadable (RUN/skipped.csv)")
    unused = n_pairs - n_train - n_val - n_held - n_bad
    if unused > 0:
        why = "not in the run's train_ids" if cfg.train_ids is not None else api_option("max_train")
        parts.append(f"unused {unused} ({why})")
    return f"{pool}: {', '.join(parts)}"


class CachedDataset(Dataset):
    """Materialises a (small, deterministic) evaluation dataset once: validation runs every epoch
    and re-decoding the same JPEGs each time would be wasted work."""

    def __init__(self, base: Dataset) -> None:
        self.items = [base[i] for i in range(len(base))]  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.items[i]
