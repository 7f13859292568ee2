"""Reviewed labels back in: Label Studio's JSON export -> one 0/255 training mask per task.

:func:`import_label_studio` reads Label Studio's JSON export (a list of tasks with
``annotations``), takes each task's latest annotation that was not cancelled, rasterises its
brush and polygon regions (:func:`result_mask`) and writes one 0/255 mask per task named like the
source image (``<stem>.tif`` with the image's georeference when the image is a GeoTIFF, else
``<stem>.png``), the layout ``elnet train`` reads as ``masks/``. :func:`read_json_export` and
:class:`ImportResult` serve the COCO / CVAT importer (:mod:`sam2elnet.export.coco_import`) too.
The tasks going out are :mod:`sam2elnet.export.labelstudio`.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np

from sam2elnet.errors import DataError, UserError
from sam2elnet.export.brush import brush_decode
from sam2elnet.export.labelstudio import TO_NAME

__all__ = ["ImportResult", "import_label_studio", "read_json_export", "result_mask"]


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
        DataError: a region drawn on an image of another size, or an unreadable brush RLE.
    """
    from rasterio import features
    from shapely.geometry import Polygon

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
            pts = [
                (float(x) * width / 100.0, float(y) * height / 100.0) for x, y in value["points"]
            ]
            if len(pts) >= 3:
                polys.append((Polygon(pts).buffer(0), 1))
    if polys:
        mask |= features.rasterize(polys, out_shape=(height, width), dtype=np.uint8) > 0
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


@dataclass
class ImportResult:
    """What :func:`import_label_studio` (or the COCO import) wrote."""

    out: Path
    written: list[Path]
    skipped: list[tuple[str, str]]
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        s = f"{self.out}: {len(self.written)} masks written"
        if self.skipped:
            s += f"; {len(self.skipped)} skipped"
        return s


def _latest_annotation(task: dict[str, Any]) -> dict[str, Any] | None:
    anns = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
    if not anns:
        return None
    return max(
        anns,
        key=lambda a: (str(a.get("updated_at") or a.get("created_at") or ""), a.get("id") or 0),
    )


def _task_image(
    task: dict[str, Any], images: Path | None, root: Path | None
) -> tuple[str, Path | None]:
    """(mask stem, source image or None) of an exported task. An image uploaded to Label Studio
    (``/data/upload/<project>/<8 hex>-<name>``) is known by its name without the upload prefix."""
    data = task.get("data") or {}
    url = str(data.get(TO_NAME) or "")
    rel = None
    if url.startswith("/data/local-files"):
        rel = parse_qs(urlparse(url).query).get("d", [None])[0]
    url_name = Path(rel or urlparse(url).path or "image").name
    if rel is None and urlparse(url).path.startswith("/data/upload/"):
        url_name = re.sub(r"^[0-9a-f]{8}-", "", url_name)  # Label Studio's upload prefix
    stem = str(data.get("name") or Path(data.get("source") or url_name).stem)
    if images is not None:
        if images.is_file():
            return stem, images
        for cand_stem in (stem, Path(str(data.get("source") or "")).stem):
            for suf in (".tif", ".tiff", ".png", ".jpg", ".jpeg"):
                c = images / f"{cand_stem}{suf}"
                if c.exists():
                    return stem, c
    src = data.get("source")
    if src and Path(src).exists():
        return stem, Path(src)
    if rel and root is not None and (root / rel).exists():
        return stem, root / rel
    return stem, None


def import_label_studio(
    export: str | Path,
    out: str | Path,
    *,
    images: str | Path | None = None,
    document_root: str | Path | None = None,
    category: str | None = None,
    progress: bool = True,
) -> ImportResult:
    """Masks from a Label Studio JSON export: one 0/255 mask per annotated task into ``out``.

    Each mask is named like its source image (``data.name``, else the image file stem) and takes
    the image's georeference when that image is a GeoTIFF (``<stem>.tif``); otherwise it is a
    ``<stem>.png``. Tasks without a (non-cancelled) annotation are skipped and listed.

    Args:
        export: Label Studio's JSON export (list of tasks with ``annotations``).
        out: Output folder for the masks.
        images: Source images (folder or file), looked up first; else ``data.source``, else the
            served file under ``document_root``.
        document_root: Label Studio's local-files document root.
        category: Only regions with that label; None takes all.
        progress: Show a progress bar.

    Returns:
        :class:`ImportResult` (masks written, tasks skipped with the reason, notes).

    Raises:
        UserError: ``out`` exists and is not a folder.
        DataError: an unreadable export, no tasks, or no task with a usable annotation.
    """
    from sam2elnet.data.images import read_image
    from sam2elnet.data.writers import write_mask
    from sam2elnet.utils.progress import track

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
    if not any("annotations" in t for t in tasks):
        raise DataError(
            "no task has an 'annotations' list: Label Studio's JSON-MIN / CSV exports and "
            "the tasks file `elnet export` writes carry none; export the reviewed project "
            "from Label Studio as 'JSON'",
            ep,
        )
    outp = Path(out)
    if outp.exists() and not outp.is_dir():
        raise UserError("--out must be a folder for the masks", outp)
    ipath = Path(images) if images is not None else None
    root = Path(document_root) if document_root is not None else None
    written: list[Path] = []
    skipped: list[tuple[str, str]] = []
    seen: set[str] = set()
    for task in track(tasks, "import", "task", progress):
        stem, src = _task_image(task, ipath, root)
        ann = _latest_annotation(task)
        if ann is None:
            skipped.append((stem, "no annotation (not reviewed yet, or cancelled)"))
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
        like = nodata = None
        if src is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                img = read_image(src)  # size, georeference, nodata (PNG alpha too)
            hw, nodata = img.shape, img.nodata
            like = img if src.suffix.lower() in (".tif", ".tiff") else None
        elif len(sizes) == 1:
            hw = next(iter(sizes))
        else:
            skipped.append(
                (stem, "source image not found and no size in the annotation; give --images")
            )
            continue
        try:
            mask = result_mask(results, hw[0], hw[1], category)
        except DataError as err:
            skipped.append((stem, str(err)))
            continue
        dst = outp / f"{stem}{'.tif' if like is not None else '.png'}"
        write_mask(dst, mask, like=like, nodata=nodata)
        written.append(dst)
        seen.add(stem)
    if not written:
        raise DataError(
            "no task has a usable annotation; review tasks in Label Studio, then export again", ep
        )
    notes = [f"skipped {s}: {why}" for s, why in skipped]
    return ImportResult(outp, written, skipped, notes)
