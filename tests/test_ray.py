"""The Ray backend gives exactly the local backend's outputs, with bounded in-flight work."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

ray = pytest.importorskip("ray")

from sam2elnet.engine.distributed import RayExecutor  # noqa: E402
from sam2elnet.engine.executors import SmoothingPredictor  # noqa: E402
from sam2elnet.engine.scene import predict_scene  # noqa: E402


def _scene(path: Path, h: int = 300, w: int = 400) -> Path:
    rng = np.random.default_rng(1)
    img = 10 + rng.random((h, w)) * 60
    yy, xx = np.mgrid[:h, :w]
    img[((yy - 150) ** 2 + (xx - 200) ** 2) < 70**2] += 150
    img = img.astype(np.uint8)
    img[:30, :50] = 0
    prof = dict(
        driver="GTiff",
        height=h,
        width=w,
        count=1,
        dtype="uint8",
        nodata=0,
        crs="EPSG:32633",
        transform=from_origin(500000, 4000000, 10, 10),
    )
    with rasterio.open(path, "w", **prof) as d:
        d.write(img, 1)
    return path


@pytest.fixture
def local_ray():
    """One local Ray for the module (2 CPUs, no dashboard); executors reuse it."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.mark.timeout(120)
def test_ray_backend_matches_local_backend(tmp_path: Path, local_ray):
    scene = _scene(tmp_path / "s.tif")
    kw = dict(tile=96, overlap=24, batch_size=2, progress=False)
    local = predict_scene(
        scene,
        tmp_path / "local.tif",
        SmoothingPredictor(score=True),
        prob_path=tmp_path / "local_p.tif",
        quality_gpkg=tmp_path / "local.gpkg",
        **kw,
    )
    factory = functools.partial(SmoothingPredictor, score=True)
    with RayExecutor(factory, num_workers=2, max_in_flight=3) as ex:
        assert ex.has_scorer
        dist = predict_scene(
            scene,
            tmp_path / "ray.tif",
            SmoothingPredictor(score=True),
            executor=ex,
            prob_path=tmp_path / "ray_p.tif",
            quality_gpkg=tmp_path / "ray.gpkg",
            **kw,
        )
        assert 1 <= ex.peak_in_flight <= 3
    assert ray.is_initialized()  # not started by the executor, so not shut down by it
    assert dist.n_predicted == local.n_predicted
    for a, b in (("local.tif", "ray.tif"), ("local_p.tif", "ray_p.tif")):
        with rasterio.open(tmp_path / a) as x, rasterio.open(tmp_path / b) as y:
            np.testing.assert_array_equal(x.read(), y.read())
            assert x.crs == y.crs and x.transform == y.transform
    import geopandas as gpd

    ql, qr = gpd.read_file(tmp_path / "local.gpkg"), gpd.read_file(tmp_path / "ray.gpkg")
    np.testing.assert_allclose(ql["predicted_iou"], qr["predicted_iou"])

    # the CLI path: elnet scene --backend ray, same output as the local CLI run
    from sam2elnet.cli import main

    base = ["scene", "--model", "builtin:smoothing", "--image", str(scene), "--tile", "96",
            "--overlap", "24", "--no-progress"]  # fmt: skip
    assert main([*base, "--out", str(tmp_path / "cli_local.tif")]) == 0
    assert (
        main([*base, "--out", str(tmp_path / "cli_ray.tif"), "--backend", "ray", "--workers", "2"])
        == 0
    )
    with (
        rasterio.open(tmp_path / "cli_local.tif") as x,
        rasterio.open(tmp_path / "cli_ray.tif") as y,
    ):
        np.testing.assert_array_equal(x.read(), y.read())
    assert main([*base, "--out", str(tmp_path / "x.tif"), "--backend", "spark"]) == 2
