"""results.md states the labelled share the split produced, not only the --fraction asked."""

from __future__ import annotations

from sam2elnet.pipeline.experiment_markdown import _share


def test_share_is_the_split_s_and_names_the_asked_fraction_when_rounding_moved_it() -> None:
    assert _share(15, 48, 0.3) == "31%; --fraction 0.3 asked"  # a trial's 15 of 48 pairs
    assert _share(30, 100, 0.3) == "30%"
    assert _share(480, 1600, 0.3) == "30%"  # sos-2k
    assert _share(0, 0, 0.3) == "0%; --fraction 0.3 asked"
