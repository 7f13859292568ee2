"""What an ``elnet export`` wrote (:class:`ExportResult`, its summary line) and its list of
skipped labels (``<out stem>_<format>_skipped.csv``: :func:`skipped_list`,
:func:`skipped_list_path`, :func:`write_skipped`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sam2elnet.utils.advice import plural
from sam2elnet.utils.batch import OutputSkipList, SkipLog

__all__ = ["ExportResult", "skipped_list", "skipped_list_path", "write_skipped"]


@dataclass
class ExportResult:
    """What an export wrote."""

    out: Path
    format: str
    n_labels: int
    n_features: int
    n_chips: int = 0
    notes: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    skipped_csv: Path | None = None
    #: the centre-line layer's file (None: not written), its lines and road lengths (summed)
    lines_out: Path | None = None
    n_lines: int = 0
    road_length_px: float = 0.0
    road_length_m: float | None = None
    #: ``--review-count`` / ``--max-quality``: how many labels of how many went out
    #: (:meth:`~sam2elnet.export.review_pick.ReviewPick.line`); None: every label
    selection: str | None = None
    #: the export's review record (:func:`~sam2elnet.export.review_set.write_review_set`,
    #: what ``elnet import`` reads back); None: none written (COCO of chips)
    review_record: Path | None = None

    def summary(self) -> str:
        """One line: what was written and, when only some labels went out, the review
        selection (:attr:`selection`)."""
        feature = "annotation" if self.format == "coco" else "polygon"
        s = (
            f"{self.out}: {plural(self.n_features, feature)} from {plural(self.n_labels, 'label file')} "
            f"({self.format})"
        )
        if self.n_chips:
            s += f"; {plural(self.n_chips, 'image/mask chip')}"
        if self.lines_out is not None:
            where = "layer centre_lines" if self.lines_out == self.out else str(self.lines_out)
            if self.road_length_m is not None:
                length = f"{self.road_length_m / 1000:.3f} km"
            else:
                length = f"{self.road_length_px:.0f} px (no CRS)"
            s += f"; {plural(self.n_lines, 'road centre line')}, {length} of road ({where})"
        return f"{s}; {self.selection}" if self.selection else s


def skipped_list(out: str | Path, fmt: str | None = None) -> OutputSkipList:
    """The list of the labels an export to ``out`` in the format ``fmt`` (any case; None: the
    one ``out``'s suffix means) skipped, :class:`~sam2elnet.utils.batch.OutputSkipList` tagged
    by the format: ``<out stem>_<format>_skipped.csv`` (``w_gpkg_skipped.csv``,
    ``w_geojson_skipped.csv``, ``w_shp_skipped.csv``, ``coco_coco_skipped.csv``,
    ``tasks_label-studio_skipped.csv``), so exports of one stem in one folder (``w.gpkg`` and
    ``w.geojson``) and ``elnet evaluate --csv w.csv`` keep a list each; every export format is
    of its kin (an old ``w_gpkg_skipped.csv`` is not removed by an export to ``w_gpkg.geojson``:
    it is ``w.gpkg``'s list). Never raises."""
    from sam2elnet.export.layer_files import sidecar_format, suffix_formats
    from sam2elnet.option_values import EXPORT_FORMATS

    kin = frozenset([*EXPORT_FORMATS, *suffix_formats().values()])
    return OutputSkipList(Path(out), sidecar_format(out, fmt), "label", kin)


def skipped_list_path(out: str | Path, fmt: str | None = None) -> Path:
    """Where an export to ``out`` in the format ``fmt`` lists the labels it skipped: the path
    of :func:`skipped_list` (``w_gpkg_skipped.csv``, ``w_geojson_skipped.csv``, ...)."""
    return skipped_list(out, fmt).path


def write_skipped(out: Path, skips: SkipLog, fmt: str | None = None) -> Path | None:
    """Write :func:`skipped_list` of ``out`` and ``fmt`` (label, reason) after the layer
    (or COCO file) and its record, so a refused export leaves no list behind; its path, else
    None and an earlier export's list (of this name) removed. An older export's
    ``<out stem>_skipped.csv`` is removed either way
    (:meth:`~sam2elnet.utils.batch.OutputSkipList.write`; also the summary warning of the
    labels ``skips`` did not warn about one by one)."""
    return skipped_list(out, fmt).write(skips)
