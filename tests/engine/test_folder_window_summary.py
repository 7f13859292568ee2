"""A folder job sums up the images it predicts window by window in one line.

Found in review: with a small ``--max-memory`` every image of ``elnet annotate --no-progress``
went window by window and printed its own closing window line (``a.png: 4/4 win in 0.1 s (51.57
win/s)``), one per image: hundreds of lines for a folder of hundreds of large images. The job now
prints one line for them all (``annotate window by window: 3 images too large to predict whole
within --max-memory 2.00 MB, 12 windows of up to 64 px (--tile 64) in 0.4 s``); each image's line
is at DEBUG.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers_data import grey_rgb, micro_model_file, write_png

from sam2elnet.cli import main

os.environ.setdefault("SAM2ELNET_THREADS", "1")


def test_three_large_images_give_one_window_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = tmp_path / "images"
    for n in "abc":  # 96 px: window by window at --max-memory 2M, 4 windows of 64 px each
        write_png(images / f"{n}.png", grey_rgb(96, 1))
    model = micro_model_file(tmp_path / "m.pt", bands=3)
    capsys.readouterr()
    rc = main(["annotate", "--model", str(model), "--images", str(images), "--out",
               str(tmp_path / "out"), "--max-memory", "2M", "--tile", "64", "--overlap", "32",
               "--no-progress"])  # fmt: skip
    cap = capsys.readouterr()
    text = cap.out + cap.err
    assert rc == 0, text
    assert not [ln for ln in text.splitlines() if " win in " in ln], text  # no line per image
    lines = [ln for ln in text.splitlines() if "window by window" in ln]
    assert len(lines) == 1, text
    assert lines[0].startswith(
        "annotate window by window: 3 images too large to predict whole within --max-memory "
        "2.00 MB, 12 windows of up to 64 px (--tile 64) in "
    ), text


def _annotate(tmp_path: Path, out: str, *flags: str) -> int:
    images = tmp_path / "images"
    if not images.is_dir():
        for n in "abc":  # 96 px: window by window at --max-memory 2M, 4 windows of 64 px each
            write_png(images / f"{n}.png", grey_rgb(96, 1))
    model = tmp_path / "m.pt"
    if not model.is_file():
        micro_model_file(model, bands=3)
    flags_at = [f for f in flags if f == "-v"]  # a root option: before the command
    rest = [f for f in flags if f != "-v"]
    return main([*flags_at, "annotate", "--model", str(model), "--images", str(images),
                 "--out", str(tmp_path / out), "--max-memory", "2M", "--tile", "64",
                 "--overlap", "32", *rest])  # fmt: skip


def test_window_line_follows_the_bar_rule_and_v_shows_each_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bars on (a terminal): the window bars, no summary line (the project's rule, as the
    ``annotate: N/N img`` line: a line per stage only without a bar); before, the summary line
    printed under the bars too. ``-v`` without a bar: each image's window line as well (before,
    it was logged at DEBUG and the progress logger, at INFO, dropped it whatever ``-v``)."""
    import sys

    _annotate(tmp_path, "quiet")  # the model and images made before capsys reads
    capsys.readouterr()
    assert _annotate(tmp_path, "v", "-v", "--no-progress") == 0
    cap = capsys.readouterr()
    text = cap.out + cap.err
    per_image = sorted(ln.split(":")[0] for ln in text.splitlines() if " win in " in ln)
    assert per_image == ["a.png", "b.png", "c.png"], text
    assert len([ln for ln in text.splitlines() if "annotate window by window: " in ln]) == 1
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # a terminal: bars drawn
    assert _annotate(tmp_path, "tty") == 0
    cap = capsys.readouterr()
    assert "window by window:" not in cap.out + cap.err, cap.out + cap.err
    assert "win/s]" in cap.err, cap.err  # the images' window bars were drawn


def test_summary_json_counts_the_windowed_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``summary.json`` counts the images this run predicted window by window and their windows
    (``n_windowed``, ``n_windows``, beside ``n_images`` / ``n_resumed``); before, neither was
    recorded, only the window side."""
    import json

    assert _annotate(tmp_path, "out", "--no-progress") == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["n_images"] == 3
    assert summary["n_windowed"] == 3 and summary["n_windows"] == 12, summary


def test_with_bars_the_main_bar_counts_the_windowed_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bars on (a terminal), every image window by window: the ``annotate`` bar counts the 3
    images (kept 3) and stays; each image's window bar (4 windows, cleared when done) is drawn
    below it while the image runs. Before, the main bar had total 0 (it counted the images
    predicted whole only, none here) and, the window bars cleared, nothing showed the images."""
    import sys

    import tqdm.std

    _annotate(tmp_path, "quiet", "--no-progress")  # the model and images made first
    bars: list[tuple[str, int | None, int, bool, int]] = []
    real = tqdm.std.tqdm.close

    def spy(self) -> None:  # noqa: ANN001
        if not getattr(self, "_spied", False):
            self._spied = True
            bars.append((self.desc, self.total, self.n, self.leave, self.pos))
        real(self)

    monkeypatch.setattr(tqdm.std.tqdm, "close", spy)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # a terminal: bars drawn
    capsys.readouterr()
    assert _annotate(tmp_path, "tty") == 0
    err = capsys.readouterr().err
    main_bars = [b for b in bars if b[0].startswith("annotate")]
    assert [b[1:4] for b in main_bars] == [(3, 3, True)], bars  # before: [(0, 0, True)]
    windows = sorted((b[0], b[1], b[2], b[4]) for b in bars if b[0].endswith(".png"))
    assert windows == [(f"{n}.png", 4, 4, 1) for n in "abc"], bars  # below the main bar
    assert "3/3 [" in err and "kept=3" in err, err
