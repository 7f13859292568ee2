"""Asserting what the package says: warnings (log records of ``sam2elnet.*`` loggers) and the one
``error:`` line of a refused command (:func:`one_error_line`, :func:`error_after_warnings`,
:func:`error_line`, :func:`refused_untouched`)."""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from sam2elnet.cli import main


@contextlib.contextmanager
def logs_warning(caplog: pytest.LogCaptureFixture, pattern: str) -> Iterator[None]:
    """The block logs a WARNING record matching ``pattern`` (``re.search``) on a ``sam2elnet``
    logger, and gives no Python warning of its own (one channel: logging)."""
    caplog.clear()
    with (
        caplog.at_level(logging.WARNING, logger="sam2elnet"),
        warnings.catch_warnings(record=True) as seen,
    ):
        warnings.simplefilter("always")
        yield
    records = [
        r
        for r in caplog.records
        if r.levelno == logging.WARNING
        and r.name.startswith("sam2elnet.")
        and re.search(pattern, r.getMessage())
    ]
    assert records, [r.getMessage() for r in caplog.records]
    own = [str(w.message) for w in seen if re.search(pattern, str(w.message))]
    assert not own, own


def message_blocks(err: str) -> list[str]:
    """The messages of a command's stderr, each as one line: a ``warning:`` / ``error:`` /
    ``note:`` / ``info:`` line with the indented lines after it (advice laid out for 80
    columns), white space runs made one space."""
    blocks: list[str] = []
    for ln in err.splitlines():
        if ln[:1].isspace() and blocks:
            blocks[-1] += " " + ln
        elif ln.strip():
            blocks.append(ln)
    return [" ".join(b.split()) for b in blocks]


def run_main(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """``elnet ARGS`` in this process: (exit code, stdout, stderr) of that call only."""
    capsys.readouterr()
    rc = main([str(a) for a in args])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def run_main_err(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    """``elnet ARGS`` in this process: (exit code, stderr) of that call only."""
    rc, _, err = run_main(capsys, *args)
    return rc, err


def one_error_line(rc: int, err: str) -> str:
    """The one ``error: ...`` line of a refused command (exit 2, no traceback)."""
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def error_after_warnings(rc: int, err: str) -> str:
    """The one ``error: ...`` line of a refused batch job (exit 2, no traceback): warnings (each
    skipped file) may come before it, nothing after it."""
    assert rc == 2, err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and err.rstrip().endswith(lines[0]) and "Traceback" not in err, err
    return lines[0]


def error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run ``elnet argv``; assert exit 2 and one error line without a traceback; return it."""
    return one_error_line(*run_main_err(capsys, *argv))


def file_tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes (to show that nothing was written)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def refused_untouched(capsys: pytest.CaptureFixture[str], argv: list[str], root: Path) -> str:
    """:func:`error_line`, and assert that nothing under ``root`` was written or changed."""
    before = file_tree(root)
    err = error_line(capsys, argv)
    assert file_tree(root) == before  # no lock file, no quality.csv, no label
    return err


def screen_rows(text: str) -> list[str]:
    """The rows a terminal shows for ``text`` (``\\r``: back to column 0, then overwrite)."""
    rows = []
    for raw in text.split("\n"):
        row: list[str] = []
        col = 0
        for ch in raw:
            if ch == "\r":
                col = 0
                continue
            if col < len(row):
                row[col] = ch
            else:
                row.append(ch)
            col += 1
        rows.append("".join(row).rstrip())
    return rows
