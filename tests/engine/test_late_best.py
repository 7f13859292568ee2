"""The "still improving at the end" note of elnet train (engine.train_schedule.late_best_note)."""

from __future__ import annotations

import os

os.environ.setdefault("SAM2ELNET_THREADS", "1")

from pathlib import Path

import pytest
from helpers_data import make_dataset, small_cfg

from sam2elnet.engine.train_schedule import late_best_note


@pytest.mark.parametrize(
    ("best", "epochs", "validated", "fires"),
    [
        (115, 120, True, True),  # the roads-dev run of docs/training.md
        (27, 30, True, True),
        (25, 30, True, True),  # 25 > 0.8 x 30 = 24
        (24, 30, True, False),  # exactly 80 %: not "at the end"
        (6, 10, True, False),  # sos-2k section 0: converged inside the run
        (5, 5, True, True),
        (4, 4, True, False),  # fewer than 5 epochs say nothing about a curve
        (120, 120, False, False),  # no validation: the last epoch is always "best"
        (0, 10, True, False),  # no best epoch
    ],
)
def test_late_best_note_rule(best: int, epochs: int, validated: bool, fires: bool) -> None:
    note = late_best_note(best, epochs, 1320, validated)
    assert (note is not None) is fires
    if fires:
        assert note == (
            f"note: the best validation epoch was {best} of {epochs} (1,320 optimiser updates): "
            "validation was still improving at the end, so the model is probably under-trained; "
            f"more --epochs are likely to help, e.g. --epochs {2 * epochs} for a new run "
            "(docs/training.md, 'More updates')"
        )


def test_train_says_the_note_when_its_best_epoch_was_late(tmp_path: Path) -> None:
    """The wiring: a seeded 5-epoch micro run on an easy task still improves at epoch 5, and
    train prints the note once with the run's own update count (4 training images, batch 2)."""
    from sam2elnet.engine.train import train

    data = make_dataset(tmp_path / "d", n=8, size=32)
    lines: list[str] = []
    res = train(small_cfg(data, tmp_path / "run", epochs=5, fit_quality=False), echo=lines.append)
    assert res.best_epoch == 5
    notes = [s for s in lines if s.startswith("note: the best validation epoch")]
    assert notes == [late_best_note(5, 5, 10, True)]
