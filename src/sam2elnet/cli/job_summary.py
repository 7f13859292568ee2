"""What ``elnet annotate`` / ``elnet enhance`` print after a folder job (from its summary)."""

import math
from pathlib import Path
from typing import Any

import typer

from sam2elnet.data.runfolder import QUALITY_CSV, REPORT_HTML, SKIPPED_CSV, SUMMARY_JSON
from sam2elnet.utils.advice import plural

#: outputs a folder job can leave, in the order the closing line lists them; model_id.json (the
#: model that made the labels, read by --resume and the exports; summary.json names the model
#: too) is the folder's record, not an output to open, and is not listed
JOB_OUTPUTS = (
    "labels/",
    "rejected/",
    "prob/",
    "changes/",
    QUALITY_CSV,
    SKIPPED_CSV,
    SUMMARY_JSON,
    REPORT_HTML,
)


def fmt(v: object) -> str:
    """A float with 3 decimals, anything else as ``str``."""
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def written_outputs(out_dir: Path) -> list[str]:
    """The entries of :data:`JOB_OUTPUTS` that exist in ``out_dir`` (folders only when not empty)."""
    found = []
    for name in JOB_OUTPUTS:
        p = out_dir / name.rstrip("/")
        if p.is_file() or (p.is_dir() and any(p.iterdir())):
            found.append(name)
    return found


def threshold_line(filt: dict[str, Any], kept: tuple[int, int] | None = None) -> str | None:
    """The line on the label filter: the threshold and its held-out precision / recall, or, when
    no threshold reaches ``--target-precision``, one sentence saying so, how many labels were
    kept and what to do; None without a filter.

    Args:
        filt: the ``filter`` record of the job's ``summary.json``.
        kept: (labels kept, labels made: kept + rejected), for the count in the line when no
            threshold reaches the target (None: not counted).
    """
    tp = filt.get("target_precision")
    if tp and not tp.get("achievable", True):
        target = tp["target_precision"]
        note = str(tp.get("note") or "")
        lead = f"no threshold reaches precision {target:g} "
        # the note says where it was looked for ("on the 16 held-out labels"); older notes as is
        where = note[len(lead) :] if note.startswith(lead) else (f"({note})" if note else "")
        count = f"{kept[0]} of {kept[1]} labels" if kept is not None else "only the labels"
        return (
            f"--target-precision {target:g} (IoU >= {tp['tau']:g}): no quality threshold reaches "
            f"it{' ' + where if where else ''}; kept {count} scoring above every held-out label "
            f"(quality >= {tp['threshold']:.3f}), with no promised precision: lower "
            "--target-precision, use --min-quality, or label more images and retrain"
        )
    if tp:
        return (
            f"threshold {tp['threshold']:.3f} for precision >= {tp['target_precision']} at IoU >= "
            f"{tp['tau']} (held-out precision {fmt(tp['precision'])}, recall {fmt(tp['recall'])})"
        )
    if filt.get("threshold") is not None:
        return f"threshold {filt['threshold']:.3f}"
    return None


def unusable_line(flagged: dict[str, int]) -> str | None:
    """The closing line for labels rejected whatever the filter because their image carries
    nothing to label (``summary.json`` ``n_flagged``, the flags of
    :func:`~sam2elnet.model.input_flags.is_unusable`: a black tile, a scene the model's
    scaling clips flat ...), e.g. ``rejected as unusable, whatever the filter: 2 x constant image
    (quality_flag in quality.csv)``; None when there are none. Other flags (``out of
    distribution``, ``empty label: ...``) only qualify a score and are not listed."""
    from sam2elnet.model.input_flags import unusable_counts

    parts = [f"{n} x {flag}" for flag, n in unusable_counts(flagged).items()]
    if not parts:
        return None
    return (
        f"rejected as unusable, whatever the filter: {', '.join(parts)} (quality_flag in "
        "quality.csv)"
    )


def flagged_line(flagged: dict[str, int]) -> str | None:
    """The closing line for labels whose score is flagged but which the filter may keep
    (``summary.json`` ``n_flagged`` less the unusable flags of :func:`unusable_line` and the
    evaluator-not-fitted flag, which a warning says already), e.g. ``1 label flagged (score not
    fully trusted): out of distribution (quality_flag in quality.csv)``; None when there are
    none."""
    from sam2elnet.model.input_flags import is_unusable
    from sam2elnet.model.quality import UNFITTED_FLAG

    counts = {
        flag: n for flag, n in flagged.items()
        if n and not is_unusable(flag) and not flag.startswith(UNFITTED_FLAG)
    }  # fmt: skip
    if not counts:
        return None
    parts = [f"{n} x {flag}" for flag, n in counts.items()]
    what = next(iter(counts)) if len(counts) == 1 else "; ".join(parts)
    return (
        f"{plural(sum(counts.values()), 'label')} flagged (score not fully trusted): {what} "
        "(quality_flag in quality.csv)"
    )


def none_kept_line(res: Any) -> str | None:
    """The warning of a job whose filter kept no label although some were usable (a user's
    choice, so exit 0; every label unusable is an error instead: SkipLog.nothing_usable), with
    the best score and what to do; None when a label was kept or there is no threshold."""
    s = res.summary
    if s["n_kept"] or not s["n_images"] or s.get("threshold") is None:
        return None
    from sam2elnet.model.input_flags import is_unusable

    scores = [_score(r) for r in res.rows if not is_unusable(r.get("quality_flag"))]
    scores = [v for v in scores if math.isfinite(v)]
    best = f"; the best scored {max(scores):.3f}" if scores else ""
    return (
        f"warning: the filter kept no label (quality >= {s['threshold']:.3f}{best}): all "
        f"{s['n_images']} are in rejected/; lower --min-quality / --target-precision to keep some "
        "(quality.csv lists every score)"
    )


def _score(row: dict[str, Any]) -> float:
    """A ``quality.csv`` row's predicted IoU; NaN when it has none (``""``, None, ``"nan"``: a
    row resumed from an earlier run) or it is not a number."""
    try:
        return float(row.get("predicted_iou") or "nan")
    except (TypeError, ValueError):
        return math.nan


def took(s: dict[str, Any]) -> str:
    """``in 11.7 s in all (model load 5.2 s, images 4.6 s)``: a folder job's total time from
    its start and, when ``summary.json`` records them, its model load and the images' time (the
    progress line's); the rest is listing images, starting workers, writing outputs."""
    line = f"in {s['seconds']:.1f} s"
    load, images = s.get("seconds_model_load"), s.get("seconds_images")
    if load is None or images is None:
        return line
    return f"{line} in all (model load {load:.1f} s, images {images:.1f} s)"


def print_folder(res: Any, what: str) -> None:
    """Print a finished folder job: counts, filter, warp, the outputs written, skipped images."""
    s = res.summary
    again = f" ({s['n_resumed']} done by the earlier run, --resume)" if s.get("n_resumed") else ""
    typer.echo(
        f"{what} {plural(s['n_images'], 'image')}{again} {took(s)}: kept {s['n_kept']}, "
        f"rejected {s['n_rejected']}, skipped {s['n_skipped']}; mean predicted IoU "
        f"{fmt(s['mean_predicted_iou'])}"
    )
    line = threshold_line(s.get("filter") or {}, (s["n_kept"], s["n_kept"] + s["n_rejected"]))
    if line:
        typer.echo(line)
    for flag_line in (unusable_line, flagged_line):
        said = flag_line(s.get("n_flagged") or {})
        if said:
            typer.echo(said)
    none_kept = none_kept_line(res)
    if none_kept:
        typer.echo(none_kept, err=True)
    if s.get("warp"):
        w = s["warp"]
        to = str(w["to"])  # "utm": a zone per image, chosen from its centre
        where = "the WGS 84 UTM zone of each image's centre" if to.lower() == "utm" else to
        typer.echo(
            f"label and probability GeoTIFFs warped onto a map grid in {where} (GCP "
            f"transformer {w['method']}; `elnet --verbose COMMAND ...` prints each grid)"
        )
    typer.echo(f"outputs in {res.out_dir} ({', '.join(written_outputs(Path(res.out_dir)))})")
    from sam2elnet.utils.run_warnings import repeated_notes

    for note in repeated_notes(s.get("warnings") or [], "image"):
        typer.echo(f"note: {note}", err=True)
    if s.get("missing_labels_note"):  # enhance --skip-missing
        typer.echo(f"note: {s['missing_labels_note']}", err=True)
    for note in s.get("unplaced_features_notes") or ():  # enhance --labels FILE
        typer.echo(f"note: {note}", err=True)
    if s["n_skipped"]:
        from sam2elnet.utils.batch import skip_line

        total = s["n_images"] + s["n_skipped"]
        typer.echo(skip_line(s["n_skipped"], total, Path(res.out_dir) / SKIPPED_CSV))
