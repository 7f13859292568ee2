"""Downstream trainings side by side (engine.downstream_pool): one torch thread each, the same
numbers whether they run in turn or at once, errors brought back, the worker count."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from helpers_downstream import tiny_downstream_config, write_disk_pairs
from hypothesis import given
from hypothesis import strategies as st

from sam2elnet.engine.downstream import train_and_evaluate
from sam2elnet.engine.downstream_pool import (
    DownstreamPool,
    makespan,
    one_thread,
    pool_workers,
)
from sam2elnet.errors import DataError


def _threads_and_pid() -> tuple[int, int]:
    return torch.get_num_threads(), os.getpid()


def test_every_training_gets_one_thread_in_turn_or_side_by_side() -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with DownstreamPool(1) as pool:
            (n, pid), seconds = pool.submit(_threads_and_pid).result()
        assert (n, pid) == (1, os.getpid()) and seconds >= 0
        assert torch.get_num_threads() == 2  # the caller's count is put back
        with DownstreamPool(2) as pool:
            runs = [pool.submit(_threads_and_pid) for _ in range(2)]
            got = [r.result()[0] for r in runs]
        assert [n for n, _ in got] == [1, 1]
        assert all(pid != os.getpid() for _, pid in got)  # worker processes
        with DownstreamPool(1, device="cuda") as pool:  # a GPU run: CPU threads left alone
            (n, _), _ = pool.submit(_threads_and_pid).result()
        assert n == 2
    finally:
        torch.set_num_threads(before)


def test_same_numbers_in_turn_and_side_by_side_whatever_the_callers_threads(
    tmp_path: Path,
) -> None:
    test = write_disk_pairs(tmp_path / "test", 4, size=48, seed=1)
    sets = [write_disk_pairs(tmp_path / f"train{k}", 8, size=48, seed=10 + k) for k in range(2)]
    cfg = tiny_downstream_config(epochs=2, image_size=48)

    def run(workers: int, caller_threads: int) -> list[dict]:
        before = torch.get_num_threads()
        torch.set_num_threads(caller_threads)
        try:
            with DownstreamPool(workers) as pool:
                started = [
                    pool.submit(train_and_evaluate, train_pairs=p, test_pairs=test, cfg=cfg)
                    for p in sets
                ]
                return [s.result()[0].to_dict() for s in started]
        finally:
            torch.set_num_threads(before)

    in_turn = run(1, caller_threads=2)
    side_by_side = run(2, caller_threads=2)
    for a, b in zip(in_turn, side_by_side, strict=True):
        assert a["metrics"] == b["metrics"] and a["history"] == b["history"]
        assert a["per_image"] == b["per_image"]
    assert in_turn[0]["history"] != in_turn[1]["history"]  # two different trainings
    with one_thread():  # and as one training alone on one thread gives it
        alone = train_and_evaluate(sets[1], test, cfg).to_dict()
    assert alone["metrics"] == in_turn[1]["metrics"]


def test_an_error_in_a_worker_comes_back_naming_the_file(tmp_path: Path) -> None:
    test = write_disk_pairs(tmp_path / "test", 2, seed=1)
    good = write_disk_pairs(tmp_path / "train", 4)
    bad = [(good[0][0], tmp_path / "missing_mask.png"), *good[1:]]
    with DownstreamPool(2) as pool:
        ok = pool.submit(
            train_and_evaluate,
            train_pairs=good,
            test_pairs=test,
            cfg=tiny_downstream_config(epochs=1),
        )
        broken = pool.submit(
            train_and_evaluate, train_pairs=bad, test_pairs=test, cfg=tiny_downstream_config()
        )
        with pytest.raises(DataError, match="missing_mask.png"):
            broken.result()
        assert ok.result()[0].n_train == 4


@pytest.mark.parametrize(
    ("pending", "device", "threads", "want"),
    [
        (1, "cpu", 8, 1),
        (3, "cpu", 8, 3),
        (5, "cuda", 8, 1),
        (0, "cpu", 2, 1),
        (4, "cpu", 2, 2),  # two rounds of two: no core idles
        (6, "cpu", 2, 2),
        (10, "cpu", 2, 2),
        (5, "cpu", 2, 3),  # three at a time: 2.5 trainings' time, not 3 rounds with one alone
        (3, "cpu", 2, 3),  # 1.5, not 2
        (7, "cpu", 2, 4),  # 3.5, not 4 (at most twice the cores)
        (9, "cpu", 8, 9),  # one round on eight cores
        (20, "cpu", 8, 10),  # 2.5, the fewest workers reaching it
        (5, "cpu", 1, 1),  # one core: one at a time (SAM2ELNET_THREADS=1)
        (10, "cpu", 3, 5),  # 10/3 with 5 or 6: the fewest (floats made 6's 3.333... smaller)
        (14, "cpu", 6, 7),
    ],
)
def test_workers_finish_the_trainings_soonest_with_the_fewest_processes(
    pending: int, device: str, threads: int, want: int
) -> None:
    assert pool_workers(pending, device, threads) == want


@pytest.mark.parametrize(
    ("trainings", "workers", "cores", "want"),
    [(5, 2, 2, 3.0), (5, 3, 2, 2.5), (5, 5, 2, 2.5), (4, 2, 2, 2.0), (1, 4, 2, 1.0), (0, 2, 2, 0.0),
     (5, 1, 1, 5.0), (3, 8, 8, 1.0)],
)  # fmt: skip
def test_makespan_of_equal_trainings(trainings: int, workers: int, cores: int, want: float) -> None:
    assert makespan(trainings, workers, cores) == pytest.approx(want)


@given(
    n=st.integers(min_value=1, max_value=40),
    w=st.integers(min_value=1, max_value=40),
    c=st.integers(min_value=1, max_value=16),
)
def test_makespan_is_never_below_the_work_or_one_training(n: int, w: int, c: int) -> None:
    """No schedule beats the work spread over every core, nor one training's own time; the
    chosen worker count is never slower than one worker per core."""
    t = makespan(n, w, c)
    assert t >= n / c - 1e-9 and t >= 1.0
    best = pool_workers(n, "cpu", c)
    assert makespan(n, best, c) <= makespan(n, min(n, c), c) + 1e-9
    assert min(n, c) <= best <= min(n, 2 * c)


def test_workers_are_the_fewest_of_the_least_makespan_in_exact_arithmetic() -> None:
    """Ties of :func:`makespan` (rational, in floats one ulp apart) go to the fewest workers on
    any core count: each worker holds one U-Net's memory. Was: 952 of 6,368 cases up to 32
    cores took more (10 trainings on 3 cores: 6 workers, not 5)."""
    from fractions import Fraction

    def exact(n: int, w: int, c: int) -> Fraction:
        w = min(w, n)
        full, rest = divmod(n, w)
        return full * Fraction(max(w, c), c) + (Fraction(max(rest, c), c) if rest else 0)

    for c in range(1, 33):
        for n in range(1, 200):
            choices = range(min(n, c), min(n, 2 * c) + 1)
            want = min(choices, key=lambda w: (exact(n, w, c), w))
            assert pool_workers(n, "cpu", c) == want, (n, c)


def test_workers_follow_the_thread_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAM2ELNET_THREADS", "4")
    assert pool_workers(4, "cpu") == 4
    assert pool_workers(5, "cpu") == 5  # 1.25 trainings' time, not 2 with the fifth alone
    monkeypatch.setenv("SAM2ELNET_THREADS", "1")  # the test suite's and helpers' setting
    assert pool_workers(5, "cpu") == 1


def _busy_then_sleep(seconds: float) -> float:
    import time

    end = time.process_time() + 0.3
    while time.process_time() < end:  # 0.3 s of CPU
        pass
    time.sleep(seconds)
    return seconds


def test_a_workers_time_is_its_cpu_time_in_turn_its_wall_time() -> None:
    """Side by side, a training's time is what it used of a core (the ETA's sample and its
    ``done in`` line: the same whether it had a core of its own or shared one); waiting does
    not count. In turn it is the wall time, as before."""
    with DownstreamPool(2) as pool:
        runs = [pool.submit(_busy_then_sleep, seconds=1.0) for _ in range(2)]
        took = [r.result()[1] for r in runs]
    assert all(0.25 < t < 0.9 for t in took), took
    with DownstreamPool(1) as pool:
        (_, wall) = pool.submit(_busy_then_sleep, seconds=1.0).result()
    assert wall > 1.25


def _sleep(seconds: float) -> float:
    import time

    time.sleep(seconds)
    return seconds


def test_an_error_in_the_caller_stops_the_trainings_running_beside_it() -> None:
    """A failed stage or Ctrl-C while two trainings run: their workers end with it, not after
    the trainings (minutes each in a protocol run)."""
    import time

    t0 = time.perf_counter()
    with pytest.raises(RuntimeError, match="stage failed"), DownstreamPool(2) as pool:
        runs = [pool.submit(_sleep, seconds=60) for _ in range(2)]
        time.sleep(1.0)  # both started
        procs = list(pool._ex._processes.values())  # type: ignore[union-attr]
        assert len(procs) == 2 and all(p.is_alive() for p in procs)
        raise RuntimeError("stage failed")
    assert time.perf_counter() - t0 < 20
    assert not any(p.is_alive() for p in procs) and len(runs) == 2


def test_wait_for_core_returns_when_a_cpu_is_free_of_trainings() -> None:
    """Trainings in rounds of the core count (three on two cores here, two at a time): the
    caller's other work waits for a free core, not beside two trainings where it slows both;
    more workers than cores share them anyway: it starts at once."""
    import time

    with DownstreamPool(2) as pool:
        t0 = time.perf_counter()
        runs = [pool.submit(_sleep, seconds=s) for s in (0.2, 1.5, 4.0)]
        assert pool.outstanding() == 3
        pool.wait_for_core(8)  # more cores than trainings: at once
        assert time.perf_counter() - t0 < 1.0 and pool.outstanding() == 3
        pool.wait_for_core(2)  # the 1.5 s one ends: the 4 s one (started at 0.2 s) runs alone
        waited = time.perf_counter() - t0
        assert pool.outstanding() == 1 and 1.4 < waited < 3.5
        assert [r.result()[0] for r in runs] == [0.2, 1.5, 4.0]
        assert pool.outstanding() == 0
    with DownstreamPool(3) as pool:  # three on two cores: they share the cores anyway
        runs = [pool.submit(_sleep, seconds=s) for s in (1.0, 1.0, 1.0)]
        t0 = time.perf_counter()
        assert pool.wait_for_core(2) == 1  # at once, on one thread: one more share
        assert time.perf_counter() - t0 < 0.5 and pool.outstanding() == 3
        assert [r.result()[0] for r in runs] == [1.0, 1.0, 1.0]
    with DownstreamPool(1) as pool:  # in turn: nothing runs before its result is asked for
        later = pool.submit(_sleep, seconds=0.5)
        t0 = time.perf_counter()
        pool.wait_for_core(1)
        assert time.perf_counter() - t0 < 0.2 and pool.outstanding() == 0
        assert later.result()[0] == 0.5
