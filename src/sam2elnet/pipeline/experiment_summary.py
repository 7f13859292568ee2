"""Several ``elnet experiment`` runs (different ``--seed``) side by side: ``elnet experiment-summary``.

One seed shows one draw of the labelled fraction, of SAM2-ELNet's and the downstream models'
initial weights and of the batch order; the spread between seeds shows how much of a difference
between settings is that luck. For every setting of both tables this puts each seed's test IoU
with its bootstrap 95 % interval (over test images, from each run's ``results.json``) next to the
mean and sample standard deviation over seeds, per sensor too, does the same for table 2's label
IoU (all pool images and the unlabelled part, per sensor) and repeats the verdict of the
protocol (do (c) and (d) reach 97 % of (a)?) for the mean and for each seed. On road data (rows
with road measures) the four road measures get their mean and sd over seeds too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.engine.metrics import ROAD_KEYS
from sam2elnet.errors import DataError, UserError
from sam2elnet.pipeline.experiment_config import (
    NO_ENHANCEMENT_DOWNSTREAM,
    table2_downstream,
    upgrade_identity,
)
from sam2elnet.pipeline.experiment_stats import ci_text
from sam2elnet.utils.atomic import write_text_atomic

IGNORED = {"seed", "downstream_curve_points"}
"""Options that may differ between the runs being combined (everything else must match)."""


def _load(run: Path) -> dict[str, Any]:
    path = Path(run) / "results.json"
    if not path.is_file():
        raise DataError(
            "no results.json; run `elnet experiment --out` there first (or give a finished run)",
            path,
        )
    try:
        r = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"results.json is not valid JSON ({e}); re-run the experiment", path) from e
    if not isinstance(r, dict) or "table1" not in r or "settings" not in r:
        raise DataError("not an elnet experiment results.json (no table1 / settings)", path)
    upgrade_identity(r["settings"])  # runs made before --split-seed
    r["_dir"] = str(run)
    return r


def _mean_sd(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    if not v:
        return None, None
    return float(np.mean(v)), (float(np.std(v, ddof=1)) if len(v) > 1 else None)


def summarize_runs(runs: Sequence[Path | str]) -> dict[str, Any]:
    """Combine finished experiment runs (same options, different seeds) into one summary dict.

    Returns ``{"runs": [{"dir", "seed"}], "rows": [...], "verdict": [...], "groups": [...],
    "notes": [...]}`` (table 2 is left out, with a note, when the runs trained no downstream
    models on its label sets: ``--no-enhancement-downstream``); each
    row has ``setting``, ``table``, ``title``, ``hand_labels``, ``seed_ids`` (the runs' seeds),
    ``seeds`` (per run: ``iou``,
    ``iou_ci``, ``f1``, ``precision``, ``recall``, ``miou``, ``by_group``), ``mean`` / ``sd`` of
    those measures over the runs (sample standard deviation, None for one value) and ``by_group``
    means; ``label_rows`` / ``label_groups``: table 2's label IoU over the runs, overall and per
    sensor (:func:`_label_rows`), kept without downstream models too. On road data (any row of
    a run carries ``road_quality`` ...; :func:`~sam2elnet.pipeline.experiment_stats.road_rows`)
    ``roads`` is True and each row's ``seeds`` / ``mean`` / ``sd`` hold the four road measures
    of :data:`~sam2elnet.engine.metrics.ROAD_KEYS` too (each run's value is length-summed over
    its test images; the mean is over runs). Raises UserError for fewer than two runs, repeated seeds or runs with other options,
    DataError for a folder without a readable results.json.
    """
    if len(runs) < 2:
        raise UserError("give at least two experiment folders (runs with different --seed)")
    loaded = [_load(Path(r)) for r in runs]
    seeds = [r["settings"].get("seed") for r in loaded]
    if len(set(seeds)) != len(seeds):
        raise UserError(
            f"the runs share a seed ({', '.join(map(str, seeds))}); combine runs of different --seed"
        )
    base = loaded[0]
    for r in loaded[1:]:
        diff = sorted(
            k
            for k in set(base["settings"]) | set(r["settings"])
            if k not in IGNORED and base["settings"].get(k) != r["settings"].get(k)
        )
        if diff:
            raise UserError(
                f"{r['_dir']} was run with other options than {base['_dir']} ({', '.join(diff)}); "
                "only runs that differ in --seed can be combined"
            )
    groups = sorted({g for r in loaded for g in (r.get("groups") or [])})
    roads = any(
        row.get(k) is not None
        for r in loaded
        for t in ("table1", "table2")
        for row in r.get(t) or []
        for k in ROAD_KEYS
    )
    measures = ("iou", "f1", "precision", "recall", "miou", *(ROAD_KEYS if roads else ()))
    rows = []
    # table 2 of label scores only (--no-enhancement-downstream) has no test IoU to summarise
    tables = ("table1", "table2") if table2_downstream(base) else ("table1",)
    notes = [] if table2_downstream(base) or not base.get("table2") else [NO_ENHANCEMENT_DOWNSTREAM]
    for table in tables:
        for ref in base.get(table) or []:
            key = ref["setting"]
            per = []
            for r in loaded:
                row = next((x for x in r.get(table) or [] if x["setting"] == key), {})
                per.append(
                    {m: row.get(m) for m in (*measures, "iou_ci", "iou_ci_left_out", "skipped")}
                    | {"by_group": row.get("by_group") or {}}
                )
            mean, sd = {}, {}
            for m in measures:
                mean[m], sd[m] = _mean_sd([p[m] for p in per])
            by_group = {
                g: dict(
                    zip(
                        ("iou", "iou_sd"),
                        _mean_sd([(p["by_group"].get(g) or {}).get("iou") for p in per]),
                        strict=True,
                    )
                )
                for g in groups
            }
            title = ref["title"] if table == "table1" else f"{ref.get('labels')}: {ref['title']}"
            rows.append(
                {
                    "setting": key,
                    "table": table,
                    "title": title,
                    "hand_labels": ref.get("hand_labels"),
                    "seeds": per,
                    "seed_ids": seeds,
                    "mean": mean,
                    "sd": sd,
                    "by_group": by_group,
                }
            )
    label_rows, label_groups = _label_rows(loaded)
    return {
        "runs": [{"dir": r["_dir"], "seed": r["settings"].get("seed")} for r in loaded],
        "data": base.get("data"),
        "groups": groups,
        "rows": rows,
        "roads": roads,
        "label_rows": label_rows,
        "label_groups": label_groups,
        "verdict": _verdict(rows),
        "notes": notes,
    }


LABEL_PARTS = (("all", "label_iou_all", "label_by_group"),
               ("unlabelled", "label_iou_unlabelled", "label_unlabelled_by_group"))  # fmt: skip
"""Table 2's label IoU: (part, overall key, per-sensor key) of a results.json row."""


def _label_rows(loaded: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Table 2's label IoU over the runs: one row per label set of the first run with ``title``,
    ``mean`` / ``sd`` ({part: value} for the parts of :data:`LABEL_PARTS`) and ``by_group``
    ({sensor: {part: mean, part_sd: sd}}); and the sensors (more than one only on SOS). Label
    IoU exists with or without downstream models, so these rows are kept either way."""
    groups = sorted(
        {
            g
            for r in loaded
            for row in r.get("table2") or []
            for g in row.get("label_by_group") or {}
        }
    )
    out = []
    for ref in loaded[0].get("table2") or []:
        per = [
            next((x for x in r.get("table2") or [] if x["setting"] == ref["setting"]), {})
            for r in loaded
        ]
        mean, sd, by = {}, {}, {g: {} for g in groups}
        for part, key, gkey in LABEL_PARTS:
            mean[part], sd[part] = _mean_sd([p.get(key) for p in per])
            for g in groups:
                vals = [((p.get(gkey) or {}).get(g) or {}).get("iou") for p in per]
                by[g][part], by[g][f"{part}_sd"] = _mean_sd(vals)
        if mean["all"] is None and mean["unlabelled"] is None:
            continue  # the dataset's own labels as their truth: nothing to score by
        title = f"{ref.get('labels')}: {ref['title']}"
        out.append(
            {"setting": ref["setting"], "title": title, "mean": mean, "sd": sd, "by_group": by}
        )
    return out, groups


def _degenerate_seeds(a: dict[str, Any], r: dict[str, Any], name: str) -> list[str]:
    """Per seed where (a) or the setting ``r`` (called ``name``) is degenerate (labelled every
    test pixel foreground, or none: :func:`~sam2elnet.pipeline.report_protocol.degenerate_rows`,
    the rule of each run's own verdict): ``"seed S: (a) is degenerate (all foreground) and ..."``.
    """
    from sam2elnet.pipeline.report_protocol import degenerate_rows

    out = []
    for run, s, t in zip(a["seed_ids"], r["seeds"], a["seeds"], strict=True):
        flag_r, flag_a = degenerate_rows([s, t])
        bad = [(n, f) for n, f in (("(a)", flag_a), (name, flag_r)) if f]
        if bad:
            out.append(f"seed {run}: " + " and ".join(f"{n} is degenerate ({f})" for n, f in bad))
    return out


def _verdict(rows: list[dict[str, Any]], target: float = 0.97) -> list[str]:
    """The (c)/(d)-vs-(a) sentences over the seeds. A comparison in which (a) or the setting is
    degenerate in any seed gives no verdict (its IoU is the test set's foreground share, or 0,
    whatever the labels; as each run's own results.md says), naming the seeds."""
    by = {r["setting"]: r for r in rows if r["table"] == "table1"}
    a = by.get("full")
    if not a or not a["mean"]["iou"]:
        return ["(a) all hand labels has no mean test IoU; no verdict."]
    out = []
    for key in ("auto_filtered", "fraction_auto_filtered"):
        r = by.get(key)
        if not r or r["mean"]["iou"] is None:
            continue
        saving = 1 - r["hand_labels"] / a["hand_labels"] if a["hand_labels"] else 0.0
        bad = _degenerate_seeds(a, r, r["title"].split(" ", 1)[0])
        if bad:
            out.append(
                f"{r['title']}: no verdict over {len(r['seeds'])} seeds: {'; '.join(bad)}, so "
                "those IoUs say nothing about the labels; train the downstream models longer "
                "(--downstream-epochs / --downstream-steps) or on more images. It uses "
                f"{r['hand_labels']} hand labels instead of {a['hand_labels']} "
                f"({100 * saving:.1f} % fewer)."
            )
            continue
        ratio = r["mean"]["iou"] / a["mean"]["iou"]
        per = [
            s["iou"] / t["iou"]
            for s, t in zip(r["seeds"], a["seeds"], strict=True)
            if s["iou"] is not None and t["iou"]
        ]
        hits = sum(x >= target for x in per)
        out.append(
            f"{r['title']} {'reaches' if ratio >= target else 'does not reach'} {target:.0%} of (a) "
            f"on the mean over {len(r['seeds'])} seeds: {100 * ratio:.1f} % "
            f"(per seed {', '.join(f'{100 * x:.1f} %' for x in per)}; >= {target:.0%} in {hits} of "
            f"{len(per)}), with {r['hand_labels']} instead of {a['hand_labels']} hand labels "
            f"({100 * saving:.1f} % fewer)."
        )
    return out


def _f(v: Any) -> str:
    return "–" if v is None else f"{v:.3f}"


def _cell(s: dict[str, Any]) -> str:
    if s.get("skipped"):
        return "skipped"
    if s.get("iou") is None:
        return "–"
    return f"{s['iou']:.3f} {ci_text(s)}".rstrip()


def _label_lines(summary: dict[str, Any]) -> list[str]:
    """Markdown: table 2's label IoU, mean over seeds (sd), overall and per sensor."""
    rows, groups = summary.get("label_rows") or [], summary.get("label_groups") or []
    if not rows:
        return []
    sens = groups if len(groups) > 1 else []
    cols = [
        c
        for part, name in (("all", "all"), ("unlabelled", "unlabelled part"))
        for c in (f"label IoU ({name})", *(f"{g} ({part})" for g in sens))
    ]
    lines = [
        "",
        "## Table 2 label IoU (mean over seeds, sd)",
        "",
        "Label IoU of each label set against the true labels, on all pool images and on the part "
        "SAM2-ELNet never saw a true label of" + (", also per sensor" if sens else "") + ".",
        "",
        "| labels: method | " + " | ".join(cols) + " |",
    ]
    ncol = 2 * (1 + len(sens))
    lines.append("|---|" + "---:|" * ncol)

    def cell(m: float | None, sd: float | None) -> str:
        return f"{_f(m)} ({_f(sd)})"

    for row in rows:
        cells = []
        for part, _key, _gkey in LABEL_PARTS:
            cells.append(cell(row["mean"][part], row["sd"][part]))
            cells += [
                cell(row["by_group"][g][part], row["by_group"][g][f"{part}_sd"]) for g in sens
            ]
        lines.append(f"| {row['title']} | " + " | ".join(cells) + " |")
    return lines


def _road_lines(summary: dict[str, Any]) -> list[str]:
    """Markdown: the road measures of every row, mean over seeds (sd); none without roads."""
    if not summary.get("roads"):
        return []
    names = ("correctness", "completeness", "quality", "connectivity")
    lines = [
        "",
        "## Road measures (mean over seeds, sd)",
        "",
        "Centre-line measures of each run's test images (Wiedemann et al. 1998: lengths summed "
        "over the images, 3 px buffer; docs/evaluation.md), mean and sample sd over the seeds.",
        "",
        "| setting | " + " | ".join(f"road {n}" for n in names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for row in summary["rows"]:
        cells = [f"{_f(row['mean'].get(k))} ({_f(row['sd'].get(k))})" for k in ROAD_KEYS]
        lines.append(f"| {row['title']} | " + " | ".join(cells) + " |")
    return lines


def render_summary(summary: dict[str, Any]) -> str:
    """Markdown: the per-seed / mean table of both experiment tables, per sensor, and the verdict."""
    runs = summary["runs"]
    seeds = [f"seed {r['seed']}" for r in runs]
    lines = [
        f"# SAM2-ELNet protocol over {len(runs)} seeds",
        "",
        f"Data: `{summary.get('data')}`. Runs: "
        + ", ".join(f"`{r['dir']}` (seed {r['seed']})" for r in runs)
        + ".",
        "",
        "Test IoU per seed with its bootstrap 95 % confidence interval over test images; mean and "
        "sample standard deviation (sd) over the seeds; F1, precision, recall and two-class mIoU "
        "are seed means.",
        "",
        "| setting | hand labels | mean IoU | sd | "
        + " | ".join(seeds)
        + " | F1 | precision | recall | mIoU |",
        "|---|---:|---:|---:|" + "---:|" * len(seeds) + "---:|---:|---:|---:|",
    ]
    for row in summary["rows"]:
        m = row["mean"]
        lines.append(
            f"| {row['title']} | {row['hand_labels']} | {_f(m['iou'])} | {_f(row['sd']['iou'])} | "
            + " | ".join(_cell(s) for s in row["seeds"])
            + f" | {_f(m['f1'])} | {_f(m['precision'])} | {_f(m['recall'])} | {_f(m['miou'])} |"
        )
    if len(summary["groups"]) > 1:
        lines += [
            "",
            "## Per sensor (mean IoU over seeds, sd)",
            "",
            "| setting | " + " | ".join(summary["groups"]) + " |",
            "|---|" + "---:|" * len(summary["groups"]),
        ]
        for row in summary["rows"]:
            cells = [
                f"{_f(row['by_group'][g]['iou'])} ({_f(row['by_group'][g]['iou_sd'])})"
                for g in summary["groups"]
            ]
            lines.append(f"| {row['title']} | " + " | ".join(cells) + " |")
    if summary.get("notes"):
        lines += [""] + [f"Note: {n}; their rows are left out." for n in summary["notes"]]
    lines += _road_lines(summary)
    lines += _label_lines(summary)
    if summary["verdict"]:
        lines += ["", "## Verdict", ""] + [f"- {v}" for v in summary["verdict"]]
    return "\n".join(lines) + "\n"


def write_summary(runs: Sequence[Path | str], out: Path | str) -> dict[str, Any]:
    """:func:`summarize_runs` + :func:`render_summary` written atomically to ``out`` (Markdown);
    returns the summary dict. Raises as :func:`summarize_runs`."""
    summary = summarize_runs(runs)
    write_text_atomic(Path(out), render_summary(summary))
    return summary


__all__ = ["render_summary", "summarize_runs", "write_summary"]
