"""Which model made a run folder's labels: ``model_id.json``, the model ``summary.json`` names.

``elnet annotate`` / ``elnet enhance`` (and ``elnet scene`` on a folder of scenes) write
``OUT/model_id.json`` when a job starts (:func:`record_model_identity`): the model file
(:func:`model_record`, absolute), its version ``NAME@HASH`` (:func:`model_version`) and the
SHA-256 of its bytes (:func:`model_identity`), plus the ``bands`` given; a built-in model
(``builtin:smoothing``, no file) is recorded by its name (:func:`builtin_identity`). ``--resume``
with another model is refused by comparing it (:func:`read_model_identity`,
:func:`same_model`), and exports tag the labels with its ``model_version``. :func:`recorded_model` finds the model file a
``summary.json`` names (the other run-folder files: :mod:`sam2elnet.data.runfolder`).

Read back (every export format, the review imports): :func:`run_model_version` and
:func:`run_model_path` of some labels, from ``model_id.json``, the labels' own tags
(:func:`label_record`) or ``summary.json`` (:func:`run_summary`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sam2elnet.data.runfolder import SUMMARY_JSON
from sam2elnet.utils.atomic import write_json_atomic

__all__ = [
    "BUILTIN_PREFIX",
    "MODEL_ID_JSON",
    "LabelTags",
    "label_record",
    "run_dirs",
    "run_model_path",
    "run_model_version",
    "run_summary",
    "summary_model",
    "builtin_identity",
    "file_sha256",
    "model_identity",
    "model_record",
    "model_version",
    "read_model_identity",
    "record_model_identity",
    "recorded_model",
    "same_model",
    "write_model_identity",
]

MODEL_ID_JSON = "model_id.json"
"""The identity of the model that made an output folder's labels (:func:`model_identity`)."""

BUILTIN_PREFIX = "builtin:"
"""How a built-in model is named where a model file is expected (``elnet scene --model
builtin:smoothing``: a model-free dry run)."""


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


_DIGESTS: dict[tuple[Any, ...], str] = {}
"""SHA-256 digests of model files this process has read, keyed by :func:`_file_key`."""
_DIGESTS_KEPT = 16


def _file_key(path: Path) -> tuple[Any, ...]:
    """What tells one version of a file from another without reading it: the resolved path,
    device, inode, size and the modification / change times in ns. Rewriting the file (in place
    or by replacing it) changes at least the inode or ``st_ctime_ns``, which no program can set."""
    st = path.stat()
    return (str(path.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _file_sha256(path: Path) -> str:
    """SHA-256 (64 hex digits) of the file's bytes, computed once per process for an unchanged
    file (:func:`_file_key`): every folder job hashes its model file (~0.12 s for the 111 MB
    Hiera-tiny file on the AMX Xeon, docs/benchmarks.md), and an ``elnet experiment`` / ``cv`` /
    ``serve`` process or a script runs many jobs with one model.

    Raises:
        OSError: the file cannot be read.
    """
    import hashlib

    key = _file_key(path)
    if (digest := _DIGESTS.get(key)) is not None:
        return digest
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    if len(_DIGESTS) >= _DIGESTS_KEPT:
        _DIGESTS.pop(next(iter(_DIGESTS)))
    _DIGESTS[key] = digest = h.hexdigest()
    return digest


file_sha256 = _file_sha256
"""SHA-256 of a file's bytes, once per process for an unchanged file (``--weights`` files too)."""


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


def builtin_identity(model: str | Path | None) -> dict[str, Any] | None:
    """What ``OUT/model_id.json`` records of a built-in model (``builtin:smoothing``): its name
    as ``model`` and ``model_version``, ``sha256`` None (no file); None when ``model`` is not a
    ``builtin:`` name, as :func:`sam2elnet.pipeline.scenes.load_scene_predictor` reads it."""
    if model is None or not str(model).startswith(BUILTIN_PREFIX):
        return None
    return {"model": str(model), "model_version": str(model), "sha256": None}


def same_model(recorded: dict[str, Any], identity: dict[str, Any]) -> bool:
    """Whether two identities (:func:`model_identity`, :func:`builtin_identity`) are one model:
    model files by the SHA-256 of their bytes (wherever they lie), built-in models by name; a
    file is never a built-in model."""
    if recorded.get("sha256") or identity.get("sha256"):
        return recorded.get("sha256") == identity.get("sha256")
    return recorded.get("model") == identity.get("model")


def read_model_identity(run_dir: str | Path) -> dict[str, Any] | None:
    """``run_dir/model_id.json`` (:func:`model_identity`'s or :func:`builtin_identity`'s
    entries); None when the folder has none (made before it was recorded, or by another tool) or
    it is not a JSON object with a ``sha256`` string (or, built-in, a ``builtin:`` ``model``)."""
    p = Path(run_dir) / MODEL_ID_JSON
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    if not isinstance(data.get("sha256"), str) and builtin_identity(data.get("model")) is None:
        return None
    return data


def write_model_identity(run_dir: str | Path, identity: dict[str, Any]) -> Path:
    """Write ``run_dir/model_id.json`` atomically, without an ``fsync``: it is written when a
    job starts, before any label, and a record lost to a power failure (not to a kill) is read
    as none (:func:`read_model_identity`): ``--resume`` then warns that the model cannot be
    checked, as for a folder made before the record, and redoes no label for it. One ``fsync``
    less per job: 1-10 ms of wall time on a shared disk (docs/reliability.md)."""
    return write_json_atomic(Path(run_dir) / MODEL_ID_JSON, identity, sync=False)


def record_model_identity(
    run_dir: str | Path, identity: dict[str, Any] | None, resume: bool
) -> None:
    """What a job does with ``run_dir/model_id.json`` when it starts (the folder locked, before
    any output is written), one rule for annotate / enhance and scene folders: the model's
    ``identity`` (:func:`model_identity`, :func:`builtin_identity`) is written; without one (a
    predictor passed to the API, no file behind it) a new job removes an earlier run's record,
    which no longer tells the labels' model, and ``resume`` keeps it (the labels it continues are
    that model's)."""
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


# --- read back: which model made some labels (every export format, the review imports) ---

LabelTags = Callable[[], "dict[str, str] | None"]
"""Returns the model record the labels' own tags carry
(:func:`~sam2elnet.data.label_tags.read_label_record`, all alike: :func:`label_record`), None
when they carry none; an export reads it once (``functools.cache``) and shares it."""


def run_dirs(labels: Path) -> list[Path]:
    """Folders that may hold the run's ``summary.json`` / ``model_id.json`` / a dataset's
    ``dataset.json``: the folder itself (a file's folder) and its parent (``RUN/labels``)."""
    base = labels if labels.is_dir() else labels.parent
    return [base, base.parent]


def run_summary(labels: str | Path) -> tuple[dict[str, Any], Path] | None:
    """(parsed ``summary.json``, its path) of the annotate / enhance run that wrote ``labels``
    (a run folder, its ``labels/`` / ``rejected/``, or a file in one), or None."""
    for d in run_dirs(Path(labels)):
        cand = d / SUMMARY_JSON
        if cand.is_file():
            try:
                data = json.loads(cand.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(data, dict):
                return data, cand
    return None


def summary_model(summary: dict[str, Any], where: Path) -> Path | None:
    """The model file of the run whose ``summary.json`` is ``where`` (:func:`recorded_model`:
    absolute, or an older run's relative path), if it exists."""
    return recorded_model(summary, where.parent)


def label_record(files: Sequence[Path]) -> dict[str, str] | None:
    """The model record the label rasters ``files`` all carry alike in their tags
    (:func:`sam2elnet.data.label_tags.read_label_record`: ``elnet scene`` labels); None when
    there are none, they carry none or they differ."""
    from sam2elnet.data.label_tags import read_label_record

    recs = [read_label_record(f) for f in files]
    first = recs[0] if recs else None
    return first if first is not None and all(r == first for r in recs) else None


def run_model_version(labels: str | Path, tags: LabelTags) -> str | None:
    """The ``model_version`` (``NAME@HASH``, :func:`model_version`) of the model that made
    ``labels`` (a run folder, its ``labels/`` / ``rejected/``, or a file in one), None when
    nothing tells it. In this order: the run folder's ``model_id.json`` (written when the job
    started: the model that made its labels even when the file changed since), the labels' own
    tags (``tags``: an ``elnet scene`` label, also one scene's, which has no folder of its own),
    ``summary.json``'s ``model_version``, the model file ``summary.json`` names (hashed now; its
    name alone when the file is gone). The one rule for every export format."""
    for d in run_dirs(Path(labels)):
        rec = read_model_identity(d)
        if rec is not None and rec.get("model_version"):
            return str(rec["model_version"])
    tagged = tags()
    if tagged is not None:
        return tagged["model_version"]
    found = run_summary(labels)
    if found is None:
        return None
    summary, where = found
    if summary.get("model_version"):
        return str(summary["model_version"])
    if not summary.get("model"):
        return None
    mp = summary_model(summary, where)
    if mp is None:
        return Path(str(summary["model"])).name
    try:
        return model_version(mp)
    except OSError:
        return mp.name


def run_model_path(labels: str | Path, tags: LabelTags) -> Path | None:
    """The model file (absolute) that made ``labels`` (as :func:`run_model_version` finds the
    run), None when nothing names one or it no longer exists: the run folder's
    ``model_id.json`` ``model``, else the labels' own ``MODEL`` tag (``tags``: an ``elnet
    scene`` label, which has no run folder), else the model ``summary.json`` names."""
    for d in run_dirs(Path(labels)):
        rec = read_model_identity(d)
        if rec is not None and rec.get("model") and Path(str(rec["model"])).is_file():
            return Path(str(rec["model"])).absolute()
    tagged = tags()
    if tagged is not None and tagged.get("model") and Path(tagged["model"]).is_file():
        return Path(tagged["model"]).absolute()
    found = run_summary(labels)
    mp = summary_model(*found) if found is not None else None
    return mp.absolute() if mp is not None else None
