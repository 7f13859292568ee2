"""``--tile`` not given: the window side is chosen to fit ``--max-memory`` (engine.window_size).

Found after 7eea1f7 (the memory model's base measured at 580 MB, the weights counted twice): one
1024 x 1024 px window of the Hiera-tiny model was estimated above the default 1.5 GB budget, so
``elnet annotate`` / ``enhance`` on a large image at default settings warned "one 1024 x 1024 px
window (--tile 1024) needs about ..., more than --max-memory ...; give a smaller --tile" and
``elnet scene --max-memory`` refused: a user who gave no option was told to change one. Here the
micro model at ``--max-memory 700M`` plays that part (one 1024 px window does not fit).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from helpers_data import make_scene, micro_model_file, write_png

from sam2elnet.cli import main
from sam2elnet.engine import memory
from sam2elnet.engine.predictor import Predictor
from sam2elnet.engine.window_size import resolve_tile
from sam2elnet.option_checks import command_line_names
from sam2elnet.options import AUTO_TILE_SIDES

os.environ.setdefault("SAM2ELNET_THREADS", "1")

BUDGET = 700_000_000
H, W = 520, 560  # too large to predict whole within BUDGET with the micro model


def _expected_side(net: Predictor, coarse: bool = False) -> int:
    """The largest standard side whose one window fits BUDGET, checked to be below 1024 (the
    old default, which does not fit) and to leave the image too large to predict whole."""
    side = max(s for s in AUTO_TILE_SIDES if net.whole_bytes(s * s, coarse=coarse) <= BUDGET)
    assert side < 1024 and net.whole_bytes(H * W, coarse=coarse) > BUDGET
    return side


def _annotate(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> list[str]:
    """``elnet annotate`` of one H x W px PNG at ``--max-memory 700M`` and ``extra``: the lines."""
    model = micro_model_file(tmp_path / "m.pt")
    rng = np.random.default_rng(0)
    write_png(tmp_path / "imgs" / "a.png", rng.integers(0, 255, (H, W), np.uint8))
    args = ["annotate", "--model", str(model), "--images", str(tmp_path / "imgs")]
    args += ["--out", str(tmp_path / "out"), "--max-memory", "700M", "--no-progress", *extra]
    assert main(args) == 0
    cap = capsys.readouterr()
    return (cap.out + cap.err).splitlines()


def test_annotate_without_tile_chooses_a_window_that_fits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    side = _expected_side(Predictor.from_file(micro_model_file(tmp_path / "m.pt")))
    lines = _annotate(tmp_path, capsys)
    assert not [ln for ln in lines if "needs about" in ln], lines  # no "give a smaller --tile"
    auto = (
        f"windows of {side} px (auto: the largest that fits --max-memory 700.00 MB; "
        "--tile overrides)"
    )
    assert [ln for ln in lines if "(auto:" in ln] == [auto]
    assert any(f"of up to {side} px (--tile auto)" in ln for ln in lines), lines
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["window"] == {"tile": side, "tile_auto": True, "overlap": 128}
    assert (tmp_path / "out" / "labels" / "a.png").is_file()


def test_a_tile_given_is_used_and_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    net = Predictor.from_file(micro_model_file(tmp_path / "m.pt"), max_memory=BUDGET)
    _expected_side(net)
    lines = _annotate(tmp_path, capsys, "--tile", "1024")
    need = memory.format_bytes(net.whole_bytes(H * W))
    assert [ln for ln in lines if "needs about" in ln] == [
        f"warning: a.png: one {H} x {W} px window (--tile 1024) needs about {need}, more than "
        "--max-memory 700.00 MB; give a smaller --tile"
    ]
    assert not [ln for ln in lines if "(auto:" in ln]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["window"] == {"tile": 1024, "tile_auto": False, "overlap": 128}


def test_scene_with_max_memory_and_no_tile_runs_in_windows_that_fit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Was refused: 'one 520 x 560 px window (--tile 1024) needs about ...'."""
    model = micro_model_file(tmp_path / "m.pt")
    side = _expected_side(Predictor.from_file(model))
    scene = make_scene(tmp_path / "s.tif", H, W)
    out = tmp_path / "o.tif"
    code = main(
        ["scene", "--model", str(model), "--image", str(scene), "--out", str(out)]
        + ["--max-memory", "700M", "--no-progress"]
    )
    cap = capsys.readouterr()
    assert code == 0, cap.out + cap.err
    assert f"windows of {side} px (auto: the largest that fits --max-memory 700.00 MB" in (
        cap.out + cap.err
    )
    assert out.is_file()


def test_the_rule_keeps_above_the_overlap_and_falls_back_to_the_smallest(
    tmp_path: Path,
) -> None:
    net = Predictor.from_file(micro_model_file(tmp_path / "m.pt"), max_memory=BUDGET)
    side = _expected_side(net)
    assert resolve_tile(None, net).tile == side
    assert resolve_tile(None, net, overlap=side).tile == side + 32  # larger than the overlap
    assert resolve_tile(300, net).tile == 300 and not resolve_tile(300, net).auto
    small = Predictor.from_file(micro_model_file(tmp_path / "m.pt"), max_memory="2M")
    w = resolve_tile(None, small)
    assert (w.tile, w.auto, w.fits) == (256, True, False)
    assert w.note() == (  # the Python API: the argument and the flag
        "windows of 256 px (auto: the smallest automatic window; none fits max_memory "
        "(--max-memory) 2.00 MB; --tile overrides)"
    )
    with command_line_names():  # elnet: the flag alone, as before
        assert w.note() == (
            "windows of 256 px (auto: the smallest automatic window; none fits --max-memory "
            "2.00 MB; --tile overrides)"
        )


def test_enhance_chooses_for_windows_that_carry_the_coarse_label(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    net = Predictor.from_file(micro_model_file(tmp_path / "m.pt"))
    side = _expected_side(net, coarse=True)
    rng = np.random.default_rng(1)
    write_png(tmp_path / "imgs" / "a.png", rng.integers(0, 255, (H, W), np.uint8))
    coarse = np.zeros((H, W), np.uint8)
    coarse[100:300, 200:400] = 255
    write_png(tmp_path / "coarse" / "a.png", coarse)
    args = ["enhance", "--model", str(tmp_path / "m.pt"), "--images", str(tmp_path / "imgs")]
    args += ["--labels", str(tmp_path / "coarse"), "--out", str(tmp_path / "out")]
    assert main([*args, "--max-memory", "700M", "--no-progress"]) == 0
    text = capsys.readouterr()
    lines = (text.out + text.err).splitlines()
    assert not [ln for ln in lines if "needs about" in ln], lines
    assert [ln for ln in lines if "(auto:" in ln] == [
        f"windows of {side} px (auto: the largest that fits --max-memory 700.00 MB; "
        "--tile overrides)"
    ]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["window"] == {"tile": side, "tile_auto": True, "overlap": 128}
