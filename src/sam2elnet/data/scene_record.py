"""What a per-window quality layer records about the scene it was made for.

``elnet scene --quality-gpkg`` writes ``<label stem>_tiles.gpkg``, GeoPackage layer
:data:`TILES_LAYER`, one footprint polygon per predicted window. Its GDAL layer metadata (the
file's ``gpkg_metadata`` table; ``pyogrio.read_info(path, layer="tiles")`` gives it) records the scene
(:class:`SceneRecord`):

* ``SCENE``: the scene image's file name, which the label's ``SOURCE`` tag also holds;
* ``LABEL``: the file name of the label the run wrote;
* ``SCENE_FOOTPRINT``: the whole scene's footprint as a WKT polygon, in the coordinates and CRS of
  the windows (the same placement: map coordinates, or pixel coordinates for a scene without a
  georeference).

Written by :func:`sam2elnet.engine.scene_writer.write_quality`; read by
:mod:`sam2elnet.export.tile_quality`, which refuses to join a layer made for another scene to a
label's polygons. Layers written before the record existed have no such metadata
(:func:`read_scene_record` gives None).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["TILES_LAYER", "SceneRecord", "read_scene_record"]

TILES_LAYER = "tiles"
"""The GeoPackage layer of the per-window quality polygons."""

_KEYS = ("SCENE", "LABEL", "SCENE_FOOTPRINT")


@dataclass(frozen=True)
class SceneRecord:
    """The scene a per-window quality layer was made for."""

    scene: str
    """The scene image's file name (the label's ``SOURCE`` tag)."""
    label: str
    """The file name of the label written with the layer."""
    footprint: Any
    """The scene's footprint, a ``shapely`` polygon in the layer's coordinates and CRS."""

    def metadata(self) -> dict[str, str]:
        """The layer metadata (GDAL ``key=value`` strings; the footprint at full precision)."""
        import shapely

        wkt = shapely.to_wkt(self.footprint, rounding_precision=-1)
        return dict(zip(_KEYS, (self.scene, self.label, wkt), strict=True))

    @classmethod
    def from_metadata(cls, md: dict[str, str] | None) -> SceneRecord | None:
        """The record in a layer's metadata; None when it has none (an older layer) or the
        footprint is not a WKT polygon."""
        import shapely

        if not md or any(k not in md for k in _KEYS):
            return None
        try:
            footprint = shapely.from_wkt(md["SCENE_FOOTPRINT"])
        except shapely.errors.GEOSException:
            return None
        if footprint is None or footprint.geom_type != "Polygon" or footprint.is_empty:
            return None
        return cls(md["SCENE"], md["LABEL"], footprint)


def read_scene_record(path: str | Path) -> SceneRecord | None:
    """The :class:`SceneRecord` of the quality layer file ``path``; None for a layer without one.

    Raises:
        pyogrio.errors.DataSourceError / DataLayerError: the file or its layer
            :data:`TILES_LAYER` cannot be read.
    """
    import pyogrio

    return SceneRecord.from_metadata(pyogrio.read_info(path, layer=TILES_LAYER)["layer_metadata"])
