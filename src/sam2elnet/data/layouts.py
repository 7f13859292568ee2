"""Finding image/label pairs in a folder: dataset layouts (SOS, CHN6-CUG, generic), splits, checks.

Layouts (detected automatically by :func:`discover`, or chosen with ``layout=``):

- ``sos``: Deep-SAR Oil Spill. ``train/<sensor>/<id>_sat.jpg`` + ``<id>_mask.png``, and
  ``test/<sensor>/sat/<id>_sat.jpg`` + ``test/<sensor>/gt/<id>_mask.png``; sensors palsar, sentinel.
- ``chn6``: CHN6-CUG roads. ``images/<id>_sat.jpg`` + ``gt/<id>_mask.png``, optionally under
  ``train/`` and ``val/``.
- ``generic``: ``images/`` + ``masks/`` (or ``labels/``) matched by file stem, optionally under split
  folders; an optional ``coarse/`` folder holds coarse labels, an optional ``dataset.json`` (as
  written by ``elnet synth``) states the modality (:mod:`sam2elnet.data.dataset_meta`).
- ``flat``: one folder of images with their labels beside them, ``<id>.<ext>`` (or
  ``<id>_sat``) + ``<id>_mask`` (or ``_gt``, ``_label``, ``_lbl``); modality as ``generic``.
  One SOS sensor folder (``sos/train/palsar``) is read as ``sos``, that sensor only.

Files that find no partner are listed in ``DatasetIndex.unmatched`` and reported, never silently
dropped. Which folders each layout reads is :mod:`sam2elnet.data.layout_places`; whether a pair's
files have the same size is :mod:`sam2elnet.data.pair_sizes`. Which split folders a command
uses (:func:`~sam2elnet.data.splits.select_split`) and splits by fraction live in
:mod:`sam2elnet.data.splits`, the PyTorch dataset in :mod:`sam2elnet.data.datasets`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sam2elnet.data.dataset_meta import layout_modality, read_dataset_meta
from sam2elnet.data.layout_places import (
    SOS_SENSORS,
    SPLIT_NAMES,
    Place,
    detect_layout,
    places,
    unreadable_splits,
)
from sam2elnet.data.naming import (
    IMAGE_TAGS,
    IMPORT_RECORD,
    MASK_TAGS,
    image_files,
    imported_masks,
)
from sam2elnet.errors import DataError, NoPairsError
from sam2elnet.option_values import LAYOUTS
from sam2elnet.utils.advice import plural
from sam2elnet.utils.paths import read_access_advice

log = logging.getLogger(__name__)

_SPLITS = SPLIT_NAMES
_IMAGE_TAGS = IMAGE_TAGS
_MASK_TAGS = MASK_TAGS


@dataclass(frozen=True)
class Sample:
    """One image with its label (``mask`` None for unlabelled images) and optional coarse label."""

    id: str
    image: Path
    mask: Path | None
    coarse: Path | None = None
    split: str | None = None
    sensor: str | None = None


@dataclass
class DatasetIndex:
    """What :func:`discover` found: the pairs, the layout, unmatched files and the modality."""

    root: Path
    layout: str
    samples: list[Sample]
    unmatched: list[Path] = field(default_factory=list)
    modality: Literal["sar", "optical"] = "optical"
    meta: dict[str, Any] = field(default_factory=dict)
    #: where ``modality`` came from: ``given`` (``modality=``), ``layout`` (SOS, CHN6-CUG),
    #: ``dataset.json``, ``default`` (nothing told yet: optical until the images are looked at)
    #: or a source of :func:`sam2elnet.data.modality.decide_modality` (``images``, ...)
    modality_source: str = "default"
    modality_reason: str = "no layout or dataset.json states it"

    def counts(self) -> dict[tuple[str, str], int]:
        """Number of pairs per (split, sensor); '-' where the layout has none."""
        c = Counter((s.split or "-", s.sensor or "-") for s in self.samples)
        return dict(sorted(c.items()))

    @property
    def ids(self) -> list[str]:
        """Sample ids in index order."""
        return [s.id for s in self.samples]

    @property
    def splits(self) -> dict[str, int]:
        """Pairs per split folder found (``train``/``val``/``test``); empty for a flat layout."""
        c = Counter(s.split for s in self.samples if s.split is not None)
        return {k: c[k] for k in _SPLITS if k in c}


# --------------------------------------------------------------------------- file matching
def _files(folder: Path) -> list[Path]:
    return image_files(folder) if folder.is_dir() else []


def _key(path: Path, tags: Sequence[str]) -> str:
    """File stem without a role tag (``123_sat`` -> ``123``, ``123_mask`` -> ``123``)."""
    stem = path.stem
    for tag in tags:
        if stem.lower().endswith(tag) and len(stem) > len(tag):
            return stem[: -len(tag)]
    return stem


def _label_key(path: Path) -> str:
    """Label key: no mask tag, then no image tag (a label named after its image pairs with it)."""
    return _key(Path(_key(path, _MASK_TAGS)), _IMAGE_TAGS)


def image_key(path: Path) -> str:
    """The key an image pairs by in a dataset folder (``10791_sat.jpg`` -> ``10791``): the
    rule :func:`discover` applies, for code that builds such a folder."""
    return _key(Path(path), _IMAGE_TAGS)


def label_key(path: Path) -> str:
    """The key a label pairs by in a dataset folder (``10791_mask.png`` and ``10791_sat.png``
    -> ``10791``): the rule :func:`discover` applies, for code that builds such a folder."""
    return _label_key(Path(path))


_REPLACE_ADVICE = (
    " (move the other out of the folder, e.g. an old label that a reviewed mask replaces; a mask "
    f"`elnet import` wrote replaces it by itself when the import's record {IMPORT_RECORD} comes "
    "along: cp -a MASKS/. DEST/)"
)


def by_key(
    files: list[Path],
    key: Callable[[Path], str],
    what: str,
    replaced: list[tuple[Path, Path]] | None = None,
    *,
    where: Path | None = None,
    advice: str = _REPLACE_ADVICE,
) -> dict[str, Path]:
    """``{key(file): file}``: files paired by key (:func:`image_key` / :func:`label_key`), the
    one rule of :func:`discover` and of code that builds or reads such a folder.

    Args:
        files: The files (images or labels).
        key: :func:`image_key` or :func:`label_key` (or a rule of the same kind).
        what: The files, plural, for the message (``"labels"``).
        replaced: Given: of two files of one key, exactly one a reviewed mask (listed in its
            folder's :data:`~sam2elnet.data.naming.IMPORT_RECORD`, as ``elnet import`` writes
            it) pairs, and (old label, reviewed mask) is appended here.
        where: The folder named in the error (default: the second file's folder).
        advice: The message's end, what to do (default: how a reviewed mask replaces a label).

    Raises:
        DataError: two files of one key (``a.png`` and ``a_mask.png``, ``x.png`` and
            ``x.jpg``) but for the ``replaced`` case, naming both.
    """
    out: dict[str, Path] = {}
    reviewed: dict[Path, set[str]] = {}
    for p in files:
        k = key(p)
        if k in out:
            if replaced is not None:
                for d in {out[k].parent, p.parent} - set(reviewed):
                    reviewed[d] = imported_masks(d)
                new = [f for f in (out[k], p) if f.name in reviewed[f.parent]]
                if len(new) == 1:
                    replaced.append((out[k] if new[0] is p else p, new[0]))
                    out[k] = new[0]
                    continue
            raise DataError(
                f"two {what} of one image name {k!r}: {out[k].name} and {p.name}; only one can "
                f"pair, so keep one{advice}",
                where if where is not None else p.parent,
            )
        out[k] = p
    return out


def _pair(
    images: list[Path],
    masks: list[Path],
    split: str | None,
    sensor: str | None,
    coarse_dir: Path | None = None,
) -> tuple[list[Sample], list[Path]]:
    """Match images to masks by key; return samples and the files left without a partner.

    A reviewed mask ``elnet import`` wrote (its folder's
    :data:`~sam2elnet.data.naming.IMPORT_RECORD` lists it) replaces the label of its image,
    with one warning naming them.

    Raises:
        DataError: two images, two masks or two coarse labels of one key (``a.png`` and
            ``a_mask.png``, ``x.png`` and ``x.jpg``) but for that case: one of them would be
            left out without a word.
    """
    img_by_key = by_key(images, lambda p: _key(p, _IMAGE_TAGS), "images")
    replaced: list[tuple[Path, Path]] = []
    mask_by_key = by_key(masks, _label_key, "labels", replaced)
    if replaced:
        one = len(replaced) == 1
        log.warning(
            "%s `elnet import` wrote (listed in %s): %s; move the old %s out of the folder to "
            "silence this",
            plural(
                len(replaced),
                "label replaced by the reviewed mask",
                "labels replaced by the reviewed masks",
            ),
            IMPORT_RECORD,
            ", ".join(f"{new.name} for {old.name}" for old, new in replaced[:5])
            + (f" (+{len(replaced) - 5})" if len(replaced) > 5 else ""),
            "label" if one else "labels",
        )
    coarse_by_key = by_key(_files(coarse_dir), _label_key, "coarse labels") if coarse_dir else {}
    samples = [
        Sample(k, img_by_key[k], mask_by_key[k], coarse_by_key.get(k), split, sensor)
        for k in sorted(img_by_key)
        if k in mask_by_key
    ]
    unmatched = [p for k, p in img_by_key.items() if k not in mask_by_key]
    unmatched += [p for k, p in mask_by_key.items() if k not in img_by_key]
    return samples, sorted(unmatched)


def _split_by_suffix(files: list[Path]) -> tuple[list[Path], list[Path]]:
    """Images and labels in one folder: SOS training folders (``*_sat`` images, ``*_mask``
    labels) and flat folders (``<id>`` images, ``<id>_mask`` / ``_gt`` / ``_label`` / ``_lbl``
    labels): a file with a mask tag is a label, every other one an image."""
    masks = [p for p in files if p.stem.lower().endswith(_MASK_TAGS)]
    tagged = set(masks)  # a set: list look-ups made this quadratic (4000 files: ~1 s)
    return [p for p in files if p not in tagged], masks


def _unmatched_hint(unmatched: Sequence[Path]) -> str:
    """What the unpaired-files warning suggests: the naming rule, and the review step only when
    a folder of the unpaired files, or one beside it (``images/`` -> ``masks/``), holds an
    ``elnet import`` record (:data:`~sam2elnet.data.naming.IMPORT_RECORD`): then the images
    without a label are the tasks not reviewed yet. Said for every folder before."""
    dirs = {p.parent for p in unmatched}
    near = dirs | {d for parent in {x.parent for x in dirs} for d in _subdirs(parent)}
    rule = "<id>_sat / <id>_mask, or equal stems"
    if any((d / IMPORT_RECORD).is_file() for d in near):
        return f"{rule}; an image whose task was not reviewed yet has none: review it, then `elnet import` again"
    return rule


def _subdirs(folder: Path) -> list[Path]:
    """The folders in ``folder`` (none when it cannot be listed)."""
    try:
        return [d for d in folder.iterdir() if d.is_dir()]
    except OSError:
        return []


def _found_folders(folder: Path, most: int = 8) -> str:
    """What an unrecognised dataset folder holds, for the error beside the expected layouts:
    ``found: images/, mask/`` (sorted, hidden ones left out; the first ``most``, then how many
    more), or ``found no folders in it``."""
    names = sorted(f"{d.name}/" for d in _subdirs(folder) if not d.name.startswith("."))
    if not names:
        return "found no folders in it"
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return f"found: {', '.join(names[:most])}{more}"


# --------------------------------------------------------------------------- layouts
def _read_place(p: Place) -> tuple[list[Sample], list[Path]]:
    """The pairs of one place and its files without a partner.

    Raises:
        DataError: an SOS sensor folder with ``gt/`` but no ``sat/``
            (:func:`~sam2elnet.data.layout_places.sensor_place`).
    """
    if not p.images.is_dir() and p.masks is not None:
        raise DataError(
            f"has {p.masks.name}/ but no {p.images.name}/ folder; put the <id>_sat images in "
            f"{p.images.name}/ beside {p.masks.name}/ (SOS test layout), or beside their "
            f"<id>_mask labels with no {p.masks.name}/ folder (SOS training layout)",
            p.images.parent,
        )
    if p.mixed:
        imgs, masks = _split_by_suffix(_files(p.images))
        return _pair(imgs, masks, p.split, p.sensor)
    if p.masks is None:
        return [], _files(p.images)
    return _pair(_files(p.images), _files(p.masks), p.split, p.sensor, p.coarse)


def _unique_ids(samples: list[Sample]) -> list[Sample]:
    """Ids must be unique (they name output files); prefix split/sensor only where they clash."""
    dup = {k for k, n in Counter(s.id for s in samples).items() if n > 1}
    if not dup:
        return samples
    out = []
    for s in samples:
        if s.id in dup:
            prefix = "_".join(x for x in (s.split, s.sensor) if x)
            s = Sample(
                f"{prefix}_{s.id}" if prefix else s.id, s.image, s.mask, s.coarse, s.split, s.sensor
            )
        out.append(s)
    return out


def _unreadable_split_text(err: OSError, folder: Path, root: Path) -> str:
    """What is wrong with a split folder that cannot be listed and what to do, for one line."""
    why = "permission denied" if isinstance(err, PermissionError) else (err.strerror or str(err))
    return (
        f"cannot list this split folder ({why.lower()}); {read_access_advice(folder)} or "
        f"move it out of {root}"
    )


def discover(
    root: str | Path,
    layout: str = "auto",
    split: str | Sequence[str] | None = None,
    sensors: str | Sequence[str] | None = None,
    modality: Literal["sar", "optical"] | None = None,
    report_unmatched: bool = True,
    skip: Collection[tuple[str | None, str]] = (),
) -> DatasetIndex:
    """Find image/label pairs under ``root``.

    Unmatched files are counted (warning) and listed (info level, i.e. ``--verbose``), never
    silently dropped.

    Args:
        root: Dataset folder.
        layout: ``auto`` (detected), ``sos``, ``chn6``, ``generic`` or ``flat`` (see the module
            docstring).
        split: Only these split folders (``train``, ``val``, ``test``); None = all.
        sensors: SOS sensors (``palsar``, ``sentinel``); None = all.
        modality: ``sar`` | ``optical``, overriding the layout's default (SOS: sar, CHN6:
            optical, generic: ``dataset.json``, else optical with ``modality_source`` "default":
            :func:`sam2elnet.data.modality.decide_modality` then looks at the images).
        report_unmatched: Log the unmatched-file count and list.
        skip: SOS ``(split, sensor)`` folders left out (``("test", "palsar")``: one that cannot
            be read, beside a readable ``test/sentinel``; :mod:`sam2elnet.data.splits`).

    Returns:
        :class:`DatasetIndex`: ``samples`` (sorted, ids unique), ``layout``, ``unmatched``,
        ``modality``, ``meta`` (``dataset.json``).

    Raises:
        DataError: missing folder, an unknown layout (not in :data:`LAYOUTS`), an SOS sensor
            folder with ``gt/`` but no ``sat/``, a split folder read (all of them when ``split``
            is None) that cannot be listed (no permission), or, as :class:`NoPairsError`, no
            image/label pair found (the message says which layouts were tried).
    """
    base = Path(root)
    if not base.exists():
        raise DataError("dataset folder does not exist; check the path", base)
    if not base.is_dir():
        raise DataError(
            "expected a dataset folder, got a file; pass the folder holding images/", base
        )
    if not any(base.iterdir()):
        raise DataError("dataset folder is empty; put images and labels in it", base)
    if layout not in LAYOUTS:
        raise DataError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    found = detect_layout(base) if layout == "auto" else layout
    splits = {split} if isinstance(split, str) else (set(split) if split else None)
    for folder, err in [] if found == "flat" else unreadable_splits(base):
        if found is None or splits is None or folder.name in splits:
            raise DataError(_unreadable_split_text(err, folder, base), folder)
    if found is None:
        raise DataError(
            "no recognisable dataset layout; expected images/ + masks/ (or labels/, gt/), "
            "images with their <id>_mask labels side by side, or SOS train/<sensor>/ folders "
            f"(see docs/data.md); {_found_folders(base)}",
            base,
        )
    sens = {sensors} if isinstance(sensors, str) else (set(sensors) if sensors else None)
    unknown = sorted(sens - set(SOS_SENSORS)) if sens else []
    if unknown:
        raise DataError(
            f"unknown sensor{'' if len(unknown) == 1 else 's'} {unknown}; SOS has "
            f"{', '.join(SOS_SENSORS)}"
        )
    meta = read_dataset_meta(base)
    samples: list[Sample] = []
    unmatched: list[Path] = []
    for place in places(base, found, splits, sens):
        if (place.split, place.sensor) in skip:
            continue
        s, u = _read_place(place)
        samples += s
        unmatched += u
    if unmatched and report_unmatched and samples:  # no pair at all: the error below says it
        has, are = ("has", "is") if len(unmatched) == 1 else ("have", "are")
        log.warning(
            "%s under %s %s no image/label partner and %s left out (listed by "
            "`elnet --verbose COMMAND ...`); to use an image, give it a label named like it "
            "(%s)",
            plural(len(unmatched), "file"),
            base,
            has,
            are,
            _unmatched_hint(unmatched),
        )
        for p in unmatched:
            log.info("unmatched: %s", p)
    if not samples:
        what = f" for split={sorted(splits)}" if splits else ""
        what += f" sensors={sorted(sens)}" if sens else ""
        # one file of each folder: the image and label names that do not pair, side by side
        eg_files = unmatched[:1] + [p for p in unmatched if p.parent != unmatched[0].parent][:1]
        eg_files += [p for p in unmatched if p not in eg_files][: 2 - len(eg_files)]
        eg = ", e.g. " + ", ".join(p.name for p in eg_files) if unmatched else ""
        raise NoPairsError(
            f"found the {found} layout but no image/label pairs{what} "
            f"({len(unmatched)} unmatched files{eg}); check file names (<id>_sat / <id>_mask or equal stems)",
            base,
        )
    mod, source, reason = layout_modality(found, meta, modality)
    return DatasetIndex(base, found, _unique_ids(samples), unmatched, mod, meta, source, reason)
