"""utils.run_paths: the one rule for paths a run folder's records store for its own files."""

from __future__ import annotations

from pathlib import Path

import pytest

from sam2elnet.utils.run_paths import found_under, relative_inside


def test_relative_inside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    assert relative_inside(out / "labels" / "a b.png", out) == "labels/a b.png"
    assert relative_inside(tmp_path / "data" / "x.jpg", out) is None  # outside
    assert relative_inside(out, out) is None  # the folder itself
    assert relative_inside(tmp_path / "runner" / "x.png", out) is None  # a sibling prefix
    monkeypatch.chdir(tmp_path)  # relative to the working folder
    assert relative_inside("run/stages/s.json", "run") == "stages/s.json"
    assert relative_inside("../x.png", "run") is None


def test_found_under_maps_the_end_of_an_old_path(tmp_path: Path) -> None:
    new = tmp_path / "run3"
    (new / "autolabels" / "labels").mkdir(parents=True)
    (new / "autolabels" / "labels" / "1.png").write_bytes(b"x")
    (new / "1.png").write_bytes(b"y")
    old = "run2/autolabels/labels/1.png"
    assert found_under(old, new) == new / "autolabels" / "labels" / "1.png"  # longest tail first
    assert found_under("/elsewhere/" + old, new) == new / "autolabels" / "labels" / "1.png"
    assert found_under("other/1.png", new) == new / "1.png"
    assert found_under("other/1.png", new, min_parts=2) is None  # one part is not enough
    assert found_under("run2/missing.png", new) is None
