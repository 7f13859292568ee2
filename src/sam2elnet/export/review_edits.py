"""Whether a mask that comes back from review is the exported label unchanged: the one rule of
every import's partial review (:class:`~sam2elnet.export.review_set.ReviewCheck`).

The export's review record (:mod:`~sam2elnet.export.review_set`) holds, per label, the mask the
reviewer was sent (:func:`exported_fields`): ``mask_sha256`` (:func:`mask_digest`), and up to
:data:`MASK_MAX_CHARS` the mask itself, ``mask_bits`` over ``mask_shape``, with ``loose_bits``:
the pixels whose centre lies within :data:`TOLERANCE_PX` of an exported polygon's boundary
(:func:`loose_pixels`; polygon exports with ``--simplify`` or ``--smooth`` only: polygons along
pixel edges, and COCO's, have none). An imported mask is unchanged (:func:`unchanged`) when it equals the
exported one on every other pixel.

Why a tolerance, and why this one (measured, 64 x 64 px GeoTIFF labels with an annulus, a rotated
ellipse, a disc, a 6-px blob, a speck and a diagonal 1-px line; ``tests/export/
test_review_edit_tolerance.py`` repeats the decisive cases): polygons of pixel edges (the default
export, COCO polygons) come back pixel for pixel through every route: CVAT for images 1.1
(points written with 2 decimals), CVAT's COCO 1.0, CVAT's Segmentation mask 1.1 (CVAT rasterises
polygons with pycocotools, through datumaro's ``polygons_to_masks``: 0 of 167,439 pixels differed
on 300 random masks, 4,401 polygons), GeoPackage / GeoJSON / Shapefile, labels in EPSG:4326
re-projected into a UTM layer, a WGS84 GeoJSON, a layer saved again in EPSG:4326 or with
coordinates rounded to 0.2 px. A pixel centre there lies half a pixel from every edge, so nothing
short of an edit moves it across. Polygons simplified (``--simplify``) or smoothed (``--smooth``)
have edges through pixel centres (a 45-degree edge passes through one per pixel), and there any
re-projection decides those pixels by rounding: ``--simplify`` 1 and 2.5 px, then a WGS84 GeoJSON,
or the GeoPackage saved again in EPSG:4326, EPSG:3857 or EPSG:32634 as QGIS's *Save As* does,
changed 6-39 pixels of 750-1,000 (isolated pixels, a few of them off the label's boundary band
and some forming a new one-pixel component where a simplified 1-px line runs through pixel
centres), so every unedited image counted as edited. The pixels a re-projection can flip are
exactly those whose centre lies on (within rounding of) an exported edge: they are known at
export, so they are what the comparison leaves out, and nothing else is. A quarter pixel
covers coordinates rounded to 6 decimal degrees (0.11 m) on 0.5 m imagery (0.22 px); a shift of
less than that is not a correction. An IoU or pixel-count threshold would not do: a reviewer
deleting a 20-px false positive from a 1,000-px label leaves an IoU of 0.98, and a 1-px band
around the boundary would hide deleting a blob of 2 x 2 px or moving an edge by one pixel.

Records written before ``mask_bits`` existed hold ``mask_sha256`` only: compared exactly (an
image whose polygons were re-projected after a ``--simplify`` export counts as edited; the
import's notes say so).
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

__all__ = [
    "DIGEST_MAX_PIXELS",
    "MASK_MAX_CHARS",
    "TOLERANCE_PX",
    "exported_fields",
    "has_mask",
    "loose_pixels",
    "mask_recorded",
    "mask_digest",
    "pack_mask",
    "unchanged",
    "unpack_mask",
]

TOLERANCE_PX = 0.25
"""Distance (pixels) from an exported polygon's boundary within which a pixel centre may fall on
either side after a re-projection or coordinate rounding: such pixels are not compared."""

DIGEST_MAX_PIXELS = 1 << 26
"""Largest label (pixels, 64 Mpx: a 64 MB bool raster at export) that gets a ``mask_sha256``
(and ``mask_bits``); a larger one has none and the import counts it as edited (imported, the
safe side). With :data:`MASK_MAX_CHARS` the two caps of a record entry's mask fields
(:func:`exported_fields`)."""

MASK_MAX_CHARS = 1 << 22
"""Longest ``mask_bits`` (characters, 4 Mi: a 4 MB record entry) a record stores; a label whose
packed mask is longer keeps its ``mask_sha256`` only and is compared exactly."""


def mask_digest(mask: np.ndarray) -> str:
    """Hex SHA-256 of a bool (height, width) mask: its shape and its bits (``np.packbits``),
    so two masks have one digest exactly when they have the same shape and pixels."""
    m = np.ascontiguousarray(np.asarray(mask, dtype=bool))
    h = hashlib.sha256(f"{m.shape[0]}x{m.shape[1]}:".encode())
    h.update(np.packbits(m).tobytes())
    return h.hexdigest()


def pack_mask(mask: np.ndarray) -> str:
    """A bool (H, W) mask as text: base64 (RFC 4648) of the zlib-compressed ``np.packbits`` of
    its rows (row-major, first pixel in the high bit). :func:`unpack_mask` reads it back."""
    bits = np.packbits(np.ascontiguousarray(np.asarray(mask, dtype=bool)))
    return base64.b64encode(zlib.compress(bits.tobytes(), 9)).decode("ascii")


def unpack_mask(text: str, shape: tuple[int, int]) -> np.ndarray:
    """The bool (H, W) ``shape`` mask :func:`pack_mask` wrote.

    Raises:
        ValueError: ``text`` is not such a mask of ``shape`` (bad base64 or zlib, wrong length).
    """
    h, w = (int(v) for v in shape)
    try:
        raw = zlib.decompress(base64.b64decode(text.encode("ascii"), validate=True))
    except (ValueError, zlib.error) as err:
        raise ValueError(f"unreadable packed mask ({err})") from None
    if len(raw) != (h * w + 7) // 8:
        raise ValueError(f"packed mask of {len(raw)} bytes is not a {h} x {w} mask")
    return np.unpackbits(np.frombuffer(raw, np.uint8), count=h * w).astype(bool).reshape(h, w)


def loose_pixels(geoms: Iterable[Any], height: int, width: int, transform: Any) -> np.ndarray:
    """Bool (height, width): the pixels whose centre lies within :data:`TOLERANCE_PX` of the
    boundary of one of ``geoms`` (shapely polygons in the coordinates of ``transform``, an
    ``affine.Affine`` pixel -> map; None: pixel coordinates), measured in pixels. Polygons along
    pixel edges have none (every centre is half a pixel from an edge)."""
    import shapely
    from affine import Affine
    from shapely.affinity import affine_transform

    from sam2elnet.data.georef import shapely_coefficients
    from sam2elnet.data.vector import burn_shapes

    coeffs = shapely_coefficients(~(transform if transform is not None else Affine.identity()))
    bands = [
        shapely.buffer(affine_transform(g, coeffs).boundary, TOLERANCE_PX)
        for g in geoms
        if g is not None and not g.is_empty
    ]
    return burn_shapes([b for b in bands if not b.is_empty], height, width) > 0


def mask_recorded(height: int, width: int) -> bool:
    """Whether a label of ``height`` x ``width`` pixels gets mask fields in its record entry
    (:func:`exported_fields`): up to :data:`DIGEST_MAX_PIXELS` pixels. Asked before its mask is
    made, so a larger label's is never rasterised for the record."""
    return height * width <= DIGEST_MAX_PIXELS


def exported_fields(mask: np.ndarray, loose: np.ndarray | None = None) -> dict[str, Any]:
    """The record fields of one exported label's bool (H, W) ``mask``: none over
    :data:`DIGEST_MAX_PIXELS` pixels (:func:`mask_recorded`), else ``mask_sha256`` and, unless
    the packed mask is longer than :data:`MASK_MAX_CHARS`, ``mask_shape`` ([H, W]),
    ``mask_bits`` (:func:`pack_mask`) and, when ``loose`` (:func:`loose_pixels`) has any pixel,
    ``loose_bits``."""
    if not mask_recorded(*mask.shape):
        return {}
    out: dict[str, Any] = {"mask_sha256": mask_digest(mask)}
    bits = pack_mask(mask)
    if len(bits) > MASK_MAX_CHARS:
        return out
    out.update(mask_shape=[int(v) for v in mask.shape], mask_bits=bits)
    if loose is not None and loose.any():
        out["loose_bits"] = pack_mask(loose)
    return out


def has_mask(entry: Mapping[str, Any]) -> bool:
    """Whether a record entry holds the exported mask (``mask_bits``), not only its digest."""
    return isinstance(entry.get("mask_bits"), str) and isinstance(entry.get("mask_shape"), list)


def unchanged(entry: Mapping[str, Any], mask: np.ndarray) -> bool:
    """Whether the bool (H, W) ``mask`` imported for a record ``entry`` is the exported label:
    equal on every pixel but the entry's ``loose_bits`` (:data:`TOLERANCE_PX`); an entry with a
    digest only (an older record, or a label over :data:`MASK_MAX_CHARS`): equal on every pixel.
    A mask of another size, or an entry whose mask cannot be read, is changed (imported: the
    safe side)."""
    m = np.asarray(mask, dtype=bool)
    if not has_mask(entry):
        digest = entry.get("mask_sha256")
        return isinstance(digest, str) and mask_digest(m) == digest
    shape = tuple(entry["mask_shape"])
    if shape != m.shape:
        return False
    try:
        diff = unpack_mask(entry["mask_bits"], shape) != m
        if isinstance(entry.get("loose_bits"), str):
            diff &= ~unpack_mask(entry["loose_bits"], shape)
    except (ValueError, TypeError):
        return False
    return not diff.any()
