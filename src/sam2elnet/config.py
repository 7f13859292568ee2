"""Run configuration: one pydantic model per job, YAML in and out, one place for defaults.

The options of the other commands (their defaults and ranges) are :mod:`sam2elnet.options`
(with :mod:`sam2elnet.option_values` and :mod:`sam2elnet.option_checks`): import them from there.
YAML files and the layering of a run's sources (defaults < file < flags) are
:mod:`sam2elnet.config_sources`.

A training run writes its :class:`TrainConfig` to ``RUN/config.yaml``; ``--resume`` reads it back so a
resumed run cannot silently change hyper-parameters. Defaults are chosen for the 2-core CPU case
(bf16 autocast, channels-last, a batch formed by pixels: 4 crops of 256 px) and stay sensible on
a GPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from sam2elnet.config_sources import layered_config, load_yaml_model
from sam2elnet.option_values import (
    TRUNK_SCALE_AUTO_KEY,
    DatasetLayout,
    ModelSize,
    Precision,
    TrunkScale,
    augment_default_text,
    auto_trunk_scale,
    check_quality_folds,
    norm_precision_value,
    road_buffer_field,
    road_buffer_m_field,
    settle_road_buffer,
    trunk_resolution,
)

__all__ = [
    "DEFAULT_IMAGE_SIZE",
    "QualityConfig",
    "TrainConfig",
    "TRAIN_QUALITY_FIELDS",
    "TRAIN_RUNTIME_FIELDS",
]


DEFAULT_IMAGE_SIZE = 256
"""``elnet train``'s training crop side (px) when ``--image-size`` is not given and there is no
``--init-model`` (which trains at its own recorded crop size: :class:`TrainConfig`
``image_size``)."""

QUALITY_FLAGS = {"crossfit_folds": "--quality-folds", "crossfit_epochs": "--quality-fold-epochs"}
"""Command-line flags of the QualityConfig fields whose names differ from them (messages)."""

TRAIN_RUNTIME_FIELDS = (
    "out",
    "resume",
    "device",
    "precision",
    "num_workers",
    "threads",
    "progress",
    "distributed",
    "channels_last",
)
""":class:`TrainConfig` fields of where and how a run runs, not what it learns: ``elnet train
--resume`` takes them from the command line (``engine.train_setup.RESUME_MAY_CHANGE``) and
``elnet cv`` leaves them out of its run's identity (``pipeline.crossval_config``)."""

TRAIN_QUALITY_FIELDS = ("quality", "fit_quality")
""":class:`TrainConfig` fields of the quality evaluator fitted after training: ``--resume`` may
change them too (changed cross-fitting epochs retrain the fold networks); ``elnet cv`` keeps them
in its identity (it reports the evaluator's Spearman)."""


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
    crossfit_folds: int = Field(
        0,
        ge=0,
        le=20,
        description="k-fold cross-fitting of the network for the evaluator (`--quality-folds`): "
        "k extra short trainings, each predicting the training images it did not see; 0 = off "
        "(validation + in-sample training predictions), else 2-20",
    )
    crossfit_epochs: int | None = Field(
        None,
        ge=1,
        description="epochs of each cross-fitting network (`--quality-fold-epochs`); None = the "
        "run's --epochs",
    )

    _folds = field_validator("crossfit_folds")(classmethod(lambda cls, v: check_quality_folds(v)))


AUTO_UPDATES = 1200
"""Optimiser updates an ``--epochs auto`` run aims at (``TrainConfig.epochs`` None): the epochs
are ``ceil(AUTO_UPDATES / steps per epoch)`` within :data:`AUTO_EPOCHS`, so a small dataset
trains for as many updates as a large one instead of ten quick passes. A training budget in
iterations rather than epochs follows nnU-Net (Isensee et al., Nature Methods 18, 2021: a fixed
250 minibatches per epoch whatever the dataset size). Measured here (docs/training.md, "More
updates"): sos-2k's 480 training images at batch 4 reach 1,200 updates in 10 epochs (the former
default) and its best epoch came at 6; roads-dev's 41 training images of a 5-fold split had 300
updates in 30 epochs and scored +11.2 road IoU points [9.3, 13.2] more at 1,320 updates (132
epochs, all 5 folds, best epochs 107-128: still improving)."""

AUTO_EPOCHS = (10, 300)
"""Fewest and most epochs ``--epochs auto`` gives: at least the former default of 10 passes (a
large dataset keeps them), at most 300 (a handful of images does not loop for hours)."""


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
    detail_width: int | None = Field(
        None, ge=4, description="width of the full-resolution head; None = the model's default"
    )
    trunk_scale: TrunkScale | None = Field(
        None,
        description="the trunk sees the image downsampled by this factor "
        "(sam2elnet.model.elnet.ModelConfig.trunk_scale): 1 = full, 2 = half resolution. None "
        "= auto (auto_trunk_scale): 1 (the paper's full-resolution trunk) with SAM2 weights or "
        "for roads (--domain roads, or detected when training starts), else "
        "TRUNK_SCALE_NO_WEIGHTS; the init model's with --init-model",
    )
    trunk: Literal["none", "last", "all"] = Field(
        "none", description="which trunk stages also train (for runs without pretrained weights)"
    )
    fraction: float = Field(1.0, gt=0, le=1, description="fraction of the labelled set to train on")
    seed: int = 0
    epochs: int | None = Field(
        None,
        ge=1,
        description="passes over the training images; None = auto: about AUTO_UPDATES optimiser "
        "updates (engine.train_schedule.auto_epochs)",
    )
    batch_size: int | None = Field(
        None,
        ge=1,
        description="images per optimiser step at any crop size; None = formed by pixels "
        "(sam2elnet.engine.train_schedule.auto_batch_size: 4 at 256 px, 2 at 512 px, 8 at "
        "<= 181 px)",
    )
    image_size: int | None = Field(
        None,
        ge=32,
        description="training crop side (px); None = the crop size the --init-model was trained "
        "at (sam2elnet.model.io.trained_crop_size; resolved when training starts and recorded "
        "in config.yaml), else DEFAULT_IMAGE_SIZE",
    )
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
    train_ids: list[str] | None = Field(
        None,
        description="train on exactly these labelled sample ids (no --fraction or validation "
        "split is drawn from others); the quality cross-fitting networks use it; None = all",
    )
    coarse_prob: float = Field(
        0.5, ge=0, le=1, description="share of samples that are enhancement (coarse given)"
    )
    coarse_prior: float = Field(
        0.0, ge=0, description="logit offset towards a given coarse label (see ModelConfig)"
    )
    precision: Precision = "auto"
    channels_last: bool | None = Field(
        None,
        description="model and inputs in channels-last memory format (faster convolutions on "
        "CPU, same results up to rounding); None = on unless SAM2ELNET_CHANNELS_LAST=0",
    )
    device: str = Field("cpu", description="cpu | cuda | cuda:N")
    num_workers: int | None = Field(None, ge=0, description="DataLoader workers; None = automatic")
    threads: int | None = Field(
        None, ge=1, description="torch threads; None = all cores (or $SAM2ELNET_THREADS)"
    )
    layout: DatasetLayout = "auto"
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
        "data (sam2elnet.data.norm_fit.fit_normalization)",
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
    modality: Literal["auto", "sar", "optical"] = Field(
        "auto",
        description="sar reads grey-as-RGB as one band, keeps 8-bit brightness (fixed 0..255) "
        "and names non-road labels 'oil spill'; optical keeps every band with a per-image "
        "stretch; auto = from the layout, dataset.json or the images (sam2elnet.data.modality)",
    )
    domain: Literal["auto", "roads", "other"] = Field(
        "auto",
        description="roads switch on road measures and the full-resolution trunk; auto "
        "= detected from the layout, dataset.json or the shape of the labels "
        "(sam2elnet.data.domain)",
    )
    topology_loss: Literal["auto", "none", "cldice"] = Field(
        "auto",
        description="topology-aware loss term (soft clDice, Shit et al. CVPR 2021); auto = none "
        "in every domain (on roads-dev it cost 3.9 road IoU points without SAM2 weights, "
        "docs/training.md); cldice turns it on",
    )
    topology_weight: float = Field(0.5, ge=0, le=10, description="weight of the clDice term")
    topology_iterations: int = Field(
        10, ge=1, le=100, description="soft-skeleton iterations (> half the widest road, px)"
    )
    aug_scale: tuple[float, float] | None = Field(
        None,
        description="crop scale range low,high (log-uniform; >1 zooms out); None = domain "
        f"default ({augment_default_text('scale')})",
    )
    aug_photometric: float | None = Field(
        None,
        ge=0,
        le=5,
        description="brightness/contrast/gamma strength; None = domain default "
        f"({augment_default_text('photometric')})",
    )
    aug_band_jitter: float | None = Field(
        None,
        ge=0,
        le=0.5,
        description="per-band gain/offset jitter; None = domain default "
        f"({augment_default_text('band_jitter')})",
    )
    # road data: the buffer of the validation road measures (metrics.csv val_road_*), px; or
    # in ground metres (replaces road_buffer; each validation image's px from its pixel size)
    road_buffer: float | None = road_buffer_field()
    road_buffer_m: float | None = road_buffer_m_field()
    quality: QualityConfig = Field(default_factory=QualityConfig)

    # one unit (option_values.road_buffer_units): px None is ROAD_BUFFER_PX unless metres are
    # given; both given is a ValueError, except an earlier version's config.yaml (ROAD_BUFFER_PX
    # beside metres)
    _one_road_buffer = model_validator(mode="after")(settle_road_buffer)

    @model_validator(mode="after")
    def _auto_trunk_scale(self) -> TrainConfig:
        # resolved here when the weights or a given --domain decide it (so config.yaml and cv's
        # fold records hold the scale built); with --domain auto and no weights, training
        # resolves it once the domain is detected (resolved_trunk_scale)
        if self.trunk_scale is None and self.init_model is None:
            if self.weights or self.domain != "auto":
                self.trunk_scale = auto_trunk_scale(self.weights, self.domain == "roads")
            self._trunk_scale_auto = True
        return self

    _trunk_scale_auto: bool = PrivateAttr(False)
    # --resume --epochs K below the saved epochs: end the run after epoch K (engine.train_setup.
    # resumed_config); the learning-rate schedule stays that of the saved epochs
    _stop_after: int | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _default_image_size(self) -> TrainConfig:
        # without --init-model the default is fixed now; with one, training resolves it from the
        # model file (engine.train_setup.resolve_image_size)
        if self.image_size is None and self.init_model is None:
            self.image_size = DEFAULT_IMAGE_SIZE
        return self

    @model_validator(mode="wrap")
    @classmethod
    def _recorded_auto(cls, data: Any, handler: Any) -> TrainConfig:
        # TRUNK_SCALE_AUTO_KEY of config.yaml (to_yaml): not a field, so fold records and the
        # resume comparison see the scale alone
        auto = isinstance(data, dict) and bool(data.get(TRUNK_SCALE_AUTO_KEY))
        if isinstance(data, dict) and TRUNK_SCALE_AUTO_KEY in data:
            data = {k: v for k, v in data.items() if k != TRUNK_SCALE_AUTO_KEY}
        cfg = handler(data)
        if auto:
            cfg._trunk_scale_auto = True
        return cfg

    def resolved_trunk_scale(self, roads: bool) -> int | None:
        """The trunk scale to build: the given or resolved one, else the auto rule for the
        detected domain (``roads``); None with ``--init-model`` (the model file's)."""
        if self.trunk_scale is not None or self.init_model is not None:
            return self.trunk_scale
        return auto_trunk_scale(self.weights, roads)

    def trunk_scale_note(self, roads: bool, built: int | None = None) -> str:
        """One log line: the trunk's resolution and why (auto, given or the ``--init-model``'s).
        ``built``: the scale of the network built (1 or 2; with ``--init-model`` the model
        file's), None when not known yet."""
        scale = self.resolved_trunk_scale(roads)
        if scale is None:
            if built is None:
                return "trunk resolution: the --init-model's"
            what = trunk_resolution(built)
            return f"trunk at {what} resolution (the --init-model's; --trunk-scale 1 | 2 overrides)"
        what = trunk_resolution(scale)
        if not self._trunk_scale_auto:
            return f"trunk at {what} resolution (--trunk-scale {scale})"
        if self.weights:
            return f"trunk at {what} resolution (auto: SAM2 weights given, the paper's design)"
        if roads:
            return (
                f"trunk at {what} resolution (auto for roads: thin roads lose quality with a "
                "half-resolution trunk, docs/results.md)"
            )
        return (
            f"trunk at {what} resolution (auto without SAM2 weights: the same held-out SOS label "
            "quality in about half the time, docs/results.md; --trunk-scale 1 for full)"
        )

    @field_validator("weights", mode="before")
    @classmethod
    def _none_weights(cls, v: Any) -> Any:
        if v is None or (isinstance(v, str) and v.strip().lower() in {"", "none", "null"}):
            return None
        return str(v)

    @field_validator("epochs", "batch_size", mode="before")
    @classmethod
    def _auto_epochs(cls, v: Any) -> Any:  # --epochs auto / `batch_size: auto` in a config file
        return None if isinstance(v, str) and v.strip().lower() == "auto" else v

    @field_validator("precision", mode="before")
    @classmethod
    def _norm_precision(cls, v: Any) -> Any:
        return norm_precision_value(v)

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
        """The configuration as YAML text.

        Returns:
            YAML with the fields in declaration order (paths as strings); last,
            ``trunk_scale_auto: true`` when the auto rule resolved ``trunk_scale``.
        """
        import yaml  # lazy: only runs that save a config need it (keeps ``elnet --help`` fast)

        d = self.model_dump(mode="json")
        if self._trunk_scale_auto and self.trunk_scale is not None:
            d[TRUNK_SCALE_AUTO_KEY] = True  # resolved by the auto rule, not given
        return yaml.safe_dump(d, sort_keys=False)

    def save(self, path: str | Path) -> Path:
        """Write the config atomically as YAML.

        Args:
            path: The YAML file (``RUN/config.yaml`` for a run).

        Returns:
            ``path`` as a Path.

        Raises:
            UserError: ``path`` is a folder, or the write failed (``DiskFullError``: disk full);
                nothing is left under ``path`` then.
        """
        from sam2elnet.utils.atomic import write_text_atomic

        return write_text_atomic(path, self.to_yaml())

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        """Read a run's YAML config (``RUN/config.yaml``).

        A file without ``trunk_scale`` was saved before the option existed, when the trunk always
        ran at full resolution: it is read as ``trunk_scale: 1`` (not as auto), so ``--resume``
        continues such a run as it was trained.

        Args:
            path: The YAML file.

        Returns:
            The validated :class:`TrainConfig`.

        Raises:
            UserError: missing file, bad YAML or bad fields (naming the file).
        """
        return load_yaml_model(cls, path, defaults={"trunk_scale": 1})

    @classmethod
    def from_sources(
        cls,
        options: dict[str, Any],
        *,
        config: str | Path | None = None,
        resume: bool = False,
        progress: bool = True,
        fit_quality: bool | None = None,
        quality: dict[str, Any] | None = None,
        flags: dict[str, str] | None = None,
    ) -> TrainConfig:
        """A run's configuration from its layered sources (what ``elnet train`` does):
        defaults < the YAML file ``config`` (or, with ``resume``, the run's ``OUT/config.yaml``)
        < ``options`` < ``quality``. Arguments, layers and errors (``UserError``, one line):
        :func:`sam2elnet.config_sources.layered_config`.

        Raises:
            UserError: the YAML file is missing or unreadable, or an option is out of range.
        """
        return layered_config(
            cls,
            options,
            config=config,
            resume=resume,
            progress=progress,
            fit_quality=fit_quality,
            quality=quality,
            flags=flags,
        )
