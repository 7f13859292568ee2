"""``--precision auto`` (the default): bf16 autocast only where the hardware computes bf16
natively (engine.runtime.native_bf16 / resolve_precision), fp32 elsewhere."""

from __future__ import annotations

import copy

import pytest
import torch

from sam2elnet.data.normalize import NormalizationConfig
from sam2elnet.engine import runtime
from sam2elnet.engine.predictor import Predictor
from sam2elnet.model import ModelConfig, build_model


def _cpu_flags(monkeypatch, avx512_bf16: bool, amx: bool) -> None:
    monkeypatch.delenv("SAM2ELNET_NATIVE_BF16", raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)


@pytest.mark.parametrize(
    ("avx512_bf16", "amx", "native"),
    [(False, False, False), (True, False, True), (False, True, True), (True, True, True)],
)
def test_native_bf16_follows_the_cpu_flags(monkeypatch, avx512_bf16, amx, native) -> None:
    _cpu_flags(monkeypatch, avx512_bf16, amx)
    assert runtime.native_bf16("cpu") is native
    assert runtime.native_bf16(torch.device("cpu")) is native
    assert runtime.resolve_precision("auto", "cpu") == ("bf16" if native else "32")
    # explicit values are kept whatever the CPU
    assert runtime.resolve_precision("bf16", "cpu") == "bf16"
    for spelling in ("32", "fp32", "float32", "FP32"):
        assert runtime.resolve_precision(spelling, "cpu") == "32"


def test_devices_without_bf16_autocast_run_fp32() -> None:
    assert runtime.native_bf16("meta") is False
    assert runtime.resolve_precision("auto", "meta") == "32"


def test_autocast_auto_is_on_only_with_native_bf16(monkeypatch) -> None:
    cpu = torch.device("cpu")
    _cpu_flags(monkeypatch, False, False)
    with runtime.autocast(cpu, "auto"):
        assert not torch.is_autocast_enabled("cpu")
        assert (torch.ones(4, 4) @ torch.ones(4, 4)).dtype == torch.float32
    with runtime.autocast(cpu, "bf16"):  # forced
        assert (torch.ones(4, 4) @ torch.ones(4, 4)).dtype == torch.bfloat16
    _cpu_flags(monkeypatch, True, False)
    with runtime.autocast(cpu, "auto"):
        assert (torch.ones(4, 4) @ torch.ones(4, 4)).dtype == torch.bfloat16


def test_precision_note_says_what_and_why(monkeypatch) -> None:
    _cpu_flags(monkeypatch, False, False)
    note = runtime.precision_note("auto", "cpu")
    assert note.startswith("precision: 32 (float32; auto: no native bf16")
    assert "--precision bf16" in note
    # forced bf16 where it is only emulated: the same line says so
    assert runtime.precision_note("bf16", "cpu") == (
        "precision: bf16 (bf16 autocast; --precision bf16; bf16 is emulated on this CPU "
        "(no native bf16) and runs many times slower than --precision 32)"
    )
    # the log says the option's value, however it was spelled (older configs wrote fp32)
    for spelling in ("32", "fp32", "FP32", "float32"):
        assert runtime.precision_note(spelling, "cpu") == "precision: 32 (float32; --precision 32)"
    _cpu_flags(monkeypatch, True, False)
    assert runtime.precision_note("auto", "cpu").startswith("precision: bf16 (bf16 autocast; auto:")
    assert (
        runtime.precision_note("bf16", "cpu") == "precision: bf16 (bf16 autocast; --precision bf16)"
    )


def test_predictor_resolves_auto_and_keeps_the_trunk_fp32_without_native_bf16(
    monkeypatch,
) -> None:
    monkeypatch.delenv("SAM2ELNET_BF16_TRUNK", raising=False)
    torch.manual_seed(0)
    norm = NormalizationConfig.for_modality("sar").model_dump(mode="json")
    model = build_model(ModelConfig(size="micro", in_bands=1, normalization=norm))
    extra = {"normalization": norm}
    _cpu_flags(monkeypatch, False, False)
    slow = Predictor(copy.deepcopy(model), extra)  # default precision: auto
    assert slow.precision == "32"
    assert next(slow.model.trunk.parameters()).dtype == torch.float32
    _cpu_flags(monkeypatch, True, False)
    fast = Predictor(copy.deepcopy(model), extra)
    assert fast.precision == "bf16"
    assert next(fast.model.trunk.parameters()).dtype == torch.bfloat16


def test_memory_estimate_of_auto_is_that_of_the_resolved_precision(monkeypatch) -> None:
    from sam2elnet.engine import memory

    kw = {"size": "tiny", "bands": 1}
    _cpu_flags(monkeypatch, False, False)
    assert memory.per_pixel_bytes(precision="auto", **kw) == memory.per_pixel_bytes(
        precision="32", **kw
    )
    _cpu_flags(monkeypatch, True, False)
    assert memory.per_pixel_bytes(precision="auto", **kw) == memory.per_pixel_bytes(
        precision="bf16", **kw
    )


def test_configs_default_to_auto_and_precision_is_a_runtime_option() -> None:
    from sam2elnet.config import TrainConfig
    from sam2elnet.engine.downstream import DownstreamConfig
    from sam2elnet.engine.train_setup import RESUME_MAY_CHANGE
    from sam2elnet.pipeline.crossval_config import CVConfig
    from sam2elnet.pipeline.experiment_config import ExperimentConfig

    assert TrainConfig(data="d", out="o").precision == "auto"
    assert TrainConfig(data="d", out="o", precision="fp32").precision == "32"
    assert DownstreamConfig.model_fields["precision"].default == "auto"
    assert CVConfig.model_fields["precision"].default == "auto"
    assert ExperimentConfig.model_fields["precision"].default == "auto"
    # resuming a run made with another precision (e.g. bf16 before "auto" existed) is allowed
    assert "precision" in RESUME_MAY_CHANGE


@pytest.mark.parametrize("spelling", ["32", "fp32", "FP32", "float32"])
def test_every_config_reads_float32_as_32(spelling: str, tmp_path) -> None:
    """One vocabulary (options.Precision) in every config; the older spelling fp32 (experiment
    and downstream configs, results and experiment.json files of earlier runs) reads as 32."""
    from sam2elnet.config import TrainConfig
    from sam2elnet.engine.downstream import DownstreamConfig
    from sam2elnet.pipeline.crossval_config import CVConfig
    from sam2elnet.pipeline.experiment_config import ExperimentConfig

    assert TrainConfig(data="d", out="o", precision=spelling).precision == "32"
    assert DownstreamConfig(precision=spelling).precision == "32"
    assert DownstreamConfig(precision=spelling).to_dict()["precision"] == "32"
    assert CVConfig(data="d", out="o", precision=spelling).precision == "32"
    assert ExperimentConfig(data="d", out="o", precision=spelling).precision == "32"
    assert ExperimentConfig(data="d", out="o", precision=spelling).identity()["precision"] == "32"


def test_every_config_refuses_an_unknown_precision_naming_the_values() -> None:
    from sam2elnet.config import TrainConfig
    from sam2elnet.engine.downstream import DownstreamConfig
    from sam2elnet.errors import UserError
    from sam2elnet.option_checks import check_options
    from sam2elnet.pipeline.crossval_config import CVConfig
    from sam2elnet.pipeline.experiment_config import ExperimentConfig

    for model in (TrainConfig, DownstreamConfig, CVConfig, ExperimentConfig):
        paths = {} if model is DownstreamConfig else {"data": "d", "out": "o"}
        with pytest.raises(UserError) as err:
            check_options(model, precision="foo", **paths)
        assert "--precision" in str(err.value) and "choose auto | bf16 | 32" in str(err.value)


def test_forced_bf16_on_a_cpu_without_native_bf16_is_announced_as_emulated(monkeypatch) -> None:
    monkeypatch.setenv("SAM2ELNET_NATIVE_BF16", "0")
    lines: list[str] = []
    record = runtime.announce_precision("bf16", "cpu", None, lines.append)
    assert lines == [
        "precision: bf16 (bf16 autocast; --precision bf16; bf16 is emulated on this CPU "
        "(no native bf16) and runs many times slower than --precision 32)"
    ]
    assert record == {"precision_option": "bf16", "precision_resolved": "bf16"}
    monkeypatch.setenv("SAM2ELNET_NATIVE_BF16", "1")
    lines.clear()
    runtime.announce_precision("bf16", "cpu", None, lines.append)
    assert lines == ["precision: bf16 (bf16 autocast; --precision bf16)"]


def test_predictor_precision_is_announced_from_the_predictor(monkeypatch) -> None:
    """annotate, enhance and scene announce through one function: the predictor's device and
    the precision it runs; an object without them (a built-in predictor) counts as cpu, unknown."""
    from types import SimpleNamespace

    monkeypatch.setenv("SAM2ELNET_NATIVE_BF16", "1")
    lines: list[str] = []
    record = runtime.announce_predictor_precision("bf16", object(), lines.append)
    assert record == runtime.announce_precision("bf16", "cpu", None, lines.append)
    assert lines[0] == lines[1] == "precision: bf16 (bf16 autocast; --precision bf16)"
    ran32 = SimpleNamespace(device="cpu", precision="32")  # a model that runs float32
    assert runtime.announce_predictor_precision("bf16", ran32, lines.append) == {
        "precision_option": "32",
        "precision_resolved": "32",
    }
