"""The protocol's stage runner: cached, resumable stages with done-markers and ETA lines.

Every stage writes its outputs under ``OUT`` and a done-marker ``OUT/stages/<stage>.json``; a
stage with a marker is skipped on re-run (same settings required). Part of
:mod:`sam2elnet.pipeline.experiment`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.utils.atomic import write_json_atomic
from sam2elnet.utils.run_paths import found_under, relative_inside

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------- small helpers
def sha(obj: Any) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def file_stat(path: Path) -> tuple[int, int]:
    """(size, mtime in ns) of a file: part of cache keys, so rewritten files invalidate them."""
    st = Path(path).stat()
    return st.st_size, st.st_mtime_ns


def json_safe(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [json_safe(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, Path):
        return str(v)
    return v


PATHS_RELATIVE = "relative to OUT"
"""A marker's ``paths``: the files inside ``OUT`` it names are stored relative to ``OUT``
(:func:`out_relative`), so a moved or copied run folder reads its own files."""


def out_relative(v: Any, out: Path, joined: bool = False) -> Any:
    """``v`` (a JSON-safe summary) with every string naming a file inside ``out`` (absolute, or
    relative to the working folder) written relative to ``out`` (POSIX separators).

    ``joined``: written as ``out / path`` instead, the form :func:`out_resolved` reads the
    stored summary back as, worked out without looking at the disk (what a stage that ran
    returns).

    A relative string lies inside ``out`` by its text when ``out`` is below the working folder
    (``runs/exp/labels/1.png``). When ``out`` is the working folder or a folder above it, every
    relative string would (a note ``1/3 of the images``, ``km/h``, ``EPSG:4326 / UTM zone
    33N``), so one is a path only when it names an existing file or folder (as
    :func:`out_resolved` reads them back); the others are kept as they are. A URL is no path."""
    cwd = os.path.abspath(".")
    wide = os.path.abspath(out) == cwd or relative_inside(cwd, out) is not None
    return _out_relative(v, Path(out), joined, wide)


def _out_relative(v: Any, out: Path, joined: bool, wide: bool) -> Any:
    """:func:`out_relative` of one value; ``wide``: ``out`` holds the working folder."""
    if isinstance(v, dict):
        return {k: _out_relative(x, out, joined, wide) for k, x in v.items()}
    if isinstance(v, list):
        return [_out_relative(x, out, joined, wide) for x in v]
    if isinstance(v, str) and ("/" in v or os.sep in v) and "://" not in v:
        inside = relative_inside(v, out)
        if inside is not None and (not wide or os.path.isabs(v) or os.path.exists(v)):
            return str(out / inside) if joined else inside
    return v


def out_resolved(v: Any, out: Path, relative: bool) -> Any:
    """``v`` (a stored summary) with its paths resolved against the current ``out``.

    ``relative`` True (markers written since paths are stored relative, :data:`PATHS_RELATIVE`):
    a relative path string naming a file or folder under ``out`` is ``out / path``; any other
    string (a ``--data`` path relative to the working folder, a note with a ``/``) is kept. False (older markers: paths as the run was
    given them, absolute or relative to its working folder): a path whose end names a file that
    exists under ``out`` (``run2/autolabels/labels/1.png`` -> ``OUT/autolabels/labels/1.png``,
    at least two parts) is mapped there, even where the old folder still exists (a copied folder
    reads its own files); any other path is read as before."""
    if isinstance(v, dict):
        return {k: out_resolved(x, out, relative) for k, x in v.items()}
    if isinstance(v, list):
        return [out_resolved(x, out, relative) for x in v]
    if not isinstance(v, str) or "/" not in v or "://" in v:
        return v
    p = Path(v)
    if relative:  # only what out_relative wrote: a file under out (a --data path given relative
        # to the working folder, '../data/x.jpg', or a note such as 'kept 10/21' stays as it is)
        return str(out / p) if not p.is_absolute() and (out / p).exists() else v
    found = found_under(p, out, min_parts=2)
    return str(found) if found is not None else v


def stage_summary(out: Path, name: str) -> Any:
    """The summary of stage ``name`` recorded in ``out/stages``, its paths resolved against
    ``out`` (:func:`out_resolved`).

    Raises:
        OSError / ValueError / KeyError / TypeError: no readable marker."""
    rec = json.loads((Path(out) / "stages" / f"{name}.json").read_text("utf-8"))
    return out_resolved(rec["summary"], Path(out), rec.get("paths") == PATHS_RELATIVE)


def clock(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss``) for progress lines."""
    sec = int(round(max(0.0, seconds)))
    h, rem = divmod(sec, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60}:{rem % 60:02d}"


SPEED_MIN_REFERENCE_S = 5.0
"""Reference seconds of timed stages below which the ETA takes the reference times as they are."""


UNREAD: Any = object()
"""``Stages.run(finished=...)`` not given: the stage's marker is read by :meth:`Stages.run`."""


class Stages:
    """Done-markers under ``OUT/stages``: a finished stage is skipped on re-run.

    ``resume=False`` clears the folders of an *unfinished* stage before running it again (a killed
    stage may have left partial outputs); ``resume=True`` lets the stage continue from them.
    """

    def __init__(self, out: Path, resume: bool, progress: bool = False) -> None:
        self.out = Path(out)
        self.dir = self.out / "stages"
        self.resume = resume
        self.status: dict[str, str] = {}
        self.seconds: dict[str, float] = {}
        # stage -> what happened, for stages whose every label was unusable whatever the filter
        # (their summary's ``unusable``: experiment_engine.unusable_record), ran or cached
        self.unusable: dict[str, str] = {}
        self.progress = progress
        self.plan: dict[str, int] = {}
        self.reference: dict[str, float] = {}
        self.side_by_side: dict[str, Callable[[int], float]] = {}
        """Stages of a kind that run side by side: kind -> how many one-stage times ``n`` of
        them take (absent: ``n``, one after another); the ETA counts the stages still to come
        of that kind with it (the downstream trainings:
        :func:`~sam2elnet.engine.downstream_pool.makespan`)."""
        self._t0 = time.perf_counter()
        self._ran: dict[str, list[float]] = {}

    def expect(self, plan: dict[str, int], reference: dict[str, float] | None = None) -> None:
        """Stages still to come per kind (the name up to the first ``_``), for the ETA lines.

        ``reference``: seconds one stage of each kind takes on a reference machine (kept when
        None is given later); the ETA then counts the kinds not timed yet at those times,
        scaled by how fast this run's timed stages were against theirs."""
        self.plan = dict(plan)
        if reference is not None:
            self.reference = dict(reference)

    def drop(self, kind: str, n: int = 1) -> None:
        """``n`` planned stages of ``kind`` will not run (a setting left out for want of
        inputs): the ETA stops counting them as work still to do."""
        if kind in self.plan:
            self.plan[kind] = max(0, self.plan[kind] - n)

    @staticmethod
    def _kind(name: str) -> str:
        return name.split("_", 1)[0]

    def _eta(self) -> str:
        """ETA from the mean time of the stages of each kind still planned that did their work
        in this run.

        Stages done before (``cached``) and stages that took their result from a store of
        earlier results (``reused``) count as done but are no timing sample: they finish at
        once, and the work still to do would look cheap (a resumed run's ETA fell short). A kind
        not timed yet counts at its :attr:`reference` time x this run's speed against the
        reference (``ETA ~m:ss``, an estimate, said so); without a reference time it has no
        estimate: the ETA is then a lower bound and says which kind is missing (honest rather
        than guessed)."""
        left, unknown, guessed = 0.0, [], []
        speed = self._speed()
        for kind, n in self.plan.items():
            done = sum(1 for k in self.status if self._kind(k) == kind)
            rest = max(0, n - done)
            if not rest:
                continue
            rounds = self.side_by_side.get(kind, float)(rest)
            if self._ran.get(kind):
                left += rounds * sum(self._ran[kind]) / len(self._ran[kind])
            elif kind in self.reference:
                left += rounds * self.reference[kind] * speed
                guessed.append(kind)
            else:
                unknown.append(kind)
        eta = clock(left)
        if unknown:
            return f"ETA >= {eta} (no {', '.join(unknown)} stage timed yet)"
        if guessed:
            what = ", ".join(guessed) if len(guessed) <= 2 else f"{len(guessed)} kinds of stage"
            return (
                f"ETA ~{eta} (estimate: {what} not timed yet, at the reference times x {speed:.2g})"
            )
        return f"ETA {eta}"

    def _speed(self) -> float:
        """This run's time over the :attr:`reference` time of the stages it ran that have one:
        > 1 is slower than the reference machine; 1.0 until those stages add up to
        :data:`SPEED_MIN_REFERENCE_S` (a 1 s stage measures start-up more than speed)."""
        ran = [k for k in self._ran if self.reference.get(k, 0) > 0]
        ref = sum(self.reference[k] * len(self._ran[k]) for k in ran)
        return sum(sum(self._ran[k]) for k in ran) / ref if ref >= SPEED_MIN_REFERENCE_S else 1.0

    def say(self, text: str) -> None:
        """One line among the stage lines (elapsed time first; stderr above the progress bars,
        else the ``sam2elnet.progress`` logger)."""
        self._say(text)

    def update(self, name: str, summary: dict[str, Any], status: str) -> None:
        """Replace the summary of stage ``name``'s marker (its key and timing kept) with
        ``summary``, worked out again from the stage's stored outputs without running it (e.g.
        the auto-labels filtered with other options); ``status`` is its status in this run.

        Raises:
            OSError / ValueError: the marker cannot be read (the stage has not run).
        """
        m = self.marker(name)
        rec = json.loads(m.read_text(encoding="utf-8"))
        rec["summary"] = out_relative(json_safe(summary), self.out)
        rec["paths"] = PATHS_RELATIVE
        write_json_atomic(m, rec)
        self.status[name] = status

    def _say(self, text: str) -> None:
        msg = f"[{clock(time.perf_counter() - self._t0)}] {text}"
        from sam2elnet.utils.progress import line, write

        if self.progress:
            write(msg, sys.stderr)  # above the bars
        else:  # --no-progress: the same stage lines, for logs (sam2elnet.progress logger)
            line(msg)

    def marker(self, name: str) -> Path:
        return self.dir / f"{name}.json"

    def done(self, name: str, key: str | None = None) -> bool:
        """Whether :meth:`run` would skip stage ``name`` with this ``key`` (its marker says it
        finished with the same inputs)."""
        return self.finished(name, key) is not None

    def finished(self, name: str, key: str | None, say: bool = False) -> dict[str, Any] | None:
        """The marker record of stage ``name`` when it finished with the inputs ``key`` (a
        marker without a key predates keys: any ``key``); None when there is no marker, it has
        other inputs, or it cannot be read (not JSON, not a record with a summary): the stage
        runs again. ``say``: log why a marker that exists is not taken. A caller that needs the
        answer before :meth:`run` passes the record on to it (``finished=``): read once."""
        m = self.marker(name)
        if not m.is_file():
            return None
        try:
            rec = json.loads(m.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            rec = None
        if not isinstance(rec, dict) or "summary" not in rec:
            if say:
                log.warning("stage marker %s is unreadable; running the stage again", m)
            return None
        if rec.get("key", key) != key:
            if say:
                log.info("stage %s: inputs changed since it ran; running it again", name)
            return None
        return rec

    def run(
        self,
        name: str,
        fn: Callable[[], dict[str, Any]],
        clear: Sequence[Path] = (),
        key: str | None = None,
        reuse: Callable[[], dict[str, Any] | None] | None = None,
        took: Callable[[], float] | None = None,
        finished: dict[str, Any] | None | object = UNREAD,
    ) -> dict:
        """Run ``fn`` unless ``name`` is done (with the same input ``key``); return its summary.

        ``key`` fingerprints the stage's inputs (e.g. the label files a downstream model trains on):
        when an earlier stage was re-run and produced other inputs, the marker no longer matches.
        ``reuse`` returns a stored result of the same inputs (a downstream model trained under
        another setting name), or None: a reused stage is done (status ``reused``, marker
        written) without running ``fn`` and is no timing sample for the ETA. ``took`` (called
        after ``fn``) gives the seconds the stage's work took where ``fn`` only waits for it (a
        training in a worker process, side by side with others: :attr:`side_by_side`); its timing
        sample and its line (``done, 12 s of CPU time``), instead of the wait. ``finished``: what
        :meth:`finished` gave for ``name`` and ``key`` (``say=True``) where the caller has read
        the marker already (None: not finished); it is not read again.
        """
        rec = self.finished(name, key, say=True) if finished is UNREAD else finished
        if rec is not None:
            self.status[name] = "cached"
            self.seconds[name] = float(rec.get("seconds", 0.0))
            log.info("stage %s: done before, skipped", name)
            self._say(f"stage {name}: done before, skipped")
            relative = rec.get("paths") == PATHS_RELATIVE
            return self._noted(name, out_resolved(rec["summary"], self.out, relative))
        if not self.resume:
            for d in clear:
                if d.is_dir():
                    shutil.rmtree(d)
                elif d.exists():
                    d.unlink()
        t0 = time.perf_counter()
        stored = reuse() if reuse is not None else None
        if stored is not None:
            summary = json_safe(stored)
            dt = time.perf_counter() - t0
            self.status[name] = "reused"
            self._say(
                f"stage {name}: the same inputs were done before, result reused; {self._eta()}"
            )
        else:
            self._say(f"stage {name} ...")
            t0 = time.perf_counter()
            summary = json_safe(fn())
            dt = time.perf_counter() - t0 if took is None else float(took())
            self._ran.setdefault(self._kind(name), []).append(dt)
            self.status[name] = "ran"
            # a training side by side with others: its own CPU time, not the wait (a user
            # read "done in 22 s" as wall time on a loaded machine where it took 77 s)
            spent = f"done in {dt:.0f} s" if took is None else f"done, {dt:.0f} s of CPU time"
            self._say(f"stage {name}: {spent}; {self._eta()}")
        stored = out_relative(summary, self.out)
        write_json_atomic(
            self.marker(name),
            {"stage": name, "key": key, "seconds": dt, "finished": time.time(), "summary": stored}
            | {"paths": PATHS_RELATIVE},
        )
        self.seconds[name] = dt
        # the paths as a resumed run reads them back (out / path), without a stat per path
        return self._noted(name, out_relative(summary, self.out, joined=True))

    def _noted(self, name: str, summary: dict[str, Any]) -> dict[str, Any]:
        """``summary``, its ``unusable`` (if any) noted in :attr:`unusable` under ``name``."""
        if isinstance(summary, dict) and summary.get("unusable"):
            self.unusable[name] = str(summary["unusable"])
        return summary
