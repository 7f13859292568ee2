"""`elnet weights list|download`: where SAM2 encoder weights come from."""

from __future__ import annotations

from pathlib import Path

import typer

from sam2elnet.cli.app import app
from sam2elnet.cli.shared_options import NO_PROGRESS

weights_app = typer.Typer(
    help="List or download official SAM2 encoder checkpoints.", no_args_is_help=True
)
app.add_typer(weights_app, name="weights")


@weights_app.command("list")
def weights_list() -> None:
    """Show SAM2 sizes and versions, and which checkpoints are present locally."""
    from rich.console import Console
    from rich.table import Table

    from sam2elnet.model.download import list_weights
    from sam2elnet.model.weights_cache import weights_home

    table = Table(
        title=f"SAM2 checkpoints (cache: {weights_home()}; set SAM2ELNET_HOME to move it)"
    )
    for col in ("size", "version", "present", "path"):
        table.add_column(col)
    for row in list_weights():
        table.add_row(row["size"], row["version"], "yes" if row["present"] else "-", row["path"])
    Console().print(table)


@weights_app.command("download")
def weights_download(
    size: str = typer.Option("tiny", help="tiny, small, base_plus or large"),
    version: str = typer.Option("2.1", help="SAM2 release: 2 or 2.1"),
    dest: Path = typer.Option(None, help="Folder to put the file in (default: the cache)."),
    no_progress: bool = NO_PROGRESS,
) -> None:
    """Download an official SAM2 checkpoint, verify that it loads, and put it in place."""
    from sam2elnet.model.download import download_weights
    from sam2elnet.utils.paths import check_output

    check_output(dest, "dir", "--dest")
    path = download_weights(size, version, dest, progress=not no_progress)
    typer.echo(f"ready: {path}")
