"""Inference: Predictor, annotate/enhance folder jobs, filtering, resume, bad inputs."""

from __future__ import annotations

import os

# Tiny tensors gain nothing from a 2nd thread, and on a shared machine OpenMP waits make each op
# cost a time slice; the library honours this variable (see engine.runtime.set_threads).
os.environ.setdefault("SAM2ELNET_THREADS", "1")

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers_data import count_vector_reads
from helpers_logs import logs_warning
from test_train import trained_run

from sam2elnet.engine.infer import Predictor, annotate_folder, enhance_folder
from sam2elnet.errors import CheckpointError, DataError, UserError
from sam2elnet.model.quality_features import FEATURE_NAMES


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return trained_run(tmp_path_factory)


@pytest.fixture(scope="module")
def pred(run: dict[str, Path]) -> Predictor:
    return Predictor.from_file(run["model"], precision="32", batch_size=4)


def _no_temp_files(folder: Path) -> None:
    assert not [p for p in folder.rglob(".*") if p.is_file()], "temporary files left behind"


def test_predict_mixed_sizes_and_batching(pred: Predictor) -> None:
    rng = np.random.default_rng(0)
    imgs = [
        rng.random((3, 40, 40), dtype=np.float32),
        rng.random((3, 24, 56), dtype=np.float32),
        rng.random((3, 40, 40), dtype=np.float32),
    ]
    probs, q = pred.predict(imgs)
    assert [p.shape for p in probs] == [(40, 40), (24, 56), (40, 40)]
    assert q.predicted_iou.shape == (3,) and np.all((q.predicted_iou >= 0) & (q.predicted_iou <= 1))
    assert q.features.shape == (3, len(FEATURE_NAMES))
    alone, _ = pred.predict([imgs[2]])
    np.testing.assert_allclose(alone[0], probs[2], atol=1e-4)  # batching does not change results
    arr = pred.predict_arrays(np.stack([imgs[0], imgs[2]]))
    assert arr.shape == (2, 40, 40) and arr.dtype == np.float32
    enh = pred.predict_arrays(np.stack([imgs[0]]), coarse=np.ones((1, 40, 40)))
    assert enh.shape == (1, 40, 40) and not np.allclose(enh[0], arr[0])
    # enhancement through predict() accepts (H,W) and (1,H,W) coarse masks alike
    p2, q2 = pred.predict([imgs[0], imgs[0]], coarse=[np.ones((40, 40)), np.ones((1, 40, 40))])
    np.testing.assert_allclose(p2[0], p2[1], atol=1e-5)
    assert q2.features[0, FEATURE_NAMES.index("has_coarse")] == 1
    assert pred.normalization.method in ("fixed", "percentile", "stats")
    with pytest.raises(DataError):
        pred.predict_arrays(np.zeros((1, 2, 32, 32), np.float32))


def test_annotate_filters_into_kept_and_rejected(
    run: dict[str, Path], pred: Predictor, tmp_path: Path
) -> None:
    images = run["data"] / "images"
    res = annotate_folder(
        run["model"],
        images,
        tmp_path / "a",
        min_quality=0.5,
        save_prob=True,
        progress=False,
        predictor=pred,
    )
    rows = list(csv.DictReader((tmp_path / "a" / "quality.csv").open()))
    assert len(rows) == 8
    assert {"image", "label", "predicted_iou", "kept", *FEATURE_NAMES} <= set(rows[0])
    for r in rows:
        q = float(r["predicted_iou"])
        assert 0 <= q <= 1
        kept = r["kept"] == "True"
        assert kept == (q >= 0.5)
        assert r["label"].startswith("labels/" if kept else "rejected/")
        assert (tmp_path / "a" / r["label"]).is_file()
    n_kept = sum(r["kept"] == "True" for r in rows)
    assert len(list((tmp_path / "a" / "labels").glob("*.png")) if n_kept else []) == n_kept
    assert res.summary["n_kept"] == n_kept and res.summary["n_rejected"] == 8 - n_kept
    assert len(list((tmp_path / "a" / "prob").glob("*.png"))) == 8
    mask = cv2.imread(str(tmp_path / "a" / rows[0]["label"]), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (40, 40) and set(np.unique(mask)) <= {0, 255}
    _no_temp_files(tmp_path / "a")


def test_target_precision_records_threshold(
    run: dict[str, Path], pred: Predictor, tmp_path: Path
) -> None:
    res = annotate_folder(
        run["model"],
        run["data"] / "images",
        tmp_path / "a",
        target_precision=0.5,
        tau=0.3,
        progress=False,
        predictor=pred,
    )
    tp = res.summary["filter"]["target_precision"]
    assert tp["target_precision"] == 0.5 and tp["tau"] == 0.3 and "recall" in tp
    assert res.summary["threshold"] == pytest.approx(tp["threshold"])


def test_annotate_skips_unreadable_and_resumes(
    run: dict[str, Path],
    pred: Predictor,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    src = tmp_path / "imgs"
    src.mkdir()
    for p in sorted((run["data"] / "images").glob("*.png"))[:3]:
        (src / p.name).write_bytes(p.read_bytes())
    (src / "broken.png").write_bytes(b"\x89PNG not really")
    with caplog.at_level("WARNING"):
        res = annotate_folder(run["model"], src, tmp_path / "a", progress=False, predictor=pred)
    assert any(
        "skipping" in r.getMessage() and "broken.png" in r.getMessage() for r in caplog.records
    )
    assert len(res.rows) == 3 and len(res.skipped) == 1
    skipped = list(csv.DictReader((tmp_path / "a" / "skipped.csv").open()))
    assert skipped[0]["image"].endswith("broken.png") and skipped[0]["reason"]
    # resume: the three finished images are not predicted again, one new image is
    (src / "broken.png").unlink()
    extra = sorted((run["data"] / "images").glob("*.png"))[3]
    (src / extra.name).write_bytes(extra.read_bytes())
    seen: list[int] = []
    real = Predictor.predict

    def counting(self: Predictor, images, coarse=None, valid=None):  # type: ignore[no-untyped-def]
        seen.append(len(images))
        return real(self, images, coarse, valid)

    monkeypatch.setattr(Predictor, "predict", counting)
    res2 = annotate_folder(
        run["model"], src, tmp_path / "a", resume=True, progress=False, predictor=pred
    )
    assert seen == [1] and len(res2.rows) == 4
    assert len(list(csv.DictReader((tmp_path / "a" / "quality.csv").open()))) == 4
    assert not (tmp_path / "a" / "skipped.csv").exists()  # nothing skipped: the old list goes
    # the summary says what was reused ('annotated 4 image(s) in 0.3 s' hid that 3 were not redone)
    assert res.summary["n_resumed"] == 0 and res2.summary["n_resumed"] == 3
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["n_resumed"] == 3
    from sam2elnet.cli.job_summary import print_folder

    print_folder(res2, "annotated")
    assert capsys.readouterr().out.startswith(
        "annotated 4 image(s) (3 done by the earlier run, --resume) in "
    )


def test_the_closing_line_says_what_its_time_covers(
    run: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """'annotate: 3/3 img in 4.6 s' then 'annotated 3 image(s) in 11.7 s' read as two
    measurements of one thing: the closing line now says the total is from the start, with the
    model load and the images' time (recorded in summary.json); older summaries keep one time."""
    import re

    from sam2elnet.cli.job_summary import print_folder, took

    src = tmp_path / "imgs"
    src.mkdir()
    for p in sorted((run["data"] / "images").glob("*.png"))[:3]:
        (src / p.name).write_bytes(p.read_bytes())
    res = annotate_folder(run["model"], src, tmp_path / "a", progress=False)  # loads the model
    s = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert s["seconds_model_load"] > 0 and s["seconds_images"] > 0
    assert s["seconds_model_load"] + s["seconds_images"] <= s["seconds"]
    print_folder(res, "annotated")
    m = re.match(
        r"annotated 3 image\(s\) in (\d+\.\d) s in all \(model load (\d+\.\d) s, images "
        r"(\d+\.\d) s\): kept ",
        capsys.readouterr().out,
    )
    assert m, "the closing line does not split its time"
    want = [f"{s[k]:.1f}" for k in ("seconds", "seconds_model_load", "seconds_images")]
    assert list(m.groups()) == want
    assert took({"seconds": 2.04}) == "in 2.0 s"  # a summary.json written before


def test_resume_with_another_threshold_refilters_the_reused_labels(
    run: dict[str, Path], pred: Predictor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--resume --min-quality Q2 after a run at Q1 printed and recorded Q2 but kept the Q1
    split of labels/ and rejected/ (sos-dev: 'threshold 0.800', 'kept 6' of which 3 < 0.8).
    The reused rows are now decided under Q2 and their files moved, without predicting again."""
    images = run["data"] / "images"
    out = tmp_path / "a"
    res = annotate_folder(run["model"], images, out, progress=False, predictor=pred)
    scores = sorted(float(r["predicted_iou"]) for r in res.rows)
    assert scores[0] < scores[1] and scores[3] < scores[4], scores
    q = (scores[3] + scores[4]) / 2  # half of the 8 labels above, half below

    def no_predict(*a, **k):  # type: ignore[no-untyped-def]
        raise AssertionError("resumed images must not be predicted again")

    monkeypatch.setattr(Predictor, "predict", no_predict)
    for threshold, n_kept in ((q, 4), (None, 8), ((scores[0] + scores[1]) / 2, 7)):
        res = annotate_folder(
            run["model"], images, out, resume=True, min_quality=threshold, progress=False,
            predictor=pred,
        )  # fmt: skip
        rows = list(csv.DictReader((out / "quality.csv").open()))
        kept = {Path(r["label"]).name for r in rows if r["kept"] == "True"}
        assert len(kept) == n_kept == res.summary["n_kept"]
        assert {p.name for p in (out / "labels").glob("*.png")} == kept
        rejected = {p.name for p in (out / "rejected").glob("*.png")} if n_kept < 8 else set()
        assert len(rejected) == 8 - n_kept and not kept & rejected
        for r in rows:
            assert (out / r["label"]).is_file()
            assert (r["kept"] == "True") == (
                threshold is None or float(r["predicted_iou"]) >= threshold
            )


def test_enhance_outputs_and_missing_labels(
    run: dict[str, Path], pred: Predictor, tmp_path: Path
) -> None:
    images, masks = run["data"] / "images", run["data"] / "masks"
    coarse = tmp_path / "coarse"
    coarse.mkdir()
    for p in sorted(masks.glob("*.png"))[:-2]:  # the last two images have no label
        m = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(str(coarse / f"{p.stem}_mask.png"), cv2.dilate(m, np.ones((5, 5), np.uint8)))
    with pytest.raises(DataError, match="s07.png"):
        enhance_folder(run["model"], images, coarse, tmp_path / "e", progress=False, predictor=pred)
    res = enhance_folder(
        run["model"],
        images,
        coarse,
        tmp_path / "e",
        skip_missing=True,
        save_prob=True,
        progress=False,
        predictor=pred,
    )
    assert len(res.rows) == 6 and res.summary["n_missing_labels"] == 2
    rows = list(csv.DictReader((tmp_path / "e" / "quality.csv").open()))
    assert {"image", "label", "predicted_iou", "kept", "added_px", "removed_px", "coarse"} <= set(
        rows[0]
    )
    ch = cv2.imread(str(tmp_path / "e" / rows[0]["changes"]), cv2.IMREAD_UNCHANGED)
    assert ch.shape == (40, 40, 3)
    label = cv2.imread(str(tmp_path / "e" / rows[0]["label"]), cv2.IMREAD_GRAYSCALE) > 127
    c = cv2.imread(str(coarse / "s00_mask.png"), cv2.IMREAD_GRAYSCALE) > 127
    assert int(rows[0]["added_px"]) == int(np.count_nonzero(label & ~c))
    _no_temp_files(tmp_path / "e")


def test_geotiff_input_gives_georeferenced_output(
    run: dict[str, Path], pred: Predictor, tmp_path: Path
) -> None:
    import rasterio
    from rasterio.transform import from_origin

    src = cv2.imread(str(run["data"] / "images" / "s00.png"))[:, :, ::-1]
    (tmp_path / "in").mkdir()
    tif = tmp_path / "in" / "scene.tif"
    tr = from_origin(500000, 4000000, 10, 10)
    with rasterio.open(
        tif,
        "w",
        driver="GTiff",
        width=40,
        height=40,
        count=3,
        dtype="uint8",
        crs="EPSG:32633",
        transform=tr,
    ) as dst:
        dst.write(np.moveaxis(src, 2, 0))
    res = annotate_folder(run["model"], tif, tmp_path / "a", progress=False, predictor=pred)
    out = tmp_path / "a" / res.rows[0]["label"]
    assert out.suffix == ".tif"
    with rasterio.open(out) as ds:
        assert ds.crs.to_epsg() == 32633 and ds.transform == tr


def test_bad_model_files(run: dict[str, Path], tmp_path: Path) -> None:
    data = run["model"].read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="trunc.pt"):
        Predictor.from_file(tmp_path / "trunc.pt")
    obj = torch.load(run["model"], weights_only=True)
    obj["format_version"] = 99
    torch.save(obj, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="newer"):
        Predictor.from_file(tmp_path / "future.pt")
    obj["format_version"] = 1
    obj["extra"]["quality"]["version"] = 42
    torch.save(obj, tmp_path / "oldq.pt")
    with pytest.raises(CheckpointError, match="quality evaluator"):
        Predictor.from_file(tmp_path / "oldq.pt")
    with pytest.raises(CheckpointError):
        Predictor.from_file(tmp_path / "missing.pt")


def test_wrong_band_count_and_empty_folder(
    run: dict[str, Path], pred: Predictor, tmp_path: Path
) -> None:
    four = tmp_path / "four"
    four.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(
        str(four / "x.png"), rng.integers(0, 255, (40, 40, 4), dtype=np.uint8)
    )  # RGBA -> 3 bands
    import rasterio

    with rasterio.open(
        four / "y.tif", "w", driver="GTiff", width=40, height=40, count=5, dtype="uint8"
    ) as d:
        d.write(rng.integers(0, 255, (5, 40, 40), dtype=np.uint8))
    (four / "x.png").unlink()
    with pytest.raises(DataError, match="trained for 3"):
        annotate_folder(run["model"], four, tmp_path / "o", progress=False, predictor=pred)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images"):
        annotate_folder(
            run["model"], tmp_path / "empty", tmp_path / "o2", progress=False, predictor=pred
        )


def test_unfitted_evaluator_refuses_target_precision(run: dict[str, Path], tmp_path: Path) -> None:
    obj = torch.load(run["model"], weights_only=True)
    obj["extra"]["quality"] = {}
    torch.save(obj, tmp_path / "nq.pt")
    p = Predictor.from_file(tmp_path / "nq.pt")
    with pytest.raises(UserError, match="not fitted"):
        p.choose_threshold(target_precision=0.9)
    assert p.choose_threshold(min_quality=0.3)[0] == 0.3


def test_target_precision_on_few_labels_warns(
    run: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    p = Predictor.from_file(run["model"])
    ev = p.evaluator
    ev.fitted, ev.tau = True, 0.7
    ev.heldout_scores = [0.2, 0.4, 0.6, 0.8, 0.9]
    ev.heldout_iou = [0.1, 0.3, 0.8, 0.9, 0.95]
    ev.metrics = {**ev.metrics, "threshold_on_in_sample": 0.0}  # these 5 are held out
    with logs_warning(caplog, "rests on 3 held-out labels above it; about 100 are needed"):
        thr, info = p.choose_threshold(target_precision=0.9)
    assert thr == pytest.approx(0.6) and info["target_precision"]["reliable"] is False
    # held-out labels above the threshold, not named like the summary's top-level n_kept (images)
    assert info["target_precision"]["n_held_out_above"] == 3
    assert "n_kept" not in info["target_precision"]


def test_unreachable_target_precision_says_what_is_kept(
    run: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """No threshold reaches the target: the threshold sits just above every held-out score, so new
    labels scoring higher are still kept; the warning says so (it said every label is rejected)."""
    p = Predictor.from_file(run["model"])
    ev = p.evaluator
    ev.fitted, ev.tau = True, 0.7
    ev.heldout_scores = [0.2, 0.4, 0.6, 0.8, 0.9]
    ev.heldout_iou = [0.1, 0.9, 0.2, 0.9, 0.3]  # the best-scored label is bad: never 0.99
    ev.metrics = {**ev.metrics, "threshold_on_in_sample": 0.0}
    with logs_warning(
        caplog,
        r"only labels scoring above every held-out label "
        r"\(quality >= 0\.900\) will be kept, with no promised precision",
    ):
        thr, info = p.choose_threshold(target_precision=0.99)
    assert thr == pytest.approx(0.900001) and info["target_precision"]["achievable"] is False


def test_fit_quality_is_rerunnable(
    run: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from sam2elnet.engine.quality_fit import fit_quality
    from sam2elnet.model import load_model

    copy = tmp_path / "run"
    copy.mkdir()
    for name in ("model.pt", "splits.json"):
        (copy / name).write_bytes((run["run"] / name).read_bytes())
    summary = fit_quality(copy / "model.pt", run["data"])
    # 4 validation + 4 training images (splits.json), both modes
    assert (summary["n"], summary["n_heldout"], summary["n_in_sample"]) == (16, 8, 8)
    assert summary["fitted"]
    _, extra = load_model(copy / "model.pt")
    assert extra["quality_summary"]["n"] == 16 and extra["quality"]["fitted"]
    # validation images only: 8 samples are too few -> not fitted, said so in the file
    from sam2elnet.config import QualityConfig

    with logs_warning(caplog, "only 8 labelled samples"):
        summary = fit_quality(copy / "model.pt", run["data"], qcfg=QualityConfig(train_samples=0))
    assert not summary["fitted"] and summary["status"] == "too_few_samples"
    _, extra = load_model(copy / "model.pt")
    assert extra["quality"]["status"] == "too_few_samples" and extra["quality"]["warning"]


def test_report_is_written(run: dict[str, Path], pred: Predictor, tmp_path: Path) -> None:
    from sam2elnet.pipeline.jobs import annotate_folder

    res = annotate_folder(
        run["model"],
        run["data"] / "images",
        tmp_path / "a",
        report=True,
        progress=False,
        predictor=pred,
    )
    html = (tmp_path / "a" / "report.html").read_text()
    assert res.summary["report"].endswith("report.html") and "s03.png" in html


def _write_scene(path: Path, run: dict[str, Path], size: int = 96) -> None:
    """A small georeferenced GeoTIFF tiled from a training image (3 bands, uint8)."""
    import rasterio
    from rasterio.transform import from_origin

    src = cv2.imread(str(run["data"] / "images" / "s00.png"))[:, :, ::-1]
    tiled = np.tile(np.moveaxis(src, 2, 0), (1, 3, 3))[:, :size, :size]
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=size,
        height=size,
        count=3,
        dtype="uint8",
        crs="EPSG:32633",
        transform=from_origin(500000, 4000000, 10, 10),
    ) as dst:
        dst.write(np.ascontiguousarray(tiled))


def test_large_scenes_are_routed_to_the_streaming_scene_path(
    run: dict[str, Path], pred: Predictor, tmp_path: Path
) -> None:
    """GeoTIFFs above the memory budget go through sliding windows, with per-tile quality layers;
    the scene label keeps the georeference and agrees with the whole-image path."""
    import rasterio

    from sam2elnet.engine import memory

    scene = tmp_path / "in" / "scene.tif"
    scene.parent.mkdir()
    _write_scene(scene, run)
    whole = annotate_folder(run["model"], scene, tmp_path / "whole", progress=False, predictor=pred)
    budget = pred.whole_bytes(64 * 64)  # 96 x 96 px no longer fits
    res = annotate_folder(
        run["model"],
        scene,
        tmp_path / "tiled",
        progress=False,
        predictor=pred,
        tile=64,
        overlap=16,
        max_memory=budget,
    )
    pred.max_memory = memory.DEFAULT_MAX_MEMORY
    row = res.rows[0]
    label = tmp_path / "tiled" / row["label"]
    assert (tmp_path / "tiled" / "tiles" / "scene.gpkg").is_file()
    with rasterio.open(label) as ds:
        assert ds.crs.to_epsg() == 32633 and ds.width == 96
        tiled = ds.read(1) == 255
    with rasterio.open(tmp_path / "whole" / whole.rows[0]["label"]) as ds:
        ref = ds.read(1) > 127
    # Windows see less context than the whole image; the bulk of pixels must still agree.
    assert np.mean(tiled == ref) > 0.9
    assert (tmp_path / "tiled" / "quality.csv").read_text().count("\n") == 2
    _no_temp_files(tmp_path / "tiled")


def test_enhance_accepts_vector_coarse_labels(
    run: dict[str, Path], pred: Predictor, tmp_path: Path
) -> None:
    """One GeoJSON of polygons is rasterised onto each image's grid before enhancement."""
    import geopandas as gpd
    from shapely.geometry import box

    scene = tmp_path / "in" / "scene.tif"
    scene.parent.mkdir()
    _write_scene(scene, run)
    # A 20x20-pixel square in map coordinates (10 m pixels from x=500000, y=4000000 downwards).
    poly = box(500000 + 200, 4000000 - 400, 500000 + 400, 4000000 - 200)
    labels = tmp_path / "coarse.geojson"
    gpd.GeoDataFrame({"id": [1]}, geometry=[poly], crs="EPSG:32633").to_file(labels)
    res = enhance_folder(
        run["model"], scene, labels, tmp_path / "e", progress=False, predictor=pred
    )
    row = res.rows[0]
    assert row["coarse"].endswith("coarse.geojson")
    # In the change map, coarse pixels are white (kept) or red (removed): together they must be
    # exactly the rasterised square (rows/cols 20..39), whatever the model predicted.
    rgb = cv2.imread(str(tmp_path / "e" / row["changes"]))[:, :, ::-1]
    coarse = rgb[:, :, 0] > 0
    expected = np.zeros((96, 96), bool)
    expected[20:40, 20:40] = True
    assert np.array_equal(coarse, expected)
    assert int(row["removed_px"]) == int(np.count_nonzero(coarse & (rgb[:, :, 1] == 0)))


def test_enhance_buffers_road_lines_in_pixels_or_map_units(
    run: dict[str, Path], pred: Predictor, tmp_path: Path
) -> None:
    """A road drawn as a centre line is buffered to --line-width, in map units of the image CRS
    (10 m pixels here) or with --line-width-px in pixels, on the whole-image and the window path
    (enhance had no pixel unit: 4 meant 4 m = 0.4 px on this image and burnt nothing)."""
    import geopandas as gpd
    from shapely.geometry import LineString

    from sam2elnet.engine import memory

    scene = tmp_path / "in" / "scene.tif"
    scene.parent.mkdir()
    _write_scene(scene, run)
    # along the edge between rows 29 and 30, from column 10 to column 90
    road = LineString([(500000 + 100, 4000000 - 300), (500000 + 900, 4000000 - 300)])
    labels = tmp_path / "roads.gpkg"
    gpd.GeoDataFrame({"id": [1]}, geometry=[road], crs="EPSG:32633").to_file(labels)

    def coarse_rows(name: str, **kw: object) -> list[int]:
        res = enhance_folder(
            run["model"], scene, labels, tmp_path / name, progress=False, predictor=pred, **kw
        )
        rgb = cv2.imread(str(tmp_path / name / res.rows[0]["changes"]))[:, :, ::-1]
        coarse = rgb[:, :, 0] > 0  # kept (white) or removed (red): the coarse label
        rows = np.flatnonzero(coarse.any(axis=1))
        assert coarse[rows, 12:88].all()  # along the whole road
        return [int(r) for r in rows]

    assert coarse_rows("px", line_width=4, line_width_unit="px") == [28, 29, 30, 31]
    assert coarse_rows("map", line_width=40) == [28, 29, 30, 31]
    assert coarse_rows("metres", line_width=4) == []  # 0.4 px wide: no pixel centre inside
    budget = pred.whole_bytes(64 * 64)  # the window path (scene_changes' coarse source)
    rows = coarse_rows(
        "tiled", line_width=4, line_width_unit="px", tile=64, overlap=16, max_memory=budget
    )
    pred.max_memory = memory.DEFAULT_MAX_MEMORY
    assert rows == [28, 29, 30, 31]
    with pytest.raises(UserError, match="line-width-unit"):
        enhance_folder(run["model"], scene, labels, tmp_path / "bad", line_width_unit="feet")


def test_enhance_matches_vector_files_in_a_label_folder_by_name(
    run: dict[str, Path], pred: Predictor, tmp_path: Path
) -> None:
    """--labels FOLDER of vector files (help: 'masks or vector files', matched by name): the key
    kept the .gpkg / .geojson suffix, so no image found its label ('have no label in ...')."""
    import geopandas as gpd
    from shapely.geometry import box

    from sam2elnet.engine.folder_inputs import label_index

    scene = tmp_path / "in" / "scene.tif"
    scene.parent.mkdir()
    _write_scene(scene, run)
    poly = box(500000 + 200, 4000000 - 400, 500000 + 400, 4000000 - 200)
    folder = tmp_path / "coarse"
    folder.mkdir()
    gdf = gpd.GeoDataFrame({"id": [1]}, geometry=[poly], crs="EPSG:32633")
    gdf.to_file(folder / "scene_mask.gpkg")
    gdf.to_file(folder / "other.geojson")
    idx = label_index(folder)
    assert dict(idx) == {"scene": folder / "scene_mask.gpkg", "other": folder / "other.geojson"}
    res = enhance_folder(
        run["model"], scene, folder, tmp_path / "e", progress=False, predictor=pred
    )
    row = res.rows[0]
    assert row["coarse"].endswith("scene_mask.gpkg")
    rgb = cv2.imread(str(tmp_path / "e" / row["changes"]))[:, :, ::-1]
    assert int(np.count_nonzero(rgb[:, :, 0] > 0)) == 400  # the rasterised 20 x 20 square


def test_enhance_reads_one_vector_file_for_many_images_once(
    run: dict[str, Path], pred: Predictor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--labels square.gpkg, one vector file for 3 georeferenced images (two predicted whole,
    one window by window): the file was read and parsed once per image, twice for the windowed
    one (its prediction and its change map), 4 reads; now once for the run. Labels, change maps
    and quality.csv rows are those of a label folder with one copy of the file per image."""
    import shutil

    import geopandas as gpd
    import rasterio
    from shapely.geometry import box

    from sam2elnet.engine import memory

    images = tmp_path / "in"
    images.mkdir()
    for k, size in enumerate((64, 96, 64)):  # 96 x 96 px is over the budget: windows
        _write_scene(images / f"s{k}.tif", run, size=size)
    # a 20 x 20 px square (rows / cols 20..39) on every image (10 m pixels, same origin)
    poly = box(500000 + 200, 4000000 - 400, 500000 + 400, 4000000 - 200)
    shared = tmp_path / "square.gpkg"
    gpd.GeoDataFrame({"id": [1]}, geometry=[poly], crs="EPSG:32633").to_file(shared)
    folder = tmp_path / "per_image"
    folder.mkdir()
    for k in range(3):
        shutil.copy(shared, folder / f"s{k}.gpkg")
    opts = dict(progress=False, predictor=pred, tile=64, overlap=16)
    opts["max_memory"] = pred.whole_bytes(64 * 64, coarse=True)
    try:
        with monkeypatch.context() as m:
            opened = count_vector_reads(m)
            one = enhance_folder(run["model"], images, shared, tmp_path / "one", **opts)
        each = enhance_folder(run["model"], images, folder, tmp_path / "each", **opts)
    finally:
        pred.max_memory = memory.DEFAULT_MAX_MEMORY
    assert opened == ["square.gpkg"]
    tiles = sorted(p.name for p in (tmp_path / "one" / "tiles").iterdir())
    assert tiles == ["s1.gpkg"]  # s1 took the window path, s0 and s2 the whole-image path
    assert [r["coarse"] for r in one.rows] == [str(shared)] * 3
    for a, b in zip(one.rows, each.rows, strict=True):
        same = [json.dumps({**r, "coarse": ""}, sort_keys=True, default=str) for r in (a, b)]
        assert same[0] == same[1]  # (as text: NaN features compare equal)
        for key in ("label", "changes"):
            with (
                rasterio.open(tmp_path / "one" / a[key]) as x,
                rasterio.open(tmp_path / "each" / b[key]) as y,
            ):
                assert np.array_equal(x.read(), y.read()), (a["image"], key)
        rgb = cv2.imread(str(tmp_path / "one" / a["changes"]))[:, :, ::-1]
        expected = np.zeros(rgb.shape[:2], bool)
        expected[20:40, 20:40] = True
        assert np.array_equal(rgb[:, :, 0] > 0, expected)  # kept or removed: the square


def test_annotate_and_enhance_summaries_keep_the_entries_they_share(
    run: dict[str, Path], pred: Predictor, tmp_path: Path
) -> None:
    """summary.json's entries of the job's model and options, shared by annotate and enhance and
    written in one place for both: their values, and their order (the shared ones, the task's
    own, then ``warp``) as each task wrote them itself."""
    import geopandas as gpd
    from shapely.geometry import box

    from sam2elnet.engine.coarse_rule import CoarseRule

    scene = tmp_path / "in" / "scene.tif"
    scene.parent.mkdir()
    _write_scene(scene, run, size=64)
    labels = tmp_path / "coarse.geojson"
    poly = box(500000 + 200, 4000000 - 400, 500000 + 400, 4000000 - 200)
    gpd.GeoDataFrame({"id": [1]}, geometry=[poly], crs="EPSG:32633").to_file(labels)
    a = annotate_folder(run["model"], scene, tmp_path / "a", progress=False, predictor=pred)
    e = enhance_folder(
        run["model"], scene, labels, tmp_path / "e", progress=False, predictor=pred,
        new_objects="keep", max_growth=3,
    )  # fmt: skip
    shared = ["task", "model", "model_version", "domain", "filter"]
    shared += ["precision_option", "precision_resolved"]
    own = ["coarse_rule", "n_missing_labels", "missing_labels"]
    for res, task, entries in ((a, "annotate", shared), (e, "enhance", shared + own)):
        keys = list(res.summary)
        start = keys.index("task")
        assert keys[start : start + len(entries) + 1] == [*entries, "warp"], task
        on_disk = json.loads((res.out_dir / "summary.json").read_text())
        assert list(on_disk) == keys and on_disk["task"] == task
        assert res.summary["model"] == a.summary["model"]
        assert res.summary["model_version"].startswith(f"{Path(run['model']).name}@")
        assert res.summary["precision_option"] == res.summary["precision_resolved"] == "32"
        assert res.summary["warp"] is None and res.summary["threshold"] is None
    assert e.summary["model_version"] == a.summary["model_version"]
    assert e.summary["coarse_rule"] == CoarseRule("keep", 3).as_dict()
    assert e.summary["n_missing_labels"] == 0 and e.summary["missing_labels"] == []


def test_enhance_one_image_with_one_mask_file_of_another_name(
    run: dict[str, Path], pred: Predictor, tmp_path: Path
) -> None:
    """--images scene.tif --labels truth.tif (names that do not pair): one mask file serves the
    one image (it was refused: 'label path does not exist or is neither a folder nor a vector
    file'); with several images it is one clear UserError saying to give a folder."""
    scene = tmp_path / "in" / "scene.tif"
    scene.parent.mkdir()
    _write_scene(scene, run)
    coarse = np.zeros((96, 96), np.uint8)
    coarse[20:40, 20:40] = 255
    label = tmp_path / "rough.png"
    cv2.imwrite(str(label), coarse)
    res = enhance_folder(run["model"], scene, label, tmp_path / "e", progress=False, predictor=pred)
    row = res.rows[0]
    assert row["coarse"].endswith("rough.png")
    rgb = cv2.imread(str(tmp_path / "e" / row["changes"]))[:, :, ::-1]
    assert np.array_equal(rgb[:, :, 0] > 0, coarse > 0)  # kept or removed: the coarse label
    with pytest.raises(UserError, match="one label file serves one image, but --images holds 8"):
        enhance_folder(run["model"], run["data"] / "images", label, tmp_path / "e2")
    assert not (tmp_path / "e2").exists()


def test_coarse_rule_restricts_probabilities_and_features(pred: Predictor) -> None:
    """predict(rule=...) = the unrestricted map times the rule's support found on it; the
    evaluator's features see the restricted map (an empty coarse label: no foreground)."""
    from sam2elnet.engine.coarse_rule import CoarseRule

    rng = np.random.default_rng(3)
    img = rng.random((3, 40, 40), dtype=np.float32)
    corner = np.zeros((40, 40), np.float32)
    corner[:6, :6] = 1
    empty = np.zeros((40, 40), np.float32)
    free, _ = pred.predict([img, img], coarse=[corner, empty])
    for rule in (CoarseRule("drop"), CoarseRule("keep", max_growth_px=3)):
        got, q = pred.predict([img, img], coarse=[corner, empty], rule=rule)
        for p, f, c in zip(got, free, (corner, empty), strict=True):
            np.testing.assert_allclose(p, f * rule.support(f, c), atol=1e-5)
        assert not (got[1] > 0.5).any()  # an empty coarse label stays empty
        assert q.features[1, FEATURE_NAMES.index("fg_frac")] == 0
    same, _ = pred.predict([img], coarse=[corner], rule=CoarseRule("keep"))
    np.testing.assert_allclose(same[0], free[0], atol=1e-5)


def test_enhance_keeps_an_empty_coarse_label_empty(
    run: dict[str, Path], pred: Predictor, tmp_path: Path
) -> None:
    images = tmp_path / "images"
    images.mkdir()
    coarse = tmp_path / "coarse"
    coarse.mkdir()
    src = sorted((run["data"] / "images").glob("*.png"))[:2]
    for p in src:
        (images / p.name).write_bytes(p.read_bytes())
        cv2.imwrite(str(coarse / p.name), np.zeros((40, 40), np.uint8))
    res = enhance_folder(
        run["model"], images, coarse, tmp_path / "e", progress=False, predictor=pred
    )
    assert res.summary["coarse_rule"]["new_objects"] == "drop"
    for r in res.rows:
        label = cv2.imread(str(tmp_path / "e" / r["label"]), cv2.IMREAD_GRAYSCALE)
        assert label is not None and not label.any() and r["added_px"] == 0
    with pytest.raises(UserError, match="--new-objects"):
        enhance_folder(
            run["model"], images, coarse, tmp_path / "x", progress=False, predictor=pred,
            new_objects="maybe",
        )  # fmt: skip


def test_image_folder_with_only_sub_folders_says_so(tmp_path: Path) -> None:
    """`annotate --images SOS_ROOT` (or its train/) said only 'no images in the folder; check the
    path'; it now names the sub-folders and the two ways on."""
    from sam2elnet.data.naming import list_images

    (tmp_path / "sos" / "train" / "palsar").mkdir(parents=True)
    (tmp_path / "sos" / "test").mkdir()
    with pytest.raises(UserError) as err:
        list_images(tmp_path / "sos")
    assert str(err.value).endswith(
        "no images (.png/.jpg/.tif) in the folder, only sub-folders (test, train); pass the "
        "folder that holds the images (annotate / enhance: or a dataset root with --split, e.g. "
        "--split test)"
    )
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"in the folder; check the path"):
        list_images(tmp_path / "empty")
    # a flat images/ + masks/ dataset (roads-dev) has no split folders: name its images/
    (tmp_path / "flat" / "images").mkdir(parents=True)
    (tmp_path / "flat" / "masks").mkdir()
    with pytest.raises(UserError) as err:
        list_images(tmp_path / "flat")
    assert str(err.value).endswith(
        "only sub-folders (images, masks); pass the folder that holds the images, e.g. "
        f"{tmp_path / 'flat' / 'images'}"
    )
    assert "--split" not in str(err.value)


def test_one_vector_file_for_a_folder_gives_untouched_images_an_empty_coarse_label(
    run: dict[str, Path], pred: Predictor, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """--labels slicks.gpkg, one file (drawn in QGIS, EPSG:4326) for a folder of two UTM scenes,
    with a slick on one: the other scene was skipped with 'none of the 1 label features overlaps
    the image ... check the label CRS'. Now it is enhanced from an empty coarse label (its whole
    image label stays empty) with one warning, on the whole-image and the window path, and in an
    elnet scene folder batch; one image and a file that misses it is still an error."""
    import geopandas as gpd
    import rasterio
    from rasterio.transform import from_origin
    from shapely.geometry import box

    from sam2elnet.cli import main
    from sam2elnet.engine import memory

    folder = tmp_path / "in"
    folder.mkdir()
    _write_scene(folder / "a.tif", run)
    _write_scene(folder / "b.tif", run)
    with rasterio.open(folder / "b.tif", "r+") as ds:  # 10 km east of a.tif
        ds.transform = from_origin(510000, 4000000, 10, 10)
    slick = box(500000 + 200, 4000000 - 400, 500000 + 400, 4000000 - 200)
    labels = tmp_path / "slicks.gpkg"
    gpd.GeoDataFrame({"id": [1]}, geometry=[slick], crs="EPSG:32633").to_crs(4326).to_file(labels)

    with logs_warning(caplog, r"b\.tif: no feature of .*slicks\.gpkg .*empty coarse label"):
        res = enhance_folder(
            run["model"], folder, labels, tmp_path / "e", progress=False, predictor=pred
        )
    assert res.skipped == [] and sorted(Path(r["image"]).name for r in res.rows) == [
        "a.tif",
        "b.tif",
    ]
    with rasterio.open(tmp_path / "e" / "labels" / "b.tif") as ds:
        assert not (ds.read(1) == 255).any()
    row_a = next(r for r in res.rows if r["image"].endswith("a.tif"))
    assert int(row_a["removed_px"]) + int(np.count_nonzero(
        rasterio.open(tmp_path / "e" / "labels" / "a.tif").read(1) == 255
    )) - int(row_a["added_px"]) == 400  # the 20 x 20 px coarse slick reached a.tif  # fmt: skip
    pred.max_memory = pred.whole_bytes(64 * 64)  # the window path (scene_changes too)
    try:
        res = enhance_folder(run["model"], folder, labels, tmp_path / "t", progress=False,
                             predictor=pred, tile=64, overlap=16)  # fmt: skip
    finally:
        pred.max_memory = memory.DEFAULT_MAX_MEMORY
    assert res.skipped == [] and len(res.rows) == 2
    assert main(["scene", "--model", "builtin:smoothing", "--image", str(folder), "--labels",
                 str(labels), "--out", str(tmp_path / "s"), "--tile", "64", "--overlap", "16",
                 "--no-progress"]) == 0  # fmt: skip
    assert (tmp_path / "s" / "a.tif").exists() and (tmp_path / "s" / "b.tif").exists()
    with pytest.raises(DataError, match="none of the 1 label features overlaps"):
        enhance_folder(run["model"], folder / "b.tif", labels, tmp_path / "one", progress=False,
                       predictor=pred)  # fmt: skip


def test_folder_jobs_take_their_defaults_from_the_cli_options() -> None:
    """``annotate_folder`` / ``enhance_folder`` default every option they share with ``elnet
    annotate`` / ``enhance`` to FolderJobOptions' value (one declaration: the API and the CLI
    cannot drift apart). None in the API means "the option's default" (``max_memory``)."""
    import inspect

    from sam2elnet.options import FolderJobOptions

    for job in (annotate_folder, enhance_folder):
        shared = {
            name: p.default
            for name, p in inspect.signature(job).parameters.items()
            if name in FolderJobOptions.model_fields and p.default is not None
        }
        assert {"batch_size", "device", "precision", "tile", "overlap"} <= set(shared)
        declared = {name: FolderJobOptions.model_fields[name].default for name in shared}
        assert shared == declared, job.__name__
