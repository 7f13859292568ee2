"""Progress for terminals and for logs: a tqdm bar, or plain lines when the bar is off.

Batch jobs and CI logs run with ``--no-progress``; they still need to see that a long command is
alive and how it is doing. :func:`progress_bar` returns a tqdm bar when ``enabled``, else a
:class:`ProgressLines` with the same ``update`` / ``set_postfix`` / ``close`` methods that writes
one line to the ``sam2elnet.progress`` logger at most every ``every_s`` seconds and one at the end
(``annotate: 1000/1000 img in 812.3 s (1.23 img/s), kept 940``). The CLI prints that logger's
messages as they are on stdout; library users see them when they enable INFO logging.

A line printed while a bar is drawn would land on the bar's line, after its text, and the next
redraw would overwrite it. :func:`write` is the one way the CLI prints a line (its warnings, log
and progress lines, stage lines): through ``tqdm.write``, which clears the bars, prints the line
and draws the bars again below it; with no bar it is a plain ``print``.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator, Sized
from typing import Any, TextIO

from sam2elnet.utils.advice import counted_noun

LOGGER_NAME = "sam2elnet.progress"
#: seconds between the lines of a long stage with the bar off (:class:`ProgressLines`)
EVERY_S = 30.0
log = logging.getLogger(LOGGER_NAME)
#: set while the CLI runs (:func:`bars_on_terminals_only`): a bar is drawn only when stderr is a
#: terminal; into a log file, a pipe or a batch scheduler's output the plain lines go instead
_TERMINAL_ONLY = False


@contextlib.contextmanager
def bars_on_terminals_only() -> Iterator[None]:
    """While open, :func:`bar_wanted` draws a bar only when ``sys.stderr`` is a terminal (the
    CLI: ``elnet annotate ... > run.log 2>&1`` logs the ``--no-progress`` lines instead of a bar
    redrawn with ``\\r`` into the file). Library callers (notebooks, whose stderr is no
    terminal) keep their bars."""
    global _TERMINAL_ONLY
    was, _TERMINAL_ONLY = _TERMINAL_ONLY, True
    try:
        yield
    finally:
        _TERMINAL_ONLY = was


def bar_wanted(enabled: bool, file: Any = None) -> bool:
    """Whether a progress bar is drawn: ``enabled`` and, inside
    :func:`bars_on_terminals_only`, its stream (``file``, default ``sys.stderr``) a terminal."""
    if not enabled or not _TERMINAL_ONLY:
        return bool(enabled)
    stream = sys.stderr if file is None else file
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())


def write(text: str, file: TextIO | None = None, flush: bool = False) -> None:
    """Print ``text`` and a newline on ``file`` (default: the current ``sys.stderr``), above the
    progress bars being drawn (see the module docstring).

    Bars on stdout and stderr are both cleared when ``file`` is either of them (they share the
    terminal); ``tqdm.write`` holds tqdm's lock, so lines from worker threads do not cut into a
    redraw. Without tqdm imported no bar can exist, and the line is printed as it is.
    """
    out = sys.stderr if file is None else file
    bars = sys.modules.get("tqdm")
    if bars is None:
        print(text, file=out, flush=flush)
        return
    bars.tqdm.write(text, file=out)
    if flush:
        out.flush()


def line(msg: str, level: int = logging.INFO) -> None:
    """One progress line (e.g. a stage finished) to the ``sam2elnet.progress`` logger, at
    ``level`` (INFO: the CLI prints it; DEBUG: detail a summary line already counts)."""
    log.log(level, msg)


ABBREVIATED_UNITS = frozenset({"it", "img", "px", "B", "win"})
"""Units written as abbreviations, the same for one and many (``76/76 img``)."""


def unit_noun(unit: str, count: int) -> str:
    """``unit`` as the noun after a count of ``count``: plural unless the count is one or the unit
    is an abbreviation (:data:`ABBREVIATED_UNITS`): ``76/76 pairs``, ``1/1 pair``, ``8/8 img``,
    ``3/3 batches``. The rate keeps the unit as it is (``pair/s``)."""
    if unit in ABBREVIATED_UNITS:
        return unit
    return counted_noun(count, unit, unit + "es" if unit.endswith(("ch", "sh", "s", "x")) else None)


class ProgressLines:
    """A tqdm stand-in that logs lines instead of drawing a bar (see module docstring).

    ``final_level``: the logging level of the closing line (DEBUG for a bar of one item of a
    stage whose caller logs one summary line for all of them, e.g. the window bar of each image
    a folder job predicts window by window); the lines while it runs stay at INFO.
    """

    def __init__(
        self,
        total: int | None,
        desc: str,
        unit: str = "it",
        every_s: float = EVERY_S,
        final_level: int = logging.INFO,
    ):
        self.total, self.desc, self.unit, self.every_s = total, desc, unit, float(every_s)
        self.final_level = final_level
        self.n = 0
        self.t0 = self._last = time.perf_counter()
        self.postfix: dict[str, Any] = {}
        self._closed = False

    def _text(self, final: bool) -> str:
        dt = time.perf_counter() - self.t0
        of = f"/{self.total}" if self.total is not None else ""
        rate = f"{self.n / dt:.2f} {self.unit}/s" if dt > 0 else "-"
        when = f"in {dt:.1f} s" if final else f"after {dt:.0f} s"
        extra = ", ".join(f"{k} {v}" for k, v in self.postfix.items())
        noun = unit_noun(self.unit, self.total if self.total is not None else self.n)
        return f"{self.desc}: {self.n}{of} {noun} {when} ({rate})" + (f", {extra}" if extra else "")

    def update(self, n: int = 1) -> None:
        self.n += int(n)
        now = time.perf_counter()
        if now - self._last >= self.every_s and (self.total is None or self.n < self.total):
            self._last = now
            line(self._text(final=False))

    def set_postfix(self, refresh: bool = False, **numbers: Any) -> None:
        self.postfix.update(numbers)

    def set_description(self, desc: str, refresh: bool = False) -> None:
        self.desc = desc

    def close(self) -> None:
        if not self._closed and (self.total is None or self.total > 0):
            line(self._text(final=True), self.final_level)
        self._closed = True

    def discard(self) -> None:
        """End without the final line (see :func:`abandon`)."""
        self._closed = True


@contextlib.contextmanager
def silenced() -> Iterator[None]:
    """Drop the plain progress lines (:class:`ProgressLines`) logged while the context is open:
    for a second, internal pass over files whose stage the user has already seen (``elnet
    stats`` working out what ``elnet train`` will use from the same images). Bars are not
    affected (pass ``enabled=False`` and they become lines, which this drops)."""
    was = log.disabled
    log.disabled = True
    try:
        yield
    finally:
        log.disabled = was


def abandon(bar: Any) -> None:
    """End a :func:`progress_bar` that an error stopped, leaving nothing behind: no final line
    (:class:`ProgressLines`), the bar cleared (tqdm), so the user sees only the ``error:`` line."""
    if isinstance(bar, ProgressLines):
        bar.discard()
    else:
        bar.leave = False
        bar.close()


def progress_bar(
    total: int | None, desc: str, unit: str = "it", enabled: bool = True, **kw: Any
) -> Any:
    """A tqdm bar when ``enabled`` (and :func:`bar_wanted`: on a terminal while the CLI runs),
    else :class:`ProgressLines` (``every_s`` and ``final_level`` from ``kw``)."""
    if bar_wanted(enabled, kw.get("file")):
        from tqdm import tqdm

        kw.pop("every_s", None)
        kw.pop("final_level", None)
        return tqdm(total=total, desc=desc, unit=unit, **kw)
    return ProgressLines(
        total,
        desc,
        unit,
        every_s=kw.get("every_s", EVERY_S),
        final_level=kw.get("final_level", logging.INFO),
    )


class Added:
    """The items a collection gets from now on: a sized view for :func:`track`'s ``skipped``
    when the collection (a :class:`~sam2elnet.utils.batch.SkipLog`) already holds items of an
    earlier stage (``elnet stats --check``: the pairs ``check pairs`` skipped), which the
    stage's line would otherwise count and say again."""

    def __init__(self, collection: Sized) -> None:
        self.collection, self.base = collection, len(collection)

    def __len__(self) -> int:
        return len(self.collection) - self.base


def track(
    iterable: Any,
    desc: str,
    unit: str = "it",
    enabled: bool = True,
    total: int | None = None,
    skipped: int | Sized = 0,
) -> Any:
    """Iterate with :func:`progress_bar` (a bar, or lines with ``--no-progress``).

    ``skipped``: the batch's skipped items, counted in the bar and, when any, said last as the
    other batches say it (``polygonise: 3/3 labels in 0.1 s (30.00 label/s), skipped 1``). An
    int: items skipped before the loop (an export's unreadable labels), added to the total as
    done. A sized collection (a list, a :class:`~sam2elnet.utils.batch.SkipLog`) that the loop
    appends its skipped items to: the items it holds on entry are added to the total as done,
    and its length is read again after each item (``import: 3/3 tasks in ..., skipped 1``; the
    items skipped inside the loop are among the ``iterable``'s, already in the total).
    """
    items = list(iterable) if total is None and not hasattr(iterable, "__len__") else iterable
    n = total if total is not None else len(items)
    live = None if isinstance(skipped, int) else skipped
    before = skipped if live is None else len(live)
    bar = progress_bar(n + before, desc, unit, enabled, leave=False)
    said = before
    if before:
        bar.set_postfix(skipped=before, refresh=False)
        bar.update(before)
    try:
        for item in items:
            yield item
            if live is not None and len(live) != said:
                said = len(live)
                bar.set_postfix(skipped=said, refresh=False)
            bar.update(1)
    finally:
        bar.close()
