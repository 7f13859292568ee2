"""The report of ``elnet evaluate --report`` draws what the metrics count: pixels left out of
the metrics (the prediction's nodata, the truth's ignore pixels) are hatched "not scored" in the
error map, never TP / FP / FN; a card without an image shows its error map on a neutral
background and says why; a polygon truth shared by many predictions is read once for all cards.
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from helpers_data import count_vector_reads, nodata_strip_pair
from PIL import Image
from shapely.geometry import box

from sam2elnet.cli import main
from sam2elnet.pipeline.report_figures import COLORS, error_layer

X0, Y0 = 500_000.0, 4_000_000.0


def _layers(page: str, key: str) -> list[np.ndarray]:
    """The ``key`` layers of every card, decoded to RGBA (H, W, 4) arrays."""
    srcs = re.findall(rf'<img alt="" data-layer="{key}" src="data:image/png;base64,([^"]+)"', page)
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(s))).convert("RGBA")) for s in srcs]


def _is(rgba: np.ndarray, color: tuple[int, int, int]) -> np.ndarray:
    return (rgba[..., 3] > 0) & np.all(rgba[..., :3] == np.array(color, np.uint8), axis=-1)


def _nodata_pair(tmp_path: Path, suffix: str) -> tuple[Path, Path]:
    """The prediction with a nodata strip over a truth object (:func:`nodata_strip_pair`)."""
    return nodata_strip_pair(tmp_path, suffix)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_error_map_draws_prediction_nodata_as_not_scored(tmp_path: Path, suffix: str) -> None:
    """The metrics leave the nodata strip out (IoU 1.0); the card's error map drew the truth
    object under it as 100 false-negative pixels. Now the strip is 'not scored' grey, the
    object outside it agreement, and no pixel is FN or FP."""
    p, t = _nodata_pair(tmp_path, suffix)
    js = tmp_path / "out" / "e.json"
    assert main(["evaluate", "--pred", str(p), "--truth", str(t), "--json", str(js),
                 "--report", "--no-progress"]) == 0  # fmt: skip
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    (err,) = _layers(page, "errors")
    assert err.shape == (64, 64, 4)
    strip = np.zeros((64, 64), bool)
    strip[:, :16] = True
    assert not _is(err, COLORS["fn"]).any() and not _is(err, COLORS["fp"]).any()
    nodata = _is(err, COLORS["nodata"])
    assert nodata[strip].all() and not nodata[~strip].any()
    tp = _is(err, COLORS["truth"])
    assert tp[20:40, 20:40].all() and int(tp.sum()) == 400
    assert "not scored (nodata / ignore)" in page  # the legend names the colour
    assert 'data-v="1.0">1.000</td>' in page  # the table's true IoU: the metrics' 1.0


def test_error_layer_values() -> None:
    """error_layer by hand: TP, FP, FN and a not-scored column that overrides them."""
    label = np.array([[1, 1, 0, 1]], bool)
    truth = np.array([[1, 0, 1, 1]], bool)
    valid = np.array([[1, 1, 1, 0]], bool)
    rgba = error_layer(label, truth, valid)
    assert [tuple(rgba[0, k, :3]) for k in range(4)] == [
        COLORS["truth"],
        COLORS["fp"],
        COLORS["fn"],
        COLORS["nodata"],
    ]
    assert rgba[0, 3, 3] > 0
    assert tuple(error_layer(label, truth)[0, 3, :3]) == COLORS["truth"]  # all scored


def test_card_without_image_shows_the_error_map_and_says_why(tmp_path: Path) -> None:
    """Without --images the card had a blank image panel; now its first panel is the error map
    on a neutral background, captioned "no image given (--images)". With --images: the image."""
    p, t = _nodata_pair(tmp_path, ".png")
    js = tmp_path / "out" / "e.json"
    base = ["evaluate", "--pred", str(p), "--truth", str(t), "--json", str(js), "--report",
            "--no-progress"]  # fmt: skip
    assert main(base) == 0
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    panels = re.search(r'<div class="panels"[^>]*>\n(.*?)\n</div>', page, re.S)
    assert panels is not None
    first = panels.group(1).split("</figure>")[0]
    assert 'class="pn noimg' in first and 'data-layer="errors"' in first
    assert "no image given (--images)" in first
    assert panels.group(1).count('data-layer="errors"') == 1  # not drawn twice
    assert "<figcaption>image</figcaption>" not in panels.group(1)

    img = tmp_path / "a_sat.png"
    Image.fromarray(np.full((64, 64), 90, np.uint8)).save(img)
    assert main([*base, "--images", str(img)]) == 0
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "no image given" not in page and 'class="pn noimg' not in page
    assert "<figcaption>image</figcaption>" in page


def _tile(path: Path, x0: float) -> None:
    a = np.zeros((32, 32), np.uint8)
    a[8:24, 8:24] = 255
    with rasterio.open(path, "w", driver="GTiff", width=32, height=32, count=1, dtype="uint8",
                       crs="EPSG:32633", transform=Affine(10, 0, x0, 0, -10, Y0)) as ds:  # fmt: skip
        ds.write(a[None])


@pytest.mark.filterwarnings("ignore:'crs' was not provided:UserWarning")
def test_shared_polygon_file_is_read_once_for_all_cards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One GeoPackage truth for 4 tiles: the evaluation reads it once and the report's cards
    reuse it (they read it twice per card: 1 + 2 * 4 reads). A result without its layer (built
    elsewhere) is read once by the report."""
    import dataclasses

    from sam2elnet.engine.evaluate import evaluate_folders
    from sam2elnet.pipeline.report import write_evaluation_report

    tiles = tmp_path / "tiles"
    tiles.mkdir()
    for k in range(4):
        _tile(tiles / f"t{k}.tif", X0 + 320 * k)
    layer = tmp_path / "slicks.gpkg"
    squares = [box(X0 + 320 * k + 120, Y0 - 280, X0 + 320 * k + 280, Y0 - 120) for k in range(4)]
    gpd.GeoDataFrame(geometry=squares, crs=32633).to_crs(4326).to_file(layer)
    js = tmp_path / "out" / "e.json"
    with monkeypatch.context() as m:
        opened = count_vector_reads(m)
        assert main(["evaluate", "--pred", str(tiles), "--truth", str(layer), "--json",
                     str(js), "--report", "--no-progress"]) == 0  # fmt: skip
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert opened == ["slicks.gpkg"]
    assert len(_layers(page, "errors")) == 4 and '<div class="err">' not in page
    res = evaluate_folders(tiles, layer, progress=False)
    alone = dataclasses.replace(res, layer=None)
    with monkeypatch.context() as m:
        opened = count_vector_reads(m)
        write_evaluation_report(alone, tmp_path / "r2.html")
    assert opened == ["slicks.gpkg"]
    again = (tmp_path / "r2.html").read_text(encoding="utf-8")
    # the same truth drawn both ways: 144 px agreement per tile (rows / columns 12..23)
    for err in _layers(page, "errors") + _layers(again, "errors"):
        assert int(_is(err, COLORS["truth"]).sum()) == 144
