"""The label of one scene (``elnet scene --image S.tif --out L.tif``) records the model that made
it, as a folder of scenes does (``model_id.json``): in its own GeoTIFF tags
(:mod:`sam2elnet.data.label_tags`), so ``elnet export`` of it carries the model version and the
model's category, where it carried no ``model_id`` and the category ``foreground``. A folder of
scenes now also exports the model's category (its ``model_id.json`` names the model; the export
read the category from annotate's ``summary.json`` only)."""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("SAM2ELNET_THREADS", "1")

import numpy as np
import pytest
from helpers_data import trained_run

from sam2elnet.cli import main
from sam2elnet.data.run_model import MODEL_ID_JSON, model_version


@pytest.fixture(scope="module")
def sar_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared micro model, saved again as trained on SAR scenes (domain other): its labels
    are oil spills (data.domain.category_name)."""
    from sam2elnet.model.io import load_model, save_model

    model, extra = load_model(trained_run(tmp_path_factory)["model"])
    extra = {**extra, "train": {**extra["train"], "domain": "other", "modality": "sar"}}
    out = tmp_path_factory.mktemp("sar") / "sar.pt"
    save_model(model, out, extra)
    return out


def _scenes(folder: Path) -> Path:
    from helpers_data import write_tif

    rng = np.random.default_rng(0)
    for name in ("s1.tif", "s2.tif"):
        write_tif(folder / name, rng.integers(0, 255, (3, 64, 64)).astype(np.uint8))
    return folder


def _exported(labels: Path, out: Path) -> tuple[set[str], set[str], dict]:
    import geopandas as gpd

    assert main(["export", "--labels", str(labels), "--out", str(out / "p.gpkg")]) == 0
    frame = gpd.read_file(out / "p.gpkg", layer="labels")
    assert main(["export", "--labels", str(labels), "--out", str(out / "c.json")]) == 0
    coco = json.loads((out / "c.json").read_text())
    return set(frame["model_id"]), set(frame["category"]), coco


@pytest.mark.parametrize("one", [True, False])
def test_scene_labels_export_their_model_and_category(
    sar_model: Path, tmp_path: Path, one: bool
) -> None:
    scenes = _scenes(tmp_path / "scenes")
    image, out = (
        (scenes / "s1.tif", tmp_path / "one" / "s1.tif") if one else (scenes, tmp_path / "so")
    )
    out.parent.mkdir(exist_ok=True)
    assert main(["scene", "--model", str(sar_model), "--image", str(image), "--out", str(out),
                 "--tile", "64", "--overlap", "0", "--no-progress"]) == 0  # fmt: skip
    assert (out / MODEL_ID_JSON).is_file() is (not one)
    version = model_version(sar_model)
    model_ids, categories, coco = _exported(out, tmp_path)
    assert model_ids == {version} and categories == {"oil spill"}
    assert coco["info"]["model_id"] == version
    assert [c["name"] for c in coco["categories"]] == ["oil spill"]


def test_resume_with_the_builtin_model_does_not_warn_of_an_old_folder(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Found in a docs walk: `elnet scene --model builtin:smoothing --image DIR --out OUT
    --resume` warned 'made before output folders recorded their model', of a folder made a
    moment before. The folder now records builtin:smoothing by name, and resumes with it."""
    scenes = _scenes(tmp_path / "scenes")
    out = tmp_path / "out"
    argv = ["scene", "--model", "builtin:smoothing", "--image", str(scenes), "--out", str(out)]
    assert main([*argv, "--no-progress"]) == 0
    assert json.loads((out / MODEL_ID_JSON).read_text())["model"] == "builtin:smoothing"
    caplog.clear()
    assert main([*argv, "--no-progress", "--resume"]) == 0
    assert "made before output folders recorded their model" not in caplog.text
