"""Which images a polygon export sent for review: ``<layer stem>_review.json`` next to the layer.

A polygon layer holds features only where a label has foreground, so the layer alone cannot tell
an image whose polygons a reviewer deleted (no object there: its corrected mask is empty) from an
image that was never exported (no mask should be made for it). ``elnet export`` to GeoPackage /
Shapefile / GeoJSON therefore writes this record beside the layer (:func:`write_review_set`),
and ``elnet import --from vector`` (:mod:`~sam2elnet.export.vector_import`) makes masks for the
images it lists (:func:`read_review_set`). The file survives editing the layer in QGIS (saving
edits changes only the layer file); after *Save As* under another name, give it with
``--review-set``.

Format (JSON object, UTF-8): ``kind`` = :data:`KIND`, ``version`` 1, ``layer`` (file name),
``images``: one entry per exported label with ``source`` (the image's file name, the layer's
``source`` attribute), ``label`` (the label file's name), ``polygons`` (features written) and
``quality`` (predicted IoU or null); with road centre lines (:mod:`~sam2elnet.export.centrelines`)
also ``centre_lines`` (lines written), ``road_length_px`` (their summed length, pixels) and
``road_length_m`` (metres; null without a CRS). ``mask_sha256`` (:func:`mask_digest` of the
label's exported polygons rasterised on the label's grid, pixel centres inside; absent for labels
over :data:`DIGEST_MAX_PIXELS`) lets the import tell an image the reviewer left as exported from
one they edited (:func:`read_review_digests`): a partial review.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.errors import DataError

__all__ = [
    "DIGEST_MAX_PIXELS",
    "KIND",
    "mask_digest",
    "read_review_digests",
    "read_review_set",
    "record_layer",
    "review_set_path",
    "write_review_set",
]

KIND = "elnet review set"
"""The ``kind`` entry that marks the file."""

DIGEST_MAX_PIXELS = 1 << 26
"""Largest label (pixels, 64 Mpx: a 64 MB bool raster at export) that gets a ``mask_sha256``;
a larger one has none and the import counts it as edited (imported, the safe side)."""


def mask_digest(mask: np.ndarray) -> str:
    """Hex SHA-256 of a bool (height, width) mask: its shape and its bits (``np.packbits``),
    so two masks have one digest exactly when they have the same shape and pixels."""
    import hashlib

    m = np.ascontiguousarray(np.asarray(mask, dtype=bool))
    h = hashlib.sha256(f"{m.shape[0]}x{m.shape[1]}:".encode())
    h.update(np.packbits(m).tobytes())
    return h.hexdigest()


def review_set_path(layer: str | Path) -> Path:
    """``<layer stem>_review.json`` next to the layer (a Shapefile's ``x.shp``: ``x_review.json``,
    no sidecar name of the Shapefile's own)."""
    p = Path(layer)
    return p.with_name(f"{p.stem}_review.json")


def write_review_set(layer: Path, images: list[dict[str, Any]]) -> Path:
    """Write the record of ``layer`` atomically (:func:`review_set_path`); returns its path.

    Args:
        layer: The polygon layer just written.
        images: One dict per exported label: ``source``, ``label``, ``polygons``, ``quality``.
    """
    from sam2elnet.utils.atomic import write_json_atomic

    return write_json_atomic(
        review_set_path(layer),
        {"kind": KIND, "version": 1, "layer": Path(layer).name, "images": images},
    )


def record_layer(path: str | Path) -> str | None:
    """The ``layer`` a review record names when ``path`` is one, else None (any other file, or
    one that cannot be read: never raises). For messages: a record given where its layer was
    expected."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if isinstance(data, dict) and data.get("kind") == KIND:
        return str(data.get("layer") or "")
    return None


def read_review_digests(path: str | Path) -> dict[str, tuple[str, int]]:
    """Image stem (of ``source`` and of ``label``) -> (``mask_sha256``, ``polygons``) of each
    record entry that has a digest (records written before it have none: empty dict).

    Raises:
        DataError: as :func:`read_review_set`.
    """
    out: dict[str, tuple[str, int]] = {}
    for e in _review_entries(path):
        d, n = e.get("mask_sha256"), e.get("polygons")
        if isinstance(d, str) and isinstance(n, int):
            out.update(dict.fromkeys(_entry_stems(e), (d, n)))
    return out


def read_review_set(path: str | Path) -> set[str]:
    """The image stems a review record lists (each entry's ``source`` and ``label`` stem).

    Raises:
        DataError: the file is missing, not JSON, or not a review record (naming the file and
            what to give instead).
    """
    return {stem for e in _review_entries(path) for stem in _entry_stems(e)}


def _review_entries(path: str | Path) -> list[dict[str, Any]]:
    """The entries (dicts) of a review record, after the checks of :func:`read_review_set`."""
    p = Path(path)
    if not p.is_file():
        raise DataError(
            "review set does not exist; give the <layer>_review.json `elnet export` wrote", p
        )
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise DataError(f"review set is not a JSON file ({err})", p) from None
    entries = data.get("images") if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("kind") != KIND or not isinstance(entries, list):
        raise DataError(
            "not a review set (`elnet export` writes <layer>_review.json next to a .gpkg / "
            ".shp / .geojson); give that file",
            p,
        )
    return [e for e in entries if isinstance(e, dict)]


def _entry_stems(e: dict[str, Any]) -> list[str]:
    """The image stems an entry names: of its ``source`` and its ``label``."""
    return [
        Path(v.strip()).stem
        for v in (e.get("source"), e.get("label"))
        if isinstance(v, str) and v.strip()
    ]
