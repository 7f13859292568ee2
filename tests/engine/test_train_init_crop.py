"""``elnet train --init-model MODEL`` without ``--image-size`` trains at the crop size MODEL was
trained at (its model file's record), not at 256 px: a model trained on 48 px crops was
fine-tuned on 256 px crops of the reviewed images. ``--image-size`` (or ``image_size:`` in a
``--config`` file) still wins; the run's model line says which size and why, and ``config.yaml``
and the new model file record it."""

from __future__ import annotations

import os

os.environ.setdefault("SAM2ELNET_THREADS", "1")

from pathlib import Path

import pytest
from helpers_data import micro_sar_model_and_reviewed_pairs, small_cfg

from sam2elnet.config import DEFAULT_IMAGE_SIZE, TrainConfig

MODEL_LINE = (
    "model: micro, trunk training none (the --init-model's architecture, kept in fine-tuning; "
    "--size, --trunk and --weights do not change it); "
)


def test_init_model_trains_at_its_own_crop_size_unless_given(tmp_path: Path) -> None:
    from sam2elnet.engine.train import train
    from sam2elnet.model import load_model

    init, data = micro_sar_model_and_reviewed_pairs(tmp_path, image_size=48)
    lines: list[str] = []
    cfg = small_cfg(data, tmp_path / "run", init_model=init, fit_quality=False, image_size=None)
    assert cfg.image_size is None  # decided when training starts, from the model file
    res = train(cfg, echo=lines.append)
    assert (
        MODEL_LINE
        + ("48 px crops (the --init-model's training crop size; --image-size changes it)")
        in lines
    )
    assert load_model(res.best_path)[1]["image_size"] == 48
    assert TrainConfig.load(res.run_dir / "config.yaml").image_size == 48

    lines.clear()
    cfg = small_cfg(data, tmp_path / "run2", init_model=init, fit_quality=False, image_size=40)
    res = train(cfg, echo=lines.append)
    assert MODEL_LINE + "40 px crops (--image-size; the --init-model was trained at 48 px)" in lines
    assert load_model(res.best_path)[1]["image_size"] == 40


def test_cli_init_model_with_a_config_file_that_names_no_image_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Through the command line and a shared ``--config`` file that does not name
    ``image_size``: the --init-model's size (the file's layer used to fix 256)."""
    from sam2elnet.cli import main

    init, data = micro_sar_model_and_reviewed_pairs(tmp_path, image_size=48)
    shared = tmp_path / "shared.yaml"
    shared.write_text("size: micro\nepochs: 1\nbatch_size: 2\nval_fraction: 0.5\ntrunk_scale: 1\n")
    out = tmp_path / "run"
    args = ["train", "--data", str(data), "--out", str(out), "--init-model", str(init),
            "--config", str(shared), "--no-quality", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    assert "; 48 px crops (the --init-model's training crop size;" in capsys.readouterr().out
    assert TrainConfig.load(out / "config.yaml").image_size == 48
    # the size is recorded: --resume continues with it, and says where it comes from
    from sam2elnet.engine.train_setup import resolve_image_size

    resumed = TrainConfig.from_sources({"out": out}, resume=True)
    assert resumed.image_size == 48
    payload = {"extra": {"image_size": 48}}
    assert resolve_image_size(resumed, payload) == (
        resumed,
        "48 px crops (the run's config.yaml; the --init-model was trained at 48 px)",
    )


def test_resolve_image_size_defaults(tmp_path: Path) -> None:
    """Without --init-model the default is fixed in the config (256, or as given); a model file
    that records no crop size (written by other code) trains at the default, and says so."""
    from sam2elnet.engine.train_setup import resolve_image_size

    plain = TrainConfig(data=tmp_path, out=tmp_path / "r")
    assert plain.image_size == DEFAULT_IMAGE_SIZE == 256
    assert resolve_image_size(plain, None) == (plain, "")
    cfg = TrainConfig(data=tmp_path, out=tmp_path / "r", init_model=tmp_path / "m.pt")
    got, note = resolve_image_size(cfg, {"extra": {"train": {"domain": "other"}}})
    assert got.image_size == 256
    assert note == "256 px crops (the default: the --init-model records no training crop size)"
    # the training record's image_size (written with it) counts too; a bool or < 32 does not
    got, _ = resolve_image_size(cfg, {"extra": {"train": {"image_size": 96}}})
    assert got.image_size == 96
    for bad in (True, 16, "64", None):
        assert resolve_image_size(cfg, {"extra": {"image_size": bad}})[0].image_size == 256
