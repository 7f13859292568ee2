"""One batch policy for every command that processes many files (annotate, enhance, scene on a
folder, degrade, export, train):

* a file that cannot be used (corrupt, truncated, wrong size, unreadable label, ...) is **skipped**,
  not fatal: a ``warning: skipping FILE: reason`` line, and a row in ``skipped.csv``; after
  :data:`WARN_EACH` files of one reason the others are named in one summary warning (count,
  first names, the list's path) when the list is written, not one line each;
* a configuration problem for the whole job (wrong model for the imagery, bad option) stops it;
* a batch where **nothing** could be used fails with exit code 2 and the skip reasons summarised
  on the one ``error:`` line, which names the skip list when one was written;
* so does a batch that wrote outputs none of which can be used (annotate / enhance: every label
  rejected as unusable whatever the filter, e.g. all-black tiles; :meth:`SkipLog.nothing_usable`),
  its outputs left in place as the record;
* a batch where some files were skipped succeeds (exit 0) and its last line says
  ``N of M skipped, see skipped.csv``.

See docs/reliability.md.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sam2elnet.errors import DataError
from sam2elnet.utils.advice import name_sample, plural

log = logging.getLogger(__name__)

__all__ = [
    "NothingDoneError",
    "OutputSkipList",
    "SKIP_LIST_ENDING",
    "SkipLog",
    "drop_skip_list_if_nothing_done",
    "short_reason",
    "skip_line",
    "unlabelled_skips",
    "unusable_summary",
]


class NothingDoneError(DataError):
    """:meth:`SkipLog.nothing_done`: every file of a batch was skipped, nothing produced (exit
    2)."""


def short_reason(reason: str, item: str | Path) -> str:
    """The reason without the leading ``<path>: `` the errors put in front, when that path is
    ``item`` itself (``x/scenes/a.tif: ...`` for item ``a.tif``, a bare name, too). Another file
    of the same name (enhance: the coarse label ``labels/a.png`` of image ``images/a.png``) keeps
    its path: the reason is about that file, not the item."""
    item = str(item)
    if reason.startswith(f"{item}: "):
        return reason[len(item) + 2 :]
    head, sep, rest = reason.partition(": ")
    if sep and _same_file(head, item):
        return rest
    return reason


def _same_file(a: str, b: str) -> bool:
    """``a`` and ``b`` name the same file: the same name, and one is a bare name or both resolve
    to one path."""
    pa, pb = Path(a), Path(b)
    if pa.name != pb.name:
        return False
    if pa.parent == Path(".") or pb.parent == Path("."):
        return True
    try:
        return pa.resolve() == pb.resolve()
    except (OSError, RuntimeError):
        return False


def _common_reason(reason: str, item: str | Path) -> str:
    """:func:`short_reason`, also without a leading ``<file>: `` whose stem is ``item``'s (its
    label, matched by name)."""
    text = short_reason(reason, item)
    head, sep, rest = text.partition(": ")
    if sep and head and Path(head).stem == Path(str(item)).stem:
        return rest
    return text


WARN_EACH = 3
"""Files skipped for one reason that get a ``skipping`` warning each; the others of that reason
are named together in one summary warning when the skip list is written
(:meth:`SkipLog.warn_held`)."""


@dataclass
class SkipLog:
    """Files a batch skipped, with the reason (the error message) for each."""

    what: str = "image"
    items: list[dict[str, str]] = field(default_factory=list)
    single: bool = False
    """The batch is one file the user named: no ``skipping`` warning, and when it is skipped
    :meth:`nothing_done` is its own error (one ``error:`` line naming the file and the fix)."""
    warned: Counter[str] = field(default_factory=Counter, repr=False, compare=False)
    """``skipping`` warnings given per reason (:func:`_common_reason`)."""
    held: dict[str, list[str]] = field(default_factory=dict, repr=False, compare=False)
    """Reason -> the files skipped for it after its first :data:`WARN_EACH` warnings, not yet
    named (:meth:`warn_held`)."""

    def add(
        self, item: str | Path, reason: str | BaseException, *, warn: bool = True, **extra: str
    ) -> None:
        """Record a skipped file and log one ``warning: skipping ITEM: reason`` line (none when
        :attr:`single`, or ``warn=False``: the caller says it once for many files, e.g.
        enhance's images without a coarse label under ``--skip-missing``). The recorded reason
        (``skipped.csv``'s ``reason`` column) does not repeat the item's path
        (:func:`short_reason`), which its own column holds. ``extra``: more columns of the row,
        written between the item and the reason (train: the pair's ``id``)."""
        text = short_reason(str(reason), item)  # skipped.csv names the item in its own column
        self.items.append({self.what: str(item), **extra, "reason": text})
        if warn and not self.single:
            key = _common_reason(text, item)
            if self.warned[key] < WARN_EACH:
                self.warned[key] += 1
                log.warning("skipping %s: %s", item, text)
            else:  # many files for one reason (a folder mixing kinds of images): one summary
                self.held.setdefault(key, []).append(str(item))

    def warn_held(self, listed: str | Path | None = None) -> None:
        """One warning for the files of each reason that :meth:`add` did not warn about one by
        one (those after its first :data:`WARN_EACH`): their count, the first names and
        ``listed``, the skip list that names them all (None: not written), e.g. ``skipping 47
        more images for the reason given above (has no georeference ...): d.png, e.png, f.png
        (+44); all listed in out/skipped.csv``. Called by :meth:`write_csv` and
        :meth:`nothing_done`; a batch without a list of its own calls it at its end."""
        for key, items in self.held.items():
            more = plural(len(items), f"more {self.what}")
            names = name_sample([Path(i).name for i in items], 3)
            why = key if len(key) <= 100 else key[:97] + "..."
            where = f"; all listed in {listed}" if listed is not None else ""
            log.warning(
                "skipping %s for the reason given above (%s): %s%s",
                more, why, names, where,
            )  # fmt: skip
        self.held.clear()

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
            parts.append(plural(len(counts) - top, "other reason"))
        return "; ".join(parts)

    def rows(self) -> list[dict[str, str]]:
        return list(self.items)

    def columns(self) -> list[str]:
        """The columns of :meth:`write_csv`: :attr:`what` (the file), the ``extra`` ones of
        :meth:`add` in the order first met, ``reason``."""
        cols = [self.what]
        for it in self.items:
            cols += [k for k in it if k not in cols and k != "reason"]
        return [*cols, "reason"]

    def write_csv(self, path: str | Path) -> Path | None:
        """The one writer of a batch's skip list (``skipped.csv``, the list next to a one-file
        output, :class:`OutputSkipList`):
        write it to ``path`` atomically (temporary file + rename, so a kill leaves the earlier
        list or the new one, never half of one; columns :meth:`columns`) when files were skipped
        and return it (then the summary warning of the files not warned about one by one,
        :meth:`warn_held`); otherwise remove an earlier run's list at ``path`` (it no longer
        holds) and return None. The caller checks first that ``path`` is no input of the batch."""
        path = Path(path)
        if not self.items:
            path.unlink(missing_ok=True)
            return None
        from sam2elnet.utils.atomic import write_text_atomic
        from sam2elnet.utils.tables import csv_text

        written = write_text_atomic(path, csv_text(self.items, self.columns()))
        self.warn_held(written)
        return written

    def nothing_done(
        self, n_total: int, where: str | Path | None = None, csv: str | Path | None = None
    ) -> NothingDoneError:
        """The error of a batch in which every one of ``n_total`` files was skipped; for a
        :attr:`single` file its own error, naming it. The one rule for a run that produced
        nothing: its skip list (why nothing came out) is written to ``csv``, the path a
        successful run writes it to, replacing an earlier run's list, which no longer holds;
        only into a folder that exists and that this run did not create (a run that produced
        nothing leaves no folder of its own behind: the caller removes the folder it made
        before this, and one :func:`~sam2elnet.utils.lock.output_lock` made is removed when the
        lock is released, :func:`~sam2elnet.utils.lock.lock_created`). A folder the user made,
        even an empty one, stays and holds the list. The error line ends with the list's path
        when it was written: ``... and re-run (listed with the reasons in OUT/skipped.csv)``."""
        from sam2elnet.utils.lock import lock_created

        written = None
        folder = None if csv is None else Path(csv).parent
        if folder is not None and folder.is_dir() and not lock_created(folder):
            written = self.write_csv(csv)
        self.warn_held(written)
        return self._nothing_done(n_total, where, written)

    def _nothing_done(
        self, n_total: int, where: str | Path | None, written: Path | None = None
    ) -> NothingDoneError:
        if self.single and len(self.items) == 1:
            it = self.items[0]
            return NothingDoneError(short_reason(it["reason"], it[self.what]), it[self.what])
        first = f"the only {self.what}" if n_total == 1 else f"all {plural(n_total, self.what)}"
        if where is None and self.items:
            where = _common_place([it[self.what] for it in self.items])
        them = "it" if n_total == 1 else "the files"
        listed = f" (listed with the reasons in {written})" if written is not None else ""
        return NothingDoneError(
            f"nothing produced: {first} could not be used ({self.reasons()}); fix or remove "
            f"{them} and re-run{listed}",
            where,
        )

    def raise_if_nothing_done(self, n_done: int, where: str | Path | None = None) -> None:
        """Raise :meth:`nothing_done` when files were skipped and none succeeded."""
        if n_done == 0 and self.items:
            raise self.nothing_done(len(self.items), where)

    def nothing_usable(
        self,
        n_made: int,
        unusable: Mapping[str, int],
        inputs: Sequence[str | Path],
        advice: str,
    ) -> DataError | None:
        """The error of a batch whose every output is unusable, else None.

        ``n_made`` outputs were written, ``unusable`` counts those rejected whatever the filter,
        by reason (``{"constant image": 3}``; :func:`unusable_summary`); the files of this log
        were skipped. When every one of the ``n_made`` (at least one) is unusable, nothing
        usable was produced: a :class:`DataError` naming the input (the one file, or the folder
        of ``inputs``), the counts by reason, the skipped files, then the caller's ``advice``
        (what to do, where the outputs stay as the record: the command's own words)."""
        what = unusable_summary(n_made, unusable)
        if what is None:
            return None
        skipped = ""
        if self.items:
            skipped = f"; {plural(len(self.items), self.what)} skipped ({self.reasons()})"
        return DataError(
            f"nothing usable produced: {what}{skipped}; {advice}", _common_place(inputs)
        )


def unusable_summary(n_made: int, unusable: Mapping[str, int]) -> str | None:
    """When every one of ``n_made`` outputs (at least one) is unusable whatever the filter
    (``unusable``: their count by reason, ``{"constant image": 3}``), what happened, e.g.
    ``all 3 labels were rejected as unusable whatever the filter (3 x constant image)``; None
    when some output is usable (outputs merely left out by a filter the user chose are usable)."""
    if n_made == 0 or sum(unusable.values()) < n_made:
        return None
    what = "its label was" if n_made == 1 else f"all {n_made} labels were"
    why = ", ".join(f"{n} x {r}" if n > 1 else r for r, n in unusable.items() if n)
    return f"{what} rejected as unusable whatever the filter ({why})"


def _common_place(paths: Sequence[str | Path]) -> Path | None:
    """The one file of ``paths``, else their common folder when they share one, else None."""
    ps = [Path(p) for p in paths]
    parents = {p.parent for p in ps}
    return ps[0] if len(ps) == 1 else (parents.pop() if len(parents) == 1 else None)


def unlabelled_skips(
    skips: SkipLog, missing: Sequence[Path], n_total: int, where: str | Path
) -> str | None:
    """Add the images of a ``--skip-missing`` run (enhance, refine) that have no coarse label in
    ``where`` to ``skips`` (reason ``no coarse label in WHERE``, no ``skipping`` warning each:
    ``SkipLog.add(..., warn=False)``, so they land in ``skipped.csv``) and return the one note
    that names them instead, ``2 of 4 images have no coarse label in coarse/ and were skipped
    (--skip-missing): c.png, s02.png`` (the first five names, then ``(+N)``; None when none is
    missing). ``n_total``: the images of the run, with and without a label."""
    for f in missing:
        skips.add(f, f"no coarse label in {where}", warn=False)
    if not missing:
        return None
    has, was = ("has", "was") if len(missing) == 1 else ("have", "were")
    return (
        f"{len(missing)} of {plural(n_total, 'image')} {has} no coarse label in {where} and "
        f"{was} skipped (--skip-missing): {name_sample([f.name for f in missing], 5)}"
    )


def skip_line(n_skipped: int, n_total: int, csv_path: str | Path) -> str:
    """The last line of a batch that skipped some files."""
    return f"{n_skipped} of {n_total} skipped, see {csv_path}"


SKIP_LIST_ENDING = "_skipped.csv"
"""How every list of skipped items written next to an output file ends."""


@dataclass(frozen=True)
class OutputSkipList:
    """The list of the items skipped by a command whose output is one file, written next to
    that file: ``<out stem>_<tag>_skipped.csv`` (:attr:`path`, the one place this name is
    built). ``tag`` names what wrote it, so commands and formats sharing a folder and a stem
    keep a list each: an export its format (``w_gpkg_skipped.csv``, ``w_geojson_skipped.csv``,
    ``coco_coco_skipped.csv``, ``tasks_label-studio_skipped.csv``:
    :func:`sam2elnet.export.export_result.skipped_list`), ``elnet evaluate --csv w.csv``
    ``evaluate`` (``w_evaluate_skipped.csv``). ``what``: the list's first column (the
    :class:`SkipLog`'s ``what``: ``label``, ``file``).

    Before, these lists were ``<out stem>_skipped.csv`` (:attr:`old_path`; a GeoPackage export
    and ``evaluate --csv`` of one stem wrote the same file). Writing or removing the list
    (:meth:`write`, :meth:`drop`) also removes such an older list of the same kind (its header
    starts with ``what`` and ends with ``reason``), which the run replaces: a fresh output
    never sits beside an old list that says items were skipped. One of another kind (an
    evaluation's beside an export) is left to its own command, and so is an old name that is
    also the list of another output now (:meth:`old_path_is_taken`: ``w_gpkg.geojson``'s old
    ``w_gpkg_skipped.csv`` is ``w.gpkg``'s list)."""

    out: Path
    tag: str
    what: str
    kin: frozenset[str] = frozenset()
    """The tags of the other lists of this kind (:attr:`what`) that outputs beside this one
    may have (an export's: every export format); :attr:`tag` counts too."""

    @property
    def path(self) -> Path:
        """``<out stem>_<tag>_skipped.csv`` next to :attr:`out`."""
        return self.out.with_name(f"{self.out.stem}_{self.tag}{SKIP_LIST_ENDING}")

    @property
    def old_path(self) -> Path:
        """``<out stem>_skipped.csv``: the name these lists had before :attr:`path`."""
        return self.out.with_name(f"{self.out.stem}{SKIP_LIST_ENDING}")

    def old_path_is_taken(self) -> bool:
        """:attr:`old_path` (``<out stem>_skipped.csv``) is also the name of the list of another
        output of this kind: the stem ends in ``_<tag>`` for :attr:`tag` or a tag of
        :attr:`kin` (``w_gpkg.geojson``: ``w_gpkg_skipped.csv``, the list of ``w.gpkg``;
        ``evaluate --csv w_evaluate.csv``: ``w_evaluate_skipped.csv``, that of ``--csv w.csv``).
        Whose list a file of that name is cannot be told, so it is never removed as an old
        one."""
        stem = self.out.stem
        return any(len(stem) > len(t) + 1 and stem.endswith(f"_{t}") for t in self.kin | {self.tag})

    def write(self, skips: SkipLog) -> Path | None:
        """:meth:`SkipLog.write_csv` to :attr:`path` (its path; None: nothing skipped, an earlier
        list there removed), then :meth:`drop_old`. Raises what ``write_csv`` raises."""
        written = skips.write_csv(self.path)
        self.drop_old()
        return written

    def drop(self) -> None:
        """Remove the list (:attr:`path`) and an older one of its kind (:meth:`drop_old`): the
        run produced nothing, and an earlier run's list no longer holds."""
        self.path.unlink(missing_ok=True)
        self.drop_old()

    def drop_old(self) -> Path | None:
        """Remove :attr:`old_path` when it is a list of this kind (first column :attr:`what`,
        last ``reason``) and no other output's list may have its name
        (:meth:`old_path_is_taken`), and return it; anything else there (another command's or
        another output's list, a file of the user's, nothing) is left and None returned. Never
        raises."""
        if self.old_path_is_taken():
            return None
        old = self.old_path
        try:
            with old.open(newline="", encoding="utf-8") as fh:
                header = next(csv.reader(fh), [])
        except (OSError, UnicodeDecodeError, csv.Error):
            return None
        if header[:1] != [self.what] or header[-1:] != ["reason"] or len(header) < 2:
            return None
        try:
            old.unlink()
        except OSError:
            return None
        log.info(
            "removed %s, an earlier run's list of skipped %ss (this output's list is named %s now)",
            old,
            self.what,
            self.path.name,
        )
        return old


@contextmanager
def drop_skip_list_if_nothing_done(skipped: OutputSkipList | None) -> Iterator[None]:
    """Around a batch whose output is one file (``elnet export``'s layer, ``elnet evaluate
    --csv``): when it raises :class:`NothingDoneError` (nothing produced; the error line says
    why), remove ``skipped``, the output's list (:meth:`OutputSkipList.drop`, an older list of
    its kind too; None: nothing to remove), and raise it on: an earlier run's list no longer
    holds, and a failed run leaves nothing beside its output (the bad-input rule)."""
    try:
        yield
    except NothingDoneError:
        if skipped is not None:
            skipped.drop()
        raise
