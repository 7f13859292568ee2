"""The ``elnet`` command line: a thin layer over the Python API.

Each command group lives in its own module that adds commands to :data:`app`; this module imports
them all and provides :func:`main`, which turns every problem the user can fix into one
``error: ...`` line on stderr and exit code 2 (no traceback): :class:`~sam2elnet.errors.UserError`,
usage errors (unknown option, value out of range), and operating-system errors (disk full,
permission denied, symlink loop, ...). Warnings print as ``warning: ...`` lines without a Python
source line; chatter of native libraries (libpng, GDAL, OpenCV) is kept out of the terminal.

Exit codes (docs/reliability.md): 0 success (possibly with some items skipped, said on the last
line), 2 bad input / nothing produced / option error, 130 interrupted.
"""

from __future__ import annotations

import sys

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
from sam2elnet.cli.app import app


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _error(text: str) -> None:
    print(f"error: {_one_line(text)}", file=sys.stderr)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """``warnings.showwarning`` for the CLI: ``warning: <message>``, no source line."""
    print(f"warning: {_one_line(str(message))}", file=file or sys.stderr)


class _StderrHandler:
    """Log records of ``sam2elnet`` as ``warning: ...`` / ``info: ...`` lines on the current
    ``sys.stderr`` (never a second ``error:`` line: the one error line is main's)."""

    @staticmethod
    def make() -> object:
        import logging

        class Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                level = "note" if record.levelno >= logging.ERROR else record.levelname.lower()
                try:
                    print(f"{level}: {_one_line(record.getMessage())}", file=sys.stderr)
                except Exception:  # noqa: BLE001  (logging must never raise)
                    self.handleError(record)

        return Handler()


_HANDLER: object | None = None


def _setup_messages() -> None:
    import logging
    import warnings

    global _HANDLER
    if _HANDLER is None:
        _HANDLER = _StderrHandler.make()
        logging.getLogger("sam2elnet").addHandler(_HANDLER)  # type: ignore[arg-type]

    warnings.showwarning = _show_warning
    # third-party deprecation chatter is for developers, not users of the command line
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    for noisy in ("rasterio", "fiona", "pyogrio", "PIL", "matplotlib", "numexpr"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def _only_help(argv: list[str]) -> bool:
    """True when the command line only asks for help or the version (nothing will run)."""
    return not argv or any(a in ("--help", "-h", "--version") for a in argv)


def _quiet_native_libraries() -> None:
    """Keep rasterio's and OpenCV's chatter out of the terminal.

    Imports rasterio and cv2 (about 0.4 s), so :func:`main` calls it only when a command runs,
    not for ``--help`` / ``--version``.
    """
    import warnings

    try:
        from rasterio.errors import NotGeoreferencedWarning

        warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)
    except ImportError:  # pragma: no cover
        pass
    try:
        import cv2

        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except (ImportError, AttributeError):  # pragma: no cover
        pass


def _usage_errors() -> tuple[type[BaseException], ...]:
    """Exception classes of usage errors: typer >= 0.20 vendors click, older typer uses click."""
    import typer

    found: list[type[BaseException]] = []
    if hasattr(typer, "TyperException"):
        found.append(typer.TyperException)
    try:
        import click

        found.append(click.ClickException)
    except ImportError:  # pragma: no cover
        pass
    return tuple(found)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (used by the console script and the tests)."""
    import warnings

    import typer

    from sam2elnet.errors import UserError
    from sam2elnet.utils.paths import os_error_message

    saved = warnings.showwarning
    try:
        _setup_messages()
        args = sys.argv[1:] if argv is None else list(argv)
        if not _only_help(args):
            _quiet_native_libraries()
        app(args=args, standalone_mode=False, prog_name="elnet")
    except UserError as err:
        _error(str(err))
        return err.exit_code
    except OSError as err:  # disk full, permission denied, symlink loop, ...
        _error(os_error_message(err))
        return 2
    except KeyboardInterrupt:
        _error("interrupted; re-run with --resume to continue")
        return 130
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
    finally:
        warnings.showwarning = saved
    return 0


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
