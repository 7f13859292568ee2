"""A run trained with ``--no-quality`` could get its quality evaluator from Python only
(``quality_fit.fit_quality``): ``elnet train --out RUN --resume`` kept the run's
``--no-quality`` and the command line had no way to ask for the evaluator. ``--quality`` (the
other side of ``--no-quality``) now does, on ``--resume`` too: a finished run trains no epoch
again and fits its evaluator into ``RUN/model.pt``; the annotate / enhance warning of such a model
names that command."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("SAM2ELNET_THREADS", "1")

import pytest
import torch
from helpers_data import make_dataset

from sam2elnet.cli import main
from sam2elnet.model.io import load_model


def test_resume_with_quality_fits_the_evaluator_of_a_no_quality_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    from sam2elnet.engine.predictor import Predictor

    data = make_dataset(tmp_path / "data", n=8, size=64)
    out = tmp_path / "run"
    args = ["train", "--data", str(data), "--out", str(out), "--size", "micro", "--epochs", "1",
            "--image-size", "64", "--batch-size", "2", "--weights", "none", "--val-fraction",
            "0.5", "--seed", "0", "--no-progress"]  # fmt: skip
    assert main([*args, "--no-quality"]) == 0
    model = out / "model.pt"
    net, extra = load_model(model)
    assert not extra.get("quality")
    weights = {k: v.clone() for k, v in net.state_dict().items()}
    metrics = (out / "metrics.csv").read_text()
    caplog.clear()
    with caplog.at_level("WARNING"):
        Predictor.from_file(model)
    said = " ".join(r.getMessage() for r in caplog.records if "not fitted" in r.getMessage())
    assert f"fit one without retraining: elnet train --out {out} --resume --quality" in said
    # --resume alone keeps the run's --no-quality
    resume = ["train", "--out", str(out), "--resume", "--no-progress"]
    assert main(resume) == 0
    assert not load_model(model)[1].get("quality")
    capsys.readouterr()
    assert main([*resume, "--quality"]) == 0
    printed = capsys.readouterr().out
    net, extra = load_model(model)
    assert extra["quality"] and extra["quality_summary"]["status"], extra["quality_summary"]
    assert "quality evaluator: " in printed, printed
    for k, v in net.state_dict().items():  # no epoch trained again: the same network
        assert torch.equal(v, weights[k]), k
    assert (out / "metrics.csv").read_text() == metrics
    # and a model file elsewhere (no run folder) keeps the Python advice
    caplog.clear()
    lone = tmp_path / "lone.pt"
    from sam2elnet.model.io import save_model

    save_model(net, lone, {**extra, "quality": {}})
    with caplog.at_level("WARNING"):
        Predictor.from_file(lone)
    said = " ".join(r.getMessage() for r in caplog.records if "not fitted" in r.getMessage())
    assert "fit_quality('MODEL.pt', 'DATA')" in said and "--resume --quality" not in said
