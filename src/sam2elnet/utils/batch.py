"""One batch policy for every command that processes many files (annotate, enhance, scene on a
folder, degrade, export, train):

* a file that cannot be used (corrupt, truncated, wrong size, unreadable label, ...) is **skipped**,
  not fatal: a ``warning: skipping FILE: reason`` line, and a row in ``skipped.csv``;
* a configuration problem for the whole job (wrong model for the imagery, bad option) stops it;
* a batch where **nothing** could be used fails with exit code 2 and the skip reasons summarised
  on the one ``error:`` line;
* a batch where some files were skipped succeeds (exit 0) and its last line says
  ``N of M skipped, see skipped.csv``.

See docs/reliability.md.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sam2elnet.errors import DataError, UserError

log = logging.getLogger(__name__)

__all__ = ["SkipLog", "short_reason", "skip_line", "skipped_csv_path"]


def short_reason(reason: str, item: str | Path) -> str:
    """The reason without the leading ``<path>: `` the errors put in front, when that path is
    ``item`` or a file of the same name (``x/scenes/a.tif: ...`` for item ``a.tif``)."""
    item = str(item)
    for prefix in (f"{item}: ", f"{Path(item).name}: "):
        if reason.startswith(prefix):
            return reason[len(prefix) :]
    head, sep, rest = reason.partition(": ")
    if sep and Path(head).name == Path(item).name:
        return rest
    return reason


def _common_reason(reason: str, item: str | Path) -> str:
    """:func:`short_reason`, also without a leading ``<file>: `` whose stem is ``item``'s (its
    label, matched by name)."""
    text = short_reason(reason, item)
    head, sep, rest = text.partition(": ")
    if sep and head and Path(head).stem == Path(str(item)).stem:
        return rest
    return text


@dataclass
class SkipLog:
    """Files a batch skipped, with the reason (the error message) for each."""

    what: str = "image"
    items: list[dict[str, str]] = field(default_factory=list)
    single: bool = False
    """The batch is one file the user named: no ``skipping`` warning, and when it is skipped
    :meth:`nothing_done` is its own error (one ``error:`` line naming the file and the fix)."""

    def add(self, item: str | Path, reason: str | BaseException) -> None:
        """Record a skipped file and log one ``warning: skipping ...`` line (none when
        :attr:`single`)."""
        text = str(reason)
        self.items.append({self.what: str(item), "reason": text})
        if not self.single:
            log.warning("skipping %s: %s", item, short_reason(text, str(item)))

    def __len__(self) -> int:
        return len(self.items)

    def reasons(self, top: int = 3) -> str:
        """The most frequent reasons, e.g. ``3 x cannot decode image ...; 1 x ...``. A reason
        that names the item's own companion file first (``labels/a.geojson: ...`` for image
        ``a.png``: the label matched to it by name) counts without that name, so the images
        whose labels all fail alike give one ``3 x`` entry, not the same text three times (the
        warnings and ``skipped.csv`` name each file)."""
        counts = Counter(_common_reason(it["reason"], it[self.what]) for it in self.items)
        alone = {  # a reason met once keeps the file it names
            _common_reason(it["reason"], it[self.what]): short_reason(it["reason"], it[self.what])
            for it in self.items
        }
        parts = [f"{n} x {r}" if n > 1 else alone[r] for r, n in counts.most_common(top)]
        if len(counts) > top:
            parts.append(f"{len(counts) - top} other reason(s)")
        return "; ".join(parts)

    def rows(self) -> list[dict[str, str]]:
        return list(self.items)

    def nothing_done(self, n_total: int, where: str | Path | None = None) -> UserError:
        """The error of a batch in which every one of ``n_total`` files was skipped; for a
        :attr:`single` file its own error, naming it."""
        if self.single and len(self.items) == 1:
            it = self.items[0]
            return DataError(short_reason(it["reason"], it[self.what]), it[self.what])
        noun = self.what if n_total == 1 else f"{self.what}s"
        first = f"the only {self.what}" if n_total == 1 else f"all {n_total} {noun}"
        if where is None and self.items:
            paths = [Path(it[self.what]) for it in self.items]
            parents = {p.parent for p in paths}
            where = paths[0] if len(paths) == 1 else (parents.pop() if len(parents) == 1 else None)
        them = "it" if n_total == 1 else "the files"
        return DataError(
            f"nothing produced: {first} could not be used ({self.reasons()}); fix or remove "
            f"{them} and re-run",
            where,
        )

    def raise_if_nothing_done(self, n_done: int, where: str | Path | None = None) -> None:
        """Raise :meth:`nothing_done` when files were skipped and none succeeded."""
        if n_done == 0 and self.items:
            raise self.nothing_done(len(self.items), where)


def skip_line(n_skipped: int, n_total: int, csv_path: str | Path) -> str:
    """The last line of a batch that skipped some files."""
    return f"{n_skipped} of {n_total} skipped, see {csv_path}"


def skipped_csv_path(out: str | Path) -> Path:
    """``<out stem>_skipped.csv`` next to ``out``: where a command whose output is one file
    (``elnet export``'s vector file, ``elnet evaluate --csv``) lists the files it skipped."""
    out = Path(out)
    return out.with_name(f"{out.stem}_skipped.csv")
