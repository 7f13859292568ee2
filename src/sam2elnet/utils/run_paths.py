"""Paths a run folder's records store for its own files, and reading them back after a move.

A record (an experiment's stage markers, a scene folder's ``manifest.jsonl``) names the files a
job wrote inside its output folder relative to that folder (POSIX separators), so a moved or
copied folder, or a resume from another working folder, reads its own files
(docs/reliability.md). Records written before that named them as the run was given them
(absolute, or relative to the working folder of the time); :func:`found_under` maps such a path
onto the current folder by the end of the path.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["found_under", "relative_inside"]


def relative_inside(path: str | Path, folder: str | Path) -> str | None:
    """``path`` relative to ``folder`` (POSIX separators) when it lies inside it; else ``None``.

    Both are made absolute against the working folder first (``os.path.abspath``: symlinks are
    not resolved, so a path given through a linked folder stays inside it). ``folder`` itself is
    not inside itself (``None``)."""
    f, d = Path(os.path.abspath(path)), Path(os.path.abspath(folder))
    return f.relative_to(d).as_posix() if f.is_relative_to(d) and f != d else None


def found_under(path: str | Path, folder: Path, min_parts: int = 1) -> Path | None:
    """``folder / tail`` for the longest tail of ``path`` (its last parts, at least
    ``min_parts`` of them; an absolute path's root left out) that exists under ``folder``; else
    ``None``. ``run2/autolabels/labels/1.png`` with ``folder`` = ``run3`` ->
    ``run3/autolabels/labels/1.png`` when that file exists."""
    p = Path(path)
    parts = p.parts[1:] if p.is_absolute() else p.parts
    for k in range(len(parts) - min_parts + 1):
        tail = Path(*parts[k:])
        if (folder / tail).exists():
            return folder / tail
    return None
