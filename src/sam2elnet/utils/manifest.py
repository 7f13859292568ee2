"""A JSON-lines manifest of finished and failed batch items, so killed jobs can ``--resume``.

Why JSON lines with append + fsync: each finished item costs one small write that is on disk
before the next item starts, and a kill can at worst leave a *truncated last line*, which
:meth:`Manifest.load` skips (with a warning) instead of refusing the whole file. Later records
for the same item override earlier ones, so retrying a failed item needs no rewrite.

Record format, one JSON object per line::

    {"item": "scene_a.tif", "status": "done", "outputs": ["out/scene_a.tif"], "time": 1712345678.1}
    {"item": "broken.tif", "status": "failed", "reason": "cannot open scene ...", "time": ...}
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sam2elnet.utils.atomic import json_text
from sam2elnet.utils.run_paths import found_under, relative_inside

log = logging.getLogger(__name__)

__all__ = ["Manifest"]

DONE = "done"
FAILED = "failed"


@dataclass
class Manifest:
    """Append-only record of item outcomes; ``records`` maps item -> its latest record."""

    path: Path
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    bad_lines: int = 0

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        """Read an existing manifest (or start an empty one when the file does not exist).

        Unparseable lines (a truncated last line after a kill) are skipped and counted.
        """
        p = Path(path)
        m = cls(path=p)
        if not p.exists():
            return m
        with open(p, encoding="utf-8", errors="replace") as fh:
            for lineno, line in enumerate(fh, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                    item = rec["item"]
                    rec["status"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    m.bad_lines += 1
                    log.warning("%s: line %d is incomplete (killed job?); ignored", p, lineno)
                    continue
                m.records[str(item)] = rec
        return m

    def _append(self, rec: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json_text(rec, indent=None, sort_keys=True) + "\n"
        # a previous kill may have left a partial line without newline: start on a fresh line
        prefix = ""
        if self.path.exists() and self.path.stat().st_size > 0:
            with open(self.path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    prefix = "\n"
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(prefix + line)
            fh.flush()
            os.fsync(fh.fileno())
        self.records[str(rec["item"])] = rec

    def mark_done(self, item: str, outputs: list[str | Path] | None = None, **extra: Any) -> None:
        """Record that ``item`` finished and its ``outputs`` are complete on disk."""
        rec = {
            "item": str(item),
            "status": DONE,
            "outputs": [self._relative(o) for o in outputs or []],
            "time": time.time(),
        }
        rec.update(extra)
        self._append(rec)

    def mark_failed(self, item: str, reason: str, **extra: Any) -> None:
        """Record that ``item`` failed and why (it is retried on the next ``--resume``)."""
        rec = {"item": str(item), "status": FAILED, "reason": str(reason), "time": time.time()}
        rec.update(extra)
        self._append(rec)

    def is_done(self, item: str, check_outputs: bool = True) -> bool:
        """True if the latest record of ``item`` is ``done`` (and, by default, its outputs exist)."""
        rec = self.records.get(str(item))
        if rec is None or rec.get("status") != DONE:
            return False
        if check_outputs:
            return all(self._resolved(o).exists() for o in rec.get("outputs", []))
        return True

    def _relative(self, output: str | Path) -> str:
        """``output`` relative to the manifest's folder where inside it (POSIX separators), so a
        moved or copied output folder, or a resume from another working folder, checks its own
        files; else as given."""
        inside = relative_inside(output, self.path.parent)
        return inside if inside is not None else str(output)

    def _resolved(self, output: str) -> Path:
        """A recorded output on disk: relative to the manifest's folder; a line written before
        outputs were stored so (as given then, e.g. ``out/scene_a.tif`` from the old working
        folder) is checked under the manifest's folder where the end of its path exists there,
        else as given."""
        p = Path(output)
        found = found_under(p, self.path.parent)
        return found if found is not None else p

    def failed(self) -> dict[str, str]:
        """Items whose latest record is a failure, with the reason."""
        return {
            k: r.get("reason", "") for k, r in self.records.items() if r.get("status") == FAILED
        }

    def done(self) -> list[str]:
        """Items whose latest record is ``done``."""
        return [k for k, r in self.records.items() if r.get("status") == DONE]
