"""SIGTERM ends a command as Ctrl-C does: temporary files removed, ``error: interrupted``.

Found in a user trial: ``kill PID`` (also ``timeout``, SLURM or Kubernetes stopping a job) of
``elnet scene`` on one scene left ``.<out>.<random>.tmp.tif`` files (the label's and the
probability map's, each as large as the finished file) that no later run removed; Ctrl-C
removed them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers_data import write_tif

ROOT = Path(__file__).resolve().parents[2]


def test_sigterm_removes_the_scene_temporaries_and_says_interrupted(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    scene = write_tif(tmp_path / "s.tif", rng.integers(1, 255, (1, 2048, 2048), dtype=np.uint8))
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "SAM2ELNET_THREADS": "1", "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "sam2elnet", "scene", "--model", "builtin:smoothing"]
    cmd += ["--image", str(scene), "--out", str(out / "k.tif"), "--tile", "32"]
    cmd += ["--overlap", "8", "--prob", "--no-progress"]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(out.glob(".k.*.tmp.tif")) and p.poll() is None:
        assert time.monotonic() < deadline, "no temporary file appeared"
        time.sleep(0.05)
    assert p.poll() is None, "the scene finished before it could be stopped; make it larger"
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    # 130, or -SIGINT when the interrupt came before the first window (the interpreter then
    # ends by SIGINT, which a shell reports as 130 too): the run ended as by Ctrl-C
    assert p.returncode in (130, -signal.SIGINT), err
    # nothing was written, so there is nothing to resume (cli._interrupted_message)
    assert err.strip().splitlines()[-1] == (
        f"error: interrupted before {out / 'k.tif'} held anything to resume; run the same "
        "command again"
    )
    assert "Traceback" not in err
    assert sorted(x.name for x in out.iterdir()) == []  # no temporaries, no half-written label


def test_resume_of_one_scene_says_it_starts_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sam2elnet.cli import main

    scene = write_tif(tmp_path / "s.tif", np.arange(64 * 64, dtype=np.uint8).reshape(1, 64, 64))
    args = ["scene", "--model", "builtin:smoothing", "--image", str(scene)]
    args += ["--out", str(tmp_path / "k.tif"), "--tile", "32", "--overlap", "8", "--no-progress"]
    assert main([*args, "--resume"]) == 0
    err = capsys.readouterr().err
    assert (
        "note: --resume skips the finished scenes of a folder (--image DIR); s.tif is one scene, "
        "predicted from its first window"
    ) in err
    assert (tmp_path / "k.tif").exists()
    assert main(args) == 0
    assert "--resume" not in capsys.readouterr().err
