"""Small builders of image/mask files and dataset folders shared by the tests, and the micro
model the inference and CLI tests share (:func:`trained_run`, trained once per session, with
its :func:`make_dataset` and :func:`small_cfg`), an untrained one (:func:`micro_model_file`), an
untrained SAR one with reviewed pairs to fine-tune it on (:func:`micro_sar_model_and_reviewed_pairs`)
and a synthetic GeoTIFF scene (:func:`make_scene`)."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from sam2elnet.config import TrainConfig

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared(name: str) -> Path:
    """Path of a shared real-data sample; skip the test when it is absent."""
    p = SHARED_DATA / name
    if not p.is_dir():
        pytest.skip(f"shared data {p} not available")
    return p


def count_vector_reads(m: pytest.MonkeyPatch) -> list[str]:
    """The names of the vector files read while ``m`` (a scoped ``monkeypatch.context()``) lasts,
    one entry per read: ``geopandas.read_file``, which every vector reader goes through
    (:func:`sam2elnet.data.vector.read_vector`), is wrapped to record them. Returns the list
    that the reads append to."""
    import geopandas as gpd

    opened: list[str] = []
    real = gpd.read_file

    def spy(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(Path(path).name)
        return real(path, *args, **kwargs)

    m.setattr(gpd, "read_file", spy)
    return opened


def write_png(path: Path, arr: np.ndarray) -> Path:
    """Write (H, W) or (H, W, C RGB[A]) uint8/uint16 with OpenCV (converting RGB to BGR)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[2] == 3:
        a = a[:, :, ::-1]
    elif a.ndim == 3 and a.shape[2] == 4:
        a = a[:, :, [2, 1, 0, 3]]
    ok = cv2.imwrite(str(path), np.ascontiguousarray(a))
    assert ok, path
    return path


def write_mask_png(path: Path, mask: np.ndarray) -> Path:
    """Write a boolean / 0-1 (H, W) mask as a 0/255 uint8 PNG (folders made as needed)."""
    return write_png(path, np.asarray(mask).astype(np.uint8) * 255)


def write_tif(
    path: Path,
    data: np.ndarray,
    nodata: float | None = None,
    georef: bool = True,
    x0: float = 500000,
    *,
    gcps: tuple[list, object] | None = None,
    descriptions: tuple[str, ...] | None = None,
    **creation: object,
) -> Path:
    """Write (C, H, W) as a GeoTIFF (EPSG:32633, 10 m pixels, upper-left corner at easting
    ``x0``, northing 4,000,000 m; no CRS / transform with ``georef`` False) with rasterio;
    ``creation``: more creation options (``tiled=True, blockxsize=64, blockysize=64``) or
    profile entries (``crs=``, ``transform=``: another grid). ``gcps``: ground control points
    and their CRS, set after the pixels (with ``georef`` False: a GCP-only raster);
    ``descriptions``: the bands' names."""
    import rasterio
    from affine import Affine

    path.parent.mkdir(parents=True, exist_ok=True)
    c, h, w = data.shape
    profile = {"driver": "GTiff", "height": h, "width": w, "count": c, "dtype": str(data.dtype)}
    if georef:
        profile.update(crs="EPSG:32633", transform=Affine(10, 0, x0, 0, -10, 4000000))
    if nodata is not None:
        profile["nodata"] = nodata
    profile.update(creation)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if gcps is not None:
            dst.gcps = gcps
        if descriptions is not None:
            dst.descriptions = descriptions
    return path


def nodata_strip_pair(folder: Path, suffix: str, stem: str = "a") -> tuple[Path, Path]:
    """A 64 x 64 px prediction / truth pair for the nodata rules of ``elnet evaluate``: the
    prediction's columns 0..15 are nodata (127; the GeoTIFF's nodata tag with ``suffix`` ".tif"),
    truth objects at rows / columns 20..39 (predicted too) and 0..9 (under the nodata strip), so
    the IoU over the scored pixels is 1.0 (0.8 when the strip counted as background). Files
    ``<stem>_pred<suffix>`` and ``<stem>_mask<suffix>`` in ``folder``."""
    from PIL import Image

    pred = np.zeros((64, 64), np.uint8)
    pred[:, :16] = 127
    pred[20:40, 20:40] = 255
    truth = np.zeros((64, 64), np.uint8)
    truth[20:40, 20:40] = 255
    truth[0:10, 0:10] = 255
    p, t = folder / f"{stem}_pred{suffix}", folder / f"{stem}_mask{suffix}"
    if suffix == ".tif":
        write_tif(p, pred[None], nodata=127, georef=False)
        write_tif(t, truth[None], georef=False)
    else:
        Image.fromarray(pred).save(p)
        Image.fromarray(truth).save(t)
    return p, t


def blob_mask(size: int = 48, seed: int = 0) -> np.ndarray:
    """A bool mask with one or two ellipses."""
    rng = np.random.default_rng(seed)
    m = np.zeros((size, size), np.uint8)
    for _ in range(int(rng.integers(1, 3))):
        c = rng.integers(size // 4, 3 * size // 4, 2)
        ax = rng.integers(size // 10, size // 4, 2)
        cv2.ellipse(
            m,
            (int(c[0]), int(c[1])),
            (int(ax[0]), int(ax[1])),
            float(rng.uniform(0, 180)),
            0,
            360,
            1,
            -1,
        )
    return m.astype(bool)


def road_mask(size: int = 64, seed: int = 0) -> np.ndarray:
    """A bool mask of two crossing fixed-width lines."""
    rng = np.random.default_rng(seed)
    m = np.zeros((size, size), np.uint8)
    for _ in range(2):
        p = rng.integers(0, size, 4)
        cv2.line(m, (int(p[0]), 0), (int(p[1]), size - 1), 1, int(rng.integers(3, 6)))
    return m.astype(bool)


def grey_rgb(size: int = 32, seed: int = 0) -> np.ndarray:
    """A grey image stored as 3 identical channels (like the SOS JPEGs)."""
    g = np.random.default_rng(seed).integers(0, 256, (size, size), dtype=np.uint8)
    return np.stack([g, g, g], axis=2)


def georef_tiles(folder: Path, starts: dict[str, float], side: int, seed: int) -> dict[str, Path]:
    """One-band uint8 GeoTIFFs of ``side`` px, 10 m pixels in UTM 33N, named ``<key>.tif`` with
    their upper-left corners at (``starts[key]`` E, 4000000 N) (:func:`write_tif`): tiles of one
    region for shared-label tests; random pixels from ``seed``."""
    rng = np.random.default_rng(seed)
    return {
        k: write_tif(folder / f"{k}.tif", rng.integers(0, 255, (1, side, side), np.uint8), x0=x0)
        for k, x0 in starts.items()
    }


def make_generic(
    root: Path, n: int = 4, size: int = 32, mask_dir: str = "masks", coarse: bool = False
) -> Path:
    """images/ + masks/ (matched by stem), optional coarse/."""
    for i in range(n):
        write_png(root / "images" / f"img{i}.png", grey_rgb(size, i))
        write_png(root / mask_dir / f"img{i}.png", blob_mask(size, i).astype(np.uint8) * 255)
        if coarse:
            write_png(root / "coarse" / f"img{i}.png", np.ones((size, size), np.uint8) * 255)
    return root


def make_sos(root: Path, n: int = 3, size: int = 32) -> Path:
    """SOS layout: train/<sensor>/<id>_sat.jpg + _mask.png and test/<sensor>/{sat,gt}/."""
    for sensor, base in (("palsar", 10000), ("sentinel", 20000)):
        for i in range(n):
            sid = base + i
            write_png(root / "train" / sensor / f"{sid}_sat.jpg", grey_rgb(size, sid))
            write_png(
                root / "train" / sensor / f"{sid}_mask.png",
                np.dstack([blob_mask(size, i).astype(np.uint8) * 255] * 3),
            )
        for i in range(n - 1):
            sid = base + 500 + i
            write_png(root / "test" / sensor / "sat" / f"{sid}_sat.jpg", grey_rgb(size, sid))
            write_png(
                root / "test" / sensor / "gt" / f"{sid}_mask.png",
                blob_mask(size, i).astype(np.uint8) * 255,
            )
    return root


def make_chn6(root: Path, n: int = 3, size: int = 32) -> Path:
    """CHN6-CUG layout: {train,val}/images/<id>_sat.jpg + gt/<id>_mask.png."""
    for split in ("train", "val"):
        for i in range(n):
            rgb = np.random.default_rng(i).integers(0, 256, (size, size, 3), dtype=np.uint8)
            write_png(root / split / "images" / f"{split}{i}_sat.jpg", rgb)
            write_png(
                root / split / "gt" / f"{split}{i}_mask.png",
                road_mask(size, i).astype(np.uint8) * 255,
            )
    return root


def tiny_experiment_config(data: Path, out: Path, **kw):
    """ExperimentConfig of the protocol tests: micro model, 48 px, one epoch, width-4 U-Nets;
    ``kw`` overrides any field."""
    from sam2elnet.pipeline.experiment import ExperimentConfig

    base = dict(
        data=data,
        out=out,
        fraction=0.4,
        epochs=1,
        downstream_epochs=1,
        image_size=48,
        batch_size=4,
        size="micro",
        refiners=("morphological",),
        downstream_width=4,
        downstream_depth=2,
        progress=False,
    )
    base.update(kw)
    return ExperimentConfig(**base)


def tiled_scene(path: Path, image: Path, size: int = 96) -> Path:
    """A small georeferenced GeoTIFF (:func:`write_tif`'s grid: EPSG:32633, 10 m pixels): the RGB
    ``image`` file tiled 3 x 3 and cut to ``size`` x ``size`` px (3 bands, uint8)."""
    src = cv2.imread(str(image))[:, :, ::-1]
    tiled = np.tile(np.moveaxis(src, 2, 0), (1, 3, 3))[:, :size, :size]
    return write_tif(path, np.ascontiguousarray(tiled))


_CACHE: dict[str, Any] = {}


def make_dataset(root: Path, n: int = 8, size: int = 40, seed: int = 0, bands: int = 3) -> Path:
    """images/ + masks/ with bright ellipses on noise (an easy, learnable task)."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        m = np.zeros((size, size), np.uint8)
        c = (
            int(rng.integers(size // 4, 3 * size // 4)),
            int(rng.integers(size // 4, 3 * size // 4)),
        )
        ax = (int(rng.integers(size // 8, size // 3)), int(rng.integers(size // 8, size // 3)))
        cv2.ellipse(m, c, ax, float(rng.uniform(0, 180)), 0, 360, 255, -1)
        img = (rng.normal(90, 25, (size, size)) + (m > 0) * 80).clip(0, 255).astype(np.uint8)
        if bands == 3:
            img = np.stack([img, np.roll(img, 1, 0), img], -1)
        cv2.imwrite(str(root / "images" / f"s{i:02d}.png"), img)
        cv2.imwrite(str(root / "masks" / f"s{i:02d}.png"), m)
    return root


def small_cfg(data: Path, out: Path, **kw: Any) -> TrainConfig:
    base: dict[str, Any] = dict(
        data=data,
        out=out,
        size="micro",
        epochs=1,
        batch_size=2,
        image_size=32,
        val_fraction=0.5,
        progress=False,
        seed=0,
        # 32 px crops: a half-resolution trunk (the default without weights) would see 16 px,
        # 4 x 4 tokens, and the tiled-vs-whole scene test needs context; the default's path is
        # tested by tests/cli/test_cli_engine.py (train + annotate) and tests/model
        trunk_scale=1,
    )
    base.update(kw)
    return TrainConfig(**base)


def trained_run(tmp_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One micro model shared by the inference and CLI tests (trained once per session)."""
    if "run" not in _CACHE:
        from sam2elnet.engine.train import train

        root = tmp_factory.mktemp("shared")
        data = make_dataset(root / "data", n=8)
        res = train(small_cfg(data, root / "run", epochs=2))
        _CACHE["run"] = {"data": data, "run": res.run_dir, "model": res.best_path}
    return _CACHE["run"]


def read_raster(path: Path) -> np.ndarray:
    """Every band of a raster file, (bands, H, W) in its own dtype."""
    import rasterio

    with rasterio.open(path) as ds:
        return ds.read()


def micro_model_file(path: Path, bands: int = 1) -> Path:
    """An untrained micro model (its labels are arbitrary but deterministic)."""
    from sam2elnet.model import ModelConfig, build_model
    from sam2elnet.model.io import save_model

    return save_model(build_model(ModelConfig(size="micro", in_bands=bands)), path)


def make_scene(
    path: Path,
    h: int = 300,
    w: int = 400,
    *,
    crs: str | None = "EPSG:32633",
    nodata_box: tuple[int, int, int, int] | None = (0, 0, 20, 30),
    all_nodata: bool = False,
    bands: int = 1,
    seed: int = 0,
) -> Path:
    """Synthetic uint8 scene GeoTIFF of ``bands`` equal bands, (h, w) px: dark noisy background,
    bright blobs (the 'objects'), value 0 = nodata (``nodata_box`` rows/cols r0, c0, r1, c1 set
    to 0; all of it with ``all_nodata``); ``crs`` with 10 m pixels from (500000 E, 4000000 N),
    or no georeference with ``crs`` None."""
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(seed)
    img = 10 + rng.random((h, w)) * 60
    yy, xx = np.mgrid[:h, :w]
    for cy, cx, r in ((0.5, 0.5, 0.2), (0.2, 0.8, 0.08), (0.85, 0.15, 0.1), (0.5, 0.97, 0.05)):
        img[((yy - cy * h) ** 2 + (xx - cx * w) ** 2) < (r * min(h, w)) ** 2] += 150
    img = img.astype(np.uint8)
    if nodata_box is not None:
        r0, c0, r1, c1 = nodata_box
        img[r0:r1, c0:c1] = 0
    if all_nodata:
        img[:] = 0
    profile = dict(
        driver="GTiff",
        height=h,
        width=w,
        count=bands,
        dtype="uint8",
        nodata=0,
        transform=from_origin(500000, 4000000, 10, 10) if crs else rasterio.Affine.identity(),
        crs=crs,
    )
    with rasterio.open(path, "w", **profile) as dst:
        for b in range(bands):
            dst.write(img, b + 1)
    return path


def micro_sar_model_and_reviewed_pairs(
    tmp_path: Path, image_size: int | None = None
) -> tuple[Path, Path]:
    """A micro SAR model file (``m.pt``, an --init-model; trained at ``image_size`` px crops
    when given, else recording no crop size) and 4 reviewed 32 px pairs."""
    from sam2elnet.data.normalize import NormalizationConfig
    from sam2elnet.model import ModelConfig, build_model, save_model

    sar = NormalizationConfig.for_modality("sar")
    net = build_model(ModelConfig(size="micro", in_bands=1, normalization=sar.model_dump()))
    init = save_model(
        net,
        tmp_path / "m.pt",
        extra={
            "normalization": sar.model_dump(mode="json"),
            "train": {"domain": "other"},
            **({"image_size": image_size} if image_size is not None else {}),
        },
    )
    data = tmp_path / "reviewed"
    for i in range(4):
        write_png(data / "images" / f"1000{i}_sat.png", grey_rgb(32, i))
        write_png(data / "masks" / f"1000{i}_sat.png", blob_mask(32, i).astype(np.uint8) * 255)
    return init, data


def no_temp_files(folder: Path) -> None:
    """Assert that a job left no temporary (dot) file under ``folder`` (atomic writes)."""
    assert not [p for p in folder.rglob(".*") if p.is_file()], "temporary files left behind"


def write_quality_csv(run: Path, rows: list[dict[str, Any]]) -> None:
    """``run/quality.csv`` with ``rows`` (the columns of the first row)."""
    with (run / "quality.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def annotate_run_folder(
    run: Path, images: Path, stems: Sequence[str], **summary: Any
) -> list[dict[str, Any]]:
    """An annotate-style run folder of 20 x 20 px labels, one per ``stems[k]``: rows 2..17-3k of
    columns 2..17 are 255, in ``run/labels`` for k < 2 else ``run/rejected`` (kept False),
    predicted IoU 0.9 - 0.2k, the probability map (label // 2) in ``run/prob``; the input image
    (grey 90) in ``images``; ``summary.json`` ``{"task": "annotate", "threshold": 0.6,
    **summary}``. Returns the quality.csv rows."""
    from PIL import Image

    for sub in ("labels", "rejected", "prob"):
        (run / sub).mkdir(parents=True, exist_ok=True)
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    for k, stem in enumerate(stems):
        m = np.zeros((20, 20), np.uint8)
        m[2 : 18 - 3 * k, 2:18] = 255
        rel = f"{'labels' if k < 2 else 'rejected'}/{stem}.png"
        Image.fromarray(m).save(run / rel)
        Image.fromarray(m // 2).save(run / "prob" / f"{stem}.png")
        Image.fromarray(np.full((20, 20), 90, np.uint8)).save(images / f"{stem}.png")
        rows.append(
            {
                "image": str(images / f"{stem}.png"),
                "label": rel,
                "predicted_iou": 0.9 - 0.2 * k,
                "kept": k < 2,
                "prob": f"prob/{stem}.png",
            }
        )
    write_quality_csv(run, rows)
    (run / "summary.json").write_text(json.dumps({"task": "annotate", "threshold": 0.6, **summary}))
    return rows
