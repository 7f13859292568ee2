"""``elnet evaluate --report`` never overwrites the run's own report.html (README step 4)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers_data import write_mask_png

from sam2elnet.cli import main


def _run_folder(tmp_path: Path) -> tuple[Path, Path]:
    """An annotate output folder (labels/ + summary.json + its report.html) and a truth folder."""
    run, truth = tmp_path / "auto", tmp_path / "truth"
    (run / "labels").mkdir(parents=True)
    truth.mkdir()
    for k in range(3):
        t = np.zeros((32, 32), bool)
        t[4:28, 4:28] = True
        p = np.zeros_like(t)
        p[4 + 2 * k : 28, 4:28] = True
        write_mask_png(truth / f"{k}.png", t)
        write_mask_png(run / "labels" / f"{k}.png", p)
    (run / "summary.json").write_text(json.dumps({"threshold": 0.5}))
    (run / "report.html").write_text("<title>sam2elnet labels: auto</title>annotate's page")
    return run, truth


def test_evaluate_report_in_a_run_folder_writes_evaluation_html(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, truth = _run_folder(tmp_path)
    argv = ["evaluate", "--pred", str(run), "--truth", str(truth)]
    argv += ["--json", str(run / "metrics.json"), "--report"]
    for _ in range(2):  # a second evaluate replaces its own page, the run's stays
        assert main(argv) == 0, capsys.readouterr().err
        out = capsys.readouterr().out
        assert f"wrote {run / 'evaluation.html'}" in out.replace("\n", "")
        assert (run / "report.html").read_text() == (
            "<title>sam2elnet labels: auto</title>annotate's page"
        )
        assert "<title>elnet evaluate</title>" in (run / "evaluation.html").read_text()


def test_evaluate_report_keeps_another_commands_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder without summary.json but with another command's report.html (e.g. train's)."""
    run, truth = _run_folder(tmp_path)
    (run / "summary.json").unlink()
    assert main(["evaluate", "--pred", str(run), "--truth", str(truth), "--report"]) == 0
    assert "annotate's page" in (run / "report.html").read_text()
    assert (run / "evaluation.html").is_file()


def test_evaluate_report_in_a_plain_folder_is_report_html(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, truth = _run_folder(tmp_path)
    (run / "summary.json").unlink()
    (run / "report.html").unlink()
    argv = ["evaluate", "--pred", str(run), "--truth", str(truth), "--report"]
    for _ in range(2):  # its own report.html is replaced, not moved aside
        assert main(argv) == 0, capsys.readouterr().err
        assert "<title>elnet evaluate</title>" in (run / "report.html").read_text()
        assert not (run / "evaluation.html").exists()
