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
        # a large set keeps 10 passes; 8 images do not loop for hours; an empty loader is 1 step
        (
            500,
            10,
            "about 1,200 optimiser updates at 500 per epoch, at least 10 epochs: 5,000 updates",
        ),
        (2, 300, "about 1,200 optimiser updates at 2 per epoch, capped at 300 epochs: 600 updates"),
        (0, 10, None),
    ],
)
def test_auto_epochs_aims_at_a_number_of_updates(steps: int, epochs: int, aim: str) -> None:
    assert (AUTO_UPDATES, AUTO_EPOCHS) == (1200, (10, 300))
    line = f"epochs: {epochs} (auto: {aim}; --epochs N sets them for a new run)"
    if aim is None:  # no full batch per epoch (more DDP ranks than images): the fewest epochs
        line = "epochs: 10 (auto: no full batch per epoch, so the fewest, 10)"
    assert auto_epochs(steps) == (epochs, line)


def test_epochs_default_is_auto_and_an_explicit_value_stays() -> None:
    assert TrainConfig(data="d", out="o").epochs is None
    assert TrainConfig(data="d", out="o", epochs=3).epochs == 3
    assert TrainConfig(data="d", out="o", epochs=" Auto ").epochs is None  # a config file's word


@pytest.mark.parametrize("cmd", ["train", "cv"])
def test_cli_epochs_takes_auto_or_a_number(cmd: str, tmp_path: Path, capsys) -> None:
    """``--epochs auto`` is the default said aloud (it used to fail: 'Input should be a valid
    integer'); a word that is neither is one error line naming the option, exit 2."""
    from sam2elnet.cli import main
    from sam2elnet.cli.shared_options import count_if_number

    assert count_if_number("AUTO") is None and count_if_number(None) is None
    assert count_if_number("12") == 12 and count_if_number("many") == "many"
    out = tmp_path / "o"
    base = [cmd, "--data", str(tmp_path / "missing"), "--out", str(out)]
    assert main([*base, "--epochs", "auto"]) == 2  # gets past the option, to the missing data
    err = capsys.readouterr().err.strip()
    assert "--epochs" not in err and "missing" in err
    assert main([*base, "--epochs", "many"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: invalid value for --epochs: 'many' (input should be a valid integer, unable to "
        "parse string as an integer; allowed: 1 <= x)"
    ]
    assert not out.exists()


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
            "epochs: 2 (auto: about 6 optimiser updates at 3 per epoch; --epochs N sets them for "
            "a new run)"
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


def test_resume_with_fewer_epochs_ends_the_run_early_and_keeps_its_best_epoch(
    tmp_path: Path,
) -> None:
    """A long (auto) run can end early: ``--resume --epochs K`` below the saved epochs trains up
    to epoch K with the saved learning-rate schedule, writes the best epoch so far as model.pt,
    and keeps config.yaml's epochs so a later ``--resume`` continues (it used to be refused:
    '--epochs 2 (saved: 3) would change it')."""
    from sam2elnet.engine.train import train

    data = make_dataset(tmp_path / "d", n=8, size=32)
    run = tmp_path / "run"
    kw = {"fit_quality": False, "val_fraction": 0.25}
    train(small_cfg(data, run, epochs=1, **kw))  # stands for a 3-epoch run killed after epoch 1
    saved = run / "config.yaml"
    saved.write_text(saved.read_text().replace("epochs: 1\n", "epochs: 3\n"))
    (run / "model.pt").unlink()  # a killed run has none
    lines: list[str] = []
    res = train(small_cfg(data, run, epochs=2, resume=True, **kw), echo=lines.append)
    assert (
        "ending the run after epoch 2 of 3 (--epochs 2 with --resume; the learning-rate schedule "
        "of 3 epochs is kept up to there); --resume without --epochs continues to epoch 3 later"
    ) in lines
    assert [s.split(":")[0] for s in lines if s.startswith("epoch ")] == ["epoch 2/3"]
    assert (run / "model.pt").is_file() and res.best_epoch in (1, 2)
    from sam2elnet.model import load_model

    rec = load_model(run / "model.pt")[1]["train"]  # what the network had: 2 of the 3 planned
    assert (rec["epochs"], rec["epochs_planned"]) == (2, 3)
    assert yaml.safe_load(saved.read_text())["epochs"] == 3
    assert len((run / "metrics.csv").read_text().splitlines()) == 1 + 2
    lines.clear()  # nothing left below K: the best epoch so far becomes model.pt at once
    train(small_cfg(data, run, epochs=1, resume=True, **kw), echo=lines.append)
    assert any(s.startswith("ending the run now (--epochs 1 with --resume; 2 of 3 epochs were")
               for s in lines)  # fmt: skip
    assert not [s for s in lines if s.startswith("epoch ")]
    lines.clear()  # and without --epochs the run goes on to its saved end
    train(small_cfg(data, run, epochs=None, resume=True, **kw), echo=lines.append)
    assert [s.split(":")[0] for s in lines if s.startswith("epoch ")] == ["epoch 3/3"]


def test_only_a_resumed_run_ends_early(tmp_path: Path) -> None:
    """A configuration copied from a run resumed with fewer epochs (the quality cross-fitting
    copies the run's config for each fold network) starts a new run in full: the fold networks
    of ``--resume --epochs 2 --quality-folds K`` were cut at epoch 2 of 3 while recording 3."""
    from sam2elnet.engine.train_setup import prepare_run_dir

    cfg = TrainConfig(data=tmp_path / "d", out=tmp_path / "fold1", epochs=3)
    cfg._stop_after = 2
    new, note = prepare_run_dir(cfg)
    assert (new._stop_after, note, cfg._stop_after) == (None, "", 2)


def test_auto_epochs_line_without_an_echo(tmp_path: Path, caplog) -> None:
    """train() with no echo and no progress bar says its lines through progress.line; the auto
    line used to shadow that function and the next line raised "'str' object is not callable"."""
    import sam2elnet.config as config
    from sam2elnet.engine.train import train

    data = make_dataset(tmp_path / "d", n=8, size=32)
    saved = (config.AUTO_UPDATES, config.AUTO_EPOCHS)
    try:
        config.AUTO_UPDATES, config.AUTO_EPOCHS = 3, (1, 300)
        with caplog.at_level("INFO", logger="sam2elnet.progress"):
            train(small_cfg(data, tmp_path / "run", epochs=None, fit_quality=False,
                            val_fraction=0.25))  # fmt: skip
    finally:
        config.AUTO_UPDATES, config.AUTO_EPOCHS = saved
    said = [r.getMessage() for r in caplog.records]
    assert (
        "epochs: 1 (auto: about 3 optimiser updates at 3 per epoch; --epochs N sets them for a new run)"
        in said
    )


def test_epochs_auto_on_the_command_line_overrides_a_config_file(
    tmp_path: Path, monkeypatch
) -> None:
    """``elnet train --config c.yaml --epochs auto``: the word reaches the config as given and
    overrides the file's ``epochs: 50`` (it was turned into "not given", so the file won)."""
    from helpers_cli import capture_train_configs

    from sam2elnet.cli import main

    got = capture_train_configs(monkeypatch)
    (tmp_path / "d").mkdir()
    (tmp_path / "f.yaml").write_text("epochs: 50\n")
    args = ["train", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "o"), "--config",
            str(tmp_path / "f.yaml")]  # fmt: skip
    for extra, epochs in (([], 50), (["--epochs", "auto"], None), (["--epochs", "7"], 7)):
        try:
            main([*args, *extra])
        except SystemExit:
            pass
        assert got[-1].epochs == epochs, extra
    c = tmp_path / "c.yaml"
    c.write_text("epochs: 50\n")
    base = {"data": tmp_path / "d", "out": tmp_path / "o"}
    assert TrainConfig.from_sources({**base, "epochs": "auto"}, config=c).epochs is None
    assert TrainConfig.from_sources(dict(base), config=c).epochs == 50
    c.write_text("epochs: auto\n")
    assert TrainConfig.from_sources(dict(base), config=c).epochs is None
