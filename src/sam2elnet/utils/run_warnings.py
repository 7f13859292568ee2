"""Warnings shown once per run: the first of each kind is logged, the rest are counted.

A batch over many files meets the same problem in many of them: every image far from the model's
training range, every coarse label without georeference, every vector file with features outside
its image. One ``warning:`` line per file buries the rest of the output, so a job opens a
:class:`RunWarnings` scope and the code that finds such a problem calls :func:`warn_once`:

* the first warning of a *kind* (a short fixed description, e.g. ``"pixel values far from the
  model's training range"``) is logged as it is, naming the file and what to do;
* later warnings of that kind are counted, not logged;
* when the job ends, :meth:`RunWarnings.notes` gives one closing line per kind that occurred more
  than once (``the warning above (KIND) applied to 5 files in all``; a warning given an ``item``,
  the file it is about, also names the first few: ``(a.tif, b.tif, c.tif (+2))``) and
  :meth:`RunWarnings.record` the counts for ``summary.json``.

A warning about one thing that several steps of a run meet (the ground control points of a scene,
checked when the scene is opened, when a label is placed on it and when its outputs are warped)
passes a ``key`` naming that thing: repeats of a kind *and* key are dropped, not counted, so the
closing count is one per thing.

Outside any scope :func:`warn_once` logs every warning (a library call on one file), except that a
keyed warning is logged once per process (Python's ``warnings`` "once" action, remembered for the
last :data:`_MAX_KEYS` keys). Scopes nest,
and belong to the thread (more exactly the :mod:`contextvars` context) that opened them: two
``elnet serve`` requests answered at once in two threads each have their own scope, so neither
hides nor counts the other's warnings. A new thread starts outside any scope (Python 3.11 threads
do not inherit the context); work handed to another thread that should warn into the caller's
scope runs in a copy of the caller's context (``contextvars.copy_context().run(fn)``).
A ``collect`` scope logs nothing and keeps the warnings in :attr:`RunWarnings.pending`: the
per-chunk work of a folder job collects them, in this process or on a Ray worker, and the job
replays them into its own scope (:meth:`RunWarnings.replay`), so the lines are the same whichever
backend ran the chunk.

A caller that has said a thing already, or shows it otherwise (a training that has just
warned that its quality evaluator is not fitted, then annotates with it), opens :func:`hidden`
for that kind: warnings of it are dropped in its context, neither logged nor counted.

Used by ``elnet annotate``, ``enhance``, ``scene`` (folders) and ``serve`` (per request).
Every warning is a log record of the logger given (``sam2elnet.*``): library users receive them
through :mod:`logging`, and the command line prints each as one ``warning:`` line above any
progress bar (its handler, :func:`sam2elnet.utils.progress.write`).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sam2elnet.utils.advice import plural

__all__ = ["RunWarnings", "hidden", "quiet", "repeated_notes", "warn_once"]

# the open scopes of this context, innermost last (a tuple: set, never mutated, so a copied
# context keeps its own view)
_SCOPES: contextvars.ContextVar[tuple[RunWarnings, ...]] = contextvars.ContextVar(
    "sam2elnet_run_warnings", default=()
)
_HIDDEN: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "sam2elnet_hidden_warnings", default=frozenset()
)
_EVERY_KIND = "*"  # in _HIDDEN: every kind hidden (quiet())
_LOCK = threading.Lock()  # a scope's counts, when threads share it through a copied context
_MAX_KEYS = 1024
_UNSCOPED_KEYS: dict[tuple[str, str], None] = {}  # keyed warnings logged outside any scope


SAMPLE = 3
"""How many ``item`` names a kind's closing note gives (:func:`repeated_notes`)."""


@dataclass
class _Seen:
    first: str  # the text logged (the first occurrence)
    count: int  # occurrences in the run, the first included
    sample: list[str]  # the items of the first SAMPLE occurrences given one


class RunWarnings:
    """One run's warnings by kind (see the module docstring); a context manager.

    Args:
        what: The noun of the closing notes (``"file"``, ``"image"``, ``"scene"``).
        collect: Log nothing; keep ``(logger name, kind, text, key, item)`` in :attr:`pending`
            for :meth:`replay` by the scope that owns the run.
    """

    def __init__(self, what: str = "file", collect: bool = False) -> None:
        self.what = what
        self.collect = collect
        self.pending: list[tuple[str, str, str, str | None, str | None]] = []
        self._seen: dict[str, _Seen] = {}
        self._keys: set[tuple[str, str]] = set()

    def __enter__(self) -> RunWarnings:
        _SCOPES.set((*_SCOPES.get(), self))
        return self

    def __exit__(self, *exc: object) -> None:
        scopes = _SCOPES.get()
        if self in scopes:  # by identity, so scopes closed out of order still leave
            _SCOPES.set(tuple(s for s in scopes if s is not self))

    def warn(
        self,
        logger: logging.Logger,
        kind: str,
        text: str,
        key: str | None = None,
        item: str | None = None,
    ) -> bool:
        """Log ``text`` if it is the first warning of ``kind`` in this run, else count it (and
        keep ``item``, the name of what it is about, among the first :data:`SAMPLE`); a
        repeat of ``kind`` with a ``key`` seen before in this scope is dropped (not counted).
        Returns True when the text was logged (or, collecting, kept)."""
        with _LOCK:
            if key is not None:
                if (kind, key) in self._keys:
                    return False
                self._keys.add((kind, key))
        if self.collect:
            self.pending.append((logger.name, kind, text, key, item))
            return True
        with _LOCK:
            seen = self._seen.get(kind)
            if seen is None:
                seen = self._seen[kind] = _Seen(text, 0, [])
            seen.count += 1
            if item is not None and len(seen.sample) < SAMPLE:
                seen.sample.append(item)
            if seen.count > 1:
                return False
        logger.warning(text)
        return True

    def replay(self, pending: Iterable[tuple[str | None, ...]]) -> None:
        """Warnings a ``collect`` scope kept (in this process or another), in their order, with
        their keys and items: a keyed warning that several chunks met (one vector file serving
        every chunk's images) is one warning and one count here too. 3-tuples (no key) and
        4-tuples (no item) are taken."""
        for name, kind, text, *rest in pending:
            key, item = (*rest, None, None)[:2]
            self.warn(logging.getLogger(str(name)), str(kind), str(text), key, item)

    def counts(self) -> dict[str, int]:
        """Occurrences per kind (the logged one included)."""
        return {k: s.count for k, s in self._seen.items()}

    def notes(self) -> list[str]:
        """The closing lines of :func:`repeated_notes` for this run."""
        return repeated_notes(self.record(), self.what)

    def record(self) -> list[dict[str, object]]:
        """The run's warnings for ``summary.json``: ``{"warning": kind, "count": n, "first":
        text}`` per kind, in the order they first occurred, with ``"sample"``: the items of the
        first :data:`SAMPLE` occurrences, for a kind warned with ``item``."""
        return [
            {"warning": k, "count": s.count, "first": s.first}
            | ({"sample": list(s.sample)} if s.sample else {})
            for k, s in self._seen.items()
        ]


def repeated_notes(record: Iterable[dict[str, object]], what: str = "file") -> list[str]:
    """One closing line per kind of a :meth:`RunWarnings.record` (e.g. ``summary.json``'s
    ``warnings``) that occurred more than once, e.g. ``the warning above (pixel values unlike
    the model's training data) applied to 5 images in all; only the first was shown``; a kind
    with a ``sample`` names it, the rest counted: ``applied to 5 images in all (a.tif, b.tif,
    c.tif (+2)); only the first was shown``."""
    notes = []
    for r in record:
        if not isinstance(r, dict) or int(r.get("count", 0) or 0) < 2:  # type: ignore[call-overload]
            continue
        n = int(r["count"])  # type: ignore[call-overload]
        sample = [str(x) for x in r.get("sample") or ()]  # type: ignore[union-attr]
        more = f" (+{n - len(sample)})" if n > len(sample) else ""
        names = f" ({', '.join(sample)}{more})" if sample else ""
        notes.append(
            f"the warning above ({r['warning']}) applied to {plural(n, what)} in all{names}; "
            "only the first was shown"
        )
    return notes


def warn_once(
    logger: logging.Logger,
    kind: str,
    text: str,
    key: str | None = None,
    item: str | None = None,
) -> bool:
    """Log ``text`` through ``logger`` once per run and ``kind`` (see the module docstring):
    into the innermost :class:`RunWarnings` open in this thread's context, or every time when
    none is open.

    Args:
        logger: The logger of the module that found the problem.
        kind: A fixed short description of the problem (no file name, no numbers), e.g.
            ``"the label has no georeference"``; the key warnings are counted by.
        text: The full warning: the file and what to do.
        key: What the warning is about when several steps of a run meet the same thing (e.g. a
            digest of a raster's GCPs): a repeat of ``kind`` and ``key`` is dropped, in a scope
            (not counted) and outside any (logged once per process).
        item: The short name of what this occurrence is about (an image's file name): the
            run's closing note of the kind names the first :data:`SAMPLE` of them
            (:func:`repeated_notes`).

    Returns:
        True when the text was logged (or kept by a collecting scope); False when it was
        counted, dropped as a repeat or :func:`hidden`.
    """
    hidden_kinds = _HIDDEN.get()
    if kind in hidden_kinds or _EVERY_KIND in hidden_kinds:
        return False
    scopes = _SCOPES.get()
    scope = scopes[-1] if scopes else None
    if scope is None:
        if key is not None:
            with _LOCK:
                if (kind, key) in _UNSCOPED_KEYS:
                    return False
                _UNSCOPED_KEYS[(kind, key)] = None
                while len(_UNSCOPED_KEYS) > _MAX_KEYS:
                    del _UNSCOPED_KEYS[next(iter(_UNSCOPED_KEYS))]
        logger.warning(text)
        return True
    return scope.warn(logger, kind, text, key, item)


def quiet() -> contextlib.AbstractContextManager[None]:
    """:func:`hidden` for every kind: for a look at a file before the job proper (is this folder
    images or masks?) whose reader would otherwise warn about the file once here and again when
    the job reads it in its scope."""
    return hidden(_EVERY_KIND)


@contextlib.contextmanager
def hidden(*kinds: str) -> Iterator[None]:
    """Drop the :func:`warn_once` warnings of ``kinds`` while the context is open, in this
    thread's context only (:mod:`contextvars`): not logged, not counted, their keys not kept.
    For a caller that has said the thing already or shows it otherwise."""
    token = _HIDDEN.set(_HIDDEN.get() | frozenset(kinds))
    try:
        yield
    finally:
        _HIDDEN.reset(token)
