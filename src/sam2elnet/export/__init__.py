"""sam2elnet.export: label rasters out to GIS, COCO and Label Studio (and back).

Rooms: ``labels`` (finding and reading label rasters, shared by every format), ``vector``
(polygons: GeoJSON / GeoPackage / Shapefile), ``coco`` (COCO JSON, RLE), ``chips`` (image/mask
tiles), ``api`` (``export_labels``, the format dispatcher), ``labelstudio`` / ``brush`` /
``coco_import`` (review round trip).

The public API is listed below and imported lazily on first use (module ``__getattr__``), so that
``import sam2elnet.export`` and ``elnet --help`` stay fast; ``from sam2elnet.export import X`` works for every name.
Each name lives in the submodule given in ``_EXPORTS``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ExportResult": "api",
    "export_labels": "api",
    "find_labels": "labels",
    "LabelRaster": "labels",
    "read_quality_csv": "labels",
    "polygonize_label": "vector",
    "build_coco": "coco",
    "rle_encode": "coco",
    "rle_decode": "coco",
    "iter_chips": "chips",
    "export_label_studio": "labelstudio",
    "import_label_studio": "labelstudio",
    "import_coco": "coco_import",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f"sam2elnet.export.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'sam2elnet.export' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
