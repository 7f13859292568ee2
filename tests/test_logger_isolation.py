"""tests/conftest.py's ``_package_loggers_restored``: what one test does to the ``sam2elnet*``
loggers is undone before the next test (on the same pytest-xdist worker) starts.

The first test configures the loggers the way running the typer app without ``main()`` does
(``sam2elnet.progress``: a stdout handler, INFO, no propagation) and then some, and does not
clean up; the second, run after it in the same process (pytest keeps a file's order and
``--dist loadfile`` keeps a file on one worker), checks that nothing of it is left.
"""

from __future__ import annotations

import logging

import pytest

NEW = "sam2elnet.test_logger_isolation.new"  # a logger no other code makes
_before: dict[str, tuple] = {}


def _state(name: str) -> tuple:
    lg = logging.getLogger(name)
    return lg.level, list(lg.handlers), list(lg.filters), lg.propagate, lg.disabled


def test_a_leaves_the_package_loggers_configured() -> None:
    from typer.testing import CliRunner

    from sam2elnet.cli.app import app

    for name in ("sam2elnet", "sam2elnet.progress", "sam2elnet.engine"):
        _before[name] = _state(name)
    # the root callback runs before the subcommand's --help: what a CliRunner test did
    res = CliRunner().invoke(app, ["stats", "--help"])
    assert res.exit_code == 0, res.output
    progress = logging.getLogger("sam2elnet.progress")
    assert progress.level == logging.INFO and not progress.propagate
    assert [type(h).__name__ for h in progress.handlers] == ["_Stdout"]
    logging.getLogger("sam2elnet").setLevel(logging.DEBUG)
    logging.getLogger("sam2elnet.engine").disabled = True
    logging.getLogger("sam2elnet.engine").addFilter(logging.Filter("nothing"))
    logging.getLogger(NEW).addHandler(logging.NullHandler())
    logging.getLogger(NEW).setLevel(logging.ERROR)
    assert _state("sam2elnet.progress") != _before["sam2elnet.progress"]


def test_b_the_next_test_finds_them_as_they_were(caplog: pytest.LogCaptureFixture) -> None:
    if not _before:
        pytest.skip("runs after test_a_leaves_the_package_loggers_configured (same module)")
    for name, state in _before.items():
        assert _state(name) == state, name
    assert _state(NEW) == (logging.NOTSET, [], [], True, False)
    # what the flaky test tripped over: an INFO line in caplog.messages though nothing here asked
    # for INFO (test_a's DEBUG on "sam2elnet" would let it through)
    logging.getLogger("sam2elnet.data").info("1 file(s) read")
    assert caplog.messages == []
