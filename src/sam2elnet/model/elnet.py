"""SAM2-ELNet: frozen SAM2 Hiera trunk + adapters + input stem + mask encoder + edge U-decoder.

One network serves both tasks of the paper: given a coarse label it *enhances* it; given none
(``has_coarse = 0``) it *annotates* from the image alone. Training mixes the two in every batch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from transformers import Sam2HieraDetModel

from sam2elnet.model.adapters import build_adapters
from sam2elnet.model.decoder import EdgeUDecoder
from sam2elnet.model.hiera import HIERA_SPECS, build_trunk, load_encoder_weights
from sam2elnet.model.mask_encoder import MaskEncoder
from sam2elnet.model.stem import InputStem
from sam2elnet.model.weights_cache import find_cached_weights

log = logging.getLogger(__name__)

PAD_MULTIPLE = 32  # stride 4 patch embedding x 8-token windows at stage 1 (trunk_scale 1)


class ModelConfig(BaseModel):
    """Everything needed to rebuild a SAM2-ELNet; saved inside every model file."""

    model_config = ConfigDict(extra="forbid")

    size: Literal["micro", "tiny", "small", "base_plus", "large"] = "tiny"
    in_bands: int = Field(3, ge=1, le=64)
    adapter_dim: int = Field(32, ge=0, description="adapter bottleneck width; 0 disables adapters")
    decoder_dim: int = Field(64, ge=8)
    detail_width: int = Field(
        16,
        ge=4,
        description="width of the full-resolution head; 8 (the light head) gave the same label "
        "quality on 400 held-out SOS images and 4-10 % faster inference (docs/results.md, "
        "docs/benchmarks.md Levers), too little to change the default on one seed",
    )
    mask_width: int = Field(16, ge=4)
    mask_into_trunk: bool = True
    trunk_scale: Literal[1, 2] = Field(
        1,
        description="the trunk sees the image downsampled by this factor (2 x 2 mean) and its "
        "features are upsampled back to strides 4-32 for the decoder; the stem, mask encoder "
        "and full-resolution head keep full resolution. 2 costs a quarter of the trunk's work "
        "(docs/benchmarks.md, docs/results.md)",
    )
    coarse_prior: float = Field(
        0.0,
        ge=0.0,
        description="logit offset +-p from a given coarse label: enhancement starts from the "
        "coarse label and learns corrections to it; 0 disables",
    )
    trunk_trainable: Literal["none", "last", "all"] = "none"
    weights: str | None = Field(None, description="SAM2 encoder weights file; None = random init")
    normalization: dict[str, Any] = Field(default_factory=dict, description="data-layer settings")
    task: str = ""


@dataclass
class ELNetOutput:
    """Network outputs (all logits; apply a sigmoid for probabilities)."""

    logits: torch.Tensor  # (B, 1, H, W)
    side_logits: list[torch.Tensor]  # strides 32, 16, 8, 4
    edge_logits: torch.Tensor  # (B, 1, H, W)
    embedding: torch.Tensor  # (B, D) for the quality evaluator


class SAM2ELNet(nn.Module):
    """The SAM2-ELNet segmentation network (see module docstring).

    Raises:
        CheckpointError: ``config.size`` is not a Hiera size (:func:`build_trunk`; only a config
            made without validation, ``ModelConfig.model_construct``, can hold one: a
            :class:`ModelConfig` refuses it with a ``ValidationError``).
    """

    def __init__(self, config: ModelConfig, trunk: Sam2HieraDetModel | None = None) -> None:
        super().__init__()
        self.config = config
        self.trunk = trunk if trunk is not None else build_trunk(config.size)
        spec = HIERA_SPECS[config.size]
        self.stage_ends = set(self.trunk.stage_ends)
        block_dims = [blk.dim for blk in self.trunk.blocks]
        self.adapters = (
            build_adapters(block_dims, config.adapter_dim) if config.adapter_dim else None
        )
        self.stem = InputStem(config.in_bands)
        self.mask_encoder = MaskEncoder(
            config.decoder_dim,
            spec.embed_dim if config.mask_into_trunk else None,
            config.mask_width,
        )
        self.decoder = EdgeUDecoder(
            spec.stage_channels, config.in_bands, config.decoder_dim, config.detail_width
        )
        self._freeze_trunk()

    # ---------------------------------------------------------------- parameters and modes
    def _freeze_trunk(self) -> None:
        mode = self.config.trunk_trainable
        for p in self.trunk.parameters():
            p.requires_grad_(mode == "all")
        if mode == "last":
            last_stage_start = max(self.stage_ends - {max(self.stage_ends)}) + 1
            for blk in list(self.trunk.blocks)[last_stage_start:]:
                for p in blk.parameters():
                    p.requires_grad_(True)
        self.trunk.eval()

    def train(self, mode: bool = True) -> SAM2ELNet:
        """Train mode everywhere except a frozen trunk, which stays in eval mode."""
        super().train(mode)
        if self.config.trunk_trainable == "none":
            self.trunk.eval()
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters that fine-tuning updates (adapters, stem, mask encoder, decoder, [trunk])."""
        return [p for p in self.parameters() if p.requires_grad]

    @property
    def embedding_dim(self) -> int:
        return self.decoder.embedding_dim

    # ---------------------------------------------------------------- forward
    def encode(
        self, pixels: torch.Tensor, tokens: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """Run the Hiera trunk (with adapters before each block); return 4 channels-first features.

        Mirrors ``Sam2HieraDetModel.forward`` (patch embed, windowed position embedding, blocks) so
        adapters and the coarse-label tokens can enter between its steps; a test checks that with
        zero adapters the features equal the library's own forward exactly.
        """
        need_grad = torch.is_grad_enabled() and (
            self.adapters is not None or tokens is not None or self.config.trunk_trainable != "none"
        )
        with torch.set_grad_enabled(need_grad):
            h = self.trunk.patch_embed(pixels)
            h = h + self.trunk._get_pos_embed(h.shape[1:3])
            if tokens is not None:
                h = h + tokens.to(h.dtype)
            feats = []
            for i, block in enumerate(self.trunk.blocks):
                if self.adapters is not None:
                    h = self.adapters[i](h)
                h = block(h)
                if i in self.stage_ends:
                    feats.append(h.permute(0, 3, 1, 2))
        return feats

    def _trunk_features(
        self, pixels: torch.Tensor, tokens: torch.Tensor | None
    ) -> list[torch.Tensor]:
        """Stage features at strides 4, 8, 16, 32 of ``pixels`` for any ``trunk_scale``.

        With ``trunk_scale`` s > 1 the trunk runs on an s x s mean-pooled copy (its work falls
        by about s^2) and each feature map is bilinearly upsampled by s, so the decoder and its
        skips from the full-resolution mask encoder see the same strides as at s = 1.
        """
        s = self.config.trunk_scale
        if s == 1:
            return self.encode(pixels, tokens)
        pixels = F.avg_pool2d(pixels, s)
        if tokens is not None:
            tokens = F.avg_pool2d(tokens.permute(0, 3, 1, 2), s).permute(0, 2, 3, 1)
        return [
            F.interpolate(f, scale_factor=s, mode="bilinear", align_corners=False)
            for f in self.encode(pixels, tokens)
        ]

    def forward(
        self,
        image: torch.Tensor,
        coarse: torch.Tensor | None = None,
        has_coarse: torch.Tensor | None = None,
    ) -> ELNetOutput:
        """Segment ``image`` (B, in_bands, H, W), optionally guided by a coarse label (B, 1, H, W)."""
        if image.ndim != 4 or image.shape[1] != self.config.in_bands:
            raise ValueError(
                f"expected images of shape (B, {self.config.in_bands}, H, W), got {tuple(image.shape)}"
            )
        b, _, h, w = image.shape
        multiple = PAD_MULTIPLE * self.config.trunk_scale
        ph, pw = (-h) % multiple, (-w) % multiple
        if ph or pw:
            image = F.pad(image, (0, pw, 0, ph), mode="replicate")
        if coarse is None:
            coarse = image.new_zeros(b, 1, h + ph, w + pw)
            has_coarse = image.new_zeros(b)
        else:
            coarse = (
                F.pad(coarse.to(image.dtype), (0, pw, 0, ph))
                if (ph or pw)
                else coarse.to(image.dtype)
            )
            has_coarse = image.new_ones(b) if has_coarse is None else has_coarse.to(image.dtype)
        planes = MaskEncoder.planes(coarse, has_coarse)
        mask_feats, tokens = self.mask_encoder(planes)
        feats = self._trunk_features(self.stem(image), tokens)
        out = self.decoder(feats, mask_feats, image, planes)
        if self.config.coarse_prior:
            out = self._add_coarse_prior(out, coarse, has_coarse)

        def crop(t: torch.Tensor) -> torch.Tensor:
            sh = -(-h * t.shape[-2] // (h + ph))
            sw = -(-w * t.shape[-1] // (w + pw))
            return t[..., :sh, :sw]

        return ELNetOutput(
            logits=crop(out["logits"]),
            side_logits=[crop(s) for s in out["side_logits"]],
            edge_logits=crop(out["edge_logits"]),
            embedding=out["embedding"],
        )

    def _add_coarse_prior(self, out: dict, coarse: torch.Tensor, has_coarse: torch.Tensor) -> dict:
        """Shift logits by +-p towards the coarse label (where one is given).

        The decoder then predicts a *correction* to the coarse label instead of a mask from
        scratch: a fresh model returns the coarse label, and pixels change only where the image
        gives evidence against it. Without this, enhancement needs many epochs before it even
        matches its input, and adds false pixels around small or empty labels.
        """
        p = self.config.coarse_prior
        has = has_coarse.view(-1, 1, 1, 1)

        def prior(t: torch.Tensor) -> torch.Tensor:
            c = (
                coarse
                if t.shape[-2:] == coarse.shape[-2:]
                else F.adaptive_avg_pool2d(coarse, t.shape[-2:])
            )
            return t + (p * has * (2.0 * c - 1.0)).to(t.dtype)

        out["logits"] = prior(out["logits"])
        out["side_logits"] = [prior(s) for s in out["side_logits"]]
        return out


def _weights_advice(size: str) -> str:
    """What a run without encoder weights should do: give the checkpoint already in the local
    weights cache (:func:`~sam2elnet.model.weights_cache.find_cached_weights`; ``elnet train``
    does not take it by itself) or download one first. An unreadable cache counts as empty."""
    try:
        cached = find_cached_weights(size)
    except Exception:  # noqa: BLE001 - advice only: a broken cache is no cache
        cached = None
    if cached is not None:
        return f"SAM2 Hiera-{size} weights are cached: give --weights {cached}"
    return f"get weights with `elnet weights download --size {size}`, then give --weights FILE"


def build_model(config: ModelConfig) -> SAM2ELNet:
    """Build SAM2-ELNet; load SAM2 encoder weights strictly when ``config.weights`` is set.

    Without weights the trunk is randomly initialised (a warning says so, except for ``micro``).

    Raises:
        CheckpointError: ``config.weights`` is missing, empty, truncated, not a SAM2 encoder
            checkpoint (``.pt`` / ``.safetensors`` / Hugging Face folder), holds an encoder of
            another size than ``config.size``, or its keys / shapes do not fit the trunk
            (:func:`~sam2elnet.model.hiera.load_encoder_weights`).
    """
    if config.weights:
        trunk, _ = load_encoder_weights(config.weights, config.size)
    else:
        if config.size != "micro":
            trained = config.trunk_trainable != "none"
            log.warning(
                "no SAM2 encoder weights given: the Hiera-%s trunk is randomly initialised%s and "
                "results will be far below pretrained ones (%s%s)",
                config.size,
                f" (trained with --trunk {config.trunk_trainable})" if trained else "",
                _weights_advice(config.size),
                "" if trained else ", or train the trunk too with --trunk all",
            )
        trunk = build_trunk(config.size)
    return SAM2ELNet(config, trunk)
