"""Advice that fits a terminal: a short first line, wrapped detail, numbered steps with commands.

A warning that tells the user how to convert a file (the SAR steps of the input range check,
:mod:`sam2elnet.data.input_range`) used to be one line of about 900 characters. Such a text is
built here as lines of at most :data:`WIDTH` columns (the first line excepted: the caller puts
the file name before it): detail paragraphs indented by two spaces, steps numbered ``1.``,
``2.`` ..., each command on its own line(s) under its step's text, broken at spaces with a shell
continuation (``\\``) so it can still be copied and run. The command line prints each line as it
is (``warning: `` before the first); ``summary.json`` keeps the same text with its line breaks.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence

__all__ = [
    "CMD",
    "KEEP",
    "WIDTH",
    "command",
    "message",
    "name_sample",
    "none_of",
    "numbered",
    "paragraph",
    "plural",
]

WIDTH = 80
"""Columns of a terminal line no advice line (after the first) goes beyond."""

KEEP = "\u00a0"
"""Write this instead of a space where a line must not break (inside a formula such as
``sigma0 = DN^2/A_sigma^2``); it is printed as a plain space."""

CMD = "    "
"""The indent of a command under a paragraph (a step's command is aligned with its text): the
``indent`` every advice :func:`command` of the input checks is given."""


def name_sample(names: Sequence[str], k: int) -> str:
    """The first ``k`` of ``names`` joined by commas, then ``(+N)`` for the N left out: how
    notes and errors name files (an import's skipped masks, a layer's unknown image names)."""
    more = f" (+{len(names) - k})" if len(names) > k else ""
    return f"{', '.join(names[:k])}{more}"


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``count`` and ``noun``, plural unless the count is one: ``'1 polygon'``, ``'0 polygons'``,
    ``'2 polygons'``. ``many``: the plural when it is not ``noun + 's'``, also a noun with its
    verb (``plural(n, "feature has", "features have")``). How notes count what they name."""
    return f"{count} {counted_noun(count, noun, many)}"


def counted_noun(count: int, noun: str, many: str | None = None) -> str:
    """The noun :func:`plural` writes after ``count``, without the count (for ``3/3 pairs``)."""
    return noun if count == 1 else many or noun + "s"


def none_of(count: int, noun: str, does: str, does_not: str, many: str | None = None) -> str:
    """A clause saying that none of ``count`` things does something, right for one: ``'none of
    the 2 labels has a score'`` (``does``: ``'has a score'``), and for ``count`` 1 ``'the only
    label has no score'`` (``does_not``: ``'has no score'``), not ``'none of the 1 labels'``.
    ``noun``: one thing (counted by :func:`plural`; ``many``: its plural when not ``noun +
    's'``); ``does`` / ``does_not``: the rest of the clause, its verb singular (``none of`` takes
    one), without and with the negation."""
    if count == 1:
        return f"the only {noun} {does_not}"
    return f"none of the {plural(count, noun, many)} {does}"


def _plain(lines: Iterable[str]) -> list[str]:
    return [ln.replace(KEEP, " ").rstrip() for ln in lines]


def paragraph(text: str, indent: str = "  ", width: int = WIDTH) -> list[str]:
    """``text`` wrapped to lines of at most ``width`` columns, each starting with ``indent``
    (never broken inside a word, a hyphenated name or at a :data:`KEEP` space)."""
    return _plain(
        textwrap.wrap(
            text,
            width,
            initial_indent=indent,
            subsequent_indent=indent,
            break_long_words=False,
            break_on_hyphens=False,
        )
    )


def command(cmd: str, indent: str, width: int = WIDTH) -> list[str]:
    """A shell command as lines of at most ``width`` columns: broken at spaces, each broken
    line ending in `` \\`` (shell continuation), continuations indented two more spaces. A
    single word longer than the line stays whole."""
    words = cmd.split()
    lines: list[str] = []
    cur = indent + words[0]
    more = indent + "  "
    for i, w in enumerate(words[1:], 1):
        last = i == len(words) - 1
        room = width if last else width - 2  # a broken line needs 2 columns for " \"
        if len(cur) + 1 + len(w) <= room:
            cur += " " + w
        else:
            lines.append(cur + " \\")
            cur = more + w
    lines.append(cur)
    return lines


def numbered(
    steps: Sequence[tuple[str, str | None]], indent: str = "  ", width: int = WIDTH
) -> list[str]:
    """Numbered steps ``1. text`` (wrapped, hanging indent), each followed by its command (when
    not None) on the next line(s), aligned with the text (:func:`command`)."""
    lines: list[str] = []
    for i, (text, cmd) in enumerate(steps, 1):
        head = f"{indent}{i}. "
        hang = " " * len(head)
        wrapped = textwrap.wrap(
            text,
            width,
            initial_indent=head,
            subsequent_indent=hang,
            break_long_words=False,
            break_on_hyphens=False,
        )
        lines += _plain(wrapped)
        if cmd:
            lines += command(cmd, hang, width)
    return lines


def message(head: str, *blocks: Sequence[str]) -> str:
    """The advice as one string: ``head`` (the problem, short: the caller puts the file before
    it), then the lines of each block (:func:`paragraph`, :func:`numbered`, :func:`command`)."""
    return "\n".join([head.replace(KEEP, " "), *(ln for block in blocks for ln in block)])
