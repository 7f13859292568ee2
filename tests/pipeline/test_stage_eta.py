"""Stage lines with elapsed time and ETA (pipeline.experiment.Stages), as the demo prints them."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from types import SimpleNamespace

import pytest

from sam2elnet.engine.downstream_pool import makespan
from sam2elnet.pipeline import experiment_stages
from sam2elnet.pipeline.experiment_stages import Stages, clock


class _Clock:
    """The stage clock (``time.perf_counter`` in experiment_stages), at ``now`` seconds: a
    stage made by :meth:`takes` moves it on, so the timings and ETA lines are exact."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now

    def takes(self, seconds: float, summary: dict | None = None):
        """A stage function that takes ``seconds`` and returns ``summary`` (default {})."""

        def fn() -> dict:
            self.now += seconds
            return dict(summary or {})

        return fn


@pytest.fixture
def clk(monkeypatch) -> _Clock:
    c = _Clock()
    fake = SimpleNamespace(perf_counter=c.perf_counter, time=lambda: 1.7e9)
    monkeypatch.setattr(experiment_stages, "time", fake)
    return c


def _line(err: str, stage: str) -> str:
    """The stage line of ``stage`` that says how it ended (not its ``...`` start line)."""
    return next(ln for ln in err.splitlines() if f"stage {stage}:" in ln)


def test_clock() -> None:
    assert clock(0) == "0:00"
    assert clock(61.4) == "1:01"
    assert clock(3725) == "1:02:05"


def test_eta_lines_use_the_mean_of_finished_stages_of_each_kind(
    tmp_path: Path, capsys, clk: _Clock
) -> None:
    st = Stages(tmp_path, resume=False, progress=True)
    st.expect({"prep": 1, "down": 3})
    st.run("prep", lambda: {"n": 1})
    err = capsys.readouterr().err
    assert "stage prep ..." in err
    assert "ETA >= 0:00 (no down stage timed yet)" in err

    st.run("down_a", clk.takes(30))
    # two `down` stages left at 30 s each
    assert _line(capsys.readouterr().err, "down_a") == "[0:30] stage down_a: done in 30 s; ETA 1:00"
    st.run("down_b", clk.takes(0))  # the mean of 30 s and 0 s for the one left
    assert _line(capsys.readouterr().err, "down_b") == "[0:30] stage down_b: done in 0 s; ETA 0:15"
    st.run("down_c", clk.takes(0))
    assert capsys.readouterr().err.splitlines()[-1] == "[0:30] stage down_c: done in 0 s; ETA 0:00"


def test_cached_stages_count_as_done_and_silent_without_progress(tmp_path: Path, capsys) -> None:
    Stages(tmp_path, resume=False).run("prep", lambda: {"n": 1})
    assert capsys.readouterr().err == ""
    st = Stages(tmp_path, resume=False, progress=True)
    st.expect({"prep": 1})
    st.run("prep", lambda: {"n": 2})
    assert "done before, skipped" in capsys.readouterr().err
    assert st._eta() == "ETA 0:00"


def test_a_reused_result_is_done_but_no_timing_sample(tmp_path: Path, capsys, clk: _Clock) -> None:
    """A downstream model whose labels were trained before under another setting name takes the
    stored result at once: it counts as done, but its ~0 s is not averaged into the time the
    remaining stages of its kind will take (the ETA fell to half here)."""
    st = Stages(tmp_path, resume=False, progress=True)
    st.expect({"down": 3})

    slow = clk.takes(10, {"n": 1})
    st.run("down_a", slow)
    ran: list[str] = []
    got = st.run("down_b", lambda: ran.append("b") or {}, reuse=lambda: {"n": 2})
    assert got == {"n": 2} and ran == [] and st.status["down_b"] == "reused"
    err = capsys.readouterr().err
    assert "stage down_b: the same inputs were done before, result reused" in err
    # one stage left at 10 s (down_a's time), not 5 s (with down_b's 0 s averaged in)
    assert _line(err, "down_b").endswith("result reused; ETA 0:10"), err
    assert Stages(tmp_path, resume=True).run("down_b", slow) == {"n": 2}  # marker written
    st.run("down_c", lambda: {"n": 3}, reuse=lambda: None)  # nothing stored: it runs
    assert st.status["down_c"] == "ran"


def test_a_planned_stage_that_will_not_run_is_no_work_left(
    tmp_path: Path, capsys, clk: _Clock
) -> None:
    """A setting left out (the filter kept no label: nothing to train on) was still counted as a
    stage to come, so the ETA never reached 0:00 before the end."""
    st = Stages(tmp_path, resume=False, progress=True)
    st.expect({"down": 3})

    st.run("down_a", clk.takes(10))
    assert _line(capsys.readouterr().err, "down_a").endswith("ETA 0:20")
    st.drop("down")
    st.run("down_b", clk.takes(10))
    assert _line(capsys.readouterr().err, "down_b") == "[0:20] stage down_b: done in 10 s; ETA 0:00"
    st.drop("other")  # a kind not planned: nothing to drop
    assert st.plan == {"down": 2}


def test_kinds_not_timed_yet_count_at_their_reference_time_times_this_runs_speed(
    tmp_path: Path, capsys, clk: _Clock
) -> None:
    """With reference times (the demo's), the ETA is an estimate from the start, not a lower
    bound: a kind not timed yet counts at its reference time x this run's speed against the
    reference (here five times as fast: 2 x 20 s / 5 = 8 s), a timed kind at its own mean;
    before 5 reference seconds are timed, at the reference times as they are."""
    st = Stages(tmp_path, resume=False, progress=True)
    st.expect({"tiny": 1, "prep": 1, "down": 2}, reference={"tiny": 1.0, "prep": 5.0, "down": 20.0})
    st.run("tiny", clk.takes(0.2))  # 1 reference second timed: too little to say a speed
    assert "ETA ~0:45 (estimate: prep, down not timed yet, at the reference times x 1)" in (
        capsys.readouterr().err
    )

    st.run("prep", clk.takes(1.0))  # 1.2 s for 6 reference seconds: five times as fast
    assert _line(capsys.readouterr().err, "prep") == (
        "[0:01] stage prep: done in 1 s; "
        "ETA ~0:08 (estimate: down not timed yet, at the reference times x 0.2)"
    )
    st.expect({"tiny": 1, "prep": 1, "down": 2})  # a later plan keeps the reference times
    st.run("down_a", lambda: {})
    assert "ETA 0:00" in capsys.readouterr().err.splitlines()[-1]


def test_a_kind_without_reference_time_keeps_the_lower_bound(tmp_path: Path, capsys) -> None:
    st = Stages(tmp_path, resume=False, progress=True)
    st.expect({"prep": 1, "down": 1, "other": 1}, reference={"prep": 1.0, "down": 1.0})
    st.run("prep", lambda: {})
    assert "ETA >= " in capsys.readouterr().err and "(no other stage timed yet)" in st._eta()


def test_stages_side_by_side_count_in_rounds_and_time_their_own_work(
    tmp_path: Path, capsys, clk: _Clock
) -> None:
    """Five downstream trainings, two at a time (lanes 2), 12 s each: the first wait is 12 s and
    the second training is done by then (a 0 s wait). Timed by the waits, the ETA said 4 x 12 s
    and then 3 x 6 s; timed by each training's own 12 s (``took``) and counted in rounds of
    two, it is the 24 s, 24 s, 12 s, 12 s actually left."""
    st = Stages(tmp_path, resume=False, progress=True)
    st.expect({"down": 5}, reference={"down": 10.0})
    st.side_by_side["down"] = partial(makespan, workers=2, cores=2)
    assert st._eta() == "ETA ~0:30 (estimate: down not timed yet, at the reference times x 1)"
    waits = [12, 0, 12, 0, 12]
    ends = []
    for k, wait in enumerate(waits):
        st.run(f"down_{k}", clk.takes(wait), took=lambda: 12.0)
        ends.append(_line(capsys.readouterr().err, f"down_{k}").split("; ")[-1])
    assert ends == ["ETA 0:24", "ETA 0:24", "ETA 0:12", "ETA 0:12", "ETA 0:00"]
    assert st.seconds["down_1"] == 12.0  # the marker's time: the training's, not the wait
    assert st.done("down_1") and not st.done("down_9")
    st.run("keyed", lambda: {}, key="k1")
    assert st.done("keyed", "k1") and not st.done("keyed", "k2")  # other inputs: runs again


def test_more_trainings_than_cores_at_once_count_as_shared_cores(
    tmp_path: Path, capsys, clk: _Clock
) -> None:
    """Five trainings three at a time on two cores: the ETA before any is timed is 2.5 x the
    reference (not two rounds of 10 s, nor three); each training's time is its CPU time, 12 s,
    whatever the wait; the last two after the first round take one training's time."""
    st = Stages(tmp_path, resume=False, progress=True)
    st.expect({"down": 5}, reference={"down": 10.0})
    st.side_by_side["down"] = partial(makespan, workers=3, cores=2)
    assert st._eta() == "ETA ~0:25 (estimate: down not timed yet, at the reference times x 1)"
    ends = []
    for k, wait in enumerate([18, 0, 0, 12, 0]):
        st.run(f"down_{k}", clk.takes(wait), took=lambda: 12.0)
        ends.append(_line(capsys.readouterr().err, f"down_{k}").split("; ")[-1])
    assert ends == ["ETA 0:30", "ETA 0:18", "ETA 0:12", "ETA 0:12", "ETA 0:00"]
    assert st.seconds["down_0"] == 12.0
    # the line says the time is the training's CPU time (a user read "done in 12 s" as the wall
    # time of a stage that waited 18 s on a loaded machine)
    st.run("down_5", clk.takes(18), took=lambda: 12.0)
    assert _line(capsys.readouterr().err, "down_5").startswith(
        "[0:48] stage down_5: done, 12 s of CPU time; ETA"
    )


@pytest.mark.parametrize("text", ['{"key": null, "seconds": 3}', "[1, 2]", "{not json"])
def test_a_marker_without_a_summary_runs_the_stage_again(tmp_path: Path, capsys, text: str) -> None:
    """done() and run() take a marker by one rule: a marker that is not a record with a summary
    is not done. run() said 'done before, skipped' for a record without a summary (then ran it
    anyway) and stopped with an AttributeError on a JSON list."""
    st = Stages(tmp_path, resume=False, progress=True)
    st.dir.mkdir()
    st.marker("prep").write_text(text, encoding="utf-8")
    assert not st.done("prep")
    assert st.run("prep", lambda: {"n": 2}) == {"n": 2}
    err = capsys.readouterr().err
    assert "done before" not in err and "stage prep: done in" in err
    assert st.status["prep"] == "ran" and st.done("prep")


def test_trainings_ended_but_not_recorded_are_no_work_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three of five trainings end together (three at a time on two cores) and are recorded
    one after another: at the first one's line the other two have ended, so what is left is
    the last two's round (one training's time), not four trainings' (2.5)."""
    from sam2elnet.pipeline.experiment_downstream import downstream_lanes

    monkeypatch.setenv("SAM2ELNET_THREADS", "2")
    st = Stages(tmp_path, resume=False, progress=False)
    ended = [0]
    assert downstream_lanes(st, 5, "cpu", ended=lambda: ended[0]) == 3
    left = st.side_by_side["downstream"]
    assert left(5) == 2.5 and left(4) == 2.5
    ended[0] = 2
    assert left(4) == 1.0 and left(2) == 0.0
    assert downstream_lanes(st, 5, "cuda") == 1 and st.side_by_side["downstream"](4) == 4.0
