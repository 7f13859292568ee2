"""The images of an annotation tool's export, found under ``--images``: one lookup rule for
every importer (Label Studio, COCO / CVAT, QGIS polygons).

:class:`ExportImage` describes one image of an export; :func:`find_image` finds its file by the
name the export gives (:func:`image_candidates`: the name with its folders, its stem with an
image suffix, GeoTIFFs first, then the same at the top of ``--images``); :func:`find_images`
does so for all of an export's images after :func:`check_unique_stems` (two images that would
give one mask name stop the import) and :func:`missing_note` counts those not found. The masks
are then written by :func:`sam2elnet.export.mask_folder.write_masks`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from sam2elnet.data.naming import STEM_LOOKUP_SUFFIXES
from sam2elnet.errors import UserError
from sam2elnet.utils.advice import name_sample, none_of, plural

__all__ = [
    "ExportImage",
    "check_unique_stems",
    "find_image",
    "find_images",
    "image_candidates",
    "missing_note",
    "none_found",
    "sought_names",
]


def find_image(images: Path, name: str, n_images: int = 1) -> Path | None:
    """The file under ``images`` of an image an annotation tool's export names.

    Every importer (COCO / CVAT, Label Studio) looks its images up by this one rule: ``name``
    as the export gives it, folders included (``palsar/x.tif``, as CVAT and Label Studio's
    local files keep them), then its stem with an image suffix (:data:`~sam2elnet.data.naming.IMAGE_SUFFIXES`,
    GeoTIFFs first, lower or upper case) in that folder (``palsar/x.jpg`` for CVAT's mask ``palsar/x.png``), then its
    file name at the top of ``images``, then its stem with an image suffix there. ``images`` may
    be one image file: it is the image when its stem is ``name``'s, or when the export holds one
    image only.

    Args:
        images: The ``--images`` folder, or one image file.
        name: The image name of the export: a relative path (``/`` or ``\\`` separate
            folders; ``..`` and a leading ``/`` are dropped, so the lookup stays under
            ``images``), or a URL's path part.
        n_images: Images in the export (a single ``images`` file stands for the only one).

    Returns:
        The image file, or None when there is none.
    """
    rel = PurePosixPath(str(name).replace("\\", "/"))
    if images.is_file():
        return images if images.stem == rel.stem or n_images == 1 else None
    cands = (images.joinpath(*c.split("/")) for c in image_candidates(name))
    return next((c for c in cands if c.is_file()), None)


def image_candidates(name: str) -> list[str]:
    """The relative paths (``/``-separated, in lookup order) :func:`find_image` tries for an
    export's image ``name`` under a folder: ``name`` itself, its stem with each image suffix in
    its folder, its file name, its stem with each image suffix (``..``, ``.`` and a leading
    ``/`` dropped). A zip's images are looked up by the same list."""
    rel = PurePosixPath(str(name).replace("\\", "/"))
    parts = [q for q in rel.parts if q not in ("", "/", "..", ".")]
    cands = ["/".join(parts)] if parts else []
    suffixes = STEM_LOOKUP_SUFFIXES + tuple(x.upper() for x in STEM_LOOKUP_SUFFIXES)
    if len(parts) > 1:
        cands += ["/".join([*parts[:-1], f"{rel.stem}{s}"]) for s in suffixes]
    cands.append(rel.name)
    cands += [f"{rel.stem}{s}" for s in suffixes]
    return cands


def check_unique_stems(
    images: Iterable[tuple[str, str]], what: str, remedy: str, path: Path
) -> None:
    """Stop an import whose images would give two masks of one name.

    A mask is named by its image's file stem (``palsar/x.png`` and ``sentinel/x.png`` both give
    ``x.png``), so two images of one stem in different folders (or with different suffixes)
    would overwrite each other's mask, or one's reviewed label would be dropped. Every importer
    of an annotation tool's export (COCO / CVAT, Label Studio) applies this rule to all its
    images before writing anything.

    Args:
        images: (mask stem, image name as the export gives it: ``palsar/x.png``, a URL) per
            image, each image once (Label Studio's import passes a task duplicated in the tool
            once).
        what: The export, for the message (``"the COCO file"``).
        remedy: What to do, for the message (``"rename one in the CVAT task, ..."``).
        path: The export file, named in the message.

    Raises:
        UserError: two images with one mask stem, naming both.
    """
    seen: dict[str, str] = {}
    for stem, name in images:
        if stem in seen:
            raise UserError(
                f"two images of {what} are named {stem} ({seen[stem]}, {name}): their masks "
                f"would overwrite each other; {remedy}",
                path,
            )
        seen[stem] = name


@dataclass
class ExportImage:
    """One image of an annotation tool's export (COCO, CVAT), for
    :func:`~sam2elnet.export.mask_folder.write_masks`.

    Attributes:
        name: The image name as the export gives it, folders kept (``palsar/x.jpg``); the mask
            is ``<stem>.tif`` / ``.png``.
        size: (height, width) in px the export gives, or None when it gives none (the image
            under ``--images`` then sets it).
        mask: Called with (height, width): the bool (height, width) mask of the reviewed
            regions, or a str, the reason to skip the image (listed in the result).
    """

    name: str
    size: tuple[int, int] | None
    mask: Callable[[int, int], np.ndarray | str]

    @property
    def stem(self) -> str:
        return PurePosixPath(self.name.replace("\\", "/")).stem


def find_images(
    entries: list[ExportImage],
    images: Path | None,
    what: str,
    remedy: str,
    path: Path,
    by_mask: bool = False,
) -> tuple[list[Path | None], list[str]]:
    """Each export image's file under ``images`` (:func:`find_image`; None: not found) and the
    names not found, after :func:`check_unique_stems`.

    Args:
        entries: The export's images.
        images: The ``--images`` folder or file (None: none given, nothing found).
        what: The export, for messages (``"the COCO file"``).
        remedy: What to do about two images of one name, for :func:`check_unique_stems`.
        path: The export file, named in messages.
        by_mask: The export names each image by its mask (CVAT's "Segmentation mask"): the
            error names the images looked for by stem (:func:`sought_names`).

    Raises:
        UserError: two images share a mask name, or ``images`` holds none of the images
            (:func:`none_found`).
    """
    check_unique_stems(((e.stem, e.name) for e in entries), what, remedy, path)
    if images is None:
        return [None] * len(entries), []
    found = [find_image(images, e.name, len(entries)) for e in entries]
    missing = [e.name for e, f in zip(entries, found, strict=True) if f is None]
    if missing and len(missing) == len(entries):
        head = none_found(sought_names(entries, by_mask), what, f"--images {images}")
        raise UserError(
            f"{head}; give the folder the annotated images came from, or leave "
            "--images out for PNG masks of the size the file gives",
            path,
        )
    return found, missing


def sought_names(entries: list[ExportImage], by_mask: bool = False) -> list[str]:
    """The names messages give the images of ``entries`` that were looked for: as the export
    names them (``sub/b.jpg``), or with ``by_mask`` (an export naming each image by its mask,
    CVAT's "Segmentation mask": ``palsar/a.png`` is the mask of an image of unknown suffix) by
    their stem, folders kept: ``palsar/a.*``."""
    if not by_mask:
        return [e.name for e in entries]
    return [str(PurePosixPath(e.name.replace("\\", "/")).with_suffix(".*")) for e in entries]


def none_found(names: list[str], what: str, where: str) -> str:
    """The clause of an import none of whose images was found: ``none of the 3 images of WHAT
    was found: looked in WHERE for a.*, b.*, c.*`` (the first three ``names``, then ``(+N)``;
    ``the only image of WHAT was not found: ...`` for one). ``where``: the place looked in,
    ``--images DIR`` or ``the zip's images/``."""
    head = none_of(
        len(names), f"image of {what}", "was found", "was not found", f"images of {what}"
    )
    return f"{head}: looked in {where} for {name_sample(names, 3)}"


def missing_note(missing: list[str], n: int, what: str, images: Path | str | None) -> list[str]:
    """The note counting the export's images not found under ``--images`` (``images``: that
    folder, or the words naming where the images were looked for)."""
    if not missing:
        return []
    one = len(missing) == 1
    is_not, masks = ("is not", "its mask is a PNG") if one else ("are not", "their masks are PNGs")
    return [
        f"{len(missing)} of {plural(n, 'image')} of {what} {is_not} in {images} "
        f"({name_sample(missing, 3)}): {masks} of the size the file gives, without "
        f"georeference or nodata; give --images the folder {'it' if one else 'they'} came from "
        "to keep those"
    ]
