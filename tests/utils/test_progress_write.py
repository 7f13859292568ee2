"""Lines printed while a progress bar is drawn appear above it, whole (utils.progress.write).

A terminal is emulated on the captured text (``helpers_logs.screen_rows``): ``\\r`` returns to the start of the
line and later characters overwrite earlier ones, so a warning printed onto the bar's line shows
glued to the bar (and a redraw overwrites it) while one printed through ``tqdm.write`` has a row of
its own.
"""

from __future__ import annotations

import io
import logging
import sys
import warnings

import numpy as np
import pytest
from helpers_data import write_png
from helpers_logs import screen_rows

from sam2elnet.utils.progress import progress_bar, write


def test_screen_emulation_shows_a_line_glued_to_the_bar() -> None:
    """Guards the emulation: printed after a bar's text, a line is not a row of its own."""
    rows = screen_rows("\rbar  30%|###|\rbar  40%|####|warning: x\n")
    assert rows == ["bar  40%|####|warning: x", ""]


def test_write_puts_the_line_above_a_live_bar() -> None:
    buf = io.StringIO()
    bar = progress_bar(10, "annotate", "img", enabled=True, file=buf, mininterval=0)
    bar.update(3)
    write("warning: a.tif: pixel values far from the model's training range", buf)
    bar.update(2)
    write("info: second line", buf)
    bar.update(5)
    bar.close()
    rows = screen_rows(buf.getvalue())
    assert "warning: a.tif: pixel values far from the model's training range" in rows
    assert "info: second line" in rows
    # the bar is drawn again after each line: the last row shows it at the end
    assert any(r.startswith("annotate: 100%") for r in rows)


def test_write_without_a_bar_is_a_plain_line() -> None:
    buf = io.StringIO()
    write("warning: x", buf)
    write("info: y", buf, flush=True)
    assert buf.getvalue() == "warning: x\ninfo: y\n"


def test_cli_warnings_mid_loop_print_above_the_bar(
    tmp_path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``elnet stats --check`` with its bar on: the pair it skips mid-loop is warned about on a
    row of its own, complete (before the fix the line was glued to the bar's)."""
    from sam2elnet.cli import main

    rng = np.random.default_rng(0)
    for i in range(4):
        side = 40 if i != 1 else 48  # pair b: a label of another size, skipped with a warning
        name = f"{'abcd'[i]}.png"
        write_png(tmp_path / "d" / "images" / name, rng.integers(0, 255, (40, 40), np.uint8))
        write_png(tmp_path / "d" / "masks" / name, np.zeros((side, side), np.uint8))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # the CLI draws bars on terminals
    assert main(["stats", "--data", str(tmp_path / "d"), "--check", "--progress"]) == 0
    err = capsys.readouterr().err
    assert "check pairs" in err  # the bar was drawn
    warned = [r for r in screen_rows(err) if "b.png" in r]
    assert len(warned) == 1, warned
    assert warned[0].startswith(f"warning: skipping {tmp_path / 'd' / 'masks' / 'b.png'}: size ")
    assert warned[0].endswith("re-export the label at the image's size or remove the pair")


def test_cli_python_warnings_print_above_the_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Python warning (``warnings.warn``) while a bar is drawn, with the CLI's format."""
    from sam2elnet.cli import _show_warning

    buf = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buf)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = _show_warning
        bar = progress_bar(4, "enhance", "img", enabled=True, mininterval=0)
        bar.update(1)
        warnings.warn("c.tif: no georeference", UserWarning, stacklevel=1)
        bar.update(3)
        bar.close()
    assert "warning: c.tif: no georeference" in screen_rows(buf.getvalue())


def test_cli_log_lines_print_above_the_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``sam2elnet`` log record through main()'s handler while a bar is drawn."""
    from sam2elnet.cli import _StderrHandler

    buf = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buf)
    log = logging.getLogger("sam2elnet.test_progress_write")
    handler = _StderrHandler.make()
    log.addHandler(handler)  # type: ignore[arg-type]
    try:
        bar = progress_bar(4, "scene", "win", enabled=True, mininterval=0)
        bar.update(2)
        log.warning("d.tif: scene without a CRS")
        bar.update(2)
        bar.close()
    finally:
        log.removeHandler(handler)  # type: ignore[arg-type]
    assert "warning: d.tif: scene without a CRS" in screen_rows(buf.getvalue())


def test_a_closing_line_counts_in_the_plural_unless_one_or_abbreviated(caplog) -> None:
    """Was ``check data: 76/76 pair in 0.3 s (250.34 pair/s)`` (fresh-user trial, 2026-12-05);
    now ``76/76 pairs``, ``1/1 pair``; abbreviations stay (``8/8 img``, ``4/4 win``); the rate
    keeps the unit (``pair/s``)."""
    import logging
    import re

    from sam2elnet.utils.progress import LOGGER_NAME, ProgressLines, unit_noun

    assert [unit_noun("pair", n) for n in (0, 1, 2)] == ["pairs", "pair", "pairs"]
    assert unit_noun("batch", 3) == "batches" and unit_noun("mask", 3) == "masks"
    assert [unit_noun(u, 5) for u in ("img", "it", "px", "B", "win")] == [
        "img",
        "it",
        "px",
        "B",
        "win",
    ]
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        for total, unit in ((3, "pair"), (1, "pair"), (2, "img")):
            bar = ProgressLines(total, "check data", unit)
            bar.update(total)
            bar.close()
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER_NAME]
    assert re.fullmatch(r"check data: 3/3 pairs in [\d.]+ s \([\d.]+ pair/s\)", lines[0]), lines
    assert lines[1].startswith("check data: 1/1 pair in ") and "2/2 img in" in lines[2]
