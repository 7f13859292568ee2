"""The labels an export can use: each label file opened once before any output, its georeference
read, the unusable ones skipped by the batch rule (a reason each in the export's list,
:func:`~sam2elnet.export.export_result.skipped_list_path`).

Two kinds of label are skipped from a folder (one file given alone raises its own error):

* a file that cannot be read as a label raster (:class:`~sam2elnet.export.labels.LabelRaster`);
* for a polygon layer (:data:`~sam2elnet.export.option_scope.POLYGON_FORMATS`) of a folder where
  some labels are georeferenced (a CRS, or ground control points) and some are not: those without
  georeference. One layer holds one kind of coordinates; a user exporting a run of GeoTIFF labels
  expects the map layer of those, not a refusal because one PNG slipped in, and the run's domain
  (``category``, road centre lines) and model id still come from the run folder. The PNG's
  polygons would be in pixel coordinates: exported alone (``--labels <file>``, .gpkg / .shp)
  they are.
* for a polygon layer with ``--simplify`` / ``--smooth``: a label the tolerance spans whole (a
  small edge tile; :func:`~sam2elnet.export.polygonize.tolerance_problem`), whose polygons it
  could only erase, while it fits the larger labels. A tolerance that spans every label is a
  unit mistake, not a batch outlier: the export is refused (one file given alone, too).

Then the layer's georeference is checked as a whole (labels in several CRSs without ``--crs``,
``--crs`` for labels without georeference, GeoJSON of pixel coordinates:
:func:`~sam2elnet.export.vector.check_georef`), so an export that will be refused is refused
before anything (chips, the list of skipped labels) is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sam2elnet.errors import DataError, UserError
from sam2elnet.export.labels import LabelRaster
from sam2elnet.export.option_scope import POLYGON_FORMATS
from sam2elnet.export.polygonize import tolerance_problem
from sam2elnet.utils.batch import SkipLog, short_reason

__all__ = ["NO_GEOREFERENCE", "Screened", "screen_labels"]

NO_GEOREFERENCE = (
    "no georeference (no CRS, no ground control points) while other labels have one: a layer "
    "cannot mix map and pixel coordinates; exported alone (elnet export --labels {name} --out "
    "{stem}.gpkg) its polygons are in pixel coordinates"
)
"""The skip reason of a label without georeference in a georeferenced polygon export."""


@dataclass
class Screened:
    """The outcome of :func:`screen_labels`."""

    files: list[Path]  #: the labels to export, in the given order
    #: label -> (georeferenced, CRS or None: the label's own, or its GCPs')
    georefs: dict[Path, tuple[bool, Any]] = field(default_factory=dict)
    skips: SkipLog = field(default_factory=lambda: SkipLog("label"))


def screen_labels(
    files: list[Path],
    labels: str | Path,
    fmt: str,
    positive_values: tuple[float, ...] | None = None,
    *,
    target: Any = None,
    simplify: float | None = None,
    smooth: float | None = None,
    skipped: Sequence[dict[str, str]] = (),
    names: Mapping[Path, Path] | None = None,
) -> Screened:
    """Open each of ``files`` (the labels found in ``labels``) once and keep those an export of
    format ``fmt`` can use (module docstring); read each one's georeference for
    :func:`~sam2elnet.export.vector.write_polygons` (which then opens no label before
    polygonising it). ``target``: the layer CRS (:func:`~sam2elnet.export.layer_crs.
    parse_layer_crs` of ``--crs``; None: the labels' own); ``simplify`` / ``smooth``: the
    tolerances (each label's own map units). ``skipped``: rows of labels skipped before
    (``--warp-to``), first in the result's skip log and counted by its ``nothing produced``
    error; ``names``: the path a file of ``files`` is skipped under, when it is a copy
    (``--warp-to``: the user's label, not its warped copy in a temporary folder).

    Raises:
        DataError: ``labels`` is one file and it cannot be read; for a polygon layer, the
            georeference errors of :func:`~sam2elnet.export.vector.check_georef`.
        UserError: every label of the folder was skipped
            (:meth:`~sam2elnet.utils.batch.SkipLog.raise_if_nothing_done`); a ``--simplify`` /
            ``--smooth`` that spans every label (the first one's reason).
    """
    from sam2elnet.export.vector import check_georef

    out = Screened([], skips=SkipLog("label", list(skipped)))
    polygons = fmt in POLYGON_FORMATS

    def skip(f: Path, reason: str | BaseException) -> None:
        """Skip ``f`` under the name the user knows it by, the reason without the copy's path."""
        name = (names or {}).get(f, f)
        out.skips.add(name, reason if name == f else short_reason(str(reason), f))

    too_coarse: dict[Path, str] = {}  # label -> why the tolerance would erase it
    for f in files:
        try:
            lab = LabelRaster(f, positive_values)
        except DataError as err:
            if not Path(labels).is_dir():  # one file: its own error, not a batch summary
                raise
            skip(f, err)
            continue
        out.georefs[f] = (lab.georef, lab.crs)
        why = tolerance_problem(lab, simplify, smooth) if polygons else None
        lab.close()
        if why is not None:
            too_coarse[f] = why
        out.files.append(f)
    if polygons and len({g for g, _ in out.georefs.values()}) > 1:
        for f in [f for f in out.files if not out.georefs[f][0]]:
            skip(f, NO_GEOREFERENCE.format(name=f.name, stem=f.stem))
            out.files.remove(f)
            del out.georefs[f]
    if out.files and all(f in too_coarse for f in out.files):  # a unit mistake: refused
        raise UserError(too_coarse[out.files[0]], out.files[0])
    for f in [f for f in out.files if f in too_coarse]:  # small labels among larger ones
        skip(f, f"{too_coarse[f]}; the other labels are larger, so only it is skipped")
        out.files.remove(f)
        del out.georefs[f]
    out.skips.raise_if_nothing_done(len(out.files), labels)
    if polygons:  # the layer's CRS and kind of coordinates: refused before anything is written
        check_georef(out.files, fmt, positive_values, target, out.georefs)
    return out
