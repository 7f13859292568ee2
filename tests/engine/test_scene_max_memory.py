"""``elnet scene --max-memory``: the budget that ``annotate`` / ``enhance`` take, for scenes.

Found in a user trial (SAR scenes): ``elnet scene ... --max-memory 800M`` was ``No such option``
although the README bounds memory with ``--max-memory``; the scene's windows per forward were
capped by a fixed 1.5 GB, and a ``--tile`` whose single window exceeds the budget ran anyway.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
from helpers_data import make_scene, micro_model_file

from sam2elnet.cli import main
from sam2elnet.engine.predictor import Predictor
from sam2elnet.pipeline import scenes

os.environ.setdefault("SAM2ELNET_THREADS", "1")


def _run(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, str]:
    """``elnet scene ARGS`` in-process: exit code, stdout + stderr."""
    code = main(["scene", *args])
    cap = capsys.readouterr()
    return code, cap.out + cap.err


def _inputs(tmp_path: Path, height: int, width: int) -> tuple[Path, list[str]]:
    """An untrained micro model and a ``height`` x ``width`` px scene in ``tmp_path``: (the
    model file, ``--model M --image S``)."""
    model = micro_model_file(tmp_path / "m.pt")
    scene = make_scene(tmp_path / "s.tif", height, width)
    return model, ["--model", str(model), "--image", str(scene)]


def test_max_memory_reaches_the_predictor_and_keeps_the_label(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, inputs = _inputs(tmp_path, 96, 128)
    assert scenes.load_scene_predictor(model, max_memory="800M").max_memory == 800_000_000
    common = [*inputs, "--tile", "64", "--overlap", "16"]
    code, out = _run(capsys, [*common, "--out", str(tmp_path / "a.tif"), "--max-memory", "900M"])
    assert code == 0, out
    code, out = _run(capsys, [*common, "--out", str(tmp_path / "b.tif")])
    assert code == 0, out
    with rasterio.open(tmp_path / "a.tif") as a, rasterio.open(tmp_path / "b.tif") as b:
        assert a.transform == b.transform and a.crs == b.crs
        np.testing.assert_array_equal(a.read(1), b.read(1))  # the budget only shapes batches


def test_a_tile_whose_one_window_does_not_fit_is_refused_with_one_that_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, inputs = _inputs(tmp_path, 96, 128)
    net = Predictor.from_file(model, precision="32")
    # between one 48 px and one 64 px window: --tile 64 does not fit, 48 does
    budget = (net.whole_bytes(48 * 48) + net.whole_bytes(64 * 64)) // 2
    need = net.whole_bytes(64 * 64) / 1e9
    out_path = tmp_path / "o.tif"
    code, out = _run(
        capsys,
        [*inputs, "--out", str(out_path), "--tile", "64", "--precision", "32"]
        + ["--overlap", "16", "--max-memory", str(budget), "--no-progress"],
    )
    assert code == 2
    line = out.strip().splitlines()[-1]
    # the precision by its name (was "at 32 precision")
    assert line == (
        f"error: --max-memory {budget / 1e9:g}G: one 64 x 64 px window (--tile 64) needs about "
        f"{need:.2f} GB with this model at float32 precision; --tile 48 fits it (give a "
        "smaller --tile, or a larger --max-memory)"
    )
    assert "Traceback" not in out and not out_path.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt", "s.tif"]  # nothing written


def test_a_window_larger_than_the_scene_counts_as_the_scene(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, inputs = _inputs(tmp_path, 40, 48)
    net = Predictor.from_file(model)
    budget = net.whole_bytes(40 * 48) + 1  # the 40 x 48 px scene fits; a 4096 px window would not
    assert not net.fits_whole(4096 * 4096)
    code, out = _run(
        capsys,
        [
            *inputs,
            "--out",
            str(tmp_path / "o.tif"),
            "--tile",
            "4096",
            "--max-memory",
            str(budget),
            "--no-progress",
        ],
    )
    assert code == 0, out


def test_bad_max_memory_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, inputs = _inputs(tmp_path, 40, 48)
    code, out = _run(capsys, [*inputs, "--out", str(tmp_path / "o.tif"), "--max-memory", "lots"])
    assert code == 2
    assert out.strip().splitlines() == [
        "error: invalid value for --max-memory: 'lots' (is not a size; give e.g. 1.5G or 800M)"
    ]


def test_a_budget_below_the_model_itself_asks_for_a_larger_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """When the model and runtime alone exceed --max-memory no --tile helps: the line says so
    and names the budget the window needs (was 'give a smaller --tile, or a larger
    --max-memory', as annotate's warning said before a6b572d)."""
    model = micro_model_file(tmp_path / "m.pt")
    scene = make_scene(tmp_path / "s.tif", 96, 128)
    net = Predictor.from_file(model)
    budget = net.whole_bytes(0) // 2  # below the model and runtime alone
    code, out = _run(
        capsys,
        ["--model", str(model), "--image", str(scene), "--out", str(tmp_path / "o.tif")]
        + ["--tile", "64", "--overlap", "16", "--max-memory", str(budget), "--no-progress"],
    )
    assert code == 2
    need = net.whole_bytes(64 * 64) / 1e9
    assert out.strip().splitlines()[-1] == (
        f"error: --max-memory {budget / 1e9:g}G: one 64 x 64 px window (--tile 64) needs about "
        f"{need:.2f} GB with this model at {_named(net.precision)} precision; the model and runtime "
        f"alone take about {net.whole_bytes(0) / 1e9:.2f} GB of it, so no --tile keeps to it: "
        f"give --max-memory {np.ceil(need * 100) / 100:g}G or more"
    )


def test_a_folder_of_scenes_is_judged_by_its_largest_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder of scenes smaller than --tile: its windows are the scenes' own size, as for one
    scene; was refused as 'one 4096 x 4096 px window (--tile 4096) needs ...' (the default 1024
    px --tile and --max-memory 800M refused a folder of 512 px scenes that fit)."""
    model = micro_model_file(tmp_path / "m.pt")
    (tmp_path / "scenes").mkdir()
    make_scene(tmp_path / "scenes" / "a.tif", 40, 48)
    make_scene(tmp_path / "scenes" / "b.tif", 48, 40)
    net = Predictor.from_file(model)
    budget = net.whole_bytes(40 * 48) + 1  # each scene fits; a 4096 px window would not
    assert not net.fits_whole(4096 * 4096)
    code, out = _run(
        capsys,
        ["--model", str(model), "--image", str(tmp_path / "scenes")]
        + ["--out", str(tmp_path / "out"), "--tile", "4096", "--max-memory", str(budget)]
        + ["--no-progress"],
    )
    assert code == 0, out
    assert sorted(p.name for p in (tmp_path / "out").glob("*.tif")) == ["a.tif", "b.tif"]


def test_the_window_check_reads_the_scene_header_once_and_names_a_bad_scene(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One scene's window size comes from the header precheck_scene read (not a second open);
    a scene not prechecked (keep_unusable, API) is opened by open_scene, so a corrupt one is a
    DataError naming it (was a raw RasterioIOError from rasterio.open)."""
    from sam2elnet.errors import DataError, UserError

    model = micro_model_file(tmp_path / "m.pt")
    scene = make_scene(tmp_path / "s.tif", 96, 128)
    net = Predictor.from_file(model)
    budget = (net.whole_bytes(48 * 48) + net.whole_bytes(64 * 64)) // 2  # 64 px does not fit
    kw = {"tile": 64, "overlap": 16, "max_memory": budget, "progress": False}
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00" + b"not a tiff" * 8)
    with pytest.raises(DataError, match="bad.tif"):
        scenes.scene_job(bad, tmp_path / "o.tif", model, keep_unusable=True, **kw)
    with monkeypatch.context() as m:
        m.setattr(scenes, "open_scene", lambda p: pytest.fail(f"{p} opened again"))
        with pytest.raises(UserError, match=r"one 64 x 64 px window \(--tile 64\)"):
            scenes.scene_job(scene, tmp_path / "o.tif", model, **kw)
    assert not (tmp_path / "o.tif").exists()


def _named(precision: str) -> str:
    """The precision as the refusal names it: ``float32`` for ``32``, else as it is."""
    return "float32" if precision == "32" else precision
