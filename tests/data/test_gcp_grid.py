"""One place where a GCP grid is obtained from a raster (data.grids.GcpGrid): building it checks
the GCPs (data.gcp_check), so every reader of a GCP-only raster warns about a mistyped GCP, once
per GCP set and run, without calling the check itself; no other module builds a GCP transformer,
an affine fit to GCPs or runs the check; and the GCPs handed to GDAL's warper
(``rasterio.warp.reproject`` / ``calculate_default_transform``, ``gcps=``) come from a GcpGrid
(an ``ast`` check, shown to catch planted bad calls: ``ds.gcps`` directly, through a dict spread
with ``**``, a grid not built by GcpGrid, GCPs passed by position).

The raster: 64 x 64 px, a 5 x 6 lattice of GCPs on a sheared EPSG:4326 map, one GCP moved 30
columns (as tests/data/test_gcp_check.py).
"""

from __future__ import annotations

import ast
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from helpers_data import write_tif
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS

import sam2elnet
from sam2elnet.data import gcp_check
from sam2elnet.utils.run_warnings import RunWarnings

os.environ.setdefault("SAM2ELNET_THREADS", "1")

WGS84 = CRS.from_epsg(4326)
SIZE = 64


def _lonlat(row: float, col: float) -> tuple[float, float]:
    return 28.0 + 1e-4 * col + 2e-5 * row, 43.0 - 9e-5 * row - 1e-5 * col


def _gcps(bad: int | None = 8) -> list[GroundControlPoint]:
    out = []
    for r in np.linspace(0, SIZE, 5):
        for c in np.linspace(0, SIZE, 6):
            x, y = _lonlat(r, c)
            out.append(GroundControlPoint(row=r, col=c, x=x, y=y, id=str(len(out) + 1)))
    if bad is not None:
        g = out[bad]
        out[bad] = GroundControlPoint(row=g.row, col=g.col + 30.0, x=g.x, y=g.y, id=g.id)
    return out


def _tif(path: Path, gcps: list[GroundControlPoint], value: int = 255) -> Path:
    a = np.zeros((1, SIZE, SIZE), np.uint8)
    a[0, 20:40, 20:40] = value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        return write_tif(path, a, georef=False, gcps=(gcps, WGS84))


def _open(path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        return rasterio.open(path)


def _read_image(p: Path) -> None:
    from sam2elnet.data.images import read_image

    read_image(p)


def _vector_grid(p: Path) -> None:
    from sam2elnet.data.vector_grid import image_grid

    with _open(p) as ds:
        image_grid(ds)


def _label_raster(p: Path) -> None:
    from sam2elnet.export.labels import LabelRaster

    LabelRaster(p).close()


def _warp(p: Path) -> None:
    from sam2elnet.data.warp import warp_to_map_grid

    warp_to_map_grid(p, p.with_name("warped.tif"), "utm")


def _pixels_to_map(p: Path) -> None:
    from sam2elnet.data.warp import pixels_to_map

    with _open(p) as ds:
        pixels_to_map(ds, np.array([0.0]), np.array([0.0]), WGS84)


def _footprints(p: Path) -> None:
    from sam2elnet.engine.scene_writer import windows_geo

    with _open(p) as ds:
        windows_geo(ds)(0, 0, 32, 32)


def _placed_on_other_grid(p: Path) -> None:
    from sam2elnet.data.grids import other_grid, resample_nearest

    other = _tif(p.with_name("other.tif"), _gcps(bad=None))  # correct GCPs: no warning of its own
    grid = other_grid(p, other)
    assert grid is not None
    with _open(p) as ds:
        resample_nearest(ds.read(1), grid, fill=0, path=p, like=other)


READERS = {
    "read_image": _read_image,
    "vector image_grid": _vector_grid,
    "export LabelRaster": _label_raster,
    "warp_to_map_grid": _warp,
    "pixels_to_map": _pixels_to_map,
    "quality-gpkg footprints": _footprints,
    "resample_nearest": _placed_on_other_grid,
}


def _gcp_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == gcp_check.log.name]


@pytest.mark.parametrize("reader", list(READERS))
def test_every_reader_of_a_gcp_raster_warns_once_naming_it(tmp_path: Path, caplog, reader: str):
    p = _tif(tmp_path / "grd.tif", _gcps())
    with caplog.at_level(logging.WARNING), RunWarnings("file"):
        READERS[reader](p)
        READERS[reader](p)  # the same GCP set again in the run: not repeated
    [text] = _gcp_warnings(caplog)
    assert text.startswith(f"{p}: 1 of its 30 ground control points lies far from")
    assert "GCP 9 (id 9, row 16, col 55.6) 30.0 px" in text


def test_all_readers_in_one_run_warn_once(tmp_path: Path, caplog):
    p = _tif(tmp_path / "grd.tif", _gcps())
    with caplog.at_level(logging.WARNING), RunWarnings("file") as run:
        for read in READERS.values():
            read(p)
    assert len(_gcp_warnings(caplog)) == 1
    assert run.counts()[gcp_check.GCP_OUTLIER_KIND] == 1


def test_gcp_grid_of_a_dataset(tmp_path: Path, caplog):
    """GcpGrid.of: the GCPs and their CRS of a GCP-only raster (checked), None for a raster with
    a CRS; ``placeable`` needs >= 3 GCPs with a CRS; the affine fit maps pixel corners to the
    GCPs' map positions (the GCPs here are affine)."""
    from affine import Affine

    from sam2elnet.data.grids import GcpGrid

    good = _gcps(bad=None)
    with _open(_tif(tmp_path / "g.tif", good)) as ds:
        grid = GcpGrid.of(ds)
    assert grid is not None and grid.placeable and grid.crs == WGS84
    assert len(grid.gcps) == 30 and grid.residuals.outliers == ()
    x, y = grid.affine() * (64.0, 16.0)
    assert (x, y) == pytest.approx(_lonlat(16.0, 64.0), abs=1e-9)
    with grid.transformer() as tr:
        assert tr.xy(16.0, 64.0, offset="ul") == pytest.approx(_lonlat(16.0, 64.0), abs=1e-9)
    assert not GcpGrid(good[:2], WGS84).placeable and not GcpGrid(good, None).placeable
    with rasterio.open(
        tmp_path / "t.tif", "w", driver="GTiff", height=4, width=4, count=1, dtype="uint8",
        crs=WGS84, transform=Affine(1e-4, 0, 28, 0, -1e-4, 43),
    ) as ds:  # fmt: skip
        ds.write(np.zeros((1, 4, 4), np.uint8))
    with rasterio.open(tmp_path / "t.tif") as ds:
        assert GcpGrid.of(ds) is None
    assert not _gcp_warnings(caplog)


def _calls(tree: ast.AST, names: set[str]) -> list[tuple[str, int]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = (
                f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            )
            if name in names:
                out.append((name, node.lineno))
    return out


def test_gcp_grids_are_built_in_one_place():
    """The GCP check, GDAL's GCP transformer and the affine fit to GCPs are called in
    data/grids.py (GcpGrid) only, so a new reader cannot place anything through GCPs without
    the check."""
    root = Path(sam2elnet.__file__).parent
    allowed = {root / "data" / "grids.py", root / "data" / "gcp_check.py"}
    found = []
    for f in sorted(root.rglob("*.py")):
        if f in allowed:
            continue
        calls = _calls(ast.parse(f.read_text()), {"check_gcps", "GCPTransformer", "from_gcps"})
        found += [f"{f.relative_to(root)}:{line} {name}" for name, line in calls]
    assert found == []


# GCPs handed to GDAL's warper: rasterio.warp.reproject / calculate_default_transform take them
# as the ``gcps`` keyword (positionally the 4th / 9th argument). Each such call in src must pass
# GCPs that come from a GcpGrid (so they were checked), traced through the function's own
# assignments, tuple unpacking and the dicts it spreads with ``**``.

_WARP_CALLS = {"reproject": 3, "calculate_default_transform": 8}
"""Callee -> index of ``gcps`` among its positional parameters (rasterio.warp)."""
_GRID_BUILDERS = {"GcpGrid", "of", "of_geo"}
"""``GcpGrid(...)``, ``GcpGrid.of(...)``, ``GcpGrid.of_geo(...)``."""


class _Scope:
    """The bindings of one function (or module body): name -> assigned values, and the
    annotations of its parameters; nested functions see their parents' bindings."""

    def __init__(self, node: ast.AST, parent: _Scope | None = None, cls: str | None = None):
        self.parent, self.cls = parent, cls
        self.values: dict[str, list[ast.expr | None]] = {}
        self.annotation: dict[str, str] = {}
        self.updates: dict[str, list[ast.expr]] = {}  # dict name -> its "gcps" values
        args = getattr(node, "args", None)
        if args is not None:
            for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
                ann = ast.unparse(a.annotation) if a.annotation is not None else ""
                self.annotation[a.arg] = ann.strip("'\"")
                self.values.setdefault(a.arg, []).append(None)  # None: a parameter
        for sub in _own_nodes(node):
            if isinstance(sub, ast.Assign):
                for t in sub.targets:
                    self._bind(t, sub.value)
            elif isinstance(sub, (ast.AnnAssign, ast.AugAssign)) and sub.value is not None:
                self._bind(sub.target, sub.value)
            elif isinstance(sub, (ast.For, ast.comprehension, ast.withitem)):
                t = sub.target if not isinstance(sub, ast.withitem) else sub.optional_vars
                if t is not None:
                    self._bind(t, ast.Constant("<loop or with target>"))
            elif isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute):
                d = sub.func.value
                if sub.func.attr == "update" and isinstance(d, ast.Name):
                    self.updates.setdefault(d.id, []).extend(
                        k.value for k in sub.keywords if k.arg == "gcps"
                    )

    def _bind(self, target: ast.expr, value: ast.expr) -> None:
        if isinstance(target, ast.Name):
            self.values.setdefault(target.id, []).append(value)
        elif isinstance(target, (ast.Tuple, ast.List)):
            same = isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts)
            for i, t in enumerate(target.elts):
                self._bind(t, value.elts[i] if same else ast.Subscript(value, ast.Constant(i)))
        elif (
            isinstance(target, ast.Subscript)
            and isinstance(target.value, ast.Name)
            and isinstance(target.slice, ast.Constant)
            and target.slice.value == "gcps"
        ):
            self.updates.setdefault(target.value.id, []).append(value)

    def lookup(self, name: str) -> tuple[_Scope, list[ast.expr | None]] | None:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.values:
                return scope, scope.values[name]
            scope = scope.parent
        return None


def _own_nodes(node: ast.AST):
    """The nodes of ``node``'s body, not those of functions or classes defined in it."""
    todo = list(ast.iter_child_nodes(node))
    while todo:
        sub = todo.pop()
        yield sub
        if not isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            todo.extend(ast.iter_child_nodes(sub))


def _is_grid(expr: ast.expr, scope: _Scope, depth: int = 0) -> bool:
    """``expr`` is a GcpGrid: built by GcpGrid / GcpGrid.of / GcpGrid.of_geo, a parameter
    annotated GcpGrid, or ``self`` inside class GcpGrid."""
    if depth > 20:
        return False
    if isinstance(expr, ast.Call):
        f = expr.func
        if isinstance(f, ast.Name):
            return f.id == "GcpGrid"
        return (
            isinstance(f, ast.Attribute)
            and f.attr in _GRID_BUILDERS
            and isinstance(f.value, ast.Name)
            and f.value.id == "GcpGrid"
        )
    if isinstance(expr, ast.Name):
        found = scope.lookup(expr.id)
        if found is None:
            return False
        where, values = found
        if expr.id == "self" and where.cls == "GcpGrid":
            return True
        return all(
            (where.annotation.get(expr.id, "").split("|")[0].strip() == "GcpGrid")
            if v is None
            else _is_grid(v, where, depth + 1)
            for v in values
        )
    return False


def _gcps_ok(expr: ast.expr, scope: _Scope, depth: int = 0) -> bool:
    """``expr`` holds GCPs from a GcpGrid (``grid.gcps``, traced through names), or none
    (``None``, an empty list / tuple)."""
    if depth > 20:
        return False
    if isinstance(expr, ast.Constant) and expr.value is None:
        return True
    if isinstance(expr, (ast.List, ast.Tuple)) and not expr.elts:
        return True
    if isinstance(expr, ast.Attribute) and expr.attr == "gcps":
        return _is_grid(expr.value, scope, depth + 1)
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id in (
        "list", "tuple"
    ):  # fmt: skip
        return len(expr.args) == 1 and _gcps_ok(expr.args[0], scope, depth + 1)
    if isinstance(expr, ast.IfExp):
        return _gcps_ok(expr.body, scope, depth + 1) and _gcps_ok(expr.orelse, scope, depth + 1)
    if isinstance(expr, ast.Name):
        found = scope.lookup(expr.id)
        if found is None:
            return False
        where, values = found
        return all(v is not None and _gcps_ok(v, where, depth + 1) for v in values)
    return False


def _spread_gcps(expr: ast.expr, scope: _Scope) -> list[ast.expr] | None:
    """The ``gcps`` values a ``**expr`` can carry: of a dict literal or ``dict(...)`` call, or a
    name bound only to those (with its ``d.update(gcps=...)`` / ``d["gcps"] = ...``); None when
    it cannot be traced (a parameter, another call's result)."""
    if isinstance(expr, ast.Dict):
        return [
            v
            for k, v in zip(expr.keys, expr.values, strict=True)
            if isinstance(k, ast.Constant) and k.value == "gcps"
        ]
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id == "dict":
        return None if expr.args else [k.value for k in expr.keywords if k.arg == "gcps"]
    if isinstance(expr, ast.Name):
        found = scope.lookup(expr.id)
        if found is None or any(v is None for v in found[1]):
            return None
        where, values = found
        out = list(where.updates.get(expr.id, []))
        for v in values:
            got = _spread_gcps(v, where)
            if got is None:
                return None
            out += got
        return out
    return None


def unchecked_gcp_warps(source: str) -> list[str]:
    """Every ``reproject`` / ``calculate_default_transform`` call in ``source`` whose GCPs do not
    come from a GcpGrid: ``"<line> <callee>: <why>"``."""
    tree = ast.parse(source)
    bad: list[str] = []

    def visit(node: ast.AST, scope: _Scope) -> None:
        for sub in _own_nodes(node):
            if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(sub, _Scope(sub, scope, scope.cls))
            elif isinstance(sub, ast.ClassDef):
                visit(sub, _Scope(sub, scope, sub.name))
            if not isinstance(sub, ast.Call):
                continue
            f = sub.func
            name = (
                f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            )
            if name not in _WARP_CALLS:
                continue
            where = f"{sub.lineno} {name}"
            positional = [a for a in sub.args if not isinstance(a, ast.Starred)]
            if len(positional) > _WARP_CALLS[name]:
                bad.append(f"{where}: GCPs passed by position (give gcps= from a GcpGrid)")
            for k in sub.keywords:
                if k.arg == "gcps" and not _gcps_ok(k.value, scope):
                    bad.append(f"{where}: gcps={ast.unparse(k.value)} is not from a GcpGrid")
                elif k.arg is None:
                    got = _spread_gcps(k.value, scope)
                    if got is None:
                        bad.append(f"{where}: **{ast.unparse(k.value)} cannot be traced")
                    else:
                        bad.extend(
                            [
                                f"{where}: gcps={ast.unparse(v)} (in **{ast.unparse(k.value)}) is "
                                "not from a GcpGrid"
                                for v in got
                                if not _gcps_ok(v, scope)
                            ]
                        )

    visit(tree, _Scope(tree))
    return bad


def test_gcps_given_to_gdal_warps_come_from_a_gcp_grid():
    """Every rasterio.warp.reproject / calculate_default_transform call in src that can take
    GCPs takes them from a GcpGrid (checked when built), not from ``ds.gcps`` directly."""
    root = Path(sam2elnet.__file__).parent
    found, calls = [], 0
    for f in sorted(root.rglob("*.py")):
        text = f.read_text()
        found += [f"{f.relative_to(root)}:{b}" for b in unchecked_gcp_warps(text)]
        calls += len(_calls(ast.parse(text), set(_WARP_CALLS)))
    assert found == []
    assert calls >= 3  # data/warp.py (2) and data/grids.py (1): the check looked at them


GOOD = """
from rasterio.warp import calculate_default_transform, reproject
from sam2elnet.data.grids import GcpGrid

def warp(ds, a, b):
    grid = GcpGrid.of(ds)
    gcps, crs = grid.gcps, grid.crs
    reproject(a, b, gcps=gcps, src_crs=crs)
    calculate_default_transform(crs, "EPSG:4326", 4, 4, gcps=list(grid.gcps))

def spread(ds, a, b, path):
    opts = {"src_crs": None}
    src = GcpGrid.of_geo(ds, path)
    if src is None:
        opts["src_transform"] = ds.transform
    else:
        opts.update(gcps=src.gcps)
    geo = {"gcps": [], "src_crs": None}
    reproject(a, b, **geo, **opts)

def helper(grid: GcpGrid, a, b):
    reproject(a, b, gcps=grid.gcps)
"""

PLANTED = {
    "ds.gcps": "def f(ds, a, b):\n    reproject(a, b, gcps=ds.gcps[0])\n",
    "unpacked": "def f(ds, a, b):\n    gcps, crs = ds.gcps\n    reproject(a, b, gcps=gcps)\n",
    "one branch": (
        "def f(ds, a, b, x):\n    gcps = GcpGrid.of(ds).gcps\n    if x:\n"
        "        gcps = ds.gcps[0]\n    calculate_default_transform(1, 2, 3, 4, gcps=gcps)\n"
    ),
    "dict literal": (
        "def f(ds, a, b):\n    geo = {'gcps': ds.gcps[0]}\n    reproject(a, b, **geo)\n"
    ),
    "dict update": (
        "def f(ds, a, b):\n    o = {}\n    o.update(gcps=ds.gcps[0])\n    reproject(a, b, **o)\n"
    ),
    "dict item": "def f(ds, a, b):\n    o = dict()\n    o['gcps'] = ds.gcps[0]\n    reproject(a, b, **o)\n",
    "untraced": "def f(a, b, **kw):\n    reproject(a, b, **kw)\n",
    "positional": "def f(a, b, g):\n    reproject(a, b, None, g)\n",
    "other grid object": (
        "def f(ds, a, b):\n    grid = ds.grid()\n    reproject(a, b, gcps=grid.gcps)\n"
    ),
    "untyped helper": "def f(grid, a, b):\n    reproject(a, b, gcps=grid.gcps)\n",
}


def test_the_gcp_warp_check_passes_gcp_grid_gcps():
    assert unchecked_gcp_warps(GOOD) == []


@pytest.mark.parametrize("case", list(PLANTED))
def test_the_gcp_warp_check_catches_a_planted_bad_call(case: str):
    [bad] = unchecked_gcp_warps(PLANTED[case])
    assert " reproject: " in bad or " calculate_default_transform: " in bad, bad
