"""export.mask_folder.mask_grid: what every reviewed mask takes from its image (size,
georeference for a GeoTIFF, nodata) and the read image itself (elnet import --from vector places
the layer on its profile)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers_data import write_png, write_tif

from sam2elnet.errors import DataError
from sam2elnet.export.mask_folder import mask_grid


def test_a_geotiff_gives_its_grid_nodata_and_image(tmp_path):
    data = np.full((1, 32, 40), 50, np.uint8)
    data[0, :4, :5] = 0
    grid = mask_grid(write_tif(tmp_path / "a.tif", data, nodata=0))
    assert grid.shape == (32, 40) and grid.suffix == ".tif"
    assert grid.like is grid.image and grid.image.profile["crs"] == "EPSG:32633"
    assert grid.nodata is not None and int(grid.nodata.sum()) == 20 and grid.nodata[:4, :5].all()


def test_a_png_gives_a_png_mask_with_its_transparency_as_nodata(tmp_path):
    rgba = np.full((32, 40, 4), 200, np.uint8)
    rgba[-3:, :, 3] = 0  # three transparent rows
    grid = mask_grid(write_png(tmp_path / "b.png", rgba))
    assert grid.shape == (32, 40) and grid.suffix == ".png" and grid.like is None
    assert grid.image is not None and grid.image.shape == (32, 40)
    assert grid.nodata is not None and int(grid.nodata.sum()) == 3 * 40 and grid.nodata[-3:].all()


def test_an_unreadable_image_raises_data_error(tmp_path):
    bad = tmp_path / "c.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(DataError):
        mask_grid(bad)
