"""Command options: one pydantic model per command family, each option's default and allowed range.

The CLI takes its defaults from these models (:func:`sam2elnet.option_checks.option_default`) and
validates every command's options through them (:func:`sam2elnet.option_checks.check_options`)
before any work starts; the library front doors accept the same values, so an option's default
and range are written once. The vocabularies, defaults and bounds the fields use are
:mod:`sam2elnet.option_values`; run configurations (``TrainConfig``) are :mod:`sam2elnet.config`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sam2elnet.errors import UserError
from sam2elnet.option_values import (
    BOUNDARY_TOLERANCE_MAX,
    BOUNDARY_TOLERANCE_PX,
    DEFAULT_LINE_WIDTH_UNIT,
    GEOJSON_CRS,
    LAYER_CRS,
    PIXEL_COORDS,
    CoarseProfile,
    DatasetLayout,
    ExportFormat,
    GeojsonCrs,
    GroupBy,
    ImportSource,
    LineWidthUnit,
    PixelCoords,
    Precision,
    check_device,
    line_width_field,
    memory_bytes,
    norm_precision_value,
    road_buffer_field,
    road_buffer_m_field,
    settle_road_buffer,
)


def check_one_filter(min_quality: float | None, target_precision: float | None) -> None:
    """The label filter takes one rule: ``--min-quality`` or ``--target-precision``, not both
    (``annotate``, ``enhance``, ``experiment`` and the API behind them).

    Raises:
        UserError: both given (one line saying what each keeps).
    """
    if min_quality is not None and target_precision is not None:
        raise UserError(
            f"give either --min-quality {min_quality:g} (keep labels with predicted IoU >= it) "
            f"or --target-precision {target_precision:g} (the threshold whose held-out precision "
            "reaches it), not both"
        )


OVERLAP_DEFAULT = 128
"""Window overlap of ``scene`` and the window-by-window path of annotate / enhance, px."""

AUTO_TILE_SIDES: tuple[int, ...] = tuple(range(1024, 255, -32))
"""The window sides ``--tile`` takes when not given, px, largest first: 1024, 992, ..., 256
(multiples of 32). The first whose window fits ``--max-memory`` under the memory model is
used (:func:`sam2elnet.engine.window_size.resolve_tile`); none fitting, the smallest."""

AUTO_TILE_MAX = AUTO_TILE_SIDES[0]
"""The largest window side chosen when ``--tile`` is not given, px (1024)."""

TILE_MIN = 32
"""The smallest ``--tile`` of every windowed command (``scene``, ``annotate``, ``enhance``, and
:func:`sam2elnet.engine.scene.predict_scene`), px: the model pads each window up to a multiple of
32 px (:data:`sam2elnet.model.elnet.PAD_MULTIPLE`, its coarsest feature stride), so a smaller
window is mostly padding and saves no memory."""

TILE_MAX = 16384
"""The largest ``--tile``, px."""

TILE_RANGE_HELP = (
    f"{TILE_MIN}-{TILE_MAX}; default auto: the largest of {AUTO_TILE_SIDES[0]}, "
    f"{AUTO_TILE_SIDES[1]}, ..., {AUTO_TILE_SIDES[-1]} whose one window fits --max-memory"
)
"""The range and default of ``--tile`` as the help of every windowed command states them."""


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WindowOptions(_Options):
    """Sliding-window settings shared by ``scene`` and the large-scene path of annotate/enhance."""

    tile: int | None = Field(
        None,
        ge=TILE_MIN,
        le=TILE_MAX,
        description="window size, px; None: auto, the largest of AUTO_TILE_SIDES that fits "
        "--max-memory (sam2elnet.engine.window_size.resolve_tile)",
    )
    overlap: int = Field(OVERLAP_DEFAULT, ge=0, le=8192, description="window overlap, px (< tile)")
    max_memory: int = Field(
        1_500_000_000,
        description="memory budget in bytes (1.5G, 800M): annotate / enhance predict larger "
        "images in windows; every command forms batches (scene: of windows) that fit",
    )

    _mem = field_validator("max_memory", mode="before")(classmethod(lambda cls, v: memory_bytes(v)))

    @field_validator("overlap")
    @classmethod
    def _overlap_below_tile(cls, v: int, info: Any) -> int:
        if "tile" not in info.data:  # the tile itself was refused: that error is enough
            return v
        tile = info.data["tile"]
        if tile is None and v >= AUTO_TILE_MAX:  # auto: windows up to 1024 px
            raise ValueError(
                f"must be smaller than --tile (chosen automatically when not given, at most "
                f"{AUTO_TILE_MAX} px); give a smaller --overlap, or a --tile above it"
            )
        if tile is not None and v >= tile:
            # the default overlap (128) meets a small --tile given alone: say what to give
            raise ValueError(
                f"must be smaller than --tile ({tile}); --overlap is {OVERLAP_DEFAULT} px "
                f"when not given: give a smaller one with a small --tile, e.g. "
                f"--overlap {tile // 4}"
            )
        return v


class FolderJobOptions(WindowOptions):
    """Options of ``elnet annotate`` and ``elnet enhance`` (see engine.infer)."""

    min_quality: float | None = Field(None, ge=0, le=1, description="keep labels with score >= Q")
    target_precision: float | None = Field(None, gt=0, le=1)
    tau: float | None = Field(None, gt=0, lt=1, description="IoU counted as a good label")
    batch_size: int = Field(8, ge=1, le=1024, description="images per forward pass")
    device: str = "cpu"
    precision: Precision = "auto"
    tta: int | None = Field(None, ge=0, le=7, description="test-time views (0-7)")
    line_width: float | None = line_width_field()
    line_width_unit: LineWidthUnit = DEFAULT_LINE_WIDTH_UNIT
    new_objects: Literal["drop", "keep"] = Field(
        "drop", description="enhance: drop predicted objects that miss the coarse label"
    )
    max_growth: float | None = Field(
        None, ge=0, le=100_000, description="enhance: px the label may grow beyond the coarse one"
    )
    layer: str | None = Field(None, min_length=1, description="layer of a vector --labels file")
    backend: Literal["local", "ray"] = "local"
    workers: int = Field(2, ge=1, le=1024, description="Ray actors")

    _dev = field_validator("device")(classmethod(lambda cls, v: check_device(v)))
    _prec = field_validator("precision", mode="before")(
        classmethod(lambda cls, v: norm_precision_value(v))
    )

    @model_validator(mode="after")
    def _one_filter(self) -> FolderJobOptions:
        check_one_filter(self.min_quality, self.target_precision)
        return self


class SceneOptions(WindowOptions):
    """Options of ``elnet scene``."""

    batch_size: int = Field(4, ge=1, le=1024, description="windows per model call")
    threshold: float = Field(0.5, ge=0, le=1, description="probability threshold")
    line_width: float | None = line_width_field()
    backend: Literal["local", "ray"] = "local"
    workers: int = Field(2, ge=1, le=1024, description="Ray actors")
    device: str = "cpu"
    precision: Precision = "auto"
    pixel_coords: PixelCoords = PIXEL_COORDS[0]  # the --quality-gpkg windows

    _dev = field_validator("device")(classmethod(lambda cls, v: check_device(v)))
    _prec = field_validator("precision", mode="before")(
        classmethod(lambda cls, v: norm_precision_value(v))
    )


class ExportOptions(_Options):
    """Options of ``elnet export``."""

    fmt: ExportFormat | None = None
    simplify: float | None = Field(None, ge=0, description="Douglas-Peucker tolerance")
    smooth: float | None = Field(None, ge=0, description="edge rounding radius")
    min_area: float = Field(0.0, ge=0, description="smallest polygon kept, px")
    chip_size: int = Field(512, ge=16, le=16384, description="chip size, px")
    geojson_crs: GeojsonCrs = GEOJSON_CRS[0]
    crs: str = LAYER_CRS[0]  # image | wgs84 | a CRS (EPSG:32615): export.layer_crs
    pixel_coords: PixelCoords = PIXEL_COORDS[0]
    centre_lines: bool | None = None  # None: on for road labels (export.centrelines)
    review_count: int | None = Field(None, ge=1, description="labels sent for review")
    max_quality: float | None = Field(None, ge=0, le=1, description="predicted IoU bound")


class ImportOptions(_Options):
    """Options of ``elnet import`` (``source``: what the export is, ``--from``, None: not
    known yet; ``--from vector``: a line layer, e.g. roads drawn in QGIS; ``layer``: the layer
    of a file with several, or several layers burnt into the same masks (``--layer``
    repeated), None: :func:`sam2elnet.data.vector_layers.default_layer`, and only
    with ``--from vector``; ``line_width`` / ``line_width_unit`` "px" and ``all_images``: only
    with ``--from vector``; ``review_set`` / ``reviewed_only``: not with ``--from
    label-studio``; ``all_images`` and ``reviewed_only`` contradict each other). The rules on
    ``source`` apply once it is known."""

    source: ImportSource | None = None
    line_width: float | None = line_width_field()
    line_width_unit: LineWidthUnit = DEFAULT_LINE_WIDTH_UNIT
    layer: str | tuple[str, ...] | None = Field(
        None, description="layer name, or names (--from vector; --layer repeated)"
    )
    review_set: Path | None = Field(None, description="the export's review record")
    all_images: bool = False
    reviewed_only: bool = False

    @field_validator("layer", mode="before")
    @classmethod
    def _layers(cls, v: object) -> object:
        """One name (str; a list of one: that name) or several (``--layer`` repeated: a tuple),
        each non-empty and given once; none (an empty list, no ``--layer``): None."""
        if v is None or isinstance(v, str):
            names: tuple[object, ...] = () if v is None else (v,)
        else:
            names = tuple(v)  # type: ignore[call-overload]
        if any(not isinstance(n, str) or not n for n in names):
            raise ValueError("--layer takes a layer name")
        if twice := sorted({str(n) for n in names if names.count(n) > 1}):
            raise ValueError(f"{', '.join(twice)} given twice; name each layer once")
        return None if not names else names[0] if len(names) == 1 else names

    @model_validator(mode="after")
    def _options_of_source(self) -> ImportOptions:
        src = self.source
        if self.layer is not None and src not in (None, "vector"):
            raise ValueError(
                "--layer applies to --from vector (GeoPackage / Shapefile / GeoJSON) only"
            )
        px = self.line_width_unit == "px"
        if src not in (None, "vector") and (self.line_width is not None or px):
            flag = "--line-width" if self.line_width is not None else "--line-width-px"
            raise ValueError(f"{flag} applies to --from vector (line layers, e.g. roads) only")
        if src not in (None, "vector") and self.all_images:
            raise ValueError("--all-images applies to --from vector (QGIS polygons) only")
        if src == "label-studio" and (self.review_set is not None or self.reviewed_only):
            flag = "--review-set" if self.review_set is not None else "--reviewed-only"
            raise ValueError(
                f"{flag} applies to --from vector, cvat and coco; a Label Studio export holds "
                "the reviewed tasks only (tasks not reviewed have no annotation and get no mask)"
            )
        if self.all_images and self.reviewed_only:
            raise ValueError(
                "--all-images (a mask for every image) and --reviewed-only (masks for the edited "
                "images only) contradict each other; give one"
            )
        return self


class StatsOptions(_Options):
    """Options of ``elnet stats``."""

    layout: DatasetLayout = "auto"
    modality: Literal["sar", "optical"] | None = None
    p_low: float = Field(1.0, ge=0, lt=100, description="lower percentile")
    p_high: float = Field(99.0, gt=0, le=100, description="upper percentile (> --p-low)")
    max_images: int = Field(0, ge=0, description="0 = all")

    @field_validator("p_high")
    @classmethod
    def _high_above_low(cls, v: float, info: Any) -> float:
        low = info.data.get("p_low")
        if low is not None and v <= low:
            raise ValueError(f"must be larger than --p-low ({low:g})")
        return v


class SynthOptions(_Options):
    """Options of ``elnet synth``."""

    task: Literal["oil-spill", "road"] = "oil-spill"
    count: int = Field(200, ge=1, le=1_000_000)
    size: int = Field(256, ge=32, le=8192, description="image side, px")
    coarse_profile: CoarseProfile = "mixed"
    coarse_severity: float = Field(0.5, ge=0, le=1)


class DegradeOptions(_Options):
    """Options of ``elnet degrade``."""

    profile: CoarseProfile = "mixed"
    severity: float = Field(0.5, ge=0, le=1)


class EvaluateOptions(_Options):
    """Options of ``elnet evaluate``."""

    tolerance: float = Field(
        BOUNDARY_TOLERANCE_PX,
        ge=0,
        le=BOUNDARY_TOLERANCE_MAX,
        description="boundary F-score tolerance, px",
    )
    max_items: int = Field(200, ge=1, description="images in the report")
    threshold: float | None = Field(None, ge=0, le=1)
    worse_by: float = Field(
        0.02, ge=0, le=1, description="IoU drop vs the baseline counted as worse (0.02 = 2 points)"
    )
    group_by: GroupBy = "none"
    tau: float | None = Field(None, gt=0, lt=1, description="IoU counted as a good label")
    road_buffer: float | None = road_buffer_field()
    road_buffer_m: float | None = road_buffer_m_field()
    line_width: float | None = line_width_field()
    line_width_unit: LineWidthUnit = DEFAULT_LINE_WIDTH_UNIT
    truth_layer: str | None = Field(
        None, min_length=1, description="layer of a vector --truth file"
    )

    _one_road_buffer = model_validator(mode="after")(settle_road_buffer)  # one unit
