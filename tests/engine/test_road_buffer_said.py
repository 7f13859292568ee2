"""The road buffer in words (:func:`sam2elnet.engine.road_buffer.buffer_said`, the one
formatter of evaluate's, cv's and experiment's texts), one px buffer per image
(:func:`~sam2elnet.engine.road_buffer.per_item`) and one buffer unit per train config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sam2elnet.engine.road_buffer import buffer_said, per_item
from sam2elnet.option_values import ROAD_BUFFER_PX


def test_buffer_said_in_each_unit() -> None:
    assert buffer_said(3) == "3 px"
    assert buffer_said(3, 2.0) == "2 m"  # metres without their px: the px is not used
    assert buffer_said(3, 2.0, (4.0, 4.02)) == "2 m = 4 px"  # one pixel size (1 %)
    assert buffer_said(None, 2.0, (4.0, 8.0)) == "2 m = 4-8 px"
    assert buffer_said(None, None, (4.0, 8.0)) == "4-8 px"
    with pytest.raises(ValueError, match="no road buffer"):
        buffer_said()


def test_per_item_takes_numpy_scalars_as_one_buffer() -> None:
    assert per_item(np.float32(2.5), 3) == [2.5, 2.5, 2.5]
    assert per_item(np.array(4.0), 2) == [4.0, 4.0]
    assert per_item([1, 2], 2) == [1.0, 2.0]
    with pytest.raises(ValueError, match="3 road buffers for 2 images"):
        per_item([1, 2, 3], 2)


def test_road_buffer_words_needs_a_buffer_and_folds_one_pixel_size() -> None:
    """No px and no range: an error, not "0 px"; a range of one size: one px."""
    from sam2elnet.pipeline.glossary import road_buffer_words

    with pytest.raises(ValueError, match="no buffer in px"):
        road_buffer_words(None, 2.0, "m")
    assert "within 2 m = 4 px (--road-buffer-m; per image" in road_buffer_words(
        None, 2.0, "m", px_range=[4.0, 4.01]
    )
    assert "within 5 px = 2.5 m (--road-buffer)" in road_buffer_words(5, 2.5)


def test_cv_md_says_one_px_when_every_test_image_has_one_pixel_size() -> None:
    from sam2elnet.pipeline.crossval_report import _road_buffer_lines

    r = {"domain": "roads", "road_buffer": 3.0, "road_buffer_m": 2.0}
    (line,) = _road_buffer_lines({**r, "road_buffer_px_range": [4.0, 4.0]})
    assert "matched within 2 m = 4 px (--road-buffer-m;" in line, line
    (line,) = _road_buffer_lines({**r, "road_buffer_px_range": [4.0, 8.0]})
    assert "matched within 2 m = 4-8 px by image (--road-buffer-m;" in line, line
    (line,) = _road_buffer_lines({**r, "road_buffer_m": None, "val_road_buffer": "2 m"})
    assert "matched within 3 px (--road-buffer)." in line and "used 2 m" in line, line


def test_a_train_config_sets_one_road_buffer_unit(tmp_path: Path) -> None:
    """TrainConfig (the API, a --config file) refuses a px buffer with a metres one (metres
    won silently); the default px recorded next to metres (a saved config.yaml) is one."""
    from pydantic import ValidationError

    from sam2elnet.config import TrainConfig
    from sam2elnet.errors import UserError

    with pytest.raises(ValidationError, match=r"road_buffer \(5 px\) and road_buffer_m \(2 m\)"):
        TrainConfig(data="d", out="o", road_buffer=5, road_buffer_m=2)
    cfg = TrainConfig(data="d", out="o", road_buffer_m=2)
    (tmp_path / "config.yaml").write_text(cfg.to_yaml())
    assert TrainConfig.load(tmp_path / "config.yaml").road_buffer_m == 2
    bad = tmp_path / "both.yaml"
    bad.write_text("data: d\nout: o\nroad_buffer: 5\nroad_buffer_m: 2\n")
    with pytest.raises(UserError, match="both set: give one of them"):
        TrainConfig.load(bad)


def test_train_config_file_with_both_units_is_one_error_line_and_a_flag_replaces_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sam2elnet.cli import main

    bad = tmp_path / "both.yaml"
    bad.write_text("road_buffer: 5\nroad_buffer_m: 2\n")
    argv = ["train", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "r")]
    assert main([*argv, "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "both.yaml" in err[0] and "both set: give one of them" in err[0]
    px = tmp_path / "px.yaml"
    px.write_text("road_buffer: 5\n")
    assert main([*argv, "--config", str(px), "--road-buffer-m", "2"]) == 2  # no data folder
    err = capsys.readouterr().err
    assert "both set" not in err and "none" in err, err


def test_evaluate_in_metres_without_road_measures_records_no_px_buffer(tmp_path: Path) -> None:
    """--road-buffer-m with --no-roads: no image had a buffer, so no px is recorded (was the
    default 3 px next to the unit 'm')."""
    import json

    from PIL import Image

    from sam2elnet.cli import main

    for d, name in (("pred", "a_pred.png"), ("truth", "a_mask.png")):
        (tmp_path / d).mkdir()
        m = np.zeros((16, 16), np.uint8)
        m[4:8] = 255
        Image.fromarray(m).save(tmp_path / d / name)
    argv = ["evaluate", "--pred", str(tmp_path / "pred"), "--truth", str(tmp_path / "truth"),
            "--no-roads", "--no-progress", "--json", str(tmp_path / "e.json")]  # fmt: skip
    assert main([*argv, "--road-buffer-m", "2"]) == 0
    o = json.loads((tmp_path / "e.json").read_text())["options"]
    assert (o["road_buffer_px"], o["road_buffer_px_range"], o["road_buffer_unit"]) == (
        None, None, "m",
    )  # fmt: skip


def test_a_buffer_unit_given_replaces_the_other_unit_of_the_file(tmp_path: Path) -> None:
    """``train --config FILE --road-buffer 5`` over a file in metres (or ``--resume`` of a run in
    metres) takes 5 px; ``--road-buffer-m`` over a file's px takes the metres (was refused:
    ``road_buffer (5 px) and road_buffer_m (2 m) both set``)."""
    from sam2elnet.config import TrainConfig

    metres = tmp_path / "m.yaml"
    metres.write_text("road_buffer_m: 2\n")
    px = tmp_path / "px.yaml"
    px.write_text("road_buffer: 5\n")
    run = {"data": "d", "out": "o"}
    cfg = TrainConfig.from_sources({**run, "road_buffer": 5.0}, config=metres)
    assert (cfg.road_buffer, cfg.road_buffer_m) == (5.0, None)
    cfg = TrainConfig.from_sources({**run, "road_buffer_m": 2.0}, config=px)
    assert cfg.road_buffer_m == 2.0 and cfg.road_buffer == ROAD_BUFFER_PX
    assert TrainConfig.from_sources(dict(run), config=metres).road_buffer_m == 2.0
