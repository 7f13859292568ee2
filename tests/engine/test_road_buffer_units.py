"""The road buffer's unit decided once (:func:`sam2elnet.option_values.road_buffer_units`) by
``evaluate_folders``, ``image_buffers_px`` and the cv report's re-scoring: px and metres both
given is refused, not silently measured in metres; px is never filled in next to metres."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sam2elnet.errors import UserError


def _pair(root: Path) -> None:
    from PIL import Image

    for d, name in (("pred", "a_pred.png"), ("truth", "a_mask.png")):
        (root / d).mkdir()
        m = np.zeros((16, 16), np.uint8)
        m[4:8] = 255
        Image.fromarray(m).save(root / d / name)


def test_evaluate_folders_refuses_px_and_metres_together(tmp_path: Path) -> None:
    """Was: both given, the metres used and the px dropped without a word."""
    from sam2elnet.engine.evaluate import evaluate_folders

    _pair(tmp_path)
    with pytest.raises(UserError, match=r"road_buffer \(5 px\) and road_buffer_m \(2 m\)"):
        evaluate_folders(tmp_path / "pred", tmp_path / "truth", roads=False, progress=False,
                         road_buffer_px=5, road_buffer_m=2)  # fmt: skip
    ev = evaluate_folders(tmp_path / "pred", tmp_path / "truth", progress=False, roads=False)
    assert ev.options["road_buffer_unit"] == "px"


def test_image_buffers_px_takes_one_unit_only(tmp_path: Path) -> None:
    """Was: neither given meant 3 px here too, a second place deciding the default."""
    from sam2elnet.engine.road_buffer import image_buffers_px

    paths = [tmp_path / "a.tif"]
    assert image_buffers_px(4, None, paths) == {paths[0]: 4.0}
    for px, m in ((None, None), (4, 2)):
        with pytest.raises(ValueError, match="one unit"):
            image_buffers_px(px, m, paths)


def test_cv_report_rescores_an_earlier_run_in_metres_without_its_default_px(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cv.json of an earlier version holds ``road_buffer: 3.0`` beside ``road_buffer_m``
    (then the default px); re-scoring measures in metres only (was: 3 px passed next to the
    metres)."""
    from sam2elnet.pipeline import report_cv

    got = []

    class Stop(Exception):
        pass

    def rescore(fold, tests, roads, px, m):  # type: ignore[no-untyped-def]
        got.append((px, m))
        raise Stop

    monkeypatch.setattr(report_cv, "_rescore", rescore)
    report = {"domain": "roads", "road_buffer": 3.0, "road_buffer_m": 2.0,
              "folds": [{"fold": "f1", "tests": {"t": {}}}]}  # fmt: skip
    with pytest.raises(Stop):
        report_cv.write_cv_report(tmp_path, report)
    assert got == [(None, 2.0)]
    with pytest.raises(Stop):
        report_cv.write_cv_report(tmp_path, {**report, "road_buffer": None, "road_buffer_m": None})
    assert got[-1] == (3.0, None)


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"road_buffer_px": -1}, "road_buffer_px"),
        ({"road_buffer_m": float("nan")}, "road_buffer_m"),  # was named road_buffer_px
        ({"line_width": 0}, "line_width"),
    ],
)
def test_evaluate_folders_names_the_width_it_refuses(
    tmp_path: Path, given: dict, named: str
) -> None:
    """A width that is not a finite number > 0 is refused naming the parameter given."""
    from sam2elnet.engine.evaluate import evaluate_folders

    _pair(tmp_path)
    with pytest.raises(UserError, match=rf"^{named} must be a finite number > 0, got "):
        evaluate_folders(tmp_path / "pred", tmp_path / "truth", roads=False, progress=False,
                         **given)  # fmt: skip
