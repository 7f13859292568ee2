"""The package's warnings are log records of ``sam2elnet.*`` loggers, one channel for everybody.

A user of the Python API who configures :mod:`logging` receives them as records (the warnings of
the quality evaluator and of a model loaded with it were Python ``warnings.warn`` calls, outside
logging); the command line prints each once, as one ``warning:`` line above the progress bar
(main()'s handler through ``tqdm.write``), not once per channel.
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers_data import write_png
from helpers_logs import screen_rows

from sam2elnet.engine.predictor import UNFITTED_EVALUATOR, Predictor
from sam2elnet.model import ModelConfig, build_model, save_model
from sam2elnet.utils.run_warnings import hidden


def _unfitted_model(path: Path) -> Path:
    """A micro model file without a fitted quality evaluator (loading it warns)."""
    return save_model(build_model(ModelConfig(size="micro", in_bands=1)).eval(), path)


def _warnings_of(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.WARNING and text in r.getMessage()]


def test_api_user_receives_the_model_warning_as_a_log_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Loading a model with an unfitted evaluator: one WARNING record of
    ``sam2elnet.engine.predictor``, no Python warning (it was ``warnings.warn``, which a
    ``logging`` setup does not receive)."""
    path = _unfitted_model(tmp_path / "m.pt")
    with caplog.at_level(logging.WARNING), warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        Predictor.from_file(path)
    (rec,) = _warnings_of(caplog, UNFITTED_EVALUATOR)
    assert rec.name == "sam2elnet.engine.predictor"
    # a file saved without an evaluator: how to fit one (not "train on more labelled images")
    assert "fit_quality('MODEL.pt', 'DATA')" in rec.getMessage()
    assert "refit" not in rec.getMessage()  # no command refits an evaluator alone
    assert [str(w.message) for w in seen if UNFITTED_EVALUATOR in str(w.message)] == []


def test_quiet_drops_every_kind_and_keeps_no_key(caplog: pytest.LogCaptureFixture) -> None:
    """quiet() (a look at a file before the job, e.g. images-or-masks) drops warnings of every
    kind without remembering their keys: the job's own read, in its scope, still warns once."""
    from sam2elnet.utils.run_warnings import RunWarnings, quiet, warn_once

    log = logging.getLogger("sam2elnet.test_quiet")
    with caplog.at_level(logging.WARNING):
        with quiet():
            assert not warn_once(log, "kind a", "a.tif: first", key="a")
            assert not warn_once(log, "kind b", "b.tif: second")
        assert caplog.messages == []
        with RunWarnings():
            assert warn_once(log, "kind a", "a.tif: first", key="a")
            assert not warn_once(log, "kind a", "a.tif: first", key="a")  # same thing: dropped
        assert caplog.messages == ["a.tif: first"]


def test_hidden_drops_the_warning_only_while_open(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A caller that has said it already (a fold's training, the training report) hides the
    warning while it loads the model; a load after that warns again (nothing kept of it)."""
    path = _unfitted_model(tmp_path / "h.pt")
    with caplog.at_level(logging.WARNING):
        with hidden(UNFITTED_EVALUATOR):
            Predictor.from_file(path)
        assert _warnings_of(caplog, UNFITTED_EVALUATOR) == []
        Predictor.from_file(path)
        assert len(_warnings_of(caplog, UNFITTED_EVALUATOR)) == 1
        Predictor.from_file(path)  # the same model again: said once per process
        assert len(_warnings_of(caplog, UNFITTED_EVALUATOR)) == 1


def test_cli_prints_the_warning_once_above_the_bar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``elnet annotate`` with its bar and a model whose evaluator is not fitted: the warning is
    one ``warning:`` row of its own (not glued to the bar), printed once."""
    from sam2elnet.cli import main

    model = _unfitted_model(tmp_path / "u.pt")
    rng = np.random.default_rng(0)
    for k in range(3):
        write_png(tmp_path / "images" / f"i{k}.png", rng.integers(0, 255, (32, 32), np.uint8))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # the CLI draws bars on terminals
    assert main(["annotate", "--model", str(model), "--images", str(tmp_path / "images"),
                 "--out", str(tmp_path / "out"), "--device", "cpu"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert "annotate" in err and "%|" in err  # the bar was drawn
    said = [r for r in screen_rows(err) if UNFITTED_EVALUATOR in r]
    assert len(said) == 1, said
    assert said[0].startswith(f"warning: {UNFITTED_EVALUATOR} (")
    assert "UserWarning" not in err
