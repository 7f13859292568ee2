"""Stage lines with elapsed time and ETA (pipeline.experiment.Stages), as the demo prints them."""

from __future__ import annotations

import time
from pathlib import Path

from sam2elnet.pipeline.experiment_stages import Stages, clock


def test_clock() -> None:
    assert clock(0) == "0:00"
    assert clock(61.4) == "1:01"
    assert clock(3725) == "1:02:05"


def test_eta_lines_use_the_mean_of_finished_stages_of_each_kind(tmp_path: Path, capsys) -> None:
    st = Stages(tmp_path, resume=False, progress=True)
    st.expect({"prep": 1, "down": 3})
    st.run("prep", lambda: {"n": 1})
    err = capsys.readouterr().err
    assert "stage prep ..." in err
    assert "ETA >= 0:00 (no down stage timed yet)" in err

    def slow() -> dict:
        time.sleep(1.0)
        return {}

    st.run("down_a", slow)
    err = capsys.readouterr().err
    # two `down` stages left at ~1 s each
    line = next(ln for ln in err.splitlines() if "down_a: done" in ln)
    eta = line.split("ETA ")[1]
    m, s = eta.split(":")
    assert int(m) == 0 and 2 <= int(s) <= 4, line
    st.run("down_b", lambda: {})
    st.run("down_c", lambda: {})
    assert "ETA 0:00" in capsys.readouterr().err.splitlines()[-1]


def test_cached_stages_count_as_done_and_silent_without_progress(tmp_path: Path, capsys) -> None:
    Stages(tmp_path, resume=False).run("prep", lambda: {"n": 1})
    assert capsys.readouterr().err == ""
    st = Stages(tmp_path, resume=False, progress=True)
    st.expect({"prep": 1})
    st.run("prep", lambda: {"n": 2})
    assert "done before, skipped" in capsys.readouterr().err
    assert st._eta() == "ETA 0:00"
