"""Model selection follows the training mix: ``val_iou = (1 - coarse_prob) * annotation +
coarse_prob * enhancement`` (one definition, recorded in the model file and ``last.pt``; an old
``last.pt`` is rescored on ``--resume``)."""

from __future__ import annotations

import os

os.environ.setdefault("SAM2ELNET_THREADS", "1")

import csv
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers_data import make_dataset, small_cfg

from sam2elnet.engine.train_metrics import (
    resumed_selection,
    selection_iou,
    selection_rule,
    selection_weights,
    val_text,
)


def test_selection_weights_follow_the_training_mix() -> None:
    assert selection_weights(0.0) == (1.0, 0.0)
    assert selection_weights(0.5) == (0.5, 0.5)
    assert selection_weights(1.0) == (0.0, 1.0)
    assert selection_weights(0.25) == (0.75, 0.25)
    for bad in (-0.1, 1.5, math.nan):
        with pytest.raises(ValueError, match="coarse_prob"):
            selection_weights(bad)


def test_selection_iou_values() -> None:
    a, e = 0.3, 0.8
    assert selection_iou(a, e, 0.0) == pytest.approx(0.3)  # annotation only
    assert selection_iou(a, e, 1.0) == pytest.approx(0.8)  # enhancement only
    assert selection_iou(a, e, 0.5) == pytest.approx(0.55)  # the mean (the old rule)
    assert selection_iou(a, e, 0.25) == pytest.approx(0.75 * 0.3 + 0.25 * 0.8)
    # the default is bit-identical to the old 0.5 * (a + e)
    for a, e in ((0.1234567, 0.7654321), (1 / 3, 2 / 7), (0.0, 1.0)):
        assert selection_iou(a, e, 0.5) == 0.5 * (a + e)
    # a mode of weight 0 is left out entirely (its NaN does not spread)
    assert selection_iou(math.nan, 0.8, 1.0) == pytest.approx(0.8)
    assert selection_iou(0.3, math.nan, 0.0) == pytest.approx(0.3)


def test_selection_rule_names_the_score() -> None:
    r = selection_rule(1.0)
    assert r["score"] == "val_iou"
    assert (r["annotate_weight"], r["enhance_weight"], r["coarse_prob"]) == (0.0, 1.0, 1.0)
    assert r["rule"] == (
        "val_iou = 0 x annotation IoU + 1 x enhancement IoU (the training mix, coarse_prob 1)"
    )
    assert selection_rule(0.5, by_loss=True)["score"] == "val_loss"
    assert selection_rule(0.5, validation=False)["score"] == "latest_epoch"


def test_val_text_shows_the_weights() -> None:
    row = {
        "val_loss": 0.399,
        "val_iou": 0.587,
        "val_iou_annotate": 0.501,
        "val_iou_enhance": 0.673,
        "val_coarse_iou": 0.61,
    }
    assert val_text(row, 0.5, roads=False) == (
        "val loss 0.3990 val IoU 0.587 (0.5 x annotation 0.501 + 0.5 x enhancement 0.673 from "
        "coarse 0.610)"
    )
    assert "(0 x annotation 0.501 + 1 x enhancement" in val_text(row, 1.0, roads=False)
    assert val_text({"val_loss": math.nan}, 0.5, roads=True) == "no validation split"


def test_val_text_says_undefined_road_measures() -> None:
    """A collapsed model predicts no road: correctness has no extracted length ("—", not 0)."""
    row = {"val_loss": 3.2, "val_iou": 0.0, "val_iou_annotate": 0.0, "val_iou_enhance": 0.0,
           "val_coarse_iou": 0.68, "val_road_quality": 0.0, "val_road_completeness": 0.0,
           "val_road_correctness": math.nan}  # fmt: skip
    assert val_text(row, 0.5, roads=True, road_buffer=3.0).endswith(
        "road quality 0.000 completeness 0.000 correctness — (buffer 3 px)"
    )


def _old_state(rows: list[tuple[float, float]], best: int) -> dict[str, Any]:
    """A last.pt payload of the old rule (plain mean, no rule in ``selection``); ``best`` 0-based."""
    hist = [
        {"epoch": i + 1, "val_iou": 0.5 * (a + e), "val_iou_annotate": a, "val_iou_enhance": e}
        for i, (a, e) in enumerate(rows)
    ]
    return {
        "history": hist,
        "epoch": len(hist) - 1,
        "best_epoch": best,
        "best_iou": hist[best]["val_iou"],
        "best_score": hist[best]["val_iou"],
        # validated at native scale: the rule alone differs (the mode: test_train_val_resume.py)
        "selection": {"validation": "native"},
    }


def test_resumed_selection_rescores_an_old_history() -> None:
    # epoch 1 won under the mean (0.6), enhancement-only training scores it 0.7 (epoch 2: 0.8)
    state = _old_state([(0.5, 0.7), (0.2, 0.8)], best=0)
    hist, best_iou, best_score = resumed_selection(state, 1.0, by_loss=False)
    assert [r["val_iou"] for r in hist] == pytest.approx([0.7, 0.8])
    assert best_iou == best_score == pytest.approx(0.7)  # model.pt holds epoch 1's weights
    assert state["history"][0]["val_iou"] == pytest.approx(0.6)  # the saved state is not changed
    # the default mix: same numbers as before
    hist, best_iou, _ = resumed_selection(state, 0.5, by_loss=False)
    assert [r["val_iou"] for r in hist] == [0.6, 0.5] and best_iou == 0.6
    # a state that records this rule, or selection by loss: unchanged
    new = {**state, "selection": selection_rule(1.0)}
    assert resumed_selection(new, 1.0, by_loss=False)[1:] == (0.6, 0.6)
    assert resumed_selection(state, 1.0, by_loss=True)[1:] == (0.6, 0.6)


def _metrics(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_enhancement_only_run_selects_on_enhancement_iou(tmp_path: Path) -> None:
    from sam2elnet.engine.train import train
    from sam2elnet.model import load_model

    data = make_dataset(tmp_path / "d", n=8)
    lines: list[str] = []
    kw = dict(epochs=3, val_fraction=0.5, fit_quality=False, coarse_prob=1.0)
    res = train(small_cfg(data, tmp_path / "r", **kw), echo=lines.append)
    enh = [r["val_iou_enhance"] for r in res.history]
    assert [r["val_iou"] for r in res.history] == enh  # annotation has weight 0
    assert res.best_epoch == 1 + max(range(len(enh)), key=lambda i: (enh[i], -i))
    assert res.best_val_iou == max(enh) == res.best_val_modes["enhance"]
    assert res.selection == selection_rule(1.0)
    _, extra = load_model(res.best_path)
    assert extra["train"]["selection"]["enhance_weight"] == 1.0
    assert extra["train"]["best_epoch"] == res.best_epoch
    assert [float(r["val_iou"]) for r in _metrics(res.run_dir)] == pytest.approx(enh, abs=1e-5)
    epoch_lines = [ln for ln in lines if ln.startswith("epoch ")]
    assert len(epoch_lines) == 3 and all("(0 x annotation" in ln for ln in epoch_lines)


# validation IoUs per epoch, scripted: the mean picks epoch 3, annotation epoch 1, enhancement 2
_ANNOTATE = [0.6, 0.2, 0.5]
_ENHANCE = [0.5, 0.7, 0.65]


@pytest.mark.parametrize(("coarse_prob", "best"), [(0.0, 1), (0.5, 3), (1.0, 2)])
def test_training_loop_selects_by_the_mix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, coarse_prob: float, best: int
) -> None:
    """The real validation pass and loop, with the per-mode IoUs scripted (``iou_f1`` of the
    validation module answers annotation, enhancement, coarse in turn)."""
    import sam2elnet.engine.train_metrics as tm
    from sam2elnet.engine.train import train
    from sam2elnet.model import load_model

    calls = {"n": 0}

    def scripted(tp: float, fp: float, fn: float) -> tuple[float, float]:
        epoch, mode = divmod(calls["n"], 3)
        calls["n"] += 1
        v = (_ANNOTATE[epoch], _ENHANCE[epoch], 0.4)[mode]
        return v, v

    monkeypatch.setattr(tm, "iou_f1", scripted)
    data = make_dataset(tmp_path / "d", n=6)
    cfg = small_cfg(
        data,
        tmp_path / "r",
        epochs=3,
        val_fraction=0.34,
        fit_quality=False,
        coarse_prob=coarse_prob,
    )
    res = train(cfg)
    assert calls["n"] == 9
    assert res.best_epoch == best
    want = [
        (1 - coarse_prob) * a + coarse_prob * e for a, e in zip(_ANNOTATE, _ENHANCE, strict=True)
    ]
    assert [r["val_iou"] for r in res.history] == pytest.approx(want)
    assert [r["val_f1"] for r in res.history] == pytest.approx(want)
    assert res.best_val_iou == pytest.approx(want[best - 1])
    _, extra = load_model(res.best_path)
    assert extra["train"]["best_epoch"] == best
    assert extra["train"]["selection"] == selection_rule(coarse_prob)


def test_resume_of_an_old_run_uses_the_new_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A last.pt written under the old rule (mean, no rule in ``selection``; validated at native
    scale) is continued with the training-mix rule: same best epoch and metrics as an
    uninterrupted run of this version."""
    import sam2elnet.engine.train as tr
    import sam2elnet.engine.train_checkpoints as ck

    data = make_dataset(tmp_path / "d", n=8)
    kw = dict(epochs=3, val_fraction=0.5, fit_quality=False, coarse_prob=1.0)
    full = tr.train(small_cfg(data, tmp_path / "full", **kw))

    real_save = ck.save_last

    def save_old_then_die(path: Path, payload: dict[str, Any]) -> None:
        old = {**payload, "selection": {"validation": payload["selection"]["validation"]}}
        old["history"] = [
            {**r, "val_iou": 0.5 * (r["val_iou_annotate"] + r["val_iou_enhance"])}
            for r in payload["history"]
        ]
        best = old["history"][payload["best_epoch"]]["val_iou"]
        old["best_iou"] = old["best_score"] = best
        real_save(path, old)
        if len(payload["history"]) == 2:
            raise KeyboardInterrupt  # killed after epoch 2 was checkpointed (old format)

    monkeypatch.setattr(ck, "save_last", save_old_then_die)
    with pytest.raises(KeyboardInterrupt):
        tr.train(small_cfg(data, tmp_path / "old", **kw))
    monkeypatch.setattr(ck, "save_last", real_save)
    state = torch.load(tmp_path / "old" / "last.pt", weights_only=True)
    assert state["selection"] == {"validation": "native"}
    resumed = tr.train(small_cfg(data, tmp_path / "old", resume=True, **kw))
    assert [r["val_iou"] for r in resumed.history] == [r["val_iou"] for r in full.history]
    assert [r["val_iou"] for r in resumed.history] == [
        r["val_iou_enhance"] for r in resumed.history
    ]
    assert resumed.best_epoch == full.best_epoch
    assert resumed.best_val_iou == full.best_val_iou
    assert torch.load(resumed.last_path, weights_only=True)["selection"] == selection_rule(1.0)
