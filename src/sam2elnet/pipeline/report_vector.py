"""Vector label files (GeoPackage / Shapefile / GeoJSON polygons or road lines) on report cards.

An input label that is a vector file (``elnet enhance --labels``) is drawn on its item's image
grid as enhance read it (:func:`draw_vector_label`); one file that many items share (``elnet
enhance --labels lines.gpkg``: one file for many images) is read once for all of them
(:func:`share_vector_labels`, :class:`SharedVector` of :mod:`sam2elnet.data.vector_shared`), not
once per card. Part of :mod:`sam2elnet.pipeline.report`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.data.vector_shared import SharedVector, frame_of, is_shared, share_vectors
from sam2elnet.errors import DataError

__all__ = ["SharedVector", "draw_vector_label", "is_vector_label", "share_vector_labels"]


def is_vector_label(v: Any) -> bool:
    """Whether ``v`` is a vector label: a :class:`SharedVector` or the path of a vector file
    (:func:`sam2elnet.data.vector.is_vector_path`)."""
    from sam2elnet.data.vector import is_vector_path

    return isinstance(v, SharedVector) or (isinstance(v, (str, Path)) and is_vector_path(v))


def draw_vector_label(label: str | Path | SharedVector, grid: Any) -> np.ndarray:
    """A vector label rasterised onto the image ``grid`` (a path) as enhance read it
    (:func:`sam2elnet.data.vector.rasterize_vector`; road lines 1 px wide, the width option of
    the run is not recorded): bool (H, W) of the image, True inside a polygon / on a line. A
    file that several images share (:class:`SharedVector`) is placed as enhance placed it
    (``shared=True``): its features outside this image are not reported, and an image it does
    not touch gets an empty label (enhance's empty coarse label), not an error.

    Raises:
        DataError: no image to draw on (``grid`` not a path), or the file or image cannot be
            read or placed (the reader's message, naming the file).
    """
    from sam2elnet.data.vector import rasterize_vector

    path = label.path if isinstance(label, SharedVector) else label
    if not isinstance(grid, (str, Path)):
        raise DataError("a vector label needs its image to be drawn on", path)
    shared = is_shared(label)
    return rasterize_vector(
        label if shared else path,
        grid,
        frame=frame_of(label),
        shared=shared,
        line_width=1,
        line_width_unit="px",
    )


def share_vector_labels(
    items: Sequence[Any], layer: str | None = None, served: Mapping[str, Any] | None = None
) -> list[Any]:
    """``items`` (:class:`~sam2elnet.pipeline.report_items.ReportItem`) with each vector-file
    input label that two or more of them give read once (:class:`SharedVector`; those items
    copied, the others as they are). A file that cannot be read stays a path: each of its items
    then names the error on its card, as before. ``layer``: the layer the run read
    (``enhance --layer``, its ``summary.json`` ``coarse_layer``), read from every vector file,
    also one item's own (:func:`~sam2elnet.data.vector_shared.share_vectors`). ``served``: the
    run's ``summary.json`` ``coarse_images`` (file -> the stems of the images enhance served it
    to): such a file is placed with those images as the run's
    (:func:`~sam2elnet.data.vector_names.feature_images`), also on one card, so each card draws
    the coarse label enhance used; without it (older runs) the items' images are the run's."""
    from sam2elnet.data.vector import read_vector

    def vector_path(v: Any) -> Path | None:
        return Path(v) if isinstance(v, (str, Path)) and is_vector_label(v) else None

    paths = [p for p in (vector_path(it.input_label) for it in items) if p is not None]
    shared = share_vectors(paths, layer=layer)
    runs = {Path(k): v for k, v in (served or {}).items() if isinstance(v, list)}
    for p in set(paths) & set(runs):
        sv = shared.get(p)
        if sv is None:  # one card of a file enhance shared: read here (unreadable: a path)
            try:
                sv = SharedVector(p, read_vector(p, layer=layer))
            except DataError:
                continue
        shared[p] = replace(sv, many=True).serving(str(s) for s in runs[p])
    for p, sv in shared.items():  # a feature naming another image of the run: not this one's
        if p in runs:
            continue
        shared[p] = sv.serving(
            Path(it.name if not isinstance(it.image, (str, Path)) else it.image)
            for it in items
            if vector_path(it.input_label) == p
        )
    return [
        replace(it, input_label=shared[p]) if (p := vector_path(it.input_label)) in shared else it
        for it in items
    ]
