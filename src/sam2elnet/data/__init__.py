"""sam2elnet.data: files -> arrays. Raster IO, normalisation, dataset layouts, coarse labels, synthetic scenes.

Submodules are imported lazily (``from sam2elnet.data import discover`` works) so that commands that
only read rasters do not pay for importing torch.

No public name here is also the name of a submodule: ``sam2elnet.data.normalize`` is the module
(``from sam2elnet.data.normalize import NormalizationConfig, normalize``). Were ``normalize`` the
function here too, ``from sam2elnet.data import normalize`` would give the function until anything
imported the submodule and the module after (Python sets a package's attribute to a submodule once
it is imported); ``sam2elnet.data.<submodule>`` is that module even before anything imported it.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

_EXPORTS = {
    "RasterImage": "images",
    "read_image": "images",
    "read_mask": "masks",
    "write_mask": "writers",
    "write_probability": "writers",
    "write_image": "writers",
    "NormalizationConfig": "normalize",
    "compute_stats": "norm_fit",
    "Sample": "layouts",
    "DatasetIndex": "layouts",
    "discover": "layouts",
    "select_split": "splits",
    "SplitChoice": "splits",
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
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        # a submodule: the same object whether or not something imported it before
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'sam2elnet.data' has no attribute {name!r}")
