"""`elnet CMD --help` read as a newcomer: ranges and units where an option has them, nothing
cut mid-word, one text per shared option (the label filter's, export's --warp-to)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sam2elnet.cli import main


def _help(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *cmd: str) -> str:
    """The help of ``cmd`` at 100 columns, box drawing removed and whitespace collapsed (so a
    phrase wrapped over two lines reads as one)."""
    monkeypatch.setenv("COLUMNS", "100")
    capsys.readouterr()
    assert main([*cmd, "--help"]) == 0
    out = capsys.readouterr().out
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", out).split())


@pytest.mark.parametrize(
    ("cmd", "wanted"),
    [
        (("annotate",), ["Keep labels with predicted IoU >= Q (0-1; default: keep all).",
                         "whose held-out precision (share of labels with IoU >= tau) reaches "
                         "this, in (0, 1]", "in (0, 1) (default: the model's, 0.7 unless "
                         "trained with --tau)", "(32-16384; default auto", "px (0 to < --tile)"]),
        (("enhance",), ["Keep labels with predicted IoU >= Q (0-1; default: keep all)."]),
        (("cv",), ["(2-20; cross-domain ignores it)", "(0.05-0.5)",
                   "micro | tiny | small | base_plus | large (default tiny)",
                   "Also images per forward pass on the test images (default 8)",
                   "Also train the trunk: none | last | all"]),
        (("train",), ["in (0, 1], e.g. 0.3 (default 1: all)", "(default 0.7)",
                      "(>= 0, e.g. 2; default 0 = off)"]),
        (("scene",), ["Window size in pixels (32-16384; default auto", "Windows per model call (1-1024)",
                      "HOST:6379 or ray://HOST:10001"]),
        (("export",), ["tolerance in each label's own map units, not --crs's (metres for a UTM "
                       "label, degrees for an EPSG:4326 one; pixels without CRS)",
                       "Chip size in pixels (16-16384)",
                       "Warp copies of the labels onto a map grid before making polygons",
                       "or an annotate/enhance output folder (its labels/ and rejected/)"]),
        (("experiment",), ["morphological, guided, grabcut (default: all)",
                           "Keep auto-labels with predicted IoU >= Q (0-1). Default (neither "
                           "this nor --target-precision): target precision 0.9 when SAM2-ELNet's "
                           "quality evaluator is fitted, else >= 0.5; when the rule keeps none, "
                           "the labels above the median."]),
        (("serve",), ["Probability threshold for masks, in (0, 1)."]),
        (("import",), ["not the images' folder"]),
        (("demo",), ["--size <str> SAM2 Hiera size: auto | micro | tiny | small | base_plus | "
                     "large (default auto). auto: tiny where the CPU trains in bf16 natively or "
                     "SAM2 tiny weights are cached, else micro"]),
        (("evaluate",), ["(correctness, completeness, quality, connectivity)",
                         "Boundary F-score tolerance in pixels, 0-1000."]),
    ],
)  # fmt: skip
def test_help_states_ranges_and_units(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    cmd: tuple[str, ...],
    wanted: list[str],
) -> None:
    text = _help(capsys, monkeypatch, *cmd)
    missing = [w for w in wanted if w not in text]
    assert not missing, (missing, text)


@pytest.mark.parametrize("columns", ["100", "80"])
@pytest.mark.parametrize(
    "cmd",
    ["evaluate", "experiment", "export", "annotate", "stats", "synth", "degrade", "serve", "demo"],
)
def test_help_cuts_no_text(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, cmd: str, columns: str
) -> None:
    """At 100 and at 80 columns nothing is cut with an ellipsis. Before: evaluate's road
    measures ("connect…") and experiment's --refiners default ("morphological,guided,grabc…");
    at 80 columns experiment's --enhancement-downstream/--no-enhancement-downstream pair took a
    second name column that squeezed the table (names cut, "--downstream-epoc…", help 20
    characters wide)."""
    monkeypatch.setenv("COLUMNS", columns)
    capsys.readouterr()
    assert main([cmd, "--help"]) == 0
    out = capsys.readouterr().out
    assert re.findall(r"\S*…", out) == []


def test_experiment_min_quality_says_the_filter_is_on_by_default(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """experiment filters its auto-labels by default (target precision 0.9, else 0.5, else the
    median; results.md says which): its --min-quality said "default: keep all", annotate's."""
    text = _help(capsys, monkeypatch, "experiment")
    assert "default: keep all" not in text
    assert "target precision 0.9 when SAM2-ELNet's quality evaluator is fitted, else >= 0.5" in text
    assert "default: keep all" in _help(capsys, monkeypatch, "annotate")


def test_importing_the_cli_builds_no_settings_object() -> None:
    """The CLI's defaults are the declared field defaults (option_checks.option_default), read
    without building a settings model at import time (pipeline_cmd built QualityConfig() for
    the default target precision in experiment's --min-quality help)."""
    import os
    import subprocess
    import sys

    probe = (
        "import pydantic\n"
        "made = []\n"
        "real = pydantic.BaseModel.__init__\n"
        "def spy(self, *a, **k):\n"
        "    made.append(type(self).__module__ + '.' + type(self).__name__)\n"
        "    real(self, *a, **k)\n"
        "pydantic.BaseModel.__init__ = spy\n"
        "import sam2elnet.cli.pipeline_cmd\n"
        "import sam2elnet.cli\n"
        "print([m for m in made if m.startswith('sam2elnet')])\n"
    )
    src = str(Path(__file__).resolve().parents[2] / "src")
    got = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONPATH": src},
    )  # fmt: skip
    assert got.stdout.strip() == "[]", got.stdout + got.stderr


def test_export_warp_to_says_what_export_warps(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """export writes polygons: its --warp-to said "Put GeoTIFF outputs on a map grid"."""
    assert "Put GeoTIFF outputs on a map grid" not in _help(capsys, monkeypatch, "export")
    assert "Put GeoTIFF outputs on a map grid" in _help(capsys, monkeypatch, "scene")


@pytest.mark.parametrize(
    ("cmd", "flag"),
    [
        (["evaluate", "--pred", "p", "--truth", "t"], "roads"),
        (["evaluate", "--pred", "p", "--truth", "t"], "resample"),
        (["experiment", "--data", "d", "--out", "o"], "enhancement-downstream"),
        (["export", "--labels", "l", "--out", "o.gpkg"], "centre-lines"),
        (["stats", "--data", "d"], "db"),
        (["stats", "--data", "d"], "progress"),
        (["synth", "--out", "o"], "progress"),
        (["degrade", "--masks", "m", "--out", "o"], "progress"),
        (["serve", "--model", "m.pt"], "train"),
    ],
)
def test_two_flag_switch_refuses_both(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    cmd: list[str],
    flag: str,
) -> None:
    """The on/off settings declared as two flags (so the help table keeps its width): both
    given is one error line, exit 2, before any input is read (typer's pair took the last)."""
    monkeypatch.chdir(tmp_path)  # a command that ran anyway (synth) writes nothing here
    capsys.readouterr()
    assert main([*cmd, f"--{flag}", f"--no-{flag}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: give either --{flag} or --no-{flag}, not both"]
