"""The ``centre_lines`` layer of a GeoPackage export carries its own default QGIS style: cased
lines in the quality colours of the polygons (one table, ``QUALITY_CLASSES``), stored like the
polygon style in the ``layer_styles`` table."""

from __future__ import annotations

import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

from helpers_roads import one_road_label

from sam2elnet.export.api import export_labels
from sam2elnet.export.qgis_style import (
    CASING_WIDTH_MM,
    LINE_WIDTH_MM,
    QUALITY_CLASSES,
    quality_qml,
)

_SE = {"se": "http://www.opengis.net/se"}


def _styles(gpkg: Path) -> dict[str, tuple[str, int, str, str, str]]:
    con = sqlite3.connect(gpkg)
    try:
        rows = con.execute(
            "SELECT f_table_name, f_geometry_column, useAsDefault, styleQML, styleSLD, "
            "description FROM layer_styles"
        ).fetchall()
    finally:
        con.close()
    return {r[0]: r[1:] for r in rows}


def _rgb(c: tuple[int, int, int]) -> str:
    return f"{c[0]},{c[1]},{c[2]},255"


def test_centre_lines_get_a_line_style_in_the_geopackage(tmp_path: Path) -> None:
    import cv2

    labs = tmp_path / "labs"
    labs.mkdir()
    m = one_road_label()
    cv2.imwrite(str(labs / "a.png"), m)
    out = tmp_path / "roads.gpkg"
    for _ in range(2):  # a re-export keeps one default style per layer
        res = export_labels(labs, out, category="road", progress=False)
    assert res.n_lines == 1
    styles = _styles(out)
    assert set(styles) == {"labels", "centre_lines"}
    geom, default, qml, sld, about = styles["centre_lines"]
    assert (geom, default) == ("geom", 1) and about.startswith("road centre lines coloured")
    doc = ET.fromstring(qml.split("\n", 1)[1])  # valid XML after the DOCTYPE line
    assert doc.findtext("layerGeometryType") == "1"  # QGIS: line
    renderer = doc.find("renderer-v2")
    rules = renderer.find("rules").findall("rule")
    symbols = renderer.find("symbols").findall("symbol")
    assert len(rules) == len(symbols) == len(QUALITY_CLASSES) + 1
    assert rules[0].get("filter") == '"quality" < 0.5'
    assert rules[-1].get("filter") == '"quality" IS NULL'
    for sym, (_label, _lo, _hi, rgb) in zip(symbols, QUALITY_CLASSES, strict=False):
        assert sym.get("type") == "line"
        casing, stroke = sym.findall("layer")
        assert casing.get("class") == stroke.get("class") == "SimpleLine"
        props = {o.get("name"): o.get("value") for o in stroke.find("Option").findall("Option")}
        assert props["line_color"] == _rgb(rgb) and props["line_width_unit"] == "MM"
        assert float(props["line_width"]) == LINE_WIDTH_MM
        cprops = {p.get("k"): p.get("v") for p in casing.findall("prop")}
        assert float(cprops["line_width"]) == CASING_WIDTH_MM > LINE_WIDTH_MM
    root = ET.fromstring(sld.split("\n", 1)[1])
    sld_rules = root.findall(".//se:Rule", _SE)
    assert len(sld_rules) == len(rules)
    assert all(len(r.findall("se:LineSymbolizer", _SE)) == 2 for r in sld_rules)
    assert not root.findall(".//se:PolygonSymbolizer", _SE)
    # the polygons keep their fill style, from the same classes
    _geom, _d, pqml, _psld, _a = styles["labels"]
    assert pqml == quality_qml() and "<layerGeometryType>2<" in pqml
    assert 'symbol type="fill"' in pqml and 'symbol type="line"' not in pqml


def test_geojson_and_shapefile_exports_get_qml_sidecars(tmp_path: Path) -> None:
    """QGIS loads ``<base name>.qml`` beside a file-based layer as its default style: each
    GeoJSON / Shapefile layer file gets the style of its geometry (polygons / centre lines)."""
    import rasterio
    from rasterio.transform import from_origin

    labs = tmp_path / "labs"
    labs.mkdir()
    m = one_road_label()
    with rasterio.open(
        labs / "a.tif", "w", driver="GTiff", width=60, height=40, count=1, dtype="uint8",
        crs="EPSG:32633", transform=from_origin(500_000, 4_000_000, 10, 10),
    ) as ds:  # fmt: skip
        ds.write(m[None])
    for suffix in (".geojson", ".shp"):
        out = tmp_path / suffix[1:] / f"roads{suffix}"
        for _ in range(2):  # a re-export replaces the styles, nothing else appears
            res = export_labels(labs, out, category="road", progress=False)
        assert res.n_lines == 1
        polygons = out.with_suffix(".qml")
        lines = out.with_name(f"roads_centre_lines{suffix}").with_suffix(".qml")
        assert polygons.read_text(encoding="utf-8") == quality_qml()
        assert lines.read_text(encoding="utf-8") == quality_qml(geometry="line")
        for qml, geometry_code in ((polygons, "2"), (lines, "1")):
            doc = ET.fromstring(qml.read_text(encoding="utf-8").split("\n", 1)[1])
            assert doc.findtext("layerGeometryType") == geometry_code
        assert sorted(p.name for p in out.parent.glob("*.qml")) == sorted(
            [lines.name, polygons.name]
        )
        assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp files
