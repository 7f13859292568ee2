"""One ``--tile`` range for every windowed command (``options.TILE_MIN``-``TILE_MAX``): before,
``elnet scene --tile 16`` ran while ``annotate`` / ``enhance`` refused anything under 32 px, and
``predict_scene`` took 16 px."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from sam2elnet.cli import main
from sam2elnet.engine.executors import SmoothingPredictor
from sam2elnet.engine.scene import predict_scene
from sam2elnet.errors import UserError

TILE_MIN = 32  # sam2elnet.options.TILE_MIN: the model pads windows to multiples of 32 px


def _scene(path: Path) -> Path:
    with rasterio.open(path, "w", driver="GTiff", height=80, width=96, count=1, dtype="uint8",
                       crs="EPSG:32633", transform=from_origin(500000, 4000000, 10, 10)) as ds:  # fmt: skip
        ds.write((np.arange(80 * 96) % 200 + 20).astype(np.uint8).reshape(1, 80, 96))
    return path


@pytest.mark.parametrize("tile", [16, 24, TILE_MIN - 1])
def test_scene_refuses_a_tile_annotate_refuses_with_the_same_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tile: int
) -> None:
    img = _scene(tmp_path / "s.tif")
    (tmp_path / "images").mkdir()
    size = ["--tile", str(tile), "--overlap", "4", "--no-progress"]
    scene = ["scene", "--model", "builtin:smoothing", "--image", str(img), "--out"]
    annotate = ["annotate", "--model", "builtin:smoothing", "--images", str(tmp_path / "images")]
    errors = []
    for args in ([*scene, str(tmp_path / "o.tif")], [*annotate, "--out", str(tmp_path / "a")]):
        assert main([*args, *size]) == 2
        errors.append(capsys.readouterr().err.strip().splitlines())
    want = (
        f"error: invalid value for --tile: {tile} (input should be greater than or equal to 32; "
        "allowed: 32 <= x <= 16384)"
    )
    assert errors == [[want], [want]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "s.tif"]  # nothing written


def test_the_smallest_tile_runs_and_predict_scene_refuses_one_below(tmp_path: Path) -> None:
    img = _scene(tmp_path / "s.tif")
    out = tmp_path / "o.tif"
    args = ["scene", "--model", "builtin:smoothing", "--image", str(img), "--out", str(out)]
    assert main([*args, "--tile", str(TILE_MIN), "--overlap", "8", "--no-progress"]) == 0
    assert out.exists()
    with pytest.raises(UserError, match=f"^tile must be at least {TILE_MIN} px, got 16$"):
        predict_scene(img, tmp_path / "p.tif", SmoothingPredictor(), tile=16, progress=False)
    assert not (tmp_path / "p.tif").exists()


def test_the_smallest_tile_is_the_models_padding_multiple() -> None:
    from sam2elnet.model.elnet import PAD_MULTIPLE
    from sam2elnet.options import TILE_MIN as DECLARED

    assert DECLARED == TILE_MIN == PAD_MULTIPLE  # a smaller window would be mostly padding
