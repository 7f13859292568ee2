"""``elnet export`` through the CLI: outputs and error lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_export import write_labels_folder

from sam2elnet.cli import main


@pytest.fixture
def label_tif(tmp_path: Path) -> Path:
    return write_labels_folder(tmp_path)


def _export(labels: Path, out: Path, *extra: str) -> int:
    return main(["export", "--labels", str(labels), "--out", str(out), *extra])


def test_cli_export_and_errors(tmp_path: Path, label_tif: Path, capsys):
    args = ("--model-id", "m1", "--min-area", "10", "--no-progress")
    assert _export(label_tif, tmp_path / "o.gpkg", *args) == 0
    assert "3 polygons" in capsys.readouterr().out
    assert _export(tmp_path / "missing", tmp_path / "o.gpkg") == 2
    assert "error:" in capsys.readouterr().err
    assert _export(label_tif, tmp_path / "c.json", "--format", "coco", "--no-progress") == 0
