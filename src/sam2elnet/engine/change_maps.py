"""Enhancement's change maps and change counts: what the model added to and removed from a coarse
label. One rule for whole images and for images enhanced window by window (scenes, images above
``--max-memory``):

* Colours (RGB uint8): white = object in both the coarse and the enhanced label, green = added by
  the enhancement, red = removed, black = background in both, grey :data:`CHANGE_NODATA` (127) =
  nodata (the image holds no measurement there: the label's 127 pixels). Nodata pixels are neither
  added nor removed.
* Files: an image read through GDAL (GeoTIFF, ...; every input that is not PNG/JPEG, as for labels)
  gets ``changes/<stem>.tif``, a GeoTIFF with the label's georeference (CRS + transform, or the
  ground control points of a GCP-only scene) and the tag ``nodata=127``: the file the ``changes``
  column of ``quality.csv`` names. Every image also gets ``changes/<stem>.png``, the same pixels as
  a quick-look any viewer opens (no georeference); for PNG/JPEG inputs it is the only one.

:func:`write_change_map` colours and writes one image in memory (whole-image path);
:func:`scene_changes` counts and draws a scene strip by strip (window-by-window path), so memory
stays a strip whatever its size.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.data.mask_values import LABEL_NODATA, LABEL_OBJECT
from sam2elnet.data.naming import CV2_SUFFIXES
from sam2elnet.data.vector_shared import SharedVector
from sam2elnet.option_values import DEFAULT_LINE_WIDTH_UNIT, LineWidthUnit

__all__ = [
    "CHANGE_NODATA",
    "change_counts",
    "change_map",
    "change_map_is_geotiff",
    "scene_changes",
    "write_change_map",
]

CHANGE_NODATA = LABEL_NODATA
"""Grey level (all three bands) and GeoTIFF nodata tag of nodata pixels in a change map."""


def change_map_is_geotiff(name: str | Path) -> bool:
    """Whether the change map of an image (or of its label, same suffix rule) is a GeoTIFF
    (``changes/<stem>.tif``): every image that is not PNG/JPEG, as for labels."""
    return Path(name).suffix.lower() not in CV2_SUFFIXES


def change_map(
    coarse: np.ndarray, mask: np.ndarray, nodata: np.ndarray | None = None
) -> np.ndarray:
    """The change map's colours.

    Args:
        coarse: bool (H, W), the coarse label's object pixels.
        mask: bool (H, W), the enhanced label's object pixels.
        nodata: bool (H, W), True where the image holds no measurement, or None.

    Returns:
        uint8 (3, H, W): white kept, green (0, 200, 0) added, red (220, 0, 0) removed, black
        background, grey :data:`CHANGE_NODATA` nodata.
    """
    rgb = np.zeros((3, *mask.shape), np.uint8)
    rgb[:, coarse & mask] = 255
    rgb[1, mask & ~coarse] = 200
    rgb[0, coarse & ~mask] = 220
    if nodata is not None:
        rgb[:, nodata] = CHANGE_NODATA
    return rgb


def change_counts(
    coarse: np.ndarray, mask: np.ndarray, nodata: np.ndarray | None = None
) -> tuple[int, int]:
    """(added, removed) pixels of an enhancement, nodata pixels left out (bool (H, W) inputs as
    :func:`change_map`)."""
    valid = np.ones(mask.shape, bool) if nodata is None else ~nodata
    return (
        int(np.count_nonzero(mask & ~coarse & valid)),
        int(np.count_nonzero(coarse & ~mask & valid)),
    )


def changed_fraction(added: int, removed: int, n_valid: int) -> float:
    """``changed_frac``: the share of the valid pixels an enhancement changed,
    ``(added + removed) / n_valid`` in [0, 1] (unitless), nodata pixels out of numerator and
    denominator as in every other metric; 0.0 when no pixel is valid."""
    return (added + removed) / n_valid if n_valid > 0 else 0.0


def change_stats(
    coarse: np.ndarray, mask: np.ndarray, nodata: np.ndarray | None = None
) -> dict[str, Any]:
    """``added_px``, ``removed_px`` (:func:`change_counts`) and ``changed_frac``
    (:func:`changed_fraction`, over the valid pixels) of one enhancement; bool (H, W) inputs as
    :func:`change_map`."""
    added, removed = change_counts(coarse, mask, nodata)
    n_valid = mask.size - (0 if nodata is None else int(np.count_nonzero(nodata)))
    return {
        "added_px": added,
        "removed_px": removed,
        "changed_frac": changed_fraction(added, removed, n_valid),
    }


def write_change_map(
    out_dir: Path,
    name: str,
    coarse: np.ndarray,
    mask: np.ndarray,
    nodata: np.ndarray | None,
    like: Any,
) -> str:
    """Write a whole image's change map(s) (module docstring) into ``out_dir/changes/``.

    Args:
        out_dir: the enhance output folder.
        name: the label's file name (its stem names the maps, its suffix picks the format).
        coarse, mask, nodata: as :func:`change_map`.
        like: the image as read (:class:`~sam2elnet.data.images.RasterImage`): its georeference.

    Returns:
        The main file's path relative to ``out_dir`` (``changes/<stem>.tif`` or ``.png``).

    Raises:
        DataError: a file cannot be written.
    """
    from sam2elnet.data.writers import write_image

    rgb = change_map(coarse, mask, nodata)
    stem = Path(name).stem
    png = Path("changes") / f"{stem}.png"
    write_image(out_dir / png, rgb)
    if not change_map_is_geotiff(name):
        return str(png)
    tif = Path("changes") / f"{stem}.tif"
    write_image(out_dir / tif, rgb, like=like, nodata=CHANGE_NODATA)
    return str(tif)


def _png_quicklook(tif: Path, png: Path) -> None:
    """Copy a change-map GeoTIFF to its PNG quick-look row by row (GDAL's PNG driver: memory stays
    small whatever the scene size), atomically, without a georeference sidecar."""
    import rasterio
    import rasterio.shutil

    from sam2elnet.utils.atomic import atomic_path

    with (
        atomic_path(png) as tmp,
        rasterio.Env(GDAL_PAM_ENABLED="NO"),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        rasterio.shutil.copy(tif, tmp, driver="PNG")


def scene_changes(
    scene: Path,
    coarse: Path | SharedVector,
    label_tif: Path,
    out_stem: Path | None,
    *,
    png: bool,
    line_width: float | None,
    line_width_unit: LineWidthUnit = DEFAULT_LINE_WIDTH_UNIT,
    positive_values: tuple[float, ...] | None = None,
) -> dict[str, Any]:
    """Change statistics (``added_px``, ``removed_px``, ``changed_frac``) of an enhanced scene and,
    with ``out_stem``, its change map (colours of :func:`change_map`), read and written in row
    strips so memory stays a strip whatever the scene size.

    The enhanced label is the scene path's label GeoTIFF (255 = object, 127 = nodata: left out of
    the counts, grey in the map); the coarse label is read on the scene grid as the scene path
    reads it (:class:`~sam2elnet.engine.scene_coarse.CoarseSource`: a raster warped onto the
    grid, or a vector file rasterised, one already read not read again). The files follow the module's rule: ``<out_stem>.tif``
    (tiled GeoTIFF with the label's georeference, ``nodata=127``) plus its ``<out_stem>.png``
    quick-look for GeoTIFF scenes, only ``<out_stem>.png`` for PNG/JPEG inputs (``png``); the
    ``changes`` entry is the main file's path relative to the output folder.
    """
    import rasterio

    from sam2elnet.data.tiling import Window
    from sam2elnet.data.windowed import GDAL_ENV
    from sam2elnet.engine.scene_coarse import CoarseSource
    from sam2elnet.engine.scene_inputs import open_scene
    from sam2elnet.utils.atomic import atomic_path

    added = removed = n_valid = 0
    with contextlib.ExitStack() as stack:
        stack.enter_context(rasterio.Env(**GDAL_ENV))
        src = stack.enter_context(open_scene(scene))
        lab = stack.enter_context(rasterio.open(label_tif))
        cs = CoarseSource(
            coarse,
            src,
            line_width=line_width,
            line_width_unit=line_width_unit,
            positive_values=positive_values,
            quiet=True,  # predict_scene said it when it read the same label
        )
        stack.callback(cs.close)
        h, w = lab.height, lab.width
        dst = None
        if out_stem is not None:
            out_stem.parent.mkdir(parents=True, exist_ok=True)
            final = out_stem.with_suffix(".tif")
            tmp = stack.enter_context(atomic_path(final))
            profile = {
                "driver": "GTiff",
                "height": h,
                "width": w,
                "count": 3,
                "dtype": "uint8",
                "tiled": True,
                "blockxsize": 256,
                "blockysize": 256,
                "compress": "deflate",
                "BIGTIFF": "IF_SAFER",
            }
            if not png:
                profile["nodata"] = CHANGE_NODATA
            if lab.crs is not None:
                profile.update(crs=lab.crs, transform=lab.transform)
            dst = stack.enter_context(rasterio.open(tmp, "w", **profile))
            if lab.crs is None and lab.gcps[0]:  # GCP-only scene (Sentinel-1 GRD): keep them
                dst.gcps = lab.gcps
        rows = max(256, (4_000_000 // max(1, w)) // 256 * 256)
        for r0 in range(0, h, rows):
            win = Window(r0, 0, min(rows, h - r0), w)
            lab_rows = lab.read(1, window=win.to_rasterio())
            mask, nodata = lab_rows == LABEL_OBJECT, lab_rows == LABEL_NODATA
            c = cs.read(win) > 0
            a, r = change_counts(c, mask, nodata)
            added += a
            removed += r
            n_valid += int(nodata.size - np.count_nonzero(nodata))
            if dst is not None:
                dst.write(change_map(c, mask, nodata), window=win.to_rasterio())
    out: dict[str, Any] = {
        "added_px": added,
        "removed_px": removed,
        "changed_frac": changed_fraction(added, removed, n_valid),
    }
    if out_stem is not None:
        final = out_stem.with_suffix(".tif")
        _png_quicklook(final, out_stem.with_suffix(".png"))
        if png:  # PNG/JPEG input: the quick-look is the change map
            final.unlink()
            final = out_stem.with_suffix(".png")
        out["changes"] = str(final.relative_to(out_stem.parent.parent))
    return out
