"""Label rasters for the export tests (tests/export)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from helpers_data import write_tif


def label_array(h: int = 200, w: int = 240) -> np.ndarray:
    lab = np.zeros((h, w), np.uint8)
    lab[20:80, 30:100] = 255  # rectangle with a hole
    lab[40:50, 50:60] = 0
    lab[120:190, 150:230] = 255  # big block crossing many rows
    lab[5:7, 200:202] = 255  # 4-pixel speck
    yy, xx = np.mgrid[:h, :w]
    lab[((yy - 150) ** 2 + (xx - 60) ** 2) < 25**2] = 255  # disc
    return lab


def write_label_tif(
    path: Path, lab: np.ndarray, *, georef: bool = True, nodata: float | None = 127
) -> Path:
    """The (H, W) uint8 label ``lab`` as a one-band GeoTIFF (:func:`helpers_data.write_tif`:
    EPSG:32633, 10 m pixels from (500000 E, 4000000 N); no georeference with ``georef``
    False), nodata 127 (the label nodata) unless given."""
    return write_tif(path, lab[None], nodata=nodata, georef=georef)


def write_labels_folder(tmp_path: Path) -> Path:
    """``tmp_path/labels/a.tif``: :func:`label_array` with a 3 x 3 px nodata corner (127)."""
    lab = label_array()
    lab[:3, :3] = 127  # nodata corner
    (tmp_path / "labels").mkdir()
    return write_label_tif(tmp_path / "labels" / "a.tif", lab)
