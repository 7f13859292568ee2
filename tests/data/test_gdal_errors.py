"""Raster errors read alike: every reader words a GDAL failure with data.gdal_errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from sam2elnet.data.gdal_errors import (
    MAX_REASON,
    REEXPORT_HINT,
    VECTOR_HINT,
    gdal_reason,
    raster_error_text,
    vector_error_text,
)
from sam2elnet.errors import DataError


def _truncated_tif(path: Path) -> Path:
    """A 64 x 64 GeoTIFF whose header survives but whose strips are cut off."""
    prof = dict(driver="GTiff", height=64, width=64, count=1, dtype="uint8", crs="EPSG:32633")
    with rasterio.open(path, "w", **prof, transform=from_origin(0, 64, 1, 1)) as d:
        d.write(np.arange(64 * 64, dtype=np.uint8).reshape(1, 64, 64))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


def test_gdal_reason_finds_the_real_cause() -> None:
    try:
        try:
            raise ValueError("IReadBlock failed at X offset 0, Y offset 3")
        except ValueError as cause:
            raise rasterio.errors.RasterioIOError(
                "Read failed. See previous exception for details."
            ) from cause
    except rasterio.errors.RasterioIOError as err:
        assert gdal_reason(err) == "IReadBlock failed at X offset 0, Y offset 3"
        native = "Warning 1: TIFFFetchNormalTag:IO error\nmore\n"
        assert gdal_reason(err, native) == (
            "IReadBlock failed at X offset 0, Y offset 3; GDAL warned: TIFFFetchNormalTag:IO error"
        )
    assert gdal_reason(rasterio.errors.RasterioIOError()) == "RasterioIOError"  # no text
    long = gdal_reason(OSError("x" * 500))
    assert len(long) == 240 and long.endswith("...")
    assert gdal_reason(OSError("a\n   b")) == "a b"  # one line
    assert raster_error_text("mask", OSError("boom")) == f"cannot read mask (boom); {REEXPORT_HINT}"


def test_a_vector_error_reason_is_clipped_like_a_raster_one() -> None:
    """A GDAL message holding a whole WKT is cut to MAX_REASON characters in both wordings."""
    text = vector_error_text("a.gpkg", OSError("w" * 500))
    assert text == f"not a readable vector file (GDAL: {'w' * (MAX_REASON - 3)}...); {VECTOR_HINT}"


def test_export_keeps_its_import() -> None:
    from sam2elnet.export.labels import gdal_reason as exported

    assert exported is gdal_reason


def test_every_reader_words_a_truncated_geotiff_alike(tmp_path: Path) -> None:
    """Whole image read, windowed read, label raster: ``cannot read <what> (<GDAL's cause>);
    <REEXPORT_HINT>``, never rasterio's 'see previous exception'."""
    from sam2elnet.data import windowed
    from sam2elnet.data.images import read_image
    from sam2elnet.export.labels import LabelRaster

    bad = _truncated_tif(tmp_path / "cut.tif")
    msgs = []
    with pytest.raises(DataError) as e:
        read_image(bad)
    msgs.append(("raster", str(e.value)))
    with pytest.raises(DataError) as e, windowed.open_raster(bad) as src:
        windowed.read_raw(src, bad, None, "image")
    msgs.append(("image", str(e.value)))
    with pytest.raises(DataError) as e:
        LabelRaster(bad)
    msgs.append(("label raster", str(e.value)))
    for what, msg in msgs:
        assert msg.startswith(f"{bad}: cannot read {what} ("), msg
        assert msg.endswith(f"); {REEXPORT_HINT}"), msg
        assert "previous exception" not in msg and "\n" not in msg
        assert "IReadBlock" in msg or "TIFFRead" in msg, msg


def test_scene_reader_words_an_unreadable_file_alike(tmp_path: Path) -> None:
    from sam2elnet.engine.scene_inputs import open_scene

    bad = tmp_path / "s.tif"
    bad.write_bytes(b"not a tiff at all")
    with pytest.raises(DataError) as e:
        open_scene(bad)
    msg = str(e.value)
    assert msg.startswith(f"{bad}: cannot read scene (") and msg.endswith(REEXPORT_HINT), msg
    assert "not recognized as" in msg or "not a supported" in msg.lower(), msg


def test_scene_windows_and_strips_word_a_read_failure_with_where_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``elnet scene``'s window reads and the full-resolution strip pass of its precheck say
    which part of the scene could not be read, in the one wording."""
    from sam2elnet.data.tiling import Window
    from sam2elnet.engine.executors import SmoothingPredictor
    from sam2elnet.engine.scene_inputs import SceneInputs

    path = tmp_path / "s.tif"
    prof = dict(driver="GTiff", height=64, width=64, count=1, dtype="uint8", crs="EPSG:32633")
    with rasterio.open(path, "w", **prof, transform=from_origin(0, 64, 1, 1)) as d:
        d.write(np.arange(64 * 64, dtype=np.uint8).reshape(1, 64, 64))
    with SceneInputs(path, SmoothingPredictor()) as inp:

        def fail(*a: object, **k: object) -> None:
            raise rasterio.errors.RasterioIOError("IReadBlock failed at X offset 0, Y offset 1")

        monkeypatch.setattr(inp.src, "read", fail)
        cause = "(IReadBlock failed at X offset 0, Y offset 1); "
        with pytest.raises(DataError) as e:
            list(inp.read_windows([Window(32, 16, 32, 32)]))
        assert str(e.value) == f"{path}: cannot read scene window at row 32, col 16 {cause}" + (
            REEXPORT_HINT
        )
        with pytest.raises(DataError) as e:
            list(inp._strips())
        assert str(e.value).startswith(f"{path}: cannot read scene rows 0-"), e.value
        assert str(e.value).endswith(f" {cause}{REEXPORT_HINT}"), e.value
