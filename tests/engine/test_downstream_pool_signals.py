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
from pathlib import Path

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


def _slow_start(real, marker: str, parent: int) -> None:  # noqa: ANN001
    try:
        time.sleep(1.0)  # a worker still starting (a loaded machine) when the run ends
    except BaseException as err:  # what the inherited handler raised in the child
        Path(marker).write_text(type(err).__name__)
        raise
    real(parent)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork start method only")
def test_a_worker_still_starting_when_the_run_fails_ends_quietly(
    capfd, monkeypatch, tmp_path: Path
) -> None:
    """Found in a final check under load: a worker forked by the first submit had not reached
    its start function when the stage failed, so __exit__'s SIGTERM met the handler inherited
    from elnet (``Process ForkProcess-10: Traceback ... KeyboardInterrupt``). Workers now fork
    with SIGINT / SIGTERM blocked until their own dispositions are set."""
    import functools

    import sam2elnet.engine.downstream_pool as dp

    marker = tmp_path / "interrupted"
    slow = functools.partial(_slow_start, dp._worker_start, str(marker))
    monkeypatch.setattr(dp, "_worker_start", slow)
    before = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    with _term_as_interrupt(), pytest.raises(RuntimeError):
        with DownstreamPool(2) as pool:
            pool.submit(_pid_after, seconds=0.0)
            time.sleep(0.3)  # both workers forked, both still in their start-up
            raise RuntimeError("a stage failed")
    time.sleep(0.5)
    err = capfd.readouterr().err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    # the child's own traceback goes to its logging ("Exception in initializer"), which pytest's
    # handlers swallow there: the marker says whether the inherited handler ran
    assert not marker.exists(), marker.read_text()
    assert signal.pthread_sigmask(signal.SIG_BLOCK, set()) == before  # the parent's mask back


def _killed_by_the_kernel(k: int) -> int:
    if k == 1:
        os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer ends a process
    return k


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork start method only")
def test_a_worker_killed_mid_training_is_one_error_saying_what_to_do() -> None:
    """Was concurrent.futures' BrokenProcessPool traceback (two U-Nets side by side take twice
    the memory of one: an out-of-memory kill on a cluster node is the likely cause)."""
    from sam2elnet.errors import UserError

    with pytest.raises(UserError) as err:
        with DownstreamPool(2) as pool:
            runs = [pool.submit(_killed_by_the_kernel, k=k) for k in (0, 1)]
            [r.result() for r in runs]
    assert str(err.value) == (
        "a downstream training's worker process ended abruptly (killed: out of memory, or by a "
        "signal) with 2 trainings side by side; re-run with --resume to continue, with "
        "SAM2ELNET_THREADS=1 to train one at a time in less memory"
    )
