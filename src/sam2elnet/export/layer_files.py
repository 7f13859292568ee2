"""Output-file helpers of the polygon export: Shapefile file sets.

:func:`replace_shapefile` puts a Shapefile written in a temporary folder in place of ``out``
as one set: the new files are checked, every old sidecar of ``out``
(:data:`~sam2elnet.utils.paths.SHAPEFILE_SIDECARS`) is removed, then the new files are renamed
in, the ``.shp`` last, so no ``.prj`` of an earlier export stays next to new geometry.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sam2elnet.data.georef import crs_name
from sam2elnet.errors import DataError
from sam2elnet.utils.paths import SHAPEFILE_SIDECARS

__all__ = ["replace_shapefile", "shapefile_files"]


def shapefile_files(shp: Path) -> list[Path]:
    """The existing files of the Shapefile ``shp``: ``<stem><sidecar>`` for every suffix of
    :data:`~sam2elnet.utils.paths.SHAPEFILE_SIDECARS`, matched case-insensitively (``a.PRJ``)."""
    if not shp.parent.is_dir():
        return []
    stem = shp.stem
    return sorted(
        f
        for f in shp.parent.iterdir()
        if f.name.startswith(stem + ".")
        and f.name[len(stem) :].lower() in SHAPEFILE_SIDECARS
        and f.is_file()
    )


def replace_shapefile(target: Path, out: Path, crs: Any) -> None:
    """Move the Shapefile ``target`` (written in a temporary folder) to ``out`` as one set.

    GDAL must read ``target`` back, with a CRS when ``crs`` is one (None: without). Then the old ``out``
    files go (``.shp`` first, so a present ``.shp`` always means a complete set), stale sidecars
    included, and the new ones are moved in with ``os.replace`` (same file system), ``.shp`` last.

    Raises:
        DataError: GDAL reads the temporary Shapefile back with a CRS where none was written,
            or without one (``out`` untouched).
    """
    import pyogrio

    got = pyogrio.read_info(target)["crs"]
    if (got is None) != (crs is None):
        raise DataError(
            f"GDAL reads the Shapefile back with {'a' if got else 'no'} CRS, written with "
            f"{crs_name(crs) if crs is not None else 'none'}; nothing written. Export to .gpkg",
            out,
        )
    new = sorted(shapefile_files(target), key=lambda f: f.suffix.lower() == ".shp")
    old = sorted(shapefile_files(out), key=lambda f: f.suffix.lower() != ".shp")
    for f in old:  # .shp first
        f.unlink()
    for f in new:  # .shp last
        os.replace(f, out.with_name(out.stem + f.name[len(target.stem) :]))
