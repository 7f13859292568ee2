"""The tasks of a Label Studio export, each as an image: the mask name and the image name it
gives (:func:`task_ref`), the image file found for it (:func:`task_image`: under ``--images`` by
the one lookup rule of every import, else ``data.source``, else the document root) and the error
of an import none of whose images was found (:func:`no_image_found`). The import itself is
:mod:`sam2elnet.export.labelstudio_import`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from sam2elnet.export.image_lookup import find_image, none_found
from sam2elnet.export.labelstudio import TO_NAME

__all__ = ["NO_IMAGE", "no_image_found", "no_image_why", "task_image", "task_ref"]

NO_IMAGE = "source image not found and no size in the annotation; give --images"
"""Why an annotated task whose image was found nowhere, and whose regions give no image size,
gets no mask."""


def no_image_why(images: Path | None) -> str:
    """Why an annotated task whose image was found nowhere, and whose regions give no image
    size, gets no mask: :data:`NO_IMAGE` without ``--images``; with it, the folder that was
    searched (``source image not under --images DIR and no size in the annotation; give
    --images the folder the annotated images came from``), so a wrong folder shows."""
    if images is None:
        return NO_IMAGE
    return (
        f"source image not under --images {images} and no size in the annotation; give "
        "--images the folder the annotated images came from"
    )


def task_ref(task: dict[str, Any]) -> tuple[str, str, str | None]:
    """(mask stem, image name for messages, local-files path or None) of an exported task.

    The stem is ``data.name`` (``elnet export`` writes the label's stem), else the stem of
    ``data.source``, else of the image URL's file; an image uploaded to Label Studio
    (``/data/upload/<project>/<8 hex>-<name>``) is known by its name without the upload prefix.
    The image name is ``data.source``, else the local-files path (``palsar/x.png``), else the
    URL: what tells two images of one stem apart.
    """
    data = task.get("data") or {}
    url = str(data.get(TO_NAME) or "")
    rel = None
    if url.startswith("/data/local-files"):
        rel = parse_qs(urlparse(url).query).get("d", [None])[0]
    stem = str(data.get("name") or Path(data.get("source") or _url_name(url, rel)).stem)
    return stem, str(data.get("source") or rel or url or stem), rel


def _url_name(url: str, rel: str | None) -> str:
    """The file name of a task's image URL (``rel``: its local-files path); an image uploaded to
    Label Studio (``/data/upload/<project>/<8 hex>-<name>``) is known by ``<name>``."""
    name = Path(rel or urlparse(url).path or "image").name
    if rel is None and urlparse(url).path.startswith("/data/upload/"):
        name = re.sub(r"^[0-9a-f]{8}-", "", name)  # Label Studio's upload prefix
    return name


def _sought_name(task: dict[str, Any]) -> str:
    """The name an error gives a task's image that was looked for and not found: the file name
    of ``data.source`` (the image ``elnet export`` read), else the local-files path, folders
    kept (``palsar/x.tif``), else the URL's file name."""
    data = task.get("data") or {}
    source = str(data.get("source") or "")
    if source:
        return Path(source.replace("\\", "/")).name
    _, _, rel = task_ref(task)
    return rel or _url_name(str(data.get(TO_NAME) or ""), rel)


def no_image_found(
    tasks: list[dict[str, Any]], ipath: Path | None, document_root: str | Path | None
) -> str:
    """The error of an import that found none of its tasks' images and so wrote no mask (the
    regions give no image size): ``none of the 3 images of the Label Studio export was found:
    looked in --images DIR for a.tif, b.tif, c.tif; give --images ...``
    (:func:`~sam2elnet.export.image_lookup.none_found`).

    Args:
        tasks: The export's tasks (JSON-export form).
        ipath: The ``--images`` folder or file, or None.
        document_root: Label Studio's local-files document root, or None.

    Returns:
        The message (without the export's path).
    """
    data = [t.get("data") or {} for t in tasks]
    places = [f"--images {ipath}"] if ipath is not None else []
    if any(d.get("source") for d in data):
        places.append("the tasks' data.source paths")
    if document_root is not None:
        places.append(f"--document-root {document_root}")
    where = " and ".join(places) or "no folder (no --images given)"
    names = list(dict.fromkeys(_sought_name(t) for t in tasks))
    head = none_found(names, "the Label Studio export", where)
    return (
        f"{head}; give --images the folder the annotated images came from (the annotations "
        "give no image size, so no mask can be made without them)"
    )


def task_image(
    task: dict[str, Any], images: Path | None, root: Path | None, n_tasks: int = 1
) -> tuple[str, Path | None]:
    """(mask stem, source image or None) of an exported task (:func:`task_ref`): under
    ``images`` by the one lookup rule of every import
    (:func:`~sam2elnet.export.image_lookup.find_image`: the local-files path with its folders,
    the name, the stem with an image suffix; also by ``data.source``'s name), else
    ``data.source``, else the local-files path under ``root``."""
    data = task.get("data") or {}
    stem, _, rel = task_ref(task)
    if images is not None:
        names = [rel or "", f"{stem}.png", str(data.get("source") or "")]
        for name in (n for n in names if n):
            hit = find_image(images, name, n_tasks)
            if hit is not None:
                return stem, hit
    src = data.get("source")
    if src and Path(src).exists():
        return stem, Path(src)
    if rel and root is not None and (root / rel).exists():
        return stem, root / rel
    return stem, None
