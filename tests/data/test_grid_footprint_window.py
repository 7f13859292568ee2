"""A raster label on another grid, whole image (``read_mask_on_grid``): only the window under
the image's footprint is read (``data.grids.footprint_window``), never the whole label.

One regional GeoTIFF shared by many image tiles was decoded whole for every image, so time and
memory grew with the region, not the image. The placed label must stay the whole read's, pixel
for pixel: :func:`_whole_read` is the placement as it was (the whole label decoded by
``read_mask_valid``, then placed by ``place_on_grid``), the reference of every case.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine
from helpers_data import write_tif
from rasterio.warp import transform as move_points

from sam2elnet.data import windowed
from sam2elnet.data.grids import (
    OtherGrid,
    footprint_window,
    other_grid,
    place_on_grid,
    raster_header,
)
from sam2elnet.data.masks import read_mask_on_grid, read_mask_valid
from sam2elnet.data.vector_shared import SharedRaster
from sam2elnet.errors import DataError

SIDE = 320  # the regional label, px
LAB_T = Affine(10, 0, 500000, 0, -10, 4000000)  # EPSG:32633, 10 m, 3.2 km square
LAB_DEG = Affine(0.000111, 0, 15.0, 0, -0.00009, 36.1447)  # EPSG:4326, about the same square
LAB_SHEARED = Affine(10, 2, 500000, 1, -10, 4000000)  # EPSG:32633, rotated and sheared


@pytest.fixture(autouse=True)
def _window_even_for_small_own_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    """These labels are small (320 px): the window path is taken for them too, as for a large
    one (an own label below FOOTPRINT_MIN_PIXELS is read whole: the test at the end)."""
    from sam2elnet.data import windowed_mask

    monkeypatch.setattr(windowed_mask, "FOOTPRINT_MIN_PIXELS", 0)


def _label_values(seed: int = 0) -> np.ndarray:
    """uint8 (SIDE, SIDE): 5 px blocks of 0 / 255, with 127 (this project's "ignore") sprinkled."""
    rng = np.random.default_rng(seed)
    lab = np.kron(rng.random((SIDE // 5, SIDE // 5)) < 0.5, np.ones((5, 5), bool))
    lab = lab.astype(np.uint8) * 255
    lab[rng.random(lab.shape) < 0.05] = 127
    return lab


def _label(tmp_path: Path, crs: str = "EPSG:32633", transform: Affine = LAB_T) -> Path:
    name = f"region_{crs.replace(':', '')}.tif"
    return write_tif(tmp_path / name, _label_values()[None], crs=crs, transform=transform)


def _image(
    path: Path, x0: float, y0: float, res: float, shape=(40, 48), crs: str = "EPSG:32633"
) -> Path:
    """An image of ``shape`` px whose upper-left corner is at UTM 33N (x0, y0), in ``crs``."""
    if crs != "EPSG:32633":
        (x0,), (y0,) = move_points("EPSG:32633", crs, [x0], [y0])
    t = Affine(res, 0, x0, 0, -res, y0)
    return write_tif(path, np.zeros((1, *shape), np.uint8), crs=crs, transform=t)


def _whole_read(label: Path, image: Path) -> tuple[np.ndarray, np.ndarray | None, int]:
    """The placement before the window: the whole label decoded, then placed on the image."""
    grid = other_grid(raster_header(label), raster_header(image))
    assert grid is not None
    mask, valid = read_mask_valid(label)
    grid = OtherGrid(grid.src_geo, mask.shape, grid.dst_geo, grid.dst_shape)
    return place_on_grid(mask, valid, grid, label, image)


def _same(got: tuple[np.ndarray, np.ndarray | None], ref: tuple[Any, ...]) -> None:
    np.testing.assert_array_equal(got[0], ref[0])
    assert (got[1] is None) == (ref[1] is None)
    if ref[1] is not None:
        np.testing.assert_array_equal(got[1], ref[1])


# (x0, y0, pixel size, image CRS): upper-left corners in UTM 33N, inside the label unless said
CASES = {
    "same CRS, aligned": (500400, 3999300, 10, "EPSG:32633"),
    "same CRS, 2x coarser (centres on label pixel edges)": (501000, 3998000, 20, "EPSG:32633"),
    "same CRS, finer, off the label's grid": (500123.7, 3998765.3, 7.3, "EPSG:32633"),
    "same CRS, coarser, off the label's grid": (502001.5, 3997003.5, 15, "EPSG:32633"),
    "other CRS (UTM 34N)": (501500, 3998500, 10, "EPSG:32634"),
    "other CRS (Web Mercator)": (500700, 3999100, 12, "EPSG:3857"),
    "partly outside (west edge)": (499800, 3998000, 10, "EPSG:32633"),
    "partly outside (south-east corner)": (502850, 3996900, 10, "EPSG:32633"),
    "partly outside, other CRS": (499850, 3996950, 10, "EPSG:32634"),
}


@pytest.mark.parametrize("label_crs", ["EPSG:32633", "EPSG:4326"])
@pytest.mark.parametrize("case", list(CASES))
def test_window_placement_equals_whole_read(tmp_path: Path, case: str, label_crs: str) -> None:
    x0, y0, res, crs = CASES[case]
    label = _label(tmp_path, label_crs, LAB_T if label_crs == "EPSG:32633" else LAB_DEG)
    image = _image(tmp_path / "i.tif", x0, y0, res, crs=crs)
    ref = _whole_read(label, image)
    assert 0 < ref[2] < ref[0].size or "partly" not in case  # the case is what it says
    got = read_mask_on_grid(label, image)
    _same(got, ref)
    assert got[0].any() and got[1] is not None and not got[1].all()  # objects and ignored pixels
    grid = other_grid(raster_header(label), raster_header(image))
    assert grid is not None
    _, _, rows, cols = footprint_window(grid)  # type: ignore[misc]
    assert 0 < rows * cols < SIDE * SIDE / 4  # placed from a window, not the whole label


def test_many_image_grids_equal_whole_read(tmp_path: Path) -> None:
    """Seeded image grids over and around the label (sizes, resolutions, shifts, CRSs; a
    label in degrees, one on a rotated and sheared grid)."""
    rng = np.random.default_rng(3)
    sheared = write_tif(tmp_path / "sheared.tif", _label_values(1)[None], transform=LAB_SHEARED)
    labels = [_label(tmp_path), _label(tmp_path, "EPSG:4326", LAB_DEG), sheared]
    kinds = [0, 0, 0]
    for i in range(24):
        res = float(rng.choice([2.5, 5, 7.3, 10, 15, 20, 30]))
        x0 = 499700 + float(rng.integers(0, 330)) * 10 + float(rng.choice([0, 2.5, 3.7]))
        y0 = 4000300 - float(rng.integers(0, 330)) * 10
        crs = ("EPSG:32633", "EPSG:32634", "EPSG:3857")[i % 3]
        shape = (int(rng.integers(32, 65)), int(rng.integers(32, 65)))
        image = _image(tmp_path / f"i{i}.tif", x0, y0, res, shape, crs)
        for label in labels:
            ref = _whole_read(label, image)
            if ref[2] >= ref[0].size:  # misses the label: the shared file's empty label
                with pytest.raises(DataError, match="does not overlap"):
                    read_mask_on_grid(label, image)
                got = read_mask_on_grid(label, image, shared=True)
            else:
                got = read_mask_on_grid(label, image)
            _same(got, ref)
            kinds[min(2, (ref[2] > 0) + (ref[2] >= ref[0].size))] += 1
    assert all(kinds), kinds  # inside, partly outside and outside all drawn


def test_image_outside_the_label_as_before(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An image the label misses: refused (one image's label), or an empty label with every
    pixel not valid (a shared raster), as the whole read gave."""
    label = _label(tmp_path)
    image = _image(tmp_path / "far.tif", 510000, 3990000, 10)
    ref = _whole_read(label, image)
    assert ref[2] == ref[0].size
    with pytest.raises(DataError, match="does not overlap the image"):
        read_mask_on_grid(label, image)
    with caplog.at_level(logging.WARNING):
        got = read_mask_on_grid(SharedRaster(label), image, shared=True)
    _same(got, ref)
    assert got[1] is not None and not got[1].any()


def test_nodata_tag_decoded_as_the_whole_read(tmp_path: Path) -> None:
    """Values decoded by the whole file's encoding (0/1 with a nodata tag), not the window's."""
    lab = (_label_values() == 255).astype(np.uint8)
    lab[:, 200:] = 9  # nodata, only east of the image's window
    label = write_tif(tmp_path / "n.tif", lab[None], nodata=9, crs="EPSG:32633", transform=LAB_T)
    image = _image(tmp_path / "i.tif", 500300, 3999500, 10)
    _same(read_mask_on_grid(label, image), _whole_read(label, image))


def _spy_reads(monkeypatch: pytest.MonkeyPatch, label: Path) -> list[tuple[int, int]]:
    """(rows, cols) of every pixel read of ``label`` from now on."""
    seen: list[tuple[int, int]] = []
    read = rasterio.io.DatasetReader.read

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        out = read(self, *args, **kwargs)
        if Path(self.name).resolve() == label.resolve():
            seen.append(tuple(out.shape[-2:]))
        return out

    monkeypatch.setattr(rasterio.io.DatasetReader, "read", spy)
    return seen


def test_only_the_footprint_window_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    label = SharedRaster(_label(tmp_path))
    monkeypatch.setattr(windowed, "STRIP_PIXELS", SIDE * 40)  # the one pass: 40-row strips
    seen = _spy_reads(monkeypatch, label.path)
    first = _image(tmp_path / "a.tif", 500400, 3999300, 10, (64, 64))
    read_mask_on_grid(label, first, shared=True)
    # once per label and run: its values' encoding, in strips (bounded memory), then the window
    assert seen and max(r * c for r, c in seen) <= SIDE * 40
    seen.clear()
    second = _image(tmp_path / "b.tif", 501700, 3997900, 10, (64, 64))
    ref = _whole_read(label.path, second)
    seen.clear()
    _same(read_mask_on_grid(label, second, shared=True), ref)
    pad = 2 * 2 + 1  # footprint_window's two pixels a side, one more for rounding
    assert seen and all(r <= 64 + pad and c <= 64 + pad for r, c in seen), seen
    assert sum(r * c for r, c in seen) < SIDE * SIDE / 20
    seen.clear()
    coarser = _image(tmp_path / "c.tif", 500100, 3999900, 30, (48, 48), "EPSG:32634")
    read_mask_on_grid(label, coarser, shared=True)  # 48 px of 30 m: about 144 label px a side
    assert seen and all(r <= 160 and c <= 160 for r, c in seen), seen
    seen.clear()
    with caplog.at_level(logging.WARNING):
        far = _image(tmp_path / "far.tif", 510000, 3990000, 10, (64, 64))
        read_mask_on_grid(label, far, shared=True)
    assert seen == []  # an image the label misses reads none of its pixels


def test_footprint_window_bounds(tmp_path: Path) -> None:
    label = _label(tmp_path)
    image = _image(tmp_path / "i.tif", 500400, 3999300, 10, (40, 48))
    grid = other_grid(raster_header(label), raster_header(image))
    assert grid is not None
    # image rows 0..40 = label rows 70..110, cols 0..48 = label cols 40..88; two more a side
    assert footprint_window(grid) == (68, 38, 44, 52)
    assert footprint_window(grid, pad=0) == (70, 40, 40, 48)
    edge = _image(tmp_path / "e.tif", 499900, 4000100, 10, (40, 48))
    grid = other_grid(raster_header(label), raster_header(edge))
    assert grid is not None
    assert footprint_window(grid) == (0, 0, 32, 40)  # clipped to the label
    gcp_only = OtherGrid({"gcps": [], "crs": None}, (SIDE, SIDE), grid.dst_geo, grid.dst_shape)
    assert footprint_window(gcp_only) is None  # placed through GCPs: the whole label


def test_footprint_missed_signal_survives_pickling() -> None:
    """FootprintMissed crosses a process boundary intact (a worker's exception is pickled):
    before, unpickling it failed with a TypeError (its args held only the message)."""
    import pickle

    from sam2elnet.data.grid_cover import FootprintMissed

    back = pickle.loads(pickle.dumps(FootprintMissed(Path("region.tif"), "a.tif")))
    assert isinstance(back, FootprintMissed)
    assert (back.path, back.like) == (Path("region.tif"), "a.tif")
    assert str(back) == "region.tif does not overlap a.tif"


def test_a_small_own_label_is_read_whole_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An image's own label on another grid below FOOTPRINT_MIN_PIXELS: one whole read (the
    window would first decode the file once more, in strips, to decide its values); the same
    file shared by many images takes the window."""
    from sam2elnet.data import windowed_mask

    monkeypatch.setattr(windowed_mask, "FOOTPRINT_MIN_PIXELS", SIDE * SIDE + 1)
    monkeypatch.setattr(windowed, "STRIP_PIXELS", SIDE * 40)
    label = _label(tmp_path)
    image = _image(tmp_path / "a.tif", 501700, 3997900, 10, (64, 64))
    ref = _whole_read(label, image)
    seen = _spy_reads(monkeypatch, label)
    _same(read_mask_on_grid(label, image), ref)
    assert seen == [(SIDE, SIDE)]  # one whole read, no strips, no window
    seen.clear()
    _same(read_mask_on_grid(SharedRaster(label), image, shared=True), ref)
    assert (SIDE, SIDE) not in seen and any(r <= 64 + 5 for r, _c in seen)  # strips, window
    monkeypatch.setattr(windowed_mask, "FOOTPRINT_MIN_PIXELS", SIDE * SIDE)
    seen.clear()
    _same(read_mask_on_grid(label, image), ref)  # as large as the limit: the window
    assert (SIDE, SIDE) not in seen
