"""The command line results.md / results.json / report.html give for a protocol run: parsed by
``elnet experiment``, it gives back the run's options (a reviewer can rerun every number)."""

from __future__ import annotations

import shlex
from pathlib import Path

from sam2elnet.cli import main
from sam2elnet.pipeline.experiment_command import experiment_command
from sam2elnet.pipeline.experiment_config import ExperimentConfig

_SAID = ("resume", "progress", "report", "eta_reference")  # change no number: not in the command


def _parsed(cmd: str, experiment_configs: list) -> ExperimentConfig:
    words = shlex.split(cmd.split(" (API: ")[0])
    assert words[:2] == ["elnet", "experiment"]
    assert main(words[1:]) == 0
    return experiment_configs[-1]


def test_command_gives_back_the_runs_options(tmp_path: Path, experiment_configs: list) -> None:
    data = tmp_path / "my data"  # a space: quoted
    (data / "images").mkdir(parents=True)
    cfg = ExperimentConfig(
        data=data, out=tmp_path / "run 1", fraction=0.5, seed=1, split_seed=7, epochs=3,
        downstream_steps=40, image_size=64, max_train=60, max_test=20, weights="none",
        trunk_scale=2, min_quality=0.4, refiners=("guided",), enhancement_downstream=False,
        downstream_curve_points=3, modality="sar", positive_values=(2.0, 3.0), precision="32",
        coarse_severity=0.25, road_buffer_m=2.0,
    )  # fmt: skip
    cmd = experiment_command(cfg)
    assert cmd.startswith(f"elnet experiment --data '{data}' --out '{tmp_path / 'run 1'}' ")
    assert "--fraction 0.5 " in cmd and "--curve-points 3" in cmd
    assert "--no-enhancement-downstream" in cmd and "--road-buffer " not in cmd
    back = _parsed(cmd, experiment_configs)
    assert back.model_dump(exclude=set(_SAID)) == cfg.model_dump(exclude=set(_SAID))
    # defaults are left out; off switches and API-only fields are said
    plain = ExperimentConfig(data=data, out=tmp_path / "o")
    assert experiment_command(plain) == f"elnet experiment --data '{data}' --out {tmp_path / 'o'}"
    off = plain.model_copy(update={"enhancement": False, "test_fraction": 0.3})
    assert experiment_command(off).endswith("--no-enhancement (API: test_fraction=0.3)")
    assert _parsed(experiment_command(off), experiment_configs).enhancement is False
