"""Issue 10.4: no confident score on garbage, end to end through the Predictor and annotate.

A model with NaN weights or one that produces NaN is an error; all-nodata, all-NaN and constant
images get predicted quality 0, a flag saying why, and are never kept (even with no filter).
"""

from __future__ import annotations

import csv
import os

os.environ.setdefault("SAM2ELNET_THREADS", "1")

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_data import write_png, write_tif
from helpers_logs import logs_warning

from sam2elnet.engine.infer import annotate_folder
from sam2elnet.engine.predictor import Predictor
from sam2elnet.errors import CheckpointError
from sam2elnet.model import load_model, save_model


def _tampered(run: dict[str, Path], tmp: Path, value: float, name: str = "nan.pt") -> Path:
    model, extra = load_model(run["model"])
    with torch.no_grad():
        first = next(p for n, p in model.named_parameters() if n.startswith("stem"))
        first.view(-1)[0] = value
    return save_model(model, tmp / name, extra=extra)


def test_model_with_nan_weights_is_refused_with_the_file_named(run, tmp_path: Path) -> None:
    path = _tampered(run, tmp_path, float("nan"))
    with pytest.raises(CheckpointError, match="NaN/Inf") as err:
        Predictor.from_file(path)
    assert str(path) in str(err.value) and "stem" in str(err.value)


def test_model_that_produces_nan_is_an_error(run, tmp_path: Path) -> None:
    """Finite but absurd weights (3e38) overflow to Inf/NaN inside the network."""
    path = _tampered(run, tmp_path, 3e38, "overflow.pt")
    pred = Predictor.from_file(path, precision="32")
    x = np.random.default_rng(0).random((1, pred.in_bands, 32, 32)).astype(np.float32)
    with pytest.raises(CheckpointError, match="NaN/Inf outputs") as err:
        pred.predict(list(x))
    assert str(path) in str(err.value)
    with pytest.raises(CheckpointError, match="NaN/Inf outputs"):
        pred.predict_arrays(x)


def test_garbage_inputs_score_zero_and_are_flagged(run) -> None:
    pred = Predictor.from_file(run["model"], precision="32")
    rng = np.random.default_rng(0)
    c = pred.in_bands
    good = rng.random((c, 40, 40)).astype(np.float32)
    nan = np.full((c, 40, 40), np.nan, np.float32)
    const = np.full((c, 40, 40), 0.4, np.float32)
    valid = [None, None, None, np.zeros((40, 40), bool)]
    probs, q = pred.predict([good, nan, const, good], valid=valid)
    assert q.flags[1:] == ["all nodata", "constant image", "all nodata"]
    assert q.flags[0] in ("", "out of distribution")
    assert list(q.predicted_iou[1:]) == [0.0, 0.0, 0.0]
    assert all(np.isfinite(p).all() for p in probs)
    assert not probs[1].any() and not probs[3].any()  # no label on pixels without data
    assert not q.rejected(0) and all(q.rejected(i) for i in (1, 2, 3))


def test_annotate_never_keeps_garbage_even_without_a_filter(run, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    imgs = tmp_path / "imgs"
    write_png(imgs / "a_good.png", (rng.random((40, 40, 3)) * 255).astype(np.uint8))
    write_png(imgs / "b_const.png", np.full((40, 40, 3), 128, np.uint8))
    write_tif(imgs / "c_nodata.tif", np.full((3, 40, 40), -9999, np.float32), nodata=-9999)
    write_tif(imgs / "d_nan.tif", np.full((3, 40, 40), np.nan, np.float32))
    res = annotate_folder(run["model"], imgs, tmp_path / "out", progress=False)
    rows = {Path(r["image"]).name: r for r in res.rows}
    skipped = {Path(s["image"]).name for s in res.skipped}
    assert rows["a_good.png"]["kept"] is True
    assert rows["b_const.png"]["kept"] is False and rows["b_const.png"]["predicted_iou"] == 0.0
    assert rows["b_const.png"]["quality_flag"] == "constant image"
    for name in ("c_nodata.tif", "d_nan.tif"):  # refused at reading, or flagged: never kept
        assert name in skipped or (
            rows[name]["kept"] is False
            and rows[name]["predicted_iou"] == 0.0
            and rows[name]["quality_flag"] == "all nodata"
        ), name
    assert not (tmp_path / "out" / "labels" / "b_const.png").exists()
    assert (tmp_path / "out" / "rejected" / "b_const.png").is_file()
    with (tmp_path / "out" / "quality.csv").open() as fh:
        table = {Path(r["image"]).name: r for r in csv.DictReader(fh)}
    assert table["b_const.png"]["quality_flag"] == "constant image"
    assert res.summary["n_flagged"].get("constant image") == 1
    assert res.summary["evaluator"]["status"] in ("fitted", "too_few_samples", "uniform_labels")


def test_a_model_that_predicts_nothing_scores_zero_and_says_so(
    run, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """End to end: a model whose heads predict nothing, its evaluator refitted on the run's data
    (every label has IoU 0: uniform) -> status recorded in the model file, a warning when it is
    loaded, score 0 for every label and the reason in quality.csv."""
    from sam2elnet.engine.quality_fit import fit_quality
    from sam2elnet.model.quality import UNFITTED_FLAG

    model, extra = load_model(run["model"])
    with torch.no_grad():
        for head in (model.decoder.head, *model.decoder.side):
            head.weight.zero_()
            head.bias.fill_(-50.0)
    copy = tmp_path / "run"
    copy.mkdir()
    save_model(model, copy / "model.pt", extra=extra)
    (copy / "splits.json").write_bytes((run["run"] / "splits.json").read_bytes())
    with logs_warning(caplog, "not fitted"):
        summary = fit_quality(copy / "model.pt", run["data"], precision="32")
    assert not summary["fitted"] and summary["status"] == "uniform_labels"
    _, saved = load_model(copy / "model.pt")
    assert saved["quality"]["status"] == "uniform_labels" and saved["quality"]["prior"] == 0.0
    with logs_warning(caplog, "quality evaluator is not fitted"):
        res = annotate_folder(
            copy / "model.pt", run["data"] / "images", tmp_path / "a", progress=False
        )
    assert [r["predicted_iou"] for r in res.rows] == [0.0] * 8
    with (tmp_path / "a" / "quality.csv").open() as fh:
        flags = {r["quality_flag"] for r in csv.DictReader(fh)}
    assert flags == {f"{UNFITTED_FLAG}: uniform_labels"}
    assert res.summary["evaluator"]["status"] == "uniform_labels"


def test_out_of_distribution_inputs_score_zero(run) -> None:
    """A real image of the run's kind is scored; the same image scaled far outside the range the
    model was trained on (x20 after normalisation, or inverted) gets 0 and the OOD flag."""
    pred = Predictor.from_file(run["model"], precision="32")
    _, x, _ = pred.read(sorted((run["data"] / "images").glob("*.png"))[0])
    _, q = pred.predict([x, x * 20, -x * 20])
    assert q.predicted_iou[0] > 0.1  # scored (a 16-sample evaluator may damp it a little)
    assert list(q.predicted_iou[1:]) == [0.0, 0.0]
    assert q.flags[1:] == ["out of distribution"] * 2


def test_an_image_the_model_scaling_clips_flat_is_not_called_constant(
    run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A float dB scene (-30..-5 dB, a nodata border) given to a model trained on 0..255 images:
    every pixel is clipped to 0, and quality.csv said 'constant image' of a scene that is not
    (the analyst opens it in QGIS and sees a slick). Now it says the scaling did it; a black PNG
    is still a constant image; both are rejected and counted in summary.json. With no usable
    label left the run is an error (exit 2) that counts both flags; its files stay as the record."""
    import json

    from sam2elnet.cli import main
    from sam2elnet.model.quality_features import CLIPPED_FLAG

    model, extra = load_model(run["model"])
    c = int(extra.get("in_bands") or model.config.in_bands)
    extra["normalization"] = {**extra["normalization"], "method": "fixed", "low": [0.0],
                              "high": [255.0], "data_dtype": "uint8"}  # fmt: skip
    fixed = save_model(model, tmp_path / "fixed.pt", extra=extra)
    imgs = tmp_path / "imgs"
    rng = np.random.default_rng(2)
    db = rng.uniform(-30, -5, (c, 40, 40)).astype(np.float32)
    db[:, :4, :] = -9999
    write_tif(imgs / "a_db.tif", db, nodata=-9999)
    write_png(imgs / "b_black.png", np.zeros((40, 40, 3), np.uint8))
    (imgs / "c_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    out = tmp_path / "out"
    assert main(["annotate", "--model", str(fixed), "--images", str(imgs), "--out", str(out),
                 "--no-progress", "--report"]) == 2  # fmt: skip
    with (out / "quality.csv").open() as fh:
        table = {Path(r["image"]).name: r for r in csv.DictReader(fh)}
    assert table["a_db.tif"]["quality_flag"] == CLIPPED_FLAG
    assert table["b_black.png"]["quality_flag"] == "constant image"
    assert {r["kept"] for r in table.values()} == {"False"}
    assert (out / "rejected" / "a_db.tif").is_file() and not (out / "labels").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_flagged"] == {CLIPPED_FLAG: 1, "constant image": 1}
    # the error line says so too (the closing lines said only "rejected 2")
    said = capsys.readouterr().err.replace("\n", " ")
    assert "nothing usable produced: all 2 labels were rejected as unusable whatever the " in said
    assert CLIPPED_FLAG in said and "constant image" in said and "1 image skipped" in said
    # the report says why: the flag on each card, the skipped image and its reason in a table
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "constant after scaling" in page and "constant image" in page
    assert "skipped images" in page and "c_corrupt.png" in page and "cannot decode image" in page
    assert "1 of 3 images skipped" in page


def test_a_model_without_an_evaluator_says_how_to_fit_one(
    run, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Found in a docs walk (docs/reliability.md's example trains with --no-quality): loading
    such a model warned 'not fitted (no_samples) ... train again on more labelled images', advice
    that does not fit a run that chose to fit none."""
    from sam2elnet.engine.quality_filter import NO_EVALUATOR_ADVICE, more_labels_advice

    model, extra = load_model(run["model"])
    path = save_model(model, tmp_path / "noq.pt", extra={**extra, "quality": {}})
    caplog.clear()
    with caplog.at_level("WARNING"):
        Predictor.from_file(path)
    text = " ".join(r.getMessage() for r in caplog.records if "not fitted" in r.getMessage())
    assert (
        "this model's quality evaluator is not fitted (the model file holds none: trained with "
        "fit_quality=False (--no-quality), or saved without one); predicted IoUs are conservative "
        f"(at most 0.50) and do not rank labels well - {NO_EVALUATOR_ADVICE}"
    ) in text
    assert more_labels_advice() not in text
