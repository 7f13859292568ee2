"""Which labels an export sends for review on a budget: ``--review-count N`` / ``--max-quality Q``.

:func:`pick_for_review` keeps the labels whose predicted IoU (the run's ``quality.csv``) is below
``max_quality``, at most ``review_count`` of them, the lowest first (ties by file name). Every
export format (Label Studio tasks, COCO, GeoPackage / Shapefile / GeoJSON) then writes those
labels only, and its review record (``*_review.json``) lists exactly them, so ``elnet import``
after a partial review tells edited from unchanged labels among what was sent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from sam2elnet.errors import UserError
from sam2elnet.utils.advice import none_of, plural

__all__ = ["ReviewPick", "pick_for_review", "review_pick", "review_quality_csv", "with_selection"]

R = TypeVar("R")


@dataclass(frozen=True)
class ReviewPick:
    """The labels chosen for review and how they were chosen."""

    files: list[Path]  #: the chosen label files, in the order the labels were found
    n_total: int  #: labels there were to choose from (scored or not)
    low: float  #: the lowest predicted IoU sent
    high: float  #: the highest predicted IoU sent
    rule: str  #: the options as given, e.g. ``"--review-count 200, --max-quality 0.5"``
    n_unscored: int = 0  #: labels without a predicted IoU in the table (never chosen)
    #: chosen label -> its predicted IoU (:meth:`sent`)
    scores: dict[Path, float] = field(default_factory=dict, compare=False)
    n_skipped: int = 0  #: chosen labels the export skipped (unreadable...), not sent

    def line(self) -> str:
        """The one line ``elnet export`` prints: ``review selection: 3 of 5 labels
        (--review-count 3, lowest predicted IoU first), predicted IoU 0.100-0.300 sent``; one
        value when both ends print alike (``predicted IoU 0.024 sent``). After :meth:`sent`,
        the count and range are those of the labels that went out, and a clause counts the
        chosen ones skipped (``; 1 chosen label skipped, not sent``: the export's
        list of skipped labels gives the reason)."""
        low, high = f"{self.low:.3f}", f"{self.high:.3f}"
        what = (
            f"predicted IoU {low if low == high else f'{low}-{high}'} sent"
            if self.files
            else "none sent"
        )
        line = (
            f"review selection: {len(self.files)} of {self.n_total} labels ({self.rule}, lowest "
            f"predicted IoU first), {what}"
        )
        if self.n_skipped:
            line += f"; {plural(self.n_skipped, 'chosen label')} skipped, not sent"
        if self.n_unscored:
            line += f"; {self.n_unscored} labels without a predicted IoU were not considered"
        return line

    def sent(self, skipped: list[dict[str, str]]) -> ReviewPick:
        """This pick less the labels the export skipped (``skipped``: the result's rows, each
        naming its file under ``label``): the files that went out, their predicted IoU range
        and the number skipped (:attr:`n_skipped`). Nothing of the pick skipped: this pick
        itself."""
        gone = {str(r.get("label")) for r in skipped}
        files = [f for f in self.files if str(f) not in gone]
        if len(files) == len(self.files):
            return self
        left = [self.scores[f] for f in files if f in self.scores] or [self.low, self.high]
        n_skipped = self.n_skipped + len(self.files) - len(files)
        return replace(self, files=files, low=min(left), high=max(left), n_skipped=n_skipped)


def review_quality_csv(labels: str | Path, quality_csv: str | Path | None) -> Path | None:
    """The quality table that scores ``labels``: ``quality_csv`` when given, else the run
    folder's (:func:`~sam2elnet.data.runfolder.label_quality_csv`), else None."""
    from sam2elnet.data.runfolder import label_quality_csv

    return Path(quality_csv) if quality_csv is not None else label_quality_csv(labels)


def pick_for_review(
    files: list[Path],
    quality_csv: str | Path | None,
    review_count: int | None = None,
    max_quality: float | None = None,
) -> ReviewPick | None:
    """Choose the labels to send for review.

    Args:
        files: the label files found (:func:`~sam2elnet.export.run_info.run_label_files`).
        quality_csv: the run's ``quality.csv`` (:func:`review_quality_csv`), None when there is
            none.
        review_count: at most this many labels (>= 1), the lowest predicted IoU first, ties
            broken by file name; None: no limit.
        max_quality: only labels whose predicted IoU is below this (0-1); None: no bound.
            The ranges are checked by :func:`~sam2elnet.export.option_scope.check_ranges`.

    Returns:
        :class:`ReviewPick` (the chosen files keep the order of ``files``), or None when neither
        option is given (every label goes out).

    Raises:
        UserError: no quality table, none of the labels scored in it, or no label below
            ``max_quality`` (nothing would be sent).
        DataError: an unreadable quality table
            (:func:`~sam2elnet.data.runfolder.quality_by_stem`).
    """
    if review_count is None and max_quality is None:
        return None
    rule = ", ".join(
        f"{flag} {value:g}"
        for flag, value in (("--review-count", review_count), ("--max-quality", max_quality))
        if value is not None
    )
    if quality_csv is None:
        raise UserError(
            f"{rule} chooses labels by their predicted IoU, and no quality.csv scores these "
            "labels: give an annotate/enhance run folder as --labels, or --quality-csv FILE"
        )
    from sam2elnet.data.runfolder import quality_by_stem

    quality = quality_by_stem(Path(quality_csv))
    scored = [(quality[f.stem], f.name, str(f), f) for f in files if f.stem in quality]
    scored = [s for s in scored if math.isfinite(s[0])]
    n_unscored = len(files) - len(scored)
    if not scored:
        scores = none_of(len(files), "label", "has one", "has none")
        raise UserError(
            f"{rule} chooses labels by their predicted IoU, and {scores} in {quality_csv}: give "
            "the quality.csv of the annotate/enhance run that made "
            f"{'it' if len(files) == 1 else 'them'} (--quality-csv FILE)"
        )
    scored.sort(key=lambda s: s[:3])
    if max_quality is not None:
        below = [s for s in scored if s[0] < max_quality]
        if not below:
            raise UserError(
                f"no label has a predicted IoU below --max-quality {max_quality:g} (the lowest "
                f"is {scored[0][0]:.3f}, {scored[0][1]}): nothing to send; raise --max-quality"
            )
        scored = below
    if review_count is not None:
        scored = scored[:review_count]
    chosen = {s[3] for s in scored}
    return ReviewPick(
        [f for f in files if f in chosen],
        len(files),
        scored[0][0],
        scored[-1][0],
        rule,
        n_unscored,
        {s[3]: s[0] for s in scored},
    )


def review_pick(
    labels: str | Path,
    quality_csv: str | Path | None,
    review_count: int | None,
    max_quality: float | None,
) -> ReviewPick | None:
    """:func:`pick_for_review` of the labels of ``labels`` (a file, a folder or a run folder:
    :func:`~sam2elnet.export.run_info.run_label_files`) scored by :func:`review_quality_csv`;
    None, without looking, when neither option is given. Raises as :func:`pick_for_review`."""
    if review_count is None and max_quality is None:
        return None
    from sam2elnet.export.run_info import run_label_files

    files = run_label_files(labels)
    return pick_for_review(
        files, review_quality_csv(labels, quality_csv), review_count, max_quality
    )


def with_selection(res: R, pick: ReviewPick | None) -> R:
    """``res`` (an export's result: ``ExportResult`` or ``LabelStudioExport``) with its
    ``selection`` set to the line of what of ``pick`` went out (None: every label went out):
    the chosen labels the export skipped (``res.skipped``) are not counted as sent
    (:meth:`ReviewPick.sent`)."""
    if pick is not None:
        pick = pick.sent(res.skipped)  # type: ignore[attr-defined]
    res.selection = pick.line() if pick is not None else None  # type: ignore[attr-defined]
    return res
