"""The next training set after a review: reviewed masks over the kept auto-labels, one folder.

``elnet import ... --with-labels RUN/labels`` (:func:`plan_train_set` before the import,
:meth:`TrainSetPlan.build` after it; :func:`build_train_set` does both) writes
``TRAIN/images/`` and ``TRAIN/masks/`` (the generic layout ``elnet train --data TRAIN`` reads,
:func:`~sam2elnet.data.layouts.discover`), images and masks paired by the trainer's keys
(:func:`~sam2elnet.data.layouts.image_key` / :func:`~sam2elnet.data.layouts.label_key`):

* a reviewed mask (listed in the import folder's
  :data:`~sam2elnet.data.naming.IMPORT_RECORD`) wins over the auto-label of its image;
* the kept auto-labels (``RUN/labels``) fill the rest;
* the rejected labels (``RUN/rejected``) nobody reviewed are left out (counted);
* a reviewed mask's image is the one its import read (the image the mask has the size and
  georeference of, :attr:`~sam2elnet.export.import_result.ImportResult.images`); any other
  mask's is the run's (``quality.csv``'s ``image`` column,
  :func:`~sam2elnet.data.runfolder.label_quality_csv`), else the one of its key under
  ``images`` (the import's ``--images``); a mask without an image is an error.

Images are hard-linked where the file system allows, else copied (large, and no tool of ours
edits an image); masks are always copied (small, and a mask edited in place in ``TRAIN`` must
not change the reviewed mask or the auto-label it came from): sources are never changed.
The folder is built in a hidden temporary folder beside ``TRAIN`` and renamed into place, so
``TRAIN`` is the old set or the new one, never half of one; building again (a re-import)
replaces it. ``TRAIN/.elnet-train-set.json`` (:data:`TRAIN_SET_RECORD`) records where each mask
came from; a ``TRAIN`` that exists without it (a folder of the user's) is refused.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from sam2elnet.errors import DataError, UserError
from sam2elnet.utils.advice import name_sample, plural

__all__ = [
    "TRAIN_SET_DIR",
    "TRAIN_SET_RECORD",
    "TrainSet",
    "TrainSetPlan",
    "build_train_set",
    "plan_train_set",
]

TRAIN_SET_DIR = "train-set"
"""Default training folder of ``elnet import --with-labels``: ``--out/train-set``."""
TRAIN_SET_RECORD = ".elnet-train-set.json"
"""The record of a built training folder (JSON: ``reviewed``, ``labels``, ``masks``: mask name
-> ``"reviewed"`` / ``"auto-label"``, ``images``: image name -> source file)."""
_TMP = ".elnet-train-set-"
_STALE_S = 3600
"""A temporary folder beside the training folder untouched this long (seconds) was left by a
build that was killed; the next build removes it (a build running beside it writes into its own
every image)."""
_REJECTED = (
    "--with-labels gives labels the quality filter rejected: they are what review is for, not "
    "training data (the reviewed ones come in through this import); give the kept auto-labels, "
    "RUN/labels, or the run folder"
)


@dataclass
class TrainSet:
    """What :meth:`TrainSetPlan.build` wrote into ``folder``."""

    folder: Path
    n_reviewed: int  #: reviewed masks
    n_replacing: int  #: of them, masks that replace a kept auto-label of their image
    n_auto: int  #: kept auto-labels nobody reviewed
    n_left_out: int  #: rejected labels nobody reviewed (no mask, image left out)
    n_linked: int = 0  #: images hard-linked (the others, and every mask, were copied)
    n_files: int = 0  #: images written
    model: Path | None = None  #: the model that made the auto-labels (the run's), if it exists
    none_kept: bool = False  #: the run kept no auto-label (:meth:`line` says so)

    def line(self) -> str:
        """``train set DIR: 2 reviewed masks (1 replacing its kept auto-label), 3 auto-labels
        kept, 4 rejected labels nobody reviewed left out``; a second line when the run kept no
        auto-label (the set is the reviewed masks only)."""
        how = "images hard-linked" if self.n_linked == self.n_files else (
            "images copied" if not self.n_linked
            else f"{self.n_linked} images hard-linked, the rest copied"
        )  # fmt: skip
        return (
            f"train set {self.folder}: {self.n_reviewed} reviewed masks ({self.n_replacing} "
            f"replacing their kept auto-label), {self.n_auto} auto-labels kept, "
            f"{self.n_left_out} rejected labels nobody reviewed left out ({how}, masks copied)"
        ) + (
            "\ntrain set: the run kept no auto-label (the quality filter rejected every one): "
            "the set is the reviewed masks only" if self.none_kept else ""
        )  # fmt: skip


@dataclass
class TrainSetPlan:
    """The checked inputs of a training folder (:func:`plan_train_set`); :meth:`build` writes it
    once the reviewed masks are in place."""

    labels: Path  #: the kept auto-labels' folder
    folder: Path  #: the training folder to write
    images: Path | None  #: the import's ``--images`` (None: the run's images only)
    kept: dict[str, Path]  #: key -> kept auto-label
    rejected: dict[str, Path]  #: key -> rejected label
    run_images: dict[str, Path] = field(default_factory=dict)  #: key -> the run's image
    none_kept: bool = False  #: the run kept no auto-label: the set is the reviewed masks only

    def check_reviewed(self, out: Path, masks: list[Path], images: dict[str, Path]) -> None:
        """Check the masks an import is about to move into ``out`` (a
        :data:`~sam2elnet.export.mask_folder.CommitCheck`, called before they move): each
        pairs with an image (the one the import made it for, ``images``: mask name -> file;
        else the run's, else one under ``images``), no two of one key.

        Raises:
            UserError: as :meth:`build` would, naming ``out`` (nothing written yet).
        """
        rev = _keyed(masks, out)
        _images_for({k: (p, "") for k, p in rev.items()}, self._pairs(rev, images), self.images,
                    out, self.folder, "nothing written")  # fmt: skip

    def _pairs(self, rev: dict[str, Path], images: dict[str, Path] | None) -> dict[str, Path]:
        """Key -> image known without a search: the run's, and for a reviewed mask the image
        its import read (that one wins: the mask has its size and georeference)."""
        given = {k: images[p.name] for k, p in rev.items() if p.name in (images or {})}
        return {**self.run_images, **given}

    def build(self, reviewed: Path, images: dict[str, Path] | None = None) -> TrainSet:
        """Write the training folder from the masks ``elnet import`` wrote into ``reviewed``;
        ``images``: mask name -> the image the import made it for
        (:attr:`~sam2elnet.export.import_result.ImportResult.images`; a mask not in it pairs
        with the run's image, else the one of its key under ``images``).

        Raises:
            UserError: a reviewed mask pairs with no image (neither the run's nor one under
                ``images``), or two reviewed masks or two images of one key; the training
                folder is then left as it was.
        """
        from sam2elnet.data.naming import imported_masks
        from sam2elnet.data.run_model import run_model_path
        from sam2elnet.export.run_info import label_tags

        names = sorted(imported_masks(reviewed))
        rev = _keyed([reviewed / n for n in names if (reviewed / n).is_file()], reviewed)
        masks = {**{k: (p, "auto-label") for k, p in self.kept.items() if k not in rev},
                 **{k: (p, "reviewed") for k, p in rev.items()}}  # fmt: skip
        pairs = _images_for(masks, self._pairs(rev, images), self.images, reviewed, self.folder,
                            f"the masks are in {reviewed}, the training folder was not written")  # fmt: skip
        res = TrainSet(
            self.folder,
            n_reviewed=len(rev),
            n_replacing=len(rev.keys() & self.kept.keys()),
            n_auto=len(self.kept.keys() - rev.keys()),
            n_left_out=len(self.rejected.keys() - rev.keys()),
            model=run_model_path(self.labels, label_tags(self.labels)),
            none_kept=self.none_kept,
        )
        if not masks:
            raise UserError(
                "no mask for the training set: the run kept no auto-label and the import wrote "
                f"no reviewed mask; the masks are in {reviewed}, the training folder was not "
                "written",
                self.folder,
            )
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = _new_temp_folder(self.folder.parent)
        try:
            record: dict[str, dict[str, str]] = {"masks": {}, "images": {}}
            (tmp / "images").mkdir()
            (tmp / "masks").mkdir()
            for k in sorted(masks):
                (mask, origin), image = masks[k], pairs[k]
                res.n_linked += _link(image, tmp / "images" / image.name)
                shutil.copy2(mask, tmp / "masks" / mask.name)  # a copy: edited in place safely
                record["masks"][mask.name] = origin
                record["images"][image.name] = str(image.resolve())
            res.n_files = len(masks)  # images: linked or copied
            doc = {"reviewed": str(reviewed.resolve()), "labels": str(self.labels.resolve()),
                   **record}  # fmt: skip
            (tmp / TRAIN_SET_RECORD).write_text(json.dumps(doc, indent=1), encoding="utf-8")
            _swap_in(tmp, self.folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return res


def plan_train_set(
    labels: str | Path,
    folder: str | Path,
    *,
    images: str | Path | None = None,
    keep_clear: tuple[Path | None, ...] = (),
) -> TrainSetPlan:
    """Check the inputs of a training folder before anything is imported or written.

    Args:
        labels: The kept auto-labels: ``RUN/labels``, or the run folder ``RUN`` (its
            ``labels/``). Its run's ``rejected/`` labels are counted as left out. A run that
            kept none (no or an empty ``labels/`` beside ``rejected/``) gives a set of the
            reviewed masks only (:attr:`TrainSet.none_kept`).
        folder: The training folder to write (``images/``, ``masks/``); may exist only as one
            this module built.
        images: A folder (searched with its sub-folders) or an image file holding the images of
            masks whose run image is not known (``elnet import --images``).
        keep_clear: Folders ``folder`` may not be or hold (``--out``, ``--images``): replacing
            the training folder would move them; checked by path (resolved, need not exist
            yet): ``--out/train-set`` is allowed, ``--train-set`` equal to or above ``--out``
            is not.

    Raises:
        UserError: ``labels`` is not a folder of label rasters (missing, a file, no labels, or
            images), is ``RUN/rejected`` or holds labels its ``quality.csv`` marks
            ``kept=False`` (rejected labels are what review is for), two labels of one key, a
            kept label whose image is found nowhere, or a
            ``folder`` that is a file, holds an input, or is a folder this module did not build.
    """
    from sam2elnet.data.masks import image_like_label
    from sam2elnet.data.runfolder import RUN_MASK_FOLDERS
    from sam2elnet.export.labels import find_labels

    lp = Path(labels)
    kept_dir, rej_name = RUN_MASK_FOLDERS
    if lp.is_dir() and any((lp / d).is_dir() for d in RUN_MASK_FOLDERS):
        lp = lp / kept_dir  # the run folder: its kept labels
    if lp.name == rej_name:
        raise UserError(_REJECTED, lp)
    none_kept = lp.name == kept_dir and (lp.parent / rej_name).is_dir() and not lp.is_file()
    none_kept = none_kept and (not lp.is_dir() or not _has_labels(lp))  # the run kept no label
    if not lp.is_dir() and not none_kept:
        what = "is a file" if lp.is_file() else "does not exist"
        raise UserError(
            f"--with-labels {what}: give the folder of the kept auto-labels (RUN/labels of "
            "elnet annotate / enhance)",
            lp,
        )
    try:
        files = find_labels(lp) if not none_kept else []
    except DataError as err:
        raise UserError(f"--with-labels holds no labels: {err.args[0]}", lp) from None
    why = image_like_label(files[0]) if files else ""
    if why:
        raise UserError(
            f"--with-labels holds images, not labels ({files[0].name}: {why}); give the folder "
            "of the kept auto-labels (RUN/labels of elnet annotate / enhance)",
            lp,
        )
    kept = _keyed(files, lp)
    rej_dir = lp.parent / RUN_MASK_FOLDERS[1]
    rejected = {}
    if lp.name == RUN_MASK_FOLDERS[0] and rej_dir.is_dir():
        try:
            rejected = _keyed(find_labels(rej_dir), rej_dir)
        except DataError:  # an empty rejected/: nothing left out
            rejected = {}
    out = Path(folder)
    _check_folder(out, [lp, rej_dir, *(Path(p) for p in (images, *keep_clear) if p is not None)])
    plan = TrainSetPlan(lp, out, Path(images) if images is not None else None, kept, rejected)
    plan.none_kept = not kept
    _refuse_rejected(lp, files)
    plan.run_images = _run_images(lp, [*kept.values(), *rejected.values()])
    _images_for({k: (p, "") for k, p in kept.items()}, plan.run_images, plan.images, lp, out)
    return plan


def build_train_set(
    reviewed: str | Path,
    labels: str | Path,
    folder: str | Path,
    *,
    images: str | Path | None = None,
) -> TrainSet:
    """:func:`plan_train_set`, then :meth:`TrainSetPlan.build` from the masks an earlier
    ``elnet import`` wrote into ``reviewed``. Raises as those."""
    plan = plan_train_set(labels, folder, images=images, keep_clear=(Path(reviewed),))
    return plan.build(Path(reviewed))


# ---------------------------------------------------------------------------- helpers
def _keyed(files: list[Path], where: Path) -> dict[str, Path]:
    """Key -> label (:func:`~sam2elnet.data.layouts.by_key`, the trainer's rule); two labels of
    one key are an error naming ``where``."""
    from sam2elnet.data.layouts import by_key, label_key

    return by_key(files, label_key, "labels", where=where, advice="")


def _run_images(labels: Path, files: list[Path]) -> dict[str, Path]:
    """Key -> the image each label of the run was made from (its ``quality.csv``), when the
    file exists."""
    from sam2elnet.data.layouts import label_key
    from sam2elnet.data.runfolder import image_paths_by_stem, label_quality_csv, read_quality_table

    table = label_quality_csv(labels)
    if table is None:
        return {}
    by_stem = image_paths_by_stem(read_quality_table(table))
    return {label_key(f): by_stem[f.stem] for f in files if by_stem.get(f.stem, Path()).is_file()}


def _images_for(
    masks: dict[str, tuple[Path, str]],
    known: dict[str, Path],
    images: Path | None,
    where: Path,
    skip: Path,
    written: str = "nothing written",
) -> dict[str, Path]:
    """Key -> image for every mask: the ``known`` one (the import's, the run's), else the one
    of that key (:func:`~sam2elnet.data.layouts.image_key`) among the images under ``images``,
    sub-folders included (:func:`~sam2elnet.data.naming.list_images`; not under ``skip``, the
    training folder).

    Raises:
        UserError: masks whose image is found nowhere (naming three), or two images of one
            key under ``images`` that a mask needs.
    """
    from sam2elnet.data.layouts import image_key
    from sam2elnet.data.naming import list_images

    found: dict[str, list[Path]] = {}
    need = [k for k in masks if k not in known]
    if need and images is not None:
        try:
            files = list_images(images, recursive=True)
        except UserError:  # no image under --images: the masks that need one are named below
            files = []
        if not images.is_file():  # the training folder's own images are no candidates
            root = skip.resolve()
            files = [f for f in files if not f.resolve().is_relative_to(root)]
        for f in files:
            found.setdefault(image_key(f), []).append(f)
    pairs = dict(known)
    missing = []
    for k in need:
        cands = found.get(k, [])
        if len(cands) > 1:
            raise UserError(
                f"two images pair with mask {masks[k][0].name}: {cands[0]} and {cands[1]}; "
                "give --images a folder with one of them",
                images,
            )
        if cands:
            pairs[k] = cands[0]
        else:
            missing.append(masks[k][0].name)
    if missing:
        where_from = f"--images {images}" if images is not None else "no --images given"
        raise UserError(
            f"{plural(len(missing), 'mask pairs', 'masks pair')} with no image "
            f"({name_sample(sorted(missing), 3)}): not in the run's quality.csv and "
            f"{where_from}; give --images the folder of the images "
            f"{'it was' if len(missing) == 1 else 'they were'} made from; {written}",
            where,
        )
    return {k: pairs[k] for k in masks}


def _has_labels(folder: Path) -> bool:
    """Whether ``folder`` holds a label raster (:func:`~sam2elnet.export.labels.find_labels`)."""
    from sam2elnet.export.labels import find_labels

    try:
        return bool(find_labels(folder))
    except DataError:
        return False


def _refuse_rejected(folder: Path, files: list[Path]) -> None:
    """Refuse ``files`` its ``quality.csv`` marks rejected (``kept`` False).

    Raises:
        UserError: naming the count, a sample and the table.
    """
    from sam2elnet.data.runfolder import kept_by_stem, label_quality_csv, read_quality_table

    table = label_quality_csv(folder)
    verdict = kept_by_stem(read_quality_table(table)) if table is not None else {}
    bad = [f.name for f in files if verdict.get(f.stem) is False]
    if bad:
        raise UserError(
            f"{_REJECTED} ({len(bad)} of {len(files)} labels have kept=False in {table}: "
            f"{name_sample(bad, 3)})",
            folder,
        )


def _check_folder(out: Path, inputs: list[Path]) -> None:
    """``out`` may be written: not a file, not holding an input, absent, empty or one this
    module built (its :data:`TRAIN_SET_RECORD`). Inputs are compared by resolved path whether
    they exist or not (an import's ``--out`` is made after this check)."""
    if out.exists() and not out.is_dir():
        raise UserError("the training folder is a file; give a folder (--train-set DIR)", out)
    res = out.resolve()
    for p in inputs:
        if p.resolve().is_relative_to(res):
            raise UserError(
                f"the training folder is or holds {p}: building it replaces the folder and "
                "everything in it; give --train-set a folder of its own (default: "
                "--out/train-set)",
                out,
            )
    if out.is_dir() and any(out.iterdir()) and not (out / TRAIN_SET_RECORD).is_file():
        raise UserError(
            f"the training folder exists and was not built by elnet import (no "
            f"{TRAIN_SET_RECORD}): it would be replaced; give --train-set a new folder",
            out,
        )


def _link(src: Path, dst: Path) -> int:
    """Hard-link ``src`` as ``dst`` (1), else copy it (0: another file system, or links not
    allowed)."""
    try:
        os.link(src, dst)
        return 1
    except OSError:
        shutil.copy2(src, dst)
        return 0


def _new_temp_folder(parent: Path) -> Path:
    """A new, empty hidden folder ``parent/.elnet-train-set-<8 hex>`` made by a plain
    ``mkdir``, so it has the mode of any new folder (the umask's): the training folder is
    renamed from it, and ``tempfile.mkdtemp``'s mode 0700 made the set unreadable to anyone
    but its owner. Raises ``OSError`` when ``parent`` is not writable."""
    while True:
        tmp = parent / f"{_TMP}{secrets.token_hex(4)}"
        try:
            tmp.mkdir()
            return tmp
        except FileExistsError:
            continue


def _swap_in(tmp: Path, folder: Path) -> None:
    """Rename the built ``tmp`` to ``folder``; an old ``folder`` is renamed aside first and
    removed after (so ``folder`` is the old set or the new one). Another temporary folder
    beside it is removed only when stale (untouched for :data:`_STALE_S`: a killed build's),
    never one a build running beside this one is writing."""
    old = None
    if folder.exists():
        old = Path(tempfile.mkdtemp(prefix=_TMP, dir=folder.parent))
        os.replace(folder, old / folder.name)
    os.replace(tmp, folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)

    now = time.time()
    for left in folder.parent.glob(f"{_TMP}*"):  # left by a build that was killed
        if left.is_dir() and now - _touched(left) > _STALE_S:
            shutil.rmtree(left, ignore_errors=True)


def _touched(folder: Path) -> float:
    """The newest modification time (seconds since the epoch) of ``folder`` and the folders in
    it (a build adds a file to ``images/`` or ``masks/`` for every image); 0 when gone."""
    try:
        dirs = [folder, *(d for d in folder.iterdir() if d.is_dir())]
        return max(d.stat().st_mtime for d in dirs)
    except OSError:
        return 0.0
