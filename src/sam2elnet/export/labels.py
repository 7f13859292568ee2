"""Reading label rasters for export: discovery, strip-wise reading, source images, quality scores.

Shared by the three export formats (:mod:`~sam2elnet.export.vector`, :mod:`~sam2elnet.export.coco`,
:mod:`~sam2elnet.export.chips`) and the dispatcher :func:`sam2elnet.export.api.export_labels`, so
none of them imports another.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sam2elnet.data.gdal_errors import gdal_reason, raster_error_text
from sam2elnet.data.georef import crs_name, plain_grid_transform
from sam2elnet.data.naming import (
    LABEL_SKIP_TAGS,
    LABEL_SUFFIXES,
    LOSSY_SUFFIXES,
    STEM_LOOKUP_SUFFIXES,
)
from sam2elnet.data.runfolder import quality_by_stem
from sam2elnet.errors import DataError
from sam2elnet.utils.quiet import quiet_native_stderr

__all__ = [
    "gdal_reason",
    "CocoItem",
    "LabelRaster",
    "find_image",
    "find_labels",
    "read_quality_csv",
]


def find_labels(labels: str | Path) -> list[Path]:
    """Label rasters in a folder (``.tif``/``.png``; probability and tile files skipped) or one file.

    Returns the files sorted by name.

    Raises:
        DataError: ``labels`` does not exist (for a run's ``labels/`` folder that kept no label:
            naming its ``rejected/`` folder), is a file that is not a label raster, or is a
            folder with no label raster (naming a run folder's ``labels/`` / ``rejected/``).
    """
    p = Path(labels)
    if not p.exists():
        rejected = p.parent / "rejected"
        if p.name == "labels" and rejected.is_dir():  # a run that rejected every label
            raise DataError(
                f"label folder does not exist: the run kept no label; its rejected labels are "
                f"in {rejected} (pass that folder)",
                p,
            )
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
        and not f.stem.endswith(LABEL_SKIP_TAGS)
    )
    if not files:
        subs = [p / d for d in ("labels", "rejected") if (p / d).is_dir()]
        hint = (
            f"; an annotate/enhance run folder: pass {' or '.join(map(str, subs))}" if subs else ""
        )
        raise DataError(f"no label rasters ({', '.join(LABEL_SUFFIXES)}) in the folder{hint}", p)
    return files


def read_quality_csv(path: str | Path) -> dict[str, float]:
    """Map label/image *stem* -> predicted quality from a ``quality.csv``.

    The table is read by :func:`sam2elnet.data.runfolder.read_quality_table` (score: the first of
    ``quality, predicted_iou, pred_iou, iou_pred, score``; names: every present column of
    ``label, image, id, name, file, filename, path, sample``), so both the label file and its
    source image match.

    Raises:
        DataError: missing or unreadable file, or no name / score column.
    """
    p = Path(path)
    if not p.exists():
        raise DataError("quality CSV does not exist; check the path", p)
    return quality_by_stem(p)


class LabelRaster:
    """A label file opened for strip-wise reading, with its georeference (or pixel space).

    Raises:
        DataError: ``path`` is missing, a truncated PNG / JPEG, or a raster GDAL cannot open or
            read, or its values are class indices and no ``positive_values`` says which are
            objects (:func:`sam2elnet.data.mask_values.mask_encoding`).
    """

    def __init__(self, path: Path, positive_values: tuple[float, ...] | None = None) -> None:
        import rasterio

        from sam2elnet.data.images import check_complete

        self.path = path
        check_complete(path)  # GDAL returns a truncated PNG's missing rows as zeros
        try:
            with warnings.catch_warnings(), quiet_native_stderr() as native:
                warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
                self.ds = rasterio.open(path)
        except rasterio.errors.RasterioIOError as err:
            raise DataError(raster_error_text("label raster", err, native.text), path) from None
        self._native = native.text
        ds = self.ds
        self.crs = ds.crs
        self.georef = ds.crs is not None
        self.gcp_note: str | None = None
        from affine import Affine

        # without a CRS: pixel coordinates x = column, y = row (the case catalogue's contract,
        # C07: a PNG exports in pixel coordinates)
        self.transform = ds.transform if self.georef else Affine.identity()
        from sam2elnet.data.grids import GcpGrid

        grid = GcpGrid.of(ds, path)
        if grid is not None and grid.placeable:
            # GCP-only label (Sentinel-1 GRD): polygons placed with an affine fit to the GCPs,
            # as the scene's --quality-gpkg windows (data.grids.GcpGrid.affine)
            gcps, gcp_crs = grid.gcps, grid.crs
            self.transform = grid.affine()
            self.crs = gcp_crs
            self.georef = True
            self.gcp_note = (
                f"{path.name}: georeferenced by {len(gcps)} ground control points only; polygons "
                f"are placed with an affine fit to them in {crs_name(gcp_crs)} (approximate "
                "away from the GCPs; warp the label to a map grid for exact positions)"
            )
        self.height, self.width = ds.height, ds.width
        self.nodata = ds.nodata
        self.pixel_area = abs(
            self.transform.a * self.transform.e - self.transform.b * self.transform.d
        )
        #: the ``SOURCE`` tag (the scene image an elnet output was made from), None without one
        self.source_tag: str | None = ds.tags().get("SOURCE")
        self.source = path.name if self.source_tag is None else self.source_tag
        # 0/1 labels vs 0/255 labels (127 nodata): decide once from a decimated read
        from sam2elnet.data.tiling import decimated_read

        try:
            with quiet_native_stderr() as native:
                ov = decimated_read(ds, [1], 250_000)[0][0]
        except rasterio.errors.RasterioError as err:
            ds.close()
            raise DataError(
                raster_error_text("label raster", err, self._native + native.text), path
            ) from None
        from sam2elnet.data.mask_values import mask_encoding

        self.encoding = mask_encoding(
            ov,
            nodata=self.nodata,
            positive_values=positive_values,
            lossy=path.suffix.lower() in LOSSY_SUFFIXES,
            path=path,
        )

    def place_as_qgis(self) -> None:
        """Place a label without a CRS where QGIS shows it: :attr:`transform` becomes
        :func:`~sam2elnet.data.georef.plain_grid_transform` of the file's geotransform (x = column,
        y = -row; a geotransform without CRS, e.g. a world file, as it is), and
        :attr:`pixel_area` follows. No effect on a georeferenced label."""
        if self.georef:
            return
        t = self.transform = plain_grid_transform(self.ds.transform)
        self.pixel_area = abs(t.a * t.e - t.b * t.d)

    def read_mask(
        self, row0: int = 0, rows: int | None = None, col0: int = 0, cols: int | None = None
    ) -> np.ndarray:
        """Bool foreground mask for rows ``row0 : row0 + rows`` (columns ``col0 : col0 + cols``).

        A window of more than :data:`~sam2elnet.data.windowed.STRIP_PIXELS` pixels is read and
        decoded in row strips of that size into the one bool array: the decoding's temporaries
        (a float64 comparison of the values, 8 B per pixel) are one strip's, not the window's
        (a whole 12,000^2 px label: 1.80 -> 0.36 GB peak). Same mask (the decoding is per pixel).

        Raises:
            DataError: the window cannot be read (a truncated or corrupt raster).
        """
        from sam2elnet.data.windowed import STRIP_PIXELS

        rows = self.height - row0 if rows is None else min(rows, self.height - row0)
        cols = self.width - col0 if cols is None else min(cols, self.width - col0)
        step = max(1, STRIP_PIXELS // max(1, cols))
        if rows <= step:
            return self.read_mask_ignore(row0, rows, col0, cols)[0]
        out = np.empty((rows, cols), dtype=bool)
        for r in range(0, rows, step):
            n = min(step, rows - r)
            out[r : r + n] = self.read_mask_ignore(row0 + r, n, col0, cols)[0]
        return out

    def read_mask_ignore(
        self, row0: int = 0, rows: int | None = None, col0: int = 0, cols: int | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(object, ignore) bool arrays of a window, as :meth:`read_mask`; ``ignore`` marks the
        label's nodata / ignore pixels (None when there are none).

        Raises:
            DataError: the window cannot be read (a truncated or corrupt raster).
        """
        import rasterio
        from rasterio.windows import Window

        rows = self.height - row0 if rows is None else min(rows, self.height - row0)
        cols = self.width - col0 if cols is None else min(cols, self.width - col0)
        try:
            with quiet_native_stderr() as native:
                a = self.ds.read(1, window=Window(col0, row0, cols, rows))
        except rasterio.errors.RasterioError as err:
            raise DataError(
                raster_error_text("label raster", err, native.text), self.path
            ) from None
        return self.encoding.apply(a)

    def close(self) -> None:
        self.ds.close()


@dataclass
class CocoItem:
    """One image for the COCO file: its name, size, foreground mask and quality lookup key."""

    file_name: str
    mask: np.ndarray  # bool (H, W)
    key: str


def find_image(label: Path, images: str | Path | None, source: str | None) -> Path | None:
    """The source image of a label file, or None.

    Args:
        label: the label raster.
        images: a folder of images (matched by the ``source`` stem, then the label's stem, with
            ``.tif/.tiff/.png/.jpg/.jpeg``), one image file (used as is), or None (the ``source``
            file next to the label, if it exists).
        source: the image name recorded in the label (``SOURCE`` tag), or None.
    """
    if images is None:
        cand = label.parent / source if source else None
        return cand if cand is not None and cand.exists() and cand != label else None
    ip = Path(images)
    if ip.is_file():
        return ip
    stems = [label.stem]
    if source:
        stems.insert(0, Path(source).stem)
    for stem in stems:
        for suf in STEM_LOOKUP_SUFFIXES:
            c = ip / f"{stem}{suf}"
            if c.exists():
                return c
    return None
