"""Which model made a run folder's labels: ``model_id.json``, the model ``summary.json`` names.

``elnet annotate`` / ``elnet enhance`` (and ``elnet scene`` on a folder of scenes) write
``OUT/model_id.json`` when a job starts (:func:`record_model_identity`): the model file
(:func:`model_record`, absolute), its version ``NAME@HASH`` (:func:`model_version`) and the
SHA-256 of its bytes (:func:`model_identity`), plus the ``bands`` given. ``--resume`` with
another model is refused by comparing it (:func:`read_model_identity`), and exports tag the
labels with its ``model_version``. :func:`recorded_model` finds the model file a
``summary.json`` names (the other run-folder files: :mod:`sam2elnet.data.runfolder`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sam2elnet.utils.atomic import write_json_atomic

__all__ = [
    "MODEL_ID_JSON",
    "model_identity",
    "model_record",
    "model_version",
    "read_model_identity",
    "record_model_identity",
    "recorded_model",
    "write_model_identity",
]

MODEL_ID_JSON = "model_id.json"
"""The identity of the model that made an output folder's labels (:func:`model_identity`)."""


def model_record(model: str | Path) -> str:
    """The ``model`` entry of ``summary.json``: the model file's resolved absolute path (symlinks
    followed: the file that ran), so the run's model is found from any working folder
    (:func:`recorded_model`)."""
    return str(Path(model).expanduser().resolve())


def model_version(model: str | Path, sha256: str | None = None) -> str:
    """``NAME@HASH``: the model file's name and the first 8 hex digits of its SHA-256 (given, or
    read from the file): the one model version Label Studio predictions, exports and
    ``model_id.json`` carry.

    Raises:
        OSError: ``sha256`` not given and the file cannot be read.
    """
    digest = sha256 if sha256 is not None else _file_sha256(Path(model))
    return f"{Path(model).name}@{digest[:8]}"


def _file_sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_identity(model: str | Path) -> dict[str, str]:
    """What ``OUT/model_id.json`` records of the model file that makes a folder's labels:
    ``model`` (:func:`model_record`), ``model_version`` (:func:`model_version`) and ``sha256``
    (64 hex digits of the whole file; two files with the same bytes are the same model).

    Raises:
        OSError: the file cannot be read.
    """
    digest = _file_sha256(Path(model))
    return {
        "model": model_record(model),
        "model_version": model_version(model, digest),
        "sha256": digest,
    }


def read_model_identity(run_dir: str | Path) -> dict[str, Any] | None:
    """``run_dir/model_id.json`` (:func:`model_identity`'s entries); None when the folder has
    none (made before it was recorded, or by another tool) or it is not a JSON object with a
    ``sha256`` string."""
    p = Path(run_dir) / MODEL_ID_JSON
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("sha256"), str):
        return None
    return data


def write_model_identity(run_dir: str | Path, identity: dict[str, Any]) -> Path:
    """Write ``run_dir/model_id.json`` atomically."""
    return write_json_atomic(Path(run_dir) / MODEL_ID_JSON, identity)


def record_model_identity(
    run_dir: str | Path, identity: dict[str, Any] | None, resume: bool
) -> None:
    """What a job does with ``run_dir/model_id.json`` when it starts (the folder locked, before
    any output is written), one rule for annotate / enhance and scene folders: the model's
    ``identity`` (:func:`model_identity`) is written; without one (a model that is not a file,
    e.g. ``builtin:smoothing``) a new job removes an earlier run's record, which no longer tells
    the labels' model, and ``resume`` keeps it (the labels it continues are that model's)."""
    if identity is not None:
        write_model_identity(run_dir, identity)
    elif not resume:
        (Path(run_dir) / MODEL_ID_JSON).unlink(missing_ok=True)


def recorded_model(summary: dict[str, Any], where: str | Path) -> Path | None:
    """The model file a ``summary.json`` names, if it exists.

    Runs record it absolute (:func:`model_record`); runs made before recorded it as typed, relative
    to the folder they were started in, which is unknown: such a path is tried from the working
    folder, then from each folder above the run folder ``where`` (``elnet annotate --model
    run0/model.pt --out loop/auto`` started in ``P`` is found from ``P/loop/auto``'s parents).
    """
    model = summary.get("model")
    if not model:
        return None
    p = Path(str(model))
    if p.is_absolute():
        return p if p.is_file() else None
    for base in (Path.cwd(), *Path(where).absolute().parents):
        if (base / p).is_file():
            return base / p
    return None
