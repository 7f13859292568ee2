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
    """No buffer at all: an error, not "0 px"; metres without their px (a training run's
    validation, a cv run: was an error here, so each report typed its own sentence); a range of
    one size: one px."""
    from sam2elnet.pipeline.glossary import road_buffer_words

    with pytest.raises(ValueError, match="no buffer"):
        road_buffer_words(None, None, "m")
    assert road_buffer_words(None, 2.0, "m", subject="validation road measures") == (
        "validation road measures: centre lines matched within 2 m (--road-buffer-m; per image, "
        "from its ground pixel size); lengths summed over images, not pixels"
    )
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
    assert "matched within 3 px (--road-buffer); lengths summed" in line, line
    assert "used 2 m" in line, line


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
    with pytest.raises(UserError, match="both given: give one of them"):
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
    assert len(err) == 1 and "both.yaml" in err[0] and "both given: give one of them" in err[0]
    px = tmp_path / "px.yaml"
    px.write_text("road_buffer: 5\n")
    assert main([*argv, "--config", str(px), "--road-buffer-m", "2"]) == 2  # no data folder
    err = capsys.readouterr().err
    assert "both given" not in err and "none" in err, err


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
    assert (cfg.road_buffer, cfg.road_buffer_m) == (None, 2.0)  # metres: no px buffer
    assert TrainConfig.from_sources(dict(run), config=metres).road_buffer_m == 2.0


CONFIGS = ("TrainConfig", "CVConfig", "ExperimentConfig", "EvaluateOptions")


def _config(name: str) -> type:
    from sam2elnet.config import TrainConfig
    from sam2elnet.options import EvaluateOptions
    from sam2elnet.pipeline.crossval_config import CVConfig
    from sam2elnet.pipeline.experiment_config import ExperimentConfig

    return {"TrainConfig": TrainConfig, "CVConfig": CVConfig,
            "ExperimentConfig": ExperimentConfig, "EvaluateOptions": EvaluateOptions}[name]  # fmt: skip


@pytest.mark.parametrize("name", CONFIGS)
def test_every_config_takes_one_road_buffer_unit_through_the_api(name: str) -> None:
    """One rule (option_values.road_buffer_units) for all: px and metres both given is a
    ValueError naming both fields, the default 3 px too (TrainConfig took ``road_buffer=3,
    road_buffer_m=2`` as metres, CVConfig and ExperimentConfig took any px with metres)."""
    from pydantic import ValidationError

    cls = _config(name)
    run = {} if name == "EvaluateOptions" else {"data": "d", "out": "o"}
    for px in (3, 5):
        with pytest.raises(ValidationError, match=rf"road_buffer \({px} px\) and road_buffer_m"):
            cls(**run, road_buffer=px, road_buffer_m=2)
    got = cls(**run, road_buffer_m=2)
    assert (got.road_buffer, got.road_buffer_m) == (None, 2.0)
    got = cls(**run)
    assert (got.road_buffer, got.road_buffer_m) == (ROAD_BUFFER_PX, None)
    assert cls(**run, road_buffer=5).road_buffer == 5.0


def test_files_of_earlier_versions_keep_their_buffer_in_metres(tmp_path: Path) -> None:
    """An earlier version's config.yaml (and experiment.json / results.json settings) wrote
    the px default 3 beside the metres: read as the run in metres it was; a px other than
    the default beside metres stays an error naming both fields (such a run never trained)."""
    from sam2elnet.config import TrainConfig
    from sam2elnet.errors import UserError
    from sam2elnet.pipeline.experiment_config import ExperimentConfig, upgrade_identity

    old = tmp_path / "config.yaml"
    old.write_text("data: d\nout: o\nroad_buffer: 3.0\nroad_buffer_m: 2.0\n")
    cfg = TrainConfig.load(old)
    assert (cfg.road_buffer, cfg.road_buffer_m) == (None, 2.0)
    assert "road_buffer: null" in cfg.to_yaml()  # saved now: no px beside the metres
    assert TrainConfig.from_sources({"out": "o"}, config=old).road_buffer_m == 2.0
    old.write_text("data: d\nout: o\nroad_buffer: 5.0\nroad_buffer_m: 2.0\n")
    with pytest.raises(UserError, match=r"road_buffer \(5 px\) and road_buffer_m \(2 m\)"):
        TrainConfig.load(old)
    now = ExperimentConfig(data="d", out="o", road_buffer_m=2).identity()
    was = {**now, "road_buffer": 3.0}  # what the experiment.json of such a run holds
    assert upgrade_identity(was) == now
    assert upgrade_identity({**now, "road_buffer": 5.0})["road_buffer"] == 5.0  # as recorded


def test_per_item_has_no_px_for_a_buffer_in_metres() -> None:
    with pytest.raises(ValueError, match="no road buffer in px"):
        per_item(None, 2)


def test_cv_md_of_a_run_in_metres_records_no_px() -> None:
    """cv.json of a run in metres now holds road_buffer None (was the px default 3)."""
    from sam2elnet.pipeline.crossval_report import _road_buffer_lines

    r = {"domain": "roads", "road_buffer": None, "road_buffer_m": 2.0}
    (line,) = _road_buffer_lines({**r, "road_buffer_px_range": [4.0, 8.0]})
    assert "matched within 2 m = 4-8 px by image (--road-buffer-m;" in line, line


def test_evaluate_puts_an_unused_road_buffer_in_its_notes(tmp_path: Path) -> None:
    """The engine decides whether a road buffer given is used (the CLI prints its notes):
    a buffer with road measures off gives one note, in the option's own words; none given or
    measures on: no note."""
    from PIL import Image

    from sam2elnet.engine.evaluate import evaluate_folders

    pred, truth = tmp_path / "pred", tmp_path / "truth"
    pred.mkdir()
    truth.mkdir()
    m = np.zeros((32, 32), np.uint8)
    m[8:24, 8:24] = 255
    Image.fromarray(m).save(pred / "a.png")
    Image.fromarray(m).save(truth / "a.png")
    res = evaluate_folders(pred, truth, roads=False, road_buffer_px=5, progress=False)
    assert res.notes == ["--road-buffer 5 unused: road measures are off (--no-roads)"]
    res = evaluate_folders(pred, truth, roads=False, road_buffer_m=1.5, progress=False)
    assert res.notes == ["--road-buffer-m 1.5 unused: road measures are off (--no-roads)"]
    assert evaluate_folders(pred, truth, roads=False, progress=False).notes == []
    assert evaluate_folders(pred, truth, roads=True, road_buffer_px=5, progress=False).notes == []
