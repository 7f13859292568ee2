"""The window side of a sliding-window run: ``--tile`` as given, or, not given, chosen to fit
``--max-memory``.

:func:`resolve_tile` is the one rule, for ``elnet scene`` and for the images ``annotate`` /
``enhance`` predict window by window: ``--tile`` given is used as it is (the callers warn or refuse
when its one window does not fit); not given, the window is the largest of
:data:`~sam2elnet.options.AUTO_TILE_SIDES` (1024, 992, ..., 256 px) larger than ``--overlap``
whose one window fits the predictor's budget under the memory model
(:meth:`~sam2elnet.engine.predictor.Predictor.fits_whole`), so a run at default settings never
asks for a smaller ``--tile``. :class:`WindowSize` carries the choice, the line that says it
(:meth:`WindowSize.note`) and what the run records (:meth:`WindowSize.record`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sam2elnet.engine import memory
from sam2elnet.engine.predictor import Predictor
from sam2elnet.option_checks import api_option
from sam2elnet.options import AUTO_TILE_MAX, AUTO_TILE_SIDES

__all__ = ["WindowSize", "resolve_tile"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WindowSize:
    """The window side a run uses.

    ``tile``: the side, px. ``auto``: chosen by :func:`resolve_tile` (``--tile`` not given).
    ``max_memory``: the budget it was chosen for, bytes (None: a predictor without one, e.g.
    ``builtin:smoothing``: 1024 px). ``fits``: one ``tile`` x ``tile`` window fits that budget
    (False only for an automatic side when none of them fits: the smallest is used).
    """

    tile: int
    auto: bool
    max_memory: int | None = None
    fits: bool = True

    @property
    def flag(self) -> str:
        """How messages name the window's origin: ``--tile 512`` (given) or ``--tile auto``."""
        return "--tile auto" if self.auto else f"--tile {self.tile}"

    def note(self) -> str | None:
        """The line that says an automatic choice, once per run, e.g. ``windows of 768 px
        (auto: the largest that fits --max-memory 1.50 GB; --tile overrides)``; None for a
        given ``--tile`` or a predictor without a budget."""
        if not self.auto or self.max_memory is None:
            return None
        budget = memory.format_bytes(self.max_memory)
        why = (
            f"the largest that fits {api_option('max_memory')} {budget}"
            if self.fits
            else f"the smallest automatic window; none fits {api_option('max_memory')} {budget}"
        )
        return f"windows of {self.tile} px (auto: {why}; --tile overrides)"

    def say(self, echo: Callable[[str], None] | None = None) -> None:
        """Say :meth:`note`, if any, to ``echo`` (the CLI passes ``typer.echo``; None: the log
        at INFO)."""
        if (note := self.note()) is not None:
            (echo or log.info)(note)

    def record(self) -> dict[str, Any]:
        """What the run records: ``{"tile": 768, "tile_auto": True}`` (px; ``tile_auto``
        False: ``--tile`` was given)."""
        return {"tile": self.tile, "tile_auto": self.auto}


def resolve_tile(
    tile: int | None, predictor: Any, *, overlap: int = 0, coarse: bool = False
) -> WindowSize:
    """The window side for ``tile`` (``--tile``; None: automatic).

    Args:
        tile: the side given, px, used as it is; None: the largest of
            :data:`~sam2elnet.options.AUTO_TILE_SIDES` above ``overlap`` whose one window of
            ``side`` x ``side`` px fits the predictor's ``max_memory``
            (:meth:`~sam2elnet.engine.predictor.Predictor.fits_whole`); none fitting, the
            smallest of them (the callers' window warning then says what helps).
        predictor: a :class:`~sam2elnet.engine.predictor.Predictor`, or a wrapper with one as
            ``.predictor`` (``QualityScoringPredictor``); any other (``builtin:smoothing``) has no
            budget and gets 1024 px.
        overlap: the window overlap, px (an automatic side is larger).
        coarse: the windows carry a coarse label (enhance: one more input channel).

    Returns:
        The :class:`WindowSize`; never larger than 1024 px when automatic.
    """
    net = getattr(predictor, "predictor", predictor)
    budget = net.max_memory if isinstance(net, Predictor) else None
    if tile is not None:
        return WindowSize(int(tile), False, budget)
    if not isinstance(net, Predictor):
        return WindowSize(AUTO_TILE_MAX, True)
    sides = [s for s in AUTO_TILE_SIDES if s > overlap] or [AUTO_TILE_MAX]
    for side in sides:
        if net.fits_whole(side * side, coarse=coarse):
            return WindowSize(side, True, budget)
    return WindowSize(sides[-1], True, budget, fits=False)
