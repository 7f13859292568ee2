"""Enhancement's change maps and change counts: what the model added to and removed from a coarse
label.

:func:`change_map` colours one image in memory (whole-image path); :func:`scene_changes` counts and
draws a scene strip by strip (window-by-window path), so memory stays a strip whatever its size.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["change_map", "scene_changes"]


def change_map(coarse: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """RGB (3,H,W) uint8: white = kept foreground, green = added, red = removed, black = background."""
    rgb = np.zeros((3, *mask.shape), np.uint8)
    both = coarse & mask
    added = mask & ~coarse
    removed = coarse & ~mask
    rgb[:, both] = 255
    rgb[1, added] = 200
    rgb[0, removed] = 220
    return rgb


def scene_changes(
    scene: Path,
    coarse: Path,
    label_tif: Path,
    out_stem: Path | None,
    *,
    png: bool,
    line_width: float | None,
    positive_values: tuple[float, ...] | None = None,
) -> dict[str, Any]:
    """Change statistics (``added_px``, ``removed_px``, ``changed_frac``) of an enhanced scene and,
    with ``out_stem``, its change map (colours of :func:`change_map`), read and written in row
    strips so memory stays a strip whatever the scene size.

    The enhanced label is the scene path's label GeoTIFF (255 = object; 0 and 127 = nodata are
    not); the coarse label is read on the scene grid as the scene path reads it
    (:class:`~sam2elnet.engine.scene_inputs.CoarseSource`: a raster warped onto the grid, or a
    vector file rasterised). The map is ``<out_stem>.tif`` (tiled GeoTIFF with the label's
    georeference) for GeoTIFF scenes and ``<out_stem>.png`` for PNG/JPEG inputs (``png``), as the
    whole-image path names it; the ``changes`` entry is its path relative to the output folder.
    """
    import rasterio
    import rasterio.shutil

    from sam2elnet.data.tiling import Window
    from sam2elnet.engine.scene_inputs import CoarseSource, open_scene
    from sam2elnet.utils.atomic import atomic_path

    added = removed = 0
    with contextlib.ExitStack() as stack:
        stack.enter_context(rasterio.Env(GDAL_PAM_ENABLED="NO", GDAL_CACHEMAX=64))
        src = stack.enter_context(open_scene(scene))
        lab = stack.enter_context(rasterio.open(label_tif))
        cs = CoarseSource(coarse, src, line_width=line_width, positive_values=positive_values)
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
            if lab.crs is not None:
                profile.update(crs=lab.crs, transform=lab.transform)
            dst = stack.enter_context(rasterio.open(tmp, "w", **profile))
            if lab.crs is None and lab.gcps[0]:  # GCP-only scene (Sentinel-1 GRD): keep them
                dst.gcps = lab.gcps
        rows = max(256, (4_000_000 // max(1, w)) // 256 * 256)
        for r0 in range(0, h, rows):
            win = Window(r0, 0, min(rows, h - r0), w)
            mask = lab.read(1, window=win.to_rasterio()) == 255
            c = cs.read(win) > 0
            added += int(np.count_nonzero(mask & ~c))
            removed += int(np.count_nonzero(c & ~mask))
            if dst is not None:
                dst.write(change_map(c, mask), window=win.to_rasterio())
    out: dict[str, Any] = {
        "added_px": added,
        "removed_px": removed,
        "changed_frac": (added + removed) / max(1, h * w),
    }
    if out_stem is not None:
        final = out_stem.with_suffix(".tif")
        if png:  # GDAL's PNG driver copies row by row from the GeoTIFF: memory stays small
            with (
                atomic_path(out_stem.with_suffix(".png")) as tmp_png,
                rasterio.Env(GDAL_PAM_ENABLED="NO"),
            ):
                rasterio.shutil.copy(final, tmp_png, driver="PNG")
            final.unlink()
            final = out_stem.with_suffix(".png")
        out["changes"] = str(final.relative_to(out_stem.parent.parent))
    return out
