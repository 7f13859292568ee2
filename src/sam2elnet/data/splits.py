"""Reproducible fraction splits of sample ids (optionally stratified by empty / object masks).

The labelled fraction of the paper's protocol (e.g. 30 % for fine-tuning, the rest held out) is
chosen here, from a seed, so the same seed always gives the same split on any machine.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sam2elnet.data.layouts import Sample
from sam2elnet.data.masks import read_mask
from sam2elnet.errors import DataError


def split_fraction(
    ids: Sequence[str],
    fraction: float,
    seed: int = 0,
    strata: Sequence[str] | None = None,
) -> tuple[list[str], list[str]]:
    """Select ``fraction`` of ``ids`` reproducibly.

    With ``strata`` (one label per id, e.g. "empty"/"oil") the fraction is taken per stratum and
    every non-empty stratum with at least two members contributes at least one id to each side, so
    both empty and non-empty masks are represented in the labelled part. The generator is seeded
    from ``(seed, 3001)``: the same seed gives the same split on any machine.

    Args:
        ids: Unique sample ids.
        fraction: Share to select, in [0, 1] (e.g. 0.3 for the paper's 30 %).
        seed: Seed of the selection.
        strata: One label per id, or None.

    Returns:
        ``(selected, rest)``, each sorted.

    Raises:
        DataError: ``fraction`` outside [0, 1], ids not unique, or one strata label per id missing.
    """
    if not 0.0 <= fraction <= 1.0:
        raise DataError(f"fraction {fraction} is outside [0, 1]; e.g. 0.3 for 30 %")
    ids = [str(i) for i in ids]
    if len(set(ids)) != len(ids):
        raise DataError("ids passed to split_fraction are not unique")
    if strata is not None and len(strata) != len(ids):
        raise DataError(f"{len(strata)} strata labels for {len(ids)} ids; give one label per id")
    groups: dict[str, list[str]] = {}
    for i, sid in enumerate(ids):
        groups.setdefault(str(strata[i]) if strata is not None else "", []).append(sid)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 3001]))
    selected: list[str] = []
    for name in sorted(groups):
        members = sorted(groups[name])
        n = len(members)
        k = int(round(fraction * n))
        if strata is not None and n >= 2 and 0.0 < fraction < 1.0:
            k = min(max(k, 1), n - 1)
        order = rng.permutation(n)
        selected += [members[j] for j in order[:k]]
    chosen = set(selected)
    return sorted(chosen), sorted(i for i in ids if i not in chosen)


def mask_strata(
    samples: Sequence[Sample],
    progress: bool = False,
    positive_values: tuple[float, ...] | None = None,
) -> list[str]:
    """``"empty"`` / ``"object"`` per sample, for stratified splits (reads each mask once).

    Args:
        samples: The pairs (a sample without mask counts as empty).
        progress: Show a progress bar; False (``--no-progress``): a plain ``strata: N/N mask
            in ... s`` line instead (:func:`sam2elnet.utils.progress.track`).
        positive_values: Mask values that mean "object" (class-index masks).

    Returns:
        One label per sample, in order.

    Raises:
        DataError: an unreadable mask, or a class-index mask without ``positive_values``.
    """
    from sam2elnet.utils.progress import track

    out = []
    for s in track(samples, "strata", "mask", progress):
        has = s.mask is not None and read_mask(s.mask, positive_values=positive_values).any()
        out.append("object" if has else "empty")
    return out
