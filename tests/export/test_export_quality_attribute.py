"""The polygons' ``quality`` attribute: from an annotate run's ``quality.csv`` (labels in the
sibling folder) and from a scene's ``tiles`` layer."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from helpers_export import label_array, write_label_tif

from sam2elnet.export.api import export_labels
from sam2elnet.export.labels import read_quality_csv


def test_quality_csv_of_annotate_matches_labels_in_the_sibling_folder(tmp_path: Path):
    out = tmp_path / "run"
    (out / "labels").mkdir(parents=True)
    write_label_tif(out / "labels" / "scene_a.tif", label_array())
    (out / "quality.csv").write_text(
        "image,label,predicted_iou,kept\n/data/img/scene_a.tif,labels/scene_a.tif,0.912,True\n"
    )
    q = read_quality_csv(out / "quality.csv")
    assert q["scene_a"] == pytest.approx(0.912)
    export_labels(out / "labels", tmp_path / "o.gpkg", progress=False)
    gdf = gpd.read_file(tmp_path / "o.gpkg", layer="labels")
    assert np.allclose(gdf["quality"], 0.912)


def test_scene_outputs_get_polygon_quality_from_their_tiles_layer(tmp_path: Path):
    from helpers_data import make_scene

    from sam2elnet.engine.executors import SmoothingPredictor
    from sam2elnet.engine.scene import predict_scene

    scene = make_scene(tmp_path / "scene.tif")
    out = tmp_path / "pred" / "scene.tif"
    predict_scene(scene, out, SmoothingPredictor(score=True), tile=128, overlap=32,
                  quality_gpkg=out.with_name("scene_tiles.gpkg"), progress=False)  # fmt: skip
    res = export_labels(out, tmp_path / "o.gpkg", progress=False)
    gdf = gpd.read_file(tmp_path / "o.gpkg", layer="labels")
    assert len(gdf) >= 1 and gdf["quality"].between(0, 1).all()
    assert (gdf["source"] == "scene.tif").all()
    assert any("predicted IoU of the scene windows" in n for n in res.notes)
