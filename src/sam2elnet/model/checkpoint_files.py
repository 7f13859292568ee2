"""SAM2 checkpoint files read safely: the Hiera trunk's weights, in transformers names, from any
supported file.

:func:`read_trunk_state` reads official SAM2 / SAM2.1 ``.pt`` files, Hugging Face folders and
``.safetensors`` files and this project's model files; official parameter names are mapped to
the ``transformers`` ones by :func:`official_to_hf` (five renames, listed below).
Checkpoints are untrusted input: :func:`safe_torch_load` is ``torch.load(...,
weights_only=True)`` that refuses pickled code and turns every failure into one
:class:`~sam2elnet.errors.CheckpointError` line; safetensors are read with ``safe_open``.
Building the trunk and loading these weights into it strictly is :mod:`sam2elnet.model.hiera`.
"""

from __future__ import annotations

import hashlib
import pickle
import pickletools
import re
import struct
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from sam2elnet.errors import CheckpointError
from sam2elnet.option_checks import WeightsFiles, weights_path

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


def _pickle_calls_code(path: Path) -> str | None:
    """The first callable a raw (non-zip) pickle file would import and run, or None.

    Scans the opcodes with :mod:`pickletools` (nothing is executed). None also when the stream
    is not a complete pickle (then the file is damaged, not malicious).
    """
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


RANDOM_INIT_API = "weights=None"
"""How the Python API asks for a randomly initialised encoder (``ModelConfig`` / ``TrainConfig``
field ``weights``); the command line says :data:`RANDOM_INIT_CLI` (:func:`missing_weights_error`)."""

RANDOM_INIT_CLI = "--weights none"
"""How the command line (``elnet train`` / ``cv`` / ``experiment``) asks for a randomly
initialised encoder."""


def missing_weights_error(path: str | Path, random_init: str = RANDOM_INIT_API) -> CheckpointError:
    """The error for a SAM2 weights file that does not exist, in the caller's words.

    Args:
        path: the weights file given.
        random_init: how the caller's user asks for random initialisation instead: the API's
            ``weights=None`` (default), or ``--weights none`` from the command line.

    Returns:
        The :class:`~sam2elnet.errors.CheckpointError` to raise (names ``path``).
    """
    return CheckpointError(
        "weights file not found; run `elnet weights list` to see where weights are looked for, "
        f"or pass {random_init} to train from random initialisation",
        Path(path).expanduser(),
    )


def check_weights_exist(
    weights: str | Path | None,
    random_init: str = RANDOM_INIT_API,
    *,
    init_model: str | Path | None = None,
) -> None:
    """The SAM2 weights ``weights`` exist (a file, or a Hugging Face model folder), checked
    first, before any data is read or output written (``elnet train`` / ``cv`` /
    ``experiment`` and their APIs); whether they can be a checkpoint is
    :func:`~sam2elnet.model.io.check_checkpoint_kind`, which callers run afterwards. None (the
    cached checkpoint, if any) and ``"none"`` (a random encoder) name nothing and pass, and so
    does anything with ``init_model`` given (its file holds the trunk).

    Args:
        weights: The weights path given, or None / ``"none"``.
        random_init: How the caller's user asks for a random encoder, in the error: the API's
            ``weights=None`` (default), ``weights="none"`` (experiment API) or ``--weights none``.
        init_model: The ``--init-model`` file of a training run, or None.

    Raises:
        CheckpointError: ``weights`` names nothing that exists (:func:`missing_weights_error`:
            names it, `elnet weights list` and ``random_init``).
    """
    if not weights or str(weights) == "none" or init_model is not None:
        return
    if not Path(weights).expanduser().exists():
        raise missing_weights_error(weights, random_init)


def read_trunk_state(path: str | Path) -> tuple[dict[str, torch.Tensor], str]:
    """Read Hiera trunk weights (transformers names) from any supported file.

    Returns the state dict and the source kind: ``"official"`` (SAM2 / SAM2.1 ``.pt``),
    ``"huggingface"`` (directory or ``.safetensors``) or ``"sam2elnet"`` (a model saved by this
    project that embeds its trunk).
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise missing_weights_error(p)
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


def weights_digest(weights: str | Path | None) -> str | None:
    """SHA-256 (64 hex digits) of the SAM2 weights ``weights`` names: of the file's bytes, or
    for a Hugging Face model folder of the names and bytes of its ``*.safetensors`` files (what
    :func:`read_trunk_state` reads: a README or config added to the folder changes nothing);
    None for no weights (None / ``"none"``) or a path that is not on this machine or cannot be
    read. Computed once per process for an unchanged file (~1 s per GB). Recorded by the runs
    with the file's path (:func:`weights_record`)."""
    from sam2elnet.data.run_model import file_sha256

    if not weights or str(weights) == "none":
        return None
    p = Path(weights).expanduser()
    try:
        if p.is_file():
            return file_sha256(p)
        if p.is_dir():
            return _folder_digest(p, "*.safetensors")
    except OSError:
        return None
    return None


def _folder_digest(folder: Path, pattern: str) -> str:
    """SHA-256 over ``name:sha256`` lines of the files of ``folder`` matching ``pattern``, sorted
    by name. ``"*"`` (every file) is the digest runs recorded of a folder before 2026-12-04."""
    from sam2elnet.data.run_model import file_sha256

    h = hashlib.sha256()
    for f in sorted(q for q in folder.glob(pattern) if q.is_file()):
        h.update(f"{f.name}:{file_sha256(f)}\n".encode())
    return h.hexdigest()


def weights_files(saved: Any, given: Any, record: Mapping[str, Any] | None = None) -> WeightsFiles:
    """A run's recorded ``--weights saved`` and a re-run's ``given``, as
    :func:`~sam2elnet.option_checks.same_setting` compares them.

    Args:
        saved: the ``--weights`` the run recorded (text, None or ``"none"``).
        given: the re-run's.
        record: what the run recorded of the file (:func:`weights_record`: ``weights_path``,
            ``weights_sha256``; a key missing or None: not recorded, as in older runs).

    Returns:
        The comparison (:class:`~sam2elnet.option_checks.WeightsFiles`): the saved file at its
        recorded path (an older record: the text resolved here), and the digests that decide,
        read (:func:`weights_digest`, ~1 s per GB, once per process) only where they do: the
        given file's when the run recorded its file's digest, both when it did not and the
        paths differ; and the recorded file's, for a given file not on this machine, to name it
        in the refusal (``saved_found``).
    """
    old, new = weights_path(saved), weights_path(given)
    if old is None or new is None:
        return WeightsFiles(saved, given, old, new)
    rec = record or {}
    if rec.get("weights_path"):
        old = Path(str(rec["weights_path"]))
    # the given file not on this machine and the recorded one here: the refusal names it
    maybe_found = bool(rec.get("weights_path")) and old != new and not new.exists()
    if sha := rec.get("weights_sha256"):
        now = weights_digest(new)
        if now != sha and new.is_dir() and _folder_digest(new, "*") == sha:
            now = str(sha)  # a folder recorded before 2026-12-04, over every file: unchanged
        found = maybe_found and old.exists() and weights_digest(old) == sha
        return WeightsFiles(saved, given, old, new, str(sha), now, True, found)
    if old == new:
        return WeightsFiles(saved, given, old, new)
    then, now = weights_digest(old), weights_digest(new)
    return WeightsFiles(saved, given, old, new, then, now, saved_found=maybe_found and old.exists())


def weights_record(weights: Any) -> dict[str, str | None]:
    """What a run records of its ``--weights`` file: ``{"weights_path": "/abs/sam2.pt",
    "weights_sha256": "64 hex digits"}`` (:func:`~sam2elnet.option_checks.weights_path`,
    :func:`weights_digest`; both None for no weights, the digest None where the file is not on
    this machine). Recorded by ``elnet cv`` (``fold.json``; ``cv_config.json`` ``resolved``),
    ``elnet experiment`` (``experiment.json`` ``resolved``) and ``elnet train`` (``last.pt``): a
    relative ``--weights`` resumed from another working folder is compared as the file it named
    then, and the same bytes at another path are the same setting (:func:`weights_files`)."""
    path = weights_path(weights)
    return {
        "weights_path": None if path is None else str(path),
        "weights_sha256": None if path is None else weights_digest(path),
    }
