"""Windowed reads of large GeoTIFFs in training: same crops as whole reads, bounded memory."""

from __future__ import annotations

import os

os.environ.setdefault("SAM2ELNET_THREADS", "1")

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from helpers_data import write_png, write_tif

from sam2elnet.data import windowed, windowed_image, windowed_mask
from sam2elnet.data.datasets import Sample, SegmentationDataset
from sam2elnet.data.norm_fit import read_image_or_sample
from sam2elnet.data.normalize import NormalizationConfig, image_percentiles
from sam2elnet.data.raster import read_image, read_mask_valid
from sam2elnet.errors import DataError

H, W = 200, 300
KEYS = ("image", "mask", "valid", "coarse")


def _blobs(seed: int) -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    rng = np.random.default_rng(seed)
    m = np.zeros((H, W), bool)
    for _ in range(4):
        cy, cx, r = rng.integers(20, H - 20), rng.integers(20, W - 20), rng.integers(10, 30)
        m |= (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
    return m


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("win")
    rng = np.random.default_rng(0)
    m = _blobs(1)
    img = (rng.integers(100, 3000, (3, H, W)) + m * 2000).astype(np.uint16)
    img[:, :25, :40] = 0  # nodata corner
    lab = np.where(m, 1, 0).astype(np.uint8)
    lab[60:70, :] = 255  # 0/1 + 255 "void": ignored
    sar = (10 ** ((rng.normal(-18, 3, (1, H, W)) + m * 8) / 10)).astype(np.float32)
    sar[0, 150:, 250:] = np.nan
    out = {
        "img": write_tif(d / "img.tif", img, nodata=0),
        "mask": write_tif(d / "mask.tif", lab[None]),
        "mask_png": write_png(d / "mask.png", (m * 255).astype(np.uint8)),
        "coarse": write_tif(d / "coarse.tif", (_blobs(2) * 255).astype(np.uint8)[None]),
        "sar": write_tif(d / "sar.tif", sar),
        "sar_mask": write_tif(d / "sar_mask.tif", (m * 255).astype(np.uint8)[None]),
    }
    rgba = np.concatenate([np.repeat(img[:1] // 16, 3, 0), np.full((1, H, W), 255)]).astype(
        np.uint8
    )
    rgba[3, 180:, :] = 0  # transparent rows
    import rasterio
    from rasterio.enums import ColorInterp

    out["rgba"] = write_tif(d / "rgba.tif", rgba)
    with rasterio.open(out["rgba"], "r+") as ds:
        ds.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    return out


def _pair(sample: Sample, norm: NormalizationConfig, train: bool, **kw: object) -> tuple:
    whole = SegmentationDataset([sample], norm, size=64, train=train, seed=5, **kw)
    win = SegmentationDataset([sample], norm, size=64, train=train, seed=5, window_bytes=0, **kw)
    assert whole.windowed(0) is None and win.windowed(0) is not None
    return whole, win


@pytest.mark.parametrize(
    ("image", "mask", "coarse", "norm"),
    [
        ("img", "mask", "coarse", NormalizationConfig(method="percentile")),
        ("img", "mask_png", None, NormalizationConfig(method="percentile", p_low=2, p_high=98)),
        (
            "sar",
            "sar_mask",
            None,
            NormalizationConfig(method="stats", sar=True, to_db=True, low=[-25.0], high=[-5.0]),
        ),
        ("rgba", "mask", None, NormalizationConfig.for_modality("sar")),
    ],
)
def test_seeded_training_crops_equal_whole_reads(
    files: dict[str, Path], image: str, mask: str, coarse: str | None, norm: NormalizationConfig
) -> None:
    """Same seed and epoch: the windowed item equals the whole-read item value for value
    (image, label, nodata/ignore-aware valid mask, coarse label), over several crops."""
    s = Sample("a", files[image], files[mask], files[coarse] if coarse else None)
    whole, win = _pair(s, norm, True, coarse_prob=0.5)
    for epoch in range(4):
        whole.set_epoch(epoch)
        win.set_epoch(epoch)
        a, b = whole[0], win[0]
        for k in KEYS:
            assert a[k].shape == b[k].shape, k
            assert float((a[k] - b[k]).abs().max()) == 0.0, (k, epoch)
    assert float(a["valid"].min()) in (0.0, 1.0)


def test_plans_decide_like_the_whole_reader(files: dict[str, Path]) -> None:
    rgba = windowed_image.scan_image(files["rgba"], sar=True)
    whole = read_image(files["rgba"], sar=True)
    assert rgba.alpha and rgba.keep == (0,) and whole.bands == 1  # alpha dropped, grey collapsed
    assert windowed_image.sample_image(rgba).bands == 1
    plan = windowed_mask.scan_mask(files["mask"])
    assert plan.encodings[0].rule.startswith("0/1 + 255")
    m, v = read_mask_valid(files["mask"])
    assert (plan.object_px, plan.background_px) == (int(m.sum()), int((~m & v).sum()))


def test_statistics_identical_when_the_sample_is_every_pixel(files: dict[str, Path]) -> None:
    """Up to STATS_SAMPLE px the sample is the whole image: percentiles equal whole-image ones."""
    cfg = NormalizationConfig(method="percentile")
    plan = windowed_image.scan_image(files["img"])
    assert plan.sample_step == 1
    assert image_percentiles(windowed_image.sample_image(plan), cfg) == image_percentiles(
        read_image(files["img"]), cfg
    )


def test_sampled_statistics_within_the_stated_rank_tolerance(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 1-in-12 stride sample (5,000 of 60,000 px): the sampled 1st / 99th percentiles leave
    1 % +- 0.25 percentage points of all valid pixels below / above them (module docstring)."""
    monkeypatch.setattr(windowed_image, "STATS_SAMPLE", 5000)
    plan = windowed_image.scan_image(files["img"])
    assert plan.sample_step == 12
    low, high = image_percentiles(windowed_image.sample_image(plan), NormalizationConfig())
    img = read_image(files["img"])
    for b in range(3):
        vals = img.data[b][img.valid].astype(np.float64)
        assert abs(np.mean(vals < low[b]) - 0.01) <= 0.0025
        assert abs(np.mean(vals > high[b]) - 0.01) <= 0.0025


def test_routing_by_decoded_size(files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    # 300 x 200 px x 3 uint16 bands: 60,000 px x (3 x (2 + 8) + 3) B = 1.98 MB
    assert windowed.whole_read_bytes(H, W, 3, 2) == 60_000 * 33
    assert not windowed.use_windows(files["img"])  # far below the 64 MB default
    assert windowed.use_windows(files["img"], max_bytes=1_900_000)
    assert not windowed.use_windows(files["img"], max_bytes=2_000_000)
    assert not windowed.use_windows(files["img"], max_bytes=0, min_side=W)  # one crop holds it
    assert not windowed.use_windows(files["mask_png"], max_bytes=0)  # PNG: no windowed reads
    # statistics readers take the sample instead of the whole file above the threshold
    monkeypatch.setattr(windowed, "WINDOW_MIN_BYTES", 1_000_000)
    img = read_image_or_sample(files["img"])
    assert img.shape == (1, H * W) and img.bands == 3


def test_windowed_item_allocates_a_fraction_of_the_whole_read(files: dict[str, Path]) -> None:
    s = Sample("a", files["img"], files["mask"])
    norm = NormalizationConfig(method="percentile")
    peaks = []
    for ds in _pair(s, norm, True, coarse_prob=0.0):
        ds[0]  # plans, routing and statistics outside the measurement
        tracemalloc.start()
        ds[0]
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    whole, win = peaks
    assert whole > 60_000 * 3 * (2 + 4)  # at least raw + float32 of the whole image
    assert win < whole / 4


def test_evaluation_items_of_large_files_are_decimated_and_close(files: dict[str, Path]) -> None:
    s = Sample("a", files["img"], files["mask"])
    norm = NormalizationConfig(method="percentile")
    whole = SegmentationDataset([s], norm, size=16, train=False, coarse_prob=0.0)
    win = SegmentationDataset([s], norm, size=16, train=False, coarse_prob=0.0, window_bytes=0)
    a, b = whole[0], win[0]  # decimation step 200 // 64 = 3
    assert a["image"].shape == b["image"].shape == (3, 16, 16)
    assert float((a["image"] - b["image"]).abs().mean()) < 0.05
    assert float((a["mask"] != b["mask"]).float().mean()) < 0.1


def test_damaged_or_class_index_files_fail_like_whole_reads(
    files: dict[str, Path], tmp_path: Path
) -> None:
    bad = tmp_path / "cut.tif"
    data = files["img"].read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as err:
        windowed_image.scan_image(bad)
    assert str(bad) in str(err.value)
    classes = write_tif(tmp_path / "cls.tif", np.arange(3, dtype=np.uint8).repeat(100)[None, None])
    with pytest.raises(DataError, match="positive-values"):
        windowed_mask.scan_mask(classes)
    assert windowed_mask.scan_mask(classes, positive_values=(2.0,)).encodings[0].positive == (2.0,)
    with pytest.raises(DataError, match="mask size"):
        windowed_mask.mask_plan(files["mask"], shape=(10, 10), image_path=files["img"])
    # a folder or a missing path: the whole readers' words (was "does not exist" for a folder)
    for scan, read, what in (
        (windowed_image.scan_image, read_image, "image"),
        (windowed_mask.scan_mask, read_mask_valid, "mask"),
    ):
        for path, words in ((tmp_path, "found a folder"), (tmp_path / "no.tif", "does not exist")):
            with pytest.raises(DataError, match=words) as streamed:
                scan(path)
            with pytest.raises(DataError) as whole:
                read(path)
            assert str(streamed.value) == str(whole.value)
            assert what in str(whole.value)


def test_training_reads_large_geotiffs_by_windows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A whole training run (check, statistics, crops, validation, quality fit) with every
    GeoTIFF over the (lowered) threshold: routed to windowed reads, and it trains."""
    from helpers_data import small_cfg

    from sam2elnet.engine.train import train

    monkeypatch.setattr(windowed, "WINDOW_MIN_BYTES", 0)
    rng = np.random.default_rng(3)
    for i in range(4):
        m = np.zeros((96, 96), np.uint8)
        m[20 + 5 * i : 60, 30:70] = 255
        img = (rng.normal(90, 20, (1, 96, 96)) + (m > 0) * 90).clip(1, 255).astype(np.uint8)
        write_tif(tmp_path / "data" / "images" / f"s{i}.tif", img)
        write_tif(tmp_path / "data" / "masks" / f"s{i}.tif", m[None])
    said: list[str] = []
    res = train(small_cfg(tmp_path / "data", tmp_path / "run"), echo=said.append)
    assert res.best_path.is_file()
    assert any("2 large training images are read by windows" in s for s in said), said


def test_evaluation_of_large_labels_is_streamed_with_identical_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """evaluate: a large label GeoTIFF is counted in row strips (here 23 rows: 7,000 px per
    strip) and gives the confusion, boundary F-score and road counts of whole reads, with the
    truth's ignore value, a PNG prediction and a valid-pixel mask in the mix."""
    from sam2elnet.engine import eval_stream as es
    from sam2elnet.engine import evaluate as ev

    truth = _blobs(1).astype(np.uint8)
    truth[100:110, :] = 255  # 0/1 + 255: ignored
    pred = _blobs(2) | _blobs(1)
    valid = np.ones((H, W), np.uint8) * 255
    valid[:, :20] = 0
    for kind in ("tif", "png"):
        d = tmp_path / kind
        write_tif(d / "truth" / "a.tif", truth[None])
        write_tif(d / "truth" / "b.tif", (truth[::-1] == 1).astype(np.uint8)[None] * 255)
        for k, m in (("a", pred), ("b", pred[::-1])):
            if kind == "tif":
                write_tif(d / "pred" / f"{k}.tif", (m * 255).astype(np.uint8)[None])
            else:
                write_png(d / "pred" / f"{k}.png", (m * 255).astype(np.uint8))
            write_png(d / "valid" / f"{k}.png", valid)
        kw = {"valid_dir": d / "valid", "progress": False, "boundary": True, "roads": True}
        whole = ev.evaluate_folders(d / "pred", d / "truth", **kw)
        called: list[Path] = []

        def spy(p: Path, *a: object, _fn=es.streamed_counts, _seen=called, **k: object):
            _seen.append(p)
            return _fn(p, *a, **k)

        monkeypatch.setattr(windowed, "WINDOW_MIN_BYTES", 0)
        monkeypatch.setattr(windowed, "STRIP_PIXELS", 7000)
        monkeypatch.setattr(es, "streamed_counts", spy)
        streamed = ev.evaluate_folders(d / "pred", d / "truth", **kw)
        monkeypatch.undo()
        assert len(called) == 2
        for a, b in zip(whole.images, streamed.images, strict=True):
            assert a.confusion == b.confusion and a.confusion.tp > 0
            assert a.boundary == b.boundary and a.boundary.truth_matched > 0
            assert a.roads == b.roads and a.roads.truth_matched > 0
        ignored = int((truth == 255).sum() - (truth[:, :20] == 255).sum())
        conf = whole.images[0].confusion
        assert conf.tp + conf.fp + conf.fn + conf.tn == H * W - 20 * H - ignored


def test_domain_detection_reads_a_centre_window_of_large_labels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Road detection on large label GeoTIFFs reads one centre window each, not the file."""
    import cv2
    from helpers_roads import make_road_dataset

    from sam2elnet.data import domain

    roads = make_road_dataset(tmp_path / "roads", n=6, size=96)
    tifs = [
        write_tif(tmp_path / "tif" / f"{p.stem}.tif", cv2.imread(str(p), 0)[None])
        for p in sorted((roads / "masks").glob("*.png"))
    ]
    assert domain.detect_domain(tifs, modality="optical").domain == "roads"
    shapes: list[tuple[int, int]] = []
    read = windowed_mask.read_mask_window

    def spy(plan: windowed_mask.MaskPlan, *a: int) -> tuple:
        out = read(plan, *a)
        shapes.append(out[0].shape)
        return out

    monkeypatch.setattr(windowed, "WINDOW_MIN_BYTES", 0)
    monkeypatch.setattr(windowed_mask, "read_mask_window", spy)
    monkeypatch.setattr(domain, "SHAPE_WINDOW", 80)
    assert domain.detect_domain(tifs, modality="optical").domain == "roads"
    assert shapes and set(shapes) == {(80, 80)}


def test_image_size_of_a_geotiff_reads_the_header_only(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sam2elnet.data import images, pair_sizes

    monkeypatch.setattr(images, "read_image", None)  # any pixel read would fail
    assert pair_sizes.image_size(files["img"]) == (H, W)
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"not a tiff")
    with pytest.raises(DataError, match="cannot read raster"):
        pair_sizes.image_size(bad)
