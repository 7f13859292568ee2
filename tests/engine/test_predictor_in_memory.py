"""A folder job run with a :class:`Predictor` made in memory (no model file) records what is known
of its model.

Before, ``annotate_folder(None, ..., predictor=pred)`` failed with ``TypeError: expected str,
bytes or os.PathLike object, not NoneType`` when writing ``summary.json``, and ``""`` (a path
that names no file) was recorded as ``"model": "/the/working/folder"``. Now ``model_path`` None
takes the predictor's own file, and without one ``summary.json`` says ``"model": null`` with the
model's ``model_config``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers_data import grey_rgb, micro_model_file, write_png

from sam2elnet.engine.infer import annotate_folder
from sam2elnet.engine.predictor import Predictor
from sam2elnet.errors import UserError

os.environ.setdefault("SAM2ELNET_THREADS", "1")


def _images(tmp_path: Path) -> Path:
    write_png(tmp_path / "img" / "a.png", grey_rgb(32, 1))
    return tmp_path / "img"


def test_a_model_in_memory_is_recorded_as_null_with_its_config(tmp_path: Path) -> None:
    from sam2elnet.model import ModelConfig, build_model

    pred = Predictor(build_model(ModelConfig(size="micro", in_bands=3)), {}, precision="32")
    res = annotate_folder(None, _images(tmp_path), tmp_path / "out", progress=False,
                          predictor=pred)  # fmt: skip
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["model"] is None and summary["model_version"] is None
    assert summary["model_config"]["size"] == "micro"
    assert summary["model_config"]["in_bands"] == 3
    assert res.summary["model_config"] == summary["model_config"]
    assert not (tmp_path / "out" / "model_id.json").exists()


def test_model_path_none_takes_the_predictors_file(tmp_path: Path) -> None:
    model = micro_model_file(tmp_path / "m.pt", bands=3)
    pred = Predictor.from_file(model, precision="32")
    annotate_folder(None, _images(tmp_path), tmp_path / "out", progress=False, predictor=pred)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["model"] == str(model.resolve())
    assert summary["model_version"].startswith("m.pt@")
    assert "model_config" not in summary  # the file holds it


def test_neither_a_model_file_nor_a_predictor_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="give model_path"):
        annotate_folder(None, _images(tmp_path), tmp_path / "out", progress=False)
