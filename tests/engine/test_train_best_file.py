"""``model.pt`` is written once, after the epochs, from the best epoch's weights kept in memory
and in ``last.pt`` (version 3): its weights, and ``--resume`` after a kill at any point."""

from __future__ import annotations

import os

os.environ.setdefault("SAM2ELNET_THREADS", "1")

from pathlib import Path
from typing import Any

import pytest
import torch
from helpers_data import make_dataset, small_cfg


def _trainable(path: Path) -> dict[str, torch.Tensor]:
    """Every weight of the model file (its state dict)."""
    from sam2elnet.model.io import load_model

    return load_model(path)[0].state_dict()


def _cfg(data: Path, out: Path, **kw: Any) -> Any:
    return small_cfg(data, out, epochs=3, val_fraction=0.34, fit_quality=False, **kw)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An uninterrupted 3-epoch run; each epoch's last.pt payload and every model.pt write."""
    import sam2elnet.engine.train_checkpoints as ck
    from sam2elnet.engine.train import train

    tmp = tmp_path_factory.mktemp("best")
    data = make_dataset(tmp / "d", n=6)
    payloads: list[dict[str, Any]] = []
    writes: list[Path] = []
    mp = pytest.MonkeyPatch()
    real_last = ck.save_last
    import sam2elnet.model as model_pkg

    real_model = model_pkg.save_model

    def last(path: Path, payload: dict[str, Any]) -> None:
        payloads.append(dict(payload))
        real_last(path, payload)

    def model(m: Any, path: Path, **kw: Any) -> Path:
        writes.append(Path(path))
        return real_model(m, path, **kw)

    mp.setattr(ck, "save_last", last)
    mp.setattr(model_pkg, "save_model", model)
    try:
        res = train(_cfg(data, tmp / "full"))
    finally:
        mp.undo()
    return {"data": data, "tmp": tmp, "res": res, "payloads": payloads, "writes": writes}


def test_model_pt_is_written_once_with_the_best_epochs_weights(run: dict[str, Any]) -> None:
    res, payloads = run["res"], run["payloads"]
    assert run["writes"] == [res.best_path]  # once, not on every improving epoch
    assert len(payloads) == 3
    best = payloads[res.best_epoch - 1]  # the epoch that was best, as last.pt saved it
    assert best["epoch"] == res.best_epoch - 1
    saved = _trainable(res.best_path)
    for k, v in best["model"].items():
        assert torch.equal(saved[k], v), k
    # every last.pt carries the best epoch so far's weights: the last one the run's best
    final = torch.load(res.last_path, weights_only=True)
    assert final["version"] == 3 and final["best_epoch"] == res.best_epoch - 1
    assert final["best_model"].keys() == best["model"].keys()
    assert all(torch.equal(final["best_model"][k], v) for k, v in best["model"].items())
    if res.best_epoch < 3:  # the later epochs trained on: their weights are not the best's
        assert any(not torch.equal(final["model"][k], v) for k, v in best["model"].items())


@pytest.mark.parametrize("kill_after", [1, 3])
def test_resume_after_a_kill_writes_the_same_model_pt(
    run: dict[str, Any], kill_after: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed right after last.pt of epoch 1 (no model.pt yet) or of the last epoch (before
    model.pt was written): --resume ends with the uninterrupted run's model.pt weights."""
    import sam2elnet.engine.train_checkpoints as ck
    from sam2elnet.engine.train import train

    out = run["tmp"] / f"killed{kill_after}"
    real = ck.save_last

    def die(path: Path, payload: dict[str, Any]) -> None:
        real(path, payload)
        if payload["epoch"] == kill_after - 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(ck, "save_last", die)
    with pytest.raises(KeyboardInterrupt):
        train(_cfg(run["data"], out))
    monkeypatch.undo()
    assert not (out / "model.pt").exists()
    resumed = train(_cfg(run["data"], out, resume=True))
    assert resumed.best_epoch == run["res"].best_epoch
    a, b = _trainable(run["res"].best_path), _trainable(resumed.best_path)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_of_a_version_2_state_keeps_or_rewrites_model_pt(
    run: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A version-2 last.pt has no best weights: when its own epoch was the best, model.pt is
    written from its weights; otherwise the model.pt beside it holds the best and is kept."""
    import shutil

    from sam2elnet.engine.train import train

    res = run["res"]
    for own_best in (True, False):
        out = run["tmp"] / f"v2_{own_best}"
        shutil.copytree(res.run_dir, out)
        st = torch.load(out / "last.pt", weights_only=True)
        st["version"] = 2
        del st["best_model"]
        st["best_epoch"] = st["epoch"] if own_best else 0
        torch.save(st, out / "last.pt")
        marker = torch.zeros(1)
        if not own_best:  # model.pt as a version-2 run left it: kept, not rewritten
            torch.save({"marker": marker}, out / "model.pt")
        else:
            (out / "model.pt").unlink()
        train(_cfg(run["data"], out, resume=True))
        if own_best:
            a, b = _trainable(out / "model.pt"), run["payloads"][-1]["model"]
            assert all(torch.equal(a[k], v) for k, v in b.items())
        else:
            assert torch.load(out / "model.pt", weights_only=True).keys() == {"marker"}


def test_resume_of_a_finished_run_keeps_its_model_pt(run: dict[str, Any]) -> None:
    """Nothing left to train: the model.pt the run finished with is not written again."""
    import shutil

    from sam2elnet.engine.train import train

    out = run["tmp"] / "finished"
    shutil.copytree(run["res"].run_dir, out)
    before = (out / "model.pt").read_bytes()
    res = train(_cfg(run["data"], out, resume=True))
    assert res.resumed == "all 3 epochs were done; only the steps after training ran"
    assert (out / "model.pt").read_bytes() == before
