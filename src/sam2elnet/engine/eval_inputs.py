"""What an evaluation reads (``elnet evaluate``): mask and polygon folders, dataset splits, pairs.

* :func:`scan_masks`: the mask files of a folder keyed by
  :func:`~sam2elnet.data.naming.mask_key`, searched below a folder without masks of its own (a SOS
  ``train/`` with ``palsar/`` and ``sentinel/``; ``labels/`` + ``rejected/`` of an annotate /
  enhance run folder; one run folder per sensor);
* :func:`single_pair`: ``--pred FILE --truth FILE``, one pair whatever the names;
* :func:`pair_inputs`: predictions and truths paired by name, or every prediction with one
  polygon file (``--truth labels.gpkg``; polygon ground truth is rasterised onto each
  prediction's grid by :class:`~sam2elnet.engine.eval_vector.VectorTruth`);
* :func:`check_not_images`: ``--pred`` / ``--truth`` hold masks, not the images;
* :func:`split_truths`: the ground-truth masks of one split of a dataset root;
* :func:`group_name`: the reporting group of a truth mask (its sub-folder).

The runs' quality tables an evaluation reads beside the masks are in
:mod:`sam2elnet.engine.eval_quality`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from sam2elnet.data.naming import (
    LOSSY_SUFFIXES,
    MASK_SUFFIXES,
    NOT_MASK_TAGS,
    PAIRING_IMAGE_TAGS,
    VECTOR_SUFFIXES,
    mask_key,
)
from sam2elnet.data.runfolder import RUN_MASK_FOLDERS
from sam2elnet.data.vector_shared import check_placeable
from sam2elnet.engine.eval_vector import VectorTruth, need_georeference
from sam2elnet.errors import DataError, UserError
from sam2elnet.option_checks import api_option

log = logging.getLogger(__name__)

__all__ = [
    "TRUTH_SUFFIXES",
    "Pairs",
    "check_not_images",
    "group_name",
    "masks_of",
    "natural_key",
    "no_pairs_error",
    "pair_inputs",
    "scan_masks",
    "single_pair",
    "split_truths",
]


TRUTH_SUFFIXES = (*MASK_SUFFIXES, *(s for s in VECTOR_SUFFIXES if s != ".json"))
"""Ground-truth files: masks and polygon files (GeoPackage, Shapefile, GeoJSON as ``.geojson``;
a ``.json`` in a folder is a run's summary or COCO, not polygons)."""


def _mask_files(folder: Path, suffixes: Sequence[str] = MASK_SUFFIXES) -> list[Path]:
    return sorted(
        f
        for f in folder.iterdir()
        if f.is_file()
        and not f.name.startswith(".")
        and f.suffix.lower() in suffixes
        and not any(f.stem.lower().endswith(s) for s in NOT_MASK_TAGS)
    )


_MAX_DEPTH = 6
"""How deep :func:`scan_masks` looks for masks below the folder it is given (SOS: ``sos/train/palsar``)."""


def _is_image_file(f: Path) -> bool:
    return any(f.stem.lower().endswith(s) for s in PAIRING_IMAGE_TAGS)


def _folder_masks(
    folder: Path,
    run_layout: bool,
    runs: list[Path],
    depth: int = 0,
    suffixes: Sequence[str] = MASK_SUFFIXES,
) -> list[Path]:
    """Mask files of ``folder``: its own; else, for a run folder, those of ``labels/`` and
    ``rejected/``; else those of its sub-folders by the same rule (up to :data:`_MAX_DEPTH`)."""
    files = _mask_files(folder, suffixes)
    if files:
        return files
    subs = [folder / s for s in RUN_MASK_FOLDERS if (folder / s).is_dir()]
    if run_layout and subs:
        runs.append(folder)
        return [f for s in subs for f in _mask_files(s)]
    if depth >= _MAX_DEPTH:
        return []
    out: list[Path] = []
    for sub in sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")):
        out.extend(_folder_masks(sub, run_layout, runs, depth + 1, suffixes))
    return out


def scan_masks(
    folder: Path, role: str, run_layout: bool = False, runs: list[Path] | None = None
) -> dict[str, Path]:
    """Mask files of ``folder`` keyed by :func:`mask_key`; duplicates that cannot be resolved fail.

    A folder without masks of its own is searched below: with ``run_layout``, a folder holding
    ``labels/`` / ``rejected/`` (the output of ``elnet annotate`` / ``elnet enhance``) is read
    through those, so kept *and* rejected labels are evaluated (its path is appended to ``runs``);
    other sub-folders are searched the same way (e.g. a SOS ``train/`` with ``palsar/`` and
    ``sentinel/``, or a folder of one enhance run per sensor). Where several files pair with one
    name, images (``<id>_sat.jpg`` next to ``<id>_mask.png``) give way to masks. Every role but
    ``"prediction"`` (ground truth, baseline labels, valid masks) may also be polygon files
    (:data:`TRUTH_SUFFIXES`), one per image; a polygon file next to a mask of the same name
    gives way to the mask.
    """
    if not folder.exists():
        raise UserError(f"{role} folder does not exist; check the path", folder)
    if not folder.is_dir():
        what = "" if role == "prediction" else " or one polygon file (GPKG/SHP/GeoJSON)"
        raise UserError(
            f"{role} must be a folder of mask files{what}, not a mask file{_vector_hint([folder])}",
            folder,
        )
    suffixes = MASK_SUFFIXES if role == "prediction" else TRUTH_SUFFIXES
    files = _folder_masks(folder, run_layout, runs if runs is not None else [], 0, suffixes)
    groups: dict[str, list[Path]] = {}
    for f in files:
        vector = f.suffix.lower() in VECTOR_SUFFIXES  # x_mask.gpkg pairs with x_pred.tif
        groups.setdefault(mask_key(f.stem if vector else f.name), []).append(f)
    out: dict[str, Path] = {}
    for key, group in groups.items():
        if len(group) > 1:
            # SOS training layout keeps <id>_sat.jpg next to <id>_mask.png: drop the images
            group = [g for g in group if not _is_image_file(g)] or group
            # a polygon export of a mask next to it (elnet export) gives way to the mask
            group = [g for g in group if g.suffix.lower() not in VECTOR_SUFFIXES] or group
        if len(group) > 1:
            where = ", ".join(str(g.relative_to(folder)) for g in group)
            raise DataError(
                f"several files pair with the name '{key}': {where}; keep one mask per image",
                folder,
            )
        out[key] = group[0]
    if not out:
        raise DataError(
            f"{role} folder holds no mask files ({', '.join(suffixes)}), "
            f"neither directly nor in its sub-folders; check the path"
            f"{_vector_hint(folder.rglob('*'), scanned=True) if role == 'prediction' else ''}",
            folder,
        )
    return out


def single_pair(
    pred: Path, truth: Path, split: object = None
) -> tuple[dict[str, Path], dict[str, Path]] | None:
    """One prediction file and one ground-truth file as a batch of one pair, keyed by the
    prediction's :func:`mask_key` (the truth's for a polygon prediction; the names need not
    match); None when both are folders. Either may be a polygon file (placed on the other's
    grid), not both.

    Raises:
        UserError: one is a file and the other a folder, ``split`` is given with a truth file,
            a file is not a mask or polygon file, or both are polygon files; the message names
            the path and what to give instead.
    """
    if not pred.is_file() and not truth.is_file():
        return None
    if pred.is_file() != truth.is_file():
        file, folder = (pred, truth) if pred.is_file() else (truth, pred)
        raise UserError(
            f"{_pred()} and {_truth()} must both be files (one pair) or both folders, but {file} "
            f"is a file and {folder} a folder; give the matching file, or the folder holding it"
            f"{_vector_hint([file])}"
        )
    if split:
        raise UserError(_split_needs_root(), truth)
    ok = (*MASK_SUFFIXES, *VECTOR_SUFFIXES)
    for f, role in ((pred, "prediction"), (truth, "ground truth")):
        if f.suffix.lower() not in ok:
            raise UserError(
                f"{role} is not a mask or polygon file ({', '.join(ok)}); check the path", f
            )
    polygons = [f.suffix.lower() in VECTOR_SUFFIXES for f in (pred, truth)]
    if all(polygons):
        raise UserError(
            f"{_pred()} and {_truth()} are both polygon files, so there is no pixel grid to compare "
            f"them on; give one as a mask, or rasterise {pred.name} onto the images first"
            f"{_vector_hint([pred])}",
            pred,
        )
    key = mask_key(truth.name if polygons[0] else pred.name)
    return {key: pred}, {key: truth}


def _pred() -> str:
    """``--pred`` as the caller names it: ``pred_dir (--pred)`` from the Python API
    (:func:`~sam2elnet.engine.evaluate.evaluate_folders`), ``--pred`` in ``elnet evaluate``."""
    return api_option("pred_dir", "--pred")


def _truth() -> str:
    """``--truth`` as the caller names it: ``truth_dir (--truth)`` from the Python API."""
    return api_option("truth_dir", "--truth")


def _split_needs_root() -> str:
    """The refusal of a split with a ground-truth file, as the caller names the options."""
    split = api_option("truth_split", "--split")
    return f"{split} needs a dataset root as {_truth()}, not a file; drop {split}"


def masks_of(
    path: str | Path | None,
    role: str,
    one: tuple[dict[str, Path], dict[str, Path]] | None,
    run_layout: bool = False,
    preds: dict[str, Path] | None = None,
) -> dict[str, Path]:
    """Valid masks / baseline labels keyed by :func:`mask_key`: a folder scanned by
    :func:`scan_masks` (masks, or polygon files named like the predictions); for a single pair
    (``one``) a mask or polygon file that goes with it; one polygon file (GeoPackage /
    Shapefile / GeoJSON) with a prediction folder goes with every prediction (``preds``), placed
    on each by map position as ``--truth`` places it (:class:`VectorTruth`); None -> no masks.

    Raises:
        UserError: a mask file with a prediction folder, or one polygon file for a folder of
            predictions none of which has a georeference.
    """
    from sam2elnet.data.vector import is_vector_path

    if path is None:
        return {}
    p = Path(path)
    if one is not None and p.is_file():
        return {next(iter(one[0])): p}
    if p.is_file() and is_vector_path(p) and preds is not None:
        need_georeference(
            list(preds.values()), "prediction", "georeference the predictions, or give a "
            "folder of one polygon file per prediction, named like it, in pixel coordinates", p,
        )  # fmt: skip
        return dict.fromkeys(preds, p)
    return scan_masks(p, role, run_layout=run_layout)


def _vector_hint(paths: Any, scanned: bool = False) -> str:
    """The hint for polygons given where evaluate reads only masks (predictions; one mask file
    with a prediction folder): rasterise them onto the images' grids first with ``elnet import --from vector``
    (it reprojects from the file's CRS, as ``--truth`` and ``enhance --labels`` place polygons,
    and one file may serve a folder of images; ``gdal_rasterize``, suggested before, burns the
    coordinates as they are, so a file drawn in EPSG:4326 missed a UTM grid); '' without one.

    ``paths``: the files the user named, or (``scanned``) a folder's files, where a ``.json`` is
    not taken for polygons (a run folder's summary.json). The path in the command is quoted for
    a POSIX shell (``shlex.quote``), so it can be pasted as it is."""
    import shlex

    vector = set(VECTOR_SUFFIXES) - ({".json"} if scanned else set())
    found = next((Path(p) for p in islice(paths, 10_000) if Path(p).suffix.lower() in vector), None)
    if found is None:
        return ""
    return (
        f"; polygon predictions are read as one file given as {_pred()} (e.g. an elnet export "
        "layer, placed on each ground-truth mask's grid); or rasterise them onto the images' "
        f"grids first (reprojected from their CRS; one file may cover many images), e.g. elnet "
        f"import {shlex.quote(str(found))} --from vector --images IMAGES --out DIR --all-images, "
        "and give DIR"
    )


def split_truths(root: Path, split: str | Sequence[str]) -> dict[str, Path]:
    """Ground-truth masks of one split of a dataset root, keyed by :func:`mask_key`."""
    from sam2elnet.data.splits import select_split

    choice = select_split(root, split, purpose="evaluating")
    out: dict[str, Path] = {}
    for s in choice.index.samples:
        if s.mask is None:
            continue
        key = mask_key(s.mask.name)
        if key in out:
            one_sensor = api_option("truth_dir='.../gt'", "--truth .../gt")
            raise DataError(
                f"masks {out[key]} and {s.mask} have the same name '{key}' in split "
                f"{split!r}; evaluate one sensor folder at a time ({one_sensor})",
                root,
            )
        out[key] = s.mask
    log.info(choice.describe("evaluating"))
    return out


def group_name(truth: Path, root: Path) -> str:
    """The truth mask's folder relative to ``root`` (``palsar`` for ``train/palsar`` under a
    ``train`` root); masks directly in ``root`` are grouped under ``root``'s own name."""
    try:
        rel = truth.parent.relative_to(root)
    except ValueError:
        return truth.parent.name
    return rel.as_posix() if rel.parts else (root.name or str(root))


def natural_key(s: str) -> list[Any]:
    """Sort ``img2`` before ``img10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", s)]


@dataclass
class Pairs:
    """What :func:`pair_inputs` paired: predictions and truths keyed by :func:`mask_key`, the
    single pair (:func:`single_pair`) or None, the shared polygon file (:class:`VectorTruth`)
    or None."""

    preds: dict[str, Path]
    truths: dict[str, Path]
    one: tuple[dict[str, Path], dict[str, Path]] | None = None
    layer: VectorTruth | None = None
    pred_layer: Path | None = None
    """One polygon file of predictions (an ``elnet export`` layer) for a truth folder."""


def pair_inputs(
    pdir: Path,
    tdir: Path,
    split: str | Sequence[str] | None,
    runs: list[Path],
    truth: VectorTruth | None = None,
) -> Pairs:
    """The predictions and truths of an evaluation.

    * ``--truth`` a polygon file and ``--pred`` a folder: every prediction against that file
      (``truth``, already read with ``--truth-layer``, else :meth:`VectorTruth.shared`);
    * ``--pred`` a polygon file (e.g. an ``elnet export`` layer) and ``--truth`` a folder:
      every truth mask against the polygons in its footprint, placed on its grid;
    * two files: :func:`single_pair` (one of them may be a polygon file);
    * ``--split``: the split's masks of a dataset root (:func:`split_truths`);
    * two folders: :func:`scan_masks` of each (run folders below ``pdir`` appended to ``runs``;
      truths may be polygon files named like their predictions).

    Raises:
        UserError / DataError: as those functions; ``--split`` with a polygon file.
    """
    from sam2elnet.data.vector import is_vector_path

    if tdir.is_file() and is_vector_path(tdir) and pdir.is_dir():
        if split:
            raise UserError(_split_needs_root(), tdir)
        preds = scan_masks(pdir, "prediction", run_layout=True, runs=runs)
        vt = truth or VectorTruth.shared(tdir)
        vt.images = frozenset(p.stem for p in preds.values())
        # predictions without georeference: by source / label, or one error
        check_placeable(vt.as_shared(), list(preds.values()))
        if lost := vt.as_shared().unplaced_note(pdir):  # a tile not predicted: not scored
            log.warning("%s: %s", tdir, lost)
        return Pairs(preds, dict.fromkeys(preds, tdir), None, vt)
    if pdir.is_file() and is_vector_path(pdir) and tdir.is_dir():
        truths = split_truths(tdir, split) if split else scan_masks(tdir, "ground-truth")
        masks = {k: v for k, v in truths.items() if not is_vector_path(v)}
        if masks and len(masks) < len(truths):  # polygons cannot be compared with polygons
            log.warning(
                "%s: %d of the %d ground-truth files are polygon files, not scored against the "
                "polygon predictions %s (no pixel grid to compare them on); give them as masks "
                "to score them",
                tdir, len(truths) - len(masks), len(truths), pdir.name,
            )  # fmt: skip
        truths = masks or truths  # all polygons: each pair's error says so
        need_georeference(
            list(truths.values()), "ground-truth mask", "georeference the masks, or rasterise "
            f"the polygons onto the images first{_vector_hint([pdir])}", pdir, f"in {tdir}",
        )  # fmt: skip
        return Pairs(dict.fromkeys(truths, pdir), truths, None, None, pdir)
    one = single_pair(pdir, tdir, split)
    if one is not None:
        return Pairs(*one, one)
    preds = scan_masks(pdir, "prediction", run_layout=True, runs=runs)
    truths = split_truths(tdir, split) if split else scan_masks(tdir, "ground-truth")
    return Pairs(preds, truths)


def no_pairs_error(pdir: Path, tdir: Path, pairs: Pairs) -> DataError:
    """The error of predictions and truths of which no name pairs (a lone polygon file in the
    truth folder: give it as ``--truth FILE`` to score every prediction against it)."""
    from sam2elnet.data.vector import is_vector_path

    lone = list(pairs.truths.values())
    hint = ""
    if len(lone) == 1 and is_vector_path(lone[0]):
        hint = (
            "; to score every prediction against the polygons of one file, give "
            f"{api_option(f'truth_dir={str(lone[0])!r}', f'--truth {lone[0]}')}"
        )
    return DataError(
        f"no prediction in {pdir} pairs with a mask in {tdir} (e.g. "
        f"{next(iter(pairs.preds.values())).name} vs {lone[0].name}); names must match after "
        f"removing _mask/_sat/_pred/_label{hint}",
        pdir,
    )


def check_not_images(preds: dict[str, Path], truths: dict[str, Path], keys: Sequence[str]) -> None:
    """Refuse a ``--truth`` or ``--pred`` folder of images instead of masks (the images folder
    given by mistake scored its greys thresholded at 128 as labels, silently), on the first
    paired raster of each, whatever its size (:func:`sam2elnet.data.masks.image_like_label`, on a
    bounded sample: colour, or continuous values). A prediction may be a probability map (one
    band, uint8 greys in a PNG / TIFF, or floats within 0..1: what ``--save-prob`` writes), so
    only a JPEG, a colour file or other continuous values are refused there.

    Raises:
        UserError: naming the file, what it looks like and what the option expects.
    """
    from sam2elnet.data.masks import image_like_label

    for files, option, named in ((truths, "--truth", _truth()), (preds, "--pred", _pred())):
        first = next((files[k] for k in keys if files[k].suffix.lower() in MASK_SUFFIXES), None)
        if first is None or not first.is_file():
            continue
        prob = option == "--pred" and first.suffix.lower() not in LOSSY_SUFFIXES
        kind = image_like_label(first, probability_ok=prob)  # one bounded sample
        if not kind:
            continue
        wanted = {
            "--truth": "ground-truth masks (0/255, 0/1 or class values)",
            "--pred": "predicted labels (masks) or probability maps",
        }[option]
        raise UserError(
            f"looks like an image, not a mask ({kind}); {named} expects {wanted}: give the "
            "labels' folder, not the images'",
            first,
        )
