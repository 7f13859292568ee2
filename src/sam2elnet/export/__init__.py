"""sam2elnet.export: label rasters out to GIS, COCO and Label Studio (and back).

Rooms: ``labels`` (finding and reading label rasters, shared by every format), ``run_info`` (what a
run folder tells an export), ``api`` (``export_labels``, the format dispatcher), ``export_result``
(``ExportResult``, what an export wrote), ``option_scope`` (which option applies to which format),
``label_screen`` (the labels an export can use), ``vector`` / ``polygonize`` / ``layer_crs`` /
``layer_files`` / ``tile_quality`` / ``qgis_style`` (polygons: GeoJSON / GeoPackage / Shapefile),
``centrelines`` / ``centreline_layer`` / ``line_graph`` / ``line_ends`` (road centre lines),
``warp_labels`` (``--warp-to``), ``coco`` (COCO JSON, RLE), ``chips`` (image/mask tiles),
``labelstudio`` (tasks out and the Label Studio route of ``export_labels``) /
``labelstudio_import`` (reviews in) / ``brush`` / ``coco_import`` / ``cvat_import`` / ``cvat_xml``
/ ``cvat_zip_images`` / ``vector_import`` (review round trip; ``review_pick``: the labels of lowest
predicted IoU an export sends, ``review_set``: which images an export sent, ``review_edits``: which
came back unchanged, ``mask_folder``: an import's ``--out`` and the rules every import shares,
``import_result``: what an import wrote, ``train_set``: ``import --with-labels``).

The public API is listed below and imported lazily on first use
(:func:`sam2elnet.utils.lazy.lazy_exports`), so ``import sam2elnet.export`` and ``elnet --help``
stay fast.
"""

from sam2elnet.utils.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "api": ("export_labels",),
        "export_result": ("ExportResult",),
        "labels": ("find_labels", "LabelRaster", "read_quality_csv"),
        "polygonize": ("iter_polygons", "polygonize_label"),
        "coco": ("build_coco", "rle_encode", "rle_decode"),
        "chips": ("iter_chips",),
        "labelstudio": ("export_label_studio",),
        "labelstudio_import": ("import_label_studio",),
        "coco_import": ("import_coco",),
        "cvat_import": ("import_cvat",),
        "vector_import": ("import_vector",),
        "review_import": ("import_labels",),
        "import_result": ("ImportResult",),
    },
)
