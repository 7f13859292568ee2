"""The experiment's stages (annotate: the unlabelled images; elnettest: the test images; the
enhancement table's ``enhance_<src>``) label a folder through the same engine jobs as ``elnet
annotate`` / ``elnet enhance``; a folder whose every label is unusable whatever the filter (all
constant, or a normalisation that clips them flat) is a result to record there, not the
commands' ``nothing usable produced`` error that aborted the whole experiment."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
from helpers_data import tiny_experiment_config, write_png
from test_train import trained_run

os.environ.setdefault("SAM2ELNET_THREADS", "1")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return trained_run(tmp_path_factory)


def test_a_stage_whose_images_are_all_constant_records_it_and_goes_on(
    run, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """It raised DataError (exit 2 for the whole experiment, naming OUT/unlabelled/images with
    annotate's advice). Now the labels exist and are returned, one warning names the stage, and
    the stage's record says ``unusable``; a folder with something to label records nothing."""
    from sam2elnet.pipeline.experiment_engine import (
        annotate_images,
        enhance_images,
        predictor_for,
        rows_to_labels,
        unusable_record,
    )

    cfg = tiny_experiment_config(run["data"], tmp_path / "exp")
    model = str(run["model"])
    pred = predictor_for(cfg, model)
    imgs = tmp_path / "unlabelled" / "images"
    for i in range(2):
        write_png(imgs / f"u{i}.png", np.full((40, 40, 3), 90, np.uint8))
    auto = tmp_path / "autolabels"
    res = annotate_images(cfg, pred, model, imgs, auto)
    labels, _quality = rows_to_labels(res, ["u0", "u1"])
    assert all(Path(p).is_file() for p in labels.values())
    with caplog.at_level(logging.WARNING, "sam2elnet.pipeline.experiment_engine"):
        rec = unusable_record(res, "stage annotate (the unlabelled images)")
    what = "all 2 labels were rejected as unusable whatever the filter (2 x constant image)"
    assert rec == {"unusable": what}
    assert caplog.messages == [
        f"stage annotate (the unlabelled images): nothing usable: {what}; scored as they are "
        f"(see {auto / 'quality.csv'})"
    ]
    write_png(tmp_path / "coarse" / "u0.png", np.zeros((40, 40), np.uint8))
    (imgs / "u1.png").unlink()
    enh = enhance_images(cfg, pred, model, imgs, tmp_path / "coarse", tmp_path / "enhanced")
    assert enh.unusable == "its label was rejected as unusable whatever the filter (constant image)"
    real = sorted((run["data"] / "images").glob("*.png"))[:1]
    caplog.clear()
    good = annotate_images(cfg, pred, model, real[0].parent, tmp_path / "real")
    assert good.unusable is None and unusable_record(good, "stage x") == {}
    assert not caplog.messages
