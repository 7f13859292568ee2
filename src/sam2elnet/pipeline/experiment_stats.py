"""The protocol's numbers made from per-image counts: bootstrap intervals (and their text, the
one place tables format them), per-sensor rows, road-measure rows, table rows, verdict lines and
convergence.

Part of :mod:`sam2elnet.pipeline.experiment`; the counts themselves (label scores vs the true
masks, ``per_image.csv``) come from :mod:`sam2elnet.pipeline.experiment_scores`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.engine.metrics import ROAD_KEYS, bootstrap_iou_interval, bootstrap_ratio_interval
from sam2elnet.option_values import ROAD_BUFFER_PX
from sam2elnet.pipeline.experiment_config import (
    BOOTSTRAP_SEED,
    CONVERGED_GAIN,
    TABLE1_SETTINGS,
    TARGET_RATIO,
    table2_downstream,
)
from sam2elnet.pipeline.experiment_split import Split


def group_of(split: Split, ids: Sequence[str]) -> dict[str, str]:
    """Reporting group of each id: the SOS sensor (``palsar`` / ``sentinel``, the sub-folder the
    image lies in) for the SOS layout, else one group ``all``."""
    from sam2elnet.data.layout_places import SOS_SENSORS

    out = {}
    for i in ids:
        g = "all"
        if split.layout == "sos":
            parts = Path(split.images[i]).parts
            g = next((p for p in reversed(parts) if p in SOS_SENSORS), "all")
        out[i] = g
    return out


def _set_ci(d: dict[str, Any], counts: Any, seed: int) -> None:
    """``d["iou_ci"]`` = the bootstrap 95 % interval of ``counts`` ([low, high], None for fewer than
    2 images or when undefined) and ``d["iou_ci_left_out"]`` = resamples without foreground left
    out of it, only when there were any (:mod:`sam2elnet.engine.metrics.bootstrap`)."""
    iv = None if counts is None or len(counts) < 2 else bootstrap_iou_interval(counts, seed=seed)
    d["iou_ci"] = [iv.low, iv.high] if iv is not None and iv.defined else None
    if iv is not None and iv.left_out:
        d["iou_ci_left_out"] = iv.left_out


def ci_text(d: dict[str, Any]) -> str:
    """The bootstrap interval of a row or group (``iou_ci``, ``iou_ci_left_out``) as the tables
    show it: ``[0.641, 0.990]``, ``[0.641, 0.990] (12 resamples without foreground left out)``,
    ``(no CI: 156 resamples without foreground)`` when too many were, or "" without an interval."""
    ci, left = d.get("iou_ci"), int(d.get("iou_ci_left_out") or 0)
    if ci:
        return f"[{ci[0]:.3f}, {ci[1]:.3f}]" + (
            f" ({left} resamples without foreground left out)" if left else ""
        )
    return f"(no CI: {left} resamples without foreground)" if left else ""


def label_group_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-sensor label IoU of table 2's label sets, one dict per (row, sensor): ``labels``,
    ``method``, ``sensor``, ``pool_images``, ``label_iou_all`` and ``label_iou_all_ci`` (text,
    :func:`ci_text`), ``unlabelled_images``, ``label_iou_unlabelled`` and its ``_ci``; from the
    rows' ``label_by_group`` / ``label_unlabelled_by_group``. Empty when the pool holds one sensor
    (group) only. results.md and report.html both show these rows."""
    groups = sorted({g for row in rows for g in row.get("label_by_group") or {}})
    if len(groups) < 2:
        return []
    out = []
    for row in rows:
        for g in groups:
            ga = (row.get("label_by_group") or {}).get(g)
            gu = (row.get("label_unlabelled_by_group") or {}).get(g) or {}
            if not ga:
                continue
            out.append(
                {
                    "labels": row["labels"],
                    "method": row["title"],
                    "sensor": g,
                    "pool_images": ga["n"],
                    "label_iou_all": ga.get("iou"),
                    "label_iou_all_ci": ci_text(ga),
                    "unlabelled_images": gu.get("n", 0),
                    "label_iou_unlabelled": gu.get("iou"),
                    "label_iou_unlabelled_ci": ci_text(gu),
                }
            )
    return out


def group_rows(
    rows: list[dict[str, Any]], groups: Sequence[str], name: Any = None
) -> list[dict[str, Any]]:
    """Per-sensor test scores of table rows (``by_group`` from :func:`add_intervals`), one dict
    per (row, sensor) in ``groups`` order: ``title`` (``name(row)``, default the row's title),
    ``sensor``, ``test`` (test images of that sensor), ``iou`` and ``iou_ci`` (text,
    :func:`ci_text`), ``f1``, ``precision``, ``recall``, ``miou`` (0-1 floats). Rows without
    that sensor (skipped settings) are left out; empty for fewer than 2 groups. results.md
    ('Table 1 per sensor') and report.html both show these rows."""
    if len(groups) < 2:
        return []
    out = []
    for row in rows:
        for g in groups:
            gr = (row.get("by_group") or {}).get(g)
            if not gr:
                continue
            out.append(
                {
                    "title": name(row) if name else row["title"],
                    "sensor": g,
                    "test": gr["n"],
                    "iou": gr.get("iou"),
                    "iou_ci": ci_text(gr),
                    **{k: gr.get(k) for k in ("f1", "precision", "recall", "miou")},
                }
            )
    return out


def table2_name(row: dict[str, Any]) -> str:
    """A table-2 row's name in the per-sensor tables: ``<training labels>: <method>``."""
    return f"{row['labels']}: {row['title']}"


def sensor_tables(results: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The per-sensor tables of a ``results.json`` dict, in page order, empty ones left out:
    ``Table 1 per sensor`` (test scores, :func:`group_rows`), ``Table 2 per sensor`` (test scores
    of the downstream models trained on table 2's label sets, rows named by :func:`table2_name`;
    only when they were trained, :func:`~sam2elnet.pipeline.experiment_config.table2_downstream`)
    and ``Table 2 per sensor: label IoU`` (:func:`label_group_rows`). report.html shows them;
    results.md shows the same rows."""
    groups = list(results.get("groups") or [])
    table2 = list(results.get("table2") or [])
    tables = {
        "Table 1 per sensor": group_rows(list(results.get("table1") or []), groups),
        "Table 2 per sensor": (
            group_rows(table2, groups, table2_name) if table2_downstream(results) else []
        ),
        "Table 2 per sensor: label IoU": label_group_rows(table2),
    }
    return {title: rows for title, rows in tables.items() if rows}


def road_note(results: Mapping[str, Any]) -> str:
    """What a road-measure table holds (the sentence under the table in results.md, a note in
    report.html), with the run's road buffer: ``settings`` ``road_buffer`` (px) or
    ``road_buffer_m`` (metres, with the per-image px of ``road_buffer_px_range``); results
    without them: the default :data:`~sam2elnet.option_values.ROAD_BUFFER_PX`. It said "within
    3 px" for every run, also for one made with ``--road-buffer 5``."""
    from sam2elnet.engine.road_buffer import buffer_said

    s = results.get("settings") or {}
    m = s.get("road_buffer_m")
    px = s.get("road_buffer") if s.get("road_buffer") is not None else ROAD_BUFFER_PX
    said = buffer_said(
        None if m is not None else px, m, results.get("road_buffer_px_range") if m else None,
        by_image=True,
    )  # fmt: skip
    flag = "--road-buffer-m" if m is not None else "--road-buffer"
    return (
        "Road measures of the same models: centre lines of prediction and truth matched "
        f"within {said} ({flag}), lengths summed over the test images (Wiedemann et al. 1998; "
        "docs/evaluation.md, 'Road measures')"
    )


def road_rows(
    rows: Sequence[dict[str, Any]], names: Sequence[str] = ("title",)
) -> list[dict[str, Any]]:
    """The road-measure table of protocol table rows (road data; empty for other data).

    Args:
        rows: results.json ``table1`` / ``table2`` rows; a row carries ``road_correctness``,
            ``road_completeness``, ``road_quality`` and ``road_connectivity`` (each 0-1, centre-line
            lengths summed over the test images, :func:`sam2elnet.engine.metrics.road_scores`)
            when its downstream model was scored on road data.
        names: the columns naming a row, copied first (table 1: ``title``; table 2: ``labels``
            and ``title``).

    Returns:
        One dict per row that has at least one road measure: the ``names`` columns, test ``iou``
        and ``f1`` (pixel-aggregated, 0-1) and the four road measures in
        :data:`~sam2elnet.engine.metrics.ROAD_KEYS` order (None where a row lacks one).
    """
    return [
        {k: row.get(k) for k in (*names, "iou", "f1", *ROAD_KEYS)}
        for row in rows
        if any(row.get(k) is not None for k in ROAD_KEYS)
    ]


def add_intervals(
    row: dict[str, Any],
    per_image: Sequence[Sequence[int]] | None,
    ids: Sequence[str],
    groups: dict[str, str],
    seed: int = BOOTSTRAP_SEED,
) -> None:
    """Add ``iou_ci`` (bootstrap 95 % interval over images; ``iou_ci_left_out`` too when resamples
    without foreground were left out of it: :func:`ci_text`) and ``by_group`` (per sensor: n, IoU,
    its interval, F1, precision, recall, two-class mIoU) to a table row, in place.

    ``per_image`` are the (N, 4) counts of ``ids`` in that order; None (a skipped setting) adds
    ``iou_ci = None`` and no groups. Raises ValueError when counts and ids differ in length.
    """
    from sam2elnet.engine.downstream_score import scores_from_counts

    if per_image is None or len(ids) == 0:
        row["iou_ci"] = None
        row["by_group"] = {}
        return
    c = np.asarray(per_image, dtype=np.int64).reshape(-1, 4)
    if len(c) != len(ids):
        raise ValueError(f"{len(c)} per-image counts for {len(ids)} images")
    _set_ci(row, c, seed)
    by: dict[str, Any] = {}
    for g in sorted(set(groups[i] for i in ids)):
        sel = np.array([groups[i] == g for i in ids])
        sc = scores_from_counts(c[sel].sum(axis=0))
        by[g] = {
            "n": int(sel.sum()),
            **{k: sc[k] for k in ("iou", "f1", "precision", "recall", "miou")},
        }
        _set_ci(by[g], c[sel], seed)
    row["by_group"] = by


def _pct(v: float) -> str:
    return f"{100 * v:.1f} %"


def verdict_lines(
    table1: list[dict[str, Any]],
    per_image: dict[str, Any],
    target: float = TARGET_RATIO,
    degenerate: Mapping[str, str | None] | None = None,
) -> list[str]:
    """Plain sentences: do (c) and (d) reach ``target`` x the IoU of (a), and at what labelling cost.

    The ratio's interval is a paired bootstrap over the same test images; the verdict is
    "reaches" when the point ratio is >= ``target``, and says whether the interval's lower end
    clears it too. Resamples on which the ratio is undefined ((a) has IoU 0, or no image has
    foreground: few test images) are left out of the interval, or leave no interval when over
    2.5 % of them; it says which and how many
    (:func:`sam2elnet.engine.metrics.bootstrap_ratio_interval`).

    ``degenerate`` maps a setting key to ``"all foreground"`` / ``"no foreground"`` when its
    model is degenerate (:func:`~sam2elnet.pipeline.report_protocol.degenerate_rows`): a
    comparison with such a model gives no verdict (its IoU is the test set's foreground share,
    or 0, whatever its labels), and the line says so instead of "reaches". A model whose test
    IoU still rose over its last learning-curve interval (:func:`convergence`) is named: the
    ratio is then one at equal updates, not at convergence.
    """
    rows = {r["setting"]: r for r in table1}
    flags = {k: v for k, v in (degenerate or {}).items() if v}
    a = rows.get("full")
    if not a or a.get("iou") in (None, 0) or a.get("skipped"):
        why = "was not trained" if not a or a.get("skipped") else "has test IoU 0"
        return [f"{TABLE1_SETTINGS['full']} {why}, so no ratio to it can be given."]
    out = []
    for key in ("auto_filtered", "fraction_auto_filtered"):
        r = rows.get(key)
        name = TABLE1_SETTINGS[key].split(" ", 1)[0]
        if not r or r.get("skipped") or r.get("iou") is None:
            out.append(f"{name} was not trained ({(r or {}).get('skipped', 'no result')}).")
            continue
        ratio = r["iou"] / a["iou"]
        saving = 1.0 - r["hand_labels"] / a["hand_labels"] if a["hand_labels"] else 0.0
        cost = (
            f"It uses {r['hand_labels']} hand labels instead of {a['hand_labels']} "
            f"({_pct(saving)} fewer)."
        )
        bad = [(n, flags[k]) for n, k in (("(a)", "full"), (name, key)) if k in flags]
        if bad:
            out.append(
                f"{TABLE1_SETTINGS[key]}: no verdict: "
                + " and ".join(f"{n} is degenerate ({kind})" for n, kind in bad)
                + f", so IoU {r['iou']:.3f} vs {a['iou']:.3f} ({_pct(ratio)} of (a)) says "
                "nothing about the labels; train the downstream models longer "
                f"(--downstream-epochs / --downstream-steps) or on more images. {cost}"
            )
            continue
        iv = None
        if per_image.get(key) is not None and per_image.get("full") is not None:
            iv = bootstrap_ratio_interval(per_image[key], per_image["full"], seed=BOOTSTRAP_SEED)
        ci = None if iv is None else iv.as_tuple()
        # resamples on which the ratio is undefined (left out of the interval, or too many of them)
        undefined = (
            f"(a) has IoU 0, or no image has foreground, on {iv.left_out} of the {iv.resamples} "
            f"resamples of the {len(per_image[key])} test images"
            if iv is not None and iv.left_out
            else ""
        )
        reach = "reaches" if ratio >= target else "does not reach"
        if ci is not None and ci[0] < target <= ci[1]:  # the headline must not decide either
            reach = "is not shown to reach or to miss"
        text = (
            f"{TABLE1_SETTINGS[key]} {reach} {target:.0%} of (a): IoU {r['iou']:.3f} vs "
            f"{a['iou']:.3f} = {_pct(ratio)} of (a)"
        )
        if ci is not None:
            text += f" (paired bootstrap 95 % CI of the ratio {_pct(ci[0])} – {_pct(ci[1])}"
            if ci[0] >= target:
                text += f"; the whole interval is above {target:.0%})"
            elif ci[1] < target:
                text += f"; the whole interval is below {target:.0%})"
            else:
                text += f"; the interval contains {target:.0%}, so the data cannot decide)"
            if undefined:
                text = text[:-1] + f"; left out: {undefined})"
        elif undefined:
            text += f" (no bootstrap interval of the ratio: {undefined})"
        ca, cr = a.get("iou_ci"), r.get("iou_ci")
        if ca and cr:
            overlap = cr[0] <= ca[1] and ca[0] <= cr[1]
            text += "; the two IoUs' 95 % CIs " + ("overlap" if overlap else "do not overlap")
        rising = [
            f"{n} was still rising at its last learning-curve point ({gain:+.3f})"
            for n, row in (("(a)", a), (name, r))
            for gain, status in [convergence(row.get("curve") or [])]
            if status == "still rising"
        ]
        if rising:
            text += (
                f"; {' and '.join(rising)}, so the ratio is at equal updates, not at "
                "convergence: more --downstream-steps may change it"
            )
        out.append(f"{text}. {cost}")
    return out


def table_row(key: str, title: str, r: dict, cost: int, n_train: int) -> dict[str, Any]:
    m = r.get("metrics", {})
    return {
        "setting": key,
        "title": title,
        "hand_labels": cost,
        "train_images": n_train,
        "iou": m.get("iou"),
        "f1": m.get("f1"),
        "precision": m.get("precision"),
        "recall": m.get("recall"),
        "miou": m.get("miou"),
        **{k: m[k] for k in ROAD_KEYS if k in m},
        "train_seconds": r.get("train_seconds"),
        "curve": r.get("curve") or [],
        "skipped": r.get("skipped"),
    }


def convergence(curve: Sequence[dict[str, Any]]) -> tuple[float | None, str]:
    """(IoU change between the last two curve points, "converged" / "still rising" / "falling");
    (None, "no curve") with fewer than two points. Threshold: :data:`CONVERGED_GAIN`."""
    pts = [p for p in curve if p.get("iou") is not None]
    if len(pts) < 2:
        return None, "no curve"
    gain = float(pts[-1]["iou"] - pts[-2]["iou"])
    if abs(gain) <= CONVERGED_GAIN:
        return gain, "converged"
    return gain, "still rising" if gain > 0 else "falling"
