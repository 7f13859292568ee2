"""The labels an export can use: each label file opened once before any output, its georeference
read, the unusable ones skipped by the batch rule (a reason each in ``<out stem>_skipped.csv``).

Two kinds of label are skipped from a folder (one file given alone raises its own error):

* a file that cannot be read as a label raster (:class:`~sam2elnet.export.labels.LabelRaster`);
* for a polygon layer (:data:`~sam2elnet.export.option_scope.POLYGON_FORMATS`) of a folder where
  some labels are georeferenced (a CRS, or ground control points) and some are not: those without
  georeference. One layer holds one kind of coordinates; a user exporting a run of GeoTIFF labels
  expects the map layer of those, not a refusal because one PNG slipped in, and the run's domain
  (``category``, road centre lines) and model id still come from the run folder. The PNG's
  polygons would be in pixel coordinates: exported alone (``--labels <file>``, .gpkg / .shp)
  they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sam2elnet.errors import DataError
from sam2elnet.export.labels import LabelRaster
from sam2elnet.export.option_scope import POLYGON_FORMATS
from sam2elnet.utils.batch import SkipLog

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
) -> Screened:
    """Open each of ``files`` (the labels found in ``labels``) once and keep those an export of
    format ``fmt`` can use (module docstring); read each one's georeference for
    :func:`~sam2elnet.export.vector.write_polygons` (which then opens no label before
    polygonising it).

    Raises:
        DataError: ``labels`` is one file and it cannot be read.
        UserError: every label of the folder was skipped
            (:meth:`~sam2elnet.utils.batch.SkipLog.raise_if_nothing_done`).
    """
    out = Screened([])
    for f in files:
        try:
            lab = LabelRaster(f, positive_values)
        except DataError as err:
            if not Path(labels).is_dir():  # one file: its own error, not a batch summary
                raise
            out.skips.add(f, err)
            continue
        out.georefs[f] = (lab.georef, lab.crs)
        lab.close()
        out.files.append(f)
    if fmt in POLYGON_FORMATS and len({g for g, _ in out.georefs.values()}) > 1:
        for f in [f for f in out.files if not out.georefs[f][0]]:
            out.skips.add(f, NO_GEOREFERENCE.format(name=f.name, stem=f.stem))
            out.files.remove(f)
            del out.georefs[f]
    out.skips.raise_if_nothing_done(len(out.files), labels)
    return out
