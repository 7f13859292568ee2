"""Vocabularies a newcomer extends in two places stay one list (docs/contributing.md, "Common changes").

The CLI validates a coarse-label profile against :data:`sam2elnet.option_values.CoarseProfile` and an
export format against ``ExportOptions.fmt`` (:mod:`sam2elnet.options`); the library has its own
tables (:data:`sam2elnet.data.coarse.PROFILES`, :data:`sam2elnet.export.layer_files.FORMATS`). A
name added to one and not the other would be refused by the CLI or unknown to the library.
"""

from __future__ import annotations

import typing

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


def _differ(a: set[str], b: set[str]) -> list[str]:
    return sorted(a ^ b)


def test_cli_profiles_are_the_simulators() -> None:
    assert not _differ(_literal_values(CoarseProfile), set(PROFILES))


def test_cli_export_formats_are_the_exporters() -> None:
    cli = _literal_values(ExportOptions.model_fields["fmt"].annotation)
    assert not _differ(cli, {*FORMATS, "coco", "label-studio"})


def test_a_name_in_one_list_only_is_caught() -> None:
    """Guard: a profile added to the simulator only (or a format to the CLI only) is reported."""
    assert _differ(_literal_values(CoarseProfile), {*PROFILES, "scribble"}) == ["scribble"]
    assert _literal_values(typing.Optional[typing.Literal["a", "b"]]) == {"a", "b"}  # noqa: UP045
