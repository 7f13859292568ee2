"""A missing ``--weights`` file: one error line in the option's words (``--weights none``), while
the Python API says ``weights=None`` (tests/model/test_hiera_loading.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_logs import one_error_line, run_main_err

RANDOM = "or pass --weights none to train from random initialisation"


@pytest.mark.parametrize("command", ["train", "cv"])
def test_missing_weights_file_names_the_option(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "sam2.1_hiera_tiny.pt"
    data = tmp_path / "data"
    data.mkdir()
    rc, err = run_main_err(
        capsys, command, "--data", data, "--out", tmp_path / "run", "--weights", missing
    )
    line = one_error_line(rc, err)
    assert line == (
        f"error: {missing}: weights file not found; run `elnet weights list` to see where "
        f"weights are looked for, {RANDOM}"
    )
    assert not (tmp_path / "run").exists()


def test_experiment_missing_weights_file_names_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``elnet experiment`` says ``--weights none`` (run_experiment's own default is the API's
    ``weights="none"``: tests/pipeline/test_experiment.py) and leaves no output folder."""
    missing = tmp_path / "sam2.1_hiera_tiny.pt"
    data = tmp_path / "data"
    data.mkdir()
    (data / "readme.txt").write_text("not empty")
    rc, err = run_main_err(
        capsys, "experiment", "--data", data, "--out", tmp_path / "run", "--weights", missing
    )
    line = one_error_line(rc, err)
    assert line == (
        f"error: {missing}: weights file not found; run `elnet weights list` to see where "
        f"weights are looked for, {RANDOM}"
    )
    assert not (tmp_path / "run").exists()
