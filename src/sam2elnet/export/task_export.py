"""``elnet export --format label-studio``: the Label Studio route of
:func:`~sam2elnet.export.api.export_labels` (its checks, the options it takes, a note for each
option of another format); the tasks themselves are :mod:`~sam2elnet.export.labelstudio`'s."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sam2elnet.export.labelstudio import LabelStudioExport, export_label_studio
from sam2elnet.export.option_scope import check_no_warp, ignored_notes
from sam2elnet.export.run_info import run_label_files

__all__ = ["LABEL_STUDIO_ARGS", "export_tasks"]

LABEL_STUDIO_ARGS = (
    "images",
    "quality_csv",
    "model_id",
    "category",
    "progress",
    "positive_values",
)
"""The :func:`~sam2elnet.export.api.export_labels` keyword arguments a Label Studio export
takes."""


def export_tasks(
    labels: str | Path,
    out: str | Path,
    warp_to: str | None,
    polygons: bool,
    document_root: str | Path | None,
    kwargs: dict[str, Any],
) -> LabelStudioExport:
    """:func:`~sam2elnet.export.api.export_labels` with ``fmt="label-studio"`` (see there):
    ``kwargs`` are its keyword arguments; those of :data:`LABEL_STUDIO_ARGS` go to
    :func:`~sam2elnet.export.labelstudio.export_label_studio`, the others given get a note each
    (:func:`~sam2elnet.export.option_scope.ignored_notes`).

    Raises:
        UserError: ``warp_to`` given (tasks stay on the image's pixel grid), or ``out`` is one
            of the inputs (before anything is written).
    """
    from sam2elnet.utils.paths import check_not_input

    check_no_warp(warp_to, "Label Studio tasks stay on the image's pixel grid")
    inputs = [*run_label_files(labels), kwargs.get("quality_csv"), kwargs.get("images")]
    check_not_input(out, inputs)  # before anything is written
    ls = export_label_studio(
        labels,
        out,
        polygons=polygons,
        document_root=document_root,
        files=kwargs.pop("files", None),
        **{k: kwargs[k] for k in LABEL_STUDIO_ARGS if k in kwargs},
    )
    ls.notes += ignored_notes("label-studio", kwargs)  # tasks are in image pixels
    return ls
