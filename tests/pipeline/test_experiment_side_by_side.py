"""The experiment's downstream U-Nets trained side by side (worker processes, one thread each)
give table 1 exactly as trained one after another, and each stage says its training's time."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers_data import tiny_experiment_config

from sam2elnet.engine.downstream_pool import pool_workers
from sam2elnet.pipeline.experiment import run_experiment


def _table1(out: Path) -> list[tuple]:
    saved = json.loads((out / "results.json").read_text())
    return [
        (r["setting"], r.get("iou"), r.get("f1"), r.get("train_images")) for r in saved["table1"]
    ]


def test_table1_is_the_same_in_turn_and_side_by_side(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from sam2elnet.data.synthetic import generate_dataset

    data = tmp_path / "data"
    generate_dataset(data, task="oil-spill", count=12, size=48, seed=3, progress=False)
    out = tmp_path / "exp"
    monkeypatch.setenv("SAM2ELNET_THREADS", "1")  # one at a time
    run_experiment(tiny_experiment_config(data, out, progress=True))
    in_turn = _table1(out)
    # table 2's label IoU needs no U-Net: it is scored while they train (in turn: before them)
    done = {m.stem: json.loads(m.read_text())["finished"] for m in (out / "stages").glob("*.json")}
    scored = [v for k, v in done.items() if k.startswith("labelscore_")]
    trained = [v for k, v in done.items() if k.startswith("downstream_")]
    assert scored and trained and max(scored) < min(trained), done
    per_image = (out / "per_image.csv").read_text()
    capsys.readouterr()
    # the downstream trainings again, side by side
    for m in (out / "stages").glob("downstream_*.json"):
        m.unlink()
    shutil.rmtree(out / "downstream" / "by_fingerprint")
    monkeypatch.setenv("SAM2ELNET_THREADS", "2")
    r = run_experiment(tiny_experiment_config(data, out, progress=True))
    err = capsys.readouterr().err
    assert _table1(out) == in_turn
    assert (out / "per_image.csv").read_text() == per_image
    ran = [k for k, v in r["stages"].items() if k.startswith("downstream_") and v == "ran"]
    assert len(ran) >= 2, r["stages"]
    assert "stage elnet: done before, skipped" in err
    # five on two cores: three at a time (engine.downstream_pool.pool_workers), 2.5 trainings'
    # time instead of three rounds with the last alone
    want = pool_workers(len(ran), "cpu", 2)
    assert want == 3 or len(ran) != 5
    assert f"downstream: {len(ran)} trainings, {want} at a time on 2 cores (one CPU thread" in err
    # every downstream stage says the time its own training took (not 0, not a missing entry)
    for name in ran:
        assert r["stage_seconds"][name] > 0, (name, r["stage_seconds"])
