"""Putting one layer file on disk (the polygons, or the centre lines): GeoJSON / GeoPackage /
Shapefile, in batches, whole or not at all.

* :class:`LayerWriter` writes a layer in batches under a temporary name and renames it into place
  when complete (GeoJSON batches joined into one FeatureCollection, its ``crs`` member checked;
  GeoPackage with a QGIS style for each layer, :mod:`~sam2elnet.export.qgis_style`);
* :func:`replace_shapefile` puts a Shapefile written in a temporary folder in place of ``out``
  as one set: the new files are checked, every old sidecar of ``out``
  (:data:`~sam2elnet.utils.paths.SHAPEFILE_SIDECARS`) is removed, then the new files are renamed
  in, the ``.shp`` last, so no ``.prj`` of an earlier export stays next to new geometry.

* :func:`layer_frame` makes one batch of rows a GeoDataFrame with the same columns and dtypes
  in every batch (the polygons' and the centre lines' layers), in the order
  :func:`layer_columns` gives: the attributes both layers share (:data:`COMMON_COLUMNS`,
  filled by :func:`shared_attributes`) around each layer's own measures.

What goes into the layers is :mod:`~sam2elnet.export.vector`'s (polygons and their attributes)
and :mod:`~sam2elnet.export.centreline_layer`'s (centre lines).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.data.georef import crs_name
from sam2elnet.data.vector_layers import LABELS_LAYER
from sam2elnet.data.vector_names import IMAGE_NAME_ATTRIBUTES, image_name_attributes
from sam2elnet.errors import DataError, UserError
from sam2elnet.utils.atomic import atomic_path
from sam2elnet.utils.paths import SHAPEFILE_SIDECARS

__all__ = [
    "COMMON_COLUMNS",
    "FORMATS",
    "LayerWriter",
    "format_of",
    "shared_attributes",
    "layer_columns",
    "layer_frame",
    "export_sidecar",
    "sidecar_format",
    "suffix_formats",
    "replace_shapefile",
    "shapefile_files",
]

FORMATS = {
    "geojson": ("GeoJSON", ".geojson"),
    "gpkg": ("GPKG", ".gpkg"),
    "shp": ("ESRI Shapefile", ".shp"),
}
"""Polygon export formats: name -> (GDAL driver, file suffix)."""

OTHER_SUFFIXES = {".json": "coco"}
"""Export formats other than :data:`FORMATS` that a file suffix means (suffix -> name)."""

COMMON_COLUMNS = (*IMAGE_NAME_ATTRIBUTES, "category", "quality", "status", "model_id")
"""The attribute columns of every feature ``elnet export`` writes, polygons and centre lines
alike: ``source`` / ``label`` (the image and label file names), ``category``, ``quality``
(predicted IoU, float; NaN: none), ``status`` (kept / rejected / empty) and ``model_id``.
docs/geospatial.md and docs/review.md list them."""


def layer_columns(*measures: str) -> tuple[str, ...]:
    """A layer's attribute columns in file order: :data:`COMMON_COLUMNS` with the layer's own
    ``measures`` (e.g. ``area_px``, ``area_map``) before ``model_id``."""
    return (*COMMON_COLUMNS[:-1], *measures, COMMON_COLUMNS[-1])


def shared_attributes(
    source: str,
    label: str,
    category: str,
    quality: float | None,
    status: str,
    model_id: str | None,
) -> dict[str, Any]:
    """One feature's :data:`COMMON_COLUMNS` (the layer adds its own measures)."""
    return {
        **image_name_attributes(source, label),
        "category": category,
        "quality": quality,
        "status": status,
        "model_id": model_id,
    }


def suffix_formats() -> dict[str, str]:
    """File suffix (lower case, with its dot) -> the export format it means, when none is given:
    the :data:`FORMATS` suffixes and :data:`OTHER_SUFFIXES`."""
    return {suffix: name for name, (_, suffix) in FORMATS.items()} | OTHER_SUFFIXES


def export_sidecar(out: str | Path, fmt: str | None, ending: str) -> Path:
    """The file an export to ``out`` writes next to it, named for its format so that exports
    of one stem in one folder (``w.gpkg``, ``w.geojson``, ``w.shp``, ``w.json``) keep one each:
    ``<out stem><ending>`` for a GeoPackage, ``<out stem>_<format><ending>`` for the others
    (``x_geojson_review.json``, ``x_shp_...``: no sidecar name of a Shapefile's own;
    ``x_coco_...``, ``x_label-studio_...``). The list of skipped labels is tagged for a
    GeoPackage too (:func:`~sam2elnet.export.export_result.skipped_list`).

    ``fmt`` is the export format (any case); it names the file, not the suffix (``--format
    geojson --out x.json``: ``x_geojson<ending>``). None: the format ``out``'s suffix means
    (:func:`suffix_formats`; another suffix: its own name, without the dot). Never raises."""
    p = Path(out)
    kind = sidecar_format(p, fmt)
    tag = "" if kind == "gpkg" else f"_{kind}"
    return p.with_name(f"{p.stem}{tag}{ending}")


def sidecar_format(out: str | Path, fmt: str | None) -> str:
    """The format that names :func:`export_sidecar`'s files: ``fmt`` (lower case), else the
    format ``out``'s suffix means (another suffix: its own name, without the dot; none: "").
    Never raises, unlike :func:`format_of`."""
    ext = Path(out).suffix.lower()
    return (fmt or suffix_formats().get(ext, ext.lstrip("."))).lower()


def format_of(out: str | Path, fmt: str | None = None) -> str:
    """The export format of ``out``: ``fmt`` (lower case) when given, else what ``out``'s suffix
    means (case-insensitive): a :data:`FORMATS` suffix (``.gpkg`` -> ``gpkg``) or one of
    :data:`OTHER_SUFFIXES` (``.json`` -> ``coco``; Label Studio tasks are never told by the
    suffix).

    Raises:
        UserError: ``fmt`` is none of :data:`~sam2elnet.option_values.EXPORT_FORMATS` and
            :data:`FORMATS` (the message lists them all, ``label-studio`` included), or ``fmt`` is None and the suffix
            means no format.
    """
    from sam2elnet.option_values import EXPORT_FORMATS

    if fmt is None:
        fmt = suffix_formats().get(Path(out).suffix.lower())
        if fmt is None:
            raise UserError(f"cannot tell the export format from {Path(out).name}; give --format")
    fmt = fmt.lower()
    known = dict.fromkeys([*EXPORT_FORMATS, *suffix_formats().values()])
    if fmt not in known:
        *names, last = known
        raise UserError(f"unknown export format {fmt!r}; use {', '.join(names)} or {last}")
    return fmt


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


class LayerWriter:
    """Writes one layer in batches under a temporary name; renamed into place on success.

    GeoPackage and Shapefile batches are appended with GDAL (pyogrio ``append=True``). GeoJSON
    batches are each written by GDAL to a temporary FeatureCollection (one feature per line) and
    their feature lines joined into the output, because GDAL's GeoJSON update mode rewrites the
    file and drops the ``RFC7946`` layer options on append. ``crs_member`` (GeoJSON in the labels'
    CRS): the CRS the file must name; when GDAL's header names none (a CRS without an EPSG code)
    a ``crs`` member with the CRS's WKT is added, and before the rename GDAL must read the
    temporary file back in that CRS (:func:`_check_geojson_crs`).
    """

    def __init__(
        self,
        out: Path,
        fmt: str,
        options: dict[str, Any],
        to_wgs84: bool,
        crs_member: Any = None,
        crs: Any = None,
    ) -> None:
        self.out, self.fmt, self.options, self.to_wgs84 = out, fmt, options, to_wgs84
        self.crs_member = crs_member
        self.crs = crs
        self.batches = 0

    def __enter__(self) -> LayerWriter:
        self._stack = contextlib.ExitStack()
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.tmpdir = Path(tempfile.mkdtemp(prefix=f".{self.out.stem}.", dir=self.out.parent))
        self._stack.callback(shutil.rmtree, self.tmpdir, ignore_errors=True)
        if self.fmt == "shp":
            self.target = self.tmpdir / self.out.name
        else:
            self.target = self._stack.enter_context(atomic_path(self.out))
        self._json: Any = None
        self._pending_line: str | None = None
        self._layers: set[str] = set()
        return self

    def write(self, gdf: Any, layer: str | None = None, geometry_type: str | None = None) -> None:
        """Append one batch (a GeoDataFrame in the layer's CRS) to the layer.

        ``layer`` (GeoPackage only): another layer of the same file (the first batch of it
        creates it; default: the polygon layer
        :data:`~sam2elnet.data.vector_layers.LABELS_LAYER`). ``geometry_type`` (e.g.
        ``"LineString"``): the layer's declared geometry type, for an empty first batch."""
        if self.to_wgs84:
            gdf = gdf.to_crs("EPSG:4326")
        driver, _ = FORMATS[self.fmt]
        if layer is not None and self.fmt != "gpkg":
            raise ValueError("only a GeoPackage holds several layers")
        layer = layer or (LABELS_LAYER if self.fmt == "gpkg" else self.out.stem)
        first = layer not in self._layers
        self._layers.add(layer)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.fmt == "geojson":
                part = self.tmpdir / f"part{self.batches}.geojson"
                gdf.to_file(
                    part, driver=driver, engine="pyogrio", layer=layer, layer_options=self.options
                )
                self._join_geojson(part)
                part.unlink()
            else:
                kw: dict[str, Any] = {"append": True} if not first else {}
                if self.fmt == "gpkg":
                    kw["layer"] = layer
                if geometry_type and first:
                    kw["geometry_type"] = geometry_type
                gdf.to_file(self.target, driver=driver, engine="pyogrio", **kw)
        self.batches += 1

    def _join_geojson(self, part: Path) -> None:
        """Copy the feature lines of one GDAL FeatureCollection into the output (the header once)."""
        with open(part, encoding="utf-8") as fh:
            lines = fh.read().split("\n")
        try:
            k = next(i for i, ln in enumerate(lines) if ln.startswith('"features": ['))
        except StopIteration:
            raise DataError("unexpected GeoJSON layout from GDAL; cannot join", part) from None
        if lines[-3:] != ["]", "}", ""]:
            raise DataError("unexpected GeoJSON layout from GDAL; cannot join", part)
        feats = [ln for ln in lines[k + 1 : -3] if ln]
        if self._json is None:
            header = lines[: k + 1]
            if self.crs_member is not None and not any(h.startswith('"crs":') for h in header):
                header.insert(k, _wkt_crs_member(self.crs_member))
            self._json = open(self.target, "w", encoding="utf-8")  # noqa: SIM115
            self._stack.callback(self._json.close)
            self._json.write("\n".join(header) + "\n")
        for ln in feats:
            if self._pending_line is not None:
                self._json.write(self._pending_line + "\n")
            self._pending_line = ln if ln.endswith(",") else ln + ","

    def _finish(self) -> None:
        if self.fmt == "geojson" and self._json is not None:
            if self._pending_line is not None:
                self._json.write(self._pending_line[:-1] + "\n]\n}\n")
            else:
                self._json.write("\n]\n}\n")  # GDAL's empty FeatureCollection
            self._json.close()
            if self.crs_member is not None:
                _check_geojson_crs(self.target, self.crs_member, self.out)
        if self.fmt == "gpkg":
            from sam2elnet.export.qgis_style import add_layer_style

            for layer in sorted(self._layers | {LABELS_LAYER}):  # with centre_lines, if written
                add_layer_style(self.target, layer)  # QGIS opens it coloured by quality
        if self.fmt in ("geojson", "shp"):  # QGIS loads <stem>.qml as the default style
            import pyogrio

            from sam2elnet.export.qgis_style import write_qml_sidecar

            geometry = pyogrio.read_info(self.target)["geometry_type"]
            # a Shapefile's .qml moves in with its other sidecars; a GeoJSON's goes beside it
            write_qml_sidecar(self.target if self.fmt == "shp" else self.out, geometry)
        if self.fmt == "shp":
            replace_shapefile(self.target, self.out, self.crs)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if exc_type is not None:  # the temporary files go, nothing reaches ``out``
            self._stack.__exit__(exc_type, exc, tb)
            return False
        with self._stack:
            self._finish()
        return False


def _wkt_crs_member(crs: Any) -> str:
    """The GeoJSON 2008 ``crs`` member naming ``crs`` by its WKT (WKT2 2019, as PROJ writes it),
    one header line in GDAL's layout; GDAL reads a WKT name with ``SetFromUserInput``."""
    from pyproj import CRS as ProjCRS

    wkt = ProjCRS.from_user_input(crs).to_wkt()
    return f'"crs": {{ "type": "name", "properties": {{ "name": {json.dumps(wkt)} }} }},'


def _check_geojson_crs(path: Path, crs: Any, out: Path) -> None:
    """Raise :class:`DataError` unless GDAL reads the GeoJSON ``path`` back in ``crs``."""
    import pyogrio
    from pyproj import CRS as ProjCRS

    got = pyogrio.read_info(path)["crs"]
    if got is None or ProjCRS.from_user_input(got) != ProjCRS.from_user_input(crs):
        back = crs_name(ProjCRS.from_user_input(got)) if got else "no CRS"
        raise DataError(
            f"GDAL reads the GeoJSON written in {crs_name(crs)} back as {back}; "
            "nothing written. Export to .gpkg (keeps any CRS) or use --geojson-crs wgs84",
            out,
        )


def layer_frame(
    rows: list[dict[str, Any]],
    geoms: list[Any],
    crs: Any,
    columns: tuple[str, ...],
    id_column: str,
    first_id: int = 0,
    floats: tuple[str, ...] = ("quality",),
) -> Any:
    """One batch of a layer as a GeoDataFrame whose columns, their order and dtypes are the same
    in every batch (an empty batch too), so batches join into one layer.

    Args:
        rows: one dict of attributes per feature (keys: ``columns``, in any order).
        geoms: the features' shapely geometries, in ``rows`` order.
        crs: the layer CRS (anything geopandas takes, or None).
        columns: the attribute columns in file order (:func:`layer_columns`).
        id_column: the id column put first: ``first_id + 1``, ``first_id + 2``, ...
        first_id: features written by earlier batches.
        floats: columns cast to float64 (None becomes NaN).

    Returns:
        A GeoDataFrame: ``id_column``, ``columns``, ``geometry``; ``model_id`` of object dtype
        when every row has none.

    Raises:
        KeyError: a row lacks one of ``columns``.
    """
    import geopandas as gpd

    if rows:
        gdf = gpd.GeoDataFrame(rows, geometry=geoms, crs=crs)
        gdf = gdf[[*columns, gdf.geometry.name]]
    else:
        gdf = gpd.GeoDataFrame({k: [] for k in columns}, geometry=[], crs=crs)
    gdf.insert(0, id_column, np.arange(first_id + 1, first_id + len(gdf) + 1))
    for col in floats:
        gdf[col] = gdf[col].astype("float64")
    if gdf["model_id"].isna().all():
        gdf["model_id"] = gdf["model_id"].astype("object")
    return gdf
