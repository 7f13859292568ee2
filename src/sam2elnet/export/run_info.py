"""What an export learns from the run that made the labels: which label files, which model, which
object category.

``elnet annotate`` / ``enhance`` write ``OUT/labels/`` (kept labels), ``OUT/rejected/`` (labels
the quality filter rejected), ``OUT/quality.csv`` and ``OUT/summary.json`` (the model file, and
since this module the model's domain and the category name). Every export format takes such a
run folder as ``--labels`` (:func:`run_label_files`), names its category after the run's domain
(:func:`default_category`: ``"road"`` for a roads model, ``"oil spill"`` for an oil-spill one) and
its model version after the model file (:func:`labels_model_version`; which model made the labels
is :mod:`sam2elnet.data.run_model`'s: ``run_model_version`` / ``run_model_path``, given the
labels' tags as :func:`label_tags` reads them).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from sam2elnet.data.run_model import (
    LabelTags,
    label_record,
    read_model_identity,
    run_dirs,
    run_model_version,
    run_summary,
    summary_model,
)
from sam2elnet.data.runfolder import (
    image_paths_by_stem,
    kept_by_stem,
    quality_by_stem,
    read_quality_table,
)
from sam2elnet.errors import DataError
from sam2elnet.utils.advice import plural

__all__ = [
    "DEFAULT_CATEGORY",
    "RUN_SUBFOLDERS",
    "default_category",
    "label_tags",
    "labels_model_version",
    "quality_and_images",
    "quality_images_kept",
    "run_folder_notes",
    "run_label_files",
]

DEFAULT_CATEGORY = "foreground"
"""The category name when nothing tells the domain (labels made by another tool)."""

RUN_SUBFOLDERS = ("labels", "rejected")
"""The label folders of an annotate / enhance run folder, in export order."""


def run_label_files(labels: str | Path) -> list[Path]:
    """Label files of a file, a label folder, or a run folder (``labels/`` then ``rejected/``).

    Raises:
        DataError: no label raster there (:func:`~sam2elnet.export.labels.find_labels`' message).
    """
    from sam2elnet.export.labels import find_labels

    lp = Path(labels)
    subs = [lp / s for s in RUN_SUBFOLDERS] if lp.is_dir() else []
    files: list[Path] = []
    for s in subs:
        if s.is_dir():
            try:
                files += find_labels(s)
            except DataError:
                pass
    return files if files else find_labels(lp)


def quality_and_images(path: str | Path) -> tuple[dict[str, float], dict[str, Path]]:
    """(label / image stem -> predicted IoU, label / image stem -> source image) of an annotate /
    enhance ``quality.csv``, read once by :func:`sam2elnet.data.runfolder.read_quality_table`
    (:func:`~sam2elnet.data.runfolder.quality_by_stem`,
    :func:`~sam2elnet.data.runfolder.image_paths_by_stem`).

    Raises:
        DataError: a missing or unreadable table, or one without a name or score column.
    """
    quality, images, _ = quality_images_kept(path)
    return quality, images


def quality_images_kept(
    path: str | Path,
) -> tuple[dict[str, float], dict[str, Path], dict[str, bool]]:
    """:func:`quality_and_images` and, third, label / image stem -> whether the quality filter
    kept the label (the table's ``kept`` column,
    :func:`~sam2elnet.data.runfolder.kept_by_stem`; stems without a readable value are left
    out). One read of the table.

    Raises:
        DataError: as :func:`quality_and_images`.
    """
    recs = read_quality_table(path)
    return quality_by_stem(recs), image_paths_by_stem(recs), kept_by_stem(recs)


def label_tags(labels: str | Path) -> LabelTags:
    """The model record in the tags of the label raster ``labels``
    (:func:`sam2elnet.data.label_tags.read_label_record`: an ``elnet scene`` label), or for a
    folder the record its label files (:func:`run_label_files`) all carry alike
    (:func:`sam2elnet.data.run_model.label_record`); None when they carry none or differ. Read
    on the first call, once (the ``tags`` of :func:`~sam2elnet.data.run_model.run_model_version`,
    :func:`~sam2elnet.data.run_model.run_model_path` and :func:`default_category`)."""

    @functools.cache
    def read() -> dict[str, str] | None:
        lp = Path(labels)
        if lp.is_file():
            return label_record([lp])
        try:
            return label_record(run_label_files(lp))
        except DataError:
            return None

    return read


def labels_model_version(labels: str | Path, model_id: str | None = None) -> str:
    """``model_id``, else the version of the model that made ``labels``
    (:func:`sam2elnet.data.run_model.run_model_version`), else
    :data:`~sam2elnet.option_values.MODEL_ID_DEFAULT` (Label Studio predictions need one)."""
    from sam2elnet.option_values import MODEL_ID_DEFAULT

    return model_id or run_model_version(labels, label_tags(labels)) or MODEL_ID_DEFAULT


def _model_category(model: Path) -> str | None:
    """The category the model file's training recorded (its domain and modality)."""
    from sam2elnet.data.domain import category_name
    from sam2elnet.model.io import read_model_file

    try:
        extra = read_model_file(model).get("extra") or {}
    except Exception:  # an unreadable model only loses the name: keep the default
        extra = {}
    train = extra.get("train") if isinstance(extra, dict) else None
    if isinstance(train, dict):
        return category_name(train.get("domain"), train.get("modality"))
    return None


def default_category(labels: str | Path, tags: LabelTags | None = None) -> tuple[str, str]:
    """(category name, where it came from) for the labels' objects (``tags``: the labels' tags,
    :func:`label_tags`; None: read here when needed).

    In this order: the run's ``summary.json`` ``domain.category`` (annotate / enhance record it);
    the domain and modality the run's model file recorded in training
    (:func:`sam2elnet.data.domain.category_name`); the labels' own ``CATEGORY`` tag
    (:func:`label_tags`: ``elnet scene`` labels); the model a folder's ``model_id.json``
    names (``elnet scene`` folders made before the tags); a synthetic dataset's
    ``dataset.json`` ``task`` next to the labels; else :data:`DEFAULT_CATEGORY`.
    """
    from sam2elnet.data.domain import category_name

    found = run_summary(labels)
    if found is not None:
        summary, where = found
        dom = summary.get("domain")
        if isinstance(dom, dict) and dom.get("category"):
            return str(dom["category"]), f"the run's domain ({where})"
        mp = summary_model(summary, where)
        name = _model_category(mp) if mp is not None else None
        if name:
            return name, f"the domain of the run's model ({mp})"
    tagged = (tags if tags is not None else label_tags(labels))()
    if tagged is not None and tagged.get("category"):
        return tagged["category"], f"the model that made the labels ({tagged['model_version']})"
    for d in run_dirs(Path(labels)):
        rec = read_model_identity(d)
        mp = Path(str(rec["model"])) if rec is not None and rec.get("model") else None
        name = _model_category(mp) if mp is not None and mp.is_file() else None
        if name:
            return name, f"the domain of the run's model ({mp})"
    for d in run_dirs(Path(labels)):
        cand = d / "dataset.json"
        if cand.is_file():
            try:
                task = json.loads(cand.read_text(encoding="utf-8")).get("task")
            except (OSError, ValueError, AttributeError):
                continue
            name = category_name(None, task=task if isinstance(task, str) else None)
            if name:
                return name, f"the dataset's task ({cand})"
    return DEFAULT_CATEGORY, "default"


def run_folder_notes(labels: Path, files: list[Path]) -> list[str]:
    """A note naming the rejected labels of a run folder export (they are exported too):
    ``files``, the labels exported (after the unreadable ones were skipped), counted."""
    if not labels.is_dir() or not any(f.parent == labels / "rejected" for f in files):
        return []

    n_rej = sum(f.parent == labels / "rejected" for f in files)
    return [
        f"{labels} is an annotate/enhance run folder: exported "
        f"{plural(len(files) - n_rej, 'kept label')} "
        f"(labels/) and {n_rej} the quality filter rejected (rejected/), the ones most worth a "
        f"look; --labels {labels / 'labels'} exports the kept ones only"
    ]
