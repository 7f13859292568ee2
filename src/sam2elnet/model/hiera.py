"""SAM2's Hiera image encoder ("trunk"): sizes, construction and strict checkpoint loading.

We use the maintained implementation in ``transformers`` (``Sam2HieraDetModel``) rather than a copy of
Hiera. Official SAM2 checkpoints use slightly different parameter names; :func:`official_to_hf` maps
them (five renames, see docs/architecture.md). Loading is strict: a missing, unexpected or mis-shaped
key is an error that names the key, because silently half-loaded encoders give plausible-looking but
poor results that are very hard to diagnose later.

Checkpoints are untrusted input: ``torch.load(..., weights_only=True)`` or safetensors only.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import struct
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import Sam2HieraDetConfig, Sam2HieraDetModel
from transformers.models.sam2.modeling_sam2 import Sam2MultiScaleAttention

from sam2elnet.errors import CheckpointError

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
SAM2_SIZES = ("tiny", "small", "base_plus", "large")

# Official SAM2 parameter names -> transformers names (keys under image_encoder.trunk.), applied to
# the key with a leading "." so that every pattern matches whole name parts only.
_OFFICIAL_RENAMES = (
    (".patch_embed.proj.", ".patch_embed.projection."),
    (".norm1.", ".layer_norm1."),
    (".norm2.", ".layer_norm2."),
    (".mlp.layers.0.", ".mlp.proj_in."),
    (".mlp.layers.1.", ".mlp.proj_out."),
)
OFFICIAL_TRUNK_PREFIX = "image_encoder.trunk."


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
    """A randomly initialised Hiera trunk of the given size (attention: :class:`LeanAttention`)."""
    return lean_attention(Sam2HieraDetModel(hiera_config(size)))


# --------------------------------------------------------------------------------------------
# Reading checkpoint files
# --------------------------------------------------------------------------------------------


def _pickle_calls_code(path: Path) -> str | None:
    """The first callable a raw (non-zip) pickle file would import and run, or None.

    Scans the opcodes with :mod:`pickletools` (nothing is executed). None also when the stream
    is not a complete pickle (then the file is damaged, not malicious).
    """
    import pickletools

    try:
        data = path.read_bytes()
        found = None
        strings: list[str] = []
        for op, arg, _pos in pickletools.genops(data):
            if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
                strings.append(str(arg))
            if found is None and op.name in ("GLOBAL", "INST"):
                found = str(arg).replace(" ", ".")
            elif found is None and op.name == "STACK_GLOBAL":
                found = ".".join(strings[-2:]) if len(strings) >= 2 else "a global"
            elif found is None and op.name in ("REDUCE", "OBJ", "NEWOBJ", "NEWOBJ_EX"):
                found = "a pickled callable"
        return found
    except Exception:  # noqa: BLE001  (not a complete pickle stream: damaged, not malicious)
        return None


def refuse_text_file(path: Path) -> None:
    """Raise when ``path`` is plain text (UTF-8, no NUL byte in its first 4 KiB): a CSV or YAML
    given as a checkpoint is named as such, with its first line, not as a damaged download.

    Raises:
        CheckpointError: the file is text.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
        text = head.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return
    if not head or b"\0" in head:
        return
    line = (text.strip().splitlines() or [""])[0][:60]
    raise CheckpointError(
        f"not a readable checkpoint: a text file (first line {line!r}); check the path "
        "(or, for a download, download the file again)",
        path,
    )


def safe_torch_load(path: Path) -> object:
    """``torch.load`` that refuses pickled code and turns every failure into a one-line CheckpointError.

    A plain-text file (a CSV, YAML, README given by mistake) is named as text with its first
    line, not called a damaged download."""
    refuse_text_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Detected pickle protocol 4 ..." chatter
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # A well-formed torch archive whose pickle the safe unpickler rejects needs code to load
        # (classes, functions, exotic opcodes); anything else is simply damaged.
        text = str(err)
        raw = None if zipfile.is_zipfile(path) else _pickle_calls_code(path)
        if "GLOBAL" in text or zipfile.is_zipfile(path) or raw:
            detail = next((ln.strip() for ln in text.splitlines() if "GLOBAL" in ln), "")
            detail = detail or (f"it calls {raw}" if raw else "")
            raise CheckpointError(
                "refused: loading this file would execute code (it holds pickled code, which "
                "could be malicious); only plain tensor checkpoints (torch weights_only or "
                f".safetensors) are accepted{' (' + detail[:120] + ')' if detail else ''}",
                path,
            ) from None
        raise CheckpointError(
            "not a readable checkpoint (truncated or corrupt download?); download the file again",
            path,
        ) from None
    except (
        RuntimeError,
        EOFError,
        zipfile.BadZipFile,
        ValueError,
        OSError,
        struct.error,
        IndexError,  # random bytes can send the unpickler off its stack
        KeyError,
        TypeError,
        OverflowError,
        MemoryError,
    ) as err:
        first = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
        raise CheckpointError(
            f"not a readable checkpoint (truncated or corrupt download?): {first}; "
            "download the file again",
            path,
        ) from None


def _load_safetensors(path: Path, prefix_filter: str | None = None) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError, safe_open

    try:
        out: dict[str, torch.Tensor] = {}
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():
                if prefix_filter is None or prefix_filter in key:
                    out[key] = f.get_tensor(key)
        return out
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(
            f"not a readable .safetensors file (truncated or corrupt?): {str(err)[:160]}", path
        ) from None


def _hf_backbone_state(state: Mapping[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """Trunk weights from a transformers-format SAM2 state dict (Sam2Model or Sam2VisionModel)."""
    out = {}
    for key, value in state.items():
        m = re.search(r"(?:^|\.)backbone\.(.+)$", key)
        if m:
            out[m.group(1)] = value
    if not out:
        # A bare Sam2HieraDetModel state dict (keys start with patch_embed./blocks./pos_embed).
        out = {k: v for k, v in state.items() if k.split(".")[0] in _TRUNK_ROOTS}
    if not out:
        raise CheckpointError(
            "no SAM2 Hiera encoder weights found (expected keys like "
            "'vision_encoder.backbone.blocks.0...' or 'image_encoder.trunk.blocks.0...')",
            path,
        )
    return out


_TRUNK_ROOTS = {"patch_embed", "pos_embed", "pos_embed_window", "blocks"}


def _rename(key: str, pairs: tuple[tuple[str, str], ...]) -> str:
    new = "." + key
    for old, repl in pairs:
        new = new.replace(old, repl)
    return new[1:]


def official_to_hf(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an official SAM2 trunk state dict (prefix already stripped) to transformers names."""
    return {_rename(k, _OFFICIAL_RENAMES): v for k, v in state.items()}


def hf_to_official(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of :func:`official_to_hf` (used to write checkpoints in the official layout)."""
    back = tuple((new, old) for old, new in _OFFICIAL_RENAMES)
    return {_rename(k, back): v for k, v in state.items()}


def read_trunk_state(path: str | Path) -> tuple[dict[str, torch.Tensor], str]:
    """Read Hiera trunk weights (transformers names) from any supported file.

    Returns the state dict and the source kind: ``"official"`` (SAM2 / SAM2.1 ``.pt``),
    ``"huggingface"`` (directory or ``.safetensors``) or ``"sam2elnet"`` (a model saved by this
    project that embeds its trunk).
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise CheckpointError(
            "weights file not found; run `elnet weights list` to see where weights are looked for, "
            "or pass --weights none to train from random initialisation",
            p,
        )
    if p.is_dir():
        files = sorted(p.glob("*.safetensors"))
        if not files:
            raise CheckpointError(
                "folder has no .safetensors files; expected a Hugging Face SAM2 model folder "
                "(e.g. a download of facebook/sam2.1-hiera-tiny)",
                p,
            )
        state: dict[str, torch.Tensor] = {}
        for f in files:
            state.update(_load_safetensors(f))
        return _hf_backbone_state(state, p), "huggingface"
    if p.suffix == ".safetensors":
        return _hf_backbone_state(_load_safetensors(p), p), "huggingface"
    if p.stat().st_size == 0:
        raise CheckpointError("file is empty (interrupted download?); download it again", p)

    obj = safe_torch_load(p)
    if isinstance(obj, dict) and obj.get("format") == "sam2elnet.model":
        trunk = obj.get("trunk_state")
        if not trunk:
            raise CheckpointError(
                "this sam2elnet model file does not embed encoder weights (it references "
                f"{obj.get('encoder', {}).get('weights')!r}); pass that file instead",
                p,
            )
        return dict(trunk), "sam2elnet"
    if isinstance(obj, dict) and isinstance(obj.get("model"), Mapping):
        full = obj["model"]
        trunk = {
            k[len(OFFICIAL_TRUNK_PREFIX) :]: v
            for k, v in full.items()
            if k.startswith(OFFICIAL_TRUNK_PREFIX)
        }
        if not trunk:
            raise CheckpointError(
                f"checkpoint has a 'model' entry but no '{OFFICIAL_TRUNK_PREFIX}*' keys; "
                "is this a SAM2 checkpoint?",
                p,
            )
        return official_to_hf(trunk), "official"
    if isinstance(obj, Mapping) and all(isinstance(v, torch.Tensor) for v in obj.values()):
        # A bare state dict: official trunk-prefixed, official full, or transformers names.
        keys = list(obj)
        if any(k.startswith(OFFICIAL_TRUNK_PREFIX) for k in keys):
            trunk = {
                k[len(OFFICIAL_TRUNK_PREFIX) :]: v
                for k, v in obj.items()
                if k.startswith(OFFICIAL_TRUNK_PREFIX)
            }
            return official_to_hf(trunk), "official"
        return _hf_backbone_state(obj, p), "huggingface"
    raise CheckpointError(
        "not a SAM2 checkpoint (expected a dict with a 'model' state dict, a .safetensors file, "
        "or a sam2elnet model file)",
        p,
    )


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
    """Copy ``state`` into ``trunk``; any missing/unexpected/mis-shaped key is a CheckpointError."""
    own = trunk.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing:
        raise CheckpointError(
            f"encoder weights are missing key '{missing[0]}'"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            + "; the file is incomplete or for another model",
            source,
        )
    if unexpected:
        raise CheckpointError(
            f"encoder weights have unexpected key '{unexpected[0]}'"
            + (f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else "")
            + "; the file is for another model or size",
            source,
        )
    for key, value in state.items():
        if tuple(value.shape) != tuple(own[key].shape):
            raise CheckpointError(
                f"encoder key '{key}' has shape {tuple(value.shape)}, expected "
                f"{tuple(own[key].shape)}; the file is for another encoder size",
                source,
            )
    trunk.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=True)


def load_encoder_weights(
    path: str | Path, size: str | None = None
) -> tuple[Sam2HieraDetModel, str]:
    """Build a Hiera trunk and load weights from ``path`` strictly.

    ``size`` is inferred from the checkpoint when not given; a checkpoint of another size than asked
    is an error. Returns the trunk and its size.
    """
    state, kind = read_trunk_state(path)
    found = infer_size(state, path)
    if size is not None and size != found:
        raise CheckpointError(
            f"checkpoint holds a Hiera-{found} encoder but size {size!r} was asked; "
            f"use --size {found} or the matching checkpoint",
            path,
        )
    trunk = build_trunk(found)
    load_trunk_state_strict(trunk, state, path)
    log.info("loaded %s Hiera-%s encoder weights from %s", kind, found, path)
    return trunk, found


def trunk_fingerprint(trunk: torch.nn.Module) -> float:
    """A cheap checksum of trunk weights, stored in model files to detect a different encoder file."""
    with torch.no_grad():
        total = 0.0
        for i, p in enumerate(trunk.parameters()):
            total += float(p.double().sum()) * (1 + (i % 7))
        return round(total, 6)


# --------------------------------------------------------------------------------------------
# Where weights live locally
# --------------------------------------------------------------------------------------------

OFFICIAL_URLS = {
    "2": "https://dl.fbaipublicfiles.com/segment_anything_2/072824/sam2_hiera_{size}.pt",
    "2.1": "https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_{size}.pt",
}


def weights_home() -> Path:
    """The local weights cache: ``$SAM2ELNET_HOME`` or ``~/.cache/sam2elnet``."""
    return Path(os.environ.get("SAM2ELNET_HOME", Path.home() / ".cache" / "sam2elnet")).expanduser()


def official_filename(size: str, version: str = "2.1") -> str:
    """File name of an official checkpoint (``sam2.1_hiera_tiny.pt`` ...)."""
    if version not in OFFICIAL_URLS:
        raise CheckpointError(f"unknown SAM2 version {version!r}; choose 2 or 2.1")
    if size not in SAM2_SIZES:
        raise CheckpointError(f"unknown SAM2 size {size!r}; choose one of {', '.join(SAM2_SIZES)}")
    return OFFICIAL_URLS[version].rsplit("/", 1)[1].format(size=size)


def official_url(size: str, version: str = "2.1") -> str:
    official_filename(size, version)  # validates
    return OFFICIAL_URLS[version].format(size=size)


def find_cached_weights(size: str = "tiny", home: Path | None = None) -> Path | None:
    """The locally cached official checkpoint for ``size`` (SAM 2.1 preferred), or None."""
    base = home or weights_home()
    for version in ("2.1", "2"):
        p = base / official_filename(size, version)
        if p.is_file():
            return p
    return None
