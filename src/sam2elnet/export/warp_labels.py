"""``elnet export --warp-to``: the labels' warped copies, in a temporary folder, that the export
then polygonises (:func:`~sam2elnet.export.api.export_labels`).

The batch rule of a plain polygon export (:mod:`~sam2elnet.export.label_screen`) holds here too:
a label without any georeference (no CRS, no ground control points: a PNG among GeoTIFFs) among
georeferenced ones is skipped, with its reason in ``<out stem>_skipped.csv``, and the others are
exported; a label given alone, or a folder of which no label has a georeference, is refused (one
``error:`` line: :class:`~sam2elnet.data.warp.NoGeoreferenceError`, "drop --warp-to").
"""

from __future__ import annotations

from pathlib import Path

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
) -> tuple[list[str], SkipLog]:
    """Warp each of ``files`` (the labels found in ``labels``) to ``warp_to`` with ``method``
    (:func:`sam2elnet.data.warp.warp_to_map_grid`) as ``tmp/<same name>`` (so ``quality.csv``
    rows still match) and carry the per-window quality layer of each label whose stem is not in
    ``rated`` (:func:`~sam2elnet.export.tile_quality.carry_layer`).

    Returns:
        (the warps' notes, the labels skipped for having no georeference among georeferenced
        ones: :data:`NO_GEOREFERENCE_WARP`, named by their path as given).

    Raises:
        DataError: :func:`~sam2elnet.data.warp.warp_to_map_grid`'s errors, among them
            :class:`~sam2elnet.data.warp.NoGeoreferenceError` for ``labels`` given as one file
            or a folder of which no label has a georeference (the first one's).
    """
    from sam2elnet.data.warp import NoGeoreferenceError, warp_to_map_grid
    from sam2elnet.export.tile_quality import carry_layer

    notes: list[str] = []
    plain: list[tuple[Path, NoGeoreferenceError]] = []
    n_warped = 0
    for f in files:
        dst = tmp / f.name
        try:
            info = warp_to_map_grid(f, dst, warp_to, method=method)
        except NoGeoreferenceError as err:
            if not Path(labels).is_dir():
                raise
            plain.append((f, err))
            continue
        n_warped += 1
        if info is not None:
            notes.append(info.note())
        if f.stem not in rated:  # the scene's windows, for the quality join
            carry_layer(f, dst, method)
    if plain and n_warped == 0:  # nothing to place on a map: the first label's own error
        raise plain[0][1]
    skips = SkipLog("label")
    for f, _ in plain:
        skips.add(f, NO_GEOREFERENCE_WARP.format(name=f.name, stem=f.stem))
    return notes, skips
