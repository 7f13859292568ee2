"""``--batch-size auto`` on ``elnet train`` and ``elnet cv``: the word a refusal of a changed
setting prints (``--batch-size 4 (saved: auto)``, :func:`sam2elnet.option_checks.setting_change`)
is one the command takes, as ``--epochs auto`` is."""

from __future__ import annotations

from pathlib import Path

import pytest

from sam2elnet.config import TrainConfig


def test_refusal_says_auto_for_a_batch_formed_by_pixels() -> None:
    from sam2elnet.option_checks import option_change, setting_change

    assert setting_change("batch_size", 4, None) == "--batch-size 4 (saved: auto)"
    assert option_change("batch_size", None, 4) == "--batch-size auto (saved: 4)"


def test_train_takes_batch_size_auto(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``elnet train --batch-size auto`` is the default said aloud (it was 'Input should be a
    valid integer', exit 2); the word overrides a --config file's number, as ``--epochs auto``."""
    from helpers_cli import capture_train_configs

    from sam2elnet.cli import main

    got = capture_train_configs(monkeypatch)
    (tmp_path / "d").mkdir()
    (tmp_path / "f.yaml").write_text("batch_size: 6\n")
    args = ["train", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "o")]
    for extra, batch in (
        (["--batch-size", "auto"], None),
        (["--batch-size", "AUTO", "--config", str(tmp_path / "f.yaml")], None),
        (["--config", str(tmp_path / "f.yaml")], 6),
        (["--batch-size", "3"], 3),
    ):
        assert main([*args, *extra]) == 0
        assert got[-1].batch_size == batch, extra
    (tmp_path / "f.yaml").write_text("batch_size: auto\n")
    base = {"data": tmp_path / "d", "out": tmp_path / "o"}
    assert TrainConfig.from_sources(base, config=tmp_path / "f.yaml").batch_size is None


def test_cv_takes_batch_size_auto(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``elnet cv --batch-size auto``: the folds' batch is formed by pixels (not recorded, as
    when left out) and the test images go 8 per forward pass; a number is recorded as a number;
    a word that is neither is one error line naming the option."""
    import sam2elnet.pipeline.crossval as crossval
    from sam2elnet.cli import main

    got: list = []

    def fake_run_cv(cfg, echo=None):  # noqa: ANN001, ANN202 - the CLI's call only
        got.append(cfg)
        raise SystemExit(0)

    monkeypatch.setattr(crossval, "run_cv", fake_run_cv)
    (tmp_path / "d").mkdir()
    args = ["cv", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "o")]
    assert main([*args, "--batch-size", "auto"]) == 0
    assert "batch_size" not in got[-1].train and got[-1].batch_size == 8
    assert main([*args, "--batch-size", "4"]) == 0
    assert got[-1].train["batch_size"] == 4 and got[-1].batch_size == 4
    assert got[-1].identity()["train"] == {"batch_size": 4}  # cv_config.json: a number
    assert main([*args, "--epochs", "3"]) == 0  # --epochs too (it was recorded as "3")
    assert got[-1].identity()["train"] == {"epochs": 3}


def test_cv_batch_size_word_is_one_error_line(tmp_path: Path, capsys) -> None:
    from sam2elnet.cli import main

    (tmp_path / "d").mkdir()
    args = ["cv", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "o")]
    assert main([*args, "--batch-size", "many"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: invalid value for --batch-size: 'many'")
    assert not (tmp_path / "o").exists()


def test_cv_count_option_with_a_superscript_digit_is_one_error_line(tmp_path: Path, capsys) -> None:
    """``--batch-size ²`` / ``--epochs ²``: ``str.isdigit`` takes "²" for a number and ``int``
    refused it with a ValueError traceback; now the config refuses it in one line."""
    from sam2elnet.cli import main

    (tmp_path / "d").mkdir()
    args = ["cv", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "o")]
    for flag in ("--batch-size", "--epochs"):
        assert main([*args, flag, "\u00b2"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: invalid value for {flag}: '\u00b2'")
