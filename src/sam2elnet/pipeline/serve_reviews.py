"""Reviewed Label Studio annotations into ``elnet serve``'s training folder.

Part of :mod:`sam2elnet.pipeline.serve`. ``WORKDIR/data`` holds each reviewed task as
``images/<stem>.<ext>`` (a copy of its image) and the reviewed mask, written as ``elnet import``
writes it (:func:`~sam2elnet.export.mask_folder.mask_grid`): ``masks/<stem>.tif`` with the
image's georeference (CRS + transform, or its ground control points) and ``nodata=127`` when the
image is a GeoTIFF, else ``masks/<stem>.png``; 127 where the image has no data (its nodata value,
a PNG's transparency) in both. That is
the ``images/`` + ``masks/`` layout ``elnet train`` reads (pairing by name); the fine-tuning runs
train on it.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sam2elnet.data.naming import LABEL_SUFFIXES
from sam2elnet.errors import DataError
from sam2elnet.export.labelstudio_import import result_mask
from sam2elnet.export.mask_folder import mask_grid
from sam2elnet.pipeline.serve_protocol import BadRequest

log = logging.getLogger(__name__)

__all__ = ["count_reviews", "review_folder", "store_review"]


def review_folder(workdir: Path) -> Path:
    """``workdir/data`` with its ``images/`` and ``masks/`` folders (made when missing)."""
    data = workdir / "data"
    (data / "images").mkdir(parents=True, exist_ok=True)
    (data / "masks").mkdir(parents=True, exist_ok=True)
    return data


def count_reviews(data: Path) -> int:
    """The reviewed masks in ``data/masks`` (``.png`` / ``.tif``: the samples a fine-tuning run
    trains on)."""
    return sum(1 for p in (data / "masks").iterdir() if p.suffix.lower() in LABEL_SUFFIXES)


def _remove_stem(folder: Path, stem: str, keep: Path | None = None) -> None:
    """Remove the files ``<stem>.<any suffix>`` of ``folder`` (an earlier review's image or mask,
    which may have had another suffix), except ``keep`` (the task's own image when it already
    lies in ``folder``: removing it would lose the image)."""
    for old in folder.iterdir():
        if old.stem == stem and old.is_file() and old.resolve() != keep:
            old.unlink()


def store_review(
    data: Path,
    task: dict[str, Any],
    annotation: dict[str, Any],
    image_of: Callable[[dict[str, Any]], Path],
) -> int:
    """Save a reviewed annotation of ``task`` as a mask in ``data/masks`` with a copy of its
    image in ``data/images`` (an earlier image and mask of the same stem are replaced).

    The mask is ``<stem>.tif`` with the image's georeference (CRS + transform, or its GCPs)
    and ``nodata=127`` tag when the image is a GeoTIFF, else ``<stem>.png``; 0 background, 255
    object, 127 where the image has no data (its nodata value, or transparent pixels of a PNG),
    as :func:`sam2elnet.export.labelstudio_import.import_label_studio` writes it (one rule,
    :func:`sam2elnet.export.mask_folder.mask_grid`).

    The stem is the task's ``data.name`` (a file name only: never a path out of ``data``), else
    ``task<ID>_<image stem>``.

    Args:
        data: The training folder (:func:`review_folder`).
        task: The Label Studio task.
        annotation: Its annotation (``result``: brush or polygon regions).
        image_of: The local file of a task's image
            (:func:`sam2elnet.pipeline.serve_images.task_image`).

    Returns:
        1 when stored; 0 for a cancelled annotation or an image that cannot be read (logged).

    Raises:
        BadRequest: a result region that is not a Label Studio brush or polygon region.
    """
    from sam2elnet.data.writers import write_mask

    if annotation.get("was_cancelled"):
        return 0
    try:
        src = image_of(task)
        grid = mask_grid(src)  # size, georeference, nodata (PNG transparency too), as import
        mask = result_mask(annotation.get("result") or [], *grid.shape)
    except (DataError, OSError) as err:
        log.warning("annotation of task %s not stored: %s", task.get("id"), err)
        return 0
    except (AttributeError, KeyError, TypeError, ValueError) as err:
        raise BadRequest(
            f"annotation of task {task.get('id')}: a result region that is not a Label "
            f"Studio brush or polygon region ({err.__class__.__name__}: {err})"
        ) from None
    stem = str((task.get("data") or {}).get("name") or f"task{task.get('id')}_{src.stem}")
    stem = Path(stem).name or f"task{task.get('id')}"  # a name, never a path out of data/
    image = data / "images" / f"{stem}{src.suffix.lower()}"
    _remove_stem(data / "images", stem, keep=src.resolve())
    _remove_stem(data / "masks", stem)
    if src.resolve() != image.resolve():
        shutil.copyfile(src, image)
    write_mask(data / "masks" / f"{stem}{grid.suffix}", mask, like=grid.like, nodata=grid.nodata)
    return 1
