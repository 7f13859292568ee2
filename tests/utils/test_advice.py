"""utils.advice: advice laid out within 80 columns (paragraphs, numbered steps, commands)."""

from __future__ import annotations

from sam2elnet.utils.advice import KEEP, WIDTH, command, message, numbered, paragraph, plural


def test_commands_break_with_shell_continuations_within_the_width():
    cmd = 'gdal_calc.py -A S0.tif --calc "10*log10(A)" --type Float32 --outfile DB.tif'
    assert command(cmd, "  ") == ["  " + cmd]  # fits: one line, copied as it is
    lines = command(cmd, " " * 20)
    assert len(lines) == 2 and all(len(ln) <= WIDTH for ln in lines)
    assert lines[0].endswith(" \\") and lines[1].startswith(" " * 22)
    assert " ".join(" ".join(lines).replace(" \\", "").split()) == cmd  # the same command


def test_paragraphs_and_steps_keep_formulas_whole():
    text = f"calibrate the DNs to sigma0, sigma0{KEEP}={KEEP}DN^2/A_sigma^2 with the LUT " * 3
    for lines in (paragraph(text), numbered([(text, "gdal_edit.py -a_nodata 0 IN.tif")])):
        assert all(len(ln) <= WIDTH for ln in lines) and KEEP not in "".join(lines)
        assert all(ln.count("sigma0 = DN^2/A_sigma^2") == ln.count("DN^2") for ln in lines)
    steps = numbered([("one", "cmd a"), ("two", None)])
    assert steps == ["  1. one", "     cmd a", "  2. two"]
    assert message("head", ["  x"], steps).splitlines() == ["head", "  x", *steps]


def test_plural_counts_agree_with_their_noun_and_verb():
    assert [plural(n, "polygon") for n in (0, 1, 2)] == ["0 polygons", "1 polygon", "2 polygons"]
    assert plural(1, "feature has", "features have") == "1 feature has"
    assert plural(3, "feature has", "features have") == "3 features have"
