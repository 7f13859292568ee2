"""``annotate`` / ``enhance --images``: a folder of label masks given as images is refused.

Trial finding (sos-dev, a new user's session): `elnet annotate --images ho/masks` (the masks
folder of held-out SOS pairs instead of their images) labelled all 30 masks, kept every one and
scored them with a mean predicted IoU of 0.66, exit 0; `elnet enhance` did the same. The rule
(``data.images_check.check_images_not_masks``, ``data.masks.mask_like_image``) is strict so
that no image is refused: exactly two pixel values, the lower 0; constant files are passed over.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import rasterio
from PIL import Image

from sam2elnet.cli import main
from sam2elnet.data.images_check import check_images_not_masks
from sam2elnet.data.masks import image_values, mask_like_image
from sam2elnet.errors import UserError

SIZE = 48


def _mask(seed: int, value: int = 255) -> np.ndarray:
    m = np.zeros((SIZE, SIZE), np.uint8)
    cv2.circle(m, (10 + seed * 7, 20), 9, value, -1)
    return m


def _sar(seed: int) -> np.ndarray:
    """A grey SAR-like image stored as 3 identical channels (as the SOS JPEGs)."""
    g = np.random.default_rng(seed).gamma(2.0, 30.0, (SIZE, SIZE)).clip(0, 255).astype(np.uint8)
    return np.repeat(g[:, :, None], 3, axis=2)


def test_mask_like_image_rule(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "m255.png"), _mask(0))
    cv2.imwrite(str(tmp_path / "m1.png"), _mask(0, 1))
    cv2.imwrite(str(tmp_path / "sar.jpg"), _sar(0))
    cv2.imwrite(str(tmp_path / "sar.png"), _sar(1))
    cv2.imwrite(str(tmp_path / "empty.png"), np.zeros((SIZE, SIZE), np.uint8))
    two = np.full((SIZE, SIZE), 50, np.uint8)
    two[:10] = 200  # two values, neither 0: an image (e.g. a quantised tile), not a mask
    cv2.imwrite(str(tmp_path / "two.png"), two)
    pal = Image.fromarray((_mask(1) > 0).astype(np.uint8), mode="P")
    pal.putpalette([0, 0, 0, 128, 0, 0] + [0] * 762)  # VOC style: class 1 drawn in colour
    pal.save(tmp_path / "pal.png")
    with rasterio.open(
        tmp_path / "m.tif", "w", driver="GTiff", width=SIZE, height=SIZE, count=1,
        dtype="uint8", nodata=127,
    ) as dst:  # fmt: skip
        m = (_mask(2) > 0).astype(np.uint8)
        m[:5] = 127  # nodata rows: not a value of the mask
        dst.write(m[None])
    expect = {
        "m255.png": "only the values 0 and 255, a mask",
        "m1.png": "only the values 0 and 1, a mask",
        "pal.png": "only the values 0 and 1, a mask",
        "m.tif": "only the values 0 and 1, a mask",
        "sar.jpg": "",
        "sar.png": "",
        "empty.png": "",
        "two.png": "",
        "missing.png": "",
    }
    assert {n: mask_like_image(tmp_path / n) for n in expect} == expect
    assert list(image_values(tmp_path / "empty.png")) == [0]
    assert image_values(tmp_path / "missing.png") is None


@pytest.mark.parametrize("first_blank", [False, True])
def test_a_folder_of_masks_is_refused_and_of_images_not(tmp_path: Path, first_blank: bool) -> None:
    masks, images = tmp_path / "masks", tmp_path / "images"
    masks.mkdir()
    images.mkdir()
    if first_blank:  # an empty mask / a blank tile first: passed over, the next files judge
        cv2.imwrite(str(masks / "0_mask.png"), np.zeros((SIZE, SIZE), np.uint8))
        cv2.imwrite(str(images / "0_sat.png"), np.zeros((SIZE, SIZE), np.uint8))
    for i in range(1, 4):
        cv2.imwrite(str(masks / f"{i}_mask.png"), _mask(i))
        cv2.imwrite(str(images / f"{i}_sat.jpg"), _sar(i))
    files = sorted(masks.iterdir())
    with pytest.raises(UserError) as err:
        check_images_not_masks(files, masks)
    assert str(err.value) == (
        f"{masks}: holds label masks, not images (1_mask.png: only the values 0 and 255, a "
        "mask); --images expects the images to label (SAR or optical rasters, e.g. SOS "
        "<id>_sat.jpg), not their masks: give the images' folder"
    )
    check_images_not_masks(sorted(images.iterdir()), images)  # no error
    # one binary image among images is no reason to refuse the folder
    check_images_not_masks([files[1], *sorted(images.glob("*.jpg"))], [])


@pytest.mark.parametrize("command", ["annotate", "enhance"])
def test_cli_refuses_masks_as_images_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    masks = tmp_path / "masks"
    masks.mkdir()
    for i in range(3):
        cv2.imwrite(str(masks / f"{i}_mask.png"), _mask(i))
    model = tmp_path / "model.pt"  # refused before the model is read
    model.write_bytes(b"")
    out = tmp_path / "out"
    args = [command, "--model", str(model), "--images", str(masks), "--out", str(out)]
    if command == "enhance":
        args += ["--labels", str(masks)]
    assert main([*args, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: {masks}: holds label masks, not images (0_mask.png: only the values 0 and 255, "
        "a mask); --images expects the images to label (SAR or optical rasters, e.g. SOS "
        "<id>_sat.jpg), not their masks: give the images' folder\n"
    )
    assert not out.exists()


def test_a_run_folder_given_as_model_names_its_model_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Trial finding: `elnet annotate --model runs/r0` said `model file not found; train one with
    `elnet train`` about a run folder that holds model.pt."""
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "a_sat.jpg"), _sar(0))
    run, other = tmp_path / "run", tmp_path / "other"
    run.mkdir()
    other.mkdir()
    (run / "model.pt").write_bytes(b"")
    for folder, says in (
        (run, f"a folder, not a model file; give the run's model file: {run / 'model.pt'}"),
        (other, "a folder, not a model file; give the model.pt an `elnet train` run wrote"),
    ):
        out = tmp_path / "out"
        rc = main(["annotate", "--model", str(folder), "--images", str(images), "--out", str(out)])
        assert rc == 2
        assert capsys.readouterr().err == f"error: {folder}: {says}\n"
        assert not out.exists()


def test_evaluate_refuses_images_as_masks_and_takes_probability_maps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Trial finding: `elnet evaluate --pred ho/images --truth ho/masks` (and the two swapped)
    scored the SAR JPEGs thresholded at 128 as labels (IoU 0.062), exit 0."""
    images, masks, prob = tmp_path / "images", tmp_path / "masks", tmp_path / "prob"
    for d in (images, masks, prob):
        d.mkdir()
    for i in range(3):
        cv2.imwrite(str(images / f"{i}_sat.jpg"), _sar(i))
        cv2.imwrite(str(masks / f"{i}_mask.png"), _mask(i))
        p = cv2.GaussianBlur(_mask(i), (0, 0), 6)  # a soft probability map, p x 255
        cv2.imwrite(str(prob / f"{i}_sat.png"), np.clip(p.astype(int) * 2 + 40, 0, 255))
    said = "looks like an image, not a mask (continuous greys, "
    for pred, truth, option, wanted in (
        (images, masks, "--pred", "predicted labels (masks) or probability maps"),
        (masks, images, "--truth", "ground-truth masks (0/255, 0/1 or class values)"),
    ):
        rc = main(["evaluate", "--pred", str(pred), "--truth", str(truth), "--no-progress"])
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1, err
        assert err.startswith(f"error: {images / '0_sat.jpg'}: {said}"), err
        assert err.endswith(
            f"{option} expects {wanted}: give the labels' folder, not the images'\n"
        )
    from sam2elnet.data.masks import image_like_label

    assert image_like_label(prob / "0_sat.png")  # continuous greys, yet a prediction may be one
    with rasterio.open(
        tmp_path / "p.tif", "w", driver="GTiff", width=SIZE, height=SIZE, count=1,
        dtype="float32",
    ) as dst:  # fmt: skip
        dst.write(np.random.default_rng(0).random((1, SIZE, SIZE), np.float32))
    json_out = tmp_path / "e.json"
    assert main(["evaluate", "--pred", str(prob), "--truth", str(masks), "--no-progress",
                 "--json", str(json_out)]) == 0  # fmt: skip
    assert main(["evaluate", "--pred", str(tmp_path / "p.tif"), "--truth",
                 str(masks / "0_mask.png"), "--no-progress"]) == 0  # fmt: skip


@pytest.mark.parametrize("swapped", [True, False])
def test_train_refuses_images_as_labels_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], swapped: bool
) -> None:
    """Trial finding: a generic dataset with images/ and masks/ swapped (the masks' PNGs in
    images/, the SAR JPEGs in masks/) trained 1 epoch without a word (val IoU 0.42)."""
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    for i in range(4):
        if swapped:
            cv2.imwrite(str(data / "images" / f"{i}.png"), _mask(i % 3))
        else:
            cv2.imwrite(str(data / "images" / f"{i}.jpg"), _sar(i))
        cv2.imwrite(str(data / "masks" / f"{i}.jpg"), _sar(i))
    out = tmp_path / "run"
    rc = main(["train", "--data", str(data), "--out", str(out), "--weights", "none",
               "--size", "micro", "--epochs", "1", "--image-size", "32", "--no-progress",
               "--modality", "sar"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    first = err.split(": ")[1]  # the first pair checked (the training split's order)
    assert Path(first).parent == data / "masks" and Path(first).suffix == ".jpg", err
    if swapped:
        assert err.startswith(
            f"error: {first}: the dataset's images and masks look swapped: this label is an "
            "image (continuous greys, "
        ), err
        assert f"its image {Path(first).stem}.png is a mask (only the values 0 and 255" in err
    else:
        assert err.startswith(f"error: {first}: a label that looks like an image (continuous "), err
    assert not out.exists()


@pytest.fixture
def sampled_reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """The shapes of every decimated (sampled) read, in order; a whole-file read_image fails
    the test."""
    import sam2elnet.data.images as images
    import sam2elnet.data.tiling as tiling

    shapes: list[tuple[int, ...]] = []
    real = tiling.decimated_read

    def counted(*a, **k):  # type: ignore[no-untyped-def]
        data, valid = real(*a, **k)
        shapes.append(data.shape)
        return data, valid

    def whole(*a, **k):  # type: ignore[no-untyped-def]
        raise AssertionError("read whole")

    monkeypatch.setattr(tiling, "decimated_read", counted)
    monkeypatch.setattr(images, "read_image", whole)
    return shapes


def test_a_large_raster_is_judged_on_a_bounded_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sampled_reads: list[tuple[int, ...]]
) -> None:
    """Was: the look before the model loads read the whole file (a 10,000 px JPEG-compressed
    GeoTIFF of 3.3 MB: 7.8 s, 2.5 GB). Now a raster whose header holds more than SAMPLE_PIXELS
    pixels is read decimated: never whole, at most SAMPLE_PIXELS pixels per band, and the
    mask / image decisions are those of the whole file."""
    import sam2elnet.data.masks as masks
    import sam2elnet.data.pixel_sample as pixel_sample

    shapes = sampled_reads
    side = 2048  # 4 Mpx in the header, a few KB on disk (deflate)
    m = np.zeros((1, side, side), np.uint8)
    m[0, 500:1500, 300:1200] = 255
    big = tmp_path / "big_mask.tif"
    with rasterio.open(big, "w", driver="GTiff", height=side, width=side, count=1,
                       dtype="uint8", compress="deflate", tiled=True) as dst:  # fmt: skip
        dst.write(m)
    rgb = np.random.default_rng(0).integers(0, 256, (3, 96, 96)).astype(np.uint8)
    photo = tmp_path / "photo.tif"
    with rasterio.open(photo, "w", driver="GTiff", height=96, width=96, count=3,
                       dtype="uint8") as dst:  # fmt: skip
        dst.write(rgb)
    assert list(image_values(big)) == [0, 255]
    assert mask_like_image(big) == "only the values 0 and 255, a mask"
    assert masks.image_like_label(big) == ""
    assert shapes and all(s[0] == 1 and s[1] * s[2] <= pixel_sample.SAMPLE_PIXELS for s in shapes)
    monkeypatch.setattr(pixel_sample, "SAMPLE_PIXELS", 32 * 32)  # the photo is "large" too
    shapes.clear()
    assert len(image_values(photo)) == 3 and mask_like_image(photo) == ""
    assert masks.image_like_label(photo) == "3 bands that differ, a colour image"
    assert shapes and all(s[0] == 3 and s[1] * s[2] <= 32 * 32 for s in shapes), shapes


def test_a_large_probability_map_given_as_pred_is_judged_on_a_bounded_sample(
    tmp_path: Path, sampled_reads: list[tuple[int, ...]]
) -> None:
    """Was: evaluate's check that a --pred file which looks like an image is a probability map
    read the whole file (bounded by its size on disk, not its pixels: a deflate GeoTIFF of a few
    KB with 4 Mpx in its header was decoded whole). Now it reads the bounded sample
    (pixel_sample.valid_pixels), as image_like_label does, and the map is still accepted."""
    import sam2elnet.data.pixel_sample as pixel_sample
    from sam2elnet.engine.eval_inputs import check_not_images

    shapes = sampled_reads
    side = 2048
    ramp = np.linspace(0, 1, side, dtype=np.float32)
    prob = np.broadcast_to(ramp[None, :] * ramp[:, None], (side, side))[None]  # floats in 0..1
    pred = tmp_path / "a_pred.tif"
    with rasterio.open(pred, "w", driver="GTiff", height=side, width=side, count=1,
                       dtype="float32", compress="deflate", tiled=True) as dst:  # fmt: skip
        dst.write(prob)
    truth = tmp_path / "a_mask.png"  # not on disk: only the prediction is looked at
    check_not_images({"a": pred}, {"a": truth}, ["a"])  # a probability map: accepted
    assert len(shapes) == 1, shapes  # one look: image or probability map (was 2: one each)
    assert all(s[0] == 1 and s[1] * s[2] <= pixel_sample.SAMPLE_PIXELS for s in shapes), shapes
    # a colour image as --pred is still refused, judged on the sample too
    rgb = tmp_path / "b_pred.tif"
    with rasterio.open(rgb, "w", driver="GTiff", height=side, width=side, count=3,
                       dtype="float32", compress="deflate", tiled=True) as dst:  # fmt: skip
        dst.write(np.stack([prob[0], prob[0].T, 1 - prob[0]]))
    with pytest.raises(UserError, match="looks like an image, not a mask"):
        check_not_images({"b": rgb}, {"b": truth}, ["b"])


def test_the_sample_is_read_under_a_small_gdal_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sampled_reads: list[tuple[int, ...]]
) -> None:
    """Was: GDAL's default block cache (5 % of the RAM) kept every decoded block while the
    decimated sample was read: 681 / 711 MB peak for a 10,000^2 px JPEG GeoTIFF (striped /
    tiled), 125 MB with the cap (docs/benchmarks.md). The cap is what GDAL has during the read."""
    import rasterio.env

    import sam2elnet.data.pixel_sample as pixel_sample
    import sam2elnet.data.tiling as tiling

    seen: list[object] = []
    counted = tiling.decimated_read

    def with_env(*a, **k):  # type: ignore[no-untyped-def]
        seen.append(rasterio.env.getenv().get("GDAL_CACHEMAX"))
        return counted(*a, **k)

    monkeypatch.setattr(tiling, "decimated_read", with_env)
    monkeypatch.setattr(pixel_sample, "SAMPLE_PIXELS", 32 * 32)
    photo = tmp_path / "photo.tif"
    with rasterio.open(photo, "w", driver="GTiff", height=96, width=96, count=3,
                       dtype="uint8", compress="jpeg") as dst:  # fmt: skip
        dst.write(np.random.default_rng(0).integers(0, 256, (3, 96, 96)).astype(np.uint8))
    assert mask_like_image(photo) == ""
    assert seen == [pixel_sample.SAMPLE_CACHE_MB * 2**20] and len(sampled_reads) == 1


def test_a_large_palette_png_is_judged_on_a_bounded_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sampled_reads: list[tuple[int, ...]]
) -> None:
    """Was: a palette PNG's class indices were decoded whole (PIL) for the look before the
    job, whatever its size. Now one over SAMPLE_PIXELS is read decimated by GDAL (indices)."""
    import sam2elnet.data.masks as masks
    import sam2elnet.data.pixel_sample as pixel_sample

    monkeypatch.setattr(pixel_sample, "SAMPLE_PIXELS", 16 * 16)
    m = np.zeros((64, 64), np.uint8)
    m[10:40, 20:50] = 1
    pal = Image.fromarray(m, mode="P")
    pal.putpalette([0, 0, 0, 128, 0, 0] + [0] * 762)
    pal.save(tmp_path / "pal.png")
    assert list(image_values(tmp_path / "pal.png")) == [0, 1]
    assert mask_like_image(tmp_path / "pal.png") == "only the values 0 and 1, a mask"
    assert masks.image_like_label(tmp_path / "pal.png") == ""  # a palette file is a label
    assert sampled_reads and all(s[0] == 1 and s[1] * s[2] <= 16 * 16 for s in sampled_reads)
    # the mask reader still reads it whole
    assert masks.read_mask(tmp_path / "pal.png").sum() == 30 * 30


def test_files_over_the_old_size_cap_are_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sampled_reads: list[tuple[int, ...]]
) -> None:
    """Was: files over CONTENT_CHECK_MAX_BYTES (64 MiB) skipped the images-vs-masks and
    labels-vs-images checks entirely. With the bounded sample they are judged too (the cap,
    lowered to 100 bytes here wherever it was read, is now only that of a whole read by the
    image reader of a file GDAL cannot open)."""
    import sam2elnet.data.images_check as images_check
    import sam2elnet.data.masks as masks
    import sam2elnet.data.pixel_sample as pixel_sample
    from sam2elnet.engine.eval_inputs import check_not_images
    from sam2elnet.engine.folder_inputs import check_labels_not_images

    for mod in (masks, images_check, pixel_sample):
        monkeypatch.setattr(mod, "CONTENT_CHECK_MAX_BYTES", 100, raising=False)
    monkeypatch.setattr(pixel_sample, "SAMPLE_PIXELS", 16 * 16)  # every file "large"
    folder = tmp_path / "masks"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}_mask.png"), _mask(i))
    assert (folder / "0_mask.png").stat().st_size > 100
    with pytest.raises(UserError, match="holds label masks, not images"):
        check_images_not_masks(sorted(folder.iterdir()), folder)
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        cv2.imwrite(str(images / f"{i}_sat.png"), _sar(i))
    pairs = {images / f"{i}_sat.png": images / f"{i}_sat.png" for i in range(3)}
    labels = tmp_path / "labels"
    labels.mkdir()
    for i in range(3):
        cv2.imwrite(str(labels / f"{i}_sat.png"), _sar(i + 5))
    with pytest.raises(UserError, match=r"holds images, not coarse labels \(0_sat.png: "):
        check_labels_not_images({i: labels / i.name for i in pairs}, labels)
    with pytest.raises(UserError, match="looks like an image, not a mask"):
        check_not_images({"a": folder / "0_mask.png"}, {"a": images / "0_sat.png"}, ["a"])
    assert sampled_reads  # all judged on decimated reads
    # a file GDAL cannot open is not read whole above the cap: unreadable, passed over
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG" + b"x" * 200)
    assert image_values(bad) is None and mask_like_image(bad) == ""
