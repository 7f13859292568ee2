"""The Typer application object shared by all command modules."""

from __future__ import annotations

import inspect
import logging
import sys

import typer

from sam2elnet import __version__
from sam2elnet.utils.progress import LOGGER_NAME, write

SHOWN: set[str] = set()
"""The log lines (one-line text) main()'s handler printed during the current command."""


def shown_before(text: str) -> bool:
    """Whether the current command already printed ``text`` as a log line (``warning: ...``),
    so a closing ``note:`` need not repeat it."""
    return " ".join(str(text).split()) in SHOWN


app = typer.Typer(
    name="elnet",
    help="SAM2-ELNet: enhance coarse labels, auto-annotate imagery and score label quality "
    "for remote sensing segmentation (SAR oil spills, VHR roads, ...).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"sam2elnet {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="More detail in messages."),
) -> None:
    """SAM2-ELNet command line."""
    logging.getLogger("sam2elnet").setLevel(logging.INFO if verbose else logging.WARNING)

    class _Stdout(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:  # sys.stdout as it is now
            try:  # above any progress bar
                write(self.format(record), sys.stdout, flush=True)
            except Exception:  # noqa: BLE001  (a closed stream must not break the command)
                self.handleError(record)

    # progress lines (one per epoch / stage / half minute with --no-progress) print as they are
    plain = _Stdout()
    plain.setFormatter(logging.Formatter("%(message)s"))
    plog = logging.getLogger(LOGGER_NAME)
    plog.handlers = [plain]
    # -v: also the detail a summary line already counts (each window-by-window image's line)
    plog.setLevel(logging.DEBUG if verbose else logging.INFO)
    plog.propagate = False


def unwrap_command_help(typer_app: typer.Typer) -> None:
    """Give every command of ``typer_app`` (and of its sub-apps) its docstring as help text with
    the line breaks inside each paragraph removed.

    Typer's rich help keeps a docstring's single line breaks and wraps again at the terminal
    width, so a docstring wrapped at 100 columns showed as ragged lines (``elnet evaluate
    --help``). Paragraphs (separated by a blank line) stay paragraphs; an explicit ``help=``
    is left as it is.
    """
    for info in typer_app.registered_commands:
        if info.help is None and info.callback is not None:
            doc = inspect.getdoc(info.callback) or ""
            paragraphs = [" ".join(p.split()).replace("``", "`") for p in doc.split("\n\n")]
            info.help = "\n\n".join(p for p in paragraphs if p) or None
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            unwrap_command_help(group.typer_instance)
