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
from helpers_data import tiny_experiment_config, trained_run, write_png

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

    caplog.set_level(logging.INFO, "sam2elnet.progress")  # stage lines, as in a CLI run
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
    assert _warnings(caplog) == [
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
    assert _warnings(caplog) == []


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The warnings logged (not the stages' progress lines)."""
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def _results(unusable: dict[str, str]) -> dict:
    """A results.json dict as the experiment writes it, small (one row per table)."""
    row = {"title": "(a) 100 % original labels", "hand_labels": 4, "train_images": 4}
    row |= {"iou": 0.5, "f1": 0.6, "precision": 0.7, "recall": 0.6, "miou": 0.7}
    iou = {"iou": 0.4, "mean_image_iou": 0.4}
    return {
        "data": "d",
        "split": {"labelled": 2, "unlabelled": 2, "test": 2, "test_source": "split"}
        | {"layout": "folder", "modality": "optical"},
        "settings": {"fraction": 0.5, "size": "tiny", "trunk": "frozen", "epochs": 1}
        | {"image_size": 64, "batch_size": 2, "precision": "fp32", "seed": 0}
        | {"coarse_profile": "freehand", "coarse_severity": 0.5},
        "weights": {"note": "random init", "random_init": True},
        "elnet": {"trunk_note": "SAM2-ELNet: frozen"},
        "autolabels": {"n": 2, "n_kept": 2, "iou_all": iou, "iou_kept": iou, "spearman": None}
        | {"threshold": 0.5, "threshold_rule": "quality >= 0.5", "fallback": None},
        "table1": [row],
        "table2": [row | {"labels": "simulated coarse", "method": "elnet", "label_iou_all": 0.3}],
        "downstream_config": {"model": "unet", "model_options": {}, "epochs": 1}
        | {"image_size": 64, "batch_size": 2, "lr": 1e-3, "precision": "fp32", "seed": 0},
        "stages": {"annotate": "ran"},
        "seconds_this_run": 1.0,
        "notes": [],
        "unusable": unusable,
    }


def test_results_md_and_report_html_name_a_stage_whose_labels_were_all_unusable(
    tmp_path: Path,
) -> None:
    """results.json held ``unusable`` (stage -> reason) but results.md and report.html showed
    nothing of it: the auto-labels / table 2 read as if the labels were real. Now one line each,
    under the table the stage feeds, naming the stage and the reason; none without it."""
    import html

    from sam2elnet.pipeline.experiment_markdown import render_markdown
    from sam2elnet.pipeline.report_protocol import write_protocol_report

    why = "all 2 labels were rejected as unusable whatever the filter (2 x constant image)"
    r = _results({"annotate": why, "enhance_sim": why})
    md = render_markdown(r)
    ann = (
        f"**Warning:** Nothing usable in stage annotate (the auto-labels of the unlabelled "
        f"images): {why}; scored as they are."
    )
    enh = (
        f"**Warning:** Nothing usable in stage enhance_sim (SAM2-ELNet's enhancement of the "
        f"pool's sim labels): {why}; scored as they are."
    )
    assert md.count(ann) == 1 and md.count(enh) == 1
    # under the auto-labels line (table 1's stages) and under table 2 (its enhancement stage)
    assert md.index("Auto-labels: 2 generated") < md.index(ann) < md.index("## Table 2")
    assert md.index("## Table 2") < md.index(enh) < md.index("## Settings")
    page = html.unescape(
        write_protocol_report(tmp_path / "report.html", r, [], title="t").read_text()
    )
    for line in (ann, enh):
        assert line.removeprefix("**Warning:** ").removesuffix(".") in page
    r["unusable"] = {"elnettest": why}
    assert "stage elnettest (SAM2-ELNet's labels of the test images, row (f)): " in (
        render_markdown(r)
    )
    for clean in ({}, None):
        r["unusable"] = clean
        assert "Nothing usable" not in render_markdown(r)
        page = write_protocol_report(tmp_path / "c.html", r, [], title="t").read_text()
        assert "Nothing usable" not in page


def test_the_stage_runner_keeps_each_stages_unusable_ran_or_cached(tmp_path: Path) -> None:
    """results.json ``unusable`` comes from the runner (``Stages.unusable``): a stage recorded
    unusable names it in this run whether it ran now or was done before (a resumed run)."""
    from sam2elnet.pipeline.experiment_stages import Stages

    why = "its label was rejected as unusable whatever the filter (constant image)"
    first = Stages(tmp_path, resume=True)
    first.run("annotate", lambda: {"labels": {}, "unusable": why})
    first.run("enhance_sim", lambda: {"labels": {}})
    assert first.unusable == {"annotate": why}
    again = Stages(tmp_path, resume=True)
    again.run("annotate", lambda: {"never": "run"})
    again.run("enhance_sim", lambda: {"never": "run"})
    assert again.status == {"annotate": "cached", "enhance_sim": "cached"}
    assert again.unusable == {"annotate": why}
