"""Reading and writing rasters: images (C, H, W) and binary masks (H, W) - the public face.

The work is done in five modules, one concept each; this module re-exports their public names so
``from sam2elnet.data.raster import read_image, read_mask, write_mask`` keeps working:

* :mod:`sam2elnet.data.images` - image files -> :class:`RasterImage` (bands, nodata, alpha);
* :mod:`sam2elnet.data.mask_values` - the mask value rule (:func:`mask_encoding`);
* :mod:`sam2elnet.data.masks` - mask readers (also onto an image's grid);
* :mod:`sam2elnet.data.writers` - label / probability / image writers (atomic, verified);
* :mod:`sam2elnet.data.georef` - CRS + transform or GCPs of a profile.

Inside the package, import from those modules directly.
"""

from __future__ import annotations

from sam2elnet.data.georef import (
    dataset_georeference,
    georeference,
    georeference_kind,
    write_georeference,
)
from sam2elnet.data.images import (
    MAX_BANDS,
    RasterImage,
    check_complete,
    parse_bands,
    read_image,
    select_bands,
)
from sam2elnet.data.mask_values import (
    LABEL_BACKGROUND,
    LABEL_NODATA,
    LABEL_OBJECT,
    MaskEncoding,
    binarize,
    encoding_from_counts,
    mask_encoding,
    merge_counts,
    parse_positive_values,
    value_counts,
)
from sam2elnet.data.masks import (
    read_mask,
    read_mask_on_grid,
    read_mask_valid,
    write_decoded_mask,
)
from sam2elnet.data.writers import verify_written, write_image, write_mask, write_probability

__all__ = [
    "LABEL_BACKGROUND",
    "LABEL_NODATA",
    "LABEL_OBJECT",
    "MAX_BANDS",
    "MaskEncoding",
    "RasterImage",
    "binarize",
    "check_complete",
    "dataset_georeference",
    "encoding_from_counts",
    "georeference",
    "georeference_kind",
    "mask_encoding",
    "merge_counts",
    "parse_bands",
    "parse_positive_values",
    "read_image",
    "read_mask",
    "read_mask_on_grid",
    "read_mask_valid",
    "select_bands",
    "value_counts",
    "verify_written",
    "write_decoded_mask",
    "write_georeference",
    "write_image",
    "write_mask",
    "write_probability",
]
