"""The console tables of ``elnet experiment`` / ``elnet demo``: aligned columns at any width.

Row (f), "(f) SAM2-ELNet itself, annotating the test split", is 48 characters; the tables were
printed with ``{title:<46}``, so its IoU and hand-label numbers sat two columns right of the
others. The tables are rich tables now: a long name wraps inside its cell, the numbers stay in
their columns (80 columns when the output is not a terminal, and in a narrower terminal)."""

from __future__ import annotations

import re

import pytest

from sam2elnet.cli.pipeline_cmd import _print_tables
from sam2elnet.pipeline.experiment_config import TABLE1_SETTINGS, TABLE2_METHODS


def _results(downstream: bool) -> dict:
    return {
        "weights": {"note": "weights: random"},
        "elnet": {"trunk_note": "SAM2-ELNet: trunk at half resolution (2) (--trunk-scale auto)"},
        "table1": [
            {"title": t, "iou": 0.5 + n / 100, "hand_labels": 1000 + n}
            for n, t in enumerate(TABLE1_SETTINGS.values())
        ],
        "autolabels": {
            "n_kept": 3,
            "n": 5,
            "iou_all": {"iou": 0.5},
            "iou_kept": {"iou": 0.6},
            "spearman": 0.4,
        },  # fmt: skip
        "table2": [
            {"labels": lab, "title": t, "label_iou_all": 0.7, "iou": 0.61, "skipped": None}
            for lab in ("simulated coarse", "dataset's own")
            for t in TABLE2_METHODS.values()
        ],
        "settings": {"enhancement_downstream": downstream},
    }


@pytest.mark.parametrize("columns", [80, 56])
@pytest.mark.parametrize("downstream", [True, False])
def test_every_row_of_the_console_tables_is_aligned(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, columns: int,
    downstream: bool,
) -> None:  # fmt: skip
    monkeypatch.setenv("COLUMNS", str(columns))
    _print_tables(_results(downstream))
    lines = capsys.readouterr().out.splitlines()
    tables = [x for x in lines[2:] if not x.startswith(("auto-labels", "  ("))]  # not notes
    assert all(len(x) <= columns for x in tables)
    t1 = lines.index("table 1 (downstream test IoU / hand labels):")
    rows = [x for x in lines[t1 + 2 : t1 + 14] if re.search(r"\d{4}$", x)]
    assert len(rows) == 6
    # the IoU and the hand-label count end at the same column in every row, (f) included
    ends = {(m.end(1), m.end(2)) for m in (re.search(r"(0\.5\d\d) +(1\d{3})$", x) for x in rows)}
    assert len(ends) == 1
    header = lines[t1 + 1]
    assert header.startswith("setting") and header.endswith("hand labels")
    assert len(header) == len(rows[0])
    end = next(i for i, x in enumerate(lines) if x.startswith("auto-labels kept"))
    names = " ".join(re.sub(r"0\.5\d\d +1\d{3}$", "", x).strip() for x in lines[t1 + 2 : end])
    assert names == " ".join(TABLE1_SETTINGS.values())  # wrapped at most, never cut
    t2 = next(i for i, x in enumerate(lines) if x.startswith("table 2 ("))
    assert lines[t2] == (
        "table 2 (label IoU / downstream test IoU):" if downstream else "table 2 (label IoU):"
    )
    numbers = r"0\.700  +0\.610$" if downstream else r"0\.700$"
    rows2 = [x for x in lines[t2 + 2 :] if re.search(numbers, x)]
    assert len(rows2) == 10 and len({len(x) for x in rows2}) == 1


def test_stages_with_nothing_usable_get_one_warning_line_each(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """results.json's ``unusable`` (stage -> reason) was shown by results.md and report.html
    only; the terminal summary said nothing of it. One line per stage, under its table."""
    monkeypatch.setenv("COLUMNS", "80")
    r = _results(True)
    why = "all 2 labels were rejected as unusable whatever the filter (2 x constant image)"
    r["unusable"] = {"annotate": why, "enhance_simulated": why}
    _print_tables(r)
    lines = capsys.readouterr().out.splitlines()
    warn = [x for x in lines if x.startswith("warning:")]
    assert warn == [
        "warning: Nothing usable in stage annotate (the auto-labels of the unlabelled images): "
        f"{why}; scored as they are.",
        "warning: Nothing usable in stage enhance_simulated (SAM2-ELNet's enhancement of the "
        f"pool's simulated labels): {why}; scored as they are.",
    ]
    t2 = next(i for i, x in enumerate(lines) if x.startswith("table 2 ("))
    assert lines.index(warn[0]) < t2 < lines.index(warn[1])
    r.pop("unusable")
    _print_tables(r)
    assert "warning:" not in capsys.readouterr().out
