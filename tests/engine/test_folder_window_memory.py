"""``annotate --max-memory`` below what one window needs: the warning names the real window and
what helps.

Found in a cluster user trial (256 px SOS JPEGs, ``--max-memory 300M``): every image went window
by window and the warning said ``one 1024 px window needs about 944.91 MB ...; give a smaller
--tile``, though each image was one 256 px window and the model and runtime alone took more than
300 MB, so no --tile could keep to it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from helpers_data import micro_model_file, write_png

from sam2elnet.cli import main
from sam2elnet.engine import memory
from sam2elnet.engine.predictor import Predictor

os.environ.setdefault("SAM2ELNET_THREADS", "1")


def _annotate(tmp_path: Path, capsys: pytest.CaptureFixture[str], budget: int) -> list[str]:
    model = micro_model_file(tmp_path / "m.pt")
    rng = np.random.default_rng(0)
    write_png(tmp_path / "imgs" / "a.png", rng.integers(0, 255, (40, 48), np.uint8))
    args = ["annotate", "--model", str(model), "--images", str(tmp_path / "imgs")]
    args += ["--out", str(tmp_path / "out"), "--max-memory", str(budget), "--no-progress"]
    assert main(args) == 0
    cap = capsys.readouterr()
    return [ln for ln in (cap.out + cap.err).splitlines() if "window" in ln and "needs" in ln]


def test_a_budget_below_the_runtime_says_no_tile_helps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    net = Predictor.from_file(micro_model_file(tmp_path / "m.pt"))
    budget = net.whole_bytes(0) // 2  # less than the model and runtime alone
    lines = _annotate(tmp_path, capsys, budget)
    f = memory.format_bytes
    assert lines == [
        f"warning: a.png: one 40 x 48 px window (--tile auto) needs about "
        f"{f(net.whole_bytes(40 * 48))}, more than --max-memory {f(budget)}; the model and "
        f"runtime alone take about {f(net.whole_bytes(0))} of it, so no --tile keeps to it: "
        f"give --max-memory {f(net.whole_bytes(40 * 48))} or more"
    ]


def test_the_header_is_read_once_for_the_plan_and_the_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job's planner reads a.png's size from its header once (ChunkPlanner.size); the
    window warning uses that size (40 x 48 px, height first) instead of opening the file again."""
    real, read = memory.image_size, []

    def spy(path):  # type: ignore[no-untyped-def]
        read.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(memory, "image_size", spy)
    net = Predictor.from_file(micro_model_file(tmp_path / "m.pt"))
    lines = _annotate(tmp_path, capsys, net.whole_bytes(0) // 2)
    assert read == ["a.png"]
    assert len(lines) == 1 and "one 40 x 48 px window" in lines[0]
