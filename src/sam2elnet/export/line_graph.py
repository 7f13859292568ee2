"""The line graph of road centre lines: merging skeleton segments, line ends and their degrees,
one canonical form per line (:mod:`sam2elnet.export.centrelines` builds the lines with these).

Lines are shapely LineStrings whose vertices are pixel centres (``col + 0.5``, ``row + 0.5``):
exact binary fractions, so end points compare exactly and serve as dictionary keys.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

__all__ = ["canonical", "degrees", "isolated", "line_ends", "merge", "split_at_rows"]


def merge(lines: list[Any]) -> list[Any]:
    """``shapely.line_merge`` of ``lines``: one LineString per stretch between ends and
    junctions (end points shared by three or more lines); ``[]`` for none."""
    import shapely

    if not lines:
        return []
    return list(shapely.get_parts(shapely.line_merge(shapely.multilinestrings(lines))))


def line_ends(g: Any) -> tuple[tuple[float, float], tuple[float, float]]:
    """First and last vertex of a LineString as ``(x, y)`` tuples."""
    import shapely

    xy = shapely.get_coordinates(g)
    return (float(xy[0, 0]), float(xy[0, 1])), (float(xy[-1, 0]), float(xy[-1, 1]))


def degrees(lines: list[Any]) -> dict[tuple[float, float], int]:
    """Line ends per end point (pixel centres are exact binary fractions: exact keys)."""
    deg: dict[tuple[float, float], int] = {}
    for g in lines:
        for e in line_ends(g):
            deg[e] = deg.get(e, 0) + 1
    return deg


def split_at_rows(lines: list[Any], ys: list[float]) -> list[Any]:
    """``lines`` cut at every inner vertex with y in ``ys``: the strip border rows, whose pixels
    have skeleton steps in two strips, so a strip's own merge may have run through a junction
    there (the other strip's branch unseen); the final merge joins what belongs together."""
    import shapely

    if not ys:
        return lines
    out = []
    for g in lines:
        xy = shapely.get_coordinates(g)
        at = np.nonzero(np.isin(xy[1:-1, 1], ys))[0] + 1
        if not len(at):
            out.append(g)
            continue
        bounds = [0, *at.tolist(), len(xy) - 1]
        out.extend(shapely.linestrings(xy[i : j + 1]) for i, j in itertools.pairwise(bounds))
    return out


def canonical(lines: list[Any]) -> list[Any]:
    """Each line in one direction and a free ring from one vertex, whatever order the segments
    were merged in (whole or strips), so that simplification, which keeps a line's first vertex
    and may break ties by direction, gives the same lines: an open line runs from its smaller
    end ((x, y) order); a ring from a junction keeps the junction and runs towards the smaller
    neighbour; a free ring starts at its smallest vertex."""
    import shapely

    deg = degrees(lines)
    out = []
    for g in lines:
        xy = shapely.get_coordinates(g)
        first, last = tuple(xy[0]), tuple(xy[-1])
        if first != last:
            out.append(shapely.linestrings(xy[::-1]) if last < first else g)
            continue
        ring = xy[:-1]
        if deg[first] == 2 and len(ring) > 1:  # a free ring: start at its smallest vertex
            k = int(np.lexsort((ring[:, 1], ring[:, 0]))[0])
            ring = np.roll(ring, -k, axis=0)
        if len(ring) > 2 and tuple(ring[-1]) < tuple(ring[1]):
            ring = np.concatenate([ring[:1], ring[1:][::-1]])
        out.append(shapely.linestrings(np.concatenate([ring, ring[:1]])))
    return out


def isolated(g: Any, deg: dict[tuple[float, float], int]) -> bool:
    """The line is a whole piece: both ends free, or a ring touching nothing else."""
    a, b = line_ends(g)
    return (deg[a] == 1 and deg[b] == 1) or (a == b and deg[a] == 2)
