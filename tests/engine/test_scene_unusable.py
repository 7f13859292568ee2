"""Unusable scenes on the window-by-window path (docs/reliability.md): a constant scene (all
black, or constant once the model's scaling clips it) gets the whole-image path's quality_flag,
from value ranges gathered while the windows are read. ``elnet scene`` writes no label for it and
exits 2; annotate/enhance keep its label in rejected/ and count it toward "nothing usable"; a
folder of scenes skips it and fails only when no scene is usable."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
from helpers_data import write_tif

from sam2elnet.cli import main
from sam2elnet.data.normalize import NormalizationConfig
from sam2elnet.engine.executors import SmoothingPredictor
from sam2elnet.engine.scene import predict_scene
from sam2elnet.errors import DataError

os.environ.setdefault("SAM2ELNET_THREADS", "1")


def _black(path: Path, h: int = 200, w: int = 260) -> Path:
    return write_tif(path, np.zeros((1, h, w), np.uint8))


def _real(path: Path, h: int = 200, w: int = 260) -> Path:
    return write_tif(path, np.random.default_rng(0).integers(1, 255, (1, h, w)).astype(np.uint8))


def _run(src: Path, out: Path, **kw):  # type: ignore[no-untyped-def]
    return predict_scene(src, out, SmoothingPredictor(), tile=64, overlap=16, progress=False, **kw)


def test_constant_scene_is_a_data_error_and_writes_nothing(tmp_path: Path) -> None:
    """It wrote a label of a blank scene (foreground x %) and returned as if all was well."""
    with pytest.raises(DataError, match=r"unusable scene, no label written: constant image"):
        _run(_black(tmp_path / "black.tif"), tmp_path / "o.tif", prob_path=tmp_path / "p.tif")
    assert not (tmp_path / "o.tif").exists() and not (tmp_path / "p.tif").exists()
    assert _run(_real(tmp_path / "real.tif"), tmp_path / "r.tif").quality_flag == ""


def test_constant_scene_with_nodata_is_judged_on_its_valid_pixels(tmp_path: Path) -> None:
    """A nodata border (value 0) around a flat 90: the valid pixels are one value."""
    data = np.full((3, 200, 260), 90, np.uint8)
    data[:, :40] = 0
    src = write_tif(tmp_path / "flat.tif", data, nodata=0)
    res = _run(src, tmp_path / "o.tif", keep_unusable=True)
    assert res.quality_flag == "constant image" and (tmp_path / "o.tif").is_file()


def test_windows_each_constant_but_different_make_a_usable_scene(tmp_path: Path) -> None:
    """The flag is of the whole scene, not of one window: flat fields of several values vary."""
    data = np.zeros((1, 200, 260), np.uint8)
    data[:, :, 130:] = 200  # two flat halves, every 64 px window of the left one flat
    assert _run(write_tif(tmp_path / "halves.tif", data), tmp_path / "o.tif").quality_flag == ""


def test_scene_clipped_flat_by_the_model_scaling_is_constant_after_scaling(tmp_path: Path) -> None:
    """A float dB scene (-30..-5) given to a model scaled for 0..255: every pixel becomes 0."""
    db = -30 + 25 * np.random.default_rng(1).random((1, 150, 150)).astype(np.float32)
    src = write_tif(tmp_path / "db.tif", db)
    pred = SmoothingPredictor(
        normalization=NormalizationConfig(method="fixed", low=[0], high=[255])
    )
    with pytest.raises(DataError, match=r"constant after scaling .*; rescale it"):
        predict_scene(src, tmp_path / "o.tif", pred, tile=64, overlap=16, progress=False)
    assert not (tmp_path / "o.tif").exists()


def test_value_spread_is_the_whole_image_rule_and_stops_once_it_varies() -> None:
    """One rule (spread_flag) for whole images and scenes; no more work after content is seen."""
    from sam2elnet.engine.scene_norm import ValueSpread
    from sam2elnet.model.input_flags import CLIPPED_FLAG, spread_flag

    assert spread_flag(False, 0.0) == "all nodata" and spread_flag(True, 0.5) == ""
    assert spread_flag(True, 0.0) == "constant image"
    assert spread_flag(True, 0.0, file_varies=True) == CLIPPED_FLAG
    s = ValueSpread()
    valid = np.ones((4, 4), bool)
    s.add(np.full((1, 4, 4), 7), np.full((1, 4, 4), 0.3, np.float32), valid)
    assert s.flag == "constant image"
    s.add(np.full((1, 4, 4), 9), np.full((1, 4, 4), 0.6, np.float32), valid)
    assert s.flag == "" and s.varies
    s.add(None, None, valid)  # type: ignore[arg-type]  # not looked at any more
    assert ValueSpread().flag == "all nodata"


def _err_lines(err: str) -> list[str]:
    assert "Traceback" not in err, err
    return [ln for ln in err.splitlines() if ln.startswith("error:")]


def test_elnet_scene_on_a_black_scene_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It exited 0 and reported the foreground of a label of nothing."""
    src = _black(tmp_path / "black.tif")
    argv = ["scene", "--model", "builtin:smoothing", "--image", str(src), "--tile", "64",
            "--overlap", "16", "--no-progress", "--out", str(tmp_path / "o.tif")]  # fmt: skip
    assert main(argv) == 2
    lines = _err_lines(capsys.readouterr().err)
    assert lines == [
        f"error: {src}: unusable scene, no label written: constant image (every valid pixel of "
        "every band has one value); give a scene that holds something to label (not blank, "
        "zero-filled or saturated)"
    ]
    assert not (tmp_path / "o.tif").exists()


def test_scene_batch_skips_unusable_scenes_and_fails_only_when_none_is_usable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _black(tmp_path / "mixed" / "a_black.tif")
    _real(tmp_path / "mixed" / "b_real.tif")
    base = ["scene", "--model", "builtin:smoothing", "--tile", "64", "--overlap", "16",
            "--no-progress"]  # fmt: skip
    out = tmp_path / "out"
    assert main([*base, "--image", str(tmp_path / "mixed"), "--out", str(out)]) == 0
    assert (out / "b_real.tif").is_file() and not (out / "a_black.tif").exists()
    with (out / "skipped.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["scene"] for r in rows] == ["a_black.tif"]
    assert "constant image" in rows[0]["reason"]
    assert capsys.readouterr().out.splitlines()[-1] == f"1 of 2 skipped, see {out / 'skipped.csv'}"
    # the scene fixed and the batch resumed: it is predicted, the earlier list removed (it was
    # left, listing a scene whose label is now there)
    _real(tmp_path / "mixed" / "a_black.tif")
    assert main([*base, "--image", str(tmp_path / "mixed"), "--out", str(out), "--resume"]) == 0
    assert (out / "a_black.tif").is_file() and not (out / "skipped.csv").exists()
    assert "skipped, see" not in capsys.readouterr().out
    _black(tmp_path / "dark" / "a.tif")
    _black(tmp_path / "dark" / "b.tif")
    code = main([*base, "--image", str(tmp_path / "dark"), "--out", str(tmp_path / "out2")])
    assert code == 2
    (line,) = _err_lines(capsys.readouterr().err)
    assert "nothing produced" in line and "constant image" in line
    assert line.endswith("fix or remove the files and re-run") and not (tmp_path / "out2").exists()
    # into a folder that was there: the list stays, and the line says where
    mine = tmp_path / "mine"
    mine.mkdir()
    assert main([*base, "--image", str(tmp_path / "dark"), "--out", str(mine)]) == 2
    (line,) = _err_lines(capsys.readouterr().err)
    assert line.endswith(f"re-run (listed with the reasons in {mine / 'skipped.csv'})"), line
    with (mine / "skipped.csv").open(newline="") as fh:
        assert [r["scene"] for r in csv.DictReader(fh)] == ["a.tif", "b.tif"]
