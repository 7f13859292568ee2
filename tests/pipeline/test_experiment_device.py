"""``elnet experiment`` refusals before any stage: ``--device cuda`` on a machine without CUDA
(a trial re-ran a finished CPU experiment with --device cuda: its downstream stage ended in
torch's raw "AssertionError: Torch not compiled with CUDA enabled" traceback), too few pairs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sam2elnet.cli import main


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_experiment_refuses_cuda_without_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    out = tmp_path / "run"
    capsys.readouterr()
    assert main(["experiment", "--data", str(data), "--out", str(out), "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: device 'cuda' requested but CUDA is not available; use --device cpu"]
    assert not out.exists()  # nothing written


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_downstream_training_refuses_cuda_without_it(tmp_path: Path) -> None:
    from helpers_data import make_generic

    from sam2elnet.engine.downstream import DownstreamConfig
    from sam2elnet.engine.downstream_train import train_downstream
    from sam2elnet.errors import UserError

    root = make_generic(tmp_path / "d", n=2)
    pairs = [(root / "images" / f"img{i}.png", root / "masks" / f"img{i}.png") for i in (0, 1)]
    cfg = DownstreamConfig(device="cuda", steps=1, image_size=32, progress=False)
    with pytest.raises(UserError, match="device 'cuda' requested but CUDA is not available"):
        train_downstream(pairs, cfg)


def test_too_few_pairs_said_in_the_singular(tmp_path: Path, capsys) -> None:
    """A trial on a flat folder of one pair: 'only 1 labelled pairs'; now 'only 1 labelled
    pair', and nothing is left in --out."""
    from helpers_data import make_generic

    data = make_generic(tmp_path / "d", n=1)
    out = tmp_path / "run"
    capsys.readouterr()
    assert main(["experiment", "--data", str(data), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        f"error: {data}: only 1 labelled pair; the experiment needs at least 6 (test, labelled "
        "and unlabelled parts)"
    )
    assert not out.exists()
