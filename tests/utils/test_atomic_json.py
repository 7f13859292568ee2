"""Every JSON file the package writes is strict JSON: NaN / inf become null."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sam2elnet.utils.atomic import json_text, strict_json_value, write_json_atomic


def _refuse(token: str) -> None:
    raise ValueError(f"non-standard JSON constant {token}")


def test_non_finite_floats_are_written_as_null(tmp_path: Path) -> None:
    obj = {
        "a": float("nan"),
        "b": [1.5, float("inf"), {"c": -float("inf")}],
        "d": (np.float64("nan"), np.float32(0.5), np.float32("nan")),
        "e": "NaN",
        "f": 3,
        "g": True,
    }
    path = write_json_atomic(tmp_path / "s.json", obj)
    text = path.read_text()
    assert "NaN" not in text.replace('"NaN"', "") and "Infinity" not in text
    back = json.loads(text, parse_constant=_refuse)
    assert back == {
        "a": None,
        "b": [1.5, None, {"c": None}],
        "d": [None, 0.5, None],
        "e": "NaN",
        "f": 3,
        "g": True,
    }
    # the strict parser really refuses what json.dumps writes by default
    with pytest.raises(ValueError, match="NaN"):
        json.loads(json.dumps({"x": float("nan")}), parse_constant=_refuse)


def test_json_text_is_compact_on_request_and_keeps_finite_values() -> None:
    assert json_text({"x": [1.0, float("nan")]}, indent=None) == '{"x": [1.0, null]}'
    assert strict_json_value({"k": (1, 2.5)}) == {"k": [1, 2.5]}
