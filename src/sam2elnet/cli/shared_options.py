"""Typer options that commands of several modules share: one declaration, one help text.

``--warp-to`` / ``--warp-method`` (``scene``, ``export``, ``annotate``, ``enhance``): outputs of
GCP-georeferenced inputs (Sentinel-1 GRD), or of any georeferenced input, resampled onto a map grid
in a chosen CRS; the values are checked by :func:`sam2elnet.data.warp.check_warp_options`
(``export``: ``WARP_TO_EXPORT``, whose help says it warps copies of the labels, for polygons).
``--pixel-coords`` (``export``: the labels' polygons; ``scene``: the ``--quality-gpkg`` windows),
values and default :data:`sam2elnet.option_values.PixelCoords`. ``PRECISION_HELP``: the help text of every ``--precision`` (values in :mod:`sam2elnet.option_values`).
``FILTER_HELP``: the label filter's (``--min-quality``, ``--target-precision``, ``--tau``).
``TRAIN_HELP``: the help texts of the training options ``elnet train``, ``elnet cv`` and ``elnet
experiment`` share (defaults and ranges from :class:`sam2elnet.config.TrainConfig`).
``--line-width`` / ``--line-width-px`` (``evaluate``: vector ground truth; ``enhance``, ``scene``:
vector coarse labels; ``import --from vector``: reviewed line layers), range :func:`sam2elnet.option_values.line_width_field`.
``--layer`` (``enhance``, ``scene``): the layer read from a vector file with several
(:mod:`sam2elnet.data.vector_layers`; ``evaluate --truth-layer`` is its own; ``import --from
vector`` takes it repeated, :data:`sam2elnet.cli.review_cmd.IMPORT_LAYERS`).
``--road-buffer`` / ``--road-buffer-m`` (``evaluate``, ``train``, ``cv``, ``experiment``):
default and range :data:`sam2elnet.option_values.ROAD_BUFFER_PX` /
:func:`sam2elnet.option_values.road_buffer_field` / :func:`~sam2elnet.option_values.road_buffer_m_field`;
one of the two (:func:`road_buffer_px_of`); metres become pixels per image in
:mod:`sam2elnet.engine.road_buffer`.
``--no-progress`` (every command that draws a progress bar) and ``--progress`` (``stats``,
``synth``, ``degrade``, where both flags are given with :func:`switch`): the bar, or plain lines
(:func:`sam2elnet.utils.progress.progress_bar`).
:func:`switch`: an on/off setting given as two flags (``--roads`` / ``--no-roads``).
"""

from __future__ import annotations

import typer

from sam2elnet.config import AUTO_EPOCHS, AUTO_UPDATES, DEFAULT_IMAGE_SIZE, TrainConfig
from sam2elnet.errors import UserError
from sam2elnet.option_values import (
    DEFAULT_LINE_WIDTH_UNIT,
    DEFAULT_WARP_METHOD,
    LINE_WIDTH_MAX,
    PIXEL_COORDS,
    PIXEL_COORDS_HELP,
    PRECISION_HELP,
    ROAD_BUFFER_M_MAX,
    ROAD_BUFFER_MAX,
    ROAD_BUFFER_PX,
    LineWidthUnit,
    augment_default_text,
    road_buffer_units,
)
from sam2elnet.utils.progress import EVERY_S

__all__ = [
    "FILTER_HELP",
    "LAYER",
    "LINE_WIDTH",
    "LINE_WIDTH_PX",
    "NO_PROGRESS",
    "NO_PROGRESS_HELP",
    "PIXEL_COORDS_OPTION",
    "PRECISION_HELP",
    "PROGRESS",
    "ROAD_BUFFER",
    "ROAD_BUFFER_M",
    "TRAIN_HELP",
    "WARP_METHOD",
    "WARP_TO",
    "WARP_TO_EXPORT",
    "road_buffer_px_of",
    "switch",
]


def count_if_number(value: str | None) -> int | str | None:
    """An option that takes a whole number or ``auto`` (``--epochs``, ``--batch-size``): None for
    ``auto`` (the config's auto), a whole number as an int (recorded as a number, e.g. in
    ``cv_config.json``), other text as it is, which the config refuses in one line naming the
    option."""
    if value is None or value.strip().lower() == "auto":
        return None
    # isdecimal, not isdigit: "²" is a digit int() refuses (a traceback, not the config's line)
    return int(value) if value.strip().isdecimal() else value


def _d(name: str) -> object:
    return TrainConfig.model_fields[name].default


#: help text of each training option (``train``, ``cv``, ``experiment``), by TrainConfig field name
#: (``train_image_size``: ``elnet train``'s --image-size, whose default follows --init-model)
TRAIN_HELP = {
    "epochs": "Passes over the training images: a number (at least 1), or auto (default): "
    f"enough for about {AUTO_UPDATES:,} optimiser updates, {AUTO_EPOCHS[0]}-{AUTO_EPOCHS[1]} "
    "epochs, said in the log before training.",
    "batch_size": "Images per optimiser step at any crop size: a number (at least 1), or auto "
    "(default): formed by pixels, 4 at 256 px, 2 at 512 px (docs/training.md).",
    "image_size": f"Training crop size in pixels (default {DEFAULT_IMAGE_SIZE}, at least 32).",
    "train_image_size": f"Training crop size in pixels (default {DEFAULT_IMAGE_SIZE}; with "
    "--init-model: the crop size it was trained at; at least 32).",
    "lr": f"Peak learning rate (AdamW, warm-up + cosine; default {_d('lr')}, > 0).",
    "val_fraction": "Share of the training part kept for validation "
    f"(default {_d('val_fraction')}, 0 to < 1).",
    "max_train": "Cap on training images (smoke runs; default: all).",
    "trunk_scale": "1 | 2: the frozen trunk sees the image at full or half resolution. Default "
    "auto: half without SAM2 weights (the same oil-spill label quality in about half the time), "
    "full for roads and with SAM2 weights (docs/training.md).",
    "domain": "auto (default: detected) | roads | other. Roads add road completeness, "
    "correctness, quality and connectivity to validation and a full-resolution trunk.",
    "topology_loss": "auto (default: none; on roads-dev clDice cost 3.9 road IoU points without "
    "SAM2 weights, docs/training.md) | none | cldice (soft clDice, Shit et al. CVPR 2021).",
    "topology_weight": f"Weight of the clDice term (default {_d('topology_weight')}, 0-10).",
    "aug_photometric": "Brightness/contrast/gamma strength, 0 = off (default "
    f"{augment_default_text('photometric')}; at most 5).",
    "aug_band_jitter": "Per-band gain/offset jitter for colour casts, 0 = off (default "
    f"{augment_default_text('band_jitter')}; at most 0.5).",
}

#: help text of the label filter's options (``annotate``, ``enhance``; ``experiment``: first two)
FILTER_HELP = {
    "min_quality": "Keep labels with predicted IoU >= Q (0-1; default: keep all).",
    "target_precision": "Keep labels above the lowest quality threshold whose held-out "
    "precision (share of labels with IoU >= tau) reaches this, in (0, 1], e.g. 0.9; needs a "
    "fitted quality evaluator.",
    "tau": "IoU counted as a good label for --target-precision, in (0, 1) (default: the "
    "model's, 0.7 unless trained with --tau).",
}

LAYER = typer.Option(
    None,
    "--layer",
    help="The layer to read from a vector file with several (e.g. new_roads; default: its "
    "'labels' layer, else the first polygon / line layer, with a warning naming the layers).",
)
WARP_TO = typer.Option(
    None,
    "--warp-to",
    help="Put GeoTIFF outputs on a map grid: utm (the scene's UTM zone) or a CRS such as "
    "EPSG:32635 or EPSG:4326 (like gdalwarp -tps -t_srs; labels nearest, nodata kept). "
    "Default: keep the input's georeference (GCPs of a Sentinel-1 GRD, or its CRS).",
)
#: ``elnet export``'s --warp-to: it warps copies of the labels before making polygons
WARP_TO_EXPORT = typer.Option(
    None,
    "--warp-to",
    help="Warp copies of the labels onto a map grid before making polygons (GPKG/SHP/GeoJSON "
    "only): utm (the label's UTM zone) or a CRS such as EPSG:32635, so polygons of a GCP-only "
    "label (Sentinel-1 GRD) follow the GCP transformer. Default: the label's own georeference "
    "(for GCP-only labels an affine fit to the GCPs).",
)
WARP_METHOD = typer.Option(
    DEFAULT_WARP_METHOD,
    "--warp-method",
    help="GCP transformer for --warp-to: tps (default; labels on GCP-only grids are always placed "
    "with it) | polynomial.",
)

PIXEL_COORDS_OPTION = typer.Option(PIXEL_COORDS[0], "--pixel-coords", help=PIXEL_COORDS_HELP)

LINE_WIDTH = typer.Option(
    None,
    "--line-width",
    help="Vector labels (GeoPackage/GeoJSON/Shapefile; evaluate: vector ground truth): buffer "
    "line (and point) features, e.g. road centre lines, to this total width before rasterising, "
    "in map units of the raster's CRS (the image's; evaluate: the prediction's), pixels for "
    "rasters without georeference; see --line-width-px. Default: lines burnt 1 px wide "
    f"(0 < W <= {LINE_WIDTH_MAX:g}).",
)
LINE_WIDTH_PX = typer.Option(
    False, "--line-width-px", help="--line-width is in pixels, whatever the raster's CRS."
)


def line_width_unit(px: bool) -> LineWidthUnit:
    """The ``line_width_unit`` of ``--line-width-px`` (:data:`~sam2elnet.option_values.
    LineWidthUnit`): ``"px"`` when given, else :data:`~sam2elnet.option_values.
    DEFAULT_LINE_WIDTH_UNIT`."""
    return "px" if px else DEFAULT_LINE_WIDTH_UNIT


_ROAD_BUFFER_HELP = (
    "Road measures (correctness, completeness, quality): buffer tolerance in pixels; a "
    "centre-line pixel within it of the other mask's centre line counts as matched "
    f"(default {ROAD_BUFFER_PX:g}, 0 < PX <= {ROAD_BUFFER_MAX:g})."
)
#: not given stays None, so --road-buffer-m can be told apart (and a ``train --config`` file
#: may set it); :func:`road_buffer_px_of` fills in the default
ROAD_BUFFER = typer.Option(None, "--road-buffer", help=_ROAD_BUFFER_HELP + " Or --road-buffer-m.")
ROAD_BUFFER_M = typer.Option(
    None,
    "--road-buffer-m",
    help="The road buffer in ground metres instead (e.g. 2 for 0.5 m imagery), converted per "
    "image with its ground pixel size from its projected CRS and transform (Web Mercator "
    f"tiles: by latitude; 0 < M <= {ROAD_BUFFER_M_MAX:g}, at most {ROAD_BUFFER_MAX:g} px). "
    "Not with --road-buffer.",
)
#: the help of every command's --no-progress (lines from utils.progress.ProgressLines)
NO_PROGRESS_HELP = (
    "No progress bar: plain lines for logs instead, one as each stage or epoch ends (count, "
    f"time, rate) and one every {EVERY_S:g} s while a stage runs; the default when stderr is "
    "not a terminal (a log file)."
)
NO_PROGRESS = typer.Option(False, "--no-progress", help=NO_PROGRESS_HELP)
#: ``stats``, ``synth``, ``degrade``: the bar's on/off as two flags (:func:`switch`)
PROGRESS = typer.Option(False, "--progress", help="Show a progress bar (the default).")


def road_buffer_px_of(road_buffer: float | None, road_buffer_m: float | None) -> float | None:
    """Refuse ``--road-buffer`` (pixels) and ``--road-buffer-m`` (metres) given together: one
    ``error:`` line, exit code 2 (``evaluate``, ``train``, ``cv``, ``experiment``).

    Returns:
        The buffer in px as the configurations hold it
        (:func:`~sam2elnet.option_values.road_buffer_units`): ``road_buffer``, the default
        :data:`~sam2elnet.option_values.ROAD_BUFFER_PX` when neither is given, None with
        ``road_buffer_m`` (each image's px from its own ground pixel size).

    Raises:
        UserError: both are given.
    """
    if road_buffer is not None and road_buffer_m is not None:
        raise UserError(
            "--road-buffer (pixels) and --road-buffer-m (metres) both given: give one of them"
        )
    return road_buffer_units(road_buffer, road_buffer_m)[0]


def switch(on: bool, off: bool, flag: str, default: bool | None = None) -> bool | None:
    """An on/off setting declared as two flags, ``--FLAG`` and ``--no-FLAG`` (two typer options
    rather than one ``--x/--no-x`` pair, whose second name column squeezes a command's whole
    help table at 80 columns).

    Args:
        on, off: whether ``--FLAG`` / ``--no-FLAG`` was given.
        flag: the flag's name without dashes, for the error message (``roads``).
        default: the value when neither was given (None: decided later, "auto").

    Returns:
        True, False, or ``default``.

    Raises:
        UserError: both flags given.
    """
    if on and off:
        raise UserError(f"give either --{flag} or --no-{flag}, not both")
    return True if on else False if off else default
