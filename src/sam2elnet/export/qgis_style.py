"""A ready QGIS layer style inside the GeoPackage: polygons coloured by predicted quality.

QGIS reads default styles of GeoPackage layers from the ``layer_styles`` table (the table QGIS
itself writes with *Layer Properties > Style > Save as Default*): one row per style with the
table name, the style as QML (QGIS's own XML) and SLD (OGC Styled Layer Descriptor 1.1), and
``useAsDefault`` = 1 so the style applies when the layer is opened. Both documents are written
here from :data:`QUALITY_CLASSES`, the one place for the classes and colours:

* predicted IoU < 0.5 - red (check these first), 0.5-0.7 orange, 0.7-0.85 yellow, >= 0.85 green
  (a ColorBrewer RdYlGn diverging scheme), and grey for polygons without a score.
"""

from __future__ import annotations

import datetime as _dt
import sqlite3
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

__all__ = ["QUALITY_CLASSES", "STYLE_NAME", "quality_qml", "quality_sld", "add_layer_style"]

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


def _expr(field: str, lo: float | None, hi: float | None) -> str:
    parts = []
    if lo is not None:
        parts.append(f'"{field}" >= {lo:g}')
    if hi is not None:
        parts.append(f'"{field}" < {hi:g}')
    return " AND ".join(parts)


def _qml_symbol(name: str, rgb: tuple[int, int, int]) -> str:
    r, g, b = rgb
    props = {
        "color": f"{r},{g},{b},{_FILL_ALPHA}",
        "outline_color": f"{r},{g},{b},255",
        "outline_style": "solid",
        "outline_width": "0.4",
        "outline_width_unit": "MM",
        "style": "solid",
    }
    opts = "".join(f'<Option name="{k}" type="QString" value="{v}"/>' for k, v in props.items())
    legacy = "".join(f'<prop k="{k}" v="{v}"/>' for k, v in props.items())
    return (
        f'<symbol type="fill" name="{name}" alpha="1" clip_to_extent="1" force_rhr="0">'
        f'<layer class="SimpleFill" enabled="1" pass="0" locked="0">'
        f'<Option type="Map">{opts}</Option>{legacy}</layer></symbol>'
    )


def quality_qml(field: str = "quality") -> str:
    """QML with a rule-based renderer: one rule per quality class, plus unscored polygons."""
    rules = []
    symbols = []
    for i, (label, lo, hi, rgb) in enumerate(QUALITY_CLASSES):
        rules.append(
            f'<rule key="{{c{i}}}" symbol="{i}" label={quoteattr(label)} '
            f"filter={quoteattr(_expr(field, lo, hi))}/>"
        )
        symbols.append(_qml_symbol(str(i), rgb))
    n = len(QUALITY_CLASSES)
    rules.append(
        f'<rule key="{{none}}" symbol="{n}" label={quoteattr(_NO_SCORE[0])} '
        f"filter={quoteattr(f'{chr(34)}{field}{chr(34)} IS NULL')}/>"
    )
    symbols.append(_qml_symbol(str(n), _NO_SCORE[1]))
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        '<qgis version="3.28.0" styleCategories="Symbology">\n'
        '<renderer-v2 type="RuleRenderer" symbollevels="0" enableorderby="0" forceraster="0">\n'
        f'<rules key="{{root}}">{"".join(rules)}</rules>\n'
        f"<symbols>{''.join(symbols)}</symbols>\n"
        "</renderer-v2>\n"
        "<layerGeometryType>2</layerGeometryType>\n"
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


def _sld_rule(label: str, filt: str, rgb: tuple[int, int, int]) -> str:
    hexc = "#{:02x}{:02x}{:02x}".format(*rgb)
    return (
        f"<se:Rule><se:Name>{escape(label)}</se:Name>{filt}<se:PolygonSymbolizer>"
        f'<se:Fill><se:SvgParameter name="fill">{hexc}</se:SvgParameter>'
        f'<se:SvgParameter name="fill-opacity">{_FILL_ALPHA / 255:.2f}</se:SvgParameter></se:Fill>'
        f'<se:Stroke><se:SvgParameter name="stroke">{hexc}</se:SvgParameter>'
        '<se:SvgParameter name="stroke-width">1</se:SvgParameter></se:Stroke>'
        "</se:PolygonSymbolizer></se:Rule>"
    )


def quality_sld(layer: str = "labels", field: str = "quality") -> str:
    """SLD 1.1 (Symbology Encoding) with the same classes, for other GIS software."""
    rules = [
        _sld_rule(lab, _sld_filter(field, lo, hi), rgb) for lab, lo, hi, rgb in QUALITY_CLASSES
    ]
    rules.append(
        _sld_rule(
            _NO_SCORE[0],
            f"<ogc:Filter><ogc:PropertyIsNull><ogc:PropertyName>{field}</ogc:PropertyName>"
            "</ogc:PropertyIsNull></ogc:Filter>",
            _NO_SCORE[1],
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


def add_layer_style(gpkg: str | Path, layer: str = "labels", field: str = "quality") -> None:
    """Store the quality style as ``layer``'s default QGIS style in the GeoPackage ``gpkg``.

    Creates the ``layer_styles`` table (QGIS's schema) when missing, registers it in
    ``gpkg_contents`` as an attribute table, and replaces an earlier default style of the layer.
    """
    con = sqlite3.connect(str(gpkg))
    try:
        geom = con.execute(
            "SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (layer,)
        ).fetchone()
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
                quality_qml(field),
                quality_sld(layer, field),
                "label polygons coloured by the evaluator's predicted IoU (red: check first)",
                now,
            ),
        )
        con.commit()
    finally:
        con.close()
