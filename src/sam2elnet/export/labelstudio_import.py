"""Reviewed labels back in: Label Studio's JSON export -> one 0/255 training mask per task.

:func:`import_label_studio` reads Label Studio's JSON export (a list of tasks with
``annotations``), takes each task's latest annotation that was not cancelled, rasterises its
brush and polygon regions (:func:`result_mask`) and writes one 0/255 mask per task named like the
source image (``<stem>.tif`` with the image's georeference when the image is a GeoTIFF, else
``<stem>.png``), the layout ``elnet train`` reads as ``masks/``; each task's image is found by
:mod:`sam2elnet.export.labelstudio_tasks`. :func:`read_json_export` and
:class:`ImportResult` serve the COCO / CVAT importer (:mod:`sam2elnet.export.coco_import`) too.
The tasks going out are :mod:`sam2elnet.export.labelstudio`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.data.run_model import run_model_path
from sam2elnet.errors import DataError
from sam2elnet.export.brush import brush_decode
from sam2elnet.export.image_lookup import check_unique_stems
from sam2elnet.export.import_result import ImportResult
from sam2elnet.export.labelstudio_tasks import (
    no_image_found,
    no_image_why,
    task_image,
    task_ref,
)
from sam2elnet.export.mask_folder import (
    CommitCheck,
    MaskFolder,
    MaskGrid,
    mask_grid,
    removed_note,
)
from sam2elnet.export.run_info import label_tags
from sam2elnet.utils.advice import name_sample, plural

__all__ = [
    "NOT_REVIEWED",
    "SKIPPED_BY_REVIEWER",
    "ImportResult",
    "fill_polygons",
    "import_label_studio",
    "read_json_export",
    "result_mask",
    "skipped_notes",
]

NOT_REVIEWED = "not reviewed yet (no annotation)"
"""Why a task without any annotation gets no mask."""
SKIPPED_BY_REVIEWER = "the reviewer skipped it in Label Studio (annotation cancelled)"
"""Why a task whose every annotation was cancelled (the reviewer pressed *Skip*) gets none."""


def fill_polygons(polygons: Iterable[Any], height: int, width: int) -> np.ndarray:
    """Bool (height, width) union of polygons drawn in an annotation tool, pixel-centre rule.

    Args:
        polygons: Each an (n, 2) sequence of vertices in pixels, x = column, y = row, on pixel
            corners (COCO, CVAT, Label Studio after its percent is scaled); fewer than 3
            vertices are ignored.
        height, width: Mask size, px.

    Returns:
        bool (height, width): a pixel is foreground when its centre lies inside a polygon
        (``rasterio.features.rasterize``). A self-intersecting polygon, as a reviewer draws it
        (a "bow tie"), is repaired with ``shapely.make_valid``, which keeps every lobe: the
        area pycocotools (the COCO reference) fills. (``buffer(0)`` kept only one lobe.)
        Zero-area parts (all vertices on a line) add nothing.
    """
    import shapely
    from shapely.geometry import Polygon

    from sam2elnet.data.vector import burn_shapes

    shapes = []
    for poly in polygons:
        xy = np.asarray(poly, dtype=float).reshape(-1, 2)
        if len(xy) < 3 or not np.isfinite(xy).all():
            continue
        g = Polygon(xy)
        if not g.is_valid:
            g = shapely.make_valid(g)
        parts = shapely.get_parts(shapely.get_parts(g))  # collection > multipolygon > polygon
        shapes += [q for q in parts if q.geom_type == "Polygon" and not q.is_empty]
    return burn_shapes(shapes, height, width) > 0


# --------------------------------------------------------------------------------------- import


def result_mask(
    results: Iterable[dict[str, Any]], height: int, width: int, category: str | None = None
) -> np.ndarray:
    """Union of the brush and polygon regions of a Label Studio ``result`` list.

    Polygon points are percent of the image size; a pixel is foreground when its centre lies
    inside.

    Args:
        results: The annotation's ``result`` regions.
        height, width: Image size, px.
        category: Only regions with that label; None takes every brush / polygon region.

    Returns:
        bool (height, width) mask.

    Raises:
        DataError: a region drawn on an image of another size, an unreadable brush RLE, or
            polygon points that are not [x, y] number pairs.
    """
    mask = np.zeros((height, width), dtype=bool)
    polys = []
    for r in results:
        kind = r.get("type")
        value = r.get("value") or {}
        if kind not in ("brushlabels", "polygonlabels", "polygon", "brush"):
            continue
        names = value.get("brushlabels") or value.get("polygonlabels") or []
        if category is not None and names and category not in names:
            continue
        h = int(r.get("original_height") or height)
        w = int(r.get("original_width") or width)
        if (h, w) != (height, width):
            raise DataError(
                f"annotation region is {w}x{h} px but the image is {width}x{height}", None
            )
        if kind in ("brushlabels", "brush"):
            if value.get("format", "rle") != "rle" or "rle" not in value:
                continue
            try:
                mask |= brush_decode(value["rle"], height, width)
            except ValueError as err:
                raise DataError(f"unreadable brush mask ({err})") from None
        else:
            try:
                pts = [
                    (float(x) * width / 100.0, float(y) * height / 100.0)
                    for x, y in value["points"]
                ]
            except (KeyError, TypeError, ValueError) as err:
                raise DataError(
                    f"unreadable polygon points ({type(err).__name__}: {err}; each point is "
                    "[x, y] in percent of the image); export the project from Label Studio again"
                ) from None
            polys.append(pts)
    if polys:
        mask |= fill_polygons(polys, height, width)
    return mask


def read_json_export(path: Path, what: str, remedy: str = "") -> Any:
    """The parsed JSON of an annotation tool's export (Label Studio, COCO) for the importers.

    Args:
        path: The export file.
        what: What it is, for messages (``"Label Studio export"``).
        remedy: Appended to the "not JSON" message (e.g. ``"; export the project as JSON"``).

    Returns:
        The parsed JSON value.

    Raises:
        DataError: the file is missing, or is not UTF-8 JSON.
    """
    if not path.is_file():
        raise DataError(f"{what} does not exist; check the path", path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise DataError(f"not a JSON file ({err}){remedy}", path) from None


def _region_kind(value: dict[str, Any]) -> str | None:
    """The JSON-export ``type`` of a JSON-MIN region value: ``brushlabels`` (an ``rle``),
    ``polygonlabels`` (``points``), another tag's name (ignored by :func:`result_mask`), or None
    when the dict is no region. Label Studio's JSON-MIN drops ``type`` (its converter pops it)."""
    if "rle" in value or "brushlabels" in value:
        return "brushlabels"
    if "points" in value or "polygonlabels" in value:
        return "polygonlabels"
    labels = [k for k in value if k.endswith("labels") or k in ("choices", "text")]
    return labels[0] if labels else None


def _is_json_min(records: list[dict[str, Any]]) -> bool:
    """Label Studio's JSON-MIN export: one flat record per annotation (the task's data keys at the
    top, each control's regions under its name, ``annotation_id`` / ``annotator``), no ``data`` /
    ``annotations``."""
    return not any("data" in r or "annotations" in r for r in records) and any(
        "annotation_id" in r or "annotator" in r for r in records
    )


def _from_json_min(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """JSON-MIN records as JSON-export tasks (``data``, ``annotations[].result``).

    JSON-MIN (Label Studio's converter, ``convert_to_json_min``; checked against Label Studio
    1.23's export in ``tests/test_labelstudio_server.py``) writes, per annotation that was not
    cancelled, the task's ``data`` entries at the top level, ``id`` (the task id), and per
    control ``from_name`` the list of its regions' ``value`` with ``original_width`` /
    ``original_height`` added (no ``type``: :func:`_region_kind` tells a brush from a polygon);
    a task without annotation is one record with ``annotation_id`` null. The region lists
    replace a data entry of the same name (``label`` here). Records of one task are grouped by
    ``id``.
    """
    meta = {"id", "annotator", "annotation_id", "created_at", "updated_at", "lead_time"}
    tasks: dict[Any, dict[str, Any]] = {}
    for i, rec in enumerate(records):
        data: dict[str, Any] = {}
        result: list[dict[str, Any]] = []
        for k, v in rec.items():
            regions = v if isinstance(v, list) else None
            if regions and all(isinstance(r, dict) and _region_kind(r) for r in regions):
                for r in regions:
                    value = {k2: v2 for k2, v2 in r.items() if k2 != "type"}
                    kind = _region_kind(value)
                    result.append(
                        {
                            "type": kind,
                            "value": value,
                            "original_width": value.get("original_width"),
                            "original_height": value.get("original_height"),
                        }
                    )
            elif k not in meta:
                data[k] = v
        key = rec.get("id", f"record {i}")
        task = tasks.setdefault(key, {"data": data, "annotations": []})
        if rec.get("annotation_id") is not None:
            task["annotations"].append(
                {
                    "id": rec["annotation_id"],
                    "result": result,
                    "created_at": rec.get("created_at"),
                    "updated_at": rec.get("updated_at"),
                }
            )
    return list(tasks.values())


def _latest_annotation(task: dict[str, Any]) -> dict[str, Any] | None:
    anns = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
    if not anns:
        return None
    return max(
        anns,
        key=lambda a: (str(a.get("updated_at") or a.get("created_at") or ""), a.get("id") or 0),
    )


def import_label_studio(
    export: str | Path,
    out: str | Path,
    *,
    images: str | Path | None = None,
    document_root: str | Path | None = None,
    category: str | None = None,
    progress: bool = True,
    commit_check: CommitCheck | None = None,
    with_labels: bool = False,
) -> ImportResult:
    """Masks from a Label Studio JSON (or JSON-MIN) export: one 0/255 mask per annotated task.

    Each mask is named like its source image (``data.name``, else the image file stem) and takes
    the image's georeference when that image is a GeoTIFF (``<stem>.tif``); otherwise it is a
    ``<stem>.png``. Tasks without a (non-cancelled) annotation are skipped and listed. ``out``
    then holds exactly this import's masks, written whole or not at all
    (:class:`~sam2elnet.export.mask_folder.MaskFolder`: stale masks of an earlier import into
    it are removed and listed in ``removed``).

    Args:
        export: Label Studio's JSON export (list of tasks with ``annotations``), or its JSON-MIN
            export (:func:`_from_json_min`).
        out: Output folder for the masks.
        images: Source images (folder or file), looked up first; else ``data.source``, else the
            served file under ``document_root``.
        document_root: Label Studio's local-files document root.
        category: Only regions with that label; None takes all.
        progress: Show a progress bar.
        commit_check: Called before the masks move into ``out``
            (:data:`~sam2elnet.export.mask_folder.CommitCheck`); an error it raises leaves
            ``out`` as it was (``elnet import --with-labels``).
        with_labels: A train set is built from the masks and the kept auto-labels
            (``--with-labels``): the note of the tasks not reviewed yet says they keep their
            auto-labels there.

    Returns:
        :class:`ImportResult` (masks written, tasks skipped with the reason, notes).

    Raises:
        UserError: two tasks of different images with one mask name (``palsar/x.png`` and
            ``sentinel/x.png``: their masks would overwrite each other); ``out`` is a file or
            the images' folder, or holds masks no import wrote that this one does not replace.
        DataError: an unreadable export, no tasks, no task with a usable annotation, or none
            of the tasks' images found (under ``images``, ``data.source``, ``document_root``)
            while the annotations give no image size.
    """
    ep = Path(export)
    tasks = read_json_export(ep, "Label Studio export", "; export the project as JSON")
    if isinstance(tasks, dict) and {"images", "annotations"} <= set(tasks):
        raise DataError("a COCO file, not a Label Studio export; use --from coco", ep)
    if isinstance(tasks, dict):
        tasks = [tasks]
    if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
        raise DataError("not a Label Studio JSON export (expected a list of tasks)", ep)
    if not tasks:
        raise DataError("the export holds no tasks; export the Label Studio project again", ep)
    if _is_json_min(tasks):
        tasks = _from_json_min(tasks)
    if not any("annotations" in t for t in tasks):
        raise DataError(
            "no task has an 'annotations' list: the tasks file `elnet export` writes (and a "
            "tasks-only export) carries none; export the reviewed project from Label Studio as "
            "'JSON' or 'JSON-MIN'",
            ep,
        )
    check_unique_stems(  # a task duplicated in Label Studio (one image twice) is no clash
        dict.fromkeys(task_ref(t)[:2] for t in tasks),
        "the Label Studio export",
        "rename one and import its task again, or review each folder in a Label Studio project "
        "of its own",
        ep,
    )
    ipath = Path(images) if images is not None else None
    folder = MaskFolder(Path(out), ep, ipath, check=commit_check)
    with folder:
        written, skipped, found = _import_tasks(
            tasks, folder, ipath, document_root, category, progress
        )
        if not written and not found and any(why == no_image_why(ipath) for _, why in skipped):
            raise DataError(no_image_found(tasks, ipath, document_root), ep)
        if not written:
            raise DataError(
                "no task has a usable annotation; review tasks in Label Studio, then export again",
                ep,
            )
        removed = folder.commit()
    notes = skipped_notes(skipped, "tasks", with_labels)
    notes += _elsewhere_note(folder.images, ipath, written)
    notes += removed_note(folder.out, removed)
    # the model that made the labels, for the next: line: their run folder records it
    labels = [str((t.get("data") or {}).get("label") or "") for t in tasks]
    model = next(
        (run_model_path(p, label_tags(p)) for p in labels if p and Path(p).is_file()), None
    )
    return ImportResult(folder.out, written, skipped, notes, removed, model, images=folder.images)


def _elsewhere_note(
    images: dict[str, Path | None], ipath: Path | None, written: list[Path] | None = None
) -> list[str]:
    """The notes naming the masks whose image was not found under ``--images`` (``ipath``):
    those whose image came from the task's ``data.source`` or the document root instead, and
    those made from the annotation's image size alone (no image anywhere: a PNG mask without
    georeference), so a wrong ``--images`` does not pass unnoticed; ``images``: mask name ->
    the image read; ``written``: the masks written."""
    if ipath is None:
        return []
    notes = []
    alone = sorted(p.name for p in written or [] if p.name not in images)
    if alone:
        notes.append(
            f"{plural(len(alone), 'mask')} {'was' if len(alone) == 1 else 'were'} made from the "
            "annotation's image size alone, as PNG without georeference: no image of that name "
            f"under --images {ipath}: {name_sample(alone, 5)}"
        )
    return notes + _from_elsewhere(images, ipath)


def _from_elsewhere(images: dict[str, Path | None], ipath: Path) -> list[str]:
    """The note naming the masks whose image came from the task's ``data.source`` or the
    document root, not from ``--images`` (``ipath``)."""
    base = ipath.resolve()

    def under(img: Path) -> bool:
        r = img.resolve()
        return r == base if not ipath.is_dir() else r.is_relative_to(base)

    far = sorted(n for n, img in images.items() if img is not None and not under(img))
    if not far:
        return []
    one = len(far) == 1
    return [
        f"{plural(len(far), 'mask')} took {'its' if one else 'their'} image from the task's "
        f"data.source or the document root, not from --images {ipath} (no image of that name "
        f"there): {name_sample(far, 5)}"
    ]


def _later(n: int, with_labels: bool) -> str:
    """What becomes of ``n`` tasks not reviewed yet, for their note."""
    one = n == 1
    it, its = ("it", "its") if one else ("them", "their")
    if with_labels:
        keeps = (
            "its kept auto-label (a rejected one leaves its image out)"
            if one
            else "their kept auto-labels (rejected ones leave their images out)"
        )
        now = f"the train set keeps {keeps}"
    else:
        now = f"`elnet train` leaves {'its image' if one else 'their images'} out"
    return f" (no mask: {now}; review {it}, export again and import into the same --out)"


def skipped_notes(
    skipped: list[tuple[str, str]], what: str, with_labels: bool = False
) -> list[str]:
    """The notes of the skipped tasks / images: one per reason, in order of first appearance
    (``skipped 480 tasks, not reviewed yet (no annotation): a, b, c, d, e (+475)``), so a large
    batch of which a few were reviewed says so in a line, not a line per task. ``with_labels``
    (``--with-labels``): the tasks not reviewed yet keep their kept auto-labels in the train
    set, and their note says so."""
    by_reason: dict[str, list[str]] = {}
    for stem, why in skipped:
        by_reason.setdefault(why, []).append(stem)
    return [
        (
            f"skipped {stems[0]}: {why}"
            if len(stems) == 1
            else f"skipped {len(stems)} {what}, {why}: {name_sample(stems, 5)}"
        )
        + (_later(len(stems), with_labels) if why == NOT_REVIEWED else "")
        for why, stems in by_reason.items()
    ]


def _import_tasks(
    tasks: list[dict[str, Any]],
    folder: MaskFolder,
    ipath: Path | None,
    document_root: str | Path | None,
    category: str | None,
    progress: bool,
) -> tuple[list[Path], list[tuple[str, str]], bool]:
    """Each task's mask written into ``folder``: (masks, tasks skipped with the reason, whether
    any task's image was found)."""
    from sam2elnet.utils.progress import track

    root = Path(document_root) if document_root is not None else None
    written: list[Path] = []
    skipped: list[tuple[str, str]] = []
    seen: set[str] = set()
    found = False
    for task in track(tasks, "import", "task", progress, skipped=skipped):
        stem, src = task_image(task, ipath, root, len(tasks))
        found = found or src is not None
        ann = _latest_annotation(task)
        if ann is None:
            cancelled = any(a.get("was_cancelled") for a in task.get("annotations") or [])
            skipped.append((stem, SKIPPED_BY_REVIEWER if cancelled else NOT_REVIEWED))
            continue
        if stem in seen:
            skipped.append((stem, "a second task with the same image name"))
            continue
        results = ann.get("result") or []
        sizes = {
            (int(r["original_height"]), int(r["original_width"]))
            for r in results
            if r.get("original_height") and r.get("original_width")
        }
        if src is not None:
            grid = mask_grid(src)  # size, georeference, nodata (PNG alpha too)
        elif len(sizes) == 1:
            grid = MaskGrid(next(iter(sizes)), None, None)  # no image: a PNG mask
        else:
            skipped.append((stem, no_image_why(ipath)))
            continue
        try:
            mask = result_mask(results, *grid.shape, category)
        except DataError as err:
            skipped.append((stem, str(err)))
            continue
        name = f"{stem}{grid.suffix}"
        written.append(folder.write(name, mask, like=grid.like, nodata=grid.nodata, image=src))
        seen.add(stem)
    return written, skipped, found
