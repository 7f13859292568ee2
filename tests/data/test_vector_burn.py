"""The one rasteriser of label polygons (``data.vector.burn_shapes``), checked against its rule.

Random star-shaped polygons with holes, on a georeferenced grid or in pixel coordinates: a pixel
is 1 exactly when its centre lies inside (shapely ``contains_xy``, centres on a boundary left out:
there the two libraries' tie rules differ), every touched pixel with ``all_touched``, and a window
of :meth:`VectorLabels.rasterize` is that window of the whole burn.
"""

from __future__ import annotations

import math

import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.transform import from_origin
from shapely.geometry import Polygon

from sam2elnet.data.tiling import Window
from sam2elnet.data.vector import VectorLabels, burn_shapes

H, W = 37, 45


def _star(cx: float, cy: float, radii: list[float]) -> list[tuple[float, float]]:
    n = len(radii)
    return [
        (cx + r * math.cos(2 * math.pi * k / n), cy + r * math.sin(2 * math.pi * k / n))
        for k, r in enumerate(radii)
    ]


@st.composite
def polygon_px(draw: st.DrawFn) -> Polygon:
    """A simple polygon (pixel coordinates), star-shaped about its centre, often with a hole."""
    cx = draw(st.floats(-5, W + 5, allow_nan=False))
    cy = draw(st.floats(-5, H + 5, allow_nan=False))
    size = draw(st.floats(1.0, 25.0))
    outer = draw(st.lists(st.floats(0.5, 1.0), min_size=6, max_size=12))
    shell = _star(cx, cy, [size * r for r in outer])
    holes = []
    if draw(st.booleans()):  # inside the shell: < 0.5 * cos(pi / 6) of the smallest radius
        inner = draw(st.lists(st.floats(0.05, 0.4), min_size=3, max_size=8))
        holes.append(_star(cx, cy, [size * r for r in inner]))
    return Polygon(shell, holes)


GRIDS = st.sampled_from([None, from_origin(500000, 4000000, 10, 10), from_origin(-3, 2, 0.5, 0.25)])


def _to_map(g: Polygon, transform) -> Polygon:
    if transform is None:
        return g
    return shapely.transform(g, lambda xy: np.column_stack(transform * (xy[:, 0], xy[:, 1])))


def _centres(transform) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.mgrid[0:H, 0:W] + 0.5
    if transform is None:
        return cols, rows
    x, y = transform * (cols, rows)
    return np.asarray(x), np.asarray(y)


@settings(max_examples=60, deadline=None)
@given(st.lists(polygon_px(), min_size=0, max_size=3), GRIDS)
def test_burn_is_the_pixel_centre_rule(polys: list[Polygon], transform) -> None:
    geoms = [_to_map(g, transform) for g in polys]
    out = burn_shapes(geoms, H, W, transform)
    assert out.dtype == np.uint8 and out.shape == (H, W)
    assert set(np.unique(out)) <= {0, 1}
    x, y = _centres(transform)
    inside = np.zeros((H, W), bool)
    on_edge = np.zeros((H, W), bool)
    pixel = abs(transform.a) if transform is not None else 1.0
    for g in geoms:
        inside |= shapely.contains_xy(g, x, y)
        on_edge |= shapely.distance(g.boundary, shapely.points(x, y)) < 1e-9 * pixel
    assert np.array_equal(out.astype(bool)[~on_edge], inside[~on_edge])
    touched = burn_shapes(geoms, H, W, transform, all_touched=True)
    assert np.all(touched >= out)  # every touched pixel: a superset of the centres inside


@settings(max_examples=30, deadline=None)
@given(
    st.lists(polygon_px(), min_size=1, max_size=3),
    st.integers(0, H - 1),
    st.integers(0, W - 1),
    st.integers(1, H),
    st.integers(1, W),
    st.booleans(),
)
def test_a_window_is_that_part_of_the_whole_burn(
    polys: list[Polygon], r0: int, c0: int, h: int, w: int, touched: bool
) -> None:
    t = from_origin(500000, 4000000, 10, 10)
    geoms = [_to_map(g, t) for g in polys]
    labels = VectorLabels(geoms=geoms, transform=t, height=H, width=W)
    whole = burn_shapes(geoms, H, W, t, all_touched=touched)
    h, w = min(h, H - r0), min(w, W - c0)
    part = labels.rasterize(Window(r0, c0, h, w), all_touched=touched)
    assert np.array_equal(labels.rasterize(all_touched=touched), whole)
    assert np.array_equal(part, whole[r0 : r0 + h, c0 : c0 + w])


def test_no_geometry_burns_nothing() -> None:
    out = burn_shapes([], 4, 5)
    assert out.shape == (4, 5) and out.dtype == np.uint8 and not out.any()
