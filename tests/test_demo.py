"""``elnet demo`` in a miniature mode (hidden size options) runs end to end and writes its report."""

from __future__ import annotations

from pathlib import Path

import pytest

from sam2elnet.cli import main


def test_demo_miniature(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("SAM2ELNET_THREADS", "1")
    out = tmp_path / "demo-out"
    code = main(
        [
            "demo",
            "--out",
            str(out),
            "--count",
            "12",
            "--image-size",
            "48",
            "--epochs",
            "1",
            "--downstream-epochs",
            "1",
            "--size",
            "micro",
            "--no-progress",
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    printed = captured.out
    # the report reads the stages' labels from their run folder (stored relative to it)
    assert "does not exist" not in captured.err
    assert "report.html" in printed and "RANDOMLY INITIALISED" in printed
    html = (out / "report.html").read_text()
    assert "SAM2-ELNet demo" in html and "Table 1" in html
    assert "Table 1" in (out / "results.md").read_text()
    assert (out / "data" / "dataset.json").is_file()
    # table 2 by label IoU only: no U-Net trained on its label sets (the demo's time budget)
    stages = out / "experiment" / "stages"
    assert len(list(stages.glob("downstream_*.json"))) == 5
    assert len(list(stages.glob("labelscore_sim_*.json"))) == 5  # as is, 3 refiners, SAM2-ELNet
    assert "downstream models were not trained on them" in (out / "results.md").read_text()
    assert "downstream models were not trained on them" in html
    assert "table 2 (label IoU):" in printed
    # the demo has no such option: the note says what ran and how to get the rest
    assert "as elnet demo runs; elnet experiment --enhancement-downstream" in html


def test_demo_missing_data_folder(tmp_path: Path, capsys) -> None:
    assert main(["demo", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "error:" in capsys.readouterr().err


def test_demo_on_real_sos_subset(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``elnet demo --data`` on the real SOS subset (skipped when ../shared/data is absent)."""
    monkeypatch.setenv("SAM2ELNET_THREADS", "1")
    out = tmp_path / "demo-sos"
    code = main(
        [
            "demo",
            "--data",
            str(shared_data / "sos-dev"),
            "--out",
            str(out),
            # the smallest demo DemoConfig allows (8 training, 2 test images) at 48 px: what is
            # checked is the SOS layout and table 2 without own labels, not the numbers
            "--count",
            "8",
            "--image-size",
            "48",
            "--epochs",
            "1",
            "--downstream-epochs",
            "1",
            "--size",
            "micro",
            "--no-progress",
        ]
    )
    assert code == 0
    md = (out / "results.md").read_text()
    assert "sos layout" in md
    # SOS ships no coarse labels: its own labels are the truth, so table 2 has no rows for them
    # (nothing refined or enhanced for nothing) and says why
    from sam2elnet.pipeline.experiment_config import OWN_NOT_SCORED

    assert f"{OWN_NOT_SCORED}." in md and "| dataset's own |" not in md
    assert not (out / "experiment" / "labels" / "own").exists()


def test_demo_options_are_checked_against_one_declaration(tmp_path: Path, capsys) -> None:
    """DemoConfig declares the ranges; the CLI refuses a value outside them before any work."""
    from pydantic import ValidationError

    from sam2elnet.pipeline.demo import DemoConfig

    with pytest.raises(ValidationError):
        DemoConfig(count=3)
    out = tmp_path / "o"
    assert main(["demo", "--out", str(out), "--count", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: invalid value for --count: 3") and "8 <= x" in err
    assert not out.exists()
    assert DemoConfig().count == 120 and DemoConfig().size == "auto"


def test_demo_size_auto_is_micro_only_on_float32_cpus_without_cached_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default demo trains Hiera-tiny where the CPU computes bf16 natively (97 s on an AMX
    CPU) or SAM2 tiny weights are cached, Hiera-micro where it trains in float32 without them
    (tiny took 190-226 s on an AVX2 EPYC, micro 122 s: docs/benchmarks.md, "Demo timing")."""
    from sam2elnet.pipeline.demo import DemoConfig, demo_size

    monkeypatch.setenv("SAM2ELNET_HOME", str(tmp_path / "no-weights"))
    monkeypatch.setenv("SAM2ELNET_NATIVE_BF16", "0")
    size, why = demo_size(DemoConfig())
    assert size == "micro" and "no native bf16" in why
    assert demo_size(DemoConfig(size="tiny")) == ("tiny", "--size")  # as given
    monkeypatch.setenv("SAM2ELNET_NATIVE_BF16", "1")
    assert demo_size(DemoConfig())[0] == "tiny"
    # float32 but a pretrained tiny trunk in the cache: the weights are worth tiny's time
    monkeypatch.setenv("SAM2ELNET_NATIVE_BF16", "0")
    from sam2elnet.model.weights_cache import official_filename

    (tmp_path / "no-weights").mkdir()
    (tmp_path / "no-weights" / official_filename("tiny", "2.1")).write_bytes(b"x")
    assert demo_size(DemoConfig()) == ("tiny", "auto: SAM2 tiny weights are cached")


def test_demo_trains_the_auto_size_and_its_eta_expects_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_demo hands the resolved size to the experiment, and the ETA starts from micro's own
    reference seconds (measured where micro is chosen: float32, so the U-Nets take longer)."""
    import sam2elnet.pipeline.experiment as experiment
    from sam2elnet.pipeline.demo import (
        MICRO_REFERENCE_SECONDS,
        REFERENCE_SECONDS,
        DemoConfig,
        reference_seconds,
        run_demo,
    )

    monkeypatch.setenv("SAM2ELNET_HOME", str(tmp_path / "no-weights"))
    monkeypatch.setenv("SAM2ELNET_NATIVE_BF16", "0")
    seen = {}

    def stop(ecfg):  # noqa: ANN001, ANN202
        seen["ecfg"] = ecfg
        raise RuntimeError("stop here")

    monkeypatch.setattr(experiment, "run_experiment", stop)
    cfg = DemoConfig(out=tmp_path / "o", count=8, image_size=32, progress=False)
    with pytest.raises(RuntimeError, match="stop here"):
        run_demo(cfg)
    assert seen["ecfg"].size == "micro"
    assert seen["ecfg"].eta_reference == reference_seconds(cfg, "micro")
    assert reference_seconds(DemoConfig(), "micro") == MICRO_REFERENCE_SECONDS
    assert reference_seconds(DemoConfig()) == REFERENCE_SECONDS
    work = (8 / 120) * (32 / 128) ** 2
    assert reference_seconds(cfg, "micro")["downstream"] == pytest.approx(18.5 * work)


def test_demo_rerun_keeps_the_size_its_folder_was_started_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A demo folder made where auto chose Hiera-tiny (a bf16 CPU, or before micro became the
    float32 choice), resumed where auto chooses micro: it goes on with tiny and says so in one
    line (it was refused with '--size micro (saved: tiny)', and --size is a hidden option); an
    explicit other --size is still refused, naming the saved size."""
    import logging

    import sam2elnet.pipeline.experiment as experiment
    from sam2elnet.errors import UserError
    from sam2elnet.pipeline.demo import DemoConfig, recorded_size, run_demo
    from sam2elnet.pipeline.experiment_resume import settle_identity

    monkeypatch.setenv("SAM2ELNET_HOME", str(tmp_path / "no-weights"))
    seen = []

    def settle_then_stop(ecfg):  # noqa: ANN001, ANN202 - the experiment's first check only
        seen.append(settle_identity(ecfg, ecfg.out)[0])
        (ecfg.out / "stages").mkdir(exist_ok=True)
        (ecfg.out / "stages" / "split.json").write_text("{}")  # a finished stage binds the record
        raise RuntimeError("stop here")

    monkeypatch.setattr(experiment, "run_experiment", settle_then_stop)
    cfg = DemoConfig(out=tmp_path / "o", count=8, image_size=32, progress=False)
    monkeypatch.setenv("SAM2ELNET_NATIVE_BF16", "1")  # auto: tiny
    assert recorded_size(cfg.out / "experiment") is None
    with pytest.raises(RuntimeError, match="stop here"):
        run_demo(cfg)
    assert seen[-1].size == "tiny" and recorded_size(cfg.out / "experiment") == "tiny"
    monkeypatch.setenv("SAM2ELNET_NATIVE_BF16", "0")  # auto: micro now
    caplog.set_level(logging.INFO, logger="sam2elnet")
    with pytest.raises(RuntimeError, match="stop here"):
        run_demo(cfg.model_copy(update={"resume": True}))
    assert seen[-1].size == "tiny"
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("model: ")]
    assert said == [
        "model: Hiera-tiny (as this demo folder was started; auto chooses micro here now; "
        "--size tiny or micro chooses)"
    ]
    with pytest.raises(UserError, match=r"--size micro \(saved: tiny\)"):
        run_demo(cfg.model_copy(update={"resume": True, "size": "micro"}))
