"""The model record a label GeoTIFF carries in its own tags: which model made it, and the object
category of its labels.

An ``elnet annotate`` / ``enhance`` folder and an ``elnet scene`` folder of scenes record their
model in ``OUT/model_id.json`` (:func:`sam2elnet.data.run_model.model_identity`), and
annotate / enhance the category in ``summary.json``. The label of one scene (``elnet scene
--image S.tif --out L.tif``) is a file without a folder of its own, so it records them where
the scene name already is (``SOURCE``): its GDAL metadata tags (``gdalinfo`` lists them;
``rasterio``'s ``ds.tags()``). Every label ``elnet scene`` writes carries them, so a label copied
out of its folder still tells its model. The tags:

* ``MODEL``: the model file, absolute (:func:`~sam2elnet.data.run_model.model_record`);
* ``MODEL_VERSION``: ``NAME@HASH`` (:func:`~sam2elnet.data.run_model.model_version`), what the
  exports write as ``model_id``;
* ``MODEL_SHA256``: the 64 hex digits of the whole model file;
* ``CATEGORY``: the labels' object category as the model's training recorded its domain
  (:func:`~sam2elnet.data.domain.category_name`: ``"road"``, ``"oil spill"``); absent when the
  model does not tell.

Read back by :func:`read_label_record` (:mod:`sam2elnet.export.run_info`: the exports'
``model_id`` and ``category``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["label_tags", "read_label_record"]

_TAGS = {"model": "MODEL", "model_version": "MODEL_VERSION", "sha256": "MODEL_SHA256"}


def label_tags(identity: dict[str, Any] | None, extra: dict[str, Any] | None) -> dict[str, str]:
    """The tags of a label made by the model of ``identity``
    (:func:`~sam2elnet.data.run_model.model_identity`; None: no model file, e.g.
    ``builtin:smoothing``, no tags) whose model-file ``extra`` (``extra.train.domain`` /
    ``modality``) tells the category."""
    from sam2elnet.data.domain import category_name

    if identity is None:
        return {}
    tags = {tag: str(identity[key]) for key, tag in _TAGS.items() if identity.get(key)}
    train = (extra or {}).get("train")
    train = train if isinstance(train, dict) else {}
    category = category_name(train.get("domain"), train.get("modality"))
    if category:
        tags["CATEGORY"] = category
    return tags


def read_label_record(path: str | Path) -> dict[str, str] | None:
    """``{"model", "model_version", "sha256"[, "category"]}`` from the tags of the label raster
    ``path`` (:func:`label_tags`); None when it has no ``MODEL_VERSION`` tag (a label made by
    another tool or before the tags) or cannot be read as a raster."""
    import rasterio

    try:
        with rasterio.open(path) as ds:
            tags = ds.tags()
    except (rasterio.errors.RasterioError, OSError):
        return None
    if not tags.get("MODEL_VERSION"):
        return None
    rec = {key: tags[tag] for key, tag in _TAGS.items() if tags.get(tag)}
    if tags.get("CATEGORY"):
        rec["category"] = tags["CATEGORY"]
    return rec
