"""``python -m sam2elnet.cli`` and ``python -m sam2elnet`` run the same ``elnet`` command line."""

from __future__ import annotations

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
    them)."""
    code = (
        "import json, sys, warnings; from sam2elnet.cli import main\n"
        f"rc = main(['stats', '--data', {str(tmp_path / 'nowhere')!r}, '--no-progress'])\n"
        "from rasterio.errors import NotGeoreferencedWarning as W\n"
        "print(json.dumps([rc, any(f[0] == 'ignore' and f[2] is W for f in warnings.filters)]))"
    )
    res = _run("-c", code)
    assert res.stdout.strip().splitlines()[-1] == "[2, true]", res.stderr
