"""Which images each fold of ``elnet cv`` trains and tests on (k-fold or cross-domain).

k-fold: a seeded permutation of the labelled ids cut into ``k`` near-equal test folds
(:func:`kfold_ids`), each fold training on the rest. Cross-domain: the images split into two
appearance groups (:func:`sam2elnet.data.domain.appearance_split`); each direction trains on
most of one group and tests on the rest of it (in-domain) and on the other group
(cross-domain) (:func:`plan_folds`). ``--max-folds`` / ``--fold`` pick the folds a run trains
(:func:`select_folds`). Running the folds: :mod:`sam2elnet.pipeline.crossval_fold`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sam2elnet.errors import DataError, UserError
from sam2elnet.pipeline.crossval_config import CVConfig

__all__ = ["Fold", "kfold_ids", "plan_folds", "select_folds"]


def kfold_ids(ids: Sequence[str], k: int, seed: int) -> list[list[str]]:
    """Split ``ids`` into ``k`` disjoint test folds of near-equal size (seeded permutation).

    Raises:
        DataError: fewer ids than folds... times two (each fold needs >= 2 training images).
    """
    ids = sorted(ids)
    if len(ids) < 2 * k:
        raise DataError(
            f"{k}-fold cross-validation needs at least {2 * k} labelled images, got {len(ids)}"
        )
    order = np.random.default_rng(
        np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 4711])
    ).permutation(len(ids))
    return [sorted(ids[j] for j in part) for part in np.array_split(order, k)]


@dataclass
class Fold:
    """One fold: the ids it trains on and its test sets."""

    name: str
    train: list[str]
    tests: dict[str, list[str]]  # test set name (test / in_domain / cross_domain) -> ids


def plan_folds(
    cfg: CVConfig, ids: list[str], samples: dict[str, Any], say: Callable[[str], None]
) -> tuple[list[Fold], dict[str, Any] | None]:
    """The folds of ``cfg.mode`` over the labelled ``ids`` and, for the cross-domain mode, the
    appearance groups (``groups.json``'s record; None for k-fold).

    Raises:
        DataError: too few images for ``cfg.folds`` folds, or an appearance group too small to
            train on and test in-domain.
    """
    if cfg.mode == "kfold":
        parts = kfold_ids(ids, cfg.folds, cfg.seed)
        folds = [
            Fold(
                name=f"fold-{k + 1}",
                train=sorted(set(ids) - set(part)),
                tests={"test": part},
            )
            for k, part in enumerate(parts)
        ]
        return folds, None
    from sam2elnet.data.domain import appearance_split
    from sam2elnet.data.splits import split_fraction

    split = appearance_split({i: samples[i].image for i in ids}, progress=cfg.progress)
    say(f"cross-domain split: {split.describe()}")
    folds = []
    for name, own, other in (("A-to-B", 0, 1), ("B-to-A", 1, 0)):
        group = split.groups[own]
        test_in, train_ids = split_fraction(group, cfg.in_domain_fraction, seed=cfg.seed)
        if len(train_ids) < 2 or not test_in:
            raise DataError(
                f"appearance group {'AB'[own]} has {len(group)} images: too few to train on and "
                "test in-domain; use more images or --mode kfold",
                cfg.data,
            )
        folds.append(
            Fold(
                name=name,
                train=sorted(train_ids),
                tests={"in_domain": sorted(test_in), "cross_domain": list(split.groups[other])},
            )
        )
    groups = {
        "A": split.groups[0],
        "B": split.groups[1],
        "axis": split.axis,
        "means": {"A": split.means[0], "B": split.means[1]},
        "separation_sd": split.separation,
        "describe": split.describe(),
    }
    return folds, groups


def select_folds(cfg: CVConfig, folds: list[Fold]) -> list[Fold]:
    """The folds this run trains: all, the first ``cfg.max_folds``, or those ``cfg.only_folds``
    names, in plan order. A name is the fold's folder name (``fold-3``, ``A-to-B``); a bare
    number ``3`` stands for ``fold-3``; case is ignored.

    Raises:
        UserError: a name that is no fold of the plan (the valid names are listed).
    """
    if cfg.only_folds:
        names = {f.name.lower(): f.name for f in folds}
        wanted = set()
        for given in cfg.only_folds:
            key = str(given).strip().lower()
            key = f"fold-{int(key)}" if key.isdigit() else key
            if key not in names:
                raise UserError(
                    f"--fold {given}: no such fold; this run's folds are "
                    f"{', '.join(f.name for f in folds)}"
                )
            wanted.add(names[key])
        return [f for f in folds if f.name in wanted]
    return folds[: cfg.max_folds] if cfg.max_folds else folds
