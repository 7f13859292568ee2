"""A ready QGIS layer style inside the GeoPackage: polygons and road centre lines coloured by
predicted quality.

QGIS reads default styles of GeoPackage layers from the ``layer_styles`` table (the table QGIS
itself writes with *Layer Properties > Style > Save as Default*): one row per style with the
table name, the style as QML (QGIS's own XML) and SLD (OGC Styled Layer Descriptor 1.1), and
``useAsDefault`` = 1 so the style applies when the layer is opened. Both documents are written
here from :data:`QUALITY_CLASSES`, the one place for the classes and colours:

* predicted IoU < 0.5 - red (check these first), 0.5-0.7 orange, 0.7-0.85 yellow, >= 0.85 green
  (a ColorBrewer RdYlGn diverging scheme), and grey for features without a score.

Polygons (the ``labels`` layer) are filled with the class colour at :data:`_FILL_ALPHA` and
outlined in it; lines (the ``centre_lines`` layer, :mod:`sam2elnet.export.centrelines`) are drawn
in the class colour, :data:`LINE_WIDTH_MM` wide, over a dark casing :data:`CASING_WIDTH_MM` wide,
so a line stays visible on the polygon of the same colour under it and on any image. Which of the
two a layer gets follows its geometry type in ``gpkg_geometry_columns``.
"""

from __future__ import annotations

import datetime as _dt
import sqlite3
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

__all__ = [
    "CASING_WIDTH_MM",
    "LINE_WIDTH_MM",
    "QUALITY_CLASSES",
    "STYLE_NAME",
    "add_layer_style",
    "quality_qml",
    "quality_sld",
    "style_kind",
    "write_qml_sidecar",
]

STYLE_NAME = "predicted quality"
#: (label, lower bound inclusive or None, upper bound exclusive or None, RGB) per class
QUALITY_CLASSES: tuple[tuple[str, float | None, float | None, tuple[int, int, int]], ...] = (
    ("predicted IoU < 0.50 (check first)", None, 0.5, (215, 25, 28)),
    ("predicted IoU 0.50 - 0.70", 0.5, 0.7, (253, 174, 97)),
    ("predicted IoU 0.70 - 0.85", 0.7, 0.85, (255, 255, 191)),
    ("predicted IoU >= 0.85", 0.85, None, (26, 150, 65)),
)
_NO_SCORE = ("no quality score", (150, 150, 150))
_FILL_ALPHA = 110  # of 255: the image stays visible under the polygons
LINE_WIDTH_MM = 0.6
"""Width of a centre line's coloured stroke, millimetres on screen / paper."""
CASING_WIDTH_MM = 1.0
"""Width of the dark casing under it (:data:`_CASING_RGB`), millimetres."""
_CASING_RGB = (40, 40, 40)
_PX_PER_MM = 1 / 0.28  # SLD widths are pixels, 0.28 mm each (OGC SE 1.1 "standardized pixel")
_GEOMETRY_TYPES = {"polygon": 2, "line": 1}  # QGIS's QgsWkbTypes::GeometryType in QML


def _expr(field: str, lo: float | None, hi: float | None) -> str:
    parts = []
    if lo is not None:
        parts.append(f'"{field}" >= {lo:g}')
    if hi is not None:
        parts.append(f'"{field}" < {hi:g}')
    return " AND ".join(parts)


def _qml_layer(cls: str, props: dict[str, str]) -> str:
    opts = "".join(f'<Option name="{k}" type="QString" value="{v}"/>' for k, v in props.items())
    legacy = "".join(f'<prop k="{k}" v="{v}"/>' for k, v in props.items())
    return (
        f'<layer class="{cls}" enabled="1" pass="0" locked="0">'
        f'<Option type="Map">{opts}</Option>{legacy}</layer>'
    )


def _line_props(rgb: tuple[int, int, int], width_mm: float) -> dict[str, str]:
    r, g, b = rgb
    return {
        "line_color": f"{r},{g},{b},255",
        "line_style": "solid",
        "line_width": f"{width_mm:g}",
        "line_width_unit": "MM",
        "capstyle": "round",
        "joinstyle": "round",
    }


def _qml_symbol(name: str, rgb: tuple[int, int, int], geometry: str = "polygon") -> str:
    if geometry == "line":  # the casing first: QGIS draws a symbol's layers bottom up
        layers = _qml_layer("SimpleLine", _line_props(_CASING_RGB, CASING_WIDTH_MM))
        layers += _qml_layer("SimpleLine", _line_props(rgb, LINE_WIDTH_MM))
        return (
            f'<symbol type="line" name="{name}" alpha="1" clip_to_extent="1" force_rhr="0">'
            f"{layers}</symbol>"
        )
    r, g, b = rgb
    props = {
        "color": f"{r},{g},{b},{_FILL_ALPHA}",
        "outline_color": f"{r},{g},{b},255",
        "outline_style": "solid",
        "outline_width": "0.4",
        "outline_width_unit": "MM",
        "style": "solid",
    }
    return (
        f'<symbol type="fill" name="{name}" alpha="1" clip_to_extent="1" force_rhr="0">'
        f"{_qml_layer('SimpleFill', props)}</symbol>"
    )


def quality_qml(field: str = "quality", geometry: str = "polygon") -> str:
    """QML with a rule-based renderer: one rule per quality class, plus unscored features.

    ``geometry``: ``"polygon"`` (filled, outlined) or ``"line"`` (cased lines)."""
    rules = []
    symbols = []
    for i, (label, lo, hi, rgb) in enumerate(QUALITY_CLASSES):
        rules.append(
            f'<rule key="{{c{i}}}" symbol="{i}" label={quoteattr(label)} '
            f"filter={quoteattr(_expr(field, lo, hi))}/>"
        )
        symbols.append(_qml_symbol(str(i), rgb, geometry))
    n = len(QUALITY_CLASSES)
    rules.append(
        f'<rule key="{{none}}" symbol="{n}" label={quoteattr(_NO_SCORE[0])} '
        f"filter={quoteattr(f'{chr(34)}{field}{chr(34)} IS NULL')}/>"
    )
    symbols.append(_qml_symbol(str(n), _NO_SCORE[1], geometry))
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        '<qgis version="3.28.0" styleCategories="Symbology">\n'
        '<renderer-v2 type="RuleRenderer" symbollevels="0" enableorderby="0" forceraster="0">\n'
        f'<rules key="{{root}}">{"".join(rules)}</rules>\n'
        f"<symbols>{''.join(symbols)}</symbols>\n"
        "</renderer-v2>\n"
        f"<layerGeometryType>{_GEOMETRY_TYPES[geometry]}</layerGeometryType>\n"
        "</qgis>\n"
    )


def _sld_filter(field: str, lo: float | None, hi: float | None) -> str:
    conds = []
    if lo is not None:
        conds.append(
            "<ogc:PropertyIsGreaterThanOrEqualTo>"
            f"<ogc:PropertyName>{field}</ogc:PropertyName><ogc:Literal>{lo:g}</ogc:Literal>"
            "</ogc:PropertyIsGreaterThanOrEqualTo>"
        )
    if hi is not None:
        conds.append(
            "<ogc:PropertyIsLessThan>"
            f"<ogc:PropertyName>{field}</ogc:PropertyName><ogc:Literal>{hi:g}</ogc:Literal>"
            "</ogc:PropertyIsLessThan>"
        )
    body = conds[0] if len(conds) == 1 else f"<ogc:And>{''.join(conds)}</ogc:And>"
    return f"<ogc:Filter>{body}</ogc:Filter>"


def _sld_stroke(hexc: str, width_px: float) -> str:
    return (
        f'<se:Stroke><se:SvgParameter name="stroke">{hexc}</se:SvgParameter>'
        f'<se:SvgParameter name="stroke-width">{width_px:g}</se:SvgParameter>'
        '<se:SvgParameter name="stroke-linejoin">round</se:SvgParameter>'
        '<se:SvgParameter name="stroke-linecap">round</se:SvgParameter></se:Stroke>'
    )


def _sld_rule(label: str, filt: str, rgb: tuple[int, int, int], geometry: str = "polygon") -> str:
    hexc = "#{:02x}{:02x}{:02x}".format(*rgb)
    if geometry == "line":
        casing = "#{:02x}{:02x}{:02x}".format(*_CASING_RGB)
        body = "".join(
            f"<se:LineSymbolizer>{_sld_stroke(c, round(w * _PX_PER_MM, 1))}</se:LineSymbolizer>"
            for c, w in ((casing, CASING_WIDTH_MM), (hexc, LINE_WIDTH_MM))
        )
    else:
        body = (
            f'<se:PolygonSymbolizer><se:Fill><se:SvgParameter name="fill">{hexc}'
            f'</se:SvgParameter><se:SvgParameter name="fill-opacity">{_FILL_ALPHA / 255:.2f}'
            f'</se:SvgParameter></se:Fill><se:Stroke><se:SvgParameter name="stroke">{hexc}'
            '</se:SvgParameter><se:SvgParameter name="stroke-width">1</se:SvgParameter>'
            "</se:Stroke></se:PolygonSymbolizer>"
        )
    return f"<se:Rule><se:Name>{escape(label)}</se:Name>{filt}{body}</se:Rule>"


def quality_sld(layer: str = "labels", field: str = "quality", geometry: str = "polygon") -> str:
    """SLD 1.1 (Symbology Encoding) with the same classes, for other GIS software
    (``geometry`` as :func:`quality_qml`'s: polygon or line symbolizers)."""
    rules = [
        _sld_rule(lab, _sld_filter(field, lo, hi), rgb, geometry)
        for lab, lo, hi, rgb in QUALITY_CLASSES
    ]
    rules.append(
        _sld_rule(
            _NO_SCORE[0],
            f"<ogc:Filter><ogc:PropertyIsNull><ogc:PropertyName>{field}</ogc:PropertyName>"
            "</ogc:PropertyIsNull></ogc:Filter>",
            _NO_SCORE[1],
            geometry,
        )
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<StyledLayerDescriptor version="1.1.0" xmlns="http://www.opengis.net/sld" '
        'xmlns:se="http://www.opengis.net/se" xmlns:ogc="http://www.opengis.net/ogc">'
        f"<NamedLayer><se:Name>{escape(layer)}</se:Name><UserStyle>"
        f"<se:Name>{escape(STYLE_NAME)}</se:Name><se:FeatureTypeStyle>{''.join(rules)}"
        "</se:FeatureTypeStyle></UserStyle></NamedLayer></StyledLayerDescriptor>\n"
    )


def style_kind(geometry_type: str | None) -> str:
    """``"line"`` for a (multi)linestring geometry type name (OGR / GeoPackage spelling, any
    case, e.g. ``"LineString"``, ``"MULTILINESTRING"``), else ``"polygon"``."""
    return "line" if geometry_type and "LINESTRING" in str(geometry_type).upper() else "polygon"


def write_qml_sidecar(
    layer_file: str | Path, geometry_type: str | None, field: str = "quality"
) -> Path:
    """Write the quality style as ``<layer_file stem>.qml`` beside a GeoJSON / Shapefile layer.

    QGIS loads a ``.qml`` file of the same base name as a file-based layer as that layer's default
    style when it opens it (the counterpart of the GeoPackage ``layer_styles`` table). Written
    atomically; replaces an earlier ``.qml`` of that name. Returns its path."""
    from sam2elnet.utils.atomic import write_text_atomic

    path = Path(layer_file).with_suffix(".qml")
    return write_text_atomic(path, quality_qml(field, style_kind(geometry_type)))


def add_layer_style(gpkg: str | Path, layer: str = "labels", field: str = "quality") -> None:
    """Store the quality style as ``layer``'s default QGIS style in the GeoPackage ``gpkg``.

    Creates the ``layer_styles`` table (QGIS's schema) when missing, registers it in
    ``gpkg_contents`` as an attribute table, and replaces an earlier default style of the layer.
    A layer whose geometry type (``gpkg_geometry_columns``) is a (multi)linestring gets the line
    style, any other the polygon style.
    """
    con = sqlite3.connect(str(gpkg))
    try:
        geom = con.execute(
            "SELECT column_name, geometry_type_name FROM gpkg_geometry_columns "
            "WHERE table_name = ?",
            (layer,),
        ).fetchone()
        kind = style_kind(geom[1] if geom else None)
        what = "road centre lines" if kind == "line" else "label polygons"
        con.execute(
            "CREATE TABLE IF NOT EXISTS layer_styles ("
            "id INTEGER PRIMARY KEY AUTOINCREMENT, f_table_catalog TEXT(256), "
            "f_table_schema TEXT(256), f_table_name TEXT(256), f_geometry_column TEXT(256), "
            "styleName TEXT(30), styleQML TEXT, styleSLD TEXT, useAsDefault BOOLEAN, "
            "description TEXT, owner TEXT(30), ui TEXT(30), update_time DATETIME "
            "DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))"
        )
        now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        con.execute(
            "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, "
            "last_change) VALUES ('layer_styles', 'attributes', 'layer_styles', ?)",
            (now,),
        )
        con.execute("DELETE FROM layer_styles WHERE f_table_name = ?", (layer,))
        con.execute(
            "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, "
            "f_geometry_column, styleName, styleQML, styleSLD, useAsDefault, description, "
            "owner, update_time) VALUES ('', '', ?, ?, ?, ?, ?, 1, ?, 'sam2elnet', ?)",
            (
                layer,
                geom[0] if geom else "geom",
                STYLE_NAME,
                quality_qml(field, kind),
                quality_sld(layer, field, kind),
                f"{what} coloured by the evaluator's predicted IoU (red: check first)",
                now,
            ),
        )
        con.commit()
    finally:
        con.close()
