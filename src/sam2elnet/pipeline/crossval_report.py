"""The summary of an ``elnet cv`` run: mean +- std over folds, ``cv.md`` and ``groups.png``.

:mod:`sam2elnet.pipeline.crossval` runs the folds and writes ``cv.json``; this module turns the
per-fold results into the summary kept in it (:func:`summarise`), the Markdown tables of ``cv.md``
(:func:`render_markdown`) and, for the cross-domain mode, the thumbnails of both appearance groups
(:func:`groups_montage`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.option_values import trunk_scale_words
from sam2elnet.pipeline.crossval_score import buffer_of, buffer_words
from sam2elnet.pipeline.glossary import road_buffer_words
from sam2elnet.utils.advice import plural
from sam2elnet.utils.atomic import atomic_path

__all__ = [
    "GAPS",
    "chosen_by",
    "fmt",
    "groups_montage",
    "mean_std",
    "pm",
    "render_markdown",
    "summarise",
]


def mean_std(values: Sequence[float | None]) -> dict[str, float | None]:
    """``{"mean", "std" (ddof=1; None for one value), "n"}`` of the values that are not None."""
    v = np.array([x for x in values if x is not None], dtype=float)
    if v.size == 0:
        return {"mean": None, "std": None, "n": 0}
    return {
        "mean": float(v.mean()),
        "std": float(v.std(ddof=1)) if v.size > 1 else None,
        "n": int(v.size),
    }


#: cross-domain gaps (in-domain minus cross-domain, per direction, then mean ± std): summary
#: key -> (the score it is of, its words); road quality only on road data
GAPS = {"iou_gap": ("iou", "IoU"), "road_quality_gap": ("road_quality", "road quality")}


def summarise(folds: list[dict[str, Any]], keys: Sequence[str]) -> dict[str, Any]:
    """Mean and std over folds of every score in ``keys`` (and ``quality_spearman``), per test
    set; the :data:`GAPS` (``iou_gap``: in-domain minus cross-domain IoU; ``road_quality_gap``
    when ``keys`` has road quality) when both test sets are there."""
    names = list(dict.fromkeys(n for f in folds for n in f["tests"]))
    out: dict[str, Any] = {}
    for n in names:
        out[n] = {
            k: mean_std([f["tests"][n].get(k) for f in folds if n in f["tests"]])
            for k in (*keys, "quality_spearman")
        }
    if "in_domain" in names and "cross_domain" in names:
        for gap, (k, _) in GAPS.items():
            if k != "iou" and k not in keys:
                continue
            pairs = [
                (f["tests"]["in_domain"].get(k), f["tests"]["cross_domain"].get(k)) for f in folds
            ]
            out[gap] = mean_std([a - b for a, b in pairs if a is not None and b is not None])
    return out


def fmt(v: Any, nd: int = 3) -> str:
    """A score with ``nd`` decimals, or an en dash for None."""
    return "–" if v is None else f"{float(v):.{nd}f}"


def pm(s: Mapping[str, Any]) -> str:
    """``mean ± std`` of a :func:`mean_std` dict with 3 decimals (``mean`` alone without a std,
    an en dash without a mean): the one format of cv.md, the terminal and report.html."""
    if s.get("mean") is None:
        return "–"
    return f"{s['mean']:.3f}" + (f" ± {s['std']:.3f}" if s.get("std") is not None else "")


_TITLES = {
    "iou": "IoU",
    "f1": "F1",
    "precision": "precision",
    "recall": "recall",
    "mean_image_iou": "mean image IoU",
    "road_correctness": "road correctness",
    "road_completeness": "road completeness",
    "road_quality": "road quality",
    "road_connectivity": "road connectivity",
    "quality_spearman": "quality Spearman",
}


def _trunk(scale: Any) -> str:
    """cv.json's ``trunk_scale`` in words: one scale (``trunk at half resolution (2)``), else
    as recorded (``mixed: fold-1 1, fold-2 2``, ``not recorded``)."""
    return (
        trunk_scale_words(scale) if isinstance(scale, int) else f"trunk {scale or 'not recorded'}"
    )


def chosen_by(r: dict[str, Any]) -> str:
    """The option that left folds out of a cv.json record ``r``: ``--fold`` or ``--max-folds``
    (records written before ``--fold`` existed: ``--max-folds``)."""
    return r.get("folds_chosen_by") or "--max-folds"


def render_markdown(r: dict[str, Any]) -> str:
    """cv.md: per-fold table(s), mean ± std, settings."""
    keys = [*r["keys"], "quality_spearman"]
    head = "| fold | test set | train + val | test | " + " | ".join(_TITLES[k] for k in keys) + " |"
    rule = "|---|---|---:|---:|" + "---:|" * len(keys)
    mode = r["mode"]
    title = f"{r['folds_total']}-fold cross-validation" if mode == "kfold" else "cross-domain split"
    lines = [
        f"# SAM2-ELNet {title}",
        "",
        f"Data: `{r['data']}` ({r['n_images']} labelled images, domain: {r['domain']} — "
        f"{r['domain_reason']}).",
        "",
    ]
    if mode == "cross-domain":
        g = r["groups"]
        lines += [
            f"Groups by appearance ({g['describe']}); see `groups.png`. Each direction trains on "
            f"{1 - r['in_domain_fraction']:.0%} of one group, tests in-domain on the rest of that "
            "group and cross-domain on the whole other group.",
            "",
        ]
    if r["folds_done"] < r["folds_total"]:
        lines += [
            f"**Only {r['folds_done']} of {r['folds_total']} folds "
            f"{'was' if r['folds_done'] == 1 else 'were'} run** "
            f"({', '.join(f['fold'] for f in r['folds'])}; {chosen_by(r)}).",
            "",
        ]
    how = "pixel-aggregated over each test set"
    if "road_quality" in keys:  # summed centre-line lengths and road pieces, not pixels
        how += "; road measures: centre-line lengths and road pieces summed over it"
    lines += [f"## Per fold ({how})", "", head, rule]
    for f in r["folds"]:
        for name, t in f["tests"].items():
            lines.append(
                f"| {f['fold']} | {name.replace('_', '-')} | {f.get('n_train', '–')} + "
                f"{f.get('n_val', '–')} | "
                f"{t['n_images']} | " + " | ".join(fmt(t.get(k)) for k in keys) + " |"
            )
    unusable = [
        f"{f['fold']} {name.replace('_', '-')}: {t['unusable']}"
        for f in r["folds"]
        for name, t in f["tests"].items()
        if t.get("unusable")
    ]
    if unusable:
        lines += [
            "",
            "**Nothing usable** (every label rejected whatever the filter: the test images "
            "hold nothing to label, or the model's scaling clips them flat; scored as they are): "
            + "; ".join(unusable)
            + ".",
        ]
    lines += _empty_spearman_lines(r["folds"])
    val = [
        f"{f['fold']} {fmt(f.get('best_val_iou_annotate'))} / "
        f"{fmt(f.get('best_val_iou_enhance'))} (coarse {fmt(f.get('best_val_iou_coarse'))})"
        for f in r["folds"]
        if f.get("best_val_iou_annotate") is not None
    ]
    if val:
        rules = sorted({str(f["selection"]) for f in r["folds"] if f.get("selection")})
        how = (
            f"selected by {'; '.join(rules)}"
            if rules
            else "selected by the training log's `val IoU`"
        )
        lines += [
            "",
            "Validation IoU at each fold's best epoch, annotation / enhancement of a simulated "
            f"coarse label (the best epoch was {how}): "
            + "; ".join(val)
            + ". Compare the test IoUs with the annotation value.",
        ]
    lines += [
        "",
        "## Mean ± standard deviation over folds",
        "",
        "| test set | " + " | ".join(_TITLES[k] for k in keys) + " |",
        "|---|" + "---:|" * len(keys),
    ]
    for name, s in r["summary"].items():
        if name in GAPS:
            continue
        lines.append(f"| {name.replace('_', '-')} | " + " | ".join(pm(s[k]) for k in keys) + " |")
    for gap, (_, words) in GAPS.items():
        if gap in r["summary"]:
            n = r["summary"][gap]["n"]
            lines += [
                "",
                f"In-domain minus cross-domain {words}: **{pm(r['summary'][gap])}** "
                f"(over {plural(n, 'direction')}).",
            ]
    from sam2elnet.config import AUTO_UPDATES

    t = r["train"]
    lines += [
        "",
        "## Settings",
        "",
        f"- Training options: {', '.join(f'{k}={v}' for k, v in sorted(t.items())) or 'defaults'}"
        f"; seed {r['seed']}; the domain recipe (loss, augmentation) is in each fold's log and "
        "`folds/*/run/model.pt`.",
        f"- Precision of the folds' training: {r.get('precision_resolved', 'not recorded')} "
        f"(--precision {r.get('precision_option', t.get('precision', 'auto'))}; a reused fold "
        "keeps the precision it was trained with).",
        f"- Trunk of the folds' networks: {_trunk(r.get('trunk_scale'))} (--trunk-scale "
        f"{t.get('trunk_scale') or 'auto'}; a reused fold keeps the scale it was trained with).",
        f"- Epochs of the folds' training: {r.get('epochs') or 'not recorded'} (--epochs "
        f"{t.get('epochs') or f'auto: about {AUTO_UPDATES:,} optimiser updates'}).",
        *_road_buffer_lines(r),
        f"- Wall time this run: {r['seconds_this_run']:.0f} s"
        + (
            f" ({', '.join(r['folds_reused'])} reused as they were: trained and scored by an "
            "earlier run or copied in)."
            if r.get("folds_reused")
            else "."
        ),
        *_made_in_lines(r.get("folds_made_in") or {}),
        "",
    ]
    return "\n".join(lines)


def _made_in_lines(made_in: Mapping[str, str]) -> list[str]:
    """cv.md's line on folds trained in another folder and copied in (cv.json's
    ``folds_made_in``): where, and that the paths inside their files name that folder."""
    if not made_in:
        return []
    where = ", ".join(f"{name} in `{folder}`" for name, folder in made_in.items())
    return [
        f"- {plural(len(made_in), 'fold')} trained in another folder and copied in: {where}. "
        "The paths inside their files (`pred-*/evaluation.json`, `pred-*/quality.csv`, "
        "`run/config.yaml`) name that folder as it was; the same files are here under "
        "`folds/`, which this run read."
    ]


def _empty_spearman_lines(folds: Sequence[Mapping[str, Any]]) -> list[str]:
    """cv.md's line under the per-fold table on why its quality Spearman is empty (–), one
    reason per group of rows (each test set's ``quality_spearman_why``); none when every row
    has one."""
    rows = [(f["fold"], n, t) for f in folds for n, t in f["tests"].items()]
    empty: dict[str, list[str]] = {}
    for fold, name, t in rows:
        if t.get("quality_spearman") is None:
            why = t.get("quality_spearman_why") or "not recorded (a fold finished before it was)"
            empty.setdefault(why, []).append(f"{fold} {name.replace('_', '-')}")
    if not empty:
        return []
    if len(empty) == 1 and len(next(iter(empty.values()))) == len(rows):
        return ["", f"Quality Spearman is empty (–) in every row: {next(iter(empty))}."]
    said = "; ".join(f"{', '.join(where)}: {why}" for why, where in empty.items())
    return ["", f"Quality Spearman is empty (–) where it cannot be measured: {said}."]


def _road_buffer_lines(r: Mapping[str, Any]) -> list[str]:
    """cv.md's settings line on the road buffer (road data only): the test scores' buffer, and
    the validation rows' where a fold's training logged them with another one."""
    if r.get("domain") != "roads" or (r.get("road_buffer"), r.get("road_buffer_m")) == (None, None):
        return []  # runs before the buffer was recorded (in metres road_buffer is None)
    m, span = r.get("road_buffer_m"), r.get("road_buffer_px_range")
    b = buffer_of(r["road_buffer"], m)  # as a fold records its validation buffer
    words = road_buffer_words(
        r["road_buffer"] if m is None else None,  # metres: each test image's px from its own
        m,
        "px" if m is None else "m",
        px_range=span,
        subject="Road measures of the test scores",
        by_image=True,
    )
    line = f"- {words}."
    val = r.get("val_road_buffer")
    if val is not None and val != "not recorded" and val != b:
        said = buffer_words(val)
        line += (
            f" The validation road measures logged during the folds' training (`run/metrics.csv`, "
            f"the fold reports) used {said}: a fold finished before the buffer changed was scored "
            "again from its test predictions, not trained again (its best epoch was chosen by "
            "IoU, which the buffer does not change)."
        )
    return [line]


def groups_montage(
    images: dict[str, Path], groups: tuple[list[str], list[str]], path: Path
) -> None:
    """groups.png: up to 8 thumbnails per group, group A on top, group B below."""
    import cv2

    from sam2elnet.data.images import read_image

    side, n = 96, 8
    rows = []
    for ids in groups:
        pick = [ids[int(j)] for j in np.linspace(0, len(ids) - 1, min(n, len(ids)))]
        tiles = []
        for i in pick:
            data = read_image(images[i]).data
            a = np.asarray(data)[:3].astype(np.float64)
            if np.issubdtype(data.dtype, np.integer):
                a = a / float(np.iinfo(data.dtype).max)
            else:  # float rasters: their own 1..99 % range
                lo, hi = np.nanpercentile(a, [1, 99])
                a = (np.nan_to_num(a) - lo) / max(float(hi - lo), 1e-12)
            a = np.clip(a, 0, 1)
            if a.shape[0] < 3:
                a = np.repeat(a[:1], 3, axis=0)
            t = cv2.resize((a.transpose(1, 2, 0) * 255).astype(np.uint8), (side, side))
            tiles.append(t)
        tiles += [np.full((side, side, 3), 255, np.uint8)] * (n - len(tiles))
        rows.append(np.concatenate(tiles, axis=1))
    gap = np.full((8, rows[0].shape[1], 3), 255, np.uint8)
    img = np.concatenate([rows[0], gap, rows[1]], axis=0)
    with atomic_path(path) as tmp:
        cv2.imwrite(str(tmp), np.ascontiguousarray(img[:, :, ::-1]))
