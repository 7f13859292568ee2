"""Training: run-folder outputs, config round trip, exact resume, fractions, DDP (gloo, 1 process)."""

from __future__ import annotations

import os

# Tiny tensors gain nothing from a 2nd thread, and on a shared machine OpenMP waits make each op
# cost a time slice; the library honours this variable (see engine.runtime.set_threads).
os.environ.setdefault("SAM2ELNET_THREADS", "1")

import csv
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers_data import make_dataset, small_cfg, trained_run

from sam2elnet.config import TrainConfig
from sam2elnet.errors import UserError


def test_train_writes_run_folder(tmp_path_factory: pytest.TempPathFactory) -> None:
    from sam2elnet.model import load_model

    r = trained_run(tmp_path_factory)
    run = r["run"]
    for name in ("model.pt", "last.pt", "config.yaml", "metrics.csv", "splits.json"):
        assert (run / name).is_file(), name
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [int(x["epoch"]) for x in rows] == [1, 2]
    for key in ("train_loss", "train_iou", "train_f1", "val_iou", "val_f1", "time_s"):
        assert np.isfinite(float(rows[-1][key])), key
    assert 0 <= float(rows[-1]["val_iou"]) <= 1
    assert [x["val_scale"] for x in rows] == ["native", "native"]  # how validation was scored
    cfg = TrainConfig.load(run / "config.yaml")
    assert cfg.size == "micro" and cfg.epochs == 2
    model, extra = load_model(r["model"])
    assert extra["normalization"]["method"] in ("fixed", "percentile", "stats")
    assert extra["train"]["n_train"] + extra["train"]["n_val"] == 8
    # the speed defaults a run used are recorded (an explicit batch is kept as given)
    assert extra["train"]["batch_size"] == 2 and extra["train"]["batch_rule"] == "given"
    assert extra["train"]["channels_last"] is (os.environ.get("SAM2ELNET_CHANNELS_LAST") != "0")
    # 4 val images (out of sample) + 4 training images (in sample), each in 2 modes = 16 samples
    assert extra["quality"]["fitted"] is True and extra["quality"]["status"] == "fitted"
    qs = extra["quality_summary"]
    assert (qs["n"], qs["n_heldout"], qs["n_in_sample"]) == (16, 8, 8)
    # only the adapters/stem/mask encoder/decoder train: the trunk stays frozen and identical
    assert not any(p.requires_grad for p in model.trunk.parameters())


def test_progress_bar_loss_raises_no_autograd_warning(tmp_path: Path) -> None:
    """With a progress bar, `elnet train` printed torch's 'warning: Converting a tensor with
    requires_grad=True to a scalar ...' (the bar's loss was read from the live graph)."""
    import warnings

    from sam2elnet.engine.train import train

    data = make_dataset(tmp_path / "d", n=4)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        train(small_cfg(data, tmp_path / "r", val_fraction=0.0, fit_quality=False, progress=True))
    assert not [w for w in seen if "requires_grad" in str(w.message)], [
        str(w.message) for w in seen
    ]


def test_trunk_is_unchanged_by_training(tmp_path: Path) -> None:
    from sam2elnet.engine.train import train
    from sam2elnet.model import ModelConfig, build_model
    from sam2elnet.model.io import load_model

    data = make_dataset(tmp_path / "d", n=4)
    res = train(small_cfg(data, tmp_path / "r", val_fraction=0.0, fit_quality=False))
    state = load_model(res.best_path)[0].state_dict()  # the model file embeds the random trunk
    torch.manual_seed(0)
    fresh = build_model(ModelConfig(size="micro", in_bands=3)).state_dict()
    trunk_keys = [k for k in fresh if k.startswith("trunk.")]
    other = [k for k in fresh if not k.startswith("trunk.") and fresh[k].is_floating_point()]
    assert trunk_keys and all(torch.equal(state[k], fresh[k]) for k in trunk_keys)
    assert any(not torch.equal(state[k], fresh[k]) for k in other)


def _uninterrupted(tr: Any, tmp_path: Path) -> tuple[Path, dict[str, Any], Any]:
    """The resume tests' dataset, options and a 2-epoch run of them that was not stopped."""
    data = make_dataset(tmp_path / "d", n=8)  # 4 training images: 2 batches of 2 an epoch
    kw: dict[str, Any] = dict(epochs=2, val_fraction=0.34, fit_quality=False)
    return data, kw, tr.train(small_cfg(data, tmp_path / "full", **kw))


def _killed_after_epoch_1(tr: Any, cfg: TrainConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    """Train ``cfg`` and stop it (KeyboardInterrupt) right after epoch 1 was checkpointed."""
    import sam2elnet.engine.train_checkpoints as ck

    real_save = ck.save_last

    def save_then_die(path: Path, payload: dict[str, Any]) -> None:
        real_save(path, payload)
        raise KeyboardInterrupt

    monkeypatch.setattr(ck, "save_last", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        tr.train(cfg)
    monkeypatch.setattr(ck, "save_last", real_save)


def test_resume_equals_uninterrupted_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sam2elnet.engine.train as tr

    data, kw, full = _uninterrupted(tr, tmp_path)
    _killed_after_epoch_1(tr, small_cfg(data, tmp_path / "killed", **kw), monkeypatch)
    with pytest.raises(UserError, match="--resume"):
        tr.train(small_cfg(data, tmp_path / "killed", **kw))
    resumed = tr.train(small_cfg(data, tmp_path / "killed", resume=True, **kw))

    a = torch.load(full.last_path, weights_only=True)
    b = torch.load(resumed.last_path, weights_only=True)
    assert a["epoch"] == b["epoch"] == 1
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    assert [r["train_loss"] for r in full.history] == [r["train_loss"] for r in resumed.history]
    rows_a = (tmp_path / "full" / "metrics.csv").read_text().splitlines()
    rows_b = (tmp_path / "killed" / "metrics.csv").read_text().splitlines()
    strip = lambda rows: [",".join(r.split(",")[:11]) for r in rows]  # noqa: E731 (drop timings)
    assert strip(rows_a) == strip(rows_b)


def test_last_pt_leaves_the_frozen_trunk_out_and_checks_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sam2elnet.engine.train as tr
    from sam2elnet.errors import CheckpointError
    from sam2elnet.model.io import load_model

    data, kw, full = _uninterrupted(tr, tmp_path)
    state = torch.load(full.last_path, weights_only=True)
    assert state["version"] == 3
    model = load_model(full.best_path)[0]
    assert state["frozen"]["keys"]
    assert set(state["frozen"]["keys"]) <= {n for n, _ in model.named_parameters()}
    assert all(k.startswith("trunk.") for k in state["frozen"]["keys"])
    assert not set(state["frozen"]["keys"]) & set(state["model"])
    # every trainable weight is in the file (the adapters inside the trunk included)
    trained = {n for n, p in model.named_parameters() if n not in state["frozen"]["keys"]}
    assert trained and trained <= set(state["model"])

    # a resume whose rebuilt trunk differs from the one trained with stops with a clear error
    _killed_after_epoch_1(tr, small_cfg(data, tmp_path / "k", **kw), monkeypatch)
    # (first a copy resumes, and says so up front: where from, which epoch, the trunk checked)
    shutil.copytree(tmp_path / "k", tmp_path / "k2")
    said: list[str] = []
    tr.train(small_cfg(data, tmp_path / "k2", resume=True, **kw), echo=said.append)
    k2 = tmp_path / "k2"
    assert (
        f"resuming {k2} at epoch 2 of 2 (from {k2 / 'last.pt'}; frozen encoder weights checked)"
        in said
    )
    last = tmp_path / "k" / "last.pt"
    st = torch.load(last, weights_only=True)
    st["frozen"]["sha256"] = "0" * 64
    torch.save(st, last)
    with pytest.raises(CheckpointError, match="frozen encoder weights differ") as err:
        tr.train(small_cfg(data, tmp_path / "k", resume=True, **kw))
    # the way out it names works: a new run in the same folder without --resume is refused
    assert "another --out" in str(err.value) and "without --resume" not in str(err.value)


def test_a_version_1_resume_state_with_every_weight_still_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sam2elnet.engine.train as tr
    import sam2elnet.engine.train_checkpoints as ck

    data, kw, full = _uninterrupted(tr, tmp_path)
    # the layout before version 2: the whole state dict, no frozen record
    monkeypatch.setattr(ck, "trainable_state", lambda model, frozen: model.state_dict())
    _killed_after_epoch_1(tr, small_cfg(data, tmp_path / "k", **kw), monkeypatch)
    last = tmp_path / "k" / "last.pt"
    st = torch.load(last, weights_only=True)
    del st["frozen"]
    st["version"] = 1
    torch.save(st, last)
    monkeypatch.undo()  # the resumed run writes today's layout
    said: list[str] = []
    resumed = tr.train(small_cfg(data, tmp_path / "k", resume=True, **kw), echo=said.append)
    k = tmp_path / "k"
    assert f"resuming {k} at epoch 2 of 2 (from {k / 'last.pt'})" in said
    a = torch.load(full.last_path, weights_only=True)
    b = torch.load(resumed.last_path, weights_only=True)
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(v, b["model"][k]) for k, v in a["model"].items())


def test_auto_trunk_scale_is_recorded_in_config_yaml_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--domain auto without SAM2 weights: the trunk scale is resolved once the domain is
    detected (half, 2); config.yaml records 2 (not null), --resume without the option continues
    that run (said as auto) and a run started from that config.yaml builds the same network; an
    explicit other --trunk-scale is refused on resume."""
    import sam2elnet.engine.train as tr
    from sam2elnet.model import load_model

    data = make_dataset(tmp_path / "d", n=4)
    kw = dict(epochs=2, val_fraction=0.0, fit_quality=False, trunk_scale=None)
    run = tmp_path / "r"
    assert small_cfg(data, run, **kw).trunk_scale is None  # not resolved before training
    _killed_after_epoch_1(tr, small_cfg(data, run, **kw), monkeypatch)
    assert "trunk_scale: 2\n" in (run / "config.yaml").read_text()
    saved = TrainConfig.load(run / "config.yaml")
    assert saved.trunk_scale == 2
    lines: list[str] = []
    res = tr.train(small_cfg(data, run, resume=True, **kw), echo=lines.append)
    assert res.resumed == "continued at epoch 2 of 2"
    assert any(x.startswith("trunk at half resolution (auto without SAM2 weights") for x in lines)
    assert load_model(res.best_path)[0].config.trunk_scale == 2
    assert TrainConfig.load(run / "config.yaml").trunk_scale == 2
    with pytest.raises(UserError, match=r"--trunk-scale 1 \(saved: 2\)"):
        tr.train(small_cfg(data, run, resume=True, **{**kw, "trunk_scale": 1}))
    again = tr.train(saved.model_copy(update={"out": tmp_path / "again", "epochs": 1}))
    assert load_model(again.best_path)[0].config.trunk_scale == 2


def test_fraction_split_is_reproducible_and_disjoint(tmp_path: Path) -> None:
    from sam2elnet.engine.train import _prepare_data

    data = make_dataset(tmp_path / "d", n=10)
    a = _prepare_data(small_cfg(data, tmp_path / "r", fraction=0.5, val_fraction=0.2, seed=3))
    b = _prepare_data(small_cfg(data, tmp_path / "r", fraction=0.5, val_fraction=0.2, seed=3))
    assert a.splits == b.splits
    s = a.splits
    assert len(s["held_out"]) == 5 and len(s["train"]) + len(s["val"]) == 5 and len(s["val"]) >= 1
    assert not (set(s["train"]) & set(s["val"])) and not (set(s["train"]) & set(s["held_out"]))
    c = _prepare_data(small_cfg(data, tmp_path / "r", fraction=0.5, seed=4))
    assert c.splits["held_out"] != s["held_out"]
    d = _prepare_data(small_cfg(data, tmp_path / "r", max_train=2, val_fraction=0.0))
    assert len(d.splits["train"]) == 2


def test_config_yaml_round_trip_and_errors(tmp_path: Path) -> None:
    cfg = TrainConfig(
        data=tmp_path, out=tmp_path / "o", weights="none", precision="fp32", sensor=["palsar"]
    )
    assert cfg.weights is None and cfg.precision == "32"
    p = cfg.save(tmp_path / "c.yaml")
    assert TrainConfig.load(p) == cfg
    (tmp_path / "bad.yaml").write_text("epochs: [unclosed")
    with pytest.raises(UserError, match="bad.yaml"):
        TrainConfig.load(tmp_path / "bad.yaml")
    (tmp_path / "bad2.yaml").write_text("data: x\nout: y\nepochs: -1\n")
    with pytest.raises(UserError, match="epochs"):
        TrainConfig.load(tmp_path / "bad2.yaml")


def test_empty_data_folder_is_a_user_error(tmp_path: Path) -> None:
    from sam2elnet.engine.train import train

    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError):
        train(small_cfg(tmp_path / "empty", tmp_path / "r"))


def test_ddp_single_process_gloo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch.distributed as dist

    from sam2elnet.engine.train import train

    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    # no MASTER_PORT: one process takes port 0, any free one (a fixed or a probed port could be
    # taken by a concurrent test first); set, then deleted, so that the test's end removes the
    # one train() sets
    monkeypatch.setenv("MASTER_PORT", "")
    monkeypatch.delenv("MASTER_PORT")
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    data = make_dataset(tmp_path / "d", n=4)
    res = train(
        small_cfg(data, tmp_path / "r", distributed=True, val_fraction=0.25, fit_quality=False)
    )
    assert res.best_path.is_file() and len(res.history) == 1
    assert not dist.is_initialized()  # torn down again
    assert os.environ["MASTER_PORT"] == "0"


def test_resume_refusal_of_more_epochs_says_how_to_train_them(tmp_path: Path) -> None:
    """``--resume --epochs 8`` on a 6-epoch run was refused with no way forward; the line now
    gives the command that trains the 2 more epochs as a new run from the run's model."""
    from sam2elnet.engine.train_setup import resumed_config

    saved = TrainConfig(data=tmp_path / "d", out=tmp_path / "r", epochs=6)
    given = TrainConfig(data=tmp_path / "d", out=tmp_path / "r", epochs=8, resume=True)
    with pytest.raises(UserError) as err:
        resumed_config(saved, given, tmp_path / "r" / "config.yaml")
    assert str(err.value).endswith(
        "--epochs 8 (saved: 6) would change it: drop the option, or start a new run with "
        "another --out; to train 2 more epochs on top of this run, start a new run from its "
        f"model: elnet train --data {tmp_path / 'd'} --init-model {tmp_path / 'r' / 'model.pt'} "
        "--epochs 2 --out NEW_RUN (a new learning-rate schedule; run it after this run has "
        "finished)"
    )
    # another option changed with them: no such hint
    other = TrainConfig(data=tmp_path / "d", out=tmp_path / "r", epochs=8, lr=0.5)
    with pytest.raises(UserError) as err:
        resumed_config(saved, other, tmp_path / "r" / "config.yaml")
    assert "--init-model" not in str(err.value)
    # fewer epochs alone end the run early (test_auto_epochs): the saved schedule is kept
    fewer = TrainConfig(data=tmp_path / "d", out=tmp_path / "r", epochs=4, resume=True)
    cfg = resumed_config(saved, fewer, tmp_path / "r" / "config.yaml")
    assert (cfg.epochs, cfg._stop_after) == (6, 4)
    with pytest.raises(UserError):  # fewer epochs and another option: still a change
        resumed_config(saved, fewer.model_copy(update={"lr": 0.5}), tmp_path / "r" / "c.yaml")


def test_resume_refusal_names_the_option_given_not_the_trunk_scale_it_implies(
    tmp_path: Path,
) -> None:
    """--weights on the resume of a run without weights resolves --trunk-scale (auto) to 1; the
    refusal named ``--trunk-scale 1 (saved: None)`` too, an option the user never gave."""
    from sam2elnet.engine.train_setup import resumed_config

    saved = TrainConfig(data=tmp_path, out=tmp_path / "r")
    assert saved.trunk_scale is None  # auto, resolved once the domain is detected
    given = TrainConfig(data=tmp_path, out=tmp_path / "r", weights="w.pt", resume=True)
    assert given.trunk_scale == 1
    with pytest.raises(UserError) as err:
        resumed_config(saved, given, tmp_path / "r" / "config.yaml")
    assert "--weights 'w.pt' (saved: None)" in str(err.value)
    assert "--trunk-scale" not in str(err.value)
    # given explicitly (and alone) it is still named
    with pytest.raises(UserError, match=r"--trunk-scale 2 \(saved: 1\)"):
        resumed_config(given, TrainConfig(data=tmp_path, out=tmp_path / "r", weights="w.pt",
                                          trunk_scale=2), tmp_path / "c.yaml")  # fmt: skip


def test_training_decodes_each_image_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The training set is decoded once (data.load_cache), not once an epoch: the demo's 40
    epochs read their 25 pairs 40 times (1.4 s of a 57 s stage on 2 cores)."""
    import sam2elnet.data.datasets as datasets
    from sam2elnet.engine.train import train

    reads: list[str] = []
    real = datasets.read_image

    def counted(path: Any, *a: Any, **k: Any) -> Any:
        reads.append(Path(path).stem)
        return real(path, *a, **k)

    monkeypatch.setattr(datasets, "read_image", counted)
    data = make_dataset(tmp_path / "d", n=8)  # 4 training images: 2 batches of 2 an epoch
    res = train(small_cfg(data, tmp_path / "r", epochs=3, fit_quality=False))
    train_names = set(res.splits["train"])  # sample ids: the images' stems
    assert len(train_names) == 4
    assert sorted(r for r in reads if r in train_names) == sorted(train_names)
    # SAM2ELNET_TRAIN_CACHE_MB=0: no cache, every epoch decodes its images again (as before)
    reads.clear()
    monkeypatch.setenv("SAM2ELNET_TRAIN_CACHE_MB", "0")
    train(small_cfg(data, tmp_path / "r0", epochs=3, fit_quality=False))
    assert sorted(r for r in reads if r in train_names) == sorted([*train_names] * 3)


def test_a_bad_training_cache_limit_is_one_error_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    data = make_dataset(tmp_path / "d", n=4)
    env = {**os.environ, "SAM2ELNET_TRAIN_CACHE_MB": "lots", "PYTHONPATH": "src"}
    cmd = [sys.executable, "-m", "sam2elnet.cli", "train", "--data", str(data), "--out"]
    proc = subprocess.run(
        [*cmd, str(tmp_path / "r"), "--size", "micro", "--epochs", "1", "--image-size", "32"],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert lines == [
        "error: SAM2ELNET_TRAIN_CACHE_MB='lots' is not a whole number of MiB; set it to 0 (no "
        "cache of decoded training images) or a limit such as 256, or unset it"
    ]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "r").exists()  # refused before the run folder (or its lock) is made


def test_resume_says_when_the_images_changed_since_the_run_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run started with a corrupt file, interrupted, the file fixed, resumed: it went on with
    one image more and rewrote splits.json without a word (a user trial)."""
    import sam2elnet.engine.train as tr

    data = make_dataset(tmp_path / "d", n=8)
    good = (data / "images" / "s05.png").read_bytes()
    (data / "images" / "s05.png").write_bytes(good[:40])  # truncated: skipped
    cfg = small_cfg(data, tmp_path / "r", epochs=3, fit_quality=False)
    _killed_after_epoch_1(tr, cfg, monkeypatch)
    (data / "images" / "s05.png").write_bytes(good)  # fixed
    resumed = cfg.model_copy(update={"resume": True})
    said: list[str] = []
    tr.train(resumed, echo=said.append)
    notes = [s for s in said if s.startswith("note: the images differ")]
    assert len(notes) == 1, said
    assert "set: 1 image more (s05)" in notes[0]
    assert "the resumed epochs train on the images found now" in notes[0]
    said.clear()
    tr.train(resumed, echo=said.append)  # finished: the same images as recorded
    assert not [s for s in said if s.startswith("note: the images differ")], said


def test_quality_evaluator_fit_prints_its_progress_lines(tmp_path: Path, caplog) -> None:
    """A user trial: after the last epoch ``elnet train --no-progress`` printed nothing for
    105 s while the quality evaluator predicted every validation and training image at full
    size. Now it says what it does, then the closing line of its progress (a bar on a
    terminal): 4 val + 4 training images, each in 2 modes = 16 samples."""
    import logging
    import re

    from sam2elnet.engine.train import train
    from sam2elnet.utils.progress import LOGGER_NAME

    data = make_dataset(tmp_path / "d", n=8)
    said: list[str] = []
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        train(small_cfg(data, tmp_path / "r"), echo=said.append)
    msgs = [r.getMessage() for r in caplog.records if r.name == LOGGER_NAME]
    fit = [m for m in msgs if m.startswith("quality evaluator")]
    assert len(fit) == 1 and re.fullmatch(
        r"quality evaluator: 8/8 img in \d+\.\d s \(\d+\.\d\d img/s\), samples 16", fit[0]
    ), msgs
    announced = [m for m in said if m.startswith("fitting the quality evaluator")]
    assert announced == [
        "fitting the quality evaluator on 8 images (4 held out, 4 in sample): predicting them "
        "at full size ..."
    ], said
    assert said.index(announced[0]) == len(said) - 1  # after the epoch line, last of train's
    caplog.clear()
    said.clear()
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        train(small_cfg(data, tmp_path / "r2", fit_quality=False), echo=said.append)
    msgs = [r.getMessage() for r in caplog.records if r.name == LOGGER_NAME]
    assert not [m for m in msgs if "quality evaluator" in m], msgs
    assert not [m for m in said if "quality evaluator" in m], said
    assert any(m.startswith("epoch 1/1: ") for m in said), said
