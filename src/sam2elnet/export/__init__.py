"""sam2elnet.export: label rasters out to GIS, COCO and Label Studio (and back).

Rooms: ``labels`` (finding and reading label rasters, shared by every format), ``vector``
(polygons: GeoJSON / GeoPackage / Shapefile), ``coco`` (COCO JSON, RLE), ``chips`` (image/mask
tiles), ``api`` (``export_labels``, the format dispatcher), ``labelstudio`` (tasks out) /
``labelstudio_import`` (reviews in) / ``brush`` / ``coco_import`` / ``cvat_import`` /
``cvat_xml`` / ``vector_import`` (review round trip; ``review_set``: which images a polygon export sent,
``mask_folder``: an import's ``--out`` and the rules every import shares).

The public API is listed below and imported lazily on first use
(:func:`sam2elnet.utils.lazy.lazy_exports`), so ``import sam2elnet.export`` and ``elnet --help``
stay fast.
"""

from sam2elnet.utils.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "api": ("ExportResult", "export_labels"),
        "labels": ("find_labels", "LabelRaster", "read_quality_csv"),
        "vector": ("iter_polygons", "polygonize_label"),
        "coco": ("build_coco", "rle_encode", "rle_decode"),
        "chips": ("iter_chips",),
        "labelstudio": ("export_label_studio",),
        "labelstudio_import": ("import_label_studio",),
        "coco_import": ("import_coco",),
        "cvat_import": ("import_cvat",),
    },
)
