"""A re-run of ``elnet experiment`` into a folder holding another experiment is refused naming
each changed option as typed, with the value the experiment was started with
(``--image-size 256 (saved: 128)``), the form of ``elnet cv`` and ``elnet train --resume``.
Before, it named ExperimentConfig's fields (``other settings (image_size)``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers_data import make_generic, tiny_experiment_config

from sam2elnet.cli import main
from sam2elnet.pipeline.experiment_config import setting_changes

os.environ.setdefault("SAM2ELNET_THREADS", "1")


def _started(tmp_path: Path, **kw: object) -> tuple[Path, Path]:
    """A dataset and an experiment folder whose record says it was started with ``kw`` (a split
    stage record marks it as begun; nothing is trained)."""
    data = make_generic(tmp_path / "data", n=4)
    out = tmp_path / "exp"
    (out / "stages").mkdir(parents=True)
    (out / "stages" / "split.json").write_text("{}", encoding="utf-8")
    ident = tiny_experiment_config(data, out, **kw).identity()
    (out / "experiment.json").write_text(json.dumps(ident), encoding="utf-8")
    return data, out


def test_rerun_names_flags_and_both_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, out = _started(tmp_path, image_size=128, seed=3, enhancement=False)
    before = sorted(p.name for p in out.rglob("*"))
    argv = ["experiment", "--data", str(data), "--out", str(out), "--fraction", "0.4",
            "--epochs", "1", "--downstream-epochs", "1", "--batch-size", "4", "--size", "micro",
            "--refiners", "morphological", "--downstream-width", "4", "--downstream-depth", "2",
            "--image-size", "256", "--seed", "0", "--no-progress"]  # fmt: skip
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"error: {out}: this folder holds an experiment with other settings: --no-enhancement "
        "left out (saved: given), --image-size 256 (saved: 128), --seed 0 (saved: 3); give the "
        "saved values to continue it, or choose a new --out or delete the folder"
    ]
    assert sorted(p.name for p in out.rglob("*")) == before


def test_setting_changes_say_auto_lists_and_api_options() -> None:
    old = {"modality": "auto", "refiners": ["guided"], "max_train": None, "test_fraction": 0.2}
    new = {"modality": "sar", "refiners": ["guided", "grabcut"], "max_train": 50,
           "test_fraction": 0.3}  # fmt: skip
    assert setting_changes(sorted(old), old, new, {"modality": "optical"}) == [
        "--max-train 50 (saved: not given)",
        "--modality sar (saved: auto, decided optical)",
        "--refiners guided,grabcut (saved: guided)",
        "test_fraction=0.3 (saved: 0.2)",
    ]
