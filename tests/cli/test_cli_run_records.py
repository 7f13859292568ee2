"""What annotate / enhance / scene log and record about a run: the precision that ran (one line,
from runtime.precision_note), strict JSON, and the closing lines of a folder job."""

from __future__ import annotations

import json
import os

os.environ.setdefault("SAM2ELNET_THREADS", "1")

import numpy as np
import pytest
from helpers_data import trained_run, write_tif

from sam2elnet.cli import main
from sam2elnet.cli.job_summary import threshold_line

NOTE_32 = "precision: 32 (float32; --precision 32)"


def _strict(text: str) -> dict:
    def refuse(token: str) -> None:
        raise ValueError(f"non-standard JSON constant {token}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The shared micro model, trained (if no earlier test did) before ``capsys`` starts, so the
    training's own lines (its ``precision:`` note among them: they print on stdout once any
    earlier test ran the CLI) never reach the output the test checks."""
    return trained_run(tmp_path_factory)


def test_annotate_enhance_scene_log_and_record_the_precision(run, tmp_path, capsys):
    ann = tmp_path / "ann"
    args = ["--model", str(run["model"]), "--images", str(run["data"] / "images"),
            "--no-progress", "--precision", "32"]  # fmt: skip
    assert main(["annotate", *args, "--out", str(ann), "--report"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [ln for ln in out if ln.startswith("precision:")] == [NOTE_32]
    # the closing line names what was written, report.html included
    assert out[-1] == f"outputs in {ann} (labels/, quality.csv, summary.json, report.html)"
    s = _strict((ann / "summary.json").read_text())
    assert (s["precision_option"], s["precision_resolved"]) == ("32", "32")
    assert s["report"].endswith("report.html")

    enh = tmp_path / "enh"
    labels = ["--labels", str(run["data"] / "masks")]
    assert main(["enhance", *args, *labels, "--out", str(enh), "--no-changes"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [ln for ln in out if ln.startswith("precision:")] == [NOTE_32]
    assert out[-1] == f"outputs in {enh} (labels/, quality.csv, summary.json)"
    s = _strict((enh / "summary.json").read_text())
    assert (s["precision_option"], s["precision_resolved"]) == ("32", "32")

    scenes = tmp_path / "scenes"
    rng = np.random.default_rng(0)
    write_tif(scenes / "s1.tif", rng.integers(0, 255, (3, 64, 64)).astype(np.uint8))
    sargs = ["scene", "--model", str(run["model"]), "--image", str(scenes), "--out",
             str(tmp_path / "so"), "--tile", "64", "--overlap", "0", "--no-progress",
             "--precision", "32"]  # fmt: skip
    assert main(sargs) == 0
    out = capsys.readouterr().out.splitlines()
    assert [ln for ln in out if ln.startswith("precision:")] == [NOTE_32]
    recs = [_strict(x) for x in (tmp_path / "so" / "manifest.jsonl").read_text().splitlines()]
    assert [(r["precision_option"], r["precision_resolved"]) for r in recs] == [("32", "32")]


def test_threshold_line_when_no_threshold_reaches_the_target() -> None:
    tp = {
        "threshold": 0.137,
        "target_precision": 0.9,
        "tau": 0.7,
        "precision": None,  # NaN in memory, null in summary.json
        "recall": 0.0,
        "n_heldout": 16,
        "achievable": False,
        "note": "no threshold reaches precision 0.9 on the 16 held-out labels",
    }
    # one sentence: what happened, how many labels are kept, what to do ("no threshold" once)
    line = threshold_line({"target_precision": tp, "threshold": 0.137}, (3, 20))
    assert line == (
        "--target-precision 0.9 (IoU >= 0.7): no quality threshold reaches it on the 16 held-out "
        "labels; kept 3 of 20 labels scoring above every held-out label (quality >= 0.137), with "
        "no promised precision: lower --target-precision, use --min-quality, or label more "
        "images and retrain"
    )
    assert line.count("threshold") == 1  # was: "no threshold (...): no threshold reaches"
    # the note of too few held-out labels keeps its explanation; without counts: "only the"
    few = {**tp, "note": "no threshold reaches precision 0.9 on the 4 labelled samples "
           "(out-of-fold scores; only 2 held out, too few to choose on)"}  # fmt: skip
    assert threshold_line({"target_precision": few}) == (
        "--target-precision 0.9 (IoU >= 0.7): no quality threshold reaches it on the 4 labelled "
        "samples (out-of-fold scores; only 2 held out, too few to choose on); kept only the "
        "labels scoring above every held-out label (quality >= 0.137), with no promised "
        "precision: lower --target-precision, use --min-quality, or label more images and retrain"
    )
    none = {**tp, "note": "no held-out samples"}
    assert threshold_line({"target_precision": none}, (0, 5)).startswith(
        "--target-precision 0.9 (IoU >= 0.7): no quality threshold reaches it (no held-out "
        "samples); kept 0 of 5 labels"
    )
    ok = {**tp, "achievable": True, "precision": 0.92, "recall": 0.5, "note": ""}
    assert threshold_line({"target_precision": ok}) == (
        "threshold 0.137 for precision >= 0.9 at IoU >= 0.7 (held-out precision 0.920, "
        "recall 0.500)"
    )
    assert threshold_line({"threshold": 0.5, "min_quality": 0.5}) == "threshold 0.500"
    assert threshold_line({}) is None


def test_precision_error_says_the_choices_once(capsys) -> None:
    assert main(["annotate", "--model", "m.pt", "--images", ".", "--out", "o",
                 "--precision", "fp16"]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert err == "error: invalid value for --precision: 'fp16' (choose auto | bf16 | 32)"


@pytest.mark.parametrize(
    ("summary", "want"),
    [
        (
            {
                "status": "fitted",
                "n": 16,
                "n_heldout": 2,
                "n_in_sample": 14,
                "spearman_oof": 0.459,
                "spearman_oof_heldout": None,
            },
            "(held out n/a: 2 samples, 3 needed)",
        ),  # fmt: skip
        (
            {
                "status": "fitted",
                "n": 16,
                "n_heldout": 5,
                "n_in_sample": 11,
                "spearman_oof": 0.459,
                "spearman_oof_heldout": float("nan"),
            },
            "(held out n/a: constant scores or IoU)",
        ),  # fmt: skip
    ],
)
def test_quality_summary_line_says_n_a_with_the_reason(summary, want) -> None:
    from sam2elnet.engine.quality_fit import describe_summary

    line = describe_summary(summary)
    assert "None" not in line and "nan" not in line
    assert f"out-of-fold Spearman 0.459 {want}" in line


def test_quality_summary_line_gives_the_spearman_of_each_mode() -> None:
    """roads-dev, 3 epochs: the pooled Spearman 0.774 looked fine, but the annotation samples
    (what `elnet annotate --target-precision` filters) ranked at -0.258; only the enhancement
    samples ranked (0.949). The line gave the pooled value alone."""
    from sam2elnet.engine.quality_fit import describe_summary

    summary = {"status": "fitted", "n": 60, "n_heldout": 8, "n_in_sample": 52,
               "spearman_oof": 0.7744, "spearman_oof_heldout": 0.5238,
               "spearman_annotate": -0.2582, "spearman_enhance": 0.9487,
               "n_spearman_annotate": 4, "n_spearman_enhance": 4}  # fmt: skip
    line = describe_summary(summary)
    assert "out-of-fold Spearman 0.774 (held out 0.524); Spearman by mode: annotation (elnet " \
        "annotate) -0.258 (n=4), enhancement 0.949 (n=4)" in line  # fmt: skip
    summary["spearman_enhance"] = float("nan")
    assert "enhancement n/a: constant scores or IoU (n=4)" in describe_summary(summary)
    summary["n_spearman_enhance"] = 2
    assert "enhancement n/a: 2 samples, 3 needed (n=2)" in describe_summary(summary)
    del summary["n_spearman_annotate"], summary["n_spearman_enhance"]  # before the counts
    assert "annotation (elnet annotate) -0.258, enhancement" in describe_summary(summary)
    del summary["spearman_annotate"], summary["spearman_enhance"]  # older model files
    assert "by mode" not in describe_summary(summary)


def test_quality_summary_line_of_an_unfitted_evaluator_says_target_precision_is_refused() -> None:
    """Trial finding (7 reviewed sos-dev masks, `--init-model`): the line of an evaluator not
    fitted (14 samples) ended `--target-precision 0.9: the threshold rests on 1 held-out label
    above it; ...`, a note on a threshold `elnet annotate --target-precision` then refuses."""
    from sam2elnet.engine.quality_fit import describe_summary

    summary = {"status": "too_few_samples", "fitted": False, "n": 14, "n_heldout": 2,
               "n_in_sample": 12, "spearman_oof": 0.76,
               "default_threshold": {"target_precision": 0.9,
                                     "note": "the threshold rests on 1 held-out label above it"}}  # fmt: skip
    line = describe_summary(summary)
    assert line.endswith(
        "; --target-precision is refused with this model (no fitted evaluator): give "
        "--min-quality to elnet annotate / enhance"
    ), line
    assert "rests on" not in line
    summary["fitted"] = True
    assert describe_summary(summary).endswith(
        "; --target-precision 0.9: the threshold rests on 1 held-out label above it"
    )
