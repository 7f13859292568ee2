"""Report tables: metric dicts and row lists -> the table context of the report template.

Also the one place that formats a value for the page (:func:`fmt_value`: thousands separators,
4 decimals, "—" for missing or non-finite) and decides what counts as a number
(:func:`as_float`). Every key gets its readable name and definition from
:mod:`sam2elnet.pipeline.glossary`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sam2elnet.pipeline.glossary import definition
from sam2elnet.pipeline.glossary import label as key_label

__all__ = [
    "as_float",
    "fmt_value",
    "is_finite",
    "is_number",
    "kv_table",
    "rows_table",
    "tables_of",
    "used_keys",
]


def as_float(v: Any) -> float | None:
    """``v`` as a finite float, or None.

    Args:
        v: Any value.

    Returns:
        ``float(v)`` when it is a finite number; None for None, bools, NaN, inf and text that is
        not a number.
    """
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if v is not None and not isinstance(v, bool) and math.isfinite(f) else None


def is_finite(v: Any) -> bool:
    """Whether ``v`` is a finite number (see :func:`as_float`).

    Args:
        v: Any value.

    Returns:
        True for finite numbers (not bools).
    """
    return as_float(v) is not None


def fmt_value(v: Any) -> str:
    """``v`` as shown on the page.

    Args:
        v: Any value.

    Returns:
        "—" for None / NaN / inf, "yes" / "no" for bools, integers with thousands separators,
        floats with 4 decimals, anything else as ``str``.
    """
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.4f}" if math.isfinite(float(v)) else "—"
    return str(v)


def is_number(v: Any) -> bool:
    """Whether a column holding ``v`` is numeric (right-aligned).

    Args:
        v: Any value.

    Returns:
        True for None and numbers (not bools).
    """
    return v is None or (
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
    )


def _cell(v: Any) -> dict[str, Any]:
    return {"text": fmt_value(v), "num": is_number(v) and v is not None, "sort": as_float(v)}


def kv_table(title: str | None, data: Mapping[str, Any]) -> dict[str, Any]:
    """Key / value table of the scalar entries of ``data`` (nested dicts and lists left out).

    Returns:
        ``{"kind": "kv", "title", "rows"}``; each row has the key, its readable ``label`` and
        ``definition`` (glossary), the formatted ``text``, ``num`` / ``sort`` for sorting and
        ``long`` for values over 60 characters.
    """
    rows = [
        {
            "key": str(k),
            "label": key_label(str(k)),
            "definition": definition(str(k)),
            **_cell(v),
            "long": isinstance(v, str) and len(v) > 60,
        }
        for k, v in data.items()
        if not isinstance(v, (Mapping, list, tuple))
    ]
    return {"kind": "kv", "title": title, "rows": rows}


def rows_table(
    title: str | None,
    rows: Sequence[Mapping[str, Any]],
    row_flags: Sequence[str | None] | None = None,
) -> dict[str, Any]:
    """Table of one row per dict (columns: the union of their keys, in first-seen order).

    Args:
        title: Caption, or None.
        rows: One mapping per row.
        row_flags: One note per row (e.g. "degenerate model") or None per row; optional.

    Returns:
        ``{"kind": "rows", "title", "columns", "rows"}`` for the template.
    """
    cols: list[str] = []
    for r in rows:
        cols.extend(str(k) for k in r if str(k) not in cols)
    columns = [
        {
            "key": c,
            "label": key_label(c),
            "definition": definition(c),
            "num": all(is_number(r.get(c)) for r in rows),
        }
        for c in cols
    ]
    body = []
    for k, r in enumerate(rows):
        flag = row_flags[k] if row_flags else None
        body.append({"cells": [_cell(r.get(c)) for c in cols], "flag": flag})
    return {"kind": "rows", "title": title, "columns": columns, "rows": body}


def tables_of(title: str | None, table: Any) -> list[dict[str, Any]]:
    """Template tables for a metrics value.

    Args:
        title: Caption of the first table, or None.
        table: A dict (a key / value table of its scalars, plus one table per nested dict or
            list of dicts), a list of dicts (one rows table) or anything else (a text block).

    Returns:
        The table dicts (see :func:`kv_table`, :func:`rows_table`).
    """
    if isinstance(table, Mapping):
        scalars = {k: v for k, v in table.items() if not isinstance(v, (Mapping, list, tuple))}
        out = [kv_table(title, scalars)] if scalars else []
        for k, v in table.items():
            if isinstance(v, Mapping):
                out.extend(tables_of(f"{title}: {key_label(str(k))}" if title else str(k), v))
            elif isinstance(v, (list, tuple)) and v and all(isinstance(x, Mapping) for x in v):
                out.append(rows_table(str(k), v))
        return out
    if isinstance(table, (list, tuple)):
        return [rows_table(title, table)]
    return [{"kind": "text", "title": title, "text": str(table)}]


def used_keys(tables: Sequence[Mapping[str, Any]]) -> set[str]:
    """Every metric key shown in ``tables`` (for the glossary under them).

    Args:
        tables: Table dicts from :func:`tables_of`.

    Returns:
        The keys of key / value rows and of row-table columns.
    """
    keys: set[str] = set()
    for t in tables:
        if t["kind"] == "kv":
            keys.update(r["key"] for r in t["rows"])
        elif t["kind"] == "rows":
            keys.update(c["key"] for c in t["columns"])
    return keys
