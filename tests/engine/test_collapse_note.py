"""The "collapsed to background" warning of elnet train (engine.train_schedule.collapse_note).

A road user's tiny run (micro, random trunk, 15 epochs at 128 px on 16 4-band road tiles):
train IoU 0.12, 0.19, 0.15, 0.03, 0.001, then 0 from epoch 6 on, and the run ended with
'best model: ... (epoch 1, val IoU 0.116)' and no word that the network had stopped predicting
roads at all."""

from __future__ import annotations

import pytest

from sam2elnet.engine.train_schedule import collapse_note

TRIAL = [0.121744, 0.187593, 0.14939, 0.0272303, 0.000898513, 0, 5.4e-05, 0, 0, 0, 0, 0, 0, 0, 0]


def _rows(ious: list[float]) -> list[dict[str, float]]:
    return [{"epoch": i + 1, "train_iou": v, "lr": 0.001} for i, v in enumerate(ious)]


def test_the_trial_run_is_said_collapsed_from_its_first_epoch_below_the_floor() -> None:
    assert collapse_note(_rows(TRIAL), best_epoch=1, lr=0.001) == (
        "warning: training collapsed to background: from epoch 5 of 15 on the network "
        "predicted almost no foreground (train IoU < 0.01; it reached 0.188 at epoch 2); the "
        "kept model.pt is epoch 1's. With a random trunk and few images this happens: try a "
        "lower --lr (this run: 0.001), more labelled images or SAM2 weights (--weights)"
    )


@pytest.mark.parametrize(
    "ious",
    [
        [0.12, 0.19, 0.15, 0.2],  # learning
        [0.0, 0.0, 0.0],  # never learned anything: nothing collapsed
        [0.12, 0.005, 0.02],  # dipped and recovered: the last epoch is above the floor
        [0.04, 0.0, 0.0],  # never above 0.05: too little to call a collapse
        [],
    ],
)
def test_no_warning_unless_the_run_ends_below_the_floor_after_learning(ious: list[float]) -> None:
    assert collapse_note(_rows(ious), best_epoch=1, lr=0.001) is None


def test_train_says_the_warning_with_its_own_history(tmp_path, monkeypatch) -> None:
    """The wiring: train passes its per-epoch history, kept epoch and --lr, and says the line."""
    from helpers_data import make_dataset, small_cfg

    from sam2elnet.engine import train as train_mod

    seen = []

    def fake(history, best_epoch, lr):
        seen.append(([r["epoch"] for r in history], best_epoch, lr))
        return "warning: training collapsed to background: (test)"

    monkeypatch.setattr(train_mod, "collapse_note", fake)
    data = make_dataset(tmp_path / "d", n=8, size=32)
    lines: list[str] = []
    cfg = small_cfg(data, tmp_path / "run", epochs=2, fit_quality=False)
    res = train_mod.train(cfg, echo=lines.append)
    assert seen == [([1, 2], res.best_epoch, cfg.lr)]
    assert lines.count("warning: training collapsed to background: (test)") == 1
