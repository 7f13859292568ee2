"""The ``elnet`` command line: a thin layer over the Python API.

Each command group lives in its own module that adds commands to :data:`app`; this module imports
them all and provides :func:`main`, which turns :class:`~sam2elnet.errors.UserError` into a one-line
``error: ...`` message with exit code 2.
"""

from __future__ import annotations

import sys

from sam2elnet.cli import (  # noqa: F401  (imported for their commands)
    data_cmd,
    engine_cmd,
    eval_cmd,
    geo_cmd,
    pipeline_cmd,
    weights_cmd,
)
from sam2elnet.cli.app import app


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (used by the console script and the tests)."""
    from sam2elnet.errors import UserError

    try:
        app(args=argv, standalone_mode=False, prog_name="elnet")
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except FileNotFoundError as err:
        print(
            f"error: {err.filename or err}: no such file or folder; check the path", file=sys.stderr
        )
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; re-run with --resume to continue", file=sys.stderr)
        return 130
    except SystemExit as err:  # typer.Exit inside commands
        return int(err.code or 0) if not isinstance(err.code, str) else 1
    except Exception as err:  # click usage errors arrive here in non-standalone mode
        import click

        if isinstance(err, click.exceptions.Exit):
            return err.exit_code
        if isinstance(err, click.ClickException):
            err.show()
            return err.exit_code
        if isinstance(err, click.exceptions.Abort):
            print("error: aborted", file=sys.stderr)
            return 1
        raise
    return 0


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
