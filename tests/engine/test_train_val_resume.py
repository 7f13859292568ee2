"""``--resume`` across the change of validation scale (2026-12-03: native-scale windows instead of
images resized to the crop size): ``last.pt`` records how its epochs were validated
(``selection["validation"]``); a run whose epochs were validated another way (no record: resized)
keeps training but chooses its best epoch again from the resumed epoch on, with one warning."""

from __future__ import annotations

import csv
import logging
import math
import os

os.environ.setdefault("SAM2ELNET_THREADS", "1")

from pathlib import Path
from typing import Any

import pytest
import torch
from helpers_data import make_dataset, small_cfg

from sam2elnet.engine.train_metrics import OLD_VAL_MODE, resumed_selection, selection_rule
from sam2elnet.engine.train_val import VAL_EVAL_MODE


def _state(selection: dict[str, Any] | None, epochs_done: int = 2) -> dict[str, Any]:
    hist = [{"epoch": i + 1, "val_iou": 0.6 + 0.1 * i} for i in range(epochs_done)]
    state = {
        "history": hist,
        "epoch": epochs_done - 1,
        "best_epoch": epochs_done - 1,
        "best_iou": hist[-1]["val_iou"],
        "best_score": hist[-1]["val_iou"],
    }
    if selection is not None:
        state["selection"] = selection
    return state


def test_the_selection_record_names_the_validation_mode() -> None:
    assert VAL_EVAL_MODE == "native" and OLD_VAL_MODE == "resized"
    assert selection_rule(0.5)["validation"] == "native"
    assert selection_rule(0.5, by_loss=True)["validation"] == "native"
    assert selection_rule(0.5, validation=False)["validation"] is None


def test_resumed_selection_restarts_after_another_validation_mode(
    caplog: pytest.LogCaptureFixture,
) -> None:
    old = {k: v for k, v in selection_rule(0.5).items() if k != "validation"}  # before the change
    with caplog.at_level(logging.WARNING, logger="sam2elnet.engine.train"):
        hist, best_iou, best_score = resumed_selection(_state(old), 0.5, False, True, 3)
    assert best_score == -math.inf  # the next epoch becomes the best whatever its score
    assert best_iou == pytest.approx(0.7) and [r["val_iou"] for r in hist] == [0.6, 0.7]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "epochs 1-2 of this run were validated with images resized" in warnings[0]
    assert "chosen again from epoch 3 on" in warnings[0]
    # selection by loss: the loss of resized images is not comparable either
    assert resumed_selection(_state(None), 0.5, True, True, 3)[2] == -math.inf
    caplog.clear()
    # same mode, no validation split (latest epoch wins anyway), no epoch left: no warning
    assert resumed_selection(_state(selection_rule(0.5)), 0.5, False, True, 3)[2] == 0.7
    no_val = selection_rule(0.5, validation=False)
    assert resumed_selection(_state(no_val), 0.5, False, False, 3)[2] == 0.7
    assert resumed_selection(_state(old, epochs_done=3), 0.5, False, True, 3)[2] == -math.inf
    assert caplog.records == []


def test_resumed_rows_without_the_column_get_the_recorded_mode() -> None:
    """History rows saved before metrics.csv had val_scale: the mode last.pt records (none:
    resized); rows without validation stay empty; rows that have it keep it."""
    old = {k: v for k, v in selection_rule(0.5).items() if k != "validation"}
    hist, _, _ = resumed_selection(_state(old), 0.5, False, True, 3)
    assert [r["val_scale"] for r in hist] == [OLD_VAL_MODE, OLD_VAL_MODE]
    hist, _, _ = resumed_selection(_state(selection_rule(0.5)), 0.5, False, True, 3)
    assert [r["val_scale"] for r in hist] == ["native", "native"]
    state = _state(None)
    state["history"][0]["val_iou"] = math.nan  # an epoch without validation
    state["history"][1]["val_scale"] = "native"
    hist, _, _ = resumed_selection(state, 0.5, False, True, 3)
    assert [r["val_scale"] for r in hist] == ["", "native"]


def test_resume_of_a_resized_validation_run_selects_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Epochs 1-2 saved without the record (old style), killed, resumed: epoch 3 scores below
    the old best (scripted validation IoUs) and still becomes the best epoch, once."""
    import sam2elnet.engine.train as tr
    import sam2elnet.engine.train_checkpoints as ck
    import sam2elnet.engine.train_metrics as tm

    ious = [0.6, 0.7, 0.5]
    calls = {"n": 0}

    def scripted(tp: float, fp: float, fn: float) -> tuple[float, float]:
        v = ious[calls["n"] // 3]  # annotation, enhancement, coarse per epoch
        calls["n"] += 1
        return v, v

    monkeypatch.setattr(tm, "iou_f1", scripted)
    real_save = ck.save_last

    def save_old_then_die(path: Path, payload: dict[str, Any]) -> None:
        sel = {k: v for k, v in payload["selection"].items() if k != "validation"}
        hist = [{k: v for k, v in r.items() if k != "val_scale"} for r in payload["history"]]
        real_save(path, {**payload, "selection": sel, "history": hist})
        if len(payload["history"]) == 2:
            raise KeyboardInterrupt  # killed after epoch 2 was checkpointed

    data = make_dataset(tmp_path / "d", n=6)
    kw = dict(epochs=3, val_fraction=0.34, fit_quality=False)
    monkeypatch.setattr(ck, "save_last", save_old_then_die)
    with pytest.raises(KeyboardInterrupt):
        tr.train(small_cfg(data, tmp_path / "r", **kw))
    monkeypatch.setattr(ck, "save_last", real_save)
    saved = torch.load(tmp_path / "r" / "last.pt", weights_only=True)
    assert "validation" not in saved["selection"]  # an old-style run state
    with caplog.at_level(logging.WARNING, logger="sam2elnet.engine.train"):
        res = tr.train(small_cfg(data, tmp_path / "r", resume=True, **kw))
    assert calls["n"] == 9
    assert [r["val_iou"] for r in res.history] == pytest.approx(ious)
    assert res.best_epoch == 3 and res.best_val_iou == pytest.approx(0.5)
    # each row says how it was validated: the old epochs resized, the resumed one native
    assert [r["val_scale"] for r in res.history] == ["resized", "resized", "native"]
    with open(tmp_path / "r" / "metrics.csv", newline="") as fh:
        assert [r["val_scale"] for r in csv.DictReader(fh)] == ["resized", "resized", "native"]
    notes = [r.getMessage() for r in caplog.records if "not comparable" in r.getMessage()]
    assert len(notes) == 1 and "from epoch 3 on" in notes[0]
    from sam2elnet.model import load_model

    _, extra = load_model(res.best_path)
    assert extra["train"]["best_epoch"] == 3
    assert extra["train"]["selection"]["validation"] == "native"
    state = torch.load(res.last_path, weights_only=True)
    assert state["selection"]["validation"] == "native" and state["best_epoch"] == 2
