"""SAM2's Hiera image encoder ("trunk"): sizes, construction and strict checkpoint loading.

We use the maintained implementation in ``transformers`` (``Sam2HieraDetModel``) rather than a copy of
Hiera. Reading checkpoint files (safely; official names mapped to the transformers ones) is
:mod:`sam2elnet.model.checkpoint_files`; the local weights cache is
:mod:`sam2elnet.model.weights_cache`. Loading is strict: a missing, unexpected or mis-shaped
key is an error that names the key, because silently half-loaded encoders give plausible-looking but
poor results that are very hard to diagnose later.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import Sam2HieraDetConfig, Sam2HieraDetModel
from transformers.models.sam2.modeling_sam2 import Sam2MultiScaleAttention

from sam2elnet.errors import CheckpointError
from sam2elnet.model.checkpoint_files import read_trunk_state

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HieraSpec:
    """Architecture of one Hiera size (numbers from the SAM2 model cards / configs)."""

    embed_dim: int
    num_heads: int
    blocks_per_stage: tuple[int, int, int, int]
    global_attention_blocks: tuple[int, ...]
    pos_embed_background: tuple[int, int]
    window_sizes: tuple[int, int, int, int] = (8, 4, 14, 7)

    @property
    def stage_channels(self) -> tuple[int, int, int, int]:
        """Channels of the four stage outputs (strides 4, 8, 16, 32)."""
        c = self.embed_dim
        return (c, 2 * c, 4 * c, 8 * c)

    @property
    def num_blocks(self) -> int:
        return sum(self.blocks_per_stage)


HIERA_SPECS: dict[str, HieraSpec] = {
    # "micro" is not a SAM2 release: a miniature of the same architecture for tests and smoke runs.
    "micro": HieraSpec(16, 1, (1, 1, 2, 1), (3,), (7, 7), (8, 4, 4, 2)),
    "tiny": HieraSpec(96, 1, (1, 2, 7, 2), (5, 7, 9), (7, 7)),
    "small": HieraSpec(96, 1, (1, 2, 11, 2), (7, 10, 13), (7, 7)),
    "base_plus": HieraSpec(112, 2, (2, 3, 16, 3), (12, 16, 20), (14, 14)),
    "large": HieraSpec(144, 2, (2, 6, 36, 4), (23, 33, 43), (7, 7), (8, 4, 16, 8)),
}


def hiera_config(size: str) -> Sam2HieraDetConfig:
    """The transformers config for a Hiera size."""
    if size not in HIERA_SPECS:
        raise CheckpointError(
            f"unknown encoder size {size!r}; choose one of {', '.join(HIERA_SPECS)}"
        )
    s = HIERA_SPECS[size]
    mult = (1, 2, 4, 8)
    return Sam2HieraDetConfig(
        hidden_size=s.embed_dim,
        num_attention_heads=s.num_heads,
        blocks_per_stage=list(s.blocks_per_stage),
        embed_dim_per_stage=[s.embed_dim * m for m in mult],
        num_attention_heads_per_stage=[s.num_heads * m for m in mult],
        window_size_per_stage=list(s.window_sizes),
        global_attention_blocks=list(s.global_attention_blocks),
        window_positional_embedding_background_size=list(s.pos_embed_background),
    )


class LeanAttention(Sam2MultiScaleAttention):
    """Hiera's multi-scale attention without the unused score matrix.

    ``transformers`` 5.x's ``Sam2MultiScaleAttention.forward`` multiplies the queries by the scale,
    multiplies them with the keys and takes a softmax, then discards that result and calls the
    attention function on the unscaled queries (which computes the real attention). On the CPU the
    discarded work was 5-9 % of a Hiera-tiny forward (docs/benchmarks.md, "Where the time goes").
    This forward computes only what is used: ``qkv`` projection, optional query max-pooling (the
    stage transitions), ``scaled_dot_product_attention`` with scale ``head_dim ** -0.5`` over
    ``(B, heads, tokens, head_dim)``, output projection. Same parameters and state-dict keys; the
    outputs equal the library's (``tests/model/test_hiera_loading.py``).
    """

    def forward(self, hidden_states: torch.Tensor, **kwargs: object) -> torch.Tensor:
        b, h, w, _ = hidden_states.shape
        heads = self.num_attention_heads
        # (B, H*W, 3, heads, head_dim) -> three (B, H*W, heads, head_dim)
        q, k, v = self.qkv(hidden_states).reshape(b, h * w, 3, heads, -1).unbind(2)
        if self.query_stride:
            pooled = F.max_pool2d(
                q.reshape(b, h, w, -1).permute(0, 3, 1, 2), self.query_stride, self.query_stride
            )
            h, w = pooled.shape[-2:]
            q = pooled.permute(0, 2, 3, 1).reshape(b, h * w, heads, -1)
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), scale=self.scale
        )
        return self.proj(out.transpose(1, 2).reshape(b, h, w, -1))


def lean_attention(trunk: Sam2HieraDetModel) -> Sam2HieraDetModel:
    """Switch every attention layer of ``trunk`` to :class:`LeanAttention` in place (same
    weights and results, less work); returns ``trunk``."""
    for module in trunk.modules():
        if type(module) is Sam2MultiScaleAttention:
            module.__class__ = LeanAttention
    return trunk


def build_trunk(size: str) -> Sam2HieraDetModel:
    """A randomly initialised Hiera trunk of the given size (attention: :class:`LeanAttention`).

    Raises:
        CheckpointError: ``size`` is none of :data:`HIERA_SPECS` (the message lists them).
    """
    return lean_attention(Sam2HieraDetModel(hiera_config(size)))


def infer_size(state: Mapping[str, torch.Tensor], path: str | Path | None = None) -> str:
    """Infer the Hiera size from a trunk state dict's shapes (embed dim and number of blocks).

    ``path`` (the file the state came from) is named in the CheckpointError raised when the
    shapes match no size."""
    w = state.get("patch_embed.projection.weight")
    if w is None:
        raise CheckpointError(
            "cannot infer the encoder size: key 'patch_embed.projection.weight' (Hiera patch "
            "embedding) is missing; not a SAM2 image-encoder checkpoint",
            path,
        )
    dim = int(w.shape[0])
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k))}
    n = max(blocks) + 1 if blocks else 0
    for name, spec in HIERA_SPECS.items():
        if spec.embed_dim == dim and spec.num_blocks == n:
            return name
    raise CheckpointError(
        f"encoder weights (embed dim {dim}, {n} blocks) match no known Hiera size "
        f"({', '.join(HIERA_SPECS)})",
        path,
    )


def load_trunk_state_strict(
    trunk: Sam2HieraDetModel, state: Mapping[str, torch.Tensor], source: str | Path = "weights"
) -> None:
    """Copy ``state`` into ``trunk``; any missing/unexpected/mis-shaped key is a CheckpointError.

    ``trunk`` may be on the ``meta`` device (:func:`trunk_from_state`): its parameters are then
    replaced by contiguous copies of ``state``'s tensors (in the trunk's dtype), which is what
    copying into an initialised trunk gives, without the random initialisation first."""
    own = trunk.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    for keys, what, advice in (
        (missing, "are missing key", "the file is incomplete or for another model"),
        (unexpected, "have unexpected key", "the file is for another model or size"),
    ):
        if keys:
            more = f" (and {len(keys) - 1} more)" if len(keys) > 1 else ""
            raise CheckpointError(f"encoder weights {what} '{keys[0]}'{more}; {advice}", source)
    for key, value in state.items():
        if tuple(value.shape) != tuple(own[key].shape):
            raise CheckpointError(
                f"encoder key '{key}' has shape {tuple(value.shape)}, expected "
                f"{tuple(own[key].shape)}; the file is for another encoder size",
                source,
            )
    if any(v.is_meta for v in own.values()):
        fresh = {
            k: v.to(dtype=own[k].dtype, memory_format=torch.contiguous_format, copy=True)
            for k, v in state.items()
        }
        trunk.load_state_dict(fresh, strict=True, assign=True)
    else:
        trunk.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=True)


def trunk_from_state(
    size: str, state: Mapping[str, torch.Tensor], source: str | Path = "weights"
) -> Sam2HieraDetModel:
    """A Hiera trunk of ``size`` holding exactly ``state`` (checked as by
    :func:`load_trunk_state_strict`), on the CPU.

    Built on the ``meta`` device and given copies of the weights: the random initialisation of
    :func:`build_trunk`, overwritten by every key anyway, is skipped (Hiera-large: ~2 s of one
    CPU core and a second 212 M-parameter set in memory while loading)."""
    with torch.device("meta"):
        trunk = lean_attention(Sam2HieraDetModel(hiera_config(size)))
    load_trunk_state_strict(trunk, state, source)
    return trunk


def load_encoder_weights(
    path: str | Path, size: str | None = None
) -> tuple[Sam2HieraDetModel, str]:
    """Build a Hiera trunk and load weights from ``path`` strictly.

    ``size`` is inferred from the checkpoint when not given; a checkpoint of another size than asked
    is an error. Returns the trunk and its size.

    Raises:
        CheckpointError: ``path`` is missing, empty, truncated, a text file, holds pickled code,
            is not a SAM2 checkpoint (official ``.pt`` with a ``model`` dict, ``.safetensors``,
            Hugging Face folder) or a sam2elnet model file without embedded encoder weights;
            its encoder matches no known size or another size than ``size``; a key or shape
            does not fit the trunk (strict loading).
    """
    state, kind = read_trunk_state(path)
    found = infer_size(state, path)
    if size is not None and size != found:
        raise CheckpointError(
            f"checkpoint holds a Hiera-{found} encoder but size {size!r} was asked; "
            f"use --size {found} or the matching checkpoint",
            path,
        )
    trunk = trunk_from_state(found, state, path)
    log.info("loaded %s Hiera-%s encoder weights from %s", kind, found, path)
    return trunk, found


def trunk_fingerprint(trunk: torch.nn.Module) -> float:
    """A cheap checksum of trunk weights, stored in model files to detect a different encoder file."""
    with torch.no_grad():
        total = 0.0
        for i, p in enumerate(trunk.parameters()):
            total += float(p.double().sum()) * (1 + (i % 7))
        return round(total, 6)
