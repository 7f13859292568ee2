"""k-fold cross-fitting of the network for the quality evaluator (``--quality-folds``)."""

from __future__ import annotations

import os

os.environ.setdefault("SAM2ELNET_THREADS", "1")

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from helpers_data import make_dataset, small_cfg

from sam2elnet.config import QualityConfig, TrainConfig
from sam2elnet.data.load_cache import TRAIN_CACHE_BYTES
from sam2elnet.engine.quality_crossfit import FOLDS_DIR, check_crossfit, crossfit_folds
from sam2elnet.errors import UserError
from sam2elnet.utils.progress import LOGGER_NAME

_RUN: dict[str, Any] = {}


def _crossfit_run(tmp_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """8 images: 4 validation + 4 training, 2 folds of 2 (trained once per session)."""
    if not _RUN:
        from sam2elnet.engine.train import train

        root = tmp_factory.mktemp("crossfit")
        data = make_dataset(root / "data", n=8, size=32)
        q = {"crossfit_folds": 2, "crossfit_epochs": 1}
        cfg = small_cfg(data, root / "run", quality=q, batch_size=None)  # automatic batch size
        lines: list[str] = []  # its --no-progress lines (progress off, no echo: the logger)
        grab = logging.Handler(logging.INFO)
        grab.emit = lambda r: lines.append(r.getMessage())  # type: ignore[method-assign]
        plog = logging.getLogger(LOGGER_NAME)
        was = plog.level
        plog.addHandler(grab)
        plog.setLevel(logging.INFO)
        try:
            res = train(cfg)
        finally:
            plog.removeHandler(grab)
            plog.setLevel(was)
        _RUN.update(data=data, cfg=cfg, res=res, lines=lines)
    return _RUN


def test_crossfit_predictions_print_progress_lines(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The evaluator fit after the last epoch printed nothing for minutes (a user trial): each
    fold's held-out images (2) and the final fit's 4 validation images now have a closing
    progress line, after a line that says what is fitted."""
    lines = _crossfit_run(tmp_path_factory)["lines"]
    for f in (1, 2):
        got = [m for m in lines if re.match(rf"quality cross-fitting fold{f}/2: \d+/", m)]
        assert len(got) == 1 and re.fullmatch(
            rf"quality cross-fitting fold{f}/2: 2/2 img in \d+\.\d s \(\d+\.\d\d img/s\)", got[0]
        ), lines
    fit = [m for m in lines if m.startswith("quality evaluator")]
    assert len(fit) == 1 and re.fullmatch(
        r"quality evaluator: 4/4 img in \d+\.\d s \(\d+\.\d\d img/s\), samples 8", fit[0]
    ), lines
    assert (
        "fitting the quality evaluator on 4 images (4 held out), with 8 out-of-fold samples: "
        "predicting them at full size ..."
    ) in lines, lines
    # counted nouns: "for 1 epochs" and "(2 folds, 1 epochs each)" before
    assert any(
        m.startswith("quality cross-fitting fold1/2: training on 2 images for 1 epoch, predicting")
        for m in lines
    ), lines
    assert any(m.endswith("(2 folds, 1 epoch each)") for m in lines), lines


def test_folds_are_disjoint_cover_the_ids_and_are_stratified() -> None:
    ids = [f"i{j:02d}" for j in range(23)]
    empty = [j % 3 == 0 for j in range(23)]  # 8 empty labels
    folds = crossfit_folds(ids, 5, seed=3, empty=empty)
    flat = [i for f in folds for i in f]
    assert sorted(flat) == ids and len(flat) == len(set(flat))  # disjoint, covering
    assert sorted(len(f) for f in folds) == [4, 4, 5, 5, 5]
    n_empty = [sum(empty[ids.index(i)] for i in f) for f in folds]
    assert max(n_empty) - min(n_empty) <= 1  # 8 empty over 5 folds: 1 or 2 each
    # seeded and independent of the input order; another seed deals differently
    assert crossfit_folds(ids[::-1], 5, seed=3, empty=empty[::-1]) == folds
    assert crossfit_folds(ids, 5, seed=4, empty=empty) != folds


@pytest.mark.parametrize("k", [1, 5])
def test_bad_fold_counts_are_user_errors(k: int) -> None:
    with pytest.raises(UserError, match="--quality-folds"):
        check_crossfit(k, 4, "DATA")
    check_crossfit(0, 0)  # off: nothing to check


def test_quality_config_refuses_one_fold_and_keeps_old_configs() -> None:
    with pytest.raises(ValueError, match="one fold"):
        QualityConfig(crossfit_folds=1)
    assert QualityConfig().crossfit_folds == 0  # a config.yaml written before the option


def test_evaluator_is_fitted_on_out_of_fold_and_validation_samples(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from sam2elnet.model import load_model

    r = _crossfit_run(tmp_path_factory)
    run = Path(r["cfg"].out)
    splits = json.loads((run / "splits.json").read_text())
    train_ids, val_ids = splits["train"], splits["val"]
    assert (len(train_ids), len(val_ids)) == (4, 4)
    folds = json.loads((run / FOLDS_DIR / "folds.json").read_text())["folds"]
    assert sorted(i for f in folds for i in f) == sorted(train_ids)
    # each fold network trained on exactly the other fold, without a validation split
    for n, held in enumerate(folds, 1):
        fs = json.loads((run / FOLDS_DIR / f"fold{n}" / "splits.json").read_text())
        assert sorted(fs["train"]) == sorted(set(train_ids) - set(held)) and fs["val"] == []
    _, extra = load_model(r["res"].best_path)
    qs = extra["quality_summary"]
    # n_oof (4 training images x 2 modes) + n_val (4 x 2), no in-sample training predictions
    assert qs["fitted_on"]["method"] == "crossfit"
    assert (qs["fitted_on"]["n_crossfit"], qs["fitted_on"]["n_validation"]) == (8, 8)
    assert (qs["n"], qs["n_heldout"], qs["n_in_sample"]) == (16, 16, 0)
    assert qs["fitted_on"]["crossfit_folds"] == 2 and qs["fitted_on"]["crossfit_epochs"] == 1
    assert extra["quality"]["fitted"] is True
    from sam2elnet.engine.quality_fit import describe_summary

    line = describe_summary(qs)
    assert "8 out-of-fold samples of 2 cross-fitted networks + 8 validation samples" in line
    # the --target-precision threshold is chosen on all 16 out-of-sample pairs
    assert len(extra["quality"]["heldout_scores"]) == len(extra["quality"]["heldout_iou"]) == 16


def test_resume_reuses_finished_folds_and_refits_identically(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resumed run reuses every fold's saved samples (no fold network trains again) and
    refits the same evaluator: the fit is reproducible with a fixed seed."""
    import sam2elnet.engine.train as tr
    from sam2elnet.model import load_model

    r = _crossfit_run(tmp_path_factory)
    _, before = load_model(r["res"].best_path)
    real = tr.train
    calls: list[Path] = []

    def spy(cfg: TrainConfig, echo: Any = None) -> Any:
        calls.append(Path(cfg.out))
        return real(cfg, echo)

    monkeypatch.setattr(tr, "train", spy)
    res = tr._train(r["cfg"].model_copy(update={"resume": True}), None, TRAIN_CACHE_BYTES)
    assert calls == []  # the fold networks were not trained (or even resumed) again
    _, after = load_model(res.best_path)
    assert after["quality"] == before["quality"]
    a, b = before["quality_summary"], after["quality_summary"]
    assert a["spearman_oof"] == b["spearman_oof"] and a["fitted_on"] == b["fitted_on"]


def test_cli_rejects_fold_counts_with_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sam2elnet.cli import main

    data = make_dataset(tmp_path / "d", n=6, size=32)
    base = ["train", "--data", str(data), "--size", "micro", "--epochs", "1", "--image-size", "32"]
    base += ["--no-progress", "--val-fraction", "0.5"]
    # 6 images - 3 validation = 3 training images: 4 folds cannot be filled
    for k, needle in (("1", "--quality-folds"), ("4", "needs at least 4 training images")):
        out = tmp_path / f"r{k}"
        assert main([*base, "--out", str(out), "--quality-folds", k]) == 2
        err = capsys.readouterr().err
        lines = [x for x in err.splitlines() if x.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], err
        assert not (out / "model.pt").exists()  # refused before training


def test_train_ids_restrict_the_training_set(tmp_path: Path) -> None:
    from sam2elnet.engine.train_data import prepare_data

    data = make_dataset(tmp_path / "d", n=6, size=32)
    d = prepare_data(small_cfg(data, tmp_path / "r", train_ids=["s01", "s04"], val_fraction=0))
    assert [s.id for s in d.train_samples] == ["s01", "s04"] and d.val_samples == []
    with pytest.raises(UserError, match="1 of the 2 requested training ids is not a labelled"):
        prepare_data(small_cfg(data, tmp_path / "r", train_ids=["s01", "nope"]))
    assert d.splits["held_out"] == []


def test_experiment_passes_the_folds_through_and_old_runs_mean_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    import sam2elnet.engine.train as tr
    from sam2elnet.option_checks import check_options
    from sam2elnet.pipeline.experiment_config import ExperimentConfig, upgrade_identity
    from sam2elnet.pipeline.experiment_engine import train_elnet

    cfg = ExperimentConfig(
        data=tmp_path, out=tmp_path / "e", quality_folds=3, quality_fold_epochs=2
    )
    seen: list[TrainConfig] = []

    def fake_train(tcfg: TrainConfig, echo: Any = None) -> Any:
        seen.append(tcfg)
        return SimpleNamespace(
            best_path=tmp_path / "m.pt",
            best_epoch=1,
            best_val_iou=0.5,
            history=[],
            quality={},
            splits={},
            selection={},
        )

    monkeypatch.setattr(tr, "train", fake_train)
    train_elnet(cfg, tmp_path, tmp_path / "run", None)
    assert (seen[0].quality.crossfit_folds, seen[0].quality.crossfit_epochs) == (3, 2)
    # an experiment.json written before the option compares equal to today's default
    default = ExperimentConfig(data=tmp_path, out=tmp_path / "e").identity()
    old = {k: v for k, v in default.items() if not k.startswith("quality_fold")}
    assert upgrade_identity(old) == default
    with pytest.raises(UserError, match="--quality-folds"):
        check_options(ExperimentConfig, data=tmp_path, out=tmp_path / "e", quality_folds=1)


def test_resume_of_a_copied_run_stays_in_the_copy_and_applies_fold_epochs(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`elnet train --out COPY --resume` on a copied run folder writes only into COPY; a changed
    --quality-fold-epochs retrains the folds (their saved samples were made with other epochs);
    a changed training option is refused with one error line naming it and config.yaml."""
    import shutil

    import numpy as np

    from sam2elnet.cli import main
    from sam2elnet.model import load_model

    r = _crossfit_run(tmp_path_factory)
    orig = Path(r["cfg"].out)
    snapshot = {p: p.stat().st_mtime_ns for p in orig.rglob("*") if p.is_file()}
    copy = tmp_path / "copy"
    shutil.copytree(orig, copy)
    assert main(["train", "--out", str(copy), "--resume", "--quality-fold-epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in orig.rglob("*") if p.is_file()} == snapshot
    assert TrainConfig.load(copy / "config.yaml").out == copy
    assert TrainConfig.load(copy / "config.yaml").quality.crossfit_epochs == 2
    for n in (1, 2):  # each fold trained again, for 2 epochs, in the copy
        fdir = copy / FOLDS_DIR / f"fold{n}"
        with np.load(fdir / "oof.npz") as z:
            assert int(z["epochs"]) == 2
        assert TrainConfig.load(fdir / "config.yaml").out == fdir
    # the fold's log line says what it trains on: 2 of the 8 images
    assert (
        "no split folders found; 8 labelled pairs: training on 2, validation 0, unused 6 (not in "
        "the run's train_ids)"
    ) in out
    assert "--resume: all 1 epochs were done; only the steps after training ran" in out
    assert f"resuming {copy} after its last epoch (1 of 1 done)" in out  # not "epoch 2 of 1"
    _, extra = load_model(copy / "model.pt")
    assert extra["quality_summary"]["fitted_on"]["crossfit_epochs"] == 2
    # same epochs again: the folds' samples are reused, nothing retrains
    assert main(["train", "--out", str(copy), "--resume", "--quality-fold-epochs", "2"]) == 0
    assert "reusing" in capsys.readouterr().out
    # a training option that differs from the saved run is refused, nothing written
    before = (copy / "model.pt").stat().st_mtime_ns
    assert main(["train", "--out", str(copy), "--resume", "--epochs", "5"]) == 2
    err = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
    assert len(err) == 1 and err[0].startswith("error:"), err
    assert "--epochs 5 (saved: 1)" in err[0] and "config.yaml" in err[0]
    assert (copy / "model.pt").stat().st_mtime_ns == before


def test_fold_cache_is_tied_to_the_final_network(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """A fold's ``oof.npz`` holds the *final* network's embeddings: with another final network
    they are recomputed (the fold network is not trained again), and a cache from before the
    digest was recorded is recomputed too."""
    import shutil

    import numpy as np
    import torch

    from sam2elnet.engine.quality_crossfit import crossfit_samples, weights_digest
    from sam2elnet.engine.quality_fit import collect_quality_samples
    from sam2elnet.engine.quality_items import quality_items
    from sam2elnet.engine.train_data import prepare_data
    from sam2elnet.model import load_model, save_model

    r = _crossfit_run(tmp_path_factory)
    copy = tmp_path / "run"
    shutil.copytree(Path(r["cfg"].out), copy)
    cfg = r["cfg"].model_copy(update={"out": copy})
    data = prepare_data(cfg)
    net, extra = load_model(copy / "model.pt")
    digest = weights_digest(net)
    assert digest == weights_digest(load_model(copy / "model.pt")[0])  # same weights, same id
    fold1 = copy / FOLDS_DIR / "fold1" / "oof.npz"
    with np.load(fold1) as z:
        before = {k: z[k] for k in z.files}
    assert str(before["final_model"]) == digest

    # another final network: every decoder weight nudged
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.startswith("decoder."):
                p.add_(0.05 * torch.randn_like(p))
    other = tmp_path / "other.pt"
    save_model(net, other, extra=extra)
    other_digest = weights_digest(load_model(other)[0])
    assert other_digest != digest

    def no_training(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("a fold network was trained again")

    lines: list[str] = []
    got = crossfit_samples(cfg, data, other, no_training, lines.append, batch_size=2)
    assert sum("recomputing their embeddings" in ln for ln in lines) == 2
    with np.load(fold1) as z:
        after = {k: z[k] for k in z.files}
    assert str(after["final_model"]) == other_digest
    for k in ("features", "ious", "modes", "index", "ids"):  # the fold network's part stands
        assert np.array_equal(after[k], before[k]), k
    assert not np.allclose(after["embeddings"], before["embeddings"])
    # the new embeddings are exactly what the other final network gives on fold 1's images
    held = [str(i) for i in before["ids"]]
    by_id = {s.id: s for s in data.train_samples}
    items = quality_items([by_id[i] for i in held], data.norm, data.in_bands, cfg.seed)
    net.eval()
    want = collect_quality_samples(
        net, items, torch.device("cpu"), cfg.precision, cfg.quality.tta, 2
    )[1]
    assert np.array_equal(after["embeddings"], want)
    assert np.array_equal(got.embeddings[: len(want)], want)

    # the same final network again: reused as is
    lines.clear()
    crossfit_samples(cfg, data, other, no_training, lines.append, batch_size=2)
    assert sum("done before, reusing" in ln for ln in lines) == 2
    # a cache from before the digest was recorded: its embeddings cannot be trusted
    np.savez(fold1, **{k: v for k, v in before.items() if k != "final_model"})
    lines.clear()
    crossfit_samples(cfg, data, copy / "model.pt", no_training, lines.append, batch_size=2)
    assert sum("recomputing their embeddings" in ln for ln in lines) == 2  # fold2: other net
    with np.load(fold1) as z:
        assert str(z["final_model"]) == digest
        assert np.array_equal(z["embeddings"], before["embeddings"])


def test_fold_samples_made_at_crop_size_are_predicted_again_not_retrained(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """An ``oof.npz`` from before native-scale samples (no ``items`` entry) is predicted again by
    its finished fold network: nothing trains, in a copied run folder too."""
    import shutil

    import numpy as np

    from sam2elnet.engine.quality_crossfit import ITEMS, crossfit_samples
    from sam2elnet.engine.train_data import prepare_data

    r = _crossfit_run(tmp_path_factory)
    copy = tmp_path / "run"
    shutil.copytree(Path(r["cfg"].out), copy)
    cfg = r["cfg"].model_copy(update={"out": copy})
    fold1 = copy / FOLDS_DIR / "fold1"
    with np.load(fold1 / "oof.npz") as z:
        before = {k: z[k] for k in z.files}
    assert str(before["items"]) == ITEMS
    old = {k: v for k, v in before.items() if k != "items"}  # as runs before it wrote it
    np.savez(fold1 / "oof.npz", **old)

    def no_training(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("a fold network was trained again")

    lines: list[str] = []
    crossfit_samples(cfg, prepare_data(cfg), copy / "model.pt", no_training, lines.append, 2)
    assert sum("predicting them again at native scale" in ln for ln in lines) == 1
    assert sum("done before, reusing" in ln for ln in lines) == 1  # fold 2
    with np.load(fold1 / "oof.npz") as z:
        after = {k: z[k] for k in z.files}
    assert str(after["items"]) == ITEMS
    for k in ("features", "ious", "modes", "index", "ids"):  # 32 px data: native = crop size
        assert np.allclose(after[k], before[k]) if k != "ids" else (after[k] == before[k]).all()
