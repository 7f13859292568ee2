"""sam2elnet.data: files -> arrays. Raster IO, normalisation, dataset layouts, coarse labels, synthetic scenes.

Submodules are imported lazily (``from sam2elnet.data import discover`` works) so that commands that
only read rasters do not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "RasterImage": "images",
    "read_image": "images",
    "read_mask": "masks",
    "write_mask": "writers",
    "write_probability": "writers",
    "write_image": "writers",
    "NormalizationConfig": "normalize",
    "normalize": "normalize",
    "compute_stats": "norm_fit",
    "Sample": "layouts",
    "DatasetIndex": "layouts",
    "discover": "layouts",
    "select_split": "layouts",
    "SplitChoice": "layouts",
    "SegmentationDataset": "datasets",
    "split_fraction": "splits",
    "mask_strata": "splits",
    "verify_pairs": "pair_sizes",
    "degrade": "coarse",
    "CoarseResult": "coarse",
    "make_scene": "synthetic",
    "generate_dataset": "synthetic",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f"sam2elnet.data.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'sam2elnet.data' has no attribute {name!r}")
