"""The layers an import burns, read and cleaned (:func:`~sam2elnet.export.vector_import.
import_vector`): several ``--layer`` read as one frame, the ``--category`` filter, invalid
geometries repaired, the note on edits to the export's centre-line layer, which an import
does not read, and the one on features that name no image in a layer without CRS
(:func:`unnamed_unplaced`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.data.vector_names import (
    IMAGE_NAME_ATTRIBUTES,
    feature_images,
    feature_stems,
    named_stems,
    places_unnamed,
)
from sam2elnet.errors import DataError, UserError
from sam2elnet.export.review_set import ReviewCheck
from sam2elnet.utils.advice import name_sample, plural

__all__ = [
    "files_in_map",
    "of_category",
    "read_layers",
    "repair_geometries",
    "unnamed_unplaced",
    "unread_line_edits",
]


def read_layers(p: Path, layers: Sequence[str]) -> tuple[Any, list[str]]:
    """The features of several ``layers`` of ``p`` as one GeoDataFrame (the columns of all;
    one a layer lacks, e.g. ``source`` of a line layer, empty there), in the CRS of the first
    that has one (the others reprojected to it), and the layers without any
    :data:`~sam2elnet.data.vector_names.IMAGE_NAME_ATTRIBUTES` (a layer made fresh in QGIS).

    Raises:
        DataError: a layer ``p`` lacks (listing its layers), an unreadable one, or layers with
            and without a CRS (map and pixel coordinates cannot be put in one frame), naming them.
    """
    import geopandas as gpd
    import pandas as pd

    from sam2elnet.data.georef import crs_name
    from sam2elnet.data.vector import read_vector

    frames = [read_vector(p, layer=n, allow_empty=True) for n in layers]
    have = [n for n, g in zip(layers, frames, strict=True) if g.crs is not None]
    crs = next((g.crs for g in frames if g.crs is not None), None)
    if have and len(have) < len(layers):
        lack = [n for n in layers if n not in have]
        with_crs = f"{'s' if len(have) > 1 else ''} {', '.join(repr(n) for n in have)}"
        without = ", ".join(repr(n) for n in lack)
        raise DataError(
            f"the layer{with_crs} {'have' if len(have) > 1 else 'has'} a CRS ({crs_name(crs)}) "
            f"and {without} none (pixel coordinates): they cannot be put in one frame; set the "
            f"CRS of {without} in QGIS (Layer > Set CRS of Layer) to the other's, or import "
            "each into its own --out",
            p,
        )
    parts = []
    for g in frames:
        if g.geometry.name != "geometry":
            g = g.rename_geometry("geometry")
        parts.append(g.to_crs(crs) if crs is not None and g.crs != crs else g)
    bare = [
        n
        for n, g in zip(layers, frames, strict=True)
        if not any(a in g.columns for a in IMAGE_NAME_ATTRIBUTES)
    ]
    gdf = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs=crs)
    return gdf, bare


def unread_line_edits(p: Path, layers: Sequence[str] | None, check: ReviewCheck) -> list[str]:
    """A note when road centre lines were drawn or deleted in the export's line layer, which the
    import does not read (its masks come from the ``labels`` polygons): the layer
    ``centre_lines`` of a GeoPackage, ``<stem>_centre_lines<suffix>`` beside a GeoJSON /
    Shapefile (:func:`~sam2elnet.export.centreline_layer.centre_lines_path`). Compared per image
    with the record's ``centre_lines`` count; nothing without a record, with ``layer`` given
    (the user chose the layer) or when the line layer is unreadable. Before, a road a reviewer
    drew there (a natural place: QGIS shows it over the polygons) was left out without a word.
    """
    if layers is not None or not check.digests:
        return []
    import pyogrio

    from sam2elnet.data.vector_layers import LABELS_LAYER
    from sam2elnet.export.centreline_layer import LAYER, LINES_SENT, centre_lines_path

    gpkg = p.suffix.lower() == ".gpkg"
    lines = centre_lines_path(p, "gpkg" if gpkg else "other")
    try:
        if gpkg and LAYER not in {str(n) for n, _ in pyogrio.list_layers(p)}:
            return []
        if not lines.is_file():
            return []
        df = pyogrio.read_dataframe(
            lines, layer=LAYER if gpkg else None, columns=["source"], read_geometry=False
        )
    except Exception:  # noqa: BLE001 - an unreadable extra layer is not the import's input
        return []
    have: dict[str, int] = {}
    for src in df["source"].dropna():
        stem = Path(str(src)).stem
        have[stem] = have.get(stem, 0) + 1
    entries = {id(e): e for e in check.digests.values()}.values()
    changed = []
    for e in entries:
        sent = e.get(LINES_SENT)
        stem = Path(str(e.get("source") or e.get("label") or "")).stem
        if isinstance(sent, int) and have.get(stem, 0) != sent:
            changed.append(f"{e.get('source') or stem}: {have.get(stem, 0)} lines, {sent} sent")
    if not changed:
        return []
    where = f"layer {LAYER} of {p.name}" if gpkg else lines.name
    return [
        f"{where} was edited for {plural(len(changed), 'image')} "
        f"({name_sample(changed, 3)}) but is not read: the masks come from the polygons of the "
        "labels layer only, so lines drawn or deleted there are not in them; draw missing roads "
        "as polygons in the labels layer, or as lines in a layer of their own imported with "
        f"--layer {LABELS_LAYER} --layer NAME --line-width W (docs/roads.md)"
    ]


def of_category(gdf: Any, category: str, p: Path) -> tuple[Any, list[str]]:
    """The features of ``category`` and those with an empty ``category`` (a polygon drawn in
    QGIS without filling it in), with a note counting the latter.

    Raises:
        UserError: no feature has ``category`` while others have one (a typo would give
            all-background masks), naming the layer's categories.
    """
    cats = gdf["category"]
    blank = cats.isna() | (cats.astype(str).str.strip() == "")
    named = sorted({str(c) for c in cats[~blank]})
    if named and category not in named:
        raise UserError(
            f"no feature has category {category!r}; the layer's categories: "
            f"{', '.join(repr(c) for c in named)}",
            p,
        )
    n_blank = int(blank.sum())
    notes = (
        [
            f"{plural(n_blank, 'feature')} without a category (drawn in QGIS without filling it in) taken "
            f"as {category!r}; fill in another category to leave one out"
        ]
        if n_blank and named
        else []
    )
    return gdf[(cats == category) | blank], notes


def repair_geometries(gdf: Any) -> tuple[Any, list[str]]:
    """The layer with its invalid geometries repaired (``shapely.make_valid``: a
    self-intersecting polygon drawn in QGIS keeps every lobe) and one note counting them over
    the whole layer (the reader, run image by image, would note each image's count apart)."""
    import shapely

    geoms = np.asarray(gdf.geometry.values, dtype=object)
    invalid = ~shapely.is_valid(geoms)
    if not invalid.any():
        return gdf, []
    gdf = gdf.copy()
    gdf[gdf.geometry.name] = np.where(invalid, shapely.make_valid(geoms), geoms)
    stems, _ = feature_stems(gdf[invalid])
    names = named_stems(stems)
    where = f" (images {name_sample(names, 5)})" if names else ""
    return gdf, [
        f"repaired {plural(int(invalid.sum()), 'invalid polygon')}{where} with make_valid (e.g. "
        "self-intersections, as drawn in QGIS: every lobe is kept)"
    ]


def files_in_map(gdf: Any, files: list[Path]) -> dict[Path, bool]:
    """Whether the features of ``gdf`` are in map coordinates on each image of ``files``
    (:func:`~sam2elnet.data.vector_names.in_map`, from the images' headers; an unreadable
    image counts as not): image -> bool."""
    from sam2elnet.data.georef import grid_kind
    from sam2elnet.data.grids import raster_header

    return {f: gdf.crs is not None or grid_kind(raster_header(f).geo) == "transform" for f in files}


def unnamed_unplaced(
    gdf: Any, files: list[Path], run: set[str], p: Path, bare: Sequence[str] = ()
) -> str | None:
    """The note on the features of a layer without CRS that name no image (no ``source`` /
    ``label`` attribute, or one left empty; a line layer made fresh in QGIS): their pixel
    coordinates fit every image, so they are placed only when ``files`` (the images getting a
    mask) is one image (:func:`~sam2elnet.data.vector_names.places_unnamed`, the rule
    ``vector_import._burn`` places by); else they are skipped and the note says how many and what to do.
    Over images some of which have a CRS + transform (the layer is read in their CRS) and some
    not, the rule places them by map position on the former only: the note then counts and
    names the images that received none of them, and says what to do. None when there are
    none, or every image takes them. ``run``: the stems a ``label`` may name; ``bare``: the
    layers read together that have no :data:`~sam2elnet.data.vector_names.IMAGE_NAME_ATTRIBUTES`
    (:func:`read_layers`), named in what to do.

    Raises:
        DataError: no feature of the layer can be placed (before, a layer without name
            attributes was burnt into every image's mask, and one with empty names failed with
            "no image gave a mask"): nothing is written.
    """
    stems, named = feature_stems(gdf)
    owner = feature_images(stems, run)
    n_free = sum(o is None for o in owner)
    if not n_free:  # every feature names its image: no image's header is read
        return None
    alone = len(files) == 1
    takes = {f: places_unnamed(m, alone) for f, m in files_in_map(gdf, files).items()}
    if all(takes.values()):
        return None
    attrs = " / ".join(IMAGE_NAME_ATTRIBUTES)
    if bare:
        to = f" to the layer{'s' if len(bare) > 1 else ''} {', '.join(repr(n) for n in bare)}"
    if bare or not named:
        fill = (
            f"add a 'source' field{to if bare else ''} holding the image's file name, as the "
            "exported 'labels' layer has"
        )
    else:
        fill = f"fill in {'its' if n_free == 1 else 'their'} 'source' (the image's file name)"
    why = (
        f"{'has' if n_free == 1 else 'have'} no {attrs} attribute naming an image and the layer "
        f"has no CRS, so {'its' if n_free == 1 else 'their'} image is unknown (pixel coordinates "
        f"of the {len(files)} images share one frame)"
    )
    if any(takes.values()):  # a CRS + transform on some images only: by map position on those
        left = [f.name for f in files if not takes[f]]
        got = "did not receive it" if n_free == 1 else "received none of them"
        return (
            f"{plural(n_free, 'feature has', 'features have')} no {attrs} attribute naming an "
            "image and the layer has no CRS: placed by map position on the georeferenced images "
            f"only; {plural(len(left), 'image')} without a CRS + transform "
            f"({name_sample(left, 5)}) {got}; {fill}, or georeference "
            f"{'that image' if len(left) == 1 else 'those images'}"
        )
    fix = f"{fill}, or give the layer a CRS with georeferenced images"
    image_stems = {f.stem for f in files}
    if any(o is not None and o in image_stems for o in owner):
        feats = plural(n_free, "feature")
        return f"{feats} {why}: skipped; {fix}"
    if n_free == len(owner):
        every = "the layer's only feature" if n_free == 1 else f"all {n_free} features"
        rest = ""
    else:  # the others name images not in --images
        every = plural(n_free, "feature")
        rest = f" and the other {len(owner) - n_free} name no image of the import"
    raise DataError(f"no feature can be placed: {every} {why}{rest}; {fix}", p)
