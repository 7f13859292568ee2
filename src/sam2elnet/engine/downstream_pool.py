"""The downstream trainings of one experiment side by side, each on one CPU thread (part of
:mod:`sam2elnet.engine.downstream`).

On a CPU, a U-Net's test IoU after a fixed number of steps moves with float rounding alone, and the
rounding depends on how many threads split each convolution (the demo's 72-step U-Nets moved by up
to 0.07 between 1 and 2 threads, docs/benchmarks.md "Demo timing"). So every downstream training
on a CPU runs on exactly one torch thread, whether alone or next to others: a setting's numbers
are the same on a 2-core laptop and a 64-core server, and the same whether its trainings ran one
after another (``workers=1``) or side by side. Side by side is also cheaper: the small U-Net
scales poorly over threads (two 1-thread trainings at once cost about half the CPU time of two
2-thread ones in turn).

Workers are processes (``fork`` where the platform has it: no second import of torch; else
``spawn``). How many (:func:`pool_workers`): the count that finishes the trainings soonest on the
thread policy's cores (:func:`sam2elnet.utils.threads.thread_count`: ``SAM2ELNET_THREADS``, the
CPUs this process may use), by :func:`makespan`. That is the core count, or up to twice it where
the last round would leave cores idle: five trainings on two cores run three at a time, the
kernel sharing two cores among three one-thread processes (2.5 trainings' time), not in three
rounds with the last one alone (3). A one-thread process wastes nothing when it shares a core
(no OpenMP thread spins waiting for a sibling); docs/benchmarks.md "Demo timing" measures it. On
a GPU, or with one worker, the trainings run in this process in turn, when their result is asked
for, as before.

While workers train, the caller may do other work that no training waits for
(:meth:`DownstreamPool.wait_for_core` first: it returns once a core is free of trainings, or at
once where the trainings share the cores anyway, and how many threads the caller may use, for
:func:`at_most_threads`): its work then fills cores that would idle, on one thread.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import pickle
import signal
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from sam2elnet.errors import UserError
from sam2elnet.utils.threads import set_torch_threads

__all__ = ["DownstreamPool", "at_most_threads", "makespan", "one_thread", "pool_workers"]


@contextlib.contextmanager
def at_most_threads(n: int) -> Iterator[None]:
    """torch's intra-op threads at most ``n`` (at least 1) inside the block, the previous count
    after it (both explicit counts of :func:`~sam2elnet.utils.threads.set_torch_threads`); a
    count already at most ``n`` is left alone."""
    import torch

    before = torch.get_num_threads()
    want = max(1, int(n))
    if before <= want:
        yield
        return
    set_torch_threads(want)
    try:
        yield
    finally:
        set_torch_threads(before)


def one_thread() -> contextlib.AbstractContextManager[None]:
    """torch's intra-op threads set to 1 inside the block, the previous count after it
    (:func:`at_most_threads` of 1)."""
    return at_most_threads(1)


def makespan(trainings: int, workers: int, cores: int) -> float:
    """How long ``trainings`` equal one-thread trainings take with ``workers`` of them at once
    on ``cores`` cores, in units of one training's time on a core of its own (0 for none).

    A model of fair sharing (the kernel's scheduler): a round of ``w`` trainings on ``c`` cores
    takes ``max(w, c) / c``; the trainings go in rounds of ``workers``, then the rest. Five on
    two cores: 3.0 two at a time (the third round alone), 2.5 three at a time. The ETA of
    trainings run side by side counts with it (:attr:`~sam2elnet.pipeline.experiment_stages.Stages.side_by_side`).
    """
    return _span_units(trainings, workers, cores) / max(1, int(cores))


def _span_units(trainings: int, workers: int, cores: int) -> int:
    """:func:`makespan` x ``cores``: a whole number, so workers of equal makespan compare equal
    (in floats 10 on 3 cores took 3.333... with 6 workers for less than with 5)."""
    n, c = max(0, int(trainings)), max(1, int(cores))
    w = max(1, min(int(workers), n)) if n else 1
    full, rest = divmod(n, w)
    return full * max(w, c) + (max(rest, c) if rest else 0)


def pool_workers(pending: int, device: str, threads: int | None = None) -> int:
    """Trainings to run at once: 1 on a non-CPU device; else, of ``pending`` trainings on
    ``threads`` cores (default: the thread policy's count), the fewest workers among those
    from ``min(pending, threads)`` to ``min(pending, 2 * threads)`` with the least
    :func:`makespan` (at most twice the cores: each worker holds one U-Net's memory); at least 1.
    Five on two cores: 3; four or six on two: 2; five on eight: 5."""
    if device != "cpu":
        return 1
    if threads is None:
        # looked up per call, not at module import: tests replace utils.threads.thread_count
        from sam2elnet.utils.threads import thread_count

        threads = thread_count()
    n, c = max(1, int(pending)), max(1, int(threads))
    choices = range(min(n, c), min(n, 2 * c) + 1)
    return min(choices, key=lambda w: (_span_units(n, w, c), w))


#: The signals a forked worker handles itself (:func:`_worker_start`).
_WORKER_SIGNALS = {signal.SIGINT, signal.SIGTERM}


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    """SIGINT and SIGTERM blocked in this thread while the context is open (where the platform
    has ``pthread_sigmask``): a process forked meanwhile starts with them blocked, and one sent
    to this process meanwhile is handled when the context closes."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, _WORKER_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _worker_start(parent: int) -> None:
    """A worker's start: one torch thread; on Linux it ends with its parent (a killed
    ``elnet experiment`` leaves no training running behind it). The parent alone handles Ctrl-C
    and ``kill``: a worker ignores SIGINT (a terminal's Ctrl-C reaches every process of the job)
    and ends at once on SIGTERM (:meth:`DownstreamPool.__exit__` terminates the workers), not by
    the handler a forked worker inherits from ``elnet`` (``KeyboardInterrupt``: an idle worker
    printed a ``Traceback ... KeyboardInterrupt`` under the run's ``error:`` line). The worker
    is forked with both signals blocked (:meth:`DownstreamPool.submit`): one that arrives while
    it is still starting (a run that fails right after its first training) waits until these
    dispositions are set, instead of reaching the inherited handler in the middle of
    ``multiprocessing``'s start-up."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _WORKER_SIGNALS)

    set_torch_threads(1)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent ended before the line above
        os._exit(1)


def _timed(
    fn: Callable[..., Any], kwargs: dict[str, Any], clock: Callable[[], float] = time.perf_counter
) -> tuple[Any, float]:
    t0 = clock()
    value = fn(**kwargs)
    return value, clock() - t0


def _run_in_worker(fn: Callable[..., Any], kwargs: dict[str, Any]) -> tuple[Any, float]:
    """``(fn(**kwargs), CPU seconds it took)`` in a worker (one torch thread: its time on one
    core, the same whether the worker had a core of its own or shared one); an error that
    cannot travel back by pickle (an exception class with its own constructor) comes back as a
    :class:`UserError` with its text."""
    try:
        return _timed(fn, kwargs, time.process_time)
    except UserError as e:
        try:
            pickle.loads(pickle.dumps(e))
        except Exception:  # noqa: BLE001 - any unpicklable error: its text is what matters
            raise UserError(str(e)) from None
        raise


class _Later:
    """A training run in this process when its result is first asked for (the serial path)."""

    def __init__(self, fn: Callable[..., Any], kwargs: dict[str, Any], cpu: bool) -> None:
        self._fn, self._kwargs, self._cpu = fn, kwargs, cpu
        self._value: tuple[Any, float] | None = None

    def done(self) -> bool:
        """Whether the training has run (only once its result was asked for)."""
        return self._value is not None

    def result(self) -> tuple[Any, float]:
        if self._value is None:
            with one_thread() if self._cpu else contextlib.nullcontext():
                self._value = _timed(self._fn, self._kwargs)
        return self._value


class _InWorker:
    """A training submitted to a worker process: :meth:`result` as the future's, except that a
    worker that ended abruptly (the kernel's out-of-memory killer, ``kill -9``) is a
    :class:`UserError` saying what to do, not ``BrokenProcessPool``'s traceback."""

    def __init__(self, future: Future, workers: int) -> None:
        self._future, self._workers = future, workers

    def done(self) -> bool:
        """Whether the training has ended (its result or error is there)."""
        return self._future.done()

    def result(self) -> tuple[Any, float]:
        try:
            return self._future.result()
        except BrokenProcessPool:
            raise UserError(
                "a downstream training's worker process ended abruptly (killed: out of memory, "
                f"or by a signal) with {self._workers} trainings side by side; re-run with "
                "--resume to continue, with SAM2ELNET_THREADS=1 to train one at a time in less "
                "memory"
            ) from None


class DownstreamPool:
    """Runs ``fn(**kwargs)`` trainings with ``workers`` at once (see the module docstring).

    Use as a context manager; :meth:`submit` returns an object whose ``result()`` gives
    ``(the training's return value, seconds it took)`` (or raises its error): in a worker its
    CPU seconds (one thread: its time on one core, whether it shared the core or not), in turn
    its wall seconds. ``fn`` and the values in ``kwargs`` and its result must pickle when
    ``workers`` > 1.

    Args:
        workers: trainings at once (:func:`pool_workers`); 1 = in this process, in turn.
        device: ``"cpu"`` (one torch thread per training) or a GPU (threads left alone).
    """

    def __init__(self, workers: int, device: str = "cpu") -> None:
        self.workers = max(1, int(workers))
        self.cpu = device == "cpu"
        self._ex: ProcessPoolExecutor | None = None
        self._futures: list[Future] = []

    def __enter__(self) -> DownstreamPool:
        if self.workers > 1:
            method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
            with warnings.catch_warnings():  # 3.12+: fork of a process with (idle) threads
                warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*fork")
                self._ex = ProcessPoolExecutor(
                    self.workers,
                    mp_context=mp.get_context(method),
                    initializer=_worker_start,
                    initargs=(os.getpid(),),
                )
        return self

    def submit(self, fn: Callable[..., Any], **kwargs: Any) -> _InWorker | _Later:
        if self._ex is None:
            return _Later(fn, kwargs, self.cpu)
        with warnings.catch_warnings(), _signals_blocked():  # workers fork here: see _worker_start
            warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*fork")
            future = self._ex.submit(_run_in_worker, fn, kwargs)
        self._futures.append(future)
        return _InWorker(future, self.workers)

    def outstanding(self) -> int:
        """Trainings submitted to the workers and not finished (queued or running); 0 in turn
        (``workers`` 1: a training runs only when its result is asked for)."""
        return sum(not f.done() for f in self._futures)

    def wait_for_core(self, cores: int | None = None) -> int:
        """Wait until fewer trainings are queued or running than ``cores`` (default: the thread
        policy's count, :func:`~sam2elnet.utils.threads.thread_count`); return how many of the
        ``cores`` no training uses then (>= 1), the torch threads for work the caller does next
        (:func:`at_most_threads`: more would slow the trainings and itself). At once in turn
        (all ``cores``) or with more cores than trainings; at once on one thread where more
        workers than ``cores`` share them (five trainings on two cores, three at a time: the
        caller's work is one more share of two busy cores, and no core idles at the end);
        with four trainings on two cores, when the last one starts alone (1). A training's
        error is not raised here but by its ``result()``."""
        if cores is None:
            # looked up per call, not at module import: tests replace utils.threads.thread_count
            from sam2elnet.utils.threads import thread_count

            cores = thread_count()
        cores = max(1, int(cores))
        if self._ex is not None and self.workers > cores:
            return 1
        while True:
            running = [f for f in self._futures if not f.done()]
            if len(running) < cores:
                return cores - len(running)
            wait(running, return_when=FIRST_COMPLETED)

    def __exit__(self, *exc: object) -> None:
        if self._ex is not None:
            if exc[0] is not None:  # an error or Ctrl-C: no training goes on behind it
                for proc in list((getattr(self._ex, "_processes", None) or {}).values()):
                    proc.terminate()
            self._ex.shutdown(wait=True, cancel_futures=exc[0] is not None)
            self._ex = None
        sys.stderr.flush()
