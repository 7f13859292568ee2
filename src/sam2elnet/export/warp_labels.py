"""``elnet export --warp-to``: the labels' warped copies, in a temporary folder, that the export
then polygonises (:func:`export_warped`, the ``--warp-to`` route of
:func:`~sam2elnet.export.api.export_labels`; its errors and notes name the labels given, not
their copies).

The batch rule of a plain polygon export (:mod:`~sam2elnet.export.label_screen`) holds here too:
a label of a folder that cannot be warped is skipped, with one ``warning: skipping LABEL: reason``
line and its reason in the export's list of skipped labels (``<out stem>_<format>_skipped.csv``,
:func:`~sam2elnet.export.export_result.skipped_list`; named by the user's path, not the copy's), and
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

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sam2elnet.errors import DataError, UserError
from sam2elnet.export.export_result import ExportResult
from sam2elnet.export.option_scope import check_no_warp
from sam2elnet.utils.batch import SkipLog

__all__ = ["NO_GEOREFERENCE_WARP", "export_warped", "warp_label_copies"]

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
            skips.add(f, NO_GEOREFERENCE_WARP.format(name=f, stem=f.stem))
        else:
            skips.add(f, err)
    if not copies:
        raise skips.nothing_done(len(files), labels)
    return notes, skips, copies


def export_warped(
    export: Callable[..., ExportResult],
    labels: str | Path,
    out: str | Path,
    kind: str,
    files: list[Path],
    rated: set[str],
    warp_to: str,
    warp_method: str,
    kwargs: dict[str, Any],
) -> ExportResult:
    """Warp ``files`` (the labels of ``labels`` that go out) onto a regular map grid
    (``warp_to``: ``utm`` or a CRS; ``warp_method`` tps | polynomial) in a temporary folder
    and export the copies with ``export`` (the polygon / COCO exporter,
    ``export(folder, out, kind, **kwargs)``); ``rated``: the labels scored in the quality table
    (their quality layers are not carried). A label that cannot be warped is skipped, listed by
    its own path.

    Raises:
        UserError: bad ``warp_to`` / ``warp_method`` (:func:`~sam2elnet.data.warp.check_warp_options`),
            a COCO or chips export (``kind == "coco"`` or ``kwargs["chips"]``: they stay on the
            label's pixel grid), or the exporter's error about a copy, re-raised naming the
            label given (``... (after --warp-to ...)``).
    """
    from sam2elnet.data.warp import check_warp_options

    check_warp_options(warp_to, warp_method)
    if kind == "coco" or kwargs.get("chips") is not None:
        check_no_warp(warp_to, "COCO files and chips stay on the label's pixel grid")
    with tempfile.TemporaryDirectory(prefix="elnet-warp-") as tmp:
        # labels that cannot be warped: skipped, as unreadable ones are without --warp-to
        notes, skips, copies = warp_label_copies(
            labels, files, Path(tmp), warp_to, warp_method, rated
        )
        kwargs["skipped"], kwargs["originals"] = tuple(skips.items), copies
        try:
            res = export(tmp, out, kind, **kwargs)
        except UserError as err:  # names the labels given, not their warped copies' folder
            if err.path is None or not err.path.is_relative_to(tmp):
                raise
            text = str(err)[len(f"{err.path}: ") :]
            where = Path(labels) / err.path.relative_to(tmp) if Path(labels).is_dir() else labels
            raise type(err)(f"{text} (after --warp-to {warp_to})", where) from None
    skips.warn_held(res.skipped_csv)  # labels not warped, after the first few of a reason
    res.notes = notes + [n for n in res.notes if "ground control points only" not in n]
    return res
