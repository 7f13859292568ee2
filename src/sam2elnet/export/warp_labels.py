"""``elnet export --warp-to``: the labels' warped copies, in a temporary folder, that the export
then polygonises (:func:`~sam2elnet.export.api.export_labels`).

The batch rule of a plain polygon export (:mod:`~sam2elnet.export.label_screen`) holds here too:
a label of a folder that cannot be warped is skipped, with one ``warning: skipping LABEL: reason``
line and its reason in ``<out stem>_skipped.csv`` (named by the user's path, not the copy's), and
the others are exported. That is a label without any georeference (no CRS, no ground control
points: a PNG among GeoTIFFs), one with fewer than 3 GCPs or GCPs without a CRS, one GDAL cannot
read (corrupt, truncated), and one GDAL cannot warp to the target CRS (its footprint outside the
area that CRS maps, e.g. a polar label to Web Mercator). A label given alone is refused with its
own error; so is a folder of which no label has a georeference (one ``error:`` line:
:class:`~sam2elnet.data.warp.NoGeoreferenceError`, "drop --warp-to"); a folder of which no label
can be warped for other reasons ends with the batch's ``nothing produced`` error
(:meth:`~sam2elnet.utils.batch.SkipLog.nothing_done`). Either way nothing is written.
"""

from __future__ import annotations

from pathlib import Path

from sam2elnet.errors import DataError
from sam2elnet.utils.batch import SkipLog

__all__ = ["NO_GEOREFERENCE_WARP", "warp_label_copies"]

NO_GEOREFERENCE_WARP = (
    "no georeference (no CRS, no ground control points) while other labels have one: it cannot "
    "be warped to a map grid (--warp-to); exported alone without --warp-to (elnet export "
    "--labels {name} --out {stem}.gpkg) its polygons are in pixel coordinates"
)
"""The skip reason of a label without georeference in a ``--warp-to`` export."""


def warp_label_copies(
    labels: str | Path,
    files: list[Path],
    tmp: Path,
    warp_to: str,
    method: str,
    rated: set[str],
) -> tuple[list[str], SkipLog, dict[Path, Path]]:
    """Warp each of ``files`` (the labels found in ``labels``) to ``warp_to`` with ``method``
    (:func:`sam2elnet.data.warp.warp_to_map_grid`) as ``tmp/<same name>`` (so ``quality.csv``
    rows still match) and carry the per-window quality layer of each label whose stem is not in
    ``rated`` (:func:`~sam2elnet.export.tile_quality.carry_layer`). A label of a folder that
    cannot be warped is skipped (module docstring).

    Returns:
        (the warps' notes, the labels skipped, named by their path as given, with the reason:
        :data:`NO_GEOREFERENCE_WARP` for one without georeference, else the warp's error
        without the path; each copy -> the label it was made from).

    Raises:
        DataError: ``labels`` is one file: :func:`~sam2elnet.data.warp.warp_to_map_grid`'s
            errors (:class:`~sam2elnet.data.warp.NoGeoreferenceError` among them); a folder of
            which no label has a georeference: the first one's NoGeoreferenceError; a folder of
            which no label can be warped otherwise:
            :meth:`~sam2elnet.utils.batch.SkipLog.nothing_done`.
    """
    from sam2elnet.data.warp import NoGeoreferenceError, warp_to_map_grid
    from sam2elnet.export.tile_quality import carry_layer

    notes: list[str] = []
    failed: list[tuple[Path, DataError]] = []
    copies: dict[Path, Path] = {}
    for f in files:
        dst = tmp / f.name
        try:
            info = warp_to_map_grid(f, dst, warp_to, method=method)
        except DataError as err:  # not a UserError of the options, nor a full disk
            if not Path(labels).is_dir():
                raise
            failed.append((f, err))
            continue
        copies[dst] = f
        if info is not None:
            notes.append(info.note())
        if f.stem not in rated:  # the scene's windows, for the quality join
            carry_layer(f, dst, method)
    plain = [err for _, err in failed if isinstance(err, NoGeoreferenceError)]
    if failed and not copies and len(plain) == len(failed):  # nothing to place on a map
        raise plain[0]  # the first label's own error: drop --warp-to
    skips = SkipLog("label")
    for f, err in failed:
        if isinstance(err, NoGeoreferenceError) and copies:
            skips.add(f, NO_GEOREFERENCE_WARP.format(name=f.name, stem=f.stem))
        else:
            skips.add(f, err)
    if not copies:
        raise skips.nothing_done(len(files), labels)
    return notes, skips, copies
