"""Run configuration: one pydantic model per job, YAML in and out, one place for defaults.

A training run writes its :class:`TrainConfig` to ``RUN/config.yaml``; ``--resume`` reads it back so a
resumed run cannot silently change hyper-parameters. Defaults are chosen for the 2-core CPU case
(bf16 autocast, batch 8, 256 px) and stay sensible on a GPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sam2elnet.errors import UserError

ModelSize = Literal["micro", "tiny", "small", "base_plus", "large"]


class QualityConfig(BaseModel):
    """Settings of the label quality evaluator (see :mod:`sam2elnet.model.quality`)."""

    model_config = ConfigDict(extra="forbid")

    tau: float = Field(0.7, gt=0, lt=1, description="a label is 'good' when its IoU >= tau")
    tta: int = Field(
        0,
        ge=0,
        le=7,
        description="test-time views for agreement features; each costs one more forward pass "
        "(on SOS-dev they did not improve the evaluator: docs/training.md)",
    )
    pca_dim: int = Field(8, ge=0, le=64, description="embedding components fed to the learned head")
    ridge_alpha: float = Field(1.0, gt=0)
    folds: int = Field(5, ge=2, le=20, description="cross-fitting folds for out-of-fold scores")
    train_samples: int = Field(
        256,
        ge=0,
        le=1_000_000,
        description="training images also predicted for the evaluator (in-sample, marked as "
        "such; 0 = validation images only); each costs one inference per mode",
    )
    default_target_precision: float = Field(0.9, gt=0, le=1)


class TrainConfig(BaseModel):
    """Everything ``elnet train`` needs; saved as ``RUN/config.yaml``."""

    model_config = ConfigDict(extra="forbid")

    data: Path = Field(..., description="dataset root (any layout sam2elnet.data.discover knows)")
    out: Path = Field(..., description="run folder: model.pt, last.pt, config.yaml, metrics.csv")
    weights: str | None = Field(None, description="SAM2 checkpoint for the trunk; None = random")
    init_model: Path | None = Field(
        None,
        description="model file from a previous `elnet train` to start from (fine-tuning on "
        "corrected labels); its architecture wins over size/adapter_dim/trunk/weights",
    )
    size: ModelSize = "tiny"
    adapter_dim: int | None = Field(None, description="None = the model's default")
    trunk: Literal["none", "last", "all"] = Field(
        "none", description="which trunk stages also train (for runs without pretrained weights)"
    )
    fraction: float = Field(1.0, gt=0, le=1, description="fraction of the labelled set to train on")
    seed: int = 0
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(8, ge=1)
    image_size: int = Field(256, ge=32)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_fraction: float = Field(
        0.05, ge=0, lt=1, description="share of steps for linear warm-up"
    )
    min_lr_ratio: float = Field(0.02, ge=0, le=1, description="cosine decays to lr * this")
    grad_clip: float = Field(1.0, gt=0)
    val_fraction: float = Field(
        0.15, ge=0, lt=1, description="share of the training part kept for validation"
    )
    max_train: int | None = Field(None, ge=1, description="cap on training samples (smoke runs)")
    coarse_prob: float = Field(
        0.5, ge=0, le=1, description="share of samples that are enhancement (coarse given)"
    )
    coarse_prior: float = Field(
        0.0, ge=0, description="logit offset towards a given coarse label (see ModelConfig)"
    )
    precision: Literal["bf16", "32"] = "bf16"
    device: str = Field("cpu", description="cpu | cuda | cuda:N")
    num_workers: int | None = Field(None, ge=0, description="DataLoader workers; None = automatic")
    threads: int | None = Field(
        None, ge=1, description="torch threads; None = all cores (or $SAM2ELNET_THREADS)"
    )
    layout: str = "auto"
    split: list[str] | None = Field(
        None,
        description="dataset split folders to train on (train/val/test); None = the 'train' split "
        "of a split-aware layout, or everything in a flat one",
    )
    sensor: list[str] | None = None
    bands: list[int] | None = Field(
        None,
        description="file bands (1-based) to train on, e.g. [4, 3, 2]; recorded in the model and "
        "used again by annotate/enhance/scene; None = all",
    )
    positive_values: list[float] | None = Field(
        None,
        description="mask value(s) that mean 'object' in class-index masks (e.g. [2]); None = "
        "the documented rule of sam2elnet.data.masks.mask_encoding",
    )
    norm_stats: Path | None = Field(
        None,
        description="normalisation from `elnet stats --out` JSON; None = chosen from the training "
        "data (sam2elnet.data.normalize.fit_normalization)",
    )
    resume: bool = False
    progress: bool = True
    fit_quality: bool = True
    distributed: bool | None = Field(
        None, description="None = from WORLD_SIZE; True forces DDP even with one process (tests)"
    )
    loss_boundary: float = 2.0
    loss_deep_supervision: float = 0.4
    loss_edge: float = 0.5
    domain: Literal["auto", "roads", "other"] = Field(
        "auto",
        description="roads switch on road measures, the clDice loss and road augmentation; auto "
        "= detected from the layout, dataset.json or the shape of the labels "
        "(sam2elnet.data.domain)",
    )
    topology_loss: Literal["auto", "none", "cldice"] = Field(
        "auto",
        description="topology-aware loss term (soft clDice, Shit et al. CVPR 2021); auto = cldice "
        "for roads, none otherwise",
    )
    topology_weight: float = Field(0.5, ge=0, le=10, description="weight of the clDice term")
    topology_iterations: int = Field(
        10, ge=1, le=100, description="soft-skeleton iterations (> half the widest road, px)"
    )
    aug_scale: tuple[float, float] | None = Field(
        None,
        description="crop scale range low,high (log-uniform; >1 zooms out); None = domain "
        "default (0.75,1.33; roads 0.5,2)",
    )
    aug_photometric: float | None = Field(
        None,
        ge=0,
        le=5,
        description="brightness/contrast/gamma strength; None = domain default (1; roads 2)",
    )
    aug_band_jitter: float | None = Field(
        None,
        ge=0,
        le=0.5,
        description="per-band gain/offset jitter; None = domain default (0; roads 0.05)",
    )
    quality: QualityConfig = Field(default_factory=QualityConfig)

    @field_validator("weights", mode="before")
    @classmethod
    def _none_weights(cls, v: Any) -> Any:
        if v is None or (isinstance(v, str) and v.strip().lower() in {"", "none", "null"}):
            return None
        return str(v)

    @field_validator("precision", mode="before")
    @classmethod
    def _norm_precision(cls, v: Any) -> Any:
        s = str(v).lower()
        return {"fp32": "32", "float32": "32", "bfloat16": "bf16", "bf16-mixed": "bf16"}.get(s, s)

    @field_validator("aug_scale", mode="before")
    @classmethod
    def _scale_range(cls, v: Any) -> Any:
        if v is None or (isinstance(v, str) and v.strip().lower() in {"", "none", "auto"}):
            return None
        if isinstance(v, str):
            v = [x for x in v.replace(" ", "").split(",") if x]
        vals = [float(x) for x in v]
        if len(vals) != 2 or not (0.1 <= vals[0] <= vals[1] <= 10):
            raise ValueError("give two numbers low,high with 0.1 <= low <= high <= 10, e.g. 0.5,2")
        return tuple(vals)

    def to_yaml(self) -> str:
        """YAML text (paths as strings)."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    def save(self, path: str | Path) -> Path:
        """Write the config atomically as YAML."""
        from sam2elnet.utils.atomic import write_text_atomic

        return write_text_atomic(path, self.to_yaml())

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        """Read a YAML config; UserError naming the file on bad YAML or bad fields."""
        return load_yaml_model(cls, path)

    @classmethod
    def from_sources(
        cls,
        options: dict[str, Any],
        *,
        config: str | Path | None = None,
        resume: bool = False,
        progress: bool = True,
        fit_quality: bool = True,
        quality: dict[str, Any] | None = None,
        flags: dict[str, str] | None = None,
    ) -> TrainConfig:
        """A run's configuration from its layered sources (what ``elnet train`` does).

        Layers, later ones win: the YAML file ``config`` (else, with ``resume``, the run's own
        ``OUT/config.yaml``, so a resumed run keeps its hyper-parameters); then ``options``
        (field name -> value; None means "not given" and keeps the layer below); then
        ``quality`` (QualityConfig fields, e.g. ``tta``, ``tau``; None values ignored).

        Args:
            options: Field values as given on the command line (``out`` locates the run).
            config: YAML TrainConfig to start from.
            resume: Continue the run in ``options["out"]``.
            progress: Show progress bars.
            fit_quality: False skips fitting the quality evaluator (``--no-quality``).
            quality: Overrides of the quality evaluator's settings.
            flags: Field name -> command-line flag for messages (default ``--field-name``).

        Returns:
            The validated configuration.

        Raises:
            UserError: unreadable ``config``; ``--resume`` on a folder without a run and no
                ``data``; ``data`` or ``out`` missing from every layer; a value out of range
                (one line naming the flag, the value and the allowed range).
        """
        out = options.get("out")
        base: dict[str, Any] = {}
        if config is not None:
            base = cls.load(config).model_dump()
        elif resume and out is not None and (Path(out) / "config.yaml").is_file():
            base = cls.load(Path(out) / "config.yaml").model_dump()
        given = {k: v for k, v in options.items() if v is not None}
        merged: dict[str, Any] = {**base, **given, "resume": resume, "progress": progress}
        if not fit_quality:
            merged["fit_quality"] = False
        q = dict(merged.get("quality") or {})
        q.update({k: v for k, v in (quality or {}).items() if v is not None})
        if q:
            merged["quality"] = q
        if resume and out is not None and merged.get("data") is None:
            raise UserError(
                "nothing to resume: no run (config.yaml) in this folder; give --data to start a "
                "new run, or point --out at an existing run",
                out,
            )
        for key in ("data", "out"):
            if merged.get(key) is None:
                flag = (flags or {}).get(key, f"--{key}")
                raise UserError(f"{flag} is required (or give it in --config)")
        try:
            return cls.model_validate(merged)
        except ValidationError as err:
            raise option_error(cls, err, flags) from None


def load_yaml_model(cls: type[BaseModel], path: str | Path) -> Any:
    """Parse ``path`` as YAML into pydantic model ``cls`` with user-facing errors."""
    p = Path(path)
    if not p.is_file():
        raise UserError("config file does not exist; check the path", p)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise UserError("not a text (YAML) file; give a YAML config", p) from None
    except yaml.YAMLError as err:
        raise UserError(f"not valid YAML ({err}); fix or delete the file", p) from err
    if not isinstance(raw, dict):
        raise UserError("expected a mapping of option: value; fix or delete the file", p)
    try:
        return cls.model_validate(raw)
    except ValidationError as err:
        msgs = "; ".join(
            f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in err.errors()[:5]
        )
        raise UserError(f"invalid configuration ({msgs})", p) from err


# ----------------------------------------------------------------------------- command options
# One declaration per option: its default and its allowed range or values. The CLI takes its
# defaults from these models (``option_default``) and validates every command's options through
# them (``check_options``) before any work starts; the library front doors accept the same values.

Precision = Literal["bf16", "32"]


def _norm_precision_value(v: Any) -> Any:
    s = str(v).lower()
    return {"fp32": "32", "float32": "32", "bfloat16": "bf16", "bf16-mixed": "bf16"}.get(s, s)


def _check_device(v: str) -> str:
    import re

    if not re.fullmatch(r"cpu|cuda(:\d+)?|mps", str(v)):
        raise ValueError("must be cpu, cuda, cuda:N or mps")
    return str(v)


_MEMORY_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_MEMORY_UNITS.update({"KI": 2**10, "MI": 2**20, "GI": 2**30, "TI": 2**40})


def memory_bytes(value: Any) -> int:
    """Bytes from ``"1.5G"``, ``"800M"``, ``"512MiB"``, ``"2GB"`` or a plain number of bytes.

    Units are decimal (K = 1e3, M = 1e6, G = 1e9, T = 1e12) or binary with an ``i`` (KiB, MiB,
    GiB, TiB); a trailing ``B`` is optional, case does not matter. The ``--max-memory`` format.

    Raises:
        ValueError: not a size, or not positive.
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
    precision: Precision = "bf16"
    tta: int | None = Field(None, ge=0, le=7, description="test-time views (0-7)")
    line_width: float | None = Field(None, gt=0, description="buffer for line labels, map units")
    max_memory: int = Field(
        1_500_000_000,
        description="memory budget in bytes (1.5G, 800M); larger images are predicted in windows",
    )

    _dev = field_validator("device")(classmethod(lambda cls, v: _check_device(v)))
    _mem = field_validator("max_memory", mode="before")(classmethod(lambda cls, v: memory_bytes(v)))
    _prec = field_validator("precision", mode="before")(
        classmethod(lambda cls, v: _norm_precision_value(v))
    )


class SceneOptions(WindowOptions):
    """Options of ``elnet scene``."""

    tile: int = Field(1024, ge=16, le=16384, description="window size, px")
    batch_size: int = Field(4, ge=1, le=1024, description="windows per model call")
    threshold: float = Field(0.5, ge=0, le=1, description="probability threshold")
    line_width: float | None = Field(None, gt=0)
    backend: Literal["local", "ray"] = "local"
    workers: int = Field(2, ge=1, le=1024, description="Ray actors")
    device: str = "cpu"
    precision: Precision = "bf16"

    _dev = field_validator("device")(classmethod(lambda cls, v: _check_device(v)))
    _prec = field_validator("precision", mode="before")(
        classmethod(lambda cls, v: _norm_precision_value(v))
    )


class ExportOptions(_Options):
    """Options of ``elnet export``."""

    fmt: Literal["geojson", "gpkg", "shp", "coco", "label-studio"] | None = None
    simplify: float | None = Field(None, ge=0, description="Douglas-Peucker tolerance")
    smooth: float | None = Field(None, ge=0, description="edge rounding radius")
    min_area: float = Field(0.0, ge=0, description="smallest polygon kept, px")
    chip_size: int = Field(512, ge=16, le=16384, description="chip size, px")


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


class ExperimentOptions(_Options):
    """Options of ``elnet experiment`` checked before the protocol starts."""

    fraction: float = Field(0.3, gt=0, lt=1)
    epochs: int = Field(10, ge=1)
    downstream_epochs: int = Field(10, ge=1)
    downstream_steps: int | None = Field(None, ge=1)
    image_size: int = Field(256, ge=32)
    batch_size: int = Field(8, ge=1, le=1024)
    max_train: int | None = Field(None, ge=1)
    max_test: int | None = Field(None, ge=1)
    size: ModelSize = "tiny"
    trunk: Literal["none", "last", "all"] = "none"
    min_quality: float | None = Field(None, ge=0, le=1)
    target_precision: float | None = Field(None, gt=0, le=1)
    downstream_width: int = Field(16, ge=4, le=256)
    downstream_depth: int = Field(4, ge=1, le=6)
    precision: Literal["bf16", "fp32"] = "bf16"
    device: str = "cpu"
    coarse_profile: CoarseProfile = Field(
        "freehand", description="simulated coarse labels of the enhancement table (held out)"
    )
    coarse_severity: float = Field(0.5, ge=0, le=1)

    _dev = field_validator("device")(classmethod(lambda cls, v: _check_device(v)))


def option_default(model: type[BaseModel], name: str) -> Any:
    """The declared default of option ``name`` (the CLI's default comes from here)."""
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
    model: type[BaseModel], flags: dict[str, str] | None = None, **values: Any
) -> Any:
    """Validate command options against ``model``; return the validated model.

    Args:
        model: one of the option models above.
        flags: option name -> flag shown in messages (default ``--name-with-dashes``).
        **values: the options as given (None for "not given" keeps the declared default).

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
    """One-line UserError for the first error of ``err`` (raised validating ``model``), naming
    the command-line flag, the value given and the allowed range. Nested fields (``quality.tta``)
    are looked up in the nested model."""
    e = err.errors()[0]
    loc = [str(x) for x in e["loc"]]
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
    extra = f"; {allowed}" if allowed and allowed not in msg else ""
    return UserError(f"invalid value for {flag}: {e.get('input')!r} ({msg}{extra})")
