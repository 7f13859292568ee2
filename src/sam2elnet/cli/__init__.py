"""The ``elnet`` command line: a thin layer over the Python API.

Each command group lives in its own module that adds commands to :data:`app`; this module imports
them all and provides :func:`main`, which turns every problem the user can fix into one
``error: ...`` line on stderr and exit code 2 (no traceback): :class:`~sam2elnet.errors.UserError`,
usage errors (unknown option, value out of range), and operating-system errors (disk full,
permission denied, symlink loop, ...). Warnings print as ``warning: ...`` lines without a Python
source line (advice laid out for the terminal keeps its line breaks after the first line);
chatter of native libraries (libpng, GDAL, OpenCV) is kept out of the terminal.

Exit codes (docs/reliability.md): 0 success (possibly with some items skipped, said on the last
line), 2 bad input / nothing produced / option error, 130 interrupted.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import typer
import typer.main

from sam2elnet.cli import (  # noqa: F401  (imported for their commands)
    cv_cmd,
    data_cmd,
    engine_cmd,
    eval_cmd,
    geo_cmd,
    pipeline_cmd,
    refine_cmd,
    review_cmd,
    weights_cmd,
)
from sam2elnet.cli.app import SHOWN as _SHOWN
from sam2elnet.cli.app import app, unwrap_command_help
from sam2elnet.errors import UserError
from sam2elnet.option_checks import command_line_names
from sam2elnet.utils import heap
from sam2elnet.utils.progress import bars_on_terminals_only, write

unwrap_command_help(app)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _lines(text: str) -> str:
    """A warning as printed: its first line with runs of white space made one space, the
    lines after it (advice laid out for 80 columns, :mod:`sam2elnet.utils.advice`) as they are,
    less trailing space and empty lines."""
    first, *rest = str(text).split("\n")
    return "\n".join([_one_line(first), *(ln.rstrip() for ln in rest if ln.strip())])


def _error(text: str) -> None:
    print(f"error: {_one_line(text)}", file=sys.stderr)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """``warnings.showwarning`` for the CLI: ``warning: <message>``, no source line (above any
    progress bar, :func:`sam2elnet.utils.progress.write`)."""
    write(f"warning: {_lines(str(message))}", file or sys.stderr)


class _StderrHandler:
    """Log records of ``sam2elnet`` as ``warning: ...`` / ``info: ...`` lines on the current
    ``sys.stderr``, above any progress bar (:func:`sam2elnet.utils.progress.write`); never a
    second ``error:`` line: the one error line is main's."""

    @staticmethod
    def make() -> object:
        class Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                level = "note" if record.levelno >= logging.ERROR else record.levelname.lower()
                try:
                    _SHOWN.add(_one_line(record.getMessage()))
                    write(f"{level}: {_lines(record.getMessage())}", sys.stderr)
                except Exception:  # noqa: BLE001  (logging must never raise)
                    self.handleError(record)

        return Handler()


_HANDLER: object | None = None


# third-party loggers main() turns down to errors only
_NOISY = ("rasterio", "fiona", "pyogrio", "PIL", "matplotlib", "numexpr")
# every logger main() configures (the progress logger's name: sam2elnet.utils.progress)
_CONFIGURED = ("sam2elnet", "sam2elnet.progress", *_NOISY)


def _setup_messages() -> None:
    """Install main()'s handler, warning format and filters (undone by :func:`_logging_state`
    and ``warnings.catch_warnings`` when main returns)."""
    global _HANDLER
    _SHOWN.clear()
    if _HANDLER is None:
        _HANDLER = _StderrHandler.make()
    pkg = logging.getLogger("sam2elnet")
    if _HANDLER not in pkg.handlers:
        pkg.addHandler(_HANDLER)  # type: ignore[arg-type]

    warnings.showwarning = _show_warning
    # third-party deprecation chatter is for developers, not users of the command line
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(logging.ERROR)


@contextlib.contextmanager
def _logging_state() -> Iterator[None]:
    """Put the loggers main() configures (:data:`_CONFIGURED`: level, handlers, propagation,
    disabled) back as they were: code that calls main() in-process (tests, notebooks, the
    Python API) keeps its own logging setup, and a second main() starts from the same state."""
    saved = []
    for name in _CONFIGURED:
        lg = logging.getLogger(name)
        saved.append((lg, lg.level, list(lg.handlers), lg.propagate, lg.disabled))
    try:
        yield
    finally:
        for lg, level, handlers, propagate, disabled in saved:
            lg.setLevel(level)
            lg.handlers = handlers
            lg.propagate = propagate
            lg.disabled = disabled


def _only_help(argv: list[str]) -> bool:
    """True when the command line only asks for help or the version (nothing will run)."""
    return not argv or any(a in ("--help", "-h", "--version") for a in argv)


@contextlib.contextmanager
def _native_messages(args: list[str]) -> Iterator[None]:
    """Quiet the native libraries while a command runs (:func:`_quiet_native_libraries`; not for
    ``--help`` / ``--version``) and put OpenCV's log level back when it returns: it is process
    state, like the loggers :func:`_logging_state` restores."""
    restore = None if _only_help(args) else _quiet_native_libraries()
    try:
        yield
    finally:
        if restore is not None:
            restore()


def _quiet_native_libraries() -> Callable[[], None] | None:
    """Keep rasterio's and OpenCV's chatter out of the terminal.

    Imports rasterio and cv2 (about 0.4 s), so :func:`main` calls it only when a command runs,
    not for ``--help`` / ``--version``. The rasterio filter goes with main's
    ``warnings.catch_warnings``; returns the function that puts OpenCV's log level back (None
    without OpenCV).
    """
    try:
        from rasterio.errors import NotGeoreferencedWarning

        warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)
    except ImportError:  # pragma: no cover
        pass
    try:
        import cv2

        cv_log = cv2.utils.logging
        before = cv_log.getLogLevel()
        cv_log.setLogLevel(cv_log.LOG_LEVEL_ERROR)
    except (ImportError, AttributeError):  # pragma: no cover
        return None
    return lambda: cv_log.setLogLevel(before)


def _usage_errors() -> tuple[type[BaseException], ...]:
    """Exception classes of usage errors: typer >= 0.20 vendors click, older typer uses click."""
    found: list[type[BaseException]] = []
    if hasattr(typer, "TyperException"):
        found.append(typer.TyperException)
    try:
        import click

        found.append(click.ClickException)
    except ImportError:  # pragma: no cover
        pass
    return tuple(found)


_INTERRUPTED = 130  # 128 + SIGINT, the shell's code for Ctrl-C
_INTERRUPTED_MESSAGE = "interrupted; re-run with --resume to continue"
_INTERRUPTED_OTHER = {
    # commands that go on without a --resume option
    "cv": "interrupted; run the same command again to continue (finished folds are kept)",
    "serve": (
        "interrupted: the ML backend stopped; start it again with the same --model and "
        "--workdir to serve the latest fine-tuned model and re-run an interrupted "
        "fine-tuning (WORKDIR/state.json)"
    ),
}


def _interrupted_message(args: list[str]) -> str:
    """What an interrupted ``elnet ARGS`` says: re-run with ``--resume`` only for a command
    that has that option (train, annotate, enhance, refine, scene, experiment, demo) and whose
    ``--out`` holds something to resume (:func:`_nothing_to_resume`); else that the same command
    runs again. ``cv`` and ``serve`` go on by running them again (:data:`_INTERRUPTED_OTHER`); any
    other command is simply run again. Before, every command said ``--resume``, which ``elnet
    cv`` answered with ``No such option``, and ``elnet train`` interrupted before its run folder
    held a ``config.yaml`` answered ``nothing to resume``."""
    try:
        cmd = typer.main.get_command(app)
        rest = list(args)
        for i, token in enumerate(args):
            if token.startswith("-"):
                continue  # the root's options (--verbose) take no value
            sub = getattr(cmd, "commands", None) or {}  # a group (Typer's is not click's class)
            if token not in sub:
                break
            cmd, rest = sub[token], list(args[i + 1 :])
        if not any("--resume" in getattr(p, "opts", ()) for p in cmd.params):
            return _INTERRUPTED_OTHER.get(cmd.name or "", "interrupted; run the command again")
        out = _out_folder(cmd, rest)
    except Exception:  # an interrupt must end with its line, whatever happens here
        return _INTERRUPTED_MESSAGE
    if out is not None and _nothing_to_resume(out, train=cmd.name == "train"):
        return f"interrupted before {out} held anything to resume; run the same command again"
    return _INTERRUPTED_MESSAGE


def _out_folder(cmd: object, args: list[str]) -> Path | None:
    """The ``--out`` of the command ``cmd`` (click) as ``args`` give it (or its default), parsed
    without callbacks or prompts; None when it has no ``--out`` or none is given."""
    ctx = cmd.make_context(cmd.name, list(args), resilient_parsing=True)  # type: ignore[attr-defined]
    value = ctx.params.get("out")
    return Path(str(value)) if value not in (None, "") else None


def _nothing_to_resume(out: Path, train: bool) -> bool:
    """True when ``--resume`` would find nothing in ``out``: no such path, or a folder holding
    no entries but hidden ones (temporary files); for ``elnet train`` a folder without
    ``config.yaml`` and ``last.pt`` (``--resume`` without ``--data`` needs the first,
    :func:`~sam2elnet.config_sources.layered_config`; the run continues from the second)."""
    try:
        if not out.exists():
            return True
        if not out.is_dir():
            return False  # a single output file (elnet scene --out FILE.tif) written already
        if train:
            return not ((out / "config.yaml").is_file() or (out / "last.pt").is_file())
        return not any(not e.name.startswith(".") for e in out.iterdir())
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (used by the console script and the tests).

    Messages, warnings and logging are set up for the terminal while the command runs; the
    loggers' levels and handlers, ``warnings.filters``, ``warnings.showwarning`` and OpenCV's log
    level are put back as they were when main returns (or raises), so calling main in-process
    leaves the caller's logging as it was.
    """
    args = sys.argv[1:] if argv is None else list(argv)

    with warnings.catch_warnings(), _logging_state(), _native_messages(args), _term_as_interrupt():
        with bars_on_terminals_only(), command_line_names():
            return _run(args)


@contextlib.contextmanager
def _term_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill PID``, ``timeout``, SLURM / Kubernetes stopping a job) ends a command as
    Ctrl-C does: ``KeyboardInterrupt``, so the half-written temporary files are removed and the
    run ends with ``error: interrupted ...`` (exit 130). Python's default for SIGTERM ends the
    process at once, leaving ``.<name>.<random>.tmp.tif`` files of a scene behind. Only from
    the main thread and over the default handler (a caller's own handler is kept)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return
    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _run(args: list[str]) -> int:
    """main() inside its saved logging / warnings state."""
    from sam2elnet.utils.paths import os_error_message

    try:
        _setup_messages()
        if not _only_help(args):
            # a bad SAM2ELNET_HEAP_MB: one error line before any command runs; a command's
            # --help still shows (nothing runs; the Typer callback cannot see a subcommand's
            # arguments, so the check is here)
            heap.check()
        rv = app(args=args, standalone_mode=False, prog_name="elnet")
        # Outside standalone mode Typer returns the code of a typer.Exit instead of raising it,
        # and turns Ctrl-C (KeyboardInterrupt) into Exit(130): without this an interrupted
        # training exited 0 without a word.
        if rv == _INTERRUPTED and not isinstance(rv, bool):
            _error(_interrupted_message(args))
            return _INTERRUPTED
        if isinstance(rv, int) and not isinstance(rv, bool) and rv:
            return rv
    except UserError as err:
        _error(str(err))
        return err.exit_code
    except OSError as err:  # disk full, permission denied, symlink loop, ...
        _error(os_error_message(err))
        return 2
    except KeyboardInterrupt:
        _error(_interrupted_message(args))
        return _INTERRUPTED
    except SystemExit as err:  # sys.exit inside commands
        return int(err.code or 0) if not isinstance(err.code, str) else 1
    except typer.Exit as err:
        return int(getattr(err, "exit_code", 0) or 0)
    except typer.Abort:
        _error("aborted")
        return 1
    except _usage_errors() as err:  # usage errors: bad option, value out of range
        ctx = getattr(err, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        _error(f"{err.format_message()}{hint}")  # type: ignore[attr-defined]
        return 2
    return 0


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
