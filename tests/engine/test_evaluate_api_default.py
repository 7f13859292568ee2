"""``evaluate_folders`` with no ``roads`` argument gives the numbers ``elnet evaluate`` prints.

Its default was ``roads=False`` while the CLI's is auto: on a folder of road labels (roads-dev,
4 tiles, truth vs itself) ``elnet evaluate`` printed road correctness / completeness / quality /
connectivity 1.0 while the same call from Python returned none of them. Found in a user trial of
the API. Now the default is ``"auto"``, as in the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers_roads import gapped_predictions, make_road_dataset

from sam2elnet.cli import main
from sam2elnet.engine import evaluate_folders


def test_default_is_the_cli_default_on_road_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    roads = make_road_dataset(tmp_path / "roads", n=4, size=48)
    pred = gapped_predictions(roads, tmp_path / "pred")
    res = evaluate_folders(pred, roads / "masks", progress=False)
    assert res.options["roads"] is True
    assert res.aggregate["road_completeness"] < 0.9
    js = tmp_path / "cli.json"
    args = ["evaluate", "--pred", str(pred), "--truth", str(roads / "masks"), "--json", str(js)]
    assert main([*args, "--no-progress"]) == 0
    capsys.readouterr()
    assert json.loads(js.read_text())["aggregate"] == pytest.approx(res.aggregate)
