"""What :func:`~sam2elnet.engine.scene.predict_scene` checks before it reads a scene: the option
values (:func:`check_scene_options`: tile, overlap, batch size, probability dtype, pixel
coordinates) and the output paths (:func:`check_scene_paths`: GeoTIFF / GeoPackage names, no
output an input, three distinct files). ``elnet scene`` runs the path check before the model
loads (:func:`sam2elnet.pipeline.scenes.scene_job`). Every refusal is one UserError naming the
value and what to do.
"""

from __future__ import annotations

from pathlib import Path

from sam2elnet.data.naming import GEO_SUFFIXES
from sam2elnet.errors import UserError
from sam2elnet.option_values import PIXEL_COORDS
from sam2elnet.options import TILE_MIN

__all__ = ["check_scene_options", "check_scene_paths"]


def check_scene_paths(
    src_path: str | Path,
    dst_path: str | Path,
    *,
    coarse: str | Path | None = None,
    prob_path: str | Path | None = None,
    quality_gpkg: str | Path | None = None,
) -> None:
    """UserError for output paths :func:`~sam2elnet.engine.scene.predict_scene` cannot write (nothing is read).

    The label ``dst_path`` must end in ``.tif`` / ``.tiff``, ``quality_gpkg`` in ``.gpkg``; no
    output may be ``src_path`` or ``coarse``, and the outputs must be different files.
    :func:`~sam2elnet.engine.scene.predict_scene` checks them before reading; :func:`sam2elnet.pipeline.scenes.scene_job`
    (``elnet scene``) calls this before the model loads, so a wrong name fails at once. The
    checks across a folder's scenes (two scenes writing one file, ``--out`` the ``--image``
    folder) are :func:`sam2elnet.pipeline.scene_files.check_scene_outputs`'s.
    """
    src_path, dst_path = Path(src_path), Path(dst_path)
    if dst_path.suffix.lower() not in GEO_SUFFIXES:
        raise UserError(
            f"scene output must be a GeoTIFF (.tif), got {dst_path}; choose a name ending in .tif"
        )
    outs = [Path(p).resolve() for p in (dst_path, prob_path, quality_gpkg) if p is not None]
    if src_path.resolve() in outs or (coarse is not None and Path(coarse).resolve() in outs):
        raise UserError(f"an output would overwrite an input ({src_path}); choose another --out")
    if len(set(outs)) != len(outs):
        raise UserError("the label, probability and quality outputs must be different files")
    if quality_gpkg is not None and Path(quality_gpkg).suffix.lower() != ".gpkg":
        raise UserError(
            f"per-tile quality output must be a GeoPackage (.gpkg), got {quality_gpkg}; "
            "choose a name ending in .gpkg"
        )


def check_scene_options(
    src_path: Path,
    dst_path: Path,
    *,
    tile: int,
    overlap: int,
    batch_size: int,
    prob_dtype: str,
    coarse: str | Path | None,
    prob_path: str | Path | None,
    quality_gpkg: str | Path | None,
    pixel_coords: str = PIXEL_COORDS[0],
) -> None:
    """UserError for option values :func:`~sam2elnet.engine.scene.predict_scene` cannot run with (before reading)."""
    if tile < TILE_MIN:
        raise UserError(f"tile must be at least {TILE_MIN} px, got {tile}")
    if not 0 <= overlap < tile:
        raise UserError(f"overlap must be >= 0 and smaller than the tile ({tile}), got {overlap}")
    if batch_size < 1:
        raise UserError(f"batch size must be >= 1, got {batch_size}")
    if prob_dtype not in ("float32", "uint8"):
        raise UserError(f"probability dtype must be float32 or uint8, got {prob_dtype!r}")
    if pixel_coords not in PIXEL_COORDS:
        raise UserError(
            f"--pixel-coords must be one of {', '.join(PIXEL_COORDS)}, got {pixel_coords!r}"
        )
    check_scene_paths(
        src_path, dst_path, coarse=coarse, prob_path=prob_path, quality_gpkg=quality_gpkg
    )
