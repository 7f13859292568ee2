"""The one georeference rule (:func:`sam2elnet.data.georef.grid_kind`) over the rasters that
try it: every reader that asks "is this raster georeferenced, and by what?" answers alike.

Was three rules (``vector_grid.grid_of``, ``grids.grid_kind``, ``eval_vector.georeferenced``)
and a fourth, unused one (``georef.georeference_kind``: 2 GCPs, or GCPs without a CRS, were
``"gcps"`` there, nowhere else). Each row is a tiny raster written with rasterio (GDAL side
files by hand); the columns are the readers. Where they differ it is in what they read, not in
the rule: :func:`~sam2elnet.data.grids.raster_header` (raster truths and coarse labels paired with
their images) reads no side file (``GDAL_PAM_ENABLED=NO``, PNG / JPEG not through GDAL), so a
CRS given only in an ``.aux.xml`` counts for the polygon readers and not for raster pairing.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.shutil
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.transform import from_origin

from sam2elnet.data.georef import dataset_grid_kind, georeference_kind, georeferenced, grid_kind
from sam2elnet.data.grids import GcpGrid, raster_header
from sam2elnet.data.vector_grid import grid_of, image_grid
from sam2elnet.data.warp import check_warpable
from sam2elnet.errors import DataError

UTM = CRS.from_epsg(32633)
T = from_origin(500000, 4000000, 10, 10)
WORLD_FILE = "10\n0\n0\n-10\n500005\n3999995\n"  # the same grid as T (pixel centre)
PIXELS = [(0, 0), (0, 32), (32, 0), (32, 32)]


def _gcps(n: int) -> list[GroundControlPoint]:
    return [GroundControlPoint(r, c, 10 + c / 320, 50 - r / 320) for r, c in PIXELS[:n]]


def _write(path: Path, driver: str = "GTiff", gcps: tuple | None = None, **geo) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(
            path, "w", driver=driver, width=32, height=32, count=1, dtype="uint8", **geo
        ) as ds:
            ds.write(np.full((1, 32, 32), 7, np.uint8))
            if gcps:
                ds.gcps = gcps
    return path


def _vrt(d: Path, name: str, georef: str) -> Path:
    """A VRT over a plain GeoTIFF with ``georef`` (VRT XML elements): GCPs without a CRS, or a
    CRS, transform and GCPs at once, which rasterio cannot write."""
    _write(d / "base.tif")
    band = (
        '<VRTRasterBand dataType="Byte" band="1"><SimpleSource>'
        '<SourceFilename relativeToVRT="1">base.tif</SourceFilename><SourceBand>1</SourceBand>'
        "</SimpleSource></VRTRasterBand>"
    )
    (d / name).write_text(
        f'<VRTDataset rasterXSize="32" rasterYSize="32">{georef}{band}</VRTDataset>'
    )
    return d / name


def _gcp_list(projection: str) -> str:
    pts = "".join(
        f'<GCP Id="{i}" Pixel="{g.col}" Line="{g.row}" X="{g.x}" Y="{g.y}"/>'
        for i, g in enumerate(_gcps(4))
    )
    return f'<GCPList Projection="{projection}">{pts}</GCPList>'


def _aux(path: Path, srs: bool = True, transform: bool = False) -> Path:
    """``path`` + its ``.aux.xml`` (GDAL's side file) with a CRS and/or a geotransform."""
    body = f"<SRS>{UTM.to_wkt()}</SRS>" if srs else ""
    if transform:
        body += "<GeoTransform>500000,10,0,4000000,0,-10</GeoTransform>"
    Path(f"{path}.aux.xml").write_text(f"<PAMDataset>{body}</PAMDataset>")
    return path


def _gcps_without_crs(d: Path) -> Path:
    src = _vrt(d, "nocrs.vrt", _gcp_list(""))
    rasterio.shutil.copy(src, d / "nocrs.tif", driver="GTiff")
    return d / "nocrs.tif"


def _png_world(d: Path) -> Path:
    (d / "w.pgw").write_text(WORLD_FILE)
    return _write(d / "w.png", "PNG")


def _png_world_aux(d: Path) -> Path:
    (d / "wa.pgw").write_text(WORLD_FILE)
    return _aux(_write(d / "wa.png", "PNG"))


def _jpeg_wld_aux(d: Path) -> Path:
    (d / "j.wld").write_text(WORLD_FILE)
    return _aux(_write(d / "j.jpg", "JPEG"))


# name -> (raster builder, the rule's answer as GDAL reads the file, raster_header's answer)
CASES: dict[str, tuple[Callable[[Path], Path], str, str]] = {
    "CRS + transform": (
        lambda d: _write(d / "a.tif", crs=UTM, transform=T),
        "transform",
        "transform",
    ),
    # rasterio's NotGeoreferencedWarning: no geotransform, read as the identity; the CRS counts
    "CRS, no geotransform": (lambda d: _write(d / "b.tif", crs=UTM), "transform", "transform"),
    "transform, no CRS": (lambda d: _write(d / "c.tif", transform=T), "none", "none"),
    "nothing (NotGeoreferencedWarning)": (lambda d: _write(d / "d.tif"), "none", "none"),
    "4 GCPs + CRS": (lambda d: _write(d / "e.tif", gcps=(_gcps(4), "EPSG:4326")), "gcps", "gcps"),
    "2 GCPs + CRS": (lambda d: _write(d / "f.tif", gcps=(_gcps(2), "EPSG:4326")), "none", "none"),
    "4 GCPs, no CRS": (_gcps_without_crs, "none", "none"),
    "CRS + transform + GCPs": (
        lambda d: _vrt(
            d,
            "both.vrt",
            f"<SRS>{UTM.to_wkt()}</SRS><GeoTransform>500000,10,0,4000000,0,-10</GeoTransform>"
            + _gcp_list("EPSG:4326"),
        ),
        "transform",
        "transform",
    ),
    "PNG + world file": (_png_world, "none", "none"),
    "PNG + world file + aux.xml CRS": (_png_world_aux, "transform", "none"),
    "PNG + aux.xml CRS and transform": (
        lambda d: _aux(_write(d / "x.png", "PNG"), transform=True),
        "transform",
        "none",
    ),
    "JPEG + .wld + aux.xml CRS": (_jpeg_wld_aux, "transform", "none"),
    "GeoTIFF transform + aux.xml CRS": (
        lambda d: _aux(_write(d / "m.tif", transform=T)),
        "transform",
        "none",
    ),
}


def _image_grid_kind(crs, transform, gcps) -> str:
    return "gcps" if gcps is not None else "transform" if crs is not None else "none"


# elnet scene's note on the scene's georeference (SceneInputs.notes), by the rule's answer
_SCENE_NOTE = {
    "transform": "",
    "none": "has no CRS: outputs carry no georeference",
    "GCPs gcps": "is georeferenced by 4 ground control points only (GCPs, in EPSG:4326)",
    # said "georeferenced by N ground control points only" too, although nothing else used them
    "GCPs none": "has no usable georeference (",
}


def _scene_note(path: Path, g: GcpGrid | None) -> str:
    """The part of the scene's georeference note that says which case it is ("" none)."""
    from sam2elnet.engine.executors import SmoothingPredictor
    from sam2elnet.engine.scene_inputs import SceneInputs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with SceneInputs(path, SmoothingPredictor()) as inp:
            notes = [n for n in inp.notes if "georef" in n or "CRS" in n]
    if not notes:
        return ""
    assert len(notes) == 1, notes
    for key in _SCENE_NOTE.values():
        if key and key in notes[0]:
            if key.startswith("has no usable"):  # and why, in the rule's terms
                want = "2 ground control points < 3" if len(g.gcps) == 2 else "its GCPs have no CRS"
                assert f"({want}; placing it needs at least 3 GCPs with a CRS)" in notes[0]
                assert "tile footprints use pixel coordinates" in notes[0]
            return key
    return notes[0]


@pytest.mark.parametrize("name", list(CASES))
def test_every_reader_follows_the_one_rule(tmp_path: Path, name: str) -> None:
    build, want, header_want = CASES[name]
    path = build(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path) as ds:
            kind = dataset_grid_kind(ds)
            vector_kind = _image_grid_kind(*image_grid(ds))
            g = GcpGrid.of(ds)
            placeable = g is not None and g.placeable
            gcps = {} if g is None else {"gcps": g.gcps, "gcp_crs": g.crs}
            profile = {"crs": ds.crs, "transform": ds.transform, **gcps}
    assert kind == want
    assert vector_kind == want  # VectorLabels.from_file's placement (vector truths, --labels)
    assert _image_grid_kind(*grid_of(profile)) == want  # elnet import-vector
    assert georeference_kind(profile) == want
    assert georeferenced(path) is (want != "none")  # evaluate's check of a shared polygon file
    assert placeable is (want == "gcps")  # export's polygons, the scene's --quality-gpkg
    assert grid_kind(raster_header(path).geo) == header_want  # raster truths, coarse labels
    assert _scene_note(path, g) == _SCENE_NOTE[want if g is None else f"GCPs {want}"]
    if want == "none":  # --warp-to: nothing to warp from
        with pytest.raises(DataError, match="drop --warp-to"):
            check_warpable(path, "EPSG:4326")
    else:
        assert check_warpable(path, "EPSG:4326") == CRS.from_epsg(4326)


def test_the_rule_over_georeference_dicts() -> None:
    """``grid_kind`` of each form :func:`~sam2elnet.data.georef.georeference` gives."""
    gcps = _gcps(4)
    assert grid_kind({"crs": UTM, "transform": T}) == "transform"
    assert grid_kind({"gcps": gcps, "crs": UTM}) == "gcps"
    assert grid_kind({"gcps": gcps[:2], "crs": UTM}) == "none"
    assert grid_kind({"gcps": gcps, "crs": None}) == "none"
    assert grid_kind({"transform": T}) == "none"
    assert grid_kind({}) == "none"
    assert georeference_kind(None) == "none"
    assert georeference_kind({"crs": UTM, "transform": T, "gcps": gcps, "gcp_crs": UTM}) == (
        "transform"
    )


def test_pixel_index_note_when_one_side_only_is_georeferenced() -> None:
    """``pixel_index_note``: the one warning of a raster label used by pixel index beside an
    image of the same size (``read_mask_on_grid``, the scene's coarse label)."""
    from sam2elnet.data.masks import pixel_index_note

    geo, gcp, plain = {"crs": UTM, "transform": T}, {"gcps": _gcps(4), "crs": UTM}, {}
    lab = Path("d/lab.tif")
    assert pixel_index_note(lab, geo, gcp, "the scene") is None  # both: other_grid decides
    assert pixel_index_note(lab, plain, {"transform": T}, "the scene") is None  # neither
    assert pixel_index_note(lab, plain, geo, "the scene") == (
        "lab.tif: the label has no georeference, so the label is used by pixel index"
    )
    assert pixel_index_note(lab, gcp, {"gcps": _gcps(2), "crs": UTM}, "the scene") == (
        "lab.tif: the scene has no georeference, so the label is used by pixel index"
    )
