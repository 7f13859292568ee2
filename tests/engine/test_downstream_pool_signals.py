"""A failed or interrupted ``elnet experiment`` ends its downstream workers without a traceback.

Found in review: the workers are forked from ``elnet``, whose SIGTERM handler raises
``KeyboardInterrupt`` (cli._term_as_interrupt), so a worker waiting for its next training when a
stage failed (or Ctrl-C / ``kill`` ended the run) printed ``Process ForkProcess-1: Traceback ...
KeyboardInterrupt`` under the run's one ``error:`` line.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from sam2elnet.cli import _term_as_interrupt
from sam2elnet.engine.downstream_pool import DownstreamPool


def _pid_after(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork start method only")
@pytest.mark.parametrize("ended_by", ["error", "ctrl-c"])
def test_workers_end_quietly_when_the_run_ends(capfd, ended_by: str) -> None:
    with _term_as_interrupt(), pytest.raises((RuntimeError, KeyboardInterrupt)):
        with DownstreamPool(2) as pool:
            quick = pool.submit(_pid_after, seconds=0.0)
            pool.submit(_pid_after, seconds=30.0)  # still training when the run ends
            (idle, _) = quick.result()  # this worker now waits for a training that never comes
            if ended_by == "error":
                raise RuntimeError("a stage failed")
            os.kill(idle, signal.SIGINT)  # a terminal's Ctrl-C reaches every process of the job
            time.sleep(0.5)
            raise KeyboardInterrupt
    time.sleep(0.5)  # the workers' last words, if any, reach stderr
    err = capfd.readouterr().err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
