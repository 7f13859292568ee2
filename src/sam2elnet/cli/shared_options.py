"""Typer options that commands of several modules share: one declaration, one help text.

``--warp-to`` / ``--warp-method`` (``scene``, ``export``, ``annotate``, ``enhance``): outputs of
GCP-georeferenced inputs (Sentinel-1 GRD), or of any georeferenced input, resampled onto a map grid
in a chosen CRS; the values are checked by :func:`sam2elnet.data.warp.check_warp_options`.
``PRECISION_HELP``: the help text of every ``--precision`` (values in :mod:`sam2elnet.options`).
"""

from __future__ import annotations

import typer

from sam2elnet.options import PRECISION_HELP

__all__ = ["PRECISION_HELP", "WARP_METHOD", "WARP_TO"]

WARP_TO = typer.Option(
    None,
    "--warp-to",
    help="Put GeoTIFF outputs on a map grid: utm (the scene's UTM zone) or a CRS such as "
    "EPSG:32635 or EPSG:4326 (like gdalwarp -tps -t_srs; labels nearest, nodata kept). "
    "Default: keep the input's georeference (GCPs of a Sentinel-1 GRD, or its CRS).",
)
WARP_METHOD = typer.Option(
    "tps", "--warp-method", help="GCP transformer for --warp-to: tps | polynomial."
)
