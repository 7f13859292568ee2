"""Polygons reviewed in QGIS (GeoPackage / Shapefile / GeoJSON) back to one 0/255 mask per image.

The QGIS leg of the review loop: ``elnet export --format gpkg`` writes one layer with the labels
of many images (attributes ``source`` = image name, ``label`` = label file) and, next to it, the
list of the images it sent (:mod:`~sam2elnet.export.review_set`); a reviewer moves vertices,
deletes polygons and draws new ones in QGIS; :func:`import_vector` then burns, for every reviewed
image of ``images``, the features that belong to it into a mask named like the image
(``<stem>.tif`` with the image's georeference when the image is a GeoTIFF, else ``<stem>.png``;
the image's nodata pixels 127), the layout ``elnet train`` reads as ``masks/``.

Which features belong to an image (by file stem): those whose ``source`` names it (a ``source``
naming an image not in ``images``: skipped, with a note), and those without a ``source`` whose
``label`` names it (``label`` names an image only when it is the stem of one of ``images`` or of
the export's review record: it may be a class name); features drawn in QGIS without those
attributes filled in, or with a class name in ``label``, belong to every image they overlap
when the layer has a CRS (map coordinates place them), and are skipped with a note when it has
none (pixel coordinates of every image share one frame), whether the layer has those attributes
or not, but for an import of one image (they can only be meant for it); a layer none of whose
features can be placed is refused. Placement is the vector-label
reader's (:class:`sam2elnet.data.vector.VectorLabels`): the layer's CRS is reprojected to the
image's, and pixel coordinates of an image without georeference are read as x = column, y = -row
(QGIS, ``export --pixel-coords qgis``) or, for features mostly at y >= 0, y = row (the default
export). Which features belong to an image is one rule
(:func:`sam2elnet.data.vector_names.image_features`), shared with ``elnet enhance --labels
FILE.gpkg`` on images without georeference, which so reads the same coarse labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.data.naming import list_images
from sam2elnet.data.vector_names import (
    feature_images,
    feature_stems,
    image_features,
    in_map,
    unplaced_note,
)
from sam2elnet.errors import DataError, UserError
from sam2elnet.export.image_lookup import check_unique_stems
from sam2elnet.export.import_layers import (
    of_category,
    read_layers,
    repair_geometries,
    unnamed_unplaced,
    unread_line_edits,
)
from sam2elnet.export.import_result import ImportResult
from sam2elnet.export.mask_folder import CommitCheck, MaskFolder, mask_grid, removed_note
from sam2elnet.export.review_set import ReviewCheck, layer_record, read_review_set, record_layer
from sam2elnet.option_values import DEFAULT_LINE_WIDTH_UNIT, LineWidthUnit
from sam2elnet.utils.advice import name_sample, plural

__all__ = ["import_vector"]

_UNTOUCHED = "no polygon moved, deleted or drawn, none marked status = 'accepted'"


def _grid(img: Any) -> dict[str, Any]:
    """The ``crs`` / ``transform`` / ``gcps`` of :meth:`VectorLabels.from_file` for a read image
    (:func:`sam2elnet.data.vector_grid.grid_of` of its profile)."""
    from sam2elnet.data.vector_grid import grid_of

    return dict(zip(("crs", "transform", "gcps"), grid_of(img.profile), strict=True))


def _in_map(gdf: Any, img: Any) -> bool:
    """Whether the features of ``gdf`` are in map coordinates on the read image ``img``
    (:func:`~sam2elnet.data.vector_names.in_map`: the layer has a CRS, or the image a CRS +
    transform the layer without one is read in, with the reader's warning)."""
    crs, _transform, gcps = _grid(img).values()
    return in_map(gdf.crs is not None, crs is not None, gcps is not None)


def import_vector(
    path: str | Path,
    out: str | Path,
    *,
    images: str | Path | None,
    category: str | None = None,
    layer: str | Sequence[str] | None = None,
    review_set: str | Path | None = None,
    all_images: bool = False,
    reviewed_only: bool = False,
    line_width: float | None = None,
    line_width_unit: LineWidthUnit = DEFAULT_LINE_WIDTH_UNIT,
    progress: bool = True,
    commit_check: CommitCheck | None = None,
) -> ImportResult:
    """Write one mask per reviewed image from a reviewed polygon layer.

    Which images get a mask (the others of ``images`` are left out, one note counts them):

    * with a review set (``review_set``, else the one ``elnet export`` wrote next to the layer,
      :func:`~sam2elnet.export.review_set.layer_record`): the images it lists.
      One whose polygons were all deleted gets an all-background mask (the reviewer found no
      object there);
    * without one: the images some feature belongs to (named by ``source`` / ``label``, or, in
      a layer with a CRS, overlapped by an unnamed feature);
    * ``all_images``: every image of ``images`` (one without a feature: all background).

    A review set of ``elnet export`` records each label's polygon count and its polygons as a
    mask (:func:`~sam2elnet.export.review_edits.exported_fields`). An image with as many
    features and the same mask (no polygon of it moved, deleted or drawn; pixels a re-projection
    may flip are not compared, :func:`~sam2elnet.export.review_edits.unchanged`) none of which has
    ``status`` ``accepted`` (any case: the reviewer's mark for a label accepted as it is)
    comes back as exported: a note counts and names them; with ``reviewed_only`` they get no
    mask (a partial review: the images the reviewer did not get to stay out of training).

    ``out`` then holds exactly this import's masks, written whole or not at all
    (:class:`~sam2elnet.export.mask_folder.MaskFolder`: stale masks of an earlier import are
    removed and listed in ``removed``).

    Args:
        path: GeoPackage / Shapefile / GeoJSON: its only layer, or of several its
            ``labels`` layer wherever it stands (else the first, with a warning;
            :func:`~sam2elnet.data.vector_layers.default_layer`), or ``layer``, e.g. an
            ``elnet export`` GeoPackage edited in QGIS.
        out: Folder for the masks (``<image stem>.tif`` / ``.png``, 0/255, 127 = image nodata).
        images: The images (folder or one file; :func:`~sam2elnet.data.naming.list_images`);
            required, the masks take their grids.
        category: Only features whose ``category`` attribute is this (the layer must have one;
            ``elnet export`` writes it), and those with an empty one (drawn in QGIS without
            filling it in; a note counts them).
        layer: Layer name (default: :func:`~sam2elnet.data.vector_layers.default_layer`, the
            ``labels`` layer), or several: their features are burnt into the same masks, as one
            layer (``--layer labels --layer missing_roads``: the reviewed polygons and the roads
            drawn as lines; :func:`~sam2elnet.export.import_layers.read_layers`). The export's
            record applies when ``labels`` is one of them (the others add features to its
            images); else, as for one other layer, masks only for the images their features
            name.
        review_set: The export's review record (default: next to the layer when there).
        all_images: A mask for every image of ``images``.
        reviewed_only: No mask for the images that come back as exported (above).
        line_width: Line (and point) features, e.g. road centre lines drawn in QGIS, are
            buffered to this total width (> 0) before rasterising, in ``line_width_unit``
            ``"map"`` (units of each image's CRS; pixels for an image without one) or ``"px"``
            (:meth:`~sam2elnet.data.vector.VectorLabels.from_file`). None: lines burnt 1 px
            wide and points skipped, one note for the layer says how many.
        line_width_unit: ``"map"`` or ``"px"``.
        progress: Show a progress bar.
        commit_check: Called before the masks move into ``out``
            (:data:`~sam2elnet.export.mask_folder.CommitCheck`); an error it raises leaves
            ``out`` as it was (``elnet import --with-labels``).

    Returns:
        :class:`~sam2elnet.export.import_result.ImportResult` (masks, images skipped with
        the reason, notes, stale masks removed).

    Raises:
        UserError: no ``images``, two images of one stem in ``images`` (``x.png`` and
            ``x.tif``: their masks and features could not be told apart), ``out`` is a file or
            the images' folder or holds masks no import wrote, ``category`` without a category attribute or that no feature has (the
            layer's categories named), no image in ``images``.
        DataError: an unreadable or empty layer or review set, a layer none of whose features
            can be placed (no CRS and no feature naming an image of ``images``, with several
            images: :func:`unnamed_unplaced`), or no mask written.
    """
    from sam2elnet.data.vector import read_vector
    from sam2elnet.data.vector_layers import LABELS_LAYER

    p = Path(path)
    layers = (layer,) if isinstance(layer, str) else tuple(layer) if layer else None
    if images is None:
        raise UserError(
            "--images is needed to import polygons: the masks take the images' size and "
            "georeference; give the folder of the reviewed images",
            p,
        )
    folder = MaskFolder(Path(out), p, Path(images), check=commit_check)
    files = list_images(Path(images), split_hint=False)
    check_unique_stems(
        ((f.stem, f.name) for f in files),
        f"--images {images}",
        "a layer names its images by stem: move one away, or import each in a run of its own",
        Path(images),
    )
    record = Path(review_set) if review_set is not None else layer_record(p)
    listed = read_review_set(record) if review_set is not None or record.is_file() else None
    record_notes: list[str] = []
    named_layers = ", ".join(repr(n) for n in layers or ())
    if review_set is None and listed is not None and layers and LABELS_LAYER not in layers:
        # the record lists the images of the labels layer: another layer (a reviewer's line
        # layer of missing roads) gives masks only where its features are, as a file without one
        listed = None
        its = "its" if len(layers) == 1 else "their"
        record_notes.append(
            f"{record.name} is the record of the layer {LABELS_LAYER!r}, not of {named_layers}: "
            f"masks only for the images {its} features name (--review-set FILE applies a record "
            f"to {'it' if len(layers) == 1 else 'them'}; --layer {LABELS_LAYER} --layer NAME "
            "burns the reviewed polygons and the layer into the same masks)"
        )
        reviewed_only = False  # every image it names was drawn in: all reviewed
    if reviewed_only and listed is None:
        raise UserError(
            f"--reviewed-only needs the export's review record ({record.name} not found): it "
            "tells the images that come back as exported; give it with --review-set FILE",
            p,
        )
    check = ReviewCheck(record if listed is not None else None, reviewed_only, _UNTOUCHED)
    try:
        if layers is not None and len(layers) > 1:
            gdf, bare = read_layers(p, layers)
        else:  # one layer: the one named, or the file's default
            gdf, bare = read_vector(p, layer=layers[0] if layers else None, allow_empty=True), []
    except DataError:
        named = record_layer(p) if p.is_file() else None
        if named is None:
            raise
        raise DataError(
            "this is the review record `elnet export` writes next to the layer, not the layer: "
            f"give the layer ({named or 'the .gpkg / .shp / .geojson'}) instead; the record is "
            "read from beside it, or from --review-set FILE",
            p,
        ) from None
    if len(gdf) == 0 and listed is None and not all_images:
        raise DataError(
            f"the layer has no features and no review set ({record.name}) lists the "
            "images it was exported for, so no image is known to be reviewed; give the "
            "export's record with --review-set (its images get all-background masks), or "
            "--all-images",
            p,
        )
    if category is not None:
        if "category" not in gdf.columns:
            raise UserError(
                "--category needs a 'category' attribute in the layer; it has "
                f"{', '.join(c for c in gdf.columns if c != 'geometry')}",
                p,
            )
        gdf, cat_notes = of_category(gdf, category, p)
    else:
        cat_notes = []
    gdf, notes = repair_geometries(gdf)
    notes = record_notes + cat_notes + unread_line_edits(p, layers, check) + notes
    if line_width is None:  # once for the layer, not once per image it is placed on
        from sam2elnet.data.vector_kinds import layer_no_width_notes

        notes += [msg for msg, _ in layer_no_width_notes(p, gdf)]
    all_files = files  # the run's images: a label naming one of them names its image
    if listed is not None and not all_images:
        outside = [f for f in files if f.stem not in listed]
        files = [f for f in files if f.stem in listed]
        if outside:
            one = len(outside) == 1
            notes.append(
                f"{plural(len(outside), 'image')} of {images} "
                f"{'is' if one else 'are'} not in the review set ({record.name}): no mask for "
                f"{'it' if one else 'them'} (--all-images makes one for every image)"
            )
        if not files:
            raise DataError(
                f"no image of {images} is in the review set {record}; give --images the "
                "folder of the exported images (or --all-images)",
                p,
            )
    run = {f.stem for f in all_files} | (listed or set())
    if unplaced := unnamed_unplaced(gdf, files, run, p, bare):
        notes.append(unplaced)
    with folder:
        written, skipped, more = _burn(
            p,
            gdf,
            files,
            folder,
            images,
            listed is None and not all_images,
            progress,
            check,
            run,
            {"line_width": line_width, "line_width_unit": line_width_unit},
            f"the layer{'s' if len(layers or ()) > 1 else ''} {named_layers}"
            if record_notes
            else None,
            unsent=(
                ({f.stem for f in all_files} - {f.stem for f in files}, record.name)
                if listed is not None and not all_images
                else None
            ),
        )
        notes += more
        if not written:
            why = (
                f" ({skipped[0][0]}: {skipped[0][1]})"
                if skipped
                else check.none_left()
                or " (no feature of the layer belongs to an image of --images; --review-set "
                "names the export's record, --all-images makes all-background masks)"
            )
            raise DataError(f"no image gave a mask{why}; check --images and the layer", p)
        removed = folder.commit()
    notes += removed_note(folder.out, removed)
    return ImportResult(
        folder.out, written, skipped, notes, removed, check.model(), images=folder.images
    )


def _burn(
    p: Path,
    gdf: Any,
    files: list[Path],
    folder: MaskFolder,
    images: str | Path,
    covered_only: bool,
    progress: bool,
    check: ReviewCheck,
    run: set[str],
    width: dict[str, Any],
    aside: str | None = None,
    unsent: tuple[set[str], str] | None = None,
) -> tuple[list[Path], list[tuple[str, str]], list[str]]:
    """Rasterise each image's features into ``folder``: (masks, images skipped with the reason,
    notes). ``covered_only``: images no feature belongs to get no mask (one note counts them).
    ``check``: the export's record (:class:`~sam2elnet.export.review_set.ReviewCheck`); an
    image with as many features as went out, whose mask equals the exported one and whose
    features are not marked ``status`` = ``accepted`` is unchanged (one note names them;
    ``reviewed_only``: no mask for them). ``run``: the stems a ``label`` may name (``images``'
    and the review record's; :func:`~sam2elnet.data.vector_names.feature_images`). ``width``: the reader's ``line_width`` /
    ``line_width_unit``. ``aside``: the layer(s) read (``"the layer 'missing_roads'"``), when the review record beside the file
    was set aside as the record of another layer (the note on images without a feature then
    does not point at the record). ``unsent``: the stems of ``images`` the review record does
    not list, and the record's name: a feature naming one is skipped with a note saying so (not
    that its image is missing)."""
    from sam2elnet.data.vector import VectorLabels
    from sam2elnet.data.vector_kinds import NO_WIDTH_KINDS
    from sam2elnet.utils.progress import track

    stems, _ = feature_stems(gdf)
    alone = len(files) == 1
    owner = feature_images(stems, run)  # the one rule: the image each feature names
    accepted = np.zeros(len(gdf), dtype=bool)
    if "status" in gdf.columns:
        accepted = np.array(
            [isinstance(v, str) and v.strip().lower() == "accepted" for v in gdf["status"]]
        )
    notes: list[str] = []  # features naming no image, skipped: unnamed_unplaced
    image_stems = {f.stem for f in files}
    # a source names its image, always: one not in --images is skipped (a tile left out of
    # this import keeps its polygons off its neighbours); a label names an image only when it
    # is one of the run's stems, else (a class name) the feature goes by map position
    if unsent is not None and (out := [o for o in owner if o in unsent[0]]):
        which = plural(len(out), "feature names", "features name")
        notes.append(
            f"{which} an image of {images} that is not in the review set ({unsent[1]}) "
            f"(their source / label: {name_sample(sorted(set(out)), 5)}): skipped; "
            "--all-images imports it, with a mask for every image"
        )
    named = owner if unsent is None else [None if o in unsent[0] else o for o in owner]
    if lost := unplaced_note(named, image_stems, images):  # for the note only: still skipped
        notes.append(lost)
    written: list[Path] = []
    skipped: list[tuple[str, str]] = []
    n_empty = n_uncovered = 0
    placing: dict[str, None] = {}  # the reader's notes, each once (not once per image)
    for f in track(files, "import", "img", progress, skipped=skipped):
        try:
            grid = mask_grid(f)  # size, georeference, nodata, as every import writes masks
        except DataError as err:
            skipped.append((f.stem, str(err)))
            continue
        h, w = grid.shape
        mapped = _in_map(gdf, grid.image)  # no CRS over a georeferenced image: its CRS
        own, mine = image_features(stems, mapped, f.stem, run, alone=alone)  # the rule
        mask = np.zeros((h, w), dtype=bool)
        if mine.any():
            # shared: the layer covers many images; notes come back instead of being logged
            try:
                vl = VectorLabels.from_file(
                    p, frame=gdf[mine], shared=True, height=h, width=w, **_grid(grid.image), **width
                )
            except DataError as err:  # e.g. a layer with a CRS on an image without one
                skipped.append((f.stem, str(err)))
                continue
            mask = vl.rasterize().astype(bool)
            placing.update(  # without a line width: the layer's note (import_vector)
                dict.fromkeys(
                    n
                    for n, k in zip(vl.notes, vl.note_kinds, strict=True)
                    if k not in NO_WIDTH_KINDS
                )
            )
            if own.any() and not mask.any():  # its own polygons miss it: a real fault
                skipped.append(
                    (
                        f.stem,
                        f"its {plural(int(own.sum()), 'polygon lies', 'polygons lie')} outside "
                        "the image; check the "
                        "layer's CRS (or, without one, its pixel coordinates)",
                    )
                )
                continue
        if covered_only and not own.any() and not mask.any():
            n_uncovered += 1  # no feature belongs to it: not reviewed, as far as the layer tells
            continue
        n_out = check.exported_count(f.stem)
        same = int(own.sum()) == n_out and not accepted[own].any()
        if same and not check.keep(f.stem, f.name, mask):
            continue  # as exported: not reviewed (a partial review, --reviewed-only)
        n_empty += not mask.any()
        name = f"{f.stem}{grid.suffix}"
        written.append(folder.write(name, mask, like=grid.like, nodata=grid.nodata, image=f))
    notes += list(placing)
    if n_uncovered:
        them, each = ("it", "it") if n_uncovered == 1 else ("them", "each")
        has = "has" if n_uncovered == 1 else "have"
        head = f"{plural(n_uncovered, 'image')} of {images} {has} no feature in"
        if aside is not None:  # the record is another layer's: said in a note of its own
            notes.append(
                f"{head} {aside}: no mask for {them} (--all-images makes an all-background "
                f"mask for {each})"
            )
        else:
            notes.append(
                f"{head} the layer and no review set ({layer_record(p).name}) lists {them}: no mask for "
                f"{them} (--review-set names the export's record; --all-images makes an "
                f"all-background mask for {each})"
            )
    notes += check.notes(len(written), " (set status = 'accepted' on a label you accept as it is)")
    if n_empty:
        if len(written) == 1:
            notes.append("the only mask is all background (no feature there)")
        else:
            are = "is" if n_empty == 1 else "are"
            notes.append(
                f"{n_empty} of {len(written)} masks {are} all background (no feature there)"
            )
    notes += [f"skipped {s}: {why}" for s, why in skipped]
    return written, skipped, notes
