"""The ``elnet`` commands as the typer app defines them, and the pages that document them, for
the tests that hold the CLI and README.md / docs/*.md against each other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: the checkout's root (README.md, docs/, benchmarks/)
ROOT = Path(__file__).resolve().parents[1]
#: every page a user reads: README.md and docs/*.md
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def cli_commands(leaves: bool = False) -> dict[str, Any]:
    """``{"annotate": click command, ..., "weights": group, "weights download": command}`` read
    from the typer app (``typer.main.get_command``); ``leaves=True`` leaves out the groups
    (``weights``), keeping the commands that run."""
    import typer.main

    from sam2elnet.cli import app

    root = typer.main.get_command(app)
    found: dict[str, Any] = {}
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        subs = getattr(command, "commands", {})
        if not (leaves and subs):
            found[name] = command
        for sub, subcommand in subs.items():
            found[f"{name} {sub}"] = subcommand
    return found


def capture_train_configs(monkeypatch: Any) -> list[Any]:
    """Replace ``sam2elnet.engine.train.train`` by a stand-in that records the ``TrainConfig``
    ``elnet train`` hands it and ends the command with exit 0: the list it fills, newest last."""
    import sam2elnet.engine.train as engine_train

    got: list[Any] = []

    def fake_train(cfg: Any, echo: Any = None) -> None:
        got.append(cfg)
        raise SystemExit(0)

    monkeypatch.setattr(engine_train, "train", fake_train)
    return got
