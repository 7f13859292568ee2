"""Option values: the vocabularies, defaults and bounds of command options, and the checks and
normalisers of a single value.

Each vocabulary (:data:`Precision`, :data:`PixelCoords`, :data:`TrunkScale`, ...), default
(:data:`ROAD_BUFFER_PX`) and bound (:data:`ROAD_BUFFER_MAX`) is written here once. The options
models (:mod:`sam2elnet.options`) and the run configurations (:mod:`sam2elnet.config`, the
``pipeline.*_config`` modules) declare their fields with them; the engine takes its defaults from
here. Validating a whole set of options and wording its errors is :mod:`sam2elnet.option_checks`.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal, get_args

from pydantic import Field

ModelSize = Literal["micro", "tiny", "small", "base_plus", "large"]
GroupBy = Literal["none", "folder"]
"""How ``elnet evaluate`` splits its numbers: not at all, or per ground-truth sub-folder."""


Precision = Literal["auto", "bf16", "32"]
"""``auto`` (default): bf16 autocast where the hardware computes bf16 natively, else float32
(:func:`sam2elnet.engine.runtime.resolve_precision`); ``bf16`` forces bf16 autocast; ``32`` float32."""

PRECISION_HELP = (
    "auto (bf16 where the CPU/GPU computes bf16 natively, else 32) | bf16 | 32 (float32)"
)


PixelCoords = Literal["gdal", "qgis"]
"""Where polygons of a raster *without a CRS* go (``--pixel-coords`` of ``elnet export`` and
``elnet scene``), the default first: ``gdal`` x = column, y = row (GDAL's default geotransform,
as ``gdal_polygonize``); ``qgis`` where QGIS shows such a raster, x = column, y = -row
(:data:`sam2elnet.data.georef.PIXEL_GRID`). Both read back in place as vector labels
(:class:`sam2elnet.data.vector.VectorLabels`)."""

PIXEL_COORDS: tuple[str, ...] = get_args(PixelCoords)
"""The :data:`PixelCoords` values, the default (``gdal``: the case catalogue's C07 contract)
first."""

AUGMENT_DEFAULTS: dict[str, dict[str, Any]] = {
    "default": {"scale": (0.75, 1.33), "photometric": 1.0, "band_jitter": 0.0},
}
"""Training augmentation defaults per domain (:meth:`sam2elnet.data.augment.Augmentation.
for_domain`; ``default``: every domain without an entry of its own): crop scale range
(log-uniform factor), photometric strength, per-band jitter. Roads have no entry since the
5-fold roads-dev comparison (docs/training.md, "Recipe vs plain, all 5 folds"): the stronger road
augmentation (scale 0.5,2, photometric 2, per-band 0.05) with clDice cost 3.9 road IoU points
[2.7, 5.2] without SAM2 weights; the ``--aug-*`` options still give it. Here, not in
:mod:`~sam2elnet.data.augment`, so that the CLI help shows them without importing OpenCV."""


def augment_default_text(name: str) -> str:
    """The domain defaults of augmentation setting ``name`` (a key of :data:`AUGMENT_DEFAULTS`'
    entries) for help texts: ``"1"``, ``"0.75,1.33"``; a domain with an entry of its own is
    appended (``"1; roads 2"``)."""

    def fmt(v: Any) -> str:
        return ",".join(f"{x:g}" for x in v) if isinstance(v, tuple) else f"{v:g}"

    d = AUGMENT_DEFAULTS
    return "; ".join(
        [fmt(d["default"][name])] + [f"{k} {fmt(v[name])}" for k, v in d.items() if k != "default"]
    )


DatasetLayout = Literal["auto", "sos", "chn6", "generic", "flat"]
"""Dataset layouts :func:`sam2elnet.data.layouts.discover` reads (``--layout`` of ``elnet stats``
and ``elnet train``, ``TrainConfig.layout``), the default first: ``auto`` (detected), ``sos``
(Deep-SAR Oil Spill), ``chn6`` (CHN6-CUG roads), ``generic`` (``images/`` + ``masks/``), ``flat``
(images and their ``<id>_mask`` labels side by side); the folders of each are
:mod:`sam2elnet.data.layouts`' docstring."""

LAYOUTS: tuple[str, ...] = get_args(DatasetLayout)
"""The :data:`DatasetLayout` names, the default (``auto``) first."""

LAYOUTS_HELP = " | ".join(LAYOUTS) + "."
"""The help of ``--layout``: ``auto | sos | chn6 | generic | flat.``"""


WarpMethod = Literal["tps", "polynomial"]
"""GCP transformers of ``--warp-method`` (:mod:`sam2elnet.data.warp`), the default first: thin
plate spline (``gdalwarp -tps``) or polynomial (``gdalwarp``'s default)."""

WARP_METHODS: tuple[str, ...] = get_args(WarpMethod)
"""The :data:`WarpMethod` names, the default first."""

DEFAULT_WARP_METHOD: str = WARP_METHODS[0]
"""``--warp-method``'s default (``tps``), the one default of every job that warps
(``elnet scene`` / ``annotate`` / ``enhance`` ``--warp-to``, ``elnet export --warp-to``)."""

GeojsonCrs = Literal["source", "wgs84"]
"""``elnet export --geojson-crs`` values (the older spelling of ``--crs`` for GeoJSON), the
default first. ``source``: the labels' own CRS and coordinates, named by the GeoJSON 2008 ``crs``
member as GDAL writes it with ``RFC7946=NO`` (GDAL's and QGIS's default), or, for a CRS without
an EPSG code, ``{"type": "name", "properties": {"name": <WKT>}}``, which GDAL / pyogrio /
geopandas / QGIS read back as that CRS. ``wgs84``: RFC 7946, reprojected to WGS84
longitude/latitude without a ``crs`` member (web maps, strict RFC 7946 readers)."""

GEOJSON_CRS: tuple[str, ...] = get_args(GeojsonCrs)
"""The :data:`GeojsonCrs` values, the default (``source``) first."""

LAYER_CRS: tuple[str, ...] = ("image", "wgs84")
"""Named ``elnet export --crs`` values, the default first: ``image`` (the labels' own CRS) and
``wgs84`` (EPSG:4326); any other value is a CRS rasterio reads (``EPSG:32615``;
:mod:`sam2elnet.export.layer_crs`)."""

PIXEL_COORDS_HELP = (
    "Polygons of rasters without a CRS (PNG, plain TIFF): gdal (x = column, y = row, as "
    "gdal_polygonize) or qgis (y = -row: where QGIS shows the image, so they overlay it)."
)


CURVE_POINTS_MAX = 50
"""Most learning-curve points of a downstream training (``--curve-points``)."""

BOUNDARY_TOLERANCE_PX = 2.0
"""Default match distance of the boundary F-score, in pixels (``--tolerance`` of ``elnet
evaluate``, the default of :func:`sam2elnet.engine.metrics.boundary_counts` and its strip-wise
variant): a boundary pixel within this Euclidean distance of the other mask's boundary counts as
matched (docs/evaluation.md, "Boundary F-score and HD95")."""

BOUNDARY_TOLERANCE_MAX = 1000.0
"""Largest ``--tolerance`` accepted, px."""

ROAD_BUFFER_PX = 3.0
"""Default buffer tolerance of the road measures, in pixels (``--road-buffer`` of ``elnet
evaluate``, ``train``, ``cv`` and ``experiment``): a centre-line pixel within this Euclidean
distance of the other mask's centre line counts as matched. Wiedemann et al. (1998) match road
axes within a buffer they tie to the road width; 3 px is this project's choice (docs/evaluation.md,
"Road measures")."""

ROAD_BUFFER_MAX = 100.0
"""Largest ``--road-buffer`` accepted, px (a larger buffer matches almost everything)."""

ROAD_BUFFER_M_MAX = 1000.0
"""Largest ``--road-buffer-m`` accepted, metres (a sanity bound; the buffer in pixels it gives
must also be at most :data:`ROAD_BUFFER_MAX`)."""

LINE_WIDTH_MAX = 100_000.0
"""Largest ``--line-width`` accepted (map units or px): a sanity bound, 100 km in metres."""


def road_buffer_field() -> Any:
    """The one declaration of the ``road_buffer`` option (default None: :data:`ROAD_BUFFER_PX`
    unless ``road_buffer_m`` is given, as :func:`road_buffer_units` resolves it;
    0 < px <= :data:`ROAD_BUFFER_MAX`) for every options model that has it."""
    return Field(
        None,
        gt=0,
        le=ROAD_BUFFER_MAX,
        description=f"road measures: centre-line buffer tolerance, px (None: {ROAD_BUFFER_PX:g} "
        "unless road_buffer_m is given)",
    )


def road_buffer_m_field() -> Any:
    """The one declaration of the ``road_buffer_m`` option (``--road-buffer-m`` of ``elnet
    evaluate``, ``train``, ``cv`` and ``experiment``: the road buffer in ground metres, each
    image's pixels from its own ground pixel size by
    :func:`sam2elnet.engine.road_buffer.road_buffers_px`; None: given in px; 0 < m <=
    :data:`ROAD_BUFFER_M_MAX`)."""
    return Field(
        None,
        gt=0,
        le=ROAD_BUFFER_M_MAX,
        description="road measures: centre-line buffer tolerance, ground metres (each image's "
        "pixel size from its CRS, transform and projection scale factor)",
    )


SAVED_FILE = "saved_file"
"""Key of the pydantic validation context (``model_validate(d, context={SAVED_FILE: True})``)
that says the values come from a file (a run's ``config.yaml``, a ``--config`` file), read by
:func:`road_buffer_units` through :func:`settle_road_buffer`."""


def road_buffer_units(
    road_buffer: float | None, road_buffer_m: float | None, *, saved: bool = False
) -> tuple[float | None, float | None]:
    """The one rule for the road buffer's two units, of ``TrainConfig``, ``CVConfig``,
    ``ExperimentConfig`` and ``EvaluateOptions``: one unit, px or ground metres.

    Args:
        road_buffer: the buffer in px as given; None: not given.
        road_buffer_m: the buffer in ground metres as given; None: not given.
        saved: the pair comes from a file written by an earlier version, which recorded the px
            default :data:`ROAD_BUFFER_PX` next to the metres (``road_buffer: 3.0`` beside
            ``road_buffer_m: 2.0``; the px field had no "not given"). There such a 3 px is that
            default, and the metres are what the run measured with (those versions let metres
            win): it is read as not given. Any other px next to metres is refused as well.

    Returns:
        ``(px, None)``: px mode, ``px`` the given buffer or :data:`ROAD_BUFFER_PX` when neither
        is given; ``(None, m)``: metres mode (each image's px from its own ground pixel size,
        :func:`sam2elnet.engine.road_buffer.road_buffers_px`).

    Raises:
        ValueError: both given (naming both fields and their values; the CLI refuses
            ``--road-buffer`` with ``--road-buffer-m`` before, in its own words).
    """
    if saved and road_buffer_m is not None and road_buffer == ROAD_BUFFER_PX:
        road_buffer = None  # an earlier version's default px written beside the metres
    if road_buffer_m is None:
        return (ROAD_BUFFER_PX if road_buffer is None else float(road_buffer)), None
    if road_buffer is not None:
        raise ValueError(
            f"road_buffer ({float(road_buffer):g} px) and road_buffer_m "
            f"({float(road_buffer_m):g} m) both given: give one of them (leave road_buffer "
            f"out, or None, for the buffer in metres; {ROAD_BUFFER_PX:g} px when neither is "
            "given)"
        )
    return None, float(road_buffer_m)


def settle_road_buffer(model: Any, info: Any) -> Any:
    """A ``model_validator(mode="after")`` of every model with ``road_buffer`` and
    ``road_buffer_m``: sets both to :func:`road_buffer_units` of them, ``saved`` when the
    validation context has :data:`SAVED_FILE`. Raises ValueError as it (pydantic wraps it in a
    ``ValidationError``, itself a ValueError)."""
    saved = bool((getattr(info, "context", None) or {}).get(SAVED_FILE))
    px, m = road_buffer_units(model.road_buffer, model.road_buffer_m, saved=saved)
    model.road_buffer, model.road_buffer_m = px, m
    return model


LineWidthUnit = Literal["map", "px"]
"""Unit of ``line_width``: ``"map"``, the units of the raster's CRS (pixels for a raster without
georeference); ``"px"``, pixels whatever the CRS (``--line-width-px``)."""

DEFAULT_LINE_WIDTH_UNIT: LineWidthUnit = "map"
"""``line_width_unit`` when not given: map units."""


def line_width_field() -> Any:
    """The one declaration of the ``line_width`` option (None: lines burnt 1 px wide;
    0 < w <= :data:`LINE_WIDTH_MAX`) for every options model that has it."""
    return Field(
        None,
        gt=0,
        le=LINE_WIDTH_MAX,
        description="total width of line labels: map units, or px (line_width_unit)",
    )


TrunkScale = Literal[1, 2]
"""Values of ``--trunk-scale`` (sam2elnet.model.elnet.ModelConfig.trunk_scale): the frozen trunk
sees the image at full (1) or half (2) resolution; None in a run's options means auto
(:func:`auto_trunk_scale`)."""


def trunk_resolution(scale: int) -> str:
    """The trunk's resolution in words: ``"full"`` (scale 1) or ``"half"`` (2)."""
    return "full" if int(scale) == 1 else "half"


def trunk_scale_words(scale: int) -> str:
    """A trunk scale for reports: ``trunk at full resolution (1)`` / ``... half ... (2)``."""
    return f"trunk at {trunk_resolution(scale)} resolution ({int(scale)})"


TRUNK_SCALE_NO_WEIGHTS = 2
"""``--trunk-scale`` auto without SAM2 weights: the trunk at half resolution. Measured on 400
held-out sos-2k images (100 labelled, Hiera-tiny, random trunk, 2026-12-01; docs/results.md,
"The trunk at half resolution"): the same annotation IoU (+0.5 points, paired bootstrap CI
[-0.8, +2.0]) and enhancement IoU (-0.1), the same quality-evaluator Spearman, 1.9x less CPU time
annotating, 2.3-2.5x the reference design's inference and training speed (docs/benchmarks.md).
Roads keep the full-resolution trunk: one roads-dev fold lost 3.7 road IoU points at half."""


TRUNK_SCALE_AUTO_KEY = "trunk_scale_auto"
"""Key of ``RUN/config.yaml`` (last, only when true): the recorded ``trunk_scale`` was
resolved by the auto rule (:func:`auto_trunk_scale`), not given. A resumed run says so in its
trunk line; files without the key read as given."""


def auto_trunk_scale(weights: str | None, roads: bool) -> int:
    """``--trunk-scale`` auto: 1 (full resolution, the paper's design) with SAM2 weights or for
    roads, else :data:`TRUNK_SCALE_NO_WEIGHTS`."""
    return 1 if (weights or roads) else TRUNK_SCALE_NO_WEIGHTS


def norm_precision_value(v: Any) -> Any:
    """Spellings of a precision (``fp32``, ``float32``, ``bfloat16``...) as :data:`Precision`.

    The one normaliser of every precision a config, option or stored file gives: runs and
    experiments made before the vocabulary was one wrote float32 as ``fp32`` (experiment and
    downstream configs), and they read back as ``32``. Anything else is returned lower-cased for
    the field's ``Literal`` to accept or refuse.
    """
    s = str(v).lower()
    return {"fp32": "32", "float32": "32", "bfloat16": "bf16", "bf16-mixed": "bf16"}.get(s, s)


def check_quality_folds(v: int) -> int:
    """Validate ``--quality-folds`` (k-fold cross-fitting of the network for the evaluator).

    Raises:
        ValueError: ``v == 1`` (one fold holds out nothing; 0 = off; the range 0-20 is the field's).
    """
    if v == 1:
        raise ValueError("one fold holds out nothing; give 0 (off) or 2-20 folds")
    return v


def check_device(v: str) -> str:
    """Validate a ``--device`` value.

    Args:
        v: ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.

    Returns:
        ``v`` as a string.

    Raises:
        ValueError: any other value (pydantic turns it into the option's error line).
    """
    if not re.fullmatch(r"cpu|cuda(:\d+)?|mps", str(v)):
        raise ValueError("must be cpu, cuda, cuda:N or mps")
    return str(v)


_MEMORY_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_MEMORY_UNITS.update({"KI": 2**10, "MI": 2**20, "GI": 2**30, "TI": 2**40})


def memory_bytes(value: Any) -> int:
    """Bytes from a ``--max-memory`` size.

    Units are decimal (K = 1e3, M = 1e6, G = 1e9, T = 1e12) or binary with an ``i`` (KiB, MiB,
    GiB, TiB); a trailing ``B`` is optional, case does not matter.

    Args:
        value: ``"1.5G"``, ``"800M"``, ``"512MiB"``, ``"2GB"`` or a plain number of bytes.

    Returns:
        The size in bytes (int, at least 1 MiB).

    Raises:
        ValueError: not a size, or below 1 MiB.
    """
    if isinstance(value, bool):
        raise ValueError("is not a size; give e.g. 1.5G or 800M")
    if isinstance(value, (int, float)):
        n = float(value)
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?i?)b?\s*", str(value), re.IGNORECASE)
        if not m:
            raise ValueError("is not a size; give e.g. 1.5G or 800M")
        n = float(m.group(1)) * _MEMORY_UNITS[m.group(2).upper()]
    if not math.isfinite(n) or n < 2**20:
        raise ValueError("must be a size of at least 1MiB (1.05M), e.g. 1.5G or 800M")
    return int(n)


CoarseProfile = Literal[
    "polygon",
    "sloppy",
    "blocky",
    "blurred",
    "shifted",
    "strip",
    "wavy",
    "missed",
    "mixed",
    "freehand",
]
"""Every coarse-label profile of the simulator (:mod:`sam2elnet.data.coarse`, which takes its
:data:`TRAIN_PROFILES` and :data:`EVAL_ONLY_PROFILES` from here; ``--coarse-profile`` of ``elnet
synth`` and ``elnet experiment``, ``--profile`` of ``elnet degrade``). A new name also needs its
function in ``sam2elnet.data.coarse._PROFILES`` (docs/contributing.md, "A new coarse-label
profile")."""

EVAL_ONLY_PROFILES: tuple[str, ...] = ("freehand",)
"""Profiles held out from training: only for measuring enhancement on a kind of error the model
never saw."""

TRAIN_PROFILES: tuple[str, ...] = tuple(
    p for p in get_args(CoarseProfile) if p not in EVAL_ONLY_PROFILES
)
"""Profiles training may use (the training dataset samples ``mixed``, which draws one of
:data:`sam2elnet.data.coarse.MIXED_CHOICES` per label; a profile here but not there is only used
when asked for by name)."""

COARSE_PROFILES_HELP = (
    f"{' | '.join(TRAIN_PROFILES)} (training family), {' | '.join(EVAL_ONLY_PROFILES)} (held "
    "out: never used in training, for measuring enhancement)."
)
"""The help of ``--coarse-profile`` / ``--profile``, made from the profile lists above."""


ExportFormat = Literal["geojson", "gpkg", "shp", "coco", "label-studio"]
"""``elnet export --format``: the polygon formats (:data:`sam2elnet.export.layer_files.FORMATS`),
COCO JSON and Label Studio tasks (:func:`sam2elnet.export.api.export_labels`)."""

EXPORT_FORMATS: tuple[str, ...] = get_args(ExportFormat)
"""The :data:`ExportFormat` names, in the order ``--format``'s help lists them."""

ImportSource = Literal["label-studio", "coco", "cvat", "vector"]
"""``elnet import --from``: what the export is (:func:`sam2elnet.export.review_import.import_labels`)."""

IMPORT_SOURCES: tuple[str, ...] = get_args(ImportSource)
"""The :data:`ImportSource` names, in the order ``--from``'s messages list them."""
IMPORT_SOURCE_ALIASES = {"qgis": "vector", "gpkg": "vector"}
"""Other names ``--from`` takes (any case) for an :data:`ImportSource`."""

MODEL_ID_DEFAULT = "sam2elnet"
"""The ``model_version`` of Label Studio predictions when neither ``--model-id`` nor the run
tells the model (:func:`sam2elnet.export.run_info.labels_model_version`; Label Studio needs
one). Polygon layers and COCO files then leave ``model_id`` empty."""
