"""The masks folder of ``elnet import``: after an import it holds exactly that import's masks.

Every importer (Label Studio, COCO / CVAT, QGIS polygons) writes its masks through
:class:`MaskFolder`: into a hidden temporary folder inside ``--out`` first, then, when every
mask is written, into ``--out`` by ``os.replace`` (same file system). So an error or an
interruption while masks are made leaves ``--out`` as it was.

Re-importing into the same folder: ``--out/.elnet-import.json``
(:data:`~sam2elnet.data.naming.IMPORT_RECORD`) lists the masks of the last import. Masks of that list that the new import does not write (a task skipped
now, an image no longer in the review set) are *stale*: they are removed, and the result names
them. An image file (:data:`~sam2elnet.data.naming.IMAGE_SUFFIXES`: a mask or an image) in
``--out`` that no import recorded and that this import does not replace (hand labels, the images
themselves when ``--out`` is their folder) stops the import before ``--out`` changes: one error
line naming it (``--out`` named as the images' folder when the files are named like the masks);
move such files away or choose a new ``--out``. One that a mask of this import replaces is
replaced when it can be a mask (the masks of a folder imported before the manifest existed), and
stops the import when it is an image (:func:`~sam2elnet.data.masks.image_like_label`: a PNG image
in ``--out``, imported without ``--images``, would be overwritten by its mask). Other files
(notes, hidden files) are left alone. The manifest is rewritten before files move (listing the
old and the new masks) and after (the new ones only), so an interrupted commit is cleaned up by
the next import.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from sam2elnet.data.naming import (
    GEO_SUFFIXES,
    IMPORT_RECORD,
    image_files,
    imported_masks,
)
from sam2elnet.errors import DataError, UserError
from sam2elnet.export.image_lookup import ExportImage
from sam2elnet.utils.advice import name_sample, plural

__all__ = [
    "CommitCheck",
    "MaskFolder",
    "MaskGrid",
    "mask_grid",
    "category_note",
    "check_category",
    "removed_note",
    "write_masks",
]

_TMP_PREFIX = ".elnet-import-"


class MaskGrid(NamedTuple):
    """What a reviewed mask takes from its image (:func:`mask_grid`)."""

    shape: tuple[int, int]
    """(H, W) in pixels."""
    like: Any
    """The read image (:class:`~sam2elnet.data.images.RasterImage`) when it is a GeoTIFF: the
    mask takes its CRS + transform or GCPs; None otherwise."""
    nodata: np.ndarray | None
    """bool (H, W), True where the image has no measurement (its nodata value, or a PNG's
    transparent pixels: alpha 0); those pixels are 127 (nodata / ignore) in the mask. None: none."""
    image: Any = None
    """The read image (:class:`~sam2elnet.data.images.RasterImage`, any format: its profile
    places a vector layer on it); None for a mask made from a size alone."""

    @property
    def suffix(self) -> str:
        """``.tif`` (with the georeference) for a GeoTIFF image, else ``.png``."""
        return ".tif" if self.like is not None else ".png"


def mask_grid(src: Path) -> MaskGrid:
    """Read the image ``src`` for the mask of a reviewed task, as every ``elnet import`` and
    ``elnet serve`` write it (:func:`~sam2elnet.data.writers.write_mask` with ``like`` and
    ``nodata``): the same size, the image's georeference when it is a GeoTIFF, and 127 where it
    has no data (a nodata value, or transparency in a PNG / TIFF alpha band). Reading warnings
    (a missing CRS, ...) are not repeated: the image was read when the task was made.

    Raises:
        DataError: ``src`` cannot be read as an image (:func:`~sam2elnet.data.images.read_image`).
    """
    from sam2elnet.data.images import read_image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        img = read_image(src)
    like = img if src.suffix.lower() in GEO_SUFFIXES else None
    return MaskGrid(img.shape, like, img.nodata, img)


CommitCheck = Callable[[Path, list[Path], dict[str, Path]], None]
"""``check(out, masks, images)``, called by :meth:`MaskFolder.commit` before anything moves into
``out``: ``masks`` the masks written (their paths in a hidden folder inside ``out``), ``images``
mask name -> the image file the import read for it (masks without one: absent). An error it
raises stops the import with ``out`` unchanged (``elnet import --with-labels``:
:meth:`~sam2elnet.export.train_set.TrainSetPlan.check_reviewed`)."""


def _mask_files(out: Path) -> set[str]:
    if not out.is_dir():
        return set()
    return {f.name for f in image_files(out)}


def _check_unrecorded(out: Path, unrecorded: set[str], new: set[str]) -> None:
    """Stop an import whose ``--out`` holds image files no earlier import recorded (names in
    ``unrecorded``) before anything moves into it.

    * One that a mask of this import (``new``: its names) would replace is replaced only when
      it can be a mask (an import made before the manifest existed); an image (continuous
      values or colour, :func:`~sam2elnet.data.masks.image_like_label`) is not: ``--out`` is
      then the folder of the images, and the masks would overwrite them.
    * The others stop the import: named like this import's masks (``x.jpg`` for ``x.png``),
      they are the images (``--out`` is their folder); else they are images or masks from
      elsewhere, which the masks would mix with.

    Raises:
        UserError: one line naming ``--out``, the files (first three, by name) and what to do.
    """
    from sam2elnet.data.masks import image_like_label

    for name in sorted(unrecorded & new):
        why = image_like_label(out / name)
        if why:
            raise UserError(
                f"--out holds {name}, an image ({why}) that this import's mask {name} would "
                "replace: --out is the folder of the images; nothing written: give --out a "
                "folder of its own for the masks (e.g. a masks/ next to images/)",
                out,
            )
    foreign = sorted(unrecorded - new)
    if not foreign:
        return
    n = len(foreign)
    files = f"{plural(n, 'file')} ({'/'.join(sorted({Path(f).suffix for f in foreign}))})"
    stems = {Path(m).stem: m for m in new}
    twins = [f"{f} for mask {stems[Path(f).stem]}" for f in foreign if Path(f).stem in stems]
    if twins:
        raise UserError(
            f"--out holds {files} that no earlier elnet import wrote, {len(twins)} named like "
            f"this import's masks ({name_sample(twins, 3)}): --out is the folder of the images; "
            "nothing written: give --out a folder of its own for the masks (e.g. a masks/ next "
            "to images/)",
            out,
        )
    raise UserError(
        f"--out holds {files} that no earlier elnet import wrote and this one does not replace "
        f"({name_sample(foreign, 3)}): images, or masks made elsewhere; nothing written: move "
        "them away or give --out a new folder, so it holds only this import's masks",
        out,
    )


def check_category(category: str | None, names: Iterable[str], what: str, path: Path) -> None:
    """Stop an import whose ``--category`` the export does not have (a typo would give
    all-background masks). The COCO / CVAT imports select a category by this rule.

    Args:
        category: The ``--category`` (None: all categories, nothing to check).
        names: The export's category / label names.
        what: The export, for the message (``"the COCO file"``).
        path: The export file, named in the message.

    Raises:
        UserError: ``category`` is not among ``names`` (the message lists them).
    """
    have = sorted({str(n) for n in names})
    if category is not None and category not in have:
        raise UserError(f"category {category!r} is not in {what} (has {have})", path)


def category_note(category: str | None, used: Iterable[str], what: str) -> list[str]:
    """The note of an import without ``--category`` over an export whose regions carry several
    categories: they are unioned into one mask per image (empty list: no note)."""
    names = sorted({str(n) for n in used})
    if category is not None or len(names) < 2:
        return []
    return [
        f"{what} has {len(names)} categories ({', '.join(names)}): their regions are "
        "unioned into one mask per image; --category NAME keeps one"
    ]


def write_masks(
    entries: list[ExportImage],
    sources: list[Any],
    folder: MaskFolder,
    what: str,
    path: Path,
    progress: bool,
    local: Callable[[Any], contextlib.AbstractContextManager[Path]] = contextlib.nullcontext,
    keep: Callable[[str, str, np.ndarray], bool] | None = None,
) -> tuple[list[Path], list[tuple[str, str]]]:
    """Write each export image's mask into ``folder`` (not committed): ``<stem>.tif`` with the
    image's georeference when its image (``sources``: a file, or what ``local`` turns into one;
    None: none) is a GeoTIFF, else ``<stem>.png``; the image's nodata pixels 127. Each image is
    read when its mask is written, inside ``local(source)`` (default: the source is the file;
    a zip's image is extracted for that time only). ``keep(stem, name, mask)`` False: no mask
    for that image (``--reviewed-only``, :class:`~sam2elnet.export.review_set.ReviewCheck`).

    Returns:
        (masks written, (stem, reason) of the images skipped: no size known, or the entry's
        ``mask`` gave a reason).

    Raises:
        DataError: an image under ``--images`` whose size is not the one the export gives
            (another image of that name: the wrong folder), naming both sizes.
    """
    from sam2elnet.utils.progress import track

    written: list[Path] = []
    skipped: list[tuple[str, str]] = []
    for e, src in track(
        list(zip(entries, sources, strict=True)), "import", "img", progress, skipped=skipped
    ):
        size = e.size
        grid = None if size is None else MaskGrid(size, None, None)  # no image: a PNG mask
        image = src if local is contextlib.nullcontext else None  # a zip's copy is temporary
        if src is not None:
            with local(src) as src:
                grid = mask_grid(src)  # size, georeference, nodata (PNG alpha too)
            if size is not None and grid.shape != size:
                h, w = size
                raise DataError(
                    f"image {e.name} is {grid.shape[1]}x{grid.shape[0]} px in {src}, "
                    f"{what} says {w}x{h}: that is another image of the name; give --images "
                    "the folder the task's images came from",
                    path,
                )
        if grid is None:
            skipped.append(
                (
                    e.stem,
                    f"{what} gives no size for it and no --images holds its image; give --images",
                )
            )
            continue
        mask = e.mask(*grid.shape)
        if isinstance(mask, str):
            skipped.append((e.stem, mask))
            continue
        if keep is not None and not keep(e.stem, e.name, mask):
            continue
        name = f"{e.stem}{grid.suffix}"
        written.append(folder.write(name, mask, like=grid.like, nodata=grid.nodata, image=image))
    return written, skipped


def removed_note(out: Path, removed: list[str]) -> list[str]:
    """The note naming the stale masks a re-import removed (empty list: no note)."""
    if not removed:
        return []
    return [
        f"removed {plural(len(removed), 'mask')} an earlier import wrote into {out} that this "
        "import does "
        f"not write: {name_sample(removed, 5)}"
    ]


class MaskFolder:
    """``with MaskFolder(out, source) as folder: folder.write(...)``, then :meth:`commit`.

    Args:
        out: The masks folder (made when missing; removed again when the import fails and left
            it empty).
        source: The export file imported (recorded in the manifest).
        images: The ``--images`` folder or file: ``out`` may not be that folder (masks named
            like the images would replace them).
        check: Called by :meth:`commit` before anything moves (:data:`CommitCheck`); None: no
            check.

    Attributes:
        images: Mask name -> the image file the import read for it (:meth:`write`'s
            ``image``), for :attr:`~sam2elnet.export.import_result.ImportResult.images`.

    Raises:
        UserError: ``out`` is a file, or the images' folder.
    """

    def __init__(
        self,
        out: Path,
        source: Path,
        images: Path | None = None,
        check: CommitCheck | None = None,
    ) -> None:
        self.out, self.source = Path(out), Path(source)
        if self.out.exists() and not self.out.is_dir():
            raise UserError("--out must be a folder for the masks", self.out)
        if images is not None:
            img_dir = images if images.is_dir() else images.parent
            if self.out.resolve() == img_dir.resolve():
                raise UserError(
                    "--out is the folder of the --images: masks are named like their images "
                    "and would replace them; give another folder (e.g. a masks/ next to images/)",
                    self.out,
                )
        self.check = check
        self.names: list[str] = []
        self.images: dict[str, Path] = {}
        self.removed: list[str] = []
        self._committed = False

    def __enter__(self) -> MaskFolder:
        from sam2elnet.utils.paths import check_output

        check_output(self.out, "dir", "--out")  # under a file: UserError, not NotADirectoryError
        self._made = not self.out.exists()
        self.out.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=self.out))
        return self

    def write(
        self,
        name: str,
        mask: np.ndarray,
        like: Any = None,
        nodata: Any = None,
        image: Path | None = None,
    ) -> Path:
        """Write one mask (:func:`sam2elnet.data.writers.write_mask`) as ``name``; returns the
        path it will have in ``out`` once committed. ``image``: the image file it was made
        for (recorded in :attr:`images`; None: none, or not a lasting file)."""
        from sam2elnet.data.writers import write_mask

        write_mask(self.tmp / name, mask, like=like, nodata=nodata)
        self.names.append(name)
        if image is not None:
            self.images[name] = Path(image)
        return self.out / name

    def _write_manifest(self, names: set[str] | list[str]) -> None:
        from sam2elnet.utils.atomic import write_json_atomic

        write_json_atomic(
            self.out / IMPORT_RECORD,
            {"source": str(self.source.resolve()), "masks": sorted(names)},
        )

    def commit(self) -> list[str]:
        """Move the masks into ``out``, remove the stale ones of the last import; returns their
        names (sorted).

        Raises:
            UserError: ``out`` holds image files (:data:`~sam2elnet.data.naming.IMAGE_SUFFIXES`)
                no import recorded that this one does not replace, or an image (not a mask,
                :func:`~sam2elnet.data.masks.image_like_label`) that a mask of this import would
                replace (:func:`_check_unrecorded`; nothing in ``out`` changed), or as the
                ``check`` given (nothing in ``out`` changed either).
        """
        new = set(self.names)
        before = imported_masks(self.out)
        present = _mask_files(self.out)
        _check_unrecorded(self.out, present - before, new)
        if self.check is not None:  # before anything moves
            self.check(self.out, [self.tmp / n for n in self.names], dict(self.images))
        stale = sorted((present & before) - new)
        self._write_manifest(before | new)  # an interruption below: the next import cleans up
        for name in self.names:
            os.replace(self.tmp / name, self.out / name)
        for name in stale:
            (self.out / name).unlink(missing_ok=True)
        self._write_manifest(new)
        self._committed = True
        self.removed = stale
        for old in self.out.glob(f"{_TMP_PREFIX}*"):  # left by an import that was killed
            if old != self.tmp and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
        return stale

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
        if not self._committed and self._made:
            with contextlib.suppress(OSError):
                self.out.rmdir()  # only when empty
