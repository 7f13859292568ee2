"""Command options: one declaration per option, its default and its allowed range or values.

The CLI takes its defaults from these models (:func:`option_default`) and validates every
command's options through them (:func:`check_options`) before any work starts; the library front
doors accept the same values, so an option's default and range are written once. Run
configurations (``TrainConfig``) are :mod:`sam2elnet.config`.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sam2elnet.errors import UserError

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

PIXEL_COORDS_HELP = (
    "Polygons of rasters without a CRS (PNG, plain TIFF): gdal (x = column, y = row, as "
    "gdal_polygonize) or qgis (y = -row: where QGIS shows the image, so they overlay it)."
)


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
    """The one declaration of the ``road_buffer`` option (default :data:`ROAD_BUFFER_PX`,
    0 < px <= :data:`ROAD_BUFFER_MAX`) for every options model that has it."""
    return Field(
        ROAD_BUFFER_PX,
        gt=0,
        le=ROAD_BUFFER_MAX,
        description="road measures: centre-line buffer tolerance, px",
    )


def road_buffer_m_field() -> Any:
    """The one declaration of the ``road_buffer_m`` option (``elnet evaluate --road-buffer-m``:
    the road buffer in metres, None: given in px; 0 < m <= :data:`ROAD_BUFFER_M_MAX`)."""
    return Field(
        None,
        gt=0,
        le=ROAD_BUFFER_M_MAX,
        description="road measures: centre-line buffer tolerance, metres (pixel size from the "
        "prediction's CRS and transform)",
    )


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
    import re

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
    import math
    import re

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
        raise ValueError("must be a size of at least 1M, e.g. 1.5G or 800M")
    return int(n)


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


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WindowOptions(_Options):
    """Sliding-window settings shared by ``scene`` and the large-scene path of annotate/enhance."""

    tile: int = Field(1024, ge=32, le=16384, description="window size, px")
    overlap: int = Field(128, ge=0, le=8192, description="window overlap, px (< tile)")

    @field_validator("overlap")
    @classmethod
    def _overlap_below_tile(cls, v: int, info: Any) -> int:
        tile = info.data.get("tile")
        if tile is not None and v >= tile:
            raise ValueError(f"must be smaller than --tile ({tile})")
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
    line_width_unit: Literal["map", "px"] = "map"
    new_objects: Literal["drop", "keep"] = Field(
        "drop", description="enhance: drop predicted objects that miss the coarse label"
    )
    max_growth: float | None = Field(
        None, ge=0, le=100_000, description="enhance: px the label may grow beyond the coarse one"
    )
    max_memory: int = Field(
        1_500_000_000,
        description="memory budget in bytes (1.5G, 800M); larger images are predicted in windows",
    )
    backend: Literal["local", "ray"] = "local"
    workers: int = Field(2, ge=1, le=1024, description="Ray actors")

    _dev = field_validator("device")(classmethod(lambda cls, v: check_device(v)))
    _mem = field_validator("max_memory", mode="before")(classmethod(lambda cls, v: memory_bytes(v)))
    _prec = field_validator("precision", mode="before")(
        classmethod(lambda cls, v: norm_precision_value(v))
    )

    @model_validator(mode="after")
    def _one_filter(self) -> FolderJobOptions:
        check_one_filter(self.min_quality, self.target_precision)
        return self


class SceneOptions(WindowOptions):
    """Options of ``elnet scene``."""

    tile: int = Field(1024, ge=16, le=16384, description="window size, px")
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

    fmt: Literal["geojson", "gpkg", "shp", "coco", "label-studio"] | None = None
    simplify: float | None = Field(None, ge=0, description="Douglas-Peucker tolerance")
    smooth: float | None = Field(None, ge=0, description="edge rounding radius")
    min_area: float = Field(0.0, ge=0, description="smallest polygon kept, px")
    chip_size: int = Field(512, ge=16, le=16384, description="chip size, px")
    geojson_crs: Literal["source", "wgs84"] = "source"
    pixel_coords: PixelCoords = PIXEL_COORDS[0]
    centre_lines: bool | None = None  # None: on for road labels (export.centrelines)


class StatsOptions(_Options):
    """Options of ``elnet stats``."""

    layout: Literal["auto", "sos", "chn6", "generic"] = "auto"
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


# Every coarse-label profile of sam2elnet.data.coarse.PROFILES ("freehand" is evaluation-only).
CoarseProfile = Literal[
    "polygon", "sloppy", "blocky", "blurred", "shifted", "strip", "mixed", "freehand"
]


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

    tolerance: float = Field(2.0, ge=0, le=1000, description="boundary tolerance, px")
    max_items: int = Field(200, ge=1, description="images in the report")
    threshold: float | None = Field(None, ge=0, le=1)
    worse_by: float = Field(
        0.02, ge=0, le=1, description="IoU drop vs the baseline counted as worse (0.02 = 2 points)"
    )
    group_by: GroupBy = "none"
    tau: float | None = Field(None, gt=0, lt=1, description="IoU counted as a good label")
    road_buffer: float = road_buffer_field()
    road_buffer_m: float | None = road_buffer_m_field()
    line_width: float | None = line_width_field()
    line_width_unit: Literal["map", "px"] = "map"


PATH_OPTIONS = frozenset({"data", "weights", "init_model", "norm_stats"})
"""Options that name a file or folder (:func:`same_setting`: one setting however written)."""


def same_setting(key: str, old: Any, new: Any) -> bool:
    """Whether a run's recorded option value ``old`` and a re-run's ``new`` are one setting:
    equal, or for :data:`PATH_OPTIONS` the same file or folder written another way (relative /
    absolute, ``~``; both resolved against the working directory). The one rule of
    ``elnet train --resume`` and of ``elnet cv`` into a folder holding a run."""
    if old == new:
        return True
    if not (isinstance(old, str) and isinstance(new, str) and key in PATH_OPTIONS):
        return False
    from pathlib import Path

    return Path(old).expanduser().resolve() == Path(new).expanduser().resolve()


def setting_change(key: str, new: Any, old: Any, flag: str | None = None) -> str:
    """A changed option as a resume refusal names it: ``--epochs 5 (saved: 10)`` (``flag``:
    default ``--`` + ``key`` with dashes)."""
    return f"{flag or '--' + key.replace('_', '-')} {new!r} (saved: {old!r})"


def option_default(model: type[BaseModel], name: str) -> Any:
    """The declared default of an option (the CLI's default comes from here).

    Args:
        model: One of the options models of this module.
        name: The field name.

    Returns:
        The field's default.
    """
    return model.model_fields[name].default


def _allowed(model: type[BaseModel], name: str) -> str:
    """'allowed: 0 <= x <= 7' from the field's constraints (or the choices of a Literal)."""
    import typing

    f = model.model_fields.get(name)
    if f is None:
        return ""
    lo = hi = None
    for m in f.metadata:
        for attr, sign in (("ge", "<="), ("gt", "<")):
            if getattr(m, attr, None) is not None:
                lo = f"{getattr(m, attr):g} {sign} "
        for attr, sign in (("le", "<="), ("lt", "<")):
            if getattr(m, attr, None) is not None:
                hi = f" {sign} {getattr(m, attr):g}"
    if lo or hi:
        return f"allowed: {lo or ''}x{hi or ''}"
    args = [a for a in typing.get_args(f.annotation) if a is not type(None)]
    lits = [v for a in args if typing.get_origin(a) is Literal for v in typing.get_args(a)]
    if not lits and typing.get_origin(f.annotation) is Literal:
        lits = list(typing.get_args(f.annotation))
    if lits:
        return "choose " + " | ".join(str(v) for v in lits)
    return ""


def check_options(
    model: type[BaseModel], /, flags: dict[str, str] | None = None, **values: Any
) -> Any:
    """Validate command options against ``model``; return the validated model.

    Args:
        model: one of the option models above (positional, so an option may be called
            ``model``, as ``elnet serve --model`` is).
        flags: option name -> flag shown in messages (default ``--name-with-dashes``).
        **values: the options as given (None for "not given" keeps the declared default).

    Returns:
        The validated ``model`` instance (defaults filled in, values normalised).

    Raises:
        UserError: ``invalid value for --tta: 99 (input should be less than or equal to 7;
            allowed: 0 <= x <= 7)`` for the first bad option.
    """
    given = {k: v for k, v in values.items() if v is not None}
    try:
        return model.model_validate(given)
    except ValidationError as err:
        raise option_error(model, err, flags) from None


def option_error(
    model: type[BaseModel], err: ValidationError, flags: dict[str, str] | None = None
) -> UserError:
    """A one-line error for the first problem of a validation error.

    Names the command-line flag, the value given and the allowed range. Nested fields
    (``quality.tta``) are looked up in the nested model.

    Args:
        model: The model that was validated.
        err: Its ``pydantic.ValidationError``.
        flags: Field name -> flag shown in messages (default ``--name-with-dashes``).

    Returns:
        The :class:`~sam2elnet.errors.UserError` to raise, e.g. ``invalid value for --tta: 99
        (input should be less than or equal to 7; allowed: 0 <= x <= 7)``.
    """
    e = err.errors()[0]
    loc = [str(x) for x in e["loc"] if not isinstance(x, int)]  # no item index of a list option
    if not loc:  # a rule across options (a model validator): its message names the flags
        return UserError(str(e["msg"]).removeprefix("Value error, "))
    owner: type[BaseModel] = model
    for part in loc[:-1]:
        ann = owner.model_fields[part].annotation if part in owner.model_fields else None
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            owner = ann
    name = loc[-1] if loc else ""
    flag = (flags or {}).get(name, "--" + name.replace("_", "-"))
    msg = str(e["msg"]).removeprefix("Value error, ")
    msg = msg[:1].lower() + msg[1:]
    allowed = _allowed(owner, name)
    if allowed.startswith("choose ") and e.get("type") == "literal_error":
        detail = allowed  # pydantic's "input should be 'a', 'b' or 'c'" says the same again
    else:
        detail = msg + (f"; {allowed}" if allowed and allowed not in msg else "")
    return UserError(f"invalid value for {flag}: {e.get('input')!r} ({detail})")
