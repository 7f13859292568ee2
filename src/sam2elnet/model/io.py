"""Saving and loading whole SAM2-ELNet models (one file: config + weights + metadata).

A model file holds the config, the trainable weights (adapters, stem, mask encoder, decoder) and
either the trunk weights themselves (when the trunk was randomly initialised or fine-tuned, so the
file is self-contained) or a *reference* to the SAM2 checkpoint plus a fingerprint (so a 25 MB
model file does not duplicate a 150 MB-900 MB encoder). ``extra`` carries plain data the engine
needs (normalisation, the quality evaluator and its calibration, training metadata).

Files are loaded with ``torch.load(weights_only=True)``: no pickled code ever runs.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError

from sam2elnet import __version__
from sam2elnet.errors import CheckpointError
from sam2elnet.model.checkpoint_files import refuse_text_file, safe_torch_load
from sam2elnet.model.elnet import ModelConfig, SAM2ELNet
from sam2elnet.model.hiera import load_encoder_weights, trunk_fingerprint, trunk_from_state
from sam2elnet.model.weights_cache import weights_home
from sam2elnet.utils.atomic import atomic_path

MODEL_FORMAT = "sam2elnet.model"
MODEL_FORMAT_VERSION = 1
TRAIN_STATE_FORMAT = "sam2elnet.train_state"
"""``format`` of a training run's resume state ``last.pt`` (:mod:`sam2elnet.engine.train_state`),
which is not a model file: named here so a model option given it can say so."""


def save_model(
    model: SAM2ELNet,
    path: str | Path,
    extra: dict[str, Any] | None = None,
    embed_encoder: bool | None = None,
) -> Path:
    """Write ``model`` (and ``extra``) to ``path`` atomically.

    ``embed_encoder`` defaults to True when the trunk has no external weights file or was trained.

    Raises:
        UserError: ``path`` is a folder or lies under a file (nothing is written).
        DiskFullError: the disk filled up while writing; no partial file is left under ``path``.
    """
    cfg = model.config
    if embed_encoder is None:
        embed_encoder = cfg.weights is None or cfg.trunk_trainable != "none"
    state = {
        k: v.detach().clone() for k, v in model.state_dict().items() if not k.startswith("trunk.")
    }
    payload = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "package_version": __version__,
        "config": cfg.model_dump(mode="json"),
        "state": state,
        "trunk_state": {k: v.detach().clone() for k, v in model.trunk.state_dict().items()}
        if embed_encoder
        else None,
        "encoder": {
            "weights": cfg.weights,
            "size": cfg.size,
            "embedded": bool(embed_encoder),
            "fingerprint": trunk_fingerprint(model.trunk),
        },
        "extra": extra or {},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def check_checkpoint_kind(path: str | Path) -> None:
    """Cheap check, before any data is read, that an existing ``path`` can be a checkpoint: at
    most the first 4 KiB and the zip directory are read, nothing is unpickled.

    Accepted: a folder with ``.safetensors`` files (Hugging Face), a ``.safetensors`` file, a zip
    archive (``torch.save``, also sam2elnet model files) or a pickle stream (legacy
    ``torch.save``); whether its tensors fit is the loader's to say.

    Raises:
        CheckpointError: a folder without ``.safetensors`` files, an empty file, a plain-text file
            (YAML, CSV: its first line named, as
            :func:`~sam2elnet.model.checkpoint_files.safe_torch_load` names it) or a file of
            another kind.
    """
    p = Path(path).expanduser()
    if p.is_dir():
        if not any(p.glob("*.safetensors")):
            raise CheckpointError(
                "folder has no .safetensors files; expected a checkpoint file (.pt) or a Hugging "
                "Face SAM2 model folder (e.g. a download of facebook/sam2.1-hiera-tiny)",
                p,
            )
        return
    if p.stat().st_size == 0:
        raise CheckpointError("file is empty (interrupted download?); download it again", p)
    refuse_text_file(p)
    with open(p, "rb") as f:
        head = f.read(9)
    # safetensors: 8-byte little-endian header length, then the JSON header; pickle: PROTO
    if p.suffix == ".safetensors" or head[:1] == b"\x80" or zipfile.is_zipfile(p):
        if p.suffix != ".safetensors" or head[8:9] == b"{":
            return
    raise CheckpointError(
        "not a checkpoint (neither a PyTorch .pt file nor .safetensors); check the path", p
    )


def folder_not_model_file(folder: Path) -> str:
    """The message for a folder given where a model file is expected: a training run's folder
    names its ``model.pt`` (the file to give), any other folder says what to give."""
    if (folder / "model.pt").is_file():
        return f"a folder, not a model file; give the run's model file: {folder / 'model.pt'}"
    return "a folder, not a model file; give the model.pt an `elnet train` run wrote"


def read_model_file(path: str | Path) -> dict[str, Any]:
    """Read and validate a model file's payload without building the network.

    Raises:
        CheckpointError: no such file; a folder (a training run's names its ``model.pt``); a
            training run's resume state (``last.pt``) or any other
            file that is not a sam2elnet model file (each named as such, with what to give
            instead); a file of a newer format version; a payload lacking an entry.
    """
    p = Path(path)
    if p.is_dir():
        raise CheckpointError(folder_not_model_file(p), p)
    if not p.is_file():
        raise CheckpointError("model file not found; train one with `elnet train`", p)
    obj = safe_torch_load(p)
    if isinstance(obj, dict) and obj.get("format") == TRAIN_STATE_FORMAT:
        raise CheckpointError(
            "a training run's resume state (last.pt, read by `elnet train --resume`), not a "
            "model file; give the run's model.pt",
            p,
        )
    if not isinstance(obj, dict) or obj.get("format") != MODEL_FORMAT:
        raise CheckpointError(
            "not a sam2elnet model file (for SAM2 encoder checkpoints use --weights); give the "
            "model.pt an `elnet train` run wrote",
            p,
        )
    version = obj.get("format_version")
    if not isinstance(version, int) or version > MODEL_FORMAT_VERSION:
        raise CheckpointError(
            f"model file format {version!r} was written by a newer sam2elnet "
            f"({obj.get('package_version')}); upgrade sam2elnet to read it",
            p,
        )
    for key in ("config", "state", "encoder"):
        if key not in obj:
            raise CheckpointError(f"model file lacks its '{key}' entry; it is damaged", p)
    return obj


def trained_crop_size(extra: Any) -> int | None:
    """The training crop side (px, >= 32) a model file's ``extra`` record names: ``image_size``
    (written by ``elnet train``), else ``train.image_size``; None when it names none (a model
    written by other code, or a damaged record). Read by ``elnet train --init-model`` (its
    default ``--image-size``) and the Label Studio backend's fine-tuning runs."""
    if not isinstance(extra, dict):
        return None
    train = extra.get("train")
    for size in (
        extra.get("image_size"),
        train.get("image_size") if isinstance(train, dict) else None,
    ):
        if isinstance(size, int) and not isinstance(size, bool) and size >= 32:
            return size
    return None


def model_config_of(payload: dict[str, Any], path: str | Path) -> ModelConfig:
    """The architecture a model file's payload (:func:`read_model_file`) records, with the
    defaults filled in for fields of later versions (a file made before ``trunk_scale`` existed
    ran the trunk at full resolution: 1).

    Raises:
        CheckpointError: the config does not validate (a file of an incompatible version).
    """
    try:
        return ModelConfig.model_validate(payload["config"])
    except ValidationError as err:
        raise CheckpointError(
            f"model config is invalid ({err.errors()[0]['loc']}: {err.errors()[0]['msg']}); "
            "the file is from an incompatible version",
            path,
        ) from None


def _resolve_encoder_file(ref: str | None, override: str | Path | None, path: Path) -> Path:
    if override is not None:
        return Path(override)
    if ref is None:
        raise CheckpointError(
            "model file has neither embedded nor referenced encoder weights", path
        )
    candidates = [
        Path(ref).expanduser(),
        path.parent / Path(ref).name,
        weights_home() / Path(ref).name,
    ]
    for c in candidates:
        if c.exists():
            return c
    raise CheckpointError(
        f"the SAM2 encoder weights this model was trained with ({ref}) are not found; put the file "
        f"next to the model or in {weights_home()}, or pass encoder_weights / --weights",
        path,
    )


def load_model(
    path: str | Path,
    encoder_weights: str | Path | None = None,
    map_location: str = "cpu",
    payload: dict[str, Any] | None = None,
) -> tuple[SAM2ELNet, dict[str, Any]]:
    """Load a model saved by :func:`save_model`; returns ``(model, extra)``, model in eval mode.
    ``payload``: the file's :func:`read_model_file` result when the caller has read it already
    (the file is then not read again; ``path`` names it in errors).

    Raises:
        CheckpointError: ``path`` is missing, a folder, truncated, holds pickled code, is not a
            sam2elnet model file (a SAM2 encoder checkpoint, a training run's ``last.pt``), was
            written by a newer sam2elnet, lacks an entry or has an invalid config; its weights
            do not fit the network; the encoder weights it references are not found (pass
            ``encoder_weights``) or differ from those it was trained with.
    """
    p = Path(path)
    obj = read_model_file(p) if payload is None else payload
    cfg = model_config_of(obj, p)
    enc = obj["encoder"]
    if obj.get("trunk_state"):
        trunk = trunk_from_state(cfg.size, obj["trunk_state"], p)
    else:
        src = _resolve_encoder_file(enc.get("weights"), encoder_weights, p)
        trunk, _ = load_encoder_weights(src, cfg.size)
        expected = enc.get("fingerprint")
        if expected is not None and not math.isclose(
            trunk_fingerprint(trunk), float(expected), rel_tol=1e-6, abs_tol=1e-3
        ):
            raise CheckpointError(
                "these encoder weights differ from the ones the model was trained with; "
                "pass the original SAM2 checkpoint",
                src,
            )
    model = SAM2ELNet(cfg, trunk)
    state = obj["state"]
    own = {k: v for k, v in model.state_dict().items() if not k.startswith("trunk.")}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or bad:
        what = (
            f"missing '{missing[0]}'"
            if missing
            else f"unexpected '{unexpected[0]}'"
            if unexpected
            else f"shape mismatch at '{bad[0]}'"
        )
        raise CheckpointError(
            f"model weights do not fit the network ({what}); the file is damaged", p
        )
    model.load_state_dict(state, strict=False)
    model.to(map_location)
    model.eval()
    return model, dict(obj.get("extra") or {})


def check_weights_finite(model: torch.nn.Module, path: Path | None) -> None:
    """Refuse a model whose parameters or buffers hold NaN / Inf (a corrupt file or a diverged
    training) before it predicts anything.

    Raises:
        CheckpointError: naming the first such tensor, its count of bad values and ``path``.
    """
    for name, t in list(model.named_parameters()) + list(model.named_buffers()):
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise CheckpointError(
                f"model weights contain NaN/Inf ({bad} values in {name}): the file is corrupt "
                "or its training diverged; re-copy it or retrain",
                path,
            )
