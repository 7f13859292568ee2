"""The run-folder contract: reading and writing ``quality.csv``, ``skipped.csv`` and ``summary.json``.

``elnet annotate`` / ``elnet enhance`` write an output folder ``OUT/`` that evaluation, export,
reports and resume read back::

    OUT/labels/  OUT/rejected/    kept / rejected label masks (RUN_MASK_FOLDERS)
    OUT/quality.csv               one row per image: image (absolute path, run_image_path;
                                  before, as given: relative to the working folder of the
                                  run), label (relative to OUT), predicted_iou,
                                  kept, quality_flag ("" or why the score is 0 /
                                  damped: all nodata, constant image, out of distribution,
                                  empty label: ...),
                                  [coarse] (enhance's coarse label: absolute,
                                  as image), [prob], uncertainty features
    OUT/skipped.csv               image, reason for every input that could not be used
    OUT/summary.json              counts, threshold, evaluator info, timing, the model file
                                  (absolute path) and its ``model_version``
    OUT/model_id.json             the model that made the labels and the ``bands`` given:
                                  :mod:`sam2elnet.data.run_model` owns it and the summary's
                                  model record

Every reader goes through :func:`read_quality_table`, one rule for all: the score is the first
present column of :data:`SCORE_COLUMNS` (``predicted_iou`` as written, or ``quality``/``score``
... in tables made by other tools), names come from :data:`NAME_COLUMNS`, ``kept`` is parsed
leniently (``True/1/yes/kept`` vs ``False/0/no/rejected``), and a score that is not a finite
number in [0, 1] (``1.5``, ``-0.2``, ``inf``, text) is unusable: read as NaN, no score, like a
blank one, with one warning per table naming a row and the allowed range (:func:`parse_score`). Two lookups serve the consumers:
:func:`quality_by_key` (evaluation: paired by :func:`~sam2elnet.data.naming.mask_key`) and
:func:`quality_by_stem` (export: label or image file stem -> score), and
:func:`image_paths_by_stem` (export: label or image file stem -> source image).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sam2elnet.data.naming import mask_key
from sam2elnet.errors import DataError
from sam2elnet.utils.advice import plural
from sam2elnet.utils.atomic import write_json_atomic, write_text_atomic
from sam2elnet.utils.tables import csv_text

log = logging.getLogger(__name__)

__all__ = [
    "NAME_COLUMNS",
    "QUALITY_CSV",
    "REPORT_HTML",
    "RUN_MASK_FOLDERS",
    "SCORE_COLUMNS",
    "SCORE_RANGE",
    "SKIPPED_CSV",
    "SUMMARY_JSON",
    "SCENE_MANIFEST",
    "image_paths_by_stem",
    "run_image_path",
    "row_kept",
    "run_row_paths",
    "kept_by_stem",
    "label_quality_csv",
    "quality_csv_candidates",
    "parse_bool",
    "parse_float",
    "parse_score",
    "quality_by_key",
    "quality_by_stem",
    "read_csv_rows",
    "read_id_list",
    "read_quality_table",
    "read_summary",
    "write_csv_table",
    "csv_table_text",
    "write_summary",
    "EVALUATION_TITLE",
    "evaluation_page",
]

QUALITY_CSV = "quality.csv"
SKIPPED_CSV = "skipped.csv"
SUMMARY_JSON = "summary.json"
REPORT_HTML = "report.html"
"""The page a run's ``--report`` writes into its folder (annotate, enhance, evaluate, train, cv,
experiment, demo)."""
EVALUATION_TITLE = "elnet evaluate"
"""The ``<title>`` of the page ``elnet evaluate --report`` writes (how :func:`evaluation_page`
tells it from another command's ``report.html``)."""

EVALUATION_HTML = "evaluation.html"
"""The page ``elnet evaluate --report`` writes into a run's folder, beside the run's own
``report.html`` (:func:`evaluation_page`)."""
SCENE_MANIFEST = "manifest.jsonl"
"""An ``elnet scene`` folder of scenes' record of finished and failed scenes (``--resume``)."""
RUN_MASK_FOLDERS = ("labels", "rejected")
"""Sub-folders of an ``elnet annotate`` / ``elnet enhance`` output folder that hold its masks."""
NAME_COLUMNS = ("label", "image", "id", "name", "file", "filename", "path", "sample")
"""Columns that name a row's file, in order of preference."""
SCORE_COLUMNS = ("quality", "predicted_iou", "pred_iou", "iou_pred", "score")
"""Columns holding the predicted label quality (IoU in [0, 1]); the first present one is used."""
SCORE_RANGE = (0.0, 1.0)
"""The values a predicted IoU can take; a score outside is unusable (:func:`parse_score`)."""


# ---------------------------------------------------------------------------- parsing
def parse_bool(text: Any) -> bool | None:
    """``True/1/yes/kept`` -> True, ``False/0/no/rejected`` -> False, anything else None."""
    t = str(text).strip().lower()
    if t in ("1", "true", "yes", "y", "kept", "keep", "t"):
        return True
    if t in ("0", "false", "no", "n", "rejected", "reject", "f"):
        return False
    return None


def row_kept(row: dict[str, Any]) -> bool:
    """Whether a ``quality.csv`` row (as written, ``kept`` a bool, or as read back, its text)
    was kept by the quality filter (:func:`parse_bool` of ``kept``; blank or absent: False)."""
    return parse_bool(row.get("kept")) is True


def parse_float(text: Any) -> float:
    """A float, or NaN for blanks and text that is not a number."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("nan")


def run_image_path(image: str | Path) -> str:
    """The ``image`` entry of a ``quality.csv`` row: the image's absolute path (not resolved:
    a symlink keeps its name), so an export or import run from another working folder finds
    it (as ``summary.json`` records the model file). Also the key ``--resume`` matches an
    earlier row by, so a row written relative to the working folder (before) still matches
    from that folder."""
    return os.path.abspath(image)


RUN_PATH_COLUMNS = ("image", "coarse")
"""The ``quality.csv`` columns naming an input file (the image, enhance's coarse label): written
absolute (:func:`run_row_paths`), an older table's relative entries looked up near the table
(:func:`_resolve_near`)."""


def run_row_paths(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` (a ``quality.csv`` row) with the input files it names (:data:`RUN_PATH_COLUMNS`:
    ``image``, and enhance's ``coarse``) as absolute paths (:func:`run_image_path`); a blank or
    absent entry stays as it is. A new dict; ``row`` is not changed."""
    return {
        **row,
        **{
            c: run_image_path(str(row[c])) for c in RUN_PATH_COLUMNS if row.get(c) not in (None, "")
        },
    }


def _resolve_near(name: str, base: Path) -> str:
    """``name`` as written if it exists (absolute, or relative to the working folder), else
    relative to ``base`` (the quality table's folder) if that exists, else relative to the
    nearest folder above ``base`` where it exists (a table written before
    :func:`run_image_path` holds paths relative to the working folder of the run, usually a
    folder above its ``--out``: ``imgs/x.jpg`` of ``elnet annotate --images imgs --out
    runs/auto``; at most :data:`NEAR_LEVELS` folders up, so a bare name does not land on an
    unrelated file far above), else unchanged."""
    p = Path(name)
    if p.is_absolute() or p.exists():
        return str(p)
    q = base / p
    if q.exists():
        return str(q)
    above = (d / p for d in list(Path(os.path.abspath(base)).parents)[:NEAR_LEVELS])
    return str(next((a for a in above if a.exists()), name))


NEAR_LEVELS = 4
"""How many folders above a quality table :func:`_resolve_near` looks for a relative image path
of an older table (``--out`` is usually one to three folders below the folder a run was made
in: ``runs/auto``, ``project/runs/seed0/auto``)."""


# ---------------------------------------------------------------------------- reading
def read_csv_rows(path: str | Path) -> list[dict[str, str]]:
    """Rows of a CSV file as dicts with stripped column names.

    Raises:
        DataError: the file is missing or unreadable.
    """
    p = Path(path)
    if not p.exists():
        raise DataError("table does not exist; check the path", p)
    try:
        with p.open(newline="", encoding="utf-8") as fh:
            return [{(k or "").strip(): v for k, v in row.items()} for row in csv.DictReader(fh)]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        kind = "binary or damaged" if not isinstance(err, OSError) else "unreadable"
        raise DataError(f"cannot read table ({kind}: {err})", p) from None


def read_quality_table(path: str | Path) -> list[dict[str, Any]]:
    """Read a ``quality.csv`` (ours or another tool's) with the one rule of this module.

    Args:
        path: the CSV file.

    Returns:
        One record per row that names a file: the raw columns plus ``predicted_iou`` (a finite
        float in [0, 1], or NaN when blank, ``nan``, outside [0, 1], ``inf`` / ``-inf`` or not
        a number: an unusable score counts as none, and one warning names the table, the count,
        the first such row and the allowed range), ``score_note``
        (``""``, or why a written score was not used, :func:`parse_score`), ``kept`` (bool or
        None; None also when the column is absent), ``label`` and ``image`` (str, may be empty), ``names`` (every non-empty name column, in
        :data:`NAME_COLUMNS` order), ``image_path`` / ``coarse_path`` (resolved next to the table
        when relative; ``coarse_path`` None without a coarse label).

    Raises:
        DataError: the file is missing or unreadable, or has no name or no score column.
    """
    p = Path(path)
    rows = read_csv_rows(p)
    with p.open(newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh), [])
    cols = {c.strip().lower(): c.strip() for c in header}
    names = [cols[c] for c in NAME_COLUMNS if c in cols]
    score = next((cols[c] for c in SCORE_COLUMNS if c in cols), None)
    if not names or score is None:
        raise DataError(
            f"quality table needs a name column ({'/'.join(NAME_COLUMNS)}) and a score column "
            f"({'/'.join(SCORE_COLUMNS)}); found {sorted(cols)}",
            p,
        )
    out: list[dict[str, Any]] = []
    unusable: list[tuple[str, str, int]] = []
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        found = [(row.get(c) or "").strip() for c in names]
        found = [n for n in found if n]
        if not found:
            continue
        rec: dict[str, Any] = dict(row)
        rec["names"] = found
        rec["predicted_iou"], rec["score_note"] = parse_score((row.get(score) or "").strip())
        if rec["score_note"]:
            unusable.append((found[0], (row.get(score) or "").strip(), line))
        rec["kept"] = parse_bool(row.get("kept", "")) if "kept" in cols else None
        rec["label"] = (row.get("label") or "").strip()
        rec["image"] = (row.get("image") or "").strip()
        rec["image_path"] = _resolve_near(rec["image"], p.parent) if rec["image"] else None
        coarse = (row.get("coarse") or "").strip()
        rec["coarse_path"] = _resolve_near(coarse, p.parent) if coarse else None
        out.append(rec)
    if unusable:
        name, text, line = unusable[0]
        log.warning(
            "%s: %s a %s that is not a number in [%g, %g] (e.g. %r for %s on line "
            "%d); %s treated as having no score (as a blank or nan one)",
            p,
            plural(len(unusable), "row has", "rows have"),
            score,
            *SCORE_RANGE,
            text,
            name,
            line,
            "it is" if len(unusable) == 1 else "they are",
        )
    return out


def parse_score(text: str) -> tuple[float, str]:
    """``(score, note)`` of a quality-table cell (predicted IoU): a float in :data:`SCORE_RANGE`
    (0 and 1 included) and ``""``; NaN and ``""`` for a blank cell or ``nan`` (no score, as elnet
    writes it); NaN and the reason for a number outside [0, 1] (e.g. ``1.5``, ``-0.2``, or a
    percentage), ``inf`` / ``-inf`` or text that is not a number (an unusable score, treated as
    none)."""
    value = parse_float(text)
    if text == "" or text.lower() == "nan":
        return value, ""
    if math.isfinite(value) and SCORE_RANGE[0] <= value <= SCORE_RANGE[1]:
        return value, ""
    if math.isfinite(value):
        what = "outside [{:g}, {:g}] (a predicted IoU)".format(*SCORE_RANGE)
    else:
        what = "infinite" if math.isinf(value) else "not a number"
    return float("nan"), f"score {text!r} is {what}; treated as no score"


def quality_by_key(path: str | Path) -> dict[str, dict[str, Any]]:
    """Records of :func:`read_quality_table` keyed by :func:`~sam2elnet.data.naming.mask_key`.

    The written label's name wins (it is what sits in the prediction folder); the image name, then
    the other name columns, are fallbacks for tables without labels.
    """
    out: dict[str, dict[str, Any]] = {}
    rest: list[tuple[str, dict[str, Any]]] = []
    for rec in read_quality_table(path):
        if rec["label"]:
            out.setdefault(mask_key(rec["label"]), rec)
        rest.extend((n, rec) for n in rec["names"] if n != rec["label"])
    for name, rec in rest:
        out.setdefault(mask_key(name), rec)
    return out


def quality_by_stem(table: str | Path | Sequence[dict[str, Any]]) -> dict[str, float]:
    """File stem of every name column -> predicted quality (rows without a finite score, see
    :func:`read_quality_table`, are left out). ``table``: the CSV file, or its records already
    read (one read, one warning)."""
    out: dict[str, float] = {}
    recs = table if isinstance(table, Sequence) and not isinstance(table, str) else None
    for rec in recs if recs is not None else read_quality_table(table):  # type: ignore[arg-type]
        if not math.isfinite(rec["predicted_iou"]):
            continue
        for name in rec["names"]:
            out.setdefault(Path(name).stem, rec["predicted_iou"])
    return out


def kept_by_stem(records: Iterable[dict[str, Any]]) -> dict[str, bool]:
    """File stem of every name column -> the quality filter's verdict (``kept`` of
    :func:`read_quality_table`: True kept, False rejected). Rows without a readable ``kept``
    (no column, or a value :func:`parse_bool` does not know) are left out; the first row of a
    stem wins."""
    out: dict[str, bool] = {}
    for rec in records:
        if rec.get("kept") is None:
            continue
        for name in rec["names"]:
            out.setdefault(Path(name).stem, bool(rec["kept"]))
    return out


def image_paths_by_stem(records: Iterable[dict[str, Any]]) -> dict[str, Path]:
    """Label and image file stem -> the row's source image (``image_path`` of
    :func:`read_quality_table`: as written when it exists, else next to the table), for the
    export's ``source`` / ``file_name``. Rows without an image are left out; the first row of a
    stem wins."""
    out: dict[str, Path] = {}
    for rec in records:
        if not rec.get("image_path"):
            continue
        for name in (rec["image"], rec["label"]):
            if name:
                out.setdefault(Path(name).stem, Path(rec["image_path"]))
    return out


def quality_csv_candidates(labels: str | Path) -> tuple[Path, Path]:
    """Where a ``quality.csv`` scoring ``labels`` (a label file, a label folder or a run folder)
    may be, in the order :func:`label_quality_csv` looks: in the folder (a file's folder), then
    in the folder above. Whether they exist is not checked (``elnet export`` refuses an ``--out``
    onto either)."""
    p = Path(labels)
    d = p if p.is_dir() else p.parent
    return d / QUALITY_CSV, d.parent / QUALITY_CSV


def label_quality_csv(labels: str | Path, *, strict: bool = False) -> Path | None:
    """The ``quality.csv`` that scores a label file, a label folder or a run folder: the one in
    the folder (a file's folder), else the one of the folder above (``RUN/quality.csv`` for
    ``RUN/labels``, ``RUN/rejected`` or a label file in them); None when neither exists. The one
    default of every export (polygons, COCO, Label Studio), of its review selection and of
    ``elnet evaluate``.

    ``strict`` (evaluation): the folder above only when the folder is a run's ``labels/`` or
    ``rejected/`` (:data:`RUN_MASK_FOLDERS`). Evaluate's predictions may be any folder of masks
    (a copy inside a project, a tool's output next to other runs), and the rows of a table one
    folder up, paired by file name, would give those masks another job's predicted IoU and
    kept/rejected without a word; an export's labels come from a run whose table is the one
    above them.
    """
    d = Path(labels) if Path(labels).is_dir() else Path(labels).parent
    here, above = quality_csv_candidates(labels)
    if strict and d.name not in RUN_MASK_FOLDERS:
        return here if here.is_file() else None
    return next((c for c in (here, above) if c.is_file()), None)


def read_summary(run_dir: str | Path) -> dict[str, Any] | None:
    """``run_dir/summary.json`` as a dict; None when absent or not valid JSON."""
    p = Path(run_dir) / SUMMARY_JSON
    if not p.is_file():
        return None
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


ID_LIST_KEYS = ("held_out", "test")
"""Keys of a JSON object read by :func:`read_id_list`, in order: ``elnet train``'s
``RUN/splits.json`` (``held_out``: never trained on; its ``unused`` list, the pairs
``--max-train`` left out, is read with it) and ``elnet experiment``'s ``split.json``
(``test``)."""


def read_id_list(path: str | Path) -> set[str]:
    """Image ids to keep, from a file: text (one id or file name per line, ``#`` comments), a JSON
    list, or a JSON object with one of :data:`ID_LIST_KEYS` (the first present is used; with
    ``held_out``, a run's ``splits.json``, its ``unused`` ids too: neither was trained on).

    Entries are reduced to :func:`~sam2elnet.data.naming.mask_key` (``10791_mask.png`` -> ``10791``)
    so they match files of any naming.

    Raises:
        DataError: missing / unreadable file, a JSON object without those keys, or no id at all.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError("id list does not exist; check the path", p)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read id list ({err})", p) from None
    items: list[Any]
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as err:
            raise DataError(f"id list is not valid JSON ({err})", p) from None
        if isinstance(data, dict):
            key = next((k for k in ID_LIST_KEYS if isinstance(data.get(k), list)), None)
            if key is None:
                raise DataError(
                    f"JSON id list needs a list under one of {', '.join(ID_LIST_KEYS)}; "
                    f"found keys {sorted(data)}",
                    p,
                )
            extra = data.get("unused") if key == "held_out" else None  # also never trained on
            data = data[key] + (extra if isinstance(extra, list) else [])
        if not isinstance(data, list):
            raise DataError("JSON id list must be a list of ids or an object holding one", p)
        items = data
    else:
        items = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    ids = {mask_key(str(i).strip()) for i in items if str(i).strip()}
    if not ids:
        raise DataError("id list names no image", p)
    return ids


# ---------------------------------------------------------------------------- writing
def write_csv_table(
    path: str | Path, rows: Iterable[dict[str, Any]], fields: Sequence[str]
) -> Path:
    """Write rows atomically with a fixed column order (:func:`csv_table_text`)."""
    return write_text_atomic(path, csv_table_text(rows, fields))


def csv_table_text(rows: Iterable[dict[str, Any]], fields: Sequence[str]) -> str:
    """The text :func:`write_csv_table` writes: a header of ``fields``, one line per row in that
    column order, floats as ``.6f``, other keys ignored."""
    return csv_text(rows, fields, ".6f")


def write_summary(run_dir: str | Path, summary: dict[str, Any]) -> Path:
    """Write ``run_dir/summary.json`` atomically."""
    return write_json_atomic(Path(run_dir) / SUMMARY_JSON, summary)


def remove_stale_report(out: str | Path, why: str) -> str | None:
    """Delete ``out/report.html`` when the results it shows were just recomputed without a new
    report (a resumed ``elnet cv`` / ``elnet experiment`` that scored or filtered its stored
    predictions again, run without ``--report``): a page with the old numbers next to a
    ``cv.md`` / ``results.md`` with the new ones would contradict them.

    Args:
        out: the run folder.
        why: what changed, for the line (e.g. ``the test predictions were scored again``).

    Returns:
        One line for the log when a page was removed, else None.
    """
    page = Path(out) / REPORT_HTML
    if not page.is_file():
        return None
    page.unlink()
    return f"removed {page}: {why} and it showed the earlier numbers; --report writes it again"


def evaluation_page(folder: str | Path) -> Path:
    """Where ``elnet evaluate --report`` writes its page in ``folder``: ``report.html``, unless
    the folder is a run's (it holds ``summary.json`` of annotate / enhance) or holds a
    ``report.html`` that another command wrote (its ``<title>`` is not ``elnet evaluate``):
    then ``evaluation.html``, so the run's own report is never overwritten."""
    folder = Path(folder)
    if (folder / SUMMARY_JSON).is_file():
        return folder / EVALUATION_HTML
    page = folder / REPORT_HTML
    try:
        with page.open(encoding="utf-8", errors="replace") as fh:
            head = fh.read(4096)
    except OSError:
        return page  # none yet (or unreadable: check_output says so)
    return page if f"<title>{EVALUATION_TITLE}</title>" in head else folder / EVALUATION_HTML
