"""Memory budget: the estimate, --max-memory parsing, routing by memory, batches by memory."""

from __future__ import annotations

import os

os.environ.setdefault("SAM2ELNET_THREADS", "1")

from pathlib import Path

import cv2
import numpy as np
import pytest

from sam2elnet.engine import memory
from sam2elnet.engine.infer import annotate_folder
from sam2elnet.engine.predictor import Predictor
from sam2elnet.errors import UserError


@pytest.fixture
def pred(run: dict[str, Path]) -> Predictor:
    return Predictor.from_file(run["model"], precision="32", batch_size=4)


def test_parse_memory_sizes_and_errors() -> None:
    assert memory.parse_memory("1.5G") == 1_500_000_000
    assert memory.parse_memory("800M") == 800_000_000
    assert memory.parse_memory("800mb") == 800_000_000
    assert memory.parse_memory("512MiB") == 512 * 2**20
    assert memory.parse_memory(3_000_000) == 3_000_000
    assert memory.DEFAULT_MAX_MEMORY == 1_500_000_000
    for bad in ("lots", "-1G", "0", "10K", "1.5X"):
        with pytest.raises(UserError, match="--max-memory"):
            memory.parse_memory(bad)
    # the least size is 1 MiB, and the message says so: "1M" (10^6 bytes, decimal units) was
    # refused with "must be a size of at least 1M"
    assert memory.parse_memory("1MiB") == 2**20
    with pytest.raises(UserError) as err:
        memory.parse_memory("1M")
    assert str(err.value) == (
        "max_memory (--max-memory) '1M' must be a size of at least 1MiB (1.05M), e.g. 1.5G or 800M"
    )


def test_max_memory_option_is_validated_with_the_flag_named() -> None:
    from sam2elnet.option_checks import check_options
    from sam2elnet.options import FolderJobOptions

    assert check_options(FolderJobOptions, max_memory="2G").max_memory == 2_000_000_000
    assert check_options(FolderJobOptions).max_memory == memory.DEFAULT_MAX_MEMORY
    with pytest.raises(UserError, match="--max-memory"):
        check_options(FolderJobOptions, max_memory="a lot")


def test_estimate_grows_with_pixels_bands_batch_and_precision() -> None:
    kw = {"size": "tiny", "precision": "bf16", "bands": 3}
    one = memory.whole_image_bytes(1_000_000, **kw)
    assert one - memory.whole_image_bytes(0, **kw) == 1_000_000 * memory.per_pixel_bytes(
        "tiny", "bf16", 3
    )
    assert memory.whole_image_bytes(1_000_000, batch=2, **kw) > one
    assert memory.per_pixel_bytes("tiny", "32", 3) > memory.per_pixel_bytes("tiny", "bf16", 3)
    assert memory.per_pixel_bytes("tiny", "bf16", 4) > memory.per_pixel_bytes("tiny", "bf16", 3)
    assert memory.per_pixel_bytes("large", "bf16", 3) > memory.per_pixel_bytes("tiny", "bf16", 3)
    # the case: a 3,000^2 px 3-band image with the tiny model exceeds the 1.5 GB default
    assert memory.whole_image_bytes(9_000_000, **kw) > memory.DEFAULT_MAX_MEMORY
    assert memory.whole_image_bytes(500 * 500, **kw) < memory.DEFAULT_MAX_MEMORY


def test_batches_are_formed_by_memory(pred: Predictor, monkeypatch: pytest.MonkeyPatch) -> None:
    from sam2elnet.engine import predictor as predictor_module

    rng = np.random.default_rng(0)
    images = [rng.random((pred.in_bands, 64, 64), dtype=np.float32) for _ in range(5)]
    ref, _ = pred.predict(images)
    sizes: list[int] = []
    real = predictor_module.run_model

    def spy(model, x, *a, **k):  # type: ignore[no-untyped-def]
        sizes.append(int(x.shape[0]))
        return real(model, x, *a, **k)

    monkeypatch.setattr(predictor_module, "run_model", spy)
    pred.max_memory = pred.whole_bytes(64 * 64, batch=2)
    assert pred.fit_batch(64 * 64) == 2 and pred.fit_batch(32 * 32) == 4
    out, _ = pred.predict(images)
    assert sizes == [2, 2, 1]
    for a, b in zip(ref, out, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def _png(path: Path, run: dict[str, Path], size: int) -> Path:
    img = cv2.imread(str(run["data"] / "images" / "s00.png"))
    tiled = np.tile(img, (3, 3, 1))[:size, :size]
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), tiled)
    return path


def test_png_over_the_budget_is_tiled_and_equals_the_whole_image_path(
    run: dict[str, Path], pred: Predictor, tmp_path: Path
) -> None:
    """A PNG just over a tiny budget goes through the window path; with one window covering
    it entirely the label (same name, PNG) equals the whole-image label pixel for pixel."""
    img = _png(tmp_path / "in" / "a.png", run, 48)
    whole = annotate_folder(
        run["model"], img, tmp_path / "whole", progress=False, predictor=pred, save_prob=True
    )
    assert "tiles" not in {p.name for p in (tmp_path / "whole").iterdir()}
    tiled = annotate_folder(
        run["model"],
        img,
        tmp_path / "tiled",
        progress=False,
        predictor=pred,
        save_prob=True,
        tile=64,
        overlap=16,
        max_memory=pred.whole_bytes(48 * 48) - 1,
    )
    assert (tmp_path / "tiled" / "tiles" / "a.gpkg").is_file()  # it did take the window path
    assert whole.rows[0]["label"] == tiled.rows[0]["label"] == "labels/a.png"
    a = cv2.imread(str(tmp_path / "whole" / "labels" / "a.png"), cv2.IMREAD_UNCHANGED)
    b = cv2.imread(str(tmp_path / "tiled" / "labels" / "a.png"), cv2.IMREAD_UNCHANGED)
    assert a.shape == b.shape == (48, 48) and a.dtype == b.dtype == np.uint8
    assert np.array_equal(a, b) and 0 < np.count_nonzero(a == 255) < a.size
    pa = cv2.imread(str(tmp_path / "whole" / "prob" / "a.png"), cv2.IMREAD_UNCHANGED)
    pb = cv2.imread(str(tmp_path / "tiled" / "prob" / "a.png"), cv2.IMREAD_UNCHANGED)
    assert np.abs(pa.astype(int) - pb.astype(int)).max() <= 1
    assert not list((tmp_path / "tiled" / "labels").glob("*.tif"))
    assert abs(float(whole.rows[0]["predicted_iou"]) - float(tiled.rows[0]["predicted_iou"])) < 1e-4


def test_enhanced_images_on_the_window_path_get_the_same_change_map(
    run: dict[str, Path], pred: Predictor, tmp_path: Path
) -> None:
    """enhance: an image routed to the window path gets the change map and change counts of the
    whole-image path (PNG input: same name and pixels); a GeoTIFF scene gets a georeferenced
    GeoTIFF change map whose colours follow its label and coarse label."""
    import rasterio

    from sam2elnet.engine.infer import enhance_folder

    img = _png(tmp_path / "in" / "a.png", run, 48)
    coarse = np.zeros((48, 48), np.uint8)
    coarse[8:30, 10:40] = 255
    (tmp_path / "coarse").mkdir()
    cv2.imwrite(str(tmp_path / "coarse" / "a.png"), coarse)
    budget = pred.whole_bytes(48 * 48, coarse=True) - 1
    # the coarse-label rule (--new-objects drop) applies to whole images only (documented):
    # compare the two paths without it
    kw = dict(progress=False, predictor=pred, tile=64, overlap=16, new_objects="keep")
    whole = enhance_folder(run["model"], img, tmp_path / "coarse", tmp_path / "whole", **kw)
    tiled = enhance_folder(
        run["model"], img, tmp_path / "coarse", tmp_path / "tiled", max_memory=budget, **kw
    )
    assert (tmp_path / "tiled" / "tiles" / "a.gpkg").is_file()  # it took the window path
    a, b = (cv2.imread(str(tmp_path / d / "labels" / "a.png"), 0) for d in ("whole", "tiled"))
    assert np.array_equal(a, b)
    assert whole.rows[0]["changes"] == tiled.rows[0]["changes"] == "changes/a.png"
    ca, cb = (cv2.imread(str(tmp_path / d / "changes" / "a.png")) for d in ("whole", "tiled"))
    assert ca.shape == cb.shape == (48, 48, 3) and np.array_equal(ca, cb)
    for key in ("added_px", "removed_px", "changed_frac"):
        assert whole.rows[0][key] == tiled.rows[0][key], key
    assert whole.rows[0]["added_px"] + whole.rows[0]["removed_px"] > 0
    # a GeoTIFF scene: changes/<stem>.tif with the label's georeference
    with rasterio.open(img) as src:
        data = src.read()
    from helpers_data import write_tif

    scene = write_tif(tmp_path / "geo" / "g.tif", data)
    write_tif(tmp_path / "geo_coarse" / "g.tif", coarse[None])
    res = enhance_folder(
        run["model"], scene, tmp_path / "geo_coarse", tmp_path / "geo_out", max_memory=budget, **kw
    )
    assert res.rows[0]["changes"] == "changes/g.tif"
    with (
        rasterio.open(tmp_path / "geo_out" / "changes" / "g.tif") as ch,
        rasterio.open(tmp_path / "geo_out" / res.rows[0]["label"]) as lab,
    ):
        assert ch.crs == lab.crs and ch.transform == lab.transform and ch.count == 3
        rgb, mask = ch.read(), lab.read(1) == 255
    c = coarse > 0
    assert np.array_equal(rgb[1] == 200, mask & ~c)  # green: added
    assert np.array_equal(rgb[0] == 220, c & ~mask)  # red: removed
    assert res.rows[0]["added_px"] == int((mask & ~c).sum())
    assert res.rows[0]["removed_px"] == int((c & ~mask).sum())


def test_window_path_rule_warning_calls_the_image_an_image(
    run: dict[str, Path], pred: Predictor, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """enhance with the coarse-label rule on, an image routed to the window path: the warning
    that the rule is not applied names the image as an image (it said 'this scene': enhance
    works on images, and a PNG tile is no scene)."""
    import logging

    from sam2elnet.engine.infer import enhance_folder

    img = _png(tmp_path / "in" / "a.png", run, 48)
    coarse = np.zeros((48, 48), np.uint8)
    coarse[8:30, 10:40] = 255
    (tmp_path / "coarse").mkdir()
    cv2.imwrite(str(tmp_path / "coarse" / "a.png"), coarse)
    budget = pred.whole_bytes(48 * 48, coarse=True) - 1
    with caplog.at_level(logging.WARNING, logger="sam2elnet"):
        enhance_folder(
            run["model"], img, tmp_path / "coarse", tmp_path / "out", progress=False,
            predictor=pred, tile=64, overlap=16, new_objects="drop", max_memory=budget,
        )  # fmt: skip
    assert (tmp_path / "out" / "tiles" / "a.gpkg").is_file()  # it took the window path
    said = [r.getMessage() for r in caplog.records if "--new-objects" in r.getMessage()]
    assert said == [
        "a.png: predicted window by window; --new-objects drop / --max-growth apply to whole "
        "images only and are not applied to this image"
    ]


def test_window_path_decodes_class_index_coarse_labels_like_the_whole_path(
    run: dict[str, Path], pred: Predictor, tmp_path: Path
) -> None:
    """enhance --positive-values: a class-index coarse label ({0, 1, 2}, object = 2) gives the
    same change counts on the window path as on the whole-image path."""
    from sam2elnet.engine.infer import enhance_folder

    img = _png(tmp_path / "in" / "a.png", run, 48)
    coarse = np.zeros((48, 48), np.uint8)
    coarse[5:20, 5:40] = 1
    coarse[25:45, 10:30] = 2
    (tmp_path / "coarse").mkdir()
    cv2.imwrite(str(tmp_path / "coarse" / "a.png"), coarse)
    kw = dict(  # without the coarse-label rule (whole images only), as above
        progress=False,
        predictor=pred,
        tile=64,
        overlap=16,
        positive_values=(2.0,),
        new_objects="keep",
    )
    whole = enhance_folder(run["model"], img, tmp_path / "coarse", tmp_path / "whole", **kw)
    tiled = enhance_folder(
        run["model"],
        img,
        tmp_path / "coarse",
        tmp_path / "tiled",
        max_memory=pred.whole_bytes(48 * 48, coarse=True) - 1,
        **kw,
    )
    assert (tmp_path / "tiled" / "tiles" / "a.gpkg").is_file()
    for key in ("added_px", "removed_px"):
        assert whole.rows[0][key] == tiled.rows[0][key], key


def test_geotiff_just_over_the_budget_keeps_name_and_georeference(
    run: dict[str, Path], pred: Predictor, tmp_path: Path
) -> None:
    import rasterio
    from rasterio.transform import from_origin

    src = cv2.imread(str(run["data"] / "images" / "s00.png"))[:, :, ::-1]
    data = np.ascontiguousarray(np.moveaxis(src, 2, 0)[:, :40, :40])
    img = tmp_path / "in" / "g.tif"
    img.parent.mkdir()
    profile = {"driver": "GTiff", "width": 40, "height": 40, "count": 3, "dtype": "uint8"}
    with rasterio.open(
        img, "w", crs="EPSG:32633", transform=from_origin(500000, 4000000, 10, 10), **profile
    ) as dst:
        dst.write(data)
    small = annotate_folder(
        run["model"],
        img,
        tmp_path / "w",
        progress=False,
        predictor=pred,
        max_memory=pred.whole_bytes(40 * 40),
    )
    assert not (tmp_path / "w" / "tiles").exists()  # exactly at the budget: whole
    res = annotate_folder(
        run["model"],
        img,
        tmp_path / "t",
        progress=False,
        predictor=pred,
        tile=32,
        overlap=8,
        max_memory=pred.whole_bytes(40 * 40) - 1,
    )
    assert (tmp_path / "t" / "tiles" / "g.gpkg").is_file()
    assert res.rows[0]["label"] == small.rows[0]["label"] == "labels/g.tif"
    with rasterio.open(tmp_path / "t" / "labels" / "g.tif") as ds:
        assert ds.crs.to_epsg() == 32633 and (ds.width, ds.height) == (40, 40)
        assert ds.transform == from_origin(500000, 4000000, 10, 10)
        assert set(np.unique(ds.read(1))) <= {0, 255}


def test_scene_batches_of_windows_fit_the_budget(
    run: dict[str, Path], pred: Predictor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """predict_scene forms window batches within the predictor's budget (elnet scene too)."""
    from sam2elnet.engine.scene import predict_scene

    img = _png(tmp_path / "in" / "a.png", run, 96)
    sizes: list[int] = []
    real = pred.predict_arrays

    def spy(batch, coarse=None):  # type: ignore[no-untyped-def]
        sizes.append(len(batch))
        return real(batch, coarse)

    monkeypatch.setattr(pred, "predict_arrays", spy)
    pred.max_memory = pred.whole_bytes(32 * 32, batch=2)
    predict_scene(img, tmp_path / "a.tif", pred, tile=32, overlap=0, batch_size=8, progress=False)
    assert sizes == [2] * 4 + [1]  # 9 windows of 32 x 32 px, at most 2 per forward


def test_folder_chunks_of_whole_images_are_formed_by_memory(
    pred: Predictor, tmp_path: Path
) -> None:
    """annotate / enhance folder jobs: whole-image files are grouped so that the summed estimate
    stays within --max-memory (large images: fewer per chunk), not by a fixed count."""
    from sam2elnet.engine.folder_chunk import ChunkPlanner

    files = []
    for i, side in enumerate((64, 64, 64, 32, 32, 32, 32, 64)):
        files.append(tmp_path / f"{i}.png")
        cv2.imwrite(str(files[-1]), np.zeros((side, side, 3), np.uint8))
    old = pred.max_memory
    try:
        pred.max_memory = pred.whole_bytes(2 * 64 * 64)
        job = ChunkPlanner(pred)
        got = [[f.name for f in c] for c in job.chunks(files, False)]
        assert got == [["0.png", "1.png"], ["2.png", "3.png", "4.png", "5.png", "6.png"], ["7.png"]]
        pred.max_memory = pred.whole_bytes(100 * 64 * 64)  # memory no limit: the count cap holds
        sizes = [len(c) for c in job.chunks(files * 10, False)]
        assert max(sizes) == 4 * pred.batch_size and sum(sizes) == 80
    finally:
        pred.max_memory = old


def test_folder_chunks_end_on_whole_forward_batches(pred: Predictor, tmp_path: Path) -> None:
    """Equally large images: a chunk cut by memory ends on a whole number of forward batches and
    the rest starts the next one (16 images, 15 within the budget, 4 per forward: 12 + 4, not
    15 + 1 with a 3- and a 1-image forward); a rest that does not fit with a larger next image is
    a chunk of its own; mixed sizes are cut as before."""
    from sam2elnet.engine.folder_chunk import ChunkPlanner

    def png(name: str, side: int) -> Path:
        cv2.imwrite(str(tmp_path / name), np.zeros((side, side), np.uint8))
        return tmp_path / name

    small = [png(f"s{i:02d}.png", 32) for i in range(17)]
    big = png("big.png", 120)  # 14.1 small images' pixels: fits alone, not with 3 small ones
    old = pred.max_memory, pred.batch_size
    try:
        pred.max_memory, pred.batch_size = pred.whole_bytes(15 * 32 * 32), 4
        assert pred.fit_batch(32 * 32) == 4
        job = ChunkPlanner(pred)

        def names(files: list[Path]) -> list[list[str]]:
            return [[f.stem for f in c] for c in job.chunks(files, False)]

        assert [len(c) for c in names(small[:16])] == [12, 4]
        got = names(small)
        assert [len(c) for c in got] == [12, 5] and sum(got, []) == [f.stem for f in small]
        assert names([*small[:15], big]) == [
            [f.stem for f in small[:12]],
            [f.stem for f in small[12:15]],
            ["big"],
        ]
        mixed = [png("m.png", 40), *small[:15]]  # 1.56 + 13 small fit, the 14th is over
        assert [len(c) for c in names(mixed)] == [14, 2]
    finally:
        pred.max_memory, pred.batch_size = old


def test_change_maps_georeferenced_with_nodata_on_both_paths(
    run: dict[str, Path], pred: Predictor, tmp_path: Path
) -> None:
    """One change-map rule for whole images and the window path: a GeoTIFF input gets
    changes/<stem>.tif with the image's CRS and transform and nodata=127 (its nodata pixels grey
    127, neither added nor removed) plus a PNG quick-look of the same pixels; both paths agree."""
    import rasterio
    from helpers_data import write_tif

    src = cv2.imread(str(_png(tmp_path / "src.png", run, 48)))
    data = np.moveaxis(src[:, :, ::-1], 2, 0).copy()
    data[:, :, :6] = 0  # no measurement (nodata=0 in every band)
    scene = write_tif(tmp_path / "geo" / "g.tif", data, nodata=0)
    coarse = np.zeros((48, 48), np.uint8)
    coarse[8:30, 2:40] = 255  # reaches into the nodata columns
    write_tif(tmp_path / "geo_coarse" / "g.tif", coarse[None])
    budget = pred.whole_bytes(48 * 48, coarse=True) - 1
    kw = dict(progress=False, predictor=pred, tile=64, overlap=16, new_objects="keep")
    from sam2elnet.engine.infer import enhance_folder

    whole = enhance_folder(run["model"], scene, tmp_path / "geo_coarse", tmp_path / "w", **kw)
    tiled = enhance_folder(
        run["model"], scene, tmp_path / "geo_coarse", tmp_path / "t", max_memory=budget, **kw
    )
    assert (tmp_path / "t" / "tiles" / "g.gpkg").is_file()  # the window path ran
    maps = []
    for out, res in (("w", whole), ("t", tiled)):
        row = res.rows[0]
        assert row["changes"] == "changes/g.tif", out
        with (
            rasterio.open(tmp_path / out / "changes" / "g.tif") as ch,
            rasterio.open(scene) as im,
            rasterio.open(tmp_path / out / row["label"]) as lab,
        ):
            assert ch.crs == im.crs and ch.transform == im.transform and ch.nodata == 127
            rgb, label = ch.read(), lab.read(1)
        assert (rgb[:, :, :6] == 127).all() and (label[:, :6] == 127).all()
        assert not (rgb[:, :, 6:] == 127).all(axis=0).any()
        mask, c = label == 255, coarse > 0
        c[:, :6] = False  # nodata: not counted as removed
        assert row["added_px"] == int((mask & ~c).sum())
        assert row["removed_px"] == int((c & ~mask).sum())
        quick = cv2.imread(str(tmp_path / out / "changes" / "g.png"))[:, :, ::-1]
        assert np.array_equal(np.moveaxis(rgb, 0, 2), quick)
        maps.append(rgb)
    assert np.array_equal(maps[0], maps[1])
    assert whole.rows[0]["removed_px"] == tiled.rows[0]["removed_px"]


# The child's own peak resident memory, written at its exit: VmHWM of /proc/self/status (not
# getrusage's ru_maxrss, which Linux carries over exec from the forking parent: pytest, torch
# loaded). The same hook as benchmarks/bench_memory.py.
_PEAK_CHILD = """
import atexit, os, sys
def _hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            open(os.environ["PEAK_KIB"], "w").write(line.split()[1])
atexit.register(_hwm)
from sam2elnet.cli import entry
sys.argv[0] = "elnet"
entry()
"""


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="VmHWM is Linux's")
def test_annotate_peak_rss_stays_within_max_memory(tmp_path: Path) -> None:
    """A real ``elnet annotate --max-memory 700M`` process, on the largest image the memory model
    predicts whole within 700M, peaks within 700M (VmHWM of the child, read at its exit).

    Tolerance: none (peak <= budget). Measured 2026-12-04 (docs/benchmarks.md, "--max-memory
    against the measured peak"): with 420 MB for RUNTIME_BASE and the weights counted once, the
    model let a 608^2 px image through and the process peaked at 760 MB (over by 60 MB; 799-822
    MB with the benchmark's model); with the measured 580 MB and two copies of the weights it
    plans 384^2 px, which peaked at 571-611 MB in five runs. The 89 MB or more left is mostly the
    base's allowance for the window path, which this whole-image run does not load. The peak of
    one configuration moved by up to 40 MB between runs (allocator and thread timing, not the
    machine's load: resident memory does not depend on time), less than either distance."""
    import subprocess
    import sys

    from helpers_data import micro_model_file

    budget = 700_000_000
    model = micro_model_file(tmp_path / "m.pt", bands=3)
    plan = Predictor.from_file(model, precision="32", max_memory=budget)
    # the load's two copies of the weights: the larger of the model's bytes and its file's
    weights = max(memory.model_bytes(plan.model), model.stat().st_size)
    assert plan.whole_bytes(0) == memory.RUNTIME_BASE + memory.WEIGHT_COPIES * weights
    side = 16
    while plan.fits_whole((side + 16) ** 2):
        side += 16
    assert plan.fits_whole(side * side) and not plan.fits_whole((side + 16) ** 2)
    (tmp_path / "in").mkdir()
    noise = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "in" / "a.png"), noise)
    peak_file = tmp_path / "peak_kib"
    env = dict(os.environ, PEAK_KIB=str(peak_file))
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(memory.__file__).resolve().parents[2]), env.get("PYTHONPATH", "")]
    )
    cmd = [sys.executable, "-c", _PEAK_CHILD, "annotate", "--model", str(model)]
    cmd += ["--images", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--no-progress"]
    cmd += ["--precision", "32", "--max-memory", "700M"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "out" / "labels" / "a.png").is_file()
    assert not (tmp_path / "out" / "tiles").exists()  # predicted whole, as planned
    peak = int(peak_file.read_text()) * 1024
    assert peak <= budget, (
        f"{side}^2 px: peak {memory.format_bytes(peak)} over --max-memory 700M "
        f"(estimate {memory.format_bytes(plan.whole_bytes(side * side))})"
    )
