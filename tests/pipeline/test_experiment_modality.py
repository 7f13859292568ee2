"""``elnet experiment --modality``: a flat grey SAR folder (SOS-like JPEGs copied into images/ +
masks/, which the pixels cannot tell from panchromatic optical) is read as SAR by every stage
when told; experiments made before the option continue with their finished stages."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers_data import tiny_experiment_config
from helpers_logs import logs_warning

from sam2elnet.cli import main
from sam2elnet.errors import UserError
from sam2elnet.pipeline.experiment import run_experiment
from sam2elnet.pipeline.experiment_config import upgrade_identity
from sam2elnet.pipeline.experiment_split import make_split, norm_config, write_subset


@pytest.fixture(scope="module")
def grey(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A flat images/ + masks/ folder of grey 8-bit PNGs and no dataset.json (the synthetic
    oil-spill set with its modality record removed)."""
    from sam2elnet.data.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("synth")
    generate_dataset(root, task="oil-spill", count=12, size=48, seed=3, progress=False)
    flat = tmp_path_factory.mktemp("grey")
    for sub in ("images", "masks"):
        shutil.copytree(root / sub, flat / sub)
    return flat


def test_given_modality_reaches_split_subsets_training_and_downstream_norm(
    grey: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch
) -> None:
    """auto: optical assumed with the warning naming --modality sar; --modality sar: the split,
    the subsets' dataset.json, SAM2-ELNet's TrainConfig and the downstream normalisation are SAR
    (fixed 0..255 scale, one band)."""
    import sam2elnet.engine.train as train_mod
    from sam2elnet.pipeline.experiment_engine import train_elnet

    with logs_warning(caplog, r"optical assumed .*--modality sar"):
        auto = make_split(tiny_experiment_config(grey, tmp_path / "a"))
    optical = norm_config(auto)
    assert auto.modality == "optical" and not optical.sar and optical.method != "fixed"

    cfg = tiny_experiment_config(grey, tmp_path / "s", modality="sar")
    split = make_split(cfg)
    assert split.modality == "sar"
    norm = norm_config(split)
    assert norm.sar and norm.method == "fixed" and norm.data_dtype == "uint8"
    sub = write_subset(tmp_path / "s" / "labelled", split, split.labelled, None)
    assert json.loads((sub / "dataset.json").read_text())["modality"] == "sar"

    seen = []

    class Stop(Exception):
        pass

    def fake_train(tcfg):  # noqa: ANN001
        seen.append(tcfg)
        raise Stop

    monkeypatch.setattr(train_mod, "train", fake_train)
    with pytest.raises(Stop):
        train_elnet(cfg, sub, tmp_path / "s" / "elnet", None)
    assert seen[0].modality == "sar"
    with pytest.raises(Stop):
        train_elnet(tiny_experiment_config(grey, tmp_path / "a"), sub, tmp_path / "e", None)
    assert seen[1].modality == "auto"  # the subset's dataset.json says what the split decided


def test_cli_modality_option(grey: Path, tmp_path: Path, capsys, experiment_configs) -> None:

    seen = experiment_configs
    base = ["experiment", "--data", str(grey), "--out", str(tmp_path / "x")]
    assert main(base) == 0 and seen[0].modality == "auto"
    assert main([*base, "--modality", "sar"]) == 0
    assert seen[1].modality == "sar" and seen[1].identity()["modality"] == "sar"
    assert main([*base, "--modality", "radar"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: invalid value for --modality: 'radar'") and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_experiment_made_before_the_option_continues_and_a_changed_one_is_refused(
    grey: Path, tmp_path: Path, monkeypatch
) -> None:
    """A run whose experiment.json has no ``modality`` (made before the option) continues with
    the default: every finished stage is done before, nothing retrains; ``--modality sar`` in
    that folder is another experiment and refused (as any other changed identity option)."""
    monkeypatch.setenv("SAM2ELNET_THREADS", "1")
    out = tmp_path / "exp"
    kw = {"enhancement": False, "report": False}
    r1 = run_experiment(tiny_experiment_config(grey, out, **kw))
    assert r1["split"]["modality"] == "optical"
    assert set(r1["stages"].values()) <= {"ran", "reused"}
    ident = json.loads((out / "experiment.json").read_text())
    assert ident["modality"] == "auto"
    del ident["modality"]  # as written before --modality existed
    (out / "experiment.json").write_text(json.dumps(ident))
    assert upgrade_identity(dict(ident))["modality"] == "auto"

    r2 = run_experiment(tiny_experiment_config(grey, out, **kw))
    assert set(r2["stages"]) == set(r1["stages"]) and set(r2["stages"].values()) == {"cached"}
    assert r2["table1"] == r1["table1"]
    assert json.loads((out / "experiment.json").read_text())["modality"] == "auto"

    with pytest.raises(
        UserError, match=r"other settings: --modality sar \(saved: auto, decided optical\); "
    ):
        run_experiment(tiny_experiment_config(grey, out, modality="sar", **kw))


def test_explicit_value_equal_to_what_auto_decided_resumes_the_run(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, capsys, monkeypatch
) -> None:
    """An auto experiment on SAR data (the synthetic oil-spill set: dataset.json says sar;
    no SAM2 weights: the half-resolution trunk) continues with ``--modality sar`` and
    ``--trunk-scale 2`` given explicitly: every stage done before, the record still auto. An
    explicit value other than the decided one is refused, naming both, in one ``error:`` line."""
    from sam2elnet.data.synthetic import generate_dataset

    monkeypatch.setenv("SAM2ELNET_THREADS", "1")
    data = tmp_path_factory.mktemp("sos")
    generate_dataset(data, task="oil-spill", count=12, size=48, seed=3, progress=False)
    out = tmp_path / "exp"
    kw = {"enhancement": False, "report": False}
    r1 = run_experiment(tiny_experiment_config(data, out, **kw))
    assert r1["split"]["modality"] == "sar" and r1["elnet"]["trunk_scale"] == 2
    record = (out / "experiment.json").read_text()

    r2 = run_experiment(tiny_experiment_config(data, out, modality="sar", trunk_scale=2, **kw))
    assert set(r2["stages"]) == set(r1["stages"]) and set(r2["stages"].values()) == {"cached"}
    assert r2["table1"] == r1["table1"]
    assert (out / "experiment.json").read_text() == record  # the run keeps its record (auto)
    assert r2["settings"]["modality"] == "auto" and r2["settings"]["trunk_scale"] is None
    assert r2["elnet"]["trunk_note"].endswith("(--trunk-scale auto)")

    with pytest.raises(UserError, match=r"--trunk-scale 1 \(saved: auto, decided 2\); "):
        run_experiment(tiny_experiment_config(data, out, trunk_scale=1, **kw))
    args = ["experiment", "--data", str(data), "--out", str(out), "--fraction", "0.4"]
    args += ["--epochs", "1", "--downstream-epochs", "1", "--image-size", "48"]
    args += ["--batch-size", "4", "--size", "micro", "--refiners", "morphological"]
    args += ["--downstream-width", "4", "--downstream-depth", "2", "--no-enhancement"]
    args += ["--no-report", "--no-progress", "--modality", "optical"]
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {out}: this folder holds an ")
    assert "other settings: --modality optical (saved: auto, decided sar); " in err
    assert (out / "experiment.json").read_text() == record

    # a run started with --modality sar --trunk-scale 2 (the same stages: its record says so)
    # re-run without the options continues with them and says so in one line (was refused)
    explicit = {**json.loads(record), "modality": "sar", "trunk_scale": 2}
    (out / "experiment.json").write_text(json.dumps(explicit))
    capsys.readouterr()
    assert main(args[:-2]) == 0
    said = [x for x in capsys.readouterr().out.splitlines() if "continuing with" in x]
    assert len(said) == 1 and said[0].endswith(
        "] continuing with --modality sar, --trunk-scale 2, as this experiment was started "
        "(not given now)"
    ), said
    assert json.loads((out / "experiment.json").read_text()) == explicit
    r3 = json.loads((out / "results.json").read_text())
    assert (r3["settings"]["modality"], r3["settings"]["trunk_scale"]) == ("sar", 2)
    assert set(r3["stages"].values()) == {"cached"} and r3["table1"] == r1["table1"]
    # another explicit value is still another experiment
    assert main([*args[:-2], "--modality", "optical"]) == 2
    assert "other settings: --modality optical (saved: sar); " in capsys.readouterr().err


def test_settings_diff_counts_only_what_was_decided() -> None:
    """Auto not decided yet (its stage not done), or an explicit record: another setting, as
    before; downstream options never count."""
    from sam2elnet.pipeline.experiment_config import settings_diff

    old = {"modality": "auto", "trunk_scale": None, "seed": 0, "downstream_epochs": 1}
    new = {"modality": "sar", "trunk_scale": 2, "seed": 0, "downstream_epochs": 5}
    assert settings_diff(old, new, {}) == ([], ["modality", "trunk_scale"])
    assert settings_diff(old, new, {"modality": "sar"}) == (["modality"], ["trunk_scale"])
    both = {"modality": "sar", "trunk_scale": 2}
    assert settings_diff(old, new, both) == (["modality", "trunk_scale"], [])
    explicit = {**old, "modality": "optical"}
    assert settings_diff(explicit, new, both) == (["trunk_scale"], ["modality"])
    # recorded explicitly, not given now (auto): the run continues with its record
    assert settings_diff(new, old, both) == (["modality", "trunk_scale"], [])
    assert settings_diff(new, old, {}) == (["modality", "trunk_scale"], [])
