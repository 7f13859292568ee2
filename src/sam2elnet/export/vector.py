"""Label rasters -> polygons (GeoJSON / GeoPackage / Shapefile) with useful attributes.

Why: GIS users review and edit labels as polygons, not PNGs. Each connected foreground region
becomes one polygon (holes kept) with attributes a reviewer can sort and filter on:

``source`` (image / label name), ``label`` (label file), ``quality`` (the label-quality
evaluator's predicted IoU from ``quality.csv`` when there is one), ``area_px`` and ``area_map``
(map units squared; equal to ``area_px`` for non-georeferenced labels), ``model_id``.

Georeferenced labels export in their CRS; labels without a CRS (PNGs, plain TIFFs) export in
*pixel coordinates* (x = column, y = row, y pointing down), which the result notes say.

Large label rasters are polygonised in row strips (bounded memory); polygons cut by a strip
border are merged afterwards, so the output does not depend on the strip height.
"""

from __future__ import annotations

import csv
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.errors import DataError, UserError
from sam2elnet.utils.atomic import atomic_path, write_text_atomic

log = logging.getLogger(__name__)

__all__ = [
    "LABEL_SUFFIXES",
    "FORMATS",
    "ExportResult",
    "find_labels",
    "read_quality_csv",
    "LabelRaster",
    "polygonize_label",
    "export_labels",
]

LABEL_SUFFIXES = (".tif", ".tiff", ".png")
FORMATS = {
    "geojson": ("GeoJSON", ".geojson"),
    "gpkg": ("GPKG", ".gpkg"),
    "shp": ("ESRI Shapefile", ".shp"),
}
_SKIP_STEMS = ("_prob", "_tiles", "_probability")
_KEY_COLUMNS = ("label", "image", "id", "name", "file", "filename", "path", "sample")
_QUALITY_COLUMNS = ("quality", "predicted_iou", "pred_iou", "iou_pred", "score")


@dataclass
class ExportResult:
    """What an export wrote."""

    out: Path
    format: str
    n_labels: int
    n_features: int
    n_chips: int = 0
    notes: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    skipped_csv: Path | None = None

    def summary(self) -> str:
        s = f"{self.out}: {self.n_features} {'annotations' if self.format == 'coco' else 'polygons'} from {self.n_labels} label files ({self.format})"
        if self.n_chips:
            s += f"; {self.n_chips} image/mask chips"
        return s


def find_labels(labels: str | Path) -> list[Path]:
    """Label rasters in a folder (``.tif``/``.png``; probability and tile files skipped) or one file."""
    p = Path(labels)
    if not p.exists():
        raise DataError("label file or folder does not exist; check the path", p)
    if p.is_file():
        if p.suffix.lower() not in LABEL_SUFFIXES:
            raise DataError(f"not a label raster (expected {', '.join(LABEL_SUFFIXES)})", p)
        return [p]
    files = sorted(
        f
        for f in p.iterdir()
        if f.is_file()
        and f.suffix.lower() in LABEL_SUFFIXES
        and not f.name.startswith(".")
        and not f.stem.endswith(_SKIP_STEMS)
    )
    if not files:
        raise DataError(f"no label rasters ({', '.join(LABEL_SUFFIXES)}) in the folder", p)
    return files


def read_quality_csv(path: str | Path) -> dict[str, float]:
    """Map label/image *stem* -> predicted quality from a ``quality.csv``.

    The score comes from the first of ``quality, predicted_iou, pred_iou, iou_pred, score``; names
    from every present column of ``label, image, id, name, file, filename, path, sample`` (so both
    the label file and its source image match; the ``quality.csv`` of ``elnet annotate`` /
    ``elnet enhance`` has ``image`` and ``label``).
    """
    p = Path(path)
    if not p.exists():
        raise DataError("quality CSV does not exist; check the path", p)
    with open(p, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        raw = {c.strip().lower(): c for c in reader.fieldnames or []}
        keys = [raw[c] for c in _KEY_COLUMNS if c in raw]
        qcol = next((raw[c] for c in _QUALITY_COLUMNS if c in raw), None)
        if not keys or qcol is None:
            raise DataError(
                f"quality CSV needs a name column ({'/'.join(_KEY_COLUMNS)}) and a score column "
                f"({'/'.join(_QUALITY_COLUMNS)}); found {sorted(raw)}",
                p,
            )
        out: dict[str, float] = {}
        for row in reader:
            try:
                val = float((row.get(qcol) or "").strip())
            except ValueError:
                continue
            for k in keys:
                name = (row.get(k) or "").strip()
                if name:
                    out.setdefault(Path(name).stem, val)
    return out


class LabelRaster:
    """A label file opened for strip-wise reading, with its georeference (or pixel space)."""

    def __init__(self, path: Path, positive_values: tuple[float, ...] | None = None) -> None:
        import rasterio

        from sam2elnet.data.raster import check_complete

        self.path = path
        check_complete(path)  # GDAL returns a truncated PNG's missing rows as zeros
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
                self.ds = rasterio.open(path)
        except rasterio.errors.RasterioIOError as err:
            raise DataError(
                f"cannot read label raster ({err}); corrupt or not a raster", path
            ) from None
        ds = self.ds
        self.crs = ds.crs
        self.georef = ds.crs is not None
        self.gcp_note: str | None = None
        from affine import Affine

        self.transform = ds.transform if self.georef else Affine.identity()
        gcps, gcp_crs = ds.gcps
        if not self.georef and len(gcps) >= 3 and gcp_crs is not None:
            # GCP-only label (Sentinel-1 GRD): polygons placed with an affine fit to the GCPs
            from rasterio.transform import from_gcps

            self.transform = from_gcps(gcps)
            self.crs = gcp_crs
            self.georef = True
            self.gcp_note = (
                f"{path.name}: georeferenced by {len(gcps)} ground control points only; polygons "
                f"are placed with an affine fit to them in {gcp_crs.to_string()} (approximate "
                "away from the GCPs; warp the label to a map grid for exact positions)"
            )
        self.height, self.width = ds.height, ds.width
        self.nodata = ds.nodata
        self.pixel_area = abs(
            self.transform.a * self.transform.e - self.transform.b * self.transform.d
        )
        self.source = ds.tags().get("SOURCE", path.name)
        # 0/1 labels vs 0/255 labels (127 nodata): decide once from a decimated read
        from sam2elnet.data.tiling import decimated_read

        try:
            ov = decimated_read(ds, [1], 250_000)[0][0]
        except rasterio.errors.RasterioError as err:
            ds.close()
            raise DataError(
                f"cannot read label raster ({err}); corrupt or truncated", path
            ) from None
        from sam2elnet.data.raster import mask_encoding

        self.encoding = mask_encoding(
            ov,
            nodata=self.nodata,
            positive_values=positive_values,
            lossy=path.suffix.lower() in (".jpg", ".jpeg"),
            path=path,
        )

    def read_mask(
        self, row0: int = 0, rows: int | None = None, col0: int = 0, cols: int | None = None
    ) -> np.ndarray:
        """Bool foreground mask for rows ``row0 : row0 + rows`` (columns ``col0 : col0 + cols``)."""
        import rasterio
        from rasterio.windows import Window

        rows = self.height - row0 if rows is None else min(rows, self.height - row0)
        cols = self.width - col0 if cols is None else min(cols, self.width - col0)
        try:
            a = self.ds.read(1, window=Window(col0, row0, cols, rows))
        except rasterio.errors.RasterioError as err:
            raise DataError(
                f"cannot read label raster ({err}); corrupt or truncated", self.path
            ) from None
        return self.encoding.apply(a)[0]

    def close(self) -> None:
        self.ds.close()


def _shapes(mask: np.ndarray, transform: Any) -> Iterator[Any]:
    from rasterio import features
    from shapely.geometry import shape

    if not mask.any():
        return
    for geom, _val in features.shapes(
        mask.astype(np.uint8), mask=mask, transform=transform, connectivity=4
    ):
        yield shape(geom)


def polygonize_label(
    path: str | Path,
    *,
    simplify: float | None = None,
    smooth: float | None = None,
    min_area_px: float = 0,
    strip_rows: int = 4096,
    positive_values: tuple[float, ...] | None = None,
) -> tuple[list[Any], LabelRaster]:
    """Polygons of the foreground of one label raster, in its CRS (or pixel coordinates).

    Reads ``strip_rows`` rows at a time; polygons touching an internal strip border are merged
    with their neighbours at the end, so the result equals a whole-raster polygonisation.
    ``smooth`` (map units) rounds staircase edges with a buffer out/in; ``simplify`` (map units)
    is Douglas-Peucker with topology preserved; polygons under ``min_area_px`` pixels are dropped.
    """
    import shapely
    from rasterio import windows
    from shapely.geometry import LineString

    lab = LabelRaster(Path(path), positive_values)
    done: list[Any] = []
    pending: list[Any] = []
    try:
        for row0 in range(0, lab.height, strip_rows):
            rows = min(strip_rows, lab.height - row0)
            m = lab.read_mask(row0, rows)
            t = windows.transform(windows.Window(0, row0, lab.width, rows), lab.transform)
            cuts = []
            if row0 > 0:
                cuts.append(LineString([t @ (0, 0), t @ (lab.width, 0)]))
            if row0 + rows < lab.height:
                cuts.append(LineString([t @ (0, rows), t @ (lab.width, rows)]))
            for g in _shapes(m, t):
                if cuts and any(g.intersects(c) for c in cuts):
                    pending.append(g)
                else:
                    done.append(g)
        if pending:
            merged = shapely.union_all(pending)
            done.extend(shapely.get_parts(merged).tolist())
    finally:
        lab.close()

    out = []
    px = lab.pixel_area or 1.0
    for g in done:
        if smooth:
            g = g.buffer(smooth, join_style="round").buffer(-smooth, join_style="round")
        if simplify:
            g = g.simplify(simplify, preserve_topology=True)
        if g.is_empty:
            continue
        if not g.is_valid:
            g = shapely.make_valid(g)
        if g.area / px < min_area_px:
            continue
        out.append(g)
    return out, lab


def export_labels(
    labels: str | Path,
    out: str | Path,
    fmt: str | None = None,
    *,
    quality_csv: str | Path | None = None,
    simplify: float | None = None,
    smooth: float | None = None,
    min_area_px: float = 0,
    model_id: str | None = None,
    images: str | Path | None = None,
    chips: str | Path | None = None,
    chip_size: int = 512,
    coco_rle: bool = False,
    category: str = "foreground",
    strip_rows: int = 4096,
    progress: bool = True,
    positive_values: tuple[float, ...] | None = None,
) -> ExportResult:
    """Export label rasters (a file or folder) as GeoJSON / GeoPackage / Shapefile or COCO JSON.

    ``fmt`` defaults from ``out``'s suffix. ``quality_csv`` (default: ``quality.csv`` next to the
    labels when present) adds each label's predicted quality. ``chips`` also writes
    ``chips/images/*.png`` + ``chips/masks/*.png`` tiles of ``chip_size`` (needs ``images``, the
    folder or file of the source images, unless the labels are scene outputs whose ``SOURCE`` tag
    names an image next to them); with ``fmt="coco"`` the COCO file then describes the chips.
    """
    from tqdm import tqdm

    out = Path(out)
    if fmt is None:
        fmt = {".geojson": "geojson", ".json": "coco", ".gpkg": "gpkg", ".shp": "shp"}.get(
            out.suffix.lower()
        )
        if fmt is None:
            raise UserError(f"cannot tell the export format from {out.name}; give --format")
    fmt = fmt.lower()
    if fmt not in (*FORMATS, "coco"):
        raise UserError(f"unknown export format {fmt!r}; use geojson, gpkg, shp or coco")
    if simplify is not None and simplify < 0:
        raise UserError("--simplify must be >= 0")
    if min_area_px < 0:
        raise UserError("--min-area must be >= 0")
    files = find_labels(labels)
    # one batch policy: an unreadable label file is skipped (listed in <out>_skipped.csv)
    from sam2elnet.utils.batch import SkipLog

    skips = SkipLog("label")
    usable = []
    for f in files:
        try:
            LabelRaster(f, positive_values).close()
            usable.append(f)
        except DataError as err:
            skips.add(f, err)
    skips.raise_if_nothing_done(len(usable), labels)
    files = usable
    skipped_csv = out.with_name(f"{out.stem}_skipped.csv")
    if skips:
        from sam2elnet.utils.tables import csv_text

        write_text_atomic(skipped_csv, csv_text(skips.items, ["label", "reason"]))
    lp = Path(labels)
    if quality_csv is None and lp.is_dir():
        # elnet annotate/enhance write OUT/quality.csv next to OUT/labels/
        quality_csv = next(
            (c for c in (lp / "quality.csv", lp.parent / "quality.csv") if c.exists()), None
        )
    quality = read_quality_csv(quality_csv) if quality_csv is not None else {}
    notes: list[str] = []

    chip_items = None
    if chips is not None:
        from sam2elnet.export.chips import iter_chips

        chip_items = iter_chips(files, images, Path(chips), chip_size=chip_size, progress=progress)

    if fmt == "coco":
        import json

        from sam2elnet.export.coco import build_coco, label_items

        counted = _Counter(chip_items) if chip_items is not None else None
        items = counted if counted is not None else label_items(files, images)
        coco = build_coco(
            items,
            quality=quality,
            category=category,
            rle=coco_rle,
            model_id=model_id,
            progress=progress,
        )
        write_text_atomic(out, json.dumps(coco) + "\n")
        n_chips = counted.n if counted is not None else 0
        return ExportResult(
            out,
            fmt,
            len(files),
            len(coco["annotations"]),
            n_chips,
            notes,
            skips.items,
            skipped_csv if skips else None,
        )
    n_chips = sum(1 for _ in chip_items) if chip_items is not None else 0

    import geopandas as gpd

    rows: list[dict[str, Any]] = []
    geoms: list[Any] = []
    crs = None
    georef_kinds = set()
    tile_note = False
    for f in tqdm(files, desc="polygonise", disable=not progress, leave=False):
        polys, lab = polygonize_label(
            f,
            simplify=simplify,
            smooth=smooth,
            min_area_px=min_area_px,
            strip_rows=strip_rows,
            positive_values=positive_values,
        )
        if lab.gcp_note:
            notes.append(lab.gcp_note)
        georef_kinds.add(lab.georef)
        if len(georef_kinds) > 1:
            raise DataError(
                "some labels are georeferenced and some are not; export them separately "
                "(one file cannot mix map and pixel coordinates)",
                f,
            )
        px = lab.pixel_area or 1.0
        areas_px = [g.area / px for g in polys]
        q = quality.get(f.stem, quality.get(Path(lab.source).stem))
        per_poly = [q] * len(polys)
        if q is None and polys:
            tiles_q = _tile_quality(f, polys)
            if tiles_q is not None:
                per_poly = tiles_q
                if not tile_note:
                    notes.append(
                        "quality = area-weighted predicted IoU of the scene windows under each "
                        "polygon (from <label>_tiles.gpkg)"
                    )
                    tile_note = True
        if lab.georef:
            if crs is None:
                crs = lab.crs
            elif lab.crs != crs:
                polys = gpd.GeoSeries(polys, crs=lab.crs).to_crs(crs).tolist()
                notes.append(
                    f"{f.name}: reprojected from {lab.crs.to_string()} to {crs.to_string()}"
                )
        for g, a_px, qq in zip(polys, areas_px, per_poly, strict=True):
            geoms.append(g)
            rows.append(
                {
                    "source": lab.source,
                    "label": f.name,
                    "quality": qq,
                    "area_px": round(a_px, 3),
                    "area_map": round(g.area, 6),
                    "model_id": model_id,
                }
            )
    if georef_kinds == {False}:
        if fmt == "geojson":
            raise DataError(
                "labels have no georeference, but GeoJSON (RFC 7946) holds WGS84 "
                "longitude/latitude only; nothing written. Export pixel-coordinate polygons to "
                ".gpkg or .shp (or COCO .json), or give georeferenced GeoTIFF labels",
                files[0],
            )
        notes.append("labels have no CRS: polygons are in pixel coordinates (x = column, y = row)")
        log.warning(notes[-1])
    gdf = gpd.GeoDataFrame(rows, geometry=geoms, crs=crs)
    if not len(gdf):
        gdf = gpd.GeoDataFrame(
            {k: [] for k in ("source", "label", "quality", "area_px", "area_map", "model_id")},
            geometry=[],
            crs=crs,
        )
        notes.append("no foreground in any label: wrote an empty layer")
    gdf.insert(0, "fid_", np.arange(1, len(gdf) + 1))
    gdf = gdf.rename(columns={"fid_": "poly_id"})
    for col in ("quality", "model_id"):
        if gdf[col].isna().all():
            gdf[col] = gdf[col].astype("float64" if col == "quality" else "object")
    options: dict[str, Any] = {}
    if fmt == "geojson":
        # RFC 7946: WGS84 longitude/latitude; area_map stays in the labels' own CRS units
        if crs is not None and crs.to_epsg() != 4326:
            notes.append(
                f"GeoJSON written in WGS84 longitude/latitude (RFC 7946), reprojected from "
                f"{_crs_name(crs)}; area_map is in that CRS's units. Use .gpkg to keep the CRS"
            )
        gdf = gdf.to_crs("EPSG:4326")
        options["RFC7946"] = "YES"
    driver, _ = FORMATS[fmt]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fmt == "shp":
            _write_shapefile(gdf, out)
        else:
            kw = {"layer": "labels" if fmt == "gpkg" else out.stem}
            with atomic_path(out) as tmp:
                gdf.to_file(tmp, driver=driver, engine="pyogrio", layer_options=options, **kw)
    return ExportResult(
        out, fmt, len(files), len(gdf), n_chips, notes, skips.items, skipped_csv if skips else None
    )


def _crs_name(crs: Any) -> str:
    """EPSG code when the CRS has one, else the CRS's own name (custom WKT)."""
    epsg = crs.to_epsg() if hasattr(crs, "to_epsg") else None
    if epsg:
        return f"EPSG:{epsg}"
    name = getattr(crs, "name", None) or (crs.to_wkt()[:60] if hasattr(crs, "to_wkt") else str(crs))
    return f"the custom CRS '{name}'"


def _tile_quality(label: Path, polys: list[Any]) -> list[float | None] | None:
    """Per-polygon quality from a scene's per-window layer ``<label stem>_tiles.gpkg``.

    Each polygon gets the mean ``predicted_iou`` of the windows it overlaps, weighted by the
    overlap area; None when the layer is absent or has no predicted IoU (entropy-only layers are
    not a quality estimate and are not used).
    """
    import geopandas as gpd
    from shapely import STRtree

    path = label.with_name(f"{label.stem}_tiles.gpkg")
    if not path.exists():
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tiles = gpd.read_file(path, layer="tiles", engine="pyogrio")
    except Exception:
        log.warning("%s: unreadable per-tile quality layer; ignored", path)
        return None
    if "predicted_iou" not in tiles.columns or not len(tiles):
        return None
    geoms = list(tiles.geometry.values)
    ious = tiles["predicted_iou"].to_numpy(dtype=float)
    tree = STRtree(geoms)
    out: list[float | None] = []
    for g in polys:
        idx = tree.query(g, predicate="intersects")
        w = np.array([geoms[i].intersection(g).area for i in idx])
        out.append(float(np.dot(w, ious[idx]) / w.sum()) if len(idx) and w.sum() > 0 else None)
    return out


class _Counter:
    """Iterator wrapper that counts what passed through."""

    def __init__(self, it: Iterator[Any]) -> None:
        self.it = it
        self.n = 0

    def __iter__(self) -> Iterator[Any]:
        for x in self.it:
            self.n += 1
            yield x


def _write_shapefile(gdf: Any, out: Path) -> None:
    """A Shapefile is several files: write them in a temporary folder, then move each into place
    with ``os.replace``, the ``.shp`` last, so a present ``.shp`` means a complete set."""
    import os
    import shutil
    import tempfile

    out.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{out.stem}.", dir=out.parent))
    try:
        target = tmpdir / out.name
        gdf.to_file(target, driver="ESRI Shapefile", engine="pyogrio")
        sides = sorted(tmpdir.glob(target.stem + ".*"), key=lambda f: f.suffix.lower() == ".shp")
        for side in sides:
            os.replace(side, out.with_suffix(side.suffix))
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
