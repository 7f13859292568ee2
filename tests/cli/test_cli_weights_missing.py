"""A missing ``--weights`` file: one error line in the option's words (``--weights none``), while
the Python API says ``weights=None`` (tests/model/test_hiera_loading.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_logs import error_line, one_error_line, refused_untouched, run_main_err

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


@pytest.mark.parametrize("data_state", ["missing", "empty", "not a dataset"])
def test_experiment_checks_weights_before_data_and_out(
    data_state: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``elnet experiment`` checks --weights first, as ``elnet train``: with a bad data folder
    too, the weights error is the one line (it named the data folder), and an --out holding the
    record of a run stopped before any stage is left as it is (experiment.json was rewritten
    before the weights were refused)."""
    missing = tmp_path / "sam2.1_hiera_tiny.pt"
    data = tmp_path / "data"
    if data_state != "missing":
        data.mkdir()
    if data_state == "not a dataset":
        (data / "readme.txt").write_text("not a dataset")
    out = tmp_path / "run"
    out.mkdir()
    (out / "experiment.json").write_text('{"seed": 7}\n')
    argv = ["experiment", "--data", str(data), "--out", str(out), "--weights", str(missing)]
    line = refused_untouched(capsys, argv, out)
    assert line == (
        f"error: {missing}: weights file not found; run `elnet weights list` to see where "
        f"weights are looked for, {RANDOM}"
    )
    # a new --out is not made
    new = tmp_path / "new"
    argv = ["experiment", "--data", str(data), "--out", str(new), "--weights", str(missing)]
    assert error_line(capsys, argv) == line
    assert not new.exists()


def test_experiment_api_checks_weights_before_writing(tmp_path: Path) -> None:
    """``run_experiment`` (the API) checks the weights file before experiment.json is written
    into an existing output folder (it was rewritten, then the weights refused)."""
    from sam2elnet.errors import CheckpointError
    from sam2elnet.pipeline.experiment import ExperimentConfig, run_experiment

    data = tmp_path / "data"
    data.mkdir()
    (data / "readme.txt").write_text("not a dataset")
    out = tmp_path / "run"
    out.mkdir()
    (out / "experiment.json").write_text('{"seed": 7}\n')
    missing = tmp_path / "missing.pt"
    cfg = ExperimentConfig(data=str(data), out=str(out), weights=str(missing))
    with pytest.raises(CheckpointError, match="weights file not found"):
        run_experiment(cfg)
    assert (out / "experiment.json").read_text() == '{"seed": 7}\n'
    assert sorted(p.name for p in out.iterdir()) == ["experiment.json"]


def test_experiment_refuses_a_text_weights_file_before_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A weights file that cannot be a checkpoint (here text) is refused after the --out checks
    (a weights file inside a folder the run writes is refused as such first,
    tests/cli/test_cli_run_outputs.py) but before experiment.json is rewritten."""
    from helpers_data import make_generic

    data = make_generic(tmp_path / "d", n=4)
    weights = tmp_path / "sam2.pt"
    weights.write_text("model: sam2\n")
    out = tmp_path / "run"
    out.mkdir()
    (out / "experiment.json").write_text('{"seed": 7}\n')
    argv = ["experiment", "--data", str(data), "--out", str(out), "--weights", str(weights)]
    line = refused_untouched(capsys, argv, out)
    assert line.startswith(f"error: {weights}: not a readable checkpoint")


@pytest.mark.parametrize("command", ["train", "experiment"])
def test_a_weights_folder_is_judged_by_its_files(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --weights folder (a Hugging Face SAM2 model folder is one) exists: ``elnet train``
    judged it by its files, ``elnet experiment`` said 'weights file not found' (its own copy of
    the existence check wanted a file). One check now: a folder without .safetensors files is
    that error, for both, with the output folder left as it was."""
    from helpers_data import make_generic

    data = make_generic(tmp_path / "d", n=4)
    weights = tmp_path / "sam2-hiera-tiny"
    weights.mkdir()
    out = tmp_path / "run"
    out.mkdir()
    (out / "experiment.json").write_text('{"seed": 7}\n')
    argv = [command, "--data", str(data), "--out", str(out), "--weights", str(weights)]
    line = refused_untouched(capsys, argv, out)
    assert line == (
        f"error: {weights}: folder has no .safetensors files; expected a checkpoint file (.pt) "
        "or a Hugging Face SAM2 model folder (e.g. a download of facebook/sam2.1-hiera-tiny)"
    )
