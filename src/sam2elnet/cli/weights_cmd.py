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
    """Show SAM2 sizes and versions, which checkpoints are present locally, and their URLs."""
    from rich.console import Console
    from rich.table import Table

    from sam2elnet.model.download import list_weights
    from sam2elnet.model.weights_cache import weights_home

    home = weights_home()
    table = Table(title=f"SAM2 checkpoints (cache: {home}; set SAM2ELNET_HOME to move it)")
    for col in ("size", "version", "present", "file"):
        table.add_column(col)
    rows = list_weights()
    for row in rows:
        name = Path(str(row["path"])).name
        table.add_row(row["size"], row["version"], "yes" if row["present"] else "-", name)
    Console().print(table)
    # plain lines, never cut to the terminal's width: what a machine without network needs
    typer.echo(
        "download URLs (`elnet weights download --size S --version V`, or by hand on a machine "
        f"with internet access, then put the file in {home}):"
    )
    for row in rows:
        typer.echo(f"  {row['url']}")


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
