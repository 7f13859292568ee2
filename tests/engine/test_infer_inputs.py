"""Folder jobs' inputs: GeoTIFFs (georeferenced outputs), band counts, empty folders and
folders of sub-folders, large scenes routed to the streaming path, and the defaults the jobs
share with the CLI options. Annotate's outputs: test_infer.py; enhance's: test_infer_enhance.py."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers_data import no_temp_files, tiled_scene, write_tif

from sam2elnet.engine.infer import annotate_folder, enhance_folder
from sam2elnet.engine.predictor import Predictor
from sam2elnet.errors import DataError, UserError


def test_geotiff_input_gives_georeferenced_output(
    run: dict[str, Path], pred: Predictor, tmp_path: Path
) -> None:
    import rasterio
    from rasterio.transform import from_origin

    src = cv2.imread(str(run["data"] / "images" / "s00.png"))[:, :, ::-1]
    tif = write_tif(tmp_path / "in" / "scene.tif", np.ascontiguousarray(np.moveaxis(src, 2, 0)))
    tr = from_origin(500000, 4000000, 10, 10)  # write_tif's grid: EPSG:32633, 10 m pixels
    res = annotate_folder(run["model"], tif, tmp_path / "a", progress=False, predictor=pred)
    out = tmp_path / "a" / res.rows[0]["label"]
    assert out.suffix == ".tif"
    with rasterio.open(out) as ds:
        assert ds.crs.to_epsg() == 32633 and ds.transform == tr


def test_wrong_band_count_and_empty_folder(
    run: dict[str, Path], pred: Predictor, tmp_path: Path
) -> None:
    four = tmp_path / "four"
    four.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(
        str(four / "x.png"), rng.integers(0, 255, (40, 40, 4), dtype=np.uint8)
    )  # RGBA -> 3 bands
    import rasterio

    with rasterio.open(
        four / "y.tif", "w", driver="GTiff", width=40, height=40, count=5, dtype="uint8"
    ) as d:
        d.write(rng.integers(0, 255, (5, 40, 40), dtype=np.uint8))
    (four / "x.png").unlink()
    with pytest.raises(DataError, match="trained for 3"):
        annotate_folder(run["model"], four, tmp_path / "o", progress=False, predictor=pred)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images"):
        annotate_folder(
            run["model"], tmp_path / "empty", tmp_path / "o2", progress=False, predictor=pred
        )


def test_large_scenes_are_routed_to_the_streaming_scene_path(
    run: dict[str, Path], pred: Predictor, tmp_path: Path
) -> None:
    """GeoTIFFs above the memory budget go through sliding windows, with per-tile quality layers;
    the scene label keeps the georeference and agrees with the whole-image path."""
    import rasterio

    from sam2elnet.engine import memory

    scene = tmp_path / "in" / "scene.tif"
    scene.parent.mkdir()
    tiled_scene(scene, run["data"] / "images" / "s00.png")
    whole = annotate_folder(run["model"], scene, tmp_path / "whole", progress=False, predictor=pred)
    budget = pred.whole_bytes(64 * 64)  # 96 x 96 px no longer fits
    res = annotate_folder(
        run["model"],
        scene,
        tmp_path / "tiled",
        progress=False,
        predictor=pred,
        tile=64,
        overlap=16,
        max_memory=budget,
    )
    pred.max_memory = memory.DEFAULT_MAX_MEMORY
    row = res.rows[0]
    label = tmp_path / "tiled" / row["label"]
    assert (tmp_path / "tiled" / "tiles" / "scene.gpkg").is_file()
    with rasterio.open(label) as ds:
        assert ds.crs.to_epsg() == 32633 and ds.width == 96
        tiled = ds.read(1) == 255
    with rasterio.open(tmp_path / "whole" / whole.rows[0]["label"]) as ds:
        ref = ds.read(1) > 127
    # Windows see less context than the whole image; the bulk of pixels must still agree.
    assert np.mean(tiled == ref) > 0.9
    assert (tmp_path / "tiled" / "quality.csv").read_text().count("\n") == 2
    no_temp_files(tmp_path / "tiled")


def test_image_folder_with_only_sub_folders_says_so(tmp_path: Path) -> None:
    """`annotate --images SOS_ROOT` (or its train/) said only 'no images in the folder; check the
    path'; it now names the sub-folders and the two ways on."""
    from sam2elnet.data.naming import list_images

    (tmp_path / "sos" / "train" / "palsar").mkdir(parents=True)
    (tmp_path / "sos" / "test").mkdir()
    with pytest.raises(UserError) as err:
        list_images(tmp_path / "sos")
    assert str(err.value).endswith(
        "no images (.png/.jpg/.tif) in the folder, only sub-folders (test, train); pass the "
        "folder that holds the images (annotate / enhance: or a dataset root with --split, e.g. "
        "--split test)"
    )
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"in the folder; check the path"):
        list_images(tmp_path / "empty")
    # a flat images/ + masks/ dataset (roads-dev) has no split folders: name its images/
    (tmp_path / "flat" / "images").mkdir(parents=True)
    (tmp_path / "flat" / "masks").mkdir()
    with pytest.raises(UserError) as err:
        list_images(tmp_path / "flat")
    assert str(err.value).endswith(
        "only sub-folders (images, masks); pass the folder that holds the images, e.g. "
        f"{tmp_path / 'flat' / 'images'}"
    )
    assert "--split" not in str(err.value)


def test_folder_jobs_take_their_defaults_from_the_cli_options() -> None:
    """``annotate_folder`` / ``enhance_folder`` default every option they share with ``elnet
    annotate`` / ``enhance`` to FolderJobOptions' value (one declaration: the API and the CLI
    cannot drift apart). None in the API means "the option's default" (``max_memory``)."""
    import inspect

    from sam2elnet.options import FolderJobOptions

    for job in (annotate_folder, enhance_folder):
        shared = {
            name: p.default
            for name, p in inspect.signature(job).parameters.items()
            if name in FolderJobOptions.model_fields and p.default is not None
        }
        assert {"batch_size", "device", "precision", "overlap"} <= set(shared)
        # None: chosen to fit max_memory (engine.window_size.resolve_tile), as the CLI
        assert inspect.signature(job).parameters["tile"].default is None
        assert FolderJobOptions.model_fields["tile"].default is None
        declared = {name: FolderJobOptions.model_fields[name].default for name in shared}
        assert shared == declared, job.__name__
