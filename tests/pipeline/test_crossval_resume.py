"""`elnet cv` into a folder holding a run: only settings that change a fold's result are refused.

Before, the run's options were compared as given: ``--lr 0.001`` (the default) into a run made
without it, ``--weights w.pt`` into one made with ``--weights /abs/w.pt``, or another
``--in-domain-fraction`` into a k-fold run (which ignores it) were refused, and the message named
only ``train`` for any training option. Now the training options are compared as the folds'
training runs with them (the rule of ``elnet train --resume``: one ``same_setting``), and the
message names each flag with its saved value. No training here: the comparison runs before any.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from sam2elnet.cli import main
from sam2elnet.engine.train_setup import RESUME_MAY_CHANGE
from sam2elnet.errors import UserError
from sam2elnet.pipeline.crossval_config import CVConfig
from sam2elnet.pipeline.crossval_config import changed_options as changed

TRAIN = {"size": "micro", "epochs": 3, "image_size": 48}


def _cfg(tmp_path: Path, **kw: Any) -> CVConfig:
    base: dict[str, Any] = {"data": tmp_path / "data", "out": tmp_path / "cv", "folds": 3}
    train = {**TRAIN, **kw.pop("train", {})}
    return CVConfig(**{**base, "train": train, **kw})


def _record(cfg: CVConfig) -> dict[str, Any]:
    """What OUT/cv_config.json holds after the run of ``cfg`` started."""
    return {**cfg.identity(), "resolved": {"domain": "roads", "trunk_scale": 2}}


def test_runtime_train_options_are_resume_may_change_less_the_quality_evaluator() -> None:
    """One list: cv leaves out what `train --resume` may change, but not the quality evaluator
    (cv reports its Spearman); both are TrainConfig fields."""
    from sam2elnet.config import TRAIN_QUALITY_FIELDS, TRAIN_RUNTIME_FIELDS, TrainConfig

    assert set(TRAIN_RUNTIME_FIELDS) == RESUME_MAY_CHANGE - set(TRAIN_QUALITY_FIELDS)
    assert RESUME_MAY_CHANGE <= set(TrainConfig.model_fields)


def test_settings_that_change_no_result_are_not_refused(tmp_path: Path) -> None:
    rec = _record(_cfg(tmp_path))
    runtime = _cfg(
        tmp_path,
        progress=False,
        report=True,
        max_folds=1,
        batch_size=4,
        device="cpu",
        precision="32",
        train={"precision": "bf16", "device": "cpu", "num_workers": 2, "threads": 1},
    )
    assert changed(runtime, rec) == []
    # the defaults given explicitly: --lr 1e-3 into a run made without --lr, --modality auto
    without = _record(_cfg(tmp_path))
    assert "lr" not in without["train"]
    assert changed(_cfg(tmp_path, train={"lr": 1e-3}), without) == []
    # --epochs left out is auto (about 1,200 updates), so a number given later is another setting
    auto = _record(_cfg(tmp_path))
    auto["train"] = {k: v for k, v in TRAIN.items() if k != "epochs"}
    assert changed(_cfg(tmp_path, train={"epochs": 10}), auto) == ["--epochs 10 (saved: auto)"]
    assert changed(_cfg(tmp_path, train={"modality": "auto"}), rec) == []
    # a path written another way (absolute in the record, relative now)
    w = tmp_path / "w.pt"
    absolute = _record(_cfg(tmp_path, train={"weights": str(w)}))
    relative = _cfg(tmp_path, train={"weights": os.path.relpath(w)})
    assert relative.train["weights"] != str(w) and changed(relative, absolute) == []
    # the option the mode ignores
    assert changed(_cfg(tmp_path, in_domain_fraction=0.4), rec) == []
    xd = _record(_cfg(tmp_path, mode="cross-domain"))
    assert changed(_cfg(tmp_path, mode="cross-domain", folds=7), xd) == []
    # --road-buffer: the finished folds are scored again
    assert changed(_cfg(tmp_path, road_buffer=5.0), rec) == []


def test_settings_that_change_results_are_named_with_their_saved_values(tmp_path: Path) -> None:
    rec = _record(_cfg(tmp_path))
    assert changed(_cfg(tmp_path, train={"epochs": 5}), rec) == ["--epochs 5 (saved: 3)"]
    assert changed(_cfg(tmp_path, folds=4, train={"lr": 0.01}), rec)[0] == "--folds 4 (saved: 3)"
    # --quality/--no-quality, as elnet train: each named by its flag (was "left out" / "given")
    assert changed(_cfg(tmp_path, train={"fit_quality": False}), rec) == [
        "--no-quality (saved: --quality)"
    ]
    no_quality = _record(_cfg(tmp_path, train={"fit_quality": False}))
    assert changed(_cfg(tmp_path), no_quality) == ["--quality (saved: --no-quality)"]
    assert changed(_cfg(tmp_path, seed=1), rec) == ["--seed 1 (saved: 0)"]
    assert changed(_cfg(tmp_path, mode="cross-domain"), rec) == [
        "--mode 'cross-domain' (saved: 'kfold')"
    ]


def _recorded_micro_cv(tmp_path: Path) -> tuple[Path, Path]:
    """An empty --data folder and a cv --out folder whose cv_config.json records a 3-fold micro
    run of 3 epochs (nothing trained)."""
    data = tmp_path / "data"
    data.mkdir()
    out = tmp_path / "cv"
    out.mkdir()
    first = CVConfig(data=data, out=out, folds=3, train={"size": "micro", "epochs": 3})
    (out / "cv_config.json").write_text(json.dumps(_record(first)))
    return data, out


def test_cli_refuses_another_epochs_in_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 2, one `error:` line naming the flag, the saved value and what to do; nothing
    written (the run's record is as it was)."""
    data, out = _recorded_micro_cv(tmp_path)
    before = (out / "cv_config.json").read_bytes()
    base = ["cv", "--data", str(data), "--out", str(out), "--folds", "3", "--size", "micro"]
    rc = main([*base, "--epochs", "5", "--no-progress", "--report"])
    err = capsys.readouterr().err
    assert rc == 2 and err == (
        f"error: {out}: folder holds a cross-validation run with other settings: --epochs 5 "
        "(saved: 3); they would change its folds' results: give the saved values to continue "
        "it, or choose a new --out\n"
    )
    assert sorted(p.name for p in out.iterdir()) == ["cv_config.json"]
    assert (out / "cv_config.json").read_bytes() == before


def test_experiment_and_train_resume_take_a_path_written_another_way_as_the_same(
    tmp_path: Path,
) -> None:
    """One rule (options.same_setting) for cv, experiment and train --resume: before, an
    experiment refused `--weights w.pt` into a run made with `--weights /abs/w.pt`."""
    from sam2elnet.config import TrainConfig
    from sam2elnet.engine.train_setup import resumed_config
    from sam2elnet.pipeline.experiment_config import settings_diff

    w = tmp_path / "w.pt"
    assert settings_diff({"weights": str(w)}, {"weights": os.path.relpath(w)}, {}) == ([], [])
    assert settings_diff({"weights": str(w)}, {"weights": "none"}, {}) == ([], ["weights"])
    saved = TrainConfig(data=tmp_path, out=tmp_path / "run", weights=str(w), epochs=3)
    given = TrainConfig(data=tmp_path, out=tmp_path / "run", weights=os.path.relpath(w), epochs=3)
    assert resumed_config(saved, given, tmp_path / "config.yaml").weights == str(w)
    other = TrainConfig(data=tmp_path, out=tmp_path / "run", weights=str(w), epochs=4)
    with pytest.raises(UserError, match=r"--epochs 4 \(saved: 3\) would change it"):
        resumed_config(saved, other, tmp_path / "config.yaml")


def test_domain_given_as_the_run_decided_it_is_the_same_setting(tmp_path: Path) -> None:
    """`--domain roads` into a run whose auto detected roads (and no --domain into a run started
    with --domain roads) is the same domain: not refused (was `--domain 'roads' (saved:
    'auto')`); another domain still is."""
    from sam2elnet.pipeline.crossval_config import keep_recorded_domain

    auto_roads = _record(_cfg(tmp_path))  # auto, resolved roads
    assert changed(_cfg(tmp_path, domain="roads"), auto_roads) == []
    assert changed(_cfg(tmp_path, domain="other"), auto_roads) == [
        "--domain 'other' (saved: 'auto')"
    ]
    given = _record(_cfg(tmp_path, domain="roads"))
    assert changed(_cfg(tmp_path), given) == []
    assert changed(_cfg(tmp_path, domain="other"), given) == ["--domain 'other' (saved: 'roads')"]
    # the run goes on with its recorded value (the record stays as it was started)
    cfg, note = keep_recorded_domain(_cfg(tmp_path, domain="roads"), auto_roads)
    assert cfg.domain == "auto" and note is None
    cfg, note = keep_recorded_domain(_cfg(tmp_path), given)
    assert cfg.domain == "roads"
    assert note == "continuing with --domain roads, as this run was started (not given now)"


def test_cli_domain_equal_to_the_auto_choice_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI gets past the settings check (here to the empty --data folder's error)."""
    data, out = _recorded_micro_cv(tmp_path)
    base = ["cv", "--data", str(data), "--out", str(out), "--folds", "3", "--size", "micro"]
    capsys.readouterr()
    assert main([*base, "--epochs", "3", "--domain", "roads", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "other settings" not in err and err.startswith("error: "), err


def test_a_moved_fold_folder_is_reused_and_its_record_holds_no_path_of_it(tmp_path: Path) -> None:
    """fold.json held the fold's run folder as given (``out``: absolute, or relative to the
    working folder of the time): an ``elnet cv`` folder moved or copied, or resumed from another
    working folder, trained every fold again ("trained with other settings (out)"). The record
    now leaves the fold's own folders out, and an older record's are no setting."""
    from sam2elnet.pipeline.crossval_fold import fold_config
    from sam2elnet.pipeline.crossval_reuse import check_reuse, fold_settings

    said: list[str] = []
    old_root = tmp_path / "old" / "cv" / "folds" / "fold-1"
    cfg = _cfg(tmp_path)  # the run's folder now: tmp_path / "cv"
    root = cfg.out / "folds" / "fold-1"
    want = {
        "train_ids": ["a", "b"],
        "tests": {"test": ["c"]},
        "train": fold_settings(fold_config(cfg, root, "roads")),
    }
    assert not {"out", "data"} & set(want["train"])
    assert str(tmp_path) not in json.dumps(want)  # no path of the run's folder
    # a fold finished by the version before, in the folder's old place
    before = dict(want["train"], out=str(old_root / "run"), data=str(old_root / "train-data"))
    root.mkdir(parents=True)
    (root / "fold.json").write_text(json.dumps({**want, "train": before}))
    (root / "result.json").write_text(json.dumps({"fold": "fold-1", "tests": {}}))
    check_reuse(root, want, "fold-1", said.append)
    assert said == [] and (root / "result.json").is_file()  # reused, not trained again
    assert json.loads((root / "fold.json").read_text()) == want
    # a setting that does change the network is still found; a trained fold is not deleted
    # for it (fold folders copied from a run with other options): one error line names it
    epochs = want["train"]["epochs"]
    changed = dict(want, train=dict(want["train"], epochs=epochs + 1))
    with pytest.raises(UserError) as err:
        check_reuse(root, changed, "fold-1", said.append)
    assert str(err.value) == (
        f"{root}: fold-1 holds a trained network, but it was trained with other settings: --epochs "
        f"{epochs + 1} (saved: {epochs}); give the saved values to reuse it (hours of training, "
        "perhaps), or move the folder away to train it again"
    )
    assert said == [] and (root / "result.json").is_file()
    auto = dict(want, train=dict(want["train"], epochs=None))  # --epochs left out: auto
    with pytest.raises(UserError, match=rf"--epochs auto \(saved: {epochs}\)"):
        check_reuse(root, auto, "fold-1", said.append)
    # a fold that never finished training (no result.json, no trained.json): trained again
    (root / "result.json").unlink()
    (root / "run").mkdir()
    check_reuse(root, changed, "fold-1", said.append)
    assert said == ["fold-1: not reused: it was trained with other settings (epochs); "
                    "training it again"]  # fmt: skip
    assert not (root / "run").exists()  # the unfinished fold folder was cleared


def test_cli_quality_is_the_pair_of_elnet_train(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``elnet cv`` had only ``--no-quality``; it takes ``--quality/--no-quality`` as ``elnet
    train`` does (default: fit). ``--quality`` into a run made without either is the same
    setting (the CLI gets to the empty --data folder's error); ``--no-quality`` is refused."""
    from helpers_cli import cli_commands

    def flags(command: str) -> tuple[list[str], list[str]]:
        (param,) = [p for p in cli_commands()[command].params if "--no-quality" in p.secondary_opts]
        return param.opts, param.secondary_opts

    assert flags("cv") == flags("train") == (["--quality"], ["--no-quality"])
    data, out = _recorded_micro_cv(tmp_path)
    base = ["cv", "--data", str(data), "--out", str(out), "--folds", "3", "--size", "micro"]
    capsys.readouterr()
    assert main([*base, "--epochs", "3", "--quality", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {data}: ") and "other settings" not in err, err
    assert main([*base, "--epochs", "3", "--no-quality", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "other settings: --no-quality (saved: --quality); " in err, err


def test_a_run_recorded_before_auto_epochs_goes_on_with_its_10(tmp_path: Path) -> None:
    """A cv run started when ``--epochs`` left out meant 10 (no ``resolved.epochs_auto`` in its
    cv_config.json): the same command goes on with 10 and says so; ``--epochs 10`` is its
    setting, another number is refused naming the 10. Before, the record said auto and its
    folds said 10, and each refusal sent the user to the other."""
    from sam2elnet.pipeline.crossval_config import check_rerun

    def without_epochs() -> CVConfig:
        cfg = _cfg(tmp_path)
        return cfg.model_copy(
            update={"train": {k: v for k, v in cfg.train.items() if k != "epochs"}}
        )

    old = _record(without_epochs())  # left out, which then meant 10
    assert "epochs" not in old["train"] and "epochs_auto" not in old["resolved"]
    cfg, note = check_rerun(without_epochs(), old)
    assert cfg.train["epochs"] == 10
    assert note == (
        "continuing with --epochs 10, the default when this run was started (--epochs is auto "
        "since 2026-12-04)"
    )
    cfg, note = check_rerun(_cfg(tmp_path, train={"epochs": 10}), old)
    assert cfg.train["epochs"] == 10 and note is None
    with pytest.raises(UserError, match=r"--epochs 30 \(saved: 10\)"):
        check_rerun(_cfg(tmp_path, train={"epochs": 30}), old)
    new = {**old, "resolved": {**old["resolved"], "epochs_auto": True}}  # recorded since: auto
    cfg, note = check_rerun(without_epochs(), new)
    assert "epochs" not in cfg.train and note is None


def test_a_trained_fold_of_other_images_is_refused_not_deleted(tmp_path: Path) -> None:
    from sam2elnet.pipeline.crossval_fold import fold_config
    from sam2elnet.pipeline.crossval_reuse import check_reuse, fold_settings

    cfg = _cfg(tmp_path)
    root = cfg.out / "folds" / "fold-1"
    want = {"train_ids": ["a", "b"], "tests": {"test": ["c"]},
            "train": fold_settings(fold_config(cfg, root, "roads"))}  # fmt: skip
    root.mkdir(parents=True)
    (root / "fold.json").write_text(json.dumps({**want, "train_ids": ["a", "x"]}))
    (root / "result.json").write_text(json.dumps({"fold": "fold-1", "tests": {}}))
    said: list[str] = []
    with pytest.raises(UserError) as err:
        check_reuse(root, want, "fold-1", said.append)
    assert str(err.value) == (
        f"{root}: fold-1 holds a trained network, but it was trained on other images (did the "
        "data folder change?); use the data it was trained on to reuse it (hours of training, "
        "perhaps), or move the folder away to train it again"
    )
    assert (root / "result.json").is_file() and said == []


def test_a_reused_fold_with_older_records_reads_its_model_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A finished fold whose result.json predates the precision / trunk scale / quality
    evaluator fields takes them from run/model.pt: one read of the file (it was read twice, once
    by fold_trained_with and once for the quality evaluator's record), the same values."""
    from helpers_data import micro_model_file

    import sam2elnet.model.io as model_io
    from sam2elnet.pipeline.crossval_fold import fold_config, fold_want, run_fold
    from sam2elnet.pipeline.crossval_plan import Fold
    from sam2elnet.pipeline.crossval_score import NO_QUALITY

    cfg = _cfg(tmp_path)
    fold = Fold("fold-1", ["a", "b"], {"test": ["c"]})
    root = cfg.out / "folds" / "fold-1"
    micro_model_file(root / "run" / "model.pt", bands=3)
    (root / "fold.json").write_text(json.dumps(fold_want(fold, fold_config(cfg, root, "other"))))
    tests = {"test": {"iou": 0.5, "n_images": 1, "quality_spearman": None}}
    (root / "result.json").write_text(json.dumps({"fold": "fold-1", "tests": tests}))
    reads: list[Path] = []
    real = model_io.read_model_file

    def counted(path):  # noqa: ANN001, ANN202
        reads.append(Path(path))
        return real(path)

    monkeypatch.setattr(model_io, "read_model_file", counted)
    said: list[str] = []
    record, evaluations = run_fold(cfg, fold, {}, {}, "other", said.append)
    assert reads == [root / "run" / "model.pt"] and evaluations is None
    assert said == [f"fold-1: done before, reusing {root / 'result.json'}"]
    assert record["trunk_scale"] == 1 and record["quality_unfitted"] == NO_QUALITY
    assert record["tests"]["test"]["quality_spearman_why"]


def test_a_fold_of_a_relative_out_is_not_called_copied_in_from_another_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``elnet cv --out cv`` records its folds' ``run/config.yaml`` ``out`` as given
    (``cv/folds/fold-1/run``, relative to the folder cv ran in). A re-run into the same folder
    from another working folder (``--out ../cv``) resolved that against the new one, and cv.json
    / cv.md said every fold was "trained in another folder and copied in: fold-1 in
    `cv/folds/fold-1`". A fold copied from another ``--out`` is still named."""
    from sam2elnet.pipeline.crossval_reuse import made_in

    root = tmp_path / "proj" / "cv" / "folds" / "fold-1"
    (root / "run").mkdir(parents=True)
    (tmp_path / "proj" / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "proj" / "sub")
    for out in ("cv/folds/fold-1/run", "../cv/folds/fold-1/run", str(root / "run")):
        (root / "run" / "config.yaml").write_text(f"out: {out}\n")
        assert made_in(Path("../cv/folds/fold-1")) is None, out
    (root / "run" / "config.yaml").write_text("out: cv-node-a/folds/fold-1/run\n")
    assert made_in(Path("../cv/folds/fold-1")) == "cv-node-a/folds/fold-1"
    (root / "run" / "config.yaml").write_text("out: /node-a/cv/folds/fold-1/run\n")
    assert made_in(root) == "/node-a/cv/folds/fold-1"
