"""Typer options that commands of several modules share: one declaration, one help text.

``--warp-to`` / ``--warp-method`` (``scene``, ``export``, ``annotate``, ``enhance``): outputs of
GCP-georeferenced inputs (Sentinel-1 GRD), or of any georeferenced input, resampled onto a map grid
in a chosen CRS; the values are checked by :func:`sam2elnet.data.warp.check_warp_options`.
``--pixel-coords`` (``export``: the labels' polygons; ``scene``: the ``--quality-gpkg`` windows),
values and default :data:`sam2elnet.options.PixelCoords`. ``PRECISION_HELP``: the help text of every ``--precision`` (values in :mod:`sam2elnet.options`).
``TRAIN_HELP``: the help texts of the training options ``elnet train``, ``elnet cv`` and ``elnet
experiment`` share (defaults and ranges from :class:`sam2elnet.config.TrainConfig`).
"""

from __future__ import annotations

import typer

from sam2elnet.config import TrainConfig
from sam2elnet.options import PIXEL_COORDS, PIXEL_COORDS_HELP, PRECISION_HELP

__all__ = ["PIXEL_COORDS_OPTION", "PRECISION_HELP", "TRAIN_HELP", "WARP_METHOD", "WARP_TO"]


def _d(name: str) -> object:
    return TrainConfig.model_fields[name].default


#: help text of each training option (``train``, ``cv``, ``experiment``), by TrainConfig field name
TRAIN_HELP = {
    "epochs": f"Passes over the training images (default {_d('epochs')}, at least 1).",
    "batch_size": "Images per optimiser step at any crop size (default: formed by pixels, 4 at "
    "256 px, 2 at 512 px; docs/training.md).",
    "image_size": f"Training crop size in pixels (default {_d('image_size')}, at least 32).",
    "lr": f"Peak learning rate (AdamW, warm-up + cosine; default {_d('lr')}, > 0).",
    "val_fraction": "Share of the training part kept for validation "
    f"(default {_d('val_fraction')}, 0 to < 1).",
    "max_train": "Cap on training images (smoke runs; default: all).",
    "trunk_scale": "1 | 2: the frozen trunk sees the image at full or half resolution. Default "
    "auto: half without SAM2 weights (the same oil-spill label quality in about half the time), "
    "full for roads and with SAM2 weights (docs/training.md).",
    "topology_weight": f"Weight of the clDice term (default {_d('topology_weight')}, 0-10).",
    "aug_photometric": "Brightness/contrast/gamma strength, 0 = off (default 1; roads 2; "
    "at most 5).",
    "aug_band_jitter": "Per-band gain/offset jitter for colour casts, 0 = off (default 0; roads "
    "0.05; at most 0.5).",
}

WARP_TO = typer.Option(
    None,
    "--warp-to",
    help="Put GeoTIFF outputs on a map grid: utm (the scene's UTM zone) or a CRS such as "
    "EPSG:32635 or EPSG:4326 (like gdalwarp -tps -t_srs; labels nearest, nodata kept). "
    "Default: keep the input's georeference (GCPs of a Sentinel-1 GRD, or its CRS).",
)
WARP_METHOD = typer.Option(
    "tps",
    "--warp-method",
    help="GCP transformer for --warp-to: tps (default; labels on GCP-only grids are always placed "
    "with it) | polynomial.",
)

PIXEL_COORDS_OPTION = typer.Option(PIXEL_COORDS[0], "--pixel-coords", help=PIXEL_COORDS_HELP)
