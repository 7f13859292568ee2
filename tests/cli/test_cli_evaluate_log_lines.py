"""``elnet evaluate`` piped into a log (new-user pass, roads): every message stays one line.

rich wrapped the printed messages at 80 columns when the output was not a terminal (a log
file, CI, ``| tee``), so ``road measures: centre lines matched within 3 px (--road-buffer);
lengths summed over images, not pixels`` came out in two pieces and ``grep 'matched within'``
no longer gave the buffer. Tables keep their layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers_data import write_mask_png
from helpers_logs import run_main


def test_messages_are_whole_lines_in_a_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    t = np.zeros((32, 32), bool)
    t[15:18, :] = True
    write_mask_png(tmp_path / "truth" / "a_mask.png", t)
    write_mask_png(tmp_path / "pred" / "a_pred.png", t)
    rc, out, err = run_main(capsys, "evaluate", "--pred", tmp_path / "pred", "--truth",
                            tmp_path / "truth", "--roads", "--no-progress")  # fmt: skip
    assert rc == 0, err
    lines = out.splitlines()
    whole = (
        "road measures: centre lines matched within 3 px (--road-buffer); "
        "lengths summed over images, not pixels"
    )
    assert whole in lines, out
    assert any(ln.startswith("│ road quality") for ln in lines), out  # the table as before
