"""Splits: which split folders of a dataset a command uses, and reproducible fraction splits.

:func:`select_split` keeps the split folders (``train/``, ``val/``, ``test/``) a command uses:
training the ``train`` split unless told otherwise, never the official test images. The
labelled fraction of the paper's protocol (e.g. 30 % for fine-tuning, the rest held out) is
chosen by :func:`split_fraction`, from a seed (optionally stratified by empty / object masks),
so the same seed always gives the same split on any machine.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sam2elnet.data.layout_places import SOS_SENSORS, SPLIT_NAMES, detect_layout
from sam2elnet.data.layouts import DatasetIndex, Sample, discover
from sam2elnet.data.masks import read_mask
from sam2elnet.errors import DataError, NoPairsError
from sam2elnet.utils.paths import os_error_message, read_access_advice

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class SplitChoice:
    """Which split folders of a dataset a command uses (see :func:`select_split`)."""

    index: DatasetIndex
    """The dataset re-discovered with only the chosen splits (ids stable for that choice)."""
    found: dict[str, int]
    """Pairs per split folder found under the root (empty: no split folders)."""
    used: list[str] | None
    """Split names used, or None for a layout without split folders (all pairs used)."""

    def describe(self, purpose: str = "training") -> str:
        """One line for logs: ``splits found: train (6455), test (1615); training on: train``."""
        if not self.found:
            return f"no split folders found; {purpose} on all {len(self.index.samples)} pairs"
        found = ", ".join(f"{k} ({n})" for k, n in self.found.items())
        used = ", ".join(self.used or [])
        return f"splits found: {found}; {purpose} on: {used} ({len(self.index.samples)} pairs)"


def select_split(
    root: str | Path,
    split: str | Sequence[str] | None = None,
    *,
    layout: str = "auto",
    sensors: str | Sequence[str] | None = None,
    modality: Literal["sar", "optical"] | None = None,
    default: str = "train",
    purpose: str = "training",
) -> SplitChoice:
    """Discover ``root`` and keep only the split folders a command should use.

    Without ``split``, a split-aware layout (SOS ``train/`` + ``test/``, CHN6-CUG ``train/`` +
    ``val/``, generic ``train/``/``val/``/``test/`` folders) uses only the ``default`` split, so
    training never sees the official test images; a root holding only other splits is used whole,
    with a warning. A flat layout (no split folders) is used whole. A split folder that cannot
    be read (e.g. ``test/palsar`` with ``gt/`` but no ``sat/``, a ``test/`` folder without read
    permission) stops only a command that uses it; one that does not is warned once, naming it
    (:func:`_unused_split_broken`).

    Args:
        root: Dataset folder.
        split: Split folders asked for (``train``, ``val``, ``test``), or None.
        layout, sensors, modality: As :func:`discover`.
        default: The split used when none is asked for.
        purpose: What the split is for, in messages (e.g. ``"training"``).

    Returns:
        :class:`SplitChoice`: the filtered index, the splits found and the splits used.

    Raises:
        DataError: a requested split is absent (the message names the splits found), or as
            :func:`discover` for the splits used.
        OSError: a folder of the splits used cannot be read.
    """
    want = None
    if split:
        want = [split] if isinstance(split, str) else list(dict.fromkeys(split))
        bad = [w for w in want if w not in SPLIT_NAMES]
        if bad:
            raise DataError(f"unknown split {bad[0]!r}; choose from {', '.join(SPLIT_NAMES)}")
    kw: dict[str, Any] = {"layout": layout, "sensors": sensors, "modality": modality}
    try:
        index = discover(root, **kw)
        found = index.splits
    except (DataError, OSError) as err:
        index, found = _unused_split_broken(root, want or [default], err, purpose, kw)
    if want:
        if not found:
            raise DataError(
                f"--split {','.join(want)} given but the dataset has no split folders "
                "(train/, val/, test/); drop --split to use every pair",
                index.root,
            )
        missing = [w for w in want if w not in found]
        if missing:
            raise DataError(
                f"split {missing[0]!r} not found; this dataset has: {', '.join(found)}",
                index.root,
            )
        used: list[str] | None = want
    elif not found:
        used = None
    elif default in found:
        used = [default]
    else:
        used = list(found)
        log.warning(
            "no %r split folder under %s; %s on the split(s) found: %s",
            default,
            index.root,
            purpose,
            ", ".join(used),
        )
    if used is not None and set(used) != set(found):
        index = discover(
            root,
            layout=index.layout,
            split=used,
            sensors=sensors,
            modality=modality,
            report_unmatched=False,
        )
    return SplitChoice(index, found, used)


def discover_readable(
    root: str | Path,
    split: str | Sequence[str] | None = None,
    *,
    purpose: str = "elnet stats",
    **kw: Any,
) -> DatasetIndex:
    """:func:`discover`, except that without ``split`` a split folder that cannot be read (e.g.
    ``test/palsar`` with ``gt/`` but no ``sat/``, a ``test/`` folder without read permission)
    is left out with one warning naming it, and the splits that can be read are returned: what
    a command that reports every split (``elnet stats``) reads.

    Args:
        root: Dataset folder.
        split: Split folders asked for; any of them that cannot be read is an error.
        purpose: Who reads the splits, in the warning (``"elnet stats uses only the train
            split; left out another that cannot be read: ..."``).
        kw: ``layout``, ``sensors``, ``modality``: as :func:`discover`.

    Returns:
        The :class:`DatasetIndex` of the splits read.

    Raises:
        DataError: as :func:`discover`; without ``split``, when no split can be read (the error
            reading the whole folder gave).
        OSError: likewise, when that error is one.
    """
    try:
        return discover(root, split=split or None, **kw)
    except (DataError, OSError) as err:
        if split:
            raise
        return _unused_split_broken(root, None, err, purpose, kw)[0]


def _unused_split_broken(
    root: str | Path,
    need: list[str] | None,
    err: DataError | OSError,
    purpose: str,
    kw: dict[str, Any],
) -> tuple[DatasetIndex, dict[str, int]]:
    """The dataset read with only the splits ``need`` (None: every split that can be read)
    when reading all of it failed with ``err``, and the pairs per split folder that could be
    read: a split that fails alone is not used, so it is left out with one warning naming it
    (its error says which folder; ``err`` when no other split fails alone). Of an SOS split
    whose sensor folders fail only in part (``test/palsar`` unreadable, ``test/sentinel``
    fine) the readable ones are kept (counted, and read when ``need`` is None) and each broken
    one is named in one warning with what to do (:func:`_sensor_parts`).

    Raises:
        DataError: ``err`` again when the ``need`` splits cannot be read either (they are
            broken too, or absent), or, ``need`` None, when no split can be read.
        OSError: likewise, when ``err`` is one.
    """
    counts: dict[str, int] = {}
    broken: list[DataError | OSError] = []
    partial: list[tuple[str, str, DataError | OSError]] = []  # (split, sensor, its error)
    for other in (s for s in SPLIT_NAMES if need is None or s not in need):
        try:
            counts.update(discover(root, split=other, report_unmatched=False, **kw).splits)
        except NoPairsError:
            pass  # absent
        except (DataError, OSError) as e:
            read, bad = _sensor_parts(root, other, kw)
            if read and bad:  # some sensor folders of the split read: keep them
                counts[other] = sum(read.values())
                partial += bad
            else:
                broken.append(e)
    use = need if need is not None else list(counts)
    if not use:
        raise err
    try:
        index = discover(root, split=use, skip={(s, n) for s, n, _ in partial}, **kw)
    except (DataError, OSError):
        raise err from None
    counts.update(index.splits)
    for split, sensor, e in partial:
        folder = Path(root) / split / sensor
        why = (
            f"{e.filename or folder}: {(e.strerror or str(e)).lower()}; "
            f"{read_access_advice(folder)} or move it out of {root}"
            if isinstance(e, OSError)
            else str(e)
        )
        if split in use:  # its other sensor folders are read
            log.warning(
                "%s leaves out a sensor folder of the %s split that cannot be read (its other "
                "sensor folders are used): %s",
                purpose,
                split,
                why,
            )
        else:
            broken.append(DataError(why))
    for e in broken or ([] if partial else [err]):
        log.warning(
            "%s uses only the %s %s; left out another that cannot be read: %s",
            purpose,
            ", ".join(use),
            "split" if len(use) == 1 else "splits",
            os_error_message(e) if isinstance(e, OSError) else e,
        )
    return index, {k: counts[k] for k in SPLIT_NAMES if k in counts}


def _sensor_parts(
    root: str | Path, split: str, kw: dict[str, Any]
) -> tuple[dict[str, int], list[tuple[str, str, DataError | OSError]]]:
    """An SOS ``split`` that cannot be read whole, read one sensor folder at a time: the pairs
    of each sensor folder that reads, and ``(split, sensor, error)`` of each that does not.
    Nothing for another layout (its split is one folder) or a split folder that cannot be
    listed itself (every sensor fails: the split's own error says it)."""
    layout = kw.get("layout") or "auto"
    if (detect_layout(Path(root)) if layout == "auto" else layout) != "sos":
        return {}, []
    given = kw.get("sensors")
    sensors = [given] if isinstance(given, str) else list(given or SOS_SENSORS)
    read: dict[str, int] = {}
    bad: list[tuple[str, str, DataError | OSError]] = []
    for sensor in sensors:
        try:
            one = discover(root, split=split, report_unmatched=False, **{**kw, "sensors": sensor})
        except NoPairsError:
            continue  # absent
        except (DataError, OSError) as e:
            bad.append((split, sensor, e))
            continue
        read[sensor] = len(one.samples)
    return read, bad
