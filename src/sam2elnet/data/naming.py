"""File naming: every file-suffix table and the rule that pairs images, masks and labels by name.

One place for the names the tool recognises, so that folder scans, evaluation, export and reports
agree on what a mask, an image, a scene or a vector file is:

* extension tables (``IMAGE_SUFFIXES``, ``MASK_SUFFIXES``, ``SCENE_SUFFIXES``, ...);
* stem tags: ``<id>_sat.jpg`` is an image and ``<id>_mask.png`` its mask (the SOS / CHN6-CUG
  layouts), ``<id>_prob.tif`` a probability map, not a label;
* :func:`mask_key`, the pairing key of a file (its stem without one known tag).
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "GEO_SUFFIXES",
    "IMAGE_SUFFIXES",
    "IMAGE_TAGS",
    "KEY_TAGS",
    "LABEL_SUFFIXES",
    "LABEL_SKIP_TAGS",
    "MASK_SUFFIXES",
    "MASK_TAGS",
    "NOT_MASK_TAGS",
    "PAIRING_IMAGE_TAGS",
    "SCENE_SUFFIXES",
    "VECTOR_SUFFIXES",
    "drop_paired_images",
    "mask_key",
]

# ---------------------------------------------------------------------------- extensions
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
"""Image files read by :func:`sam2elnet.data.images.read_image` (folder jobs, datasets)."""
GEO_SUFFIXES = (".tif", ".tiff")
"""Image files that can carry a georeference (outputs keep it)."""
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
