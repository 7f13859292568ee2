"""The per-tile quality layer describes the label the user gets, where windows overlap too.

Found in review: ``TileRecords`` took each window's ``foreground_fraction`` and ``mean_entropy``
from that window's own raw probabilities, but where windows overlap the label GeoTIFF holds the
blend of all of them. Two windows that disagreed (0.9 against 0.2 over their shared columns) were
both reported as the writer never wrote them: the first 100 % foreground at 0.47 bits, though
part of its area was written background. The statistics are now counted on the rows as written.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from helpers_data import make_scene

from sam2elnet.data.mask_values import LABEL_NODATA
from sam2elnet.engine.executors import entropy_bits
from sam2elnet.engine.scene import predict_scene


class _ConstantPerWindow:
    """Stands in for a model: window k (in the order read) is given probability ``ps[k % n]``
    everywhere, so neighbouring windows disagree where they overlap."""

    in_bands = 1
    normalization = None

    def __init__(self, ps: list[float]) -> None:
        self.ps, self.k = ps, 0

    def predict_arrays(self, batch: np.ndarray, coarse: np.ndarray | None) -> np.ndarray:
        out = np.empty((batch.shape[0], *batch.shape[2:]), np.float32)
        for i in range(batch.shape[0]):
            out[i] = self.ps[self.k % len(self.ps)]
            self.k += 1
        return out


def test_tile_statistics_are_those_of_the_written_label(tmp_path: Path) -> None:
    # 320 x 96 px (two flushes of 256 rows), windows of 64 px every 32 px: each pixel in up to
    # four windows; rows 0-19, columns 0-29 nodata
    src = make_scene(tmp_path / "s.tif", 320, 96)
    gpkg = tmp_path / "o_tiles.gpkg"
    predict_scene(
        src,
        tmp_path / "o.tif",
        _ConstantPerWindow([0.9, 0.2, 0.6, 0.05, 0.45]),
        tile=64,
        overlap=32,
        batch_size=3,
        prob_path=tmp_path / "o_p.tif",
        quality_gpkg=gpkg,
        progress=False,
    )
    with rasterio.open(tmp_path / "o.tif") as ds:
        lab = ds.read(1)
    with rasterio.open(tmp_path / "o_p.tif") as ds:
        prob = ds.read(1)
    g = gpd.read_file(gpkg, layer="tiles")
    assert len(g) == 9 * 2
    for t in g.itertuples():
        sl = (slice(t.row_off, t.row_off + 64), slice(t.col_off, t.col_off + 64))
        valid = lab[sl] != LABEL_NODATA
        assert t.valid_fraction == pytest.approx(valid.mean()), t
        assert t.foreground_fraction == pytest.approx((lab[sl][valid] == 255).mean()), t
        assert t.mean_entropy == pytest.approx(entropy_bits(prob[sl][valid]).mean(), rel=1e-5), t
    # the first window was predicted 0.9 everywhere (raw: all foreground, 0.47 bits); its right
    # half is blended with its 0.2 neighbour, partly below the threshold
    first = g[(g.row_off == 0) & (g.col_off == 0)].iloc[0]
    assert 0.5 < first.foreground_fraction < 1.0
    assert first.mean_entropy != pytest.approx(float(entropy_bits(np.float32(0.9))))


def test_chunk_part_is_the_one_overlap_rule_of_writer_and_records() -> None:
    from sam2elnet.data.tiling import Window
    from sam2elnet.engine.scene_writer import SceneWriter, TileRecords, chunk_part

    w = Window(row_off=10, col_off=20, height=30, width=40)
    # chunk rows 0-24, columns 0-31: the window's rows 10-24, columns 20-31
    assert chunk_part(w, 0, 0, 25, 32) == (slice(10, 25), slice(20, 32))
    # chunk rows 30-79, columns 50-99: rows 30-39, columns 50-59, in the chunk's own pixels
    assert chunk_part(w, 30, 50, 50, 50) == (slice(0, 10), slice(0, 10))
    assert chunk_part(w, 40, 0, 8, 100) is None  # below the window (rows 40-47)
    assert chunk_part(w, 0, 60, 100, 8) is None  # right of it (columns 60-67)
    # the writer's covered pixels and the rows' counts both follow it
    acc = np.ones((25, 32), np.float32)
    tiles = TileRecords(0.5, keep_rows=True)
    tiles.add(w, np.ones((30, 40), bool), None)
    written = []
    dst = type("Dst", (), {"write": lambda self, a, b, window: written.append(a)})()
    writer = SceneWriter(
        None, dst, None, 0.5, "float32", np.ones(32), valid=lambda rw: np.ones((25, 32), bool),
        tiles=tiles,
    )  # fmt: skip
    writer.write_rows(0, 25, acc, np.ones(25), [w])
    lab = written[0]
    assert (lab[10:25, 20:32] == 255).all() and (lab[:10] == LABEL_NODATA).all()
    assert (lab[:, :20] == LABEL_NODATA).all() and writer.n_valid == 15 * 12
    assert tiles.rows[0]["valid_fraction"] == 15 * 12 / (30 * 40)
