"""Folder jobs (enhance): labels and change maps from coarse labels, coarse labels that are
missing, named otherwise or empty. Annotate: test_infer.py; inputs: test_infer_inputs.py; vector
coarse labels: test_enhance_vector.py."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers_data import no_temp_files, tiled_scene

from sam2elnet.engine.infer import enhance_folder
from sam2elnet.engine.predictor import Predictor
from sam2elnet.errors import DataError, UserError


def test_enhance_outputs_and_missing_labels(
    run: dict[str, Path], pred: Predictor, tmp_path: Path
) -> None:
    images, masks = run["data"] / "images", run["data"] / "masks"
    coarse = tmp_path / "coarse"
    coarse.mkdir()
    for p in sorted(masks.glob("*.png"))[:-2]:  # the last two images have no label
        m = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(str(coarse / f"{p.stem}_mask.png"), cv2.dilate(m, np.ones((5, 5), np.uint8)))
    with pytest.raises(DataError, match="s07.png"):
        enhance_folder(run["model"], images, coarse, tmp_path / "e", progress=False, predictor=pred)
    res = enhance_folder(
        run["model"],
        images,
        coarse,
        tmp_path / "e",
        skip_missing=True,
        save_prob=True,
        progress=False,
        predictor=pred,
    )
    assert len(res.rows) == 6 and res.summary["n_missing_labels"] == 2
    assert res.summary["n_skipped"] == 2 and [s["image"] for s in res.skipped] == [
        str(images / "s06.png"),
        str(images / "s07.png"),
    ]
    assert res.summary["missing_labels_note"] == (
        f"2 of 8 images have no coarse label in {coarse} and were skipped (--skip-missing): "
        "s06.png, s07.png"
    )
    rows = list(csv.DictReader((tmp_path / "e" / "quality.csv").open()))
    assert {"image", "label", "predicted_iou", "kept", "added_px", "removed_px", "coarse"} <= set(
        rows[0]
    )
    ch = cv2.imread(str(tmp_path / "e" / rows[0]["changes"]), cv2.IMREAD_UNCHANGED)
    assert ch.shape == (40, 40, 3)
    label = cv2.imread(str(tmp_path / "e" / rows[0]["label"]), cv2.IMREAD_GRAYSCALE) > 127
    c = cv2.imread(str(coarse / "s00_mask.png"), cv2.IMREAD_GRAYSCALE) > 127
    assert int(rows[0]["added_px"]) == int(np.count_nonzero(label & ~c))
    no_temp_files(tmp_path / "e")


def test_enhance_one_image_with_one_mask_file_of_another_name(
    run: dict[str, Path], pred: Predictor, tmp_path: Path
) -> None:
    """--images scene.tif --labels truth.tif (names that do not pair): one mask file serves the
    one image (it was refused: 'label path does not exist or is neither a folder nor a vector
    file'); with several images it is one clear UserError saying to give a folder."""
    scene = tmp_path / "in" / "scene.tif"
    scene.parent.mkdir()
    tiled_scene(scene, run["data"] / "images" / "s00.png")
    coarse = np.zeros((96, 96), np.uint8)
    coarse[20:40, 20:40] = 255
    label = tmp_path / "rough.png"
    cv2.imwrite(str(label), coarse)
    res = enhance_folder(run["model"], scene, label, tmp_path / "e", progress=False, predictor=pred)
    row = res.rows[0]
    assert row["coarse"].endswith("rough.png")
    rgb = cv2.imread(str(tmp_path / "e" / row["changes"]))[:, :, ::-1]
    assert np.array_equal(rgb[:, :, 0] > 0, coarse > 0)  # kept or removed: the coarse label
    with pytest.raises(
        UserError,
        match=r"so it is the label of one image, but images \(--images\) holds 8 images; "
        r".* as labels \(--labels\)$",
    ):
        enhance_folder(run["model"], run["data"] / "images", label, tmp_path / "e2")
    assert not (tmp_path / "e2").exists()


def test_enhance_keeps_an_empty_coarse_label_empty(
    run: dict[str, Path], pred: Predictor, tmp_path: Path
) -> None:
    images = tmp_path / "images"
    images.mkdir()
    coarse = tmp_path / "coarse"
    coarse.mkdir()
    src = sorted((run["data"] / "images").glob("*.png"))[:2]
    for p in src:
        (images / p.name).write_bytes(p.read_bytes())
        cv2.imwrite(str(coarse / p.name), np.zeros((40, 40), np.uint8))
    res = enhance_folder(
        run["model"], images, coarse, tmp_path / "e", progress=False, predictor=pred
    )
    assert res.summary["coarse_rule"]["new_objects"] == "drop"
    for r in res.rows:
        label = cv2.imread(str(tmp_path / "e" / r["label"]), cv2.IMREAD_GRAYSCALE)
        assert label is not None and not label.any() and r["added_px"] == 0
    with pytest.raises(UserError, match="--new-objects"):
        enhance_folder(
            run["model"], images, coarse, tmp_path / "x", progress=False, predictor=pred,
            new_objects="maybe",
        )  # fmt: skip
