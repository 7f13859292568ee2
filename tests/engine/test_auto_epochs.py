"""``--epochs auto`` (the default): about AUTO_UPDATES optimiser updates, 10-300 epochs
(engine.train_schedule.auto_epochs; the measurements behind it: sam2elnet.config.AUTO_UPDATES)."""

from __future__ import annotations

import os

os.environ.setdefault("SAM2ELNET_THREADS", "1")

from pathlib import Path

import pytest
import yaml
from helpers_data import make_dataset, small_cfg

from sam2elnet.config import AUTO_EPOCHS, AUTO_UPDATES, TrainConfig
from sam2elnet.engine.train_schedule import auto_epochs


@pytest.mark.parametrize(
    ("steps", "epochs", "aim"),
    [
        (10, 120, "about 1,200 optimiser updates at 10 per epoch"),  # roads-dev, 41 images, batch 4
        (
            120,
            10,
            "about 1,200 optimiser updates at 120 per epoch",
        ),  # sos-2k, 480 images: as before
        (7, 172, "about 1,200 optimiser updates at 7 per epoch"),  # ceil(1200 / 7)
        (500, 10, "5,000 optimiser updates: at least 10 epochs"),  # a large set keeps 10 passes
        (2, 300, "600 optimiser updates: at most 300 epochs"),  # 8 images: no hours of looping
        (0, 300, "300 optimiser updates: at most 300 epochs"),  # an empty loader counts as 1 step
    ],
)
def test_auto_epochs_aims_at_a_number_of_updates(steps: int, epochs: int, aim: str) -> None:
    assert (AUTO_UPDATES, AUTO_EPOCHS) == (1200, (10, 300))
    assert auto_epochs(steps) == (epochs, f"epochs: {epochs} (auto: {aim}; --epochs overrides)")


def test_epochs_default_is_auto_and_an_explicit_value_stays() -> None:
    assert TrainConfig(data="d", out="o").epochs is None
    assert TrainConfig(data="d", out="o", epochs=3).epochs == 3


def test_train_resolves_auto_epochs_records_them_and_resumes_without_the_option(
    tmp_path: Path,
) -> None:
    """6 training images at batch 2: 3 updates per epoch, 300 epochs would be the rule's answer;
    the run is capped by a monkeypatched range so it stays a unit test, and the log line,
    config.yaml and the metrics rows all carry the resolved number."""
    import sam2elnet.config as config
    from sam2elnet.engine.train import train

    data = make_dataset(tmp_path / "d", n=8, size=32)
    run = tmp_path / "run"
    lines: list[str] = []
    saved = (config.AUTO_UPDATES, config.AUTO_EPOCHS)
    try:
        config.AUTO_UPDATES, config.AUTO_EPOCHS = 6, (1, 300)
        cfg = small_cfg(data, run, epochs=None, fit_quality=False, val_fraction=0.25)
        res = train(cfg, echo=lines.append)
        said = [s for s in lines if s.startswith("epochs: ")]
        assert said == [
            "epochs: 2 (auto: about 6 optimiser updates at 3 per epoch; --epochs overrides)"
        ]
        assert yaml.safe_load((run / "config.yaml").read_text())["epochs"] == 2
        assert len((run / "metrics.csv").read_text().splitlines()) == 1 + 2
        assert res.best_epoch in (1, 2)
        lines.clear()  # --resume with --epochs left out continues the recorded run
        train(small_cfg(data, run, epochs=None, fit_quality=False, val_fraction=0.25, resume=True),
              echo=lines.append)  # fmt: skip
        assert any("after its last epoch (2 of 2 done)" in s for s in lines)
        assert not [s for s in lines if s.startswith("epochs: ")]  # the recorded 2, not auto
    finally:
        config.AUTO_UPDATES, config.AUTO_EPOCHS = saved
