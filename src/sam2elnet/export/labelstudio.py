"""Label Studio tasks with pre-annotations out (reviewed annotations come back in labelstudio_import).

Export (:func:`export_label_studio`): one task per label raster, least trusted first (ascending
predicted IoU from ``quality.csv``; labels without a score after those with one). Each task:

* ``data.image``: a browser-viewable PNG of the source image (8-bit; other dtypes stretched per
  band between the 2nd and 98th percentile) referenced as ``/data/local-files/?d=<path>``, the path
  relative to the *document root*. Label Studio serves it when started with
  ``LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true`` and
  ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=<document root>`` and the project has a *Local files*
  source storage whose path contains the PNGs (see docs/review.md);
* ``data.name`` / ``data.source`` / ``data.label`` / ``data.quality``: the label stem, the source
  image and label files (absolute paths) and the predicted IoU, used again by the import;
* ``predictions``: one prediction with ``model_version`` (the model id), ``score`` (the predicted
  IoU) and the mask as one ``brushlabels`` region (:mod:`sam2elnet.export.brush`), or with
  ``polygons=True`` one ``polygonlabels`` region per 4-connected component, points in percent of
  the image width/height (pixel-corner outlines; Label Studio polygons have no holes, so holes
  are filled).

The labelling configuration that matches the tasks is :func:`label_config`; the export writes it
next to the tasks as ``<out stem>.xml``.

The route of :func:`~sam2elnet.export.api.export_labels` with ``fmt="label-studio"`` (its
checks, the options it takes, a note for each option of another format) is
:func:`export_tasks`.

Import (the reviewed annotations back in as masks) is :mod:`sam2elnet.export.labelstudio_import`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from sam2elnet.errors import DataError, UserError
from sam2elnet.export.brush import brush_encode
from sam2elnet.export.review_pick import review_quality_csv
from sam2elnet.utils.atomic import atomic_path, json_text, write_text_atomic

__all__ = [
    "FROM_NAME",
    "POLYGON_NAME",
    "TO_NAME",
    "label_config",
    "image_view",
    "mask_result",
    "build_task",
    "export_label_studio",
    "LabelStudioExport",
    "LABEL_STUDIO_ARGS",
    "export_tasks",
]

FROM_NAME = "label"  # name of the BrushLabels control in the labelling config
POLYGON_NAME = "polygon"  # name of the PolygonLabels control (same label, same image)
TO_NAME = "image"  # name of the Image object (and the task data key holding its URL)
_LOCAL_FILES = "/data/local-files/?d="


def label_config(category: str = "foreground", polygons: bool = False) -> str:
    """Label Studio labelling configuration matching the exported tasks.

    Both tools are offered whatever the pre-annotations are, so a reviewer can paint over polygon
    pre-annotations or draw a polygon on brush ones: a ``BrushLabels`` control named
    :data:`FROM_NAME` and a ``PolygonLabels`` control named :data:`POLYGON_NAME`, each with the
    one label ``category`` and bound to the ``image`` object. ``elnet import --from
    label-studio`` reads both region types (their union is the mask).

    Args:
        category: The label name (one class).
        polygons: The pre-annotations are polygons: the ``PolygonLabels`` control comes first
            (else ``BrushLabels`` does).

    Returns:
        The XML text (``<View>`` with the ``image`` object and the two controls).
    """
    from xml.sax.saxutils import quoteattr

    label = f'    <Label value={quoteattr(category)} background="#ff3300"/>\n'
    brush = f'  <BrushLabels name="{FROM_NAME}" toName="{TO_NAME}">\n{label}  </BrushLabels>\n'
    poly = (
        f'  <PolygonLabels name="{POLYGON_NAME}" toName="{TO_NAME}">\n{label}  </PolygonLabels>\n'
    )
    tools = poly + brush if polygons else brush + poly
    return f'<View>\n  <Image name="{TO_NAME}" value="${TO_NAME}" zoom="true"/>\n{tools}</View>\n'


def _stretch(data: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    """(C, H, W) any dtype -> uint8: uint8 kept, else 2-98 % per-band stretch over valid pixels."""
    if data.dtype == np.uint8:
        return data
    out = np.zeros(data.shape, np.uint8)
    for b in range(data.shape[0]):
        x = data[b].astype(np.float32)
        sel = np.isfinite(x) if valid is None else (valid & np.isfinite(x))
        if not sel.any():
            continue
        lo, hi = np.percentile(x[sel], [2, 98])
        y = (np.nan_to_num(x) - lo) / max(float(hi - lo), 1e-6)
        out[b] = np.round(np.clip(y, 0, 1) * 255).astype(np.uint8)
    return out


def image_view(src: Path, dst: Path) -> tuple[int, int]:
    """Write a PNG a browser can show of ``src`` (grey or RGB, 8-bit).

    Other dtypes are stretched per band between the 2nd and 98th percentile of the valid pixels.

    Args:
        src: Source image (any raster :func:`~sam2elnet.data.images.read_image` reads).
        dst: The PNG to write (atomically).

    Returns:
        ``(height, width)`` of the image, px.

    Raises:
        DataError: unreadable source.
    """
    import cv2

    from sam2elnet.data.images import read_image

    img = read_image(src)
    data = _stretch(img.data, img.valid if img.nodata is not None else None)
    data = data[:1] if data.shape[0] < 3 else data[:3]
    arr = data[0] if data.shape[0] == 1 else np.moveaxis(data, 0, -1)[:, :, ::-1]
    with atomic_path(dst) as tmp:
        if not cv2.imwrite(str(tmp), np.ascontiguousarray(arr)):
            raise DataError("cannot write the image view; check the folder is writable", dst)
    return img.shape


def mask_result(mask: np.ndarray, category: str, polygons: bool = False) -> list[dict[str, Any]]:
    """Label Studio ``result`` regions for a mask.

    Args:
        mask: bool (H, W).
        category: The label name.
        polygons: One ``polygonlabels`` region per 4-connected component (points in percent of
            the image size, holes filled) instead of one ``brushlabels`` RLE region.

    Returns:
        The regions (empty list for an empty mask).
    """
    h, w = mask.shape
    base = {
        "from_name": POLYGON_NAME if polygons else FROM_NAME,
        "to_name": TO_NAME,
        "original_width": int(w),
        "original_height": int(h),
        "image_rotation": 0,
    }
    if not mask.any():
        return []
    if not polygons:
        return [
            {
                **base,
                "id": "m1",
                "type": "brushlabels",
                "value": {"format": "rle", "rle": brush_encode(mask), "brushlabels": [category]},
            }
        ]
    from rasterio import features

    out = []
    for geom, _v in features.shapes(mask.astype(np.uint8), mask=mask.astype(bool), connectivity=4):
        ring = geom["coordinates"][0][:-1]
        pts = [[100.0 * x / w, 100.0 * y / h] for x, y in ring]
        out.append(
            {
                **base,
                "id": f"p{len(out) + 1}",
                "type": "polygonlabels",
                "value": {"points": pts, "closed": True, "polygonlabels": [category]},
            }
        )
    return out


def build_task(
    image_url: str,
    mask: np.ndarray,
    *,
    name: str,
    score: float | None,
    model_version: str,
    category: str = "foreground",
    polygons: bool = False,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One Label Studio task with a pre-annotation (prediction) of ``mask``.

    Args:
        image_url: ``data.image`` URL (``/data/local-files/?d=...``).
        mask: bool (H, W) label.
        name: The label stem (``data.name``).
        score: Predicted IoU in [0, 1] (the prediction's ``score``), or None.
        model_version: The model id.
        category, polygons: As :func:`mask_result`.
        extra: More ``data`` entries (source and label paths, quality).

    Returns:
        The task dict (``data``, ``predictions``).
    """
    pred: dict[str, Any] = {
        "model_version": model_version,
        "result": mask_result(mask, category, polygons),
    }
    if score is not None:
        pred["score"] = float(score)
    data = {TO_NAME: image_url, "name": name, **(extra or {})}
    if score is not None:
        data["quality"] = float(score)
    return {"data": data, "predictions": [pred]}


@dataclass
class LabelStudioExport:
    """What :func:`export_label_studio` wrote."""

    out: Path
    config: Path
    views: Path
    document_root: Path
    n_tasks: int
    n_regions: int
    notes: list[str] = field(default_factory=list)
    #: ``--review-count`` / ``--max-quality``: how many labels of how many went out; None: all
    selection: str | None = None
    #: labels skipped by the batch rule (unreadable), one row each (label, reason), and
    #: their list ``<out stem>_label-studio_skipped.csv`` (None: nothing skipped)
    skipped: list[dict[str, str]] = field(default_factory=list)
    skipped_csv: Path | None = None

    def summary(self) -> str:
        """One line: the tasks, the labelling config, the images and, when only some labels
        went out, the review selection."""
        s = (
            f"{self.out}: {self.n_tasks} Label Studio tasks ({self.n_regions} pre-annotated "
            f"regions), least trusted first; labelling config {self.config.name}; images in "
            f"{self.views} served from document root {self.document_root}"
        )
        return f"{s}; {self.selection}" if self.selection else s


def export_label_studio(
    labels: str | Path,
    out: str | Path,
    *,
    images: str | Path | None = None,
    quality_csv: str | Path | None = None,
    model_id: str | None = None,
    polygons: bool = False,
    document_root: str | Path | None = None,
    views: str | Path | None = None,
    category: str | None = None,
    progress: bool = True,
    positive_values: tuple[float, ...] | None = None,
    files: list[Path] | None = None,
) -> LabelStudioExport:
    """Write Label Studio tasks (JSON list) with pre-annotations for label rasters.

    Tasks are ordered least trusted first (ascending predicted IoU from ``quality.csv``). The
    labelling configuration is written next to the tasks as ``<out stem>.xml``.

    Args:
        labels: A label raster, a folder of them, or an ``elnet annotate`` run folder (then
            ``labels/`` and ``rejected/`` are both exported).
        out: The tasks JSON file.
        images: Source images (folder matched by stem, or one file); else the ``image`` column
            of ``quality.csv``, else the label's ``SOURCE`` tag.
        quality_csv: Predicted IoUs (default: the run folder's ``quality.csv``).
        model_id: ``model_version`` of the predictions (default: from the run's summary).
        polygons: Polygon regions instead of brush masks.
        document_root: Label Studio's local-files document root (default: the folder of ``out``).
        views: Folder for the browser PNG views (default ``<out stem>-images/``); must lie inside
            ``document_root``.
        category: The label name (None: the run's domain, ``"road"`` / ``"oil spill"``, else
            ``"foreground"``; :func:`~sam2elnet.export.run_info.default_category`).
        progress: Show a progress bar.
        positive_values: Label values that mean "object" (class-index masks).
        files: The label files to export, one task each (a review selection,
            :mod:`~sam2elnet.export.review_pick`); None: every label of ``labels``.

    Returns:
        :class:`LabelStudioExport` (paths, task and region counts, notes, the labels skipped
        and their list ``<out stem>_label-studio_skipped.csv``).

    Raises:
        UserError: a view folder outside the document root; every label of a folder
            unreadable (nothing exported).
        DataError: missing source images; ``labels`` one file that cannot be read (an
            unreadable label of a folder is skipped and listed instead, the batch rule).
    """
    from sam2elnet.export.export_result import write_skipped
    from sam2elnet.export.label_screen import screen_labels
    from sam2elnet.export.labels import LabelRaster, find_image
    from sam2elnet.export.run_info import (
        default_category,
        labels_model_version,
        quality_and_images,
        run_folder_notes,
        run_label_files,
    )
    from sam2elnet.utils.progress import track

    out = Path(out)
    if out.suffix.lower() != ".json":
        raise UserError("Label Studio tasks are a .json file; name --out like tasks.json", out)
    lp = Path(labels)
    files = run_label_files(lp) if files is None else files
    # the batch rule of every export: an unreadable label of a folder is skipped and listed in
    # <out stem>_label-studio_skipped.csv (one file given alone: its own error)
    screened = screen_labels(files, lp, "label-studio", positive_values)
    files = screened.files
    # a run folder: how many kept / rejected labels are exported (the skipped ones not counted)
    notes: list[str] = run_folder_notes(lp, files)
    if category is None:
        category, why = default_category(lp)
        if why != "default":
            notes.append(f"label {category!r}: {why}; --category overrides")
    qpath = review_quality_csv(lp, quality_csv)  # given, else the run's
    quality, csv_images = quality_and_images(qpath) if qpath is not None else ({}, {})
    root = Path(document_root if document_root is not None else out.parent).resolve()
    vdir = Path(views if views is not None else out.parent / f"{out.stem}-images").resolve()
    if not vdir.is_relative_to(root):
        raise UserError(
            f"the image views folder {vdir} is not inside the document root {root}; "
            "give --document-root a folder that contains it",
            out,
        )
    mv = labels_model_version(lp, model_id)
    if not quality:
        notes.append("no quality.csv: tasks carry no prediction score and keep file order")

    entries = []
    # the skipped labels counted in the bar and said in its closing line (label-studio: 3/3
    # label in ..., skipped 1), as every export's
    for f in track(files, "label-studio", "label", progress, skipped=len(screened.skips.items)):
        lab = LabelRaster(f, positive_values)
        try:
            mask = lab.read_mask()
        finally:
            lab.close()
        src = None
        if images is not None:
            src = find_image(f, images, lab.source if lab.source != f.name else None)
        elif f.stem in csv_images and csv_images[f.stem].exists():
            src = csv_images[f.stem]
        else:
            src = find_image(f, None, lab.source if lab.source != f.name else None)
        if src is None:
            raise DataError(
                "no source image found for the label; give --images (folder with images named "
                "like the labels, or the image file)",
                f,
            )
        q = quality.get(f.stem, quality.get(src.stem))
        if q is not None and not math.isfinite(q):
            q = None
        entries.append((q, f, src, mask))
    # least trusted first; unscored labels after the scored ones, file order otherwise
    entries.sort(key=lambda e: (e[0] is None, e[0] if e[0] is not None else 0.0))

    tasks = []
    n_regions = 0
    holes = False
    for q, f, src, mask in entries:
        view = vdir / f"{f.stem}.png"
        h, w = image_view(src, view)
        if (h, w) != mask.shape:
            raise DataError(
                f"image {src.name} is {w}x{h} px but the label is {mask.shape[1]}x{mask.shape[0]}",
                f,
            )
        url = _LOCAL_FILES + quote(view.relative_to(root).as_posix(), safe="/")
        task = build_task(
            url,
            mask,
            name=f.stem,
            score=q,
            model_version=mv,
            category=category,
            polygons=polygons,
            extra={"source": str(src.resolve()), "label": str(f.resolve())},
        )
        if polygons and not holes:
            from scipy import ndimage

            holes = bool((ndimage.binary_fill_holes(mask) & ~mask).any())
        n_regions += len(task["predictions"][0]["result"])
        tasks.append(task)
    if holes:
        notes.append("Label Studio polygons have no holes: holes in the labels are filled")
    write_text_atomic(out, json_text(tasks, indent=None) + "\n")
    config = out.with_suffix(".xml")
    write_text_atomic(config, label_config(category, polygons))
    skipped_csv = write_skipped(out, screened.skips, "label-studio")  # else an earlier one goes
    return LabelStudioExport(
        out, config, vdir, root, len(tasks), n_regions, notes,
        skipped=list(screened.skips.items), skipped_csv=skipped_csv,
    )  # fmt: skip


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
    """:func:`~sam2elnet.export.api.export_labels` with ``fmt="label-studio"`` (see there; it
    has refused an ``out`` that is one of the inputs already): ``kwargs`` are its keyword
    arguments; those of :data:`LABEL_STUDIO_ARGS` go to :func:`export_label_studio`, the others
    given get a note each (:func:`~sam2elnet.export.option_scope.ignored_notes`).

    Raises:
        UserError: ``warp_to`` given (tasks stay on the image's pixel grid).
    """
    from sam2elnet.export.option_scope import check_no_warp, ignored_notes

    check_no_warp(warp_to, "Label Studio tasks stay on the image's pixel grid")
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
