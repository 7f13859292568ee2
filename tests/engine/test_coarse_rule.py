"""engine.coarse_rule: enhanced labels stay tied to their coarse label (--new-objects, --max-growth)."""

from __future__ import annotations

import numpy as np
import pytest

from sam2elnet.engine.coarse_rule import NEW_OBJECT_MARGIN_PX, CoarseRule, apply_rule
from sam2elnet.errors import UserError


def _scene() -> tuple[np.ndarray, np.ndarray]:
    """64x64: coarse square rows/cols 10-19; predicted object = that square grown by 3 px on the
    right (cols 10-22), a spurious far blob (rows/cols 45-49) and a fragment 3 px right of the
    grown object (rows 12-14, cols 24-26: within the 4 px margin)."""
    coarse = np.zeros((64, 64), np.float32)
    coarse[10:20, 10:20] = 1
    prob = np.full((64, 64), 0.1, np.float32)
    prob[10:20, 10:23] = 0.9
    prob[45:50, 45:50] = 0.95
    prob[12:15, 24:27] = 0.8
    return prob, coarse


def test_drop_removes_far_objects_keeps_the_coarse_object_and_its_growth() -> None:
    prob, coarse = _scene()
    ok = CoarseRule("drop").support(prob, coarse)
    out = (prob * ok) > 0.5
    assert not out[45:50, 45:50].any()  # the far blob (no overlap with the coarse label) is gone
    assert out[10:20, 10:23].all()  # the coarse object, incl. its 3 px of growth, is kept
    assert out[12:15, 24:27].all()  # a fragment within the margin is left as predicted
    assert out.sum() == 10 * 13 + 3 * 3
    # zeroed: the far blob and its soft edge up to NEW_OBJECT_MARGIN_PX; the background elsewhere
    # keeps its probabilities (the evaluator's image-wide features do not change)
    m = int(NEW_OBJECT_MARGIN_PX)
    assert not ok[45 - m : 50 + m, 47].any() and ok[45 - m - 1, 47] and ok[50 + m, 47]
    assert ok[:40].all() and ok[:, :40].all()


def test_empty_coarse_label_gives_an_empty_output() -> None:
    prob, _ = _scene()
    empty = np.zeros_like(prob)
    for rule in (CoarseRule("drop"), CoarseRule("keep", max_growth_px=5)):
        ok = rule.support(prob, empty)
        assert not ((prob * ok) > 0.5).any() and ok[0, 0]  # no foreground; background kept
    assert CoarseRule("keep").support(prob, empty).all()  # rule off: untouched
    # nothing to remove: the prediction is left exactly as it is
    assert CoarseRule("drop", 2).support(np.full((8, 8), 0.2), empty).all()


def test_max_growth_limits_the_distance_beyond_the_coarse_label() -> None:
    prob, coarse = _scene()
    ok = CoarseRule("keep", max_growth_px=2).support(prob, coarse)
    out = (prob * ok) > 0.5
    assert out[10:20, 10:22].all() and not out[:, 22:].any()  # 2 px of the 3 px growth
    assert not out[45:50, 45:50].any()  # far blob beyond 2 px too
    assert out.sum() == 10 * 12
    # combined with drop: the fragment (>= 5 px from the coarse label) goes as well
    both = (prob * CoarseRule("drop", max_growth_px=2).support(prob, coarse)) > 0.5
    assert both.sum() == 10 * 12


def test_keep_is_inactive_and_batches_follow_each_image() -> None:
    prob, coarse = _scene()
    assert not CoarseRule("keep").active and CoarseRule().active
    assert apply_rule(None, prob[None], coarse[None]) is None
    assert apply_rule(CoarseRule("keep"), prob[None], coarse[None]) is None
    sup = apply_rule(CoarseRule(), np.stack([prob, prob]), np.stack([coarse, 0 * coarse])[:, None])
    assert sup is not None and sup.shape == (2, 64, 64)
    assert not sup[0, 45:50, 45:50].any() and sup[0, :20, :20].all()
    assert not ((prob * sup[1]) > 0.5).any()
    assert CoarseRule().as_dict() == {
        "new_objects": "drop",
        "max_growth_px": None,
        "new_object_margin_px": NEW_OBJECT_MARGIN_PX,
    }


@pytest.mark.parametrize(
    ("kw", "said"),
    [
        ({"new_objects": "maybe"}, "new_objects (--new-objects): 'maybe' (choose drop | keep)"),
        ({"max_growth_px": -1.0}, "max_growth_px (--max-growth): -1.0 (a distance in px >= 0, "),
        ({"max_growth_px": float("nan")}, "max_growth_px (--max-growth): nan (a distance in px "),
        ({"max_growth_px": "5 px"}, "max_growth_px (--max-growth): '5 px' (a distance in px "),
    ],
)
def test_bad_values_are_refused_as_user_errors(kw: dict[str, object], said: str) -> None:
    """Before: a ValueError (a traceback from the CLI, not an ``error:`` line; a TypeError for a
    text); now a UserError naming the argument and ``elnet enhance``'s flag."""
    with pytest.raises(UserError) as err:
        CoarseRule(**kw)  # type: ignore[arg-type]
    assert str(err.value).startswith("invalid value for " + said), str(err.value)


def test_the_cli_says_a_bad_new_objects_in_one_line(tmp_path, capsys) -> None:
    """``elnet enhance --new-objects maybe``: exit 2, one ``error:`` line naming the flag."""
    from sam2elnet.cli import main

    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    argv = ["enhance", "--model", str(tmp_path / "m.pt"), "--images", str(tmp_path / "images")]
    argv += ["--labels", str(tmp_path / "labels"), "--out", str(tmp_path / "out")]
    capsys.readouterr()
    assert main([*argv, "--new-objects", "maybe"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "--new-objects" in err and "'maybe'" in err
