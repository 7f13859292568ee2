"""``elnet export --warp-to``: the route of :func:`~sam2elnet.export.api.export_labels` that
exports the labels' warped copies (made in a temporary folder by
:func:`~sam2elnet.export.warp_labels.warp_label_copies`) and names the labels given, not their
copies, in its errors and notes."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sam2elnet.errors import UserError
from sam2elnet.export.export_result import ExportResult
from sam2elnet.export.option_scope import check_no_warp

__all__ = ["export_warped"]


def export_warped(
    export: Callable[..., ExportResult],
    labels: str | Path,
    out: str | Path,
    kind: str,
    files: list[Path],
    rated: set[str],
    warp_to: str,
    warp_method: str,
    kwargs: dict[str, Any],
) -> ExportResult:
    """Warp ``files`` (the labels of ``labels`` that go out) onto a regular map grid
    (``warp_to``: ``utm`` or a CRS; ``warp_method`` tps | polynomial) in a temporary folder
    and export the copies with ``export`` (the polygon / COCO exporter,
    ``export(folder, out, kind, **kwargs)``); ``rated``: the labels scored in the quality table
    (their quality layers are not carried). A label that cannot be warped is skipped, listed by
    its own path.

    Raises:
        UserError: bad ``warp_to`` / ``warp_method`` (:func:`~sam2elnet.data.warp.check_warp_options`),
            a COCO or chips export (``kind == "coco"`` or ``kwargs["chips"]``: they stay on the
            label's pixel grid), or the exporter's error about a copy, re-raised naming the
            label given (``... (after --warp-to ...)``).
    """
    from sam2elnet.data.warp import check_warp_options
    from sam2elnet.export.warp_labels import warp_label_copies

    check_warp_options(warp_to, warp_method)
    if kind == "coco" or kwargs.get("chips") is not None:
        check_no_warp(warp_to, "COCO files and chips stay on the label's pixel grid")
    with tempfile.TemporaryDirectory(prefix="elnet-warp-") as tmp:
        # labels that cannot be warped: skipped, as unreadable ones are without --warp-to
        notes, skips, copies = warp_label_copies(
            labels, files, Path(tmp), warp_to, warp_method, rated
        )
        kwargs["skipped"], kwargs["originals"] = tuple(skips.items), copies
        try:
            res = export(tmp, out, kind, **kwargs)
        except UserError as err:  # names the labels given, not their warped copies' folder
            if err.path is None or not err.path.is_relative_to(tmp):
                raise
            text = str(err)[len(f"{err.path}: ") :]
            where = Path(labels) / err.path.relative_to(tmp) if Path(labels).is_dir() else labels
            raise type(err)(f"{text} (after --warp-to {warp_to})", where) from None
    res.notes = notes + [n for n in res.notes if "ground control points only" not in n]
    return res
