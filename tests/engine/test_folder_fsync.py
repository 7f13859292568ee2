"""What an annotate job fsyncs: its checkpoints (quality.csv, then summary.json), not the
model record it writes before any label (model_id.json; one fsync less per job, 1-10 ms of wall
time on a shared disk), and what --resume does when a power loss took that record."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from sam2elnet.engine.infer import annotate_folder
from sam2elnet.engine.predictor import Predictor


def test_a_job_fsyncs_its_checkpoints_not_its_model_record(
    run: dict[str, Path],
    pred: Predictor,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    images = sorted((run["data"] / "images").glob("*.png"))[:3]
    out = tmp_path / "out"
    synced: list[str] = []
    real = os.fsync

    def named(fd: int) -> None:
        synced.append(Path(os.readlink(f"/proc/self/fd/{fd}")).name)
        real(fd)

    monkeypatch.setattr(os, "fsync", named)
    annotate_folder(run["model"], images, out, progress=False, predictor=pred)
    # temporary names .<stem>.<random>.tmp<suffix>: quality.csv once, then summary.json
    assert [n.split(".")[1] for n in synced] == ["quality", "summary"]
    record = json.loads((out / "model_id.json").read_text())
    assert len(record["sha256"]) == 64  # complete, under its name
    # a power loss that took the record (a kill cannot: it was renamed into place): --resume
    # warns that the model cannot be checked and reuses every label
    (out / "model_id.json").write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        res = annotate_folder(
            run["model"], images, out, resume=True, progress=False, predictor=pred
        )
    assert "resume (--resume) cannot check that its labels come from model_path (--model)" in (
        caplog.text
    )
    assert res.summary["n_resumed"] == 3
    assert json.loads((out / "model_id.json").read_text()) == record  # recorded again
