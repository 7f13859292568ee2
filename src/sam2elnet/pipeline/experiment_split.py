"""The protocol's split: labelled fraction, unlabelled pool and test split, written as subsets.

A reproducible ``fraction`` of the training pool keeps its labels; the rest is treated as
unlabelled (its true labels are kept aside for scoring only). The test split is the dataset's own
when it has one, else a fixed, stratified hold-out. Part of :mod:`sam2elnet.pipeline.experiment`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.errors import DataError, UserError
from sam2elnet.pipeline.experiment_config import OWN_IS_TRUTH_NOTE, ExperimentConfig
from sam2elnet.utils.advice import plural
from sam2elnet.utils.atomic import write_json_atomic
from sam2elnet.utils.paths import link_or_copy

log = logging.getLogger(__name__)


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
    """Discover the dataset and assign labelled / unlabelled / test roles reproducibly.

    The modality is decided here, once (``cfg.modality``, else the layout, ``dataset.json`` or
    the images; said in one line, a warning when optical is assumed for grey images), and kept
    in the split: every later stage reads it from there (the subsets' ``dataset.json``, the
    downstream normalisation :func:`norm_config`, the domain).

    With ``cfg.positive_values`` the chosen pairs' masks (and own coarse labels) are decoded into
    ``OUT/truth/`` and the split points at those copies.

    Raises:
        DataError: no or too few labelled pairs, or a class-index mask without
            ``--positive-values`` (the mask reader's message, naming the values found).
        UserError: ``fraction`` leaves no labelled or no unlabelled part.
    """
    from sam2elnet.data.layouts import discover
    from sam2elnet.data.modality import with_modality
    from sam2elnet.data.splits import mask_strata, split_fraction
    from sam2elnet.utils.progress import line

    given = None if cfg.modality == "auto" else cfg.modality
    index, modality = with_modality(discover(cfg.data, modality=given))
    if modality.undecided:
        log.warning(modality.line())
    else:
        line(modality.line())
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
                f"only {plural(len(ids), 'labelled pair')}; the experiment "
                "needs at least 6 (test, labelled and unlabelled parts)",
                cfg.data,
            )
        strata = mask_strata(
            [by_id[i] for i in ids], cfg.progress, positive_values=cfg.positive_values
        )
        test_ids, train_ids = split_fraction(
            ids, cfg.test_fraction, seed=cfg.split_seed, strata=strata
        )
        test_source = (
            f"held-out {cfg.test_fraction:.0%} of the labelled pairs (seed {cfg.split_seed})"
        )
    train_ids = _cap(train_ids, cfg.max_train, cfg.seed)
    test_ids = _cap(test_ids, cfg.max_test, cfg.split_seed + 1)
    if len(train_ids) < 4:
        n = len(train_ids)
        raise DataError(f"only {plural(n, 'training pair')}; need at least 4", cfg.data)
    strata = mask_strata(
        [by_id[i] for i in train_ids], cfg.progress, positive_values=cfg.positive_values
    )
    labelled, unlabelled = split_fraction(train_ids, cfg.fraction, seed=cfg.seed, strata=strata)
    if len(labelled) < 2 or not unlabelled:
        raise UserError(
            f"--fraction {cfg.fraction} of {len(train_ids)} training pairs leaves {len(labelled)} "
            f"labelled and {len(unlabelled)} unlabelled; use more data or another fraction",
            cfg.data,
        )
    has_coarse = all(by_id[i].coarse is not None for i in train_ids)
    masks = {i: str(by_id[i].mask) for i in train_ids + test_ids}
    own = {i: str(by_id[i].coarse) for i in train_ids} if has_coarse else None
    if cfg.positive_values:
        masks, own = _decode_class_index(cfg, masks, own)
        notes.append(class_index_note(cfg.positive_values))
    if own is None:
        own = {i: masks[i] for i in train_ids}
    if not has_coarse:
        notes.append(OWN_IS_TRUTH_NOTE)
    return Split(
        modality=index.modality,
        layout=index.layout,
        labelled=labelled,
        unlabelled=unlabelled,
        test=test_ids,
        images={i: str(by_id[i].image) for i in train_ids + test_ids},
        masks=masks,
        own=own,
        own_is_truth=not has_coarse,
        test_source=test_source,
        notes=notes,
    )


def class_index_note(values: Sequence[float]) -> str:
    """The results.md note of class-index masks decoded by ``values`` (--positive-values)."""
    return (
        f"The dataset's masks are class-index masks: {'value' if len(values) == 1 else 'values'} "
        + ", ".join(f"{v:g}" for v in values)
        + " read as object, every other value as background (--positive-values); the decoded "
        "0/255 copies every stage reads are in truth/."
    )


def _decode_class_index(
    cfg: ExperimentConfig, masks: dict[str, str], own: dict[str, str] | None
) -> tuple[dict[str, str], dict[str, str] | None]:
    """Decode the dataset's class-index masks (and own coarse labels) once with
    ``cfg.positive_values`` into ``OUT/truth/`` (0 / 255, 127 = ignore, georeference kept).

    Every later stage mixes these with labels this project wrote (auto-labels, enhanced labels),
    so the class values are applied here, to the dataset's files only, and nowhere else.
    """
    from sam2elnet.data.masks import write_decoded_mask
    from sam2elnet.utils.progress import track

    root = Path(cfg.out) / "truth"
    out = {
        i: str(write_decoded_mask(p, root / "masks" / i, cfg.positive_values))
        for i, p in track(masks.items(), "decode masks", "mask", cfg.progress)
    }
    if own is not None:
        own = {
            i: str(write_decoded_mask(p, root / "coarse" / i, cfg.positive_values))
            for i, p in own.items()
        }
    return out, own


def write_subset(
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


def road_domain(split: Split) -> Any:
    """Whether the experiment's data are roads (:func:`sam2elnet.data.domain.detect_domain` on the
    training pool's true masks): the tables then add the road measures."""
    from sam2elnet.data.domain import detect_domain

    return detect_domain(
        [split.masks[i] for i in split.pool], layout=split.layout, modality=split.modality
    )


def norm_config(split: Split) -> Any:
    """Normalisation chosen from the training pool's images, exactly as ``elnet train`` chooses it
    (:func:`sam2elnet.data.norm_fit.fit_normalization`); never looks at the test images."""
    from sam2elnet.data.norm_fit import fit_normalization

    return fit_normalization([split.images[i] for i in sorted(split.pool)], split.modality)


def test_road_buffers(cfg: Any, split: Split) -> dict[str, float]:
    """Each test image's road buffer in px, by id in ``split.test`` order: the experiment's
    ``road_buffer`` (``cfg``: an ``ExperimentConfig``), or its ``road_buffer_m`` ground metres
    over the image's own ground pixel size
    (:func:`sam2elnet.engine.road_buffer.image_buffers_px`; header reads only). Raises
    DataError for a test image without a projected CRS with ``road_buffer_m`` (the message
    names it and says to give --road-buffer)."""
    from sam2elnet.engine.road_buffer import image_buffers_px

    paths = [Path(split.images[i]) for i in split.test]
    by_path = image_buffers_px(cfg.road_buffer, cfg.road_buffer_m, paths)
    return {i: by_path[p] for i, p in zip(split.test, paths, strict=True)}
