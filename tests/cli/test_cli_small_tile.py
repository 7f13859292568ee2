"""A small --tile given without --overlap: the error says that the default overlap (128 px) is
what clashes and what to give (before: 'invalid value for --overlap: 128 (must be smaller than
--tile (64))', an option the user had not given)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from sam2elnet.cli import main


def test_small_tile_alone_names_the_default_overlap_and_a_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    img = tmp_path / "s.tif"
    with rasterio.open(img, "w", driver="GTiff", height=80, width=96, count=1, dtype="uint8",
                       crs="EPSG:32633", transform=from_origin(500000, 4000000, 10, 10)) as ds:  # fmt: skip
        ds.write((np.arange(80 * 96) % 200 + 20).astype(np.uint8).reshape(1, 80, 96))
    out = tmp_path / "o.tif"
    args = ["scene", "--model", "builtin:smoothing", "--image", str(img), "--out", str(out)]
    assert main([*args, "--tile", "64", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert "--overlap is 128 px when not given" in err and "e.g. --overlap 16" in err
    assert not out.exists()
    # the value it suggests works
    assert main([*args, "--tile", "64", "--overlap", "16", "--no-progress"]) == 0
    assert out.exists()
