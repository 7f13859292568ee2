"""File naming: every file-suffix table and the rule that pairs images, masks and labels by name.

One place for the names the tool recognises, so that folder scans, evaluation, export and reports
agree on what a mask, an image, a scene or a vector file is:

* extension tables (``IMAGE_SUFFIXES``, ``MASK_SUFFIXES``, ``SCENE_SUFFIXES``, ...);
* stem tags: ``<id>_sat.jpg`` is an image and ``<id>_mask.png`` its mask (the SOS / CHN6-CUG
  layouts), ``<id>_prob.tif`` a probability map, not a label;
* :func:`mask_key`, the pairing key of a file (its stem without one known tag);
* :func:`list_images`, the images of a folder, a file or a list (folder jobs, ``elnet import``);
* :data:`IMPORT_RECORD`, the record of the reviewed masks ``elnet import`` wrote into a folder
  (:func:`imported_masks`): ``elnet train`` lets such a mask replace the label it corrects.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from sam2elnet.errors import UserError

__all__ = [
    "CV2_SUFFIXES",
    "GEO_SUFFIXES",
    "IMAGE_SUFFIXES",
    "IMPORT_RECORD",
    "IMAGE_TAGS",
    "KEY_TAGS",
    "LABEL_SUFFIXES",
    "LOSSY_SUFFIXES",
    "LABEL_SKIP_TAGS",
    "MASK_SUFFIXES",
    "MASK_TAGS",
    "NOT_MASK_TAGS",
    "PAIRING_IMAGE_TAGS",
    "PROB_SUFFIX",
    "SCENE_SUFFIXES",
    "STEM_LOOKUP_SUFFIXES",
    "TILES_SUFFIX",
    "VECTOR_SUFFIXES",
    "drop_paired_images",
    "image_files",
    "imported_masks",
    "list_images",
    "mask_key",
    "scene_companion",
]

# ---------------------------------------------------------------------------- extensions
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
"""Image files read by :func:`sam2elnet.data.images.read_image` (folder jobs, datasets)."""
GEO_SUFFIXES = (".tif", ".tiff")
"""Image files that can carry a georeference (outputs keep it)."""
CV2_SUFFIXES = (".png", ".jpg", ".jpeg")
"""Image files (lower case) decoded whole by OpenCV (:func:`sam2elnet.data.images.read_image`):
no georeference, no windowed reads; every other raster goes through rasterio/GDAL."""
LOSSY_SUFFIXES = (".jpg", ".jpeg")
"""Image files stored with lossy compression (JPEG): a mask saved so holds values near its
classes, not only them (read as ``lossy``, :func:`sam2elnet.data.mask_values.mask_encoding`)."""
STEM_LOOKUP_SUFFIXES = (*GEO_SUFFIXES, *(s for s in IMAGE_SUFFIXES if s not in GEO_SUFFIXES))
"""The image suffixes a lookup by stem tries, in order: GeoTIFFs (a georeference for the mask)
first."""
MASK_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp", ".gif")
"""Files treated as masks when scanning folders for evaluation."""
SCENE_SUFFIXES = (".tif", ".tiff", ".vrt", ".img", ".jp2")
"""Rasters read as scenes (GDAL windowed reads: ``elnet scene``, large images in folder jobs)."""
LABEL_SUFFIXES = (".tif", ".tiff", ".png")
"""Label rasters ``elnet export`` reads."""
VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".fgb", ".kml", ".gml")
"""Vector label files (read through pyogrio / geopandas)."""

# ---------------------------------------------------------------------------- stem tags
IMAGE_TAGS = ("_sat", "_image", "_img")
"""Stem tags of images stored next to their masks (``<id>_sat.jpg``)."""
PAIRING_IMAGE_TAGS = (*IMAGE_TAGS, "_rgb")
"""Image tags dropped when several files of an evaluation folder pair with one name."""
MASK_TAGS = ("_mask", "_gt", "_label", "_lbl")
"""Stem tags of masks stored next to their images (``<id>_mask.png``)."""
KEY_TAGS = (
    "_mask",
    "_masks",
    "_sat",
    "_label",
    "_labels",
    "_lbl",
    "_pred",
    "_prediction",
    "_gt",
    "_enhanced",
    "_annotated",
    "_output",
)
"""Stem tags :func:`mask_key` strips to pair files across folders (SOS and CHN6-CUG:
``<id>_sat.jpg`` / ``<id>_mask.png``; tool outputs: ``<id>_pred.png``)."""
NOT_MASK_TAGS = ("_prob", "_probs", "_probability", "_quality", "_overlay")
"""Files that share a folder with masks but are not masks (probability maps, overlays)."""
LABEL_SKIP_TAGS = ("_prob", "_tiles", "_probability")
"""Scene outputs next to label rasters that are not labels (probabilities, tile layers)."""

# ---------------------------------------------------------------------------- scene outputs
PROB_SUFFIX = "_prob.tif"
"""Name ending of a scene's probability map next to its label GeoTIFF (``elnet scene --prob``):
``<label stem>_prob.tif``."""
TILES_SUFFIX = "_tiles.gpkg"
"""Name ending of a scene's per-window quality layer next to its label GeoTIFF (``elnet scene
--quality-gpkg``; read back by ``elnet export``): ``<label stem>_tiles.gpkg``."""


def scene_companion(label: str | Path, suffix: str) -> Path:
    """The file next to the label ``label`` named ``<label stem><suffix>``: with
    :data:`PROB_SUFFIX` its probability map, with :data:`TILES_SUFFIX` its quality layer
    (``out/a.tif`` -> ``out/a_prob.tif``). The one rule ``elnet scene`` writes and ``elnet
    export`` reads these names by."""
    label = Path(label)
    return label.with_name(label.stem + suffix)


def mask_key(name: str | Path) -> str:
    """Pairing key of a file: its stem without one of :data:`KEY_TAGS`.

    ``10791_sat.jpg``, ``10791_mask.png`` and ``10791_pred.png`` all give ``10791``; a name that
    is only a tag (``_mask.png``) keeps it.

    Args:
        name: file name or path (only the last component is used).

    Returns:
        The key (case kept).
    """
    stem = Path(str(name)).name
    for ext in sorted((*MASK_SUFFIXES, ".jp2", ".npy"), key=len, reverse=True):
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
            break
    low = stem.lower()
    for suf in KEY_TAGS:
        if low.endswith(suf) and len(stem) > len(suf):
            return stem[: -len(suf)]
    return stem


def drop_paired_images(files: list[Path]) -> list[Path]:
    """Leave out the images of a folder that keeps them next to their masks.

    In the SOS / CHN6-CUG training layout ``<id>_sat.jpg`` lies next to ``<id>_mask.png``; a scan
    for masks (``elnet degrade``, ``elnet refine --coarse``) must not take the images for masks.
    Files with an :data:`IMAGE_TAGS` stem are dropped when the list also holds files with a
    :data:`MASK_TAGS` stem; any other list is returned unchanged (order kept).
    """

    def tagged(f: Path, tags: tuple[str, ...]) -> bool:
        return f.stem.lower().endswith(tags)

    if any(tagged(f, MASK_TAGS) for f in files) and any(tagged(f, IMAGE_TAGS) for f in files):
        return [f for f in files if not tagged(f, IMAGE_TAGS)]
    return list(files)


def image_files(folder: Path, *, recursive: bool = False) -> list[Path]:
    """The image files (:data:`IMAGE_SUFFIXES`, any case) of the folder ``folder``, sorted by
    path, hidden files left out; with ``recursive``, those of its sub-folders too, at any depth.
    Nothing else is dropped and an empty list is returned as it is: :func:`list_images` (a
    folder's images to process) also leaves out the masks of a ``*_sat`` folder and raises when
    none is found."""
    return sorted(
        f
        for f in (folder.rglob("*") if recursive else folder.iterdir())
        if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".")
    )


def list_images(
    images: str | Path | Sequence[str | Path], *, split_hint: bool = True, recursive: bool = False
) -> list[Path]:
    """Image files (:data:`IMAGE_SUFFIXES`) of a folder (sorted, hidden files left out), a single
    file, or a list.

    In folders that mix ``*_sat`` images with ``*_mask`` / ``*_gt`` labels (the SOS layout) the
    masks are left out.

    Args:
        images: a folder, an image file, or a list of files (taken as given).
        split_hint: when the folder holds only sub-folders, also name ``--split`` (annotate /
            enhance take a dataset root with it).
        recursive: also the images in the folder's sub-folders, at any depth (sorted by path).

    Raises:
        UserError: the path does not exist, a folder without images (naming its sub-folders when
            it has some), or an empty list.
    """
    if isinstance(images, (str, Path)):
        p = Path(images)
        if not p.exists():
            raise UserError("image path does not exist; check the path", p)
        if p.is_file():
            return [p]
        files = image_files(p, recursive=recursive)
        if any(f.stem.lower().endswith("_sat") for f in files):
            files = [f for f in files if not f.stem.lower().endswith(("_mask", "_gt"))]
        if not files:
            subs = sorted(d.name for d in p.iterdir() if d.is_dir() and d.name[0] != ".")
            split = (
                " (annotate / enhance: or a dataset root with --split, e.g. --split test)"
                if split_hint
                else ""
            )
            if "images" in subs:  # a flat images/ + masks/ dataset: no split folders to name
                split = f", e.g. {p / 'images'}"
            hint = (
                f", only sub-folders ({', '.join(subs[:5])}{', ...' if len(subs) > 5 else ''}); "
                f"pass the folder that holds the images{split}"
                if subs and not recursive
                else "; check the path"
            )
            raise UserError(f"no images (.png/.jpg/.tif) in the folder{hint}", p)
        return files
    files = [Path(f) for f in images]
    if not files:
        raise UserError("no images given")
    return files


IMPORT_RECORD = ".elnet-import.json"
"""The record of the last ``elnet import`` in its ``--out`` folder (JSON: ``source``, the file
imported, and ``masks``, the names written; hidden: folder scans list no hidden files)."""


def imported_masks(folder: Path) -> set[str]:
    """The mask names ``folder``'s :data:`IMPORT_RECORD` lists: reviewed masks (none when the
    record is absent or unreadable; never raises)."""
    try:
        data = json.loads((Path(folder) / IMPORT_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return set()
    names = data.get("masks") if isinstance(data, dict) else None
    return {str(n) for n in names if isinstance(n, str)} if isinstance(names, list) else set()
