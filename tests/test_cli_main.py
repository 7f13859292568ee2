"""``python -m sam2elnet.cli`` and ``python -m sam2elnet`` run the same ``elnet`` command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sam2elnet import __version__

SRC = Path(__file__).resolve().parents[1] / "src"


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.mark.parametrize("module", ["sam2elnet.cli", "sam2elnet"])
def test_module_runs_the_cli(module, tmp_path):
    done = _run(module, "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"sam2elnet {__version__}"
    # the CLI error contract holds too: one error line naming the file, exit code 2
    missing = tmp_path / "nowhere"
    bad = _run(module, "stats", "--data", str(missing), "--no-progress")
    assert bad.returncode == 2, bad.stderr
    err = bad.stderr.strip()
    assert err.startswith("error:") and "\n" not in err and "nowhere" in err, err
