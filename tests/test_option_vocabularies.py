"""Vocabularies a newcomer extends in two places stay one list (docs/contributing.md, "Common changes").

The helps of ``--coarse-profile`` / ``--profile`` and ``--format`` are made from those lists
(:data:`sam2elnet.option_values.COARSE_PROFILES_HELP`, :data:`~sam2elnet.option_values.EXPORT_FORMATS`);
the checks below read the helps from the typer app, so a help typed by hand again fails the day a
name is added.

The CLI validates a coarse-label profile against :data:`sam2elnet.option_values.CoarseProfile` and an
export format against ``ExportOptions.fmt`` (:mod:`sam2elnet.options`); the library has its own
tables (:data:`sam2elnet.data.coarse.PROFILES`, :data:`sam2elnet.export.layer_files.FORMATS`). A
name added to one and not the other would be refused by the CLI or unknown to the library.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest

from sam2elnet.data.coarse import PROFILES
from sam2elnet.export.layer_files import FORMATS
from sam2elnet.option_values import CoarseProfile
from sam2elnet.options import ExportOptions


def _literal_values(annotation: object) -> set[str]:
    """The strings of a ``Literal[...]`` (also inside ``Literal[...] | None``)."""
    if typing.get_origin(annotation) is typing.Literal:
        return set(typing.get_args(annotation))
    found: set[str] = set()
    for arg in typing.get_args(annotation):
        found |= _literal_values(arg)
    return found


def profile_mismatch(cli: object, profiles: typing.Iterable[str]) -> list[str]:
    """Names in only one of the CLI's ``Literal`` of profiles ``cli`` and the simulator's."""
    return sorted(_literal_values(cli) ^ set(profiles))


def format_mismatch(cli: object, formats: typing.Iterable[str]) -> list[str]:
    """Names in only one of the CLI's ``--format`` ``Literal`` ``cli`` and the exporters: the
    polygon ``formats``, COCO and Label Studio."""
    return sorted(_literal_values(cli) ^ {*formats, "coco", "label-studio"})


def test_cli_profiles_are_the_simulators() -> None:
    """The names (``CoarseProfile``, which ``PROFILES`` is made from) and the simulator's table
    of profile functions (``data.coarse._PROFILES``) hold the same profiles."""
    from sam2elnet.data import coarse

    assert not profile_mismatch(CoarseProfile, PROFILES)
    assert not profile_mismatch(CoarseProfile, coarse._PROFILES)


def test_cli_export_formats_are_the_exporters() -> None:
    assert not format_mismatch(ExportOptions.model_fields["fmt"].annotation, FORMATS)


def test_a_name_in_one_list_only_is_caught() -> None:
    """Guards on deliberately mismatched lists: a profile in the CLI's Literal only, one in the
    simulator's table only, a format in the CLI's ``Literal[...] | None`` only and a polygon
    format added to FORMATS only are each reported by the checks above."""
    cli_profiles = typing.Literal[(*PROFILES, "scribble")]  # type: ignore[valid-type]
    assert profile_mismatch(cli_profiles, PROFILES) == ["scribble"]
    assert profile_mismatch(CoarseProfile, {*PROFILES, "blobs"}) == ["blobs"]
    cli_formats = typing.Literal["geojson", "gpkg", "shp", "kml", "coco", "label-studio"] | None
    assert format_mismatch(cli_formats, FORMATS) == ["kml"]
    fmt = ExportOptions.model_fields["fmt"].annotation
    assert format_mismatch(fmt, {**FORMATS, "fgb": ("FlatGeobuf", ".fgb")}) == ["fgb"]


def listed_names(help_text: str) -> list[str]:
    """The names an option's help lists: ``[what: ]a | b | c (remark), d (remark).`` -> a, b, c, d
    (remarks in parentheses dropped first, then the text after the last ``:``, split at ``|``,
    ``,`` and ``.``)."""
    text = re.sub(r"\([^)]*\)", "", help_text).rsplit(":", 1)[-1]
    return [w.strip() for w in re.split(r"[|,.]", text) if w.strip()]


def _option_help(command: str, flag: str) -> str:
    import typer.main

    from sam2elnet.cli import app

    cmd = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    return next(p.help for p in cmd.params if flag in p.opts)


@pytest.mark.parametrize(
    ("command", "flag"),
    [("synth", "--coarse-profile"), ("degrade", "--profile"), ("experiment", "--coarse-profile")],
)
def test_profile_help_lists_exactly_the_simulators_profiles(command: str, flag: str) -> None:
    assert sorted(listed_names(_option_help(command, flag))) == sorted(PROFILES)


@pytest.mark.parametrize("command", ["stats", "train"])
def test_layout_help_lists_exactly_the_layouts(command: str) -> None:
    """--layout's help was typed twice; now option_values.LAYOUTS_HELP, made from LAYOUTS."""
    from sam2elnet.option_values import LAYOUTS

    assert listed_names(_option_help(command, "--layout")) == list(LAYOUTS)


def test_format_help_lists_exactly_the_export_formats() -> None:
    names = listed_names(_option_help("export", "--format"))
    assert len(names) == len(set(names)) and not format_mismatch(
        typing.Literal[tuple(names)], FORMATS
    )


def test_a_help_missing_or_adding_a_name_is_caught() -> None:
    """Guards on hand-typed helps: one without ``freehand``, one with a made-up format. (The
    typed profile help is made from ``PROFILES``, so adding a profile does not break this guard.)"""
    typed = f"Coarse-label profile: {' | '.join(p for p in PROFILES if p != 'freehand')}."
    assert sorted(set(PROFILES) - set(listed_names(typed))) == ["freehand"]
    typed = "geojson | gpkg | shp | kml | coco | label-studio (default: from --out; .json is COCO)."
    assert format_mismatch(typing.Literal[tuple(listed_names(typed))], FORMATS) == ["kml"]


def _typed_outside_option_values(pattern: str) -> list[str]:
    """``file:line`` of every source line outside option_values.py matching ``pattern`` (a
    default typed by hand instead of taken from its one declaration)."""
    src = Path(__file__).parents[1] / "src" / "sam2elnet"
    return [
        f"{p.relative_to(src)}:{i}"
        for p in src.rglob("*.py")
        if p.name != "option_values.py"
        for i, ln in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(pattern, ln)
    ]


def test_one_default_warp_method():
    """The default --warp-method was typed as "tps" in each warping job; now one constant."""
    assert _typed_outside_option_values(r"""(=|,)\s*["']tps["']\)?\s*(,|\)|$)""") == []
    from sam2elnet.data.warp import DEFAULT_WARP_METHOD, WARP_METHODS

    assert DEFAULT_WARP_METHOD == WARP_METHODS[0]


def test_one_default_boundary_tolerance():
    """The boundary F-score's 2 px was typed in the options model, three metric functions, the
    folder evaluation, the strip-wise counts and the report's glossary; now
    :data:`~sam2elnet.option_values.BOUNDARY_TOLERANCE_PX` everywhere."""
    import inspect

    from sam2elnet.engine import evaluate, strip_metrics
    from sam2elnet.engine.metrics import boundary
    from sam2elnet.option_values import BOUNDARY_TOLERANCE_PX
    from sam2elnet.options import EvaluateOptions
    from sam2elnet.pipeline.glossary import GLOSSARY

    assert _typed_outside_option_values(r"tolerance(_px)?\s*(:\s*float\s*)?=\s*[0-9]") == []
    assert _typed_outside_option_values(r"tolerance \(default [0-9.]+ px\)") == []
    assert EvaluateOptions().tolerance == BOUNDARY_TOLERANCE_PX
    for fn in (
        boundary.boundary_counts,
        boundary.boundary_f1,
        boundary.boundary_measures,
        strip_metrics.strip_boundary_counts,
    ):
        assert inspect.signature(fn).parameters["tolerance_px"].default == BOUNDARY_TOLERANCE_PX
    sig = inspect.signature(evaluate.evaluate_folders)
    assert sig.parameters["tolerance_px"].default == BOUNDARY_TOLERANCE_PX
    assert f"(default {BOUNDARY_TOLERANCE_PX:g} px)" in GLOSSARY["boundary_f1"][1]


def test_train_help_shows_the_augmentation_defaults_of_for_domain():
    """--aug-photometric / --aug-band-jitter help: built from Augmentation.for_domain's table;
    roads have no entry of their own (the plain defaults since the 5-fold roads-dev run)."""
    from sam2elnet.cli.shared_options import TRAIN_HELP
    from sam2elnet.data.augment import Augmentation

    base, roads = Augmentation.for_domain(None), Augmentation.for_domain("roads")
    assert roads == base
    assert f"(default {base.photometric:g}; at most 5)" in TRAIN_HELP["aug_photometric"]
    assert f"(default {base.band_jitter:g}; at most 0.5)" in TRAIN_HELP["aug_band_jitter"]
    from sam2elnet.option_values import AUGMENT_DEFAULTS, augment_default_text

    assert list(AUGMENT_DEFAULTS) == ["default"]
    AUGMENT_DEFAULTS["roads"] = {"scale": (0.5, 2.0), "photometric": 2.0, "band_jitter": 0.05}
    try:  # a domain with an entry of its own is named in the help text
        assert augment_default_text("scale") == "0.75,1.33; roads 0.5,2"
        assert Augmentation.for_domain("roads").photometric == 2.0
    finally:
        del AUGMENT_DEFAULTS["roads"]
    assert Augmentation() == Augmentation(**AUGMENT_DEFAULTS["default"])


def test_one_default_line_width_unit():
    """The line-width unit's default "map" was typed in a dozen signatures and four commands
    turned --line-width-px into a unit each; now option_values.LineWidthUnit, its default
    constant and shared_options.line_width_unit."""
    pattern = r"""(=\s*|else\s+|None,\s*)["']map["']|Literal\[["']map"""
    assert _typed_outside_option_values(pattern) == []
    from sam2elnet.cli.shared_options import line_width_unit
    from sam2elnet.option_values import DEFAULT_LINE_WIDTH_UNIT, LineWidthUnit

    assert typing.get_args(LineWidthUnit) == ("map", "px")
    assert (line_width_unit(True), line_width_unit(False)) == ("px", DEFAULT_LINE_WIDTH_UNIT)
