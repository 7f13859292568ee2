"""A coarse label RASTER on another grid whose footprint misses the image is refused; one that
covers only part of it is warned about with the share it covers.

Was: ``elnet scene --labels COARSE.tif`` (and ``elnet enhance`` with GeoTIFF labels) placed a
raster on another grid by map position and filled every pixel outside its footprint with
background, so a label of another place (a CRS mix-up, the wrong file) gave an all-background
coarse label and the image was "enhanced" from nothing, without a word. A vector file of
another place was refused (before the model loads, for one scene); now a raster is too
(``data.grid_cover.footprint_share`` / ``no_overlap_error`` / ``partial_cover_note``).

One raster file for a folder of scenes (a regional label, ``data.vector_shared.SharedRaster``)
is not refused for a scene it misses: that scene is predicted without a coarse label (as without
``--labels``; was: from an empty one, as one vector file for a folder still does) with one
warning per run (``warn_no_features``). A folder of per-scene labels, and one scene, keep the
refusal.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from helpers_data import micro_model_file, write_tif

from sam2elnet.pipeline import scenes

os.environ.setdefault("SAM2ELNET_THREADS", "1")

H = W = 96  # scenes: 10 m pixels from (500000 E, 4000000 N): x 500000..500960
TILE = ["--tile", "64", "--overlap", "16", "--no-progress"]


def _scene(path: Path, seed: int = 3) -> Path:
    rng = np.random.default_rng(seed)
    return write_tif(path, rng.integers(0, 255, (1, H, W), np.uint8))


def _label(path: Path, x0: float) -> Path:
    """A 48 x 48 px label of 20 m pixels (960 m square) from (x0 E, 4000000 N): another grid."""
    data = np.zeros((1, 48, 48), np.uint8)
    data[:, 10:30, 10:30] = 255
    return write_tif(path, data, transform=Affine(20, 0, x0, 0, -20, 4000000))


def _no_model(*a: object, **k: object) -> None:
    raise AssertionError("the model was loaded for a scene whose coarse label it refuses")


def _errors(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


def _warnings(text: str, words: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("warning:") and words in line]


def _refusal(label: Path, image: Path, what: str) -> str:
    """The exact words (after ``error: ``) of a label 10 km east of its 960 m image."""
    return (
        f"{label}: coarse label raster does not overlap the {what} {image} at all ({what} extent "
        "(500000.0, 3999040.0, 500960.0, 4000000.0) in EPSG:32633, label extent (510000.0, "
        "3999040.0, 510960.0, 4000000.0) in EPSG:32633): the "
        f"{what} would be enhanced from an empty coarse label; check the label's CRS and "
        f"georeference (gdalinfo), or that it is the label of this {what}"
    )


def test_one_scene_with_a_raster_label_of_another_place_is_refused_before_the_model_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sam2elnet.cli import main

    src = _scene(tmp_path / "s.tif")
    far = _label(tmp_path / "far.tif", 510000)
    model = micro_model_file(tmp_path / "m.pt")
    monkeypatch.setattr(scenes, "load_scene_predictor", _no_model)
    out = tmp_path / "o.tif"
    argv = ["scene", "--model", str(model), "--image", str(src), "--labels", str(far)]
    assert main([*argv, "--out", str(out), *TILE]) == 2
    err = capsys.readouterr().err
    assert _errors(err) == [f"error: {_refusal(far, src, 'scene')}"], err
    assert not out.exists()


def test_predict_scene_refuses_it_too(tmp_path: Path) -> None:
    """The prediction's own reader (a library call, a folder's scenes) says the same."""
    from sam2elnet.engine.executors import SmoothingPredictor
    from sam2elnet.engine.scene import predict_scene
    from sam2elnet.errors import DataError

    src = _scene(tmp_path / "s.tif")
    far = _label(tmp_path / "far.tif", 510000)
    with pytest.raises(DataError) as err:
        predict_scene(src, tmp_path / "o.tif", SmoothingPredictor(), coarse=far, tile=64,
                      overlap=16, progress=False)  # fmt: skip
    assert str(err.value) == _refusal(far, src, "scene")
    assert not (tmp_path / "o.tif").exists()


def test_a_raster_label_covering_a_quarter_of_the_scene_is_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """x 500720..501680 over the scene's 500000..500960: 240 of 960 m, 25.0 %."""
    from sam2elnet.cli import main

    src = _scene(tmp_path / "s.tif")
    part = _label(tmp_path / "part.tif", 500720)
    out = tmp_path / "o.tif"
    argv = ["scene", "--model", "builtin:smoothing", "--image", str(src), "--labels", str(part)]
    assert main([*argv, "--out", str(out), *TILE]) == 0
    err = capsys.readouterr().err
    assert _warnings(err, "coarse label raster covers") == [
        f"warning: {part}: the coarse label raster covers 25.0 % of the scene {src}; the other "
        "75.0 % lies outside its footprint and gets no coarse label (background there); check "
        "the label's georeference if it should cover the whole scene"
    ], err
    assert out.exists()


def test_a_raster_label_covering_the_scene_on_another_grid_is_not_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sam2elnet.cli import main

    src = _scene(tmp_path / "s.tif")
    full = _label(tmp_path / "full.tif", 500000)
    argv = ["scene", "--model", "builtin:smoothing", "--image", str(src), "--labels", str(full)]
    assert main([*argv, "--out", str(tmp_path / "o.tif"), *TILE]) == 0
    err = capsys.readouterr().err
    assert "coarse label raster" not in err, err


def test_a_folder_of_scenes_skips_the_one_whose_raster_label_misses_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Batch rule, per-scene labels matched by name: the bad scene is reported and skipped, the
    others go on; nothing done at all is exit 2."""
    from sam2elnet.cli import main

    (imgs := tmp_path / "scenes").mkdir()
    (labs := tmp_path / "labels").mkdir()
    _scene(imgs / "a.tif", 1)
    _scene(imgs / "b.tif", 2)
    _label(labs / "a.tif", 510000)
    _label(labs / "b.tif", 500000)
    out = tmp_path / "out"
    argv = ["scene", "--model", "builtin:smoothing", "--image", str(imgs), "--labels", str(labs)]
    assert main([*argv, "--out", str(out), *TILE]) == 0
    said = capsys.readouterr()
    text = said.out + said.err
    assert (
        f"warning: skipping {imgs / 'a.tif'}: {_refusal(labs / 'a.tif', imgs / 'a.tif', 'scene')}"
        in text.splitlines()
    ), text
    assert f"1 of 2 skipped, see {out / 'skipped.csv'}" in text.splitlines(), text
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".tif") == ["b.tif"]
    assert _refusal(labs / "a.tif", imgs / "a.tif", "scene") in (out / "skipped.csv").read_text()
    (labs / "b.tif").unlink()
    _label(labs / "b.tif", 510000)
    out2 = tmp_path / "out2"
    assert main([*argv, "--out", str(out2), *TILE]) == 2
    assert _errors(capsys.readouterr().err), "no error line when nothing was produced"


def test_enhance_skips_the_image_whose_raster_label_misses_it_and_warns_of_a_partial_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sam2elnet.cli import main

    model = micro_model_file(tmp_path / "m.pt")
    (imgs := tmp_path / "imgs").mkdir()
    (labs := tmp_path / "labels").mkdir()
    for i, x0 in enumerate((510000, 500720, 500000)):
        _scene(imgs / f"i{i}.tif", i)
        _label(labs / f"i{i}.tif", x0)
    out = tmp_path / "out"
    argv = ["enhance", "--model", str(model), "--images", str(imgs), "--labels", str(labs),
            "--no-progress", "--precision", "32"]  # fmt: skip
    assert main([*argv, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    skipped = (out / "skipped.csv").read_text()
    assert _refusal(labs / "i0.tif", imgs / "i0.tif", "image") in skipped, skipped
    assert "i1.tif" not in skipped and "i2.tif" not in skipped
    assert _warnings(err, "coarse label raster covers") == [
        f"warning: {labs / 'i1.tif'}: the coarse label raster covers 25.0 % of the image "
        f"{imgs / 'i1.tif'}; the other 75.0 % lies outside its footprint and gets no coarse "
        "label (background there); check the label's georeference if it should cover the "
        "whole image"
    ], err
    assert sorted(p.name for p in (out / "labels").iterdir()) == ["i1.tif", "i2.tif"]
    for i in (1, 2):  # nothing done at all: exit 2
        (labs / f"i{i}.tif").unlink()
        _label(labs / f"i{i}.tif", 510000)
    assert main([*argv, "--out", str(tmp_path / "out2")]) == 2
    assert _errors(capsys.readouterr().err)


def test_a_raster_label_smaller_than_one_coarse_scene_pixel_inside_the_scene_is_not_refused(
    tmp_path: Path,
) -> None:
    """A 20 x 20 m label inside a 4,096 px scene: the footprint test's coarsened scene grid has
    40 m pixels whose centres (20, 60, ... m from the corner) all miss the label at 30..50 m.
    Was: refused as ``does not overlap the scene at all`` while the message's own extents put
    the label inside the scene; now the scene's footprint is looked for on the label's grid
    too, and the label is taken, with the partial-cover note (``< 0.1 %``)."""
    import rasterio
    from affine import Affine

    from sam2elnet.engine.scene_coarse import CoarseSource
    from sam2elnet.engine.scene_inputs import precheck_coarse

    scene = tmp_path / "big.tif"
    profile = {
        "driver": "GTiff", "height": 4096, "width": 4096, "count": 1, "dtype": "uint8",
        "crs": "EPSG:32633", "transform": Affine(10, 0, 500000, 0, -10, 4000000),
        "tiled": True, "compress": "deflate", "sparse_ok": True,
    }  # fmt: skip
    with rasterio.open(scene, "w", **profile):
        pass  # no pixels written: a small file
    label = write_tif(
        tmp_path / "tiny.tif",
        np.full((1, 2, 2), 255, np.uint8),
        transform=Affine(10, 0, 500030, 0, -10, 4000000 - 30),
    )
    precheck_coarse(scene, label)  # raised DataError (no overlap) before
    with rasterio.open(scene) as ds:
        src = CoarseSource(label, ds, place=False, quiet=True)
        notes = list(src.notes)
        src.close()
    assert any("covers < 0.1 % of the scene" in n for n in notes), notes


def _scenes_apart(folder: Path, *x0s: float) -> list[Path]:
    """96 px scenes of 10 m pixels (960 m square) with their upper-left corners at ``x0s``."""
    rng = np.random.default_rng(5)
    return [
        write_tif(folder / f"{chr(97 + i)}.tif", rng.integers(0, 255, (1, H, W), np.uint8), x0=x0)
        for i, x0 in enumerate(x0s)
    ]


def _missed_warning(scene: Path, label: Path) -> str:
    return (
        f"warning: {scene}: {label} (one label file for all images) does not overlap this "
        "image, so it is predicted without a coarse label (as elnet annotate predicts it); if "
        "the file should cover it, check the label's CRS and georeference (gdalinfo)"
    )


def test_one_regional_raster_for_a_folder_gives_the_scenes_it_misses_no_coarse_label(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One raster label over a folder (``--labels region.tif``): a scene outside its footprint
    is predicted without a coarse label, with one warning per run and the closing count (was:
    refused, the scene skipped, ``2 of 3 skipped``; then from an empty coarse label; the
    prediction itself: tests/cli/test_cli_shared_raster_missed_windows.py)."""
    from sam2elnet.cli import main

    (imgs := tmp_path / "scenes").mkdir()
    a, b, c = _scenes_apart(imgs, 500000, 510000, 520000)
    region = _label(tmp_path / "region.tif", 510000)  # b's footprint only
    out = tmp_path / "out"
    argv = ["scene", "--model", "builtin:smoothing", "--image", str(imgs), "--labels", str(region)]
    assert main([*argv, "--out", str(out), *TILE]) == 0
    said = capsys.readouterr()
    text = said.out + said.err
    assert "3 scenes predicted, 0 already done, 0 skipped" in text.splitlines(), text
    assert not (out / "skipped.csv").exists() and "skipping" not in text, text
    assert _warnings(text, "(one label file for all images)") == [_missed_warning(a, region)], text
    assert (
        "note: the warning above (images that the one coarse-label file does not touch) "
        "applied to 2 scenes in all (a.tif, c.tif); only the first was shown" in text.splitlines()
    ), text
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".tif") == [
        "a.tif",
        "b.tif",
        "c.tif",
    ]


def test_a_library_call_with_a_shared_raster_gives_a_missed_scene_no_coarse_label(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """:class:`CoarseSource` given the file as one label for several scenes
    (:func:`~sam2elnet.pipeline.scene_files.shared_coarse`) raises ``FootprintMissed`` after
    the warning for a scene outside its footprint (was: read zeros, an empty label), which
    :class:`SceneInputs` takes as no coarse label; the plain path (one scene's own label) is
    still refused."""
    import rasterio

    from sam2elnet.data.grid_cover import FootprintMissed
    from sam2elnet.data.tiling import Window
    from sam2elnet.engine.executors import SmoothingPredictor
    from sam2elnet.engine.scene_coarse import CoarseSource
    from sam2elnet.engine.scene_inputs import SceneInputs
    from sam2elnet.errors import DataError
    from sam2elnet.pipeline.scene_files import shared_coarse

    a, b = _scenes_apart(tmp_path / "s", 500000, 510000)
    region = _label(tmp_path / "region.tif", 510000)
    shared = shared_coarse(region, [a, b])
    assert shared is not None and Path(shared) == region
    assert shared_coarse(region, [a]) is None  # one scene: its own label
    with rasterio.open(a) as ds, caplog.at_level("WARNING"):
        with pytest.raises(FootprintMissed):
            CoarseSource(shared, ds)
        with pytest.raises(DataError, match="does not overlap the scene"):
            CoarseSource(region, ds)
    assert [r.getMessage() for r in caplog.records] == [_missed_warning(a, region)[9:]]
    with SceneInputs(a, SmoothingPredictor(), coarse=shared) as inputs:
        assert inputs.coarse is None and inputs.coarse_missed
    with SceneInputs(b, SmoothingPredictor(), coarse=shared) as inputs:
        assert inputs.coarse is not None and not inputs.coarse_missed
    with rasterio.open(b) as ds:
        src = CoarseSource(shared, ds)
        assert src.read(Window(0, 0, H, W)).any()
        src.close()
