"""``python -m sam2elnet.cli`` and ``python -m sam2elnet`` run the same ``elnet`` command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sam2elnet import __version__

SRC = Path(__file__).resolve().parents[2] / "src"


def _run(*args: str) -> subprocess.CompletedProcess:
    """``python ARGS`` with this checkout's sources first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.mark.parametrize("module", ["sam2elnet.cli", "sam2elnet"])
def test_module_runs_the_cli(module, tmp_path):
    done = _run("-m", module, "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"sam2elnet {__version__}"
    # the CLI error contract holds too: one error line naming the file, exit code 2
    missing = tmp_path / "nowhere"
    bad = _run("-m", module, "stats", "--data", str(missing), "--no-progress")
    assert bad.returncode == 2, bad.stderr
    err = bad.stderr.strip()
    assert err.startswith("error:") and "\n" not in err and "nowhere" in err, err


HEAVY = ("torch", "numpy", "rasterio", "cv2", "yaml", "transformers", "matplotlib")


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"], ["--version"]])
def test_help_imports_nothing_heavy(args):
    """``elnet --help`` stays fast: the heavy libraries (and the rasterio/OpenCV message set-up
    of :func:`sam2elnet.cli._quiet_native_libraries`) load only when a command runs."""
    code = (
        "import contextlib, io, json, sys; from sam2elnet.cli import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()): rc = main({args!r})\n"
        f"print(json.dumps([rc, sorted(m for m in {HEAVY!r} if m in sys.modules)]))"
    )
    res = _run("-c", code)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "[0, []]"


def test_a_running_command_quiets_the_native_libraries(tmp_path):
    """The other side: a command that runs sets up the rasterio/OpenCV filters (and so imports
    them) while it runs; main() removes them again when it returns."""
    code = (
        "import json, sys, warnings; import sam2elnet.cli as cli\n"
        "def on():\n"
        "    from rasterio.errors import NotGeoreferencedWarning as W\n"
        "    return any(f[0] == 'ignore' and f[2] is W for f in warnings.filters)\n"
        "seen = []; app = cli.app\n"
        "def spy(**kw): seen.append(on()); return app(**kw)\n"
        "cli.app = spy\n"
        f"rc = cli.main(['stats', '--data', {str(tmp_path / 'nowhere')!r}, '--no-progress'])\n"
        "print(json.dumps([rc, seen, on()]))"
    )
    res = _run("-c", code)
    assert res.stdout.strip().splitlines()[-1] == "[2, [true], false]", res.stderr


def test_main_puts_the_callers_opencv_log_level_back(tmp_path):
    """OpenCV's log level is process state too: main() turns it down to errors while a command
    runs and puts the caller's level back when it returns (it stayed at errors before)."""
    code = (
        "import json, cv2; import sam2elnet.cli as cli\n"
        "lg = cv2.utils.logging; lg.setLogLevel(lg.LOG_LEVEL_SILENT)  # the caller's choice\n"
        "seen = []; app = cli.app\n"
        "def spy(**kw): seen.append(lg.getLogLevel()); return app(**kw)\n"
        "cli.app = spy\n"
        f"rc = cli.main(['stats', '--data', {str(tmp_path / 'nowhere')!r}, '--no-progress'])\n"
        "print(json.dumps([rc, seen, lg.getLogLevel(), lg.LOG_LEVEL_ERROR, lg.LOG_LEVEL_SILENT]))"
    )
    res = _run("-c", code)
    rc, seen, after, error, silent = json.loads(res.stdout.strip().splitlines()[-1])
    assert (rc, seen, after) == (2, [error], silent), res.stderr


def test_main_puts_the_callers_logging_and_warnings_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """main() called in-process (the Python API, notebooks, tests) leaves the loggers it
    configures (levels, handlers, propagation), the root logger, ``warnings.filters`` and
    ``warnings.showwarning`` as the caller had them, after a success and after an error; a second
    main() prints its ``warning:`` lines like the first."""
    import logging
    import warnings

    from helpers_data import grey_rgb, make_generic, write_png

    from sam2elnet.cli import main

    data = make_generic(tmp_path / "d", n=2)
    write_png(data / "images" / "lonely.png", grey_rgb(32, 9))  # one unmatched-file warning
    names = ("", "sam2elnet", "sam2elnet.progress", "rasterio", "PIL")

    def state() -> list[object]:
        loggers = [logging.getLogger(n) for n in names]
        return [[(x.level, list(x.handlers), x.propagate, x.disabled) for x in loggers],
                list(warnings.filters), warnings.showwarning]  # fmt: skip

    records: list[str] = []

    class Mine(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    mine = Mine()
    pkg = logging.getLogger("sam2elnet")
    old_level = pkg.level
    pkg.addHandler(mine)
    pkg.setLevel(logging.DEBUG)  # the caller's own setup
    try:
        before = state()
        for _ in range(2):
            assert main(["stats", "--data", str(data), "--no-progress"]) == 0
            assert "warning: 1 file under" in capsys.readouterr().err
            assert state() == before
        assert main(["stats", "--data", str(tmp_path / "nowhere"), "--no-progress"]) == 2
        assert capsys.readouterr().err.startswith("error: ")
        assert state() == before
        assert main(["stats", "--bad-option"]) == 2
        assert state() == before
    finally:
        pkg.removeHandler(mine)
        pkg.setLevel(old_level)
    assert sum("no image/label partner" in r for r in records) == 2  # the caller's handler too


def test_ctrl_c_is_exit_130_with_one_error_line(monkeypatch, capsys):
    """Typer (standalone_mode=False) turns KeyboardInterrupt into a *returned* 130; main() used to
    drop it, so Ctrl-C during `elnet train` exited 0 without a word."""
    import sam2elnet.model.download as download
    from sam2elnet.cli import main

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(download, "list_weights", interrupted)
    assert main(["weights", "list"]) == 130
    err = capsys.readouterr().err.strip()
    assert err == "error: interrupted; run the command again"  # it has no --resume


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--verbose", "annotate", "--model", "m.pt"], "re-run with --resume to continue"),
        (["scene", "--image", "x.tif"], "re-run with --resume to continue"),
        (["experiment"], "re-run with --resume to continue"),
        (["cv", "--data", "d"], "run the same command again to continue (finished folds"),
        (["serve", "--model", "m.pt"], "start it again with the same --model and --workdir"),
        (["export", "--labels", "l"], "interrupted; run the command again"),
        (["weights", "download"], "interrupted; run the command again"),
    ],
)
def test_an_interrupt_names_the_way_to_go_on_that_the_command_has(monkeypatch, capsys, args, says):
    """Found in a docs walk: Ctrl-C on `elnet serve` or `elnet cv` said `re-run with --resume`,
    an option neither has (cv answers `No such option: --resume`)."""
    from sam2elnet import cli

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_setup_messages", interrupted)  # before the command runs
    assert cli.main(args) == 130
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: interrupted") and says in err
    assert err.count("\n") == 0


def test_a_typer_exit_code_inside_a_command_is_kept(monkeypatch, capsys):
    import typer

    import sam2elnet.model.download as download
    from sam2elnet.cli import main

    def stop():
        raise typer.Exit(3)

    monkeypatch.setattr(download, "list_weights", stop)
    assert main(["weights", "list"]) == 3
    assert main(["--version"]) == 0
    assert capsys.readouterr().err == ""


def test_command_help_paragraphs_are_not_broken_at_the_docstrings_line_breaks():
    """Typer kept a docstring's line breaks and wrapped again at the terminal width: ``elnet
    evaluate --help`` showed ragged half lines ("... and how well" / "quality.csv predicts ...").
    Paragraphs are now one line each before rich wraps them; blank lines still separate them."""
    code = (
        "import os, sys; os.environ['COLUMNS'] = '400'; from sam2elnet.cli import main\n"
        "sys.exit(main(['evaluate', '--help']))"
    )
    res = _run("-c", code)
    assert res.returncode == 0, res.stderr
    text = res.stdout
    assert (
        "Pixel-summed IoU/F1/precision/recall, optional boundary and road measures, and how well "
        "quality.csv predicts the true IoU." in text
    )
    assert "``" not in text and "`elnet annotate` / `elnet enhance`" in text
    from sam2elnet.cli.app import app

    helps = {c.name: c.help for c in app.registered_commands}
    assert all("\n" not in p for h in helps.values() for p in h.split("\n\n")), helps


@pytest.mark.parametrize(
    ("args", "held", "says"),
    [
        (["train", "--data", "d", "--out", "RUN"], None, "before RUN held anything"),
        (["train", "--data", "d", "--out", "RUN"], "train.log", "before RUN held anything"),
        (["train", "--out", "RUN", "--resume"], "config.yaml", "re-run with --resume"),
        (["train", "--data", "d", "--out=RUN"], "last.pt", "re-run with --resume"),
        (["annotate", "--model", "m.pt", "--images", "i", "--out", "RUN"], None, "before RUN"),
        (["annotate", "--model", "m.pt", "--out", "RUN"], ".x.tmp.tif", "before RUN"),
        (["annotate", "--model", "m.pt", "--out", "RUN"], "quality.csv", "re-run with --resume"),
        (["experiment", "--out", "RUN"], None, "before RUN held anything"),
        (["scene", "--image", "x.tif", "--out", "RUN"], None, "before RUN held anything"),
        (["demo", "--out", "RUN"], None, "before RUN held anything"),
    ],
)
def test_an_interrupt_before_the_out_folder_holds_a_run_says_run_it_again(
    monkeypatch, capsys, tmp_path, args, held, says
):
    """Found in a user trial: `kill -INT` 3 s into `elnet train --data D --out RUN` (nothing
    written yet) said `re-run with --resume to continue`, and `elnet train --out RUN --resume`
    then answered `nothing to resume: no run (config.yaml) in this folder`. A command whose
    --out holds nothing to resume (train: no config.yaml / last.pt) now says to run it again."""
    from sam2elnet import cli

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.chdir(tmp_path)
    if held is not None:
        (tmp_path / "RUN").mkdir()
        (tmp_path / "RUN" / held).write_text("x")
    monkeypatch.setattr(cli, "_setup_messages", interrupted)  # before the command runs
    assert cli.main(args) == 130
    err = capsys.readouterr().err.strip()
    if "before RUN" in says:
        assert err == (
            "error: interrupted before RUN held anything to resume; run the same command again"
        )
    else:
        assert err == "error: interrupted; re-run with --resume to continue"
