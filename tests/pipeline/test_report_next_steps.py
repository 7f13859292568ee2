"""The "Next steps" of the report pages name commands and options that exist.

A user copies them into a shell: an option the command does not have is an error there
(`elnet enhance --coarse` was suggested by the training report; enhance takes --labels).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from sam2elnet.cli import app
from sam2elnet.pipeline.report import _next_steps
from sam2elnet.pipeline.report_train import next_steps as train_next_steps


def _commands(steps: list[str]) -> list[tuple[str, list[str]]]:
    """(subcommand, its --options) of every `elnet CMD ...` in the steps' text."""
    found = []
    for step in steps:
        for m in re.finditer(r"elnet ([a-z-]+)((?:\s+[^;:(]*?)?)(?=;|\(|$|\. )", step):
            found.append((m.group(1), re.findall(r"(--[a-z][a-z-]*)", m.group(2))))
    return found


def _options(name: str) -> set[str]:
    cmd = typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]
    return {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}


@pytest.mark.parametrize(
    "steps",
    [
        pytest.param(train_next_steps(Path("runs/roads/model.pt")), id="train"),
        pytest.param(_next_steps(Path("out/auto"), True), id="annotate-filtered"),
        pytest.param(_next_steps(Path("out/auto"), False), id="annotate-unfiltered"),
    ],
)
def test_every_next_step_command_has_the_options_it_names(steps: list[str]) -> None:
    commands = _commands(steps)
    assert commands, steps
    for name, opts in commands:
        assert opts, (name, steps)
        unknown = sorted(set(opts) - _options(name))
        assert not unknown, f"elnet {name}: no option {unknown} (step: {steps})"


def test_the_training_report_sends_coarse_labels_to_enhance_labels() -> None:
    steps = train_next_steps(Path("runs/roads/model.pt"))
    enhance = [opts for name, opts in _commands(steps) if name == "enhance"]
    assert enhance == [["--model", "--images", "--labels", "--out", "--report"]]
