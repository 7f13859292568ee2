"""The protocol's figures and page: ``results.png`` (test IoU and labelling cost per setting),
``curves.png`` (learning curves) and ``report.html`` (tables, the figure, the auto-labels next to
the held-aside truth).

Part of :mod:`sam2elnet.pipeline.experiment`; ``results.md`` is written by
:mod:`sam2elnet.pipeline.experiment_markdown`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.data.runfolder import REPORT_HTML
from sam2elnet.pipeline.experiment_config import ExperimentConfig, table2_downstream
from sam2elnet.pipeline.experiment_split import Split
from sam2elnet.utils.atomic import atomic_path


def plot_curves(r: dict[str, Any], path: Path) -> None:
    """curves.png: test IoU vs optimiser step, one line per downstream setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for row in r["table1"] + r["table2"]:
        pts = [p for p in row.get("curve") or [] if p.get("iou") is not None]
        if len(pts) < 2:
            continue
        name = row["title"] if "labels" not in row else f"{row['labels']}: {row['method']}"
        ax.plot([p["step"] for p in pts], [p["iou"] for p in pts], marker="o", label=name)
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("test IoU (pixel-aggregated)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("Downstream learning curves (same steps for every setting)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def plot_results(r: dict[str, Any], path: Path) -> None:
    """results.png: downstream test IoU per setting and its labelling cost (hand labels); table 2's
    rows only when downstream models were trained on its label sets (:func:`table2_downstream`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table2 = r["table2"] if table2_downstream(r) else []  # label scores only: no test IoU to plot
    rows = [row for row in r["table1"] + table2]
    names = [
        (row["title"] if row in r["table1"] else f"{row['labels']}: {row['method']}")
        for row in rows
    ]
    iou = [row["iou"] if row["iou"] is not None else 0.0 for row in rows]
    cost = [row["hand_labels"] for row in rows]
    colors = ["tab:blue"] * len(r["table1"]) + ["tab:orange"] * len(table2)
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.45 * len(rows) + 1.6), sharey=True)
    y = np.arange(len(rows))
    axes[0].barh(y, iou, color=colors)
    axes[0].set_yticks(y, names, fontsize=8)
    axes[0].invert_yaxis()
    axes[0].set_xlabel("downstream test IoU")
    axes[0].set_xlim(0, 1)
    for yy, v in zip(y, iou, strict=True):
        axes[0].text(v + 0.01, yy, f"{v:.3f}", va="center", fontsize=7)
    axes[1].barh(y, cost, color=colors)
    axes[1].set_xlabel("labelling cost (hand labels)")
    title = "SAM2-ELNet protocol" + (
        " (random-init encoder)" if r["weights"]["random_init"] else ""
    )
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def auto_label_item(i: str, split: Split, auto: dict, **kw: Any) -> Any:
    """The report row of auto-label ``i`` next to its held-aside truth (``kw``: ReportItem fields)."""
    from sam2elnet.pipeline.report_items import ReportItem

    return ReportItem(
        name=kw.pop("name", i),
        image=split.images[i],
        output=auto["labels"][i],
        truth=split.masks[i],
        predicted_iou=auto["quality"].get(i),
        true_iou=auto["true_iou"].get(i),
        kept=auto["kept"].get(i),
        **kw,
    )


def write_report_html(
    cfg: ExperimentConfig, r: dict[str, Any], split: Split, auto: dict, out: Path
) -> None:
    """report.html: tables, the plot, and the auto-labels next to the held-aside truth."""
    from sam2elnet.pipeline.report_protocol import write_protocol_report

    items = [auto_label_item(i, split, auto) for i in split.unlabelled]
    write_protocol_report(
        out / REPORT_HTML,
        r,
        items,
        title="SAM2-ELNet protocol experiment",
        notes=[
            *([f"Command (every number here): {r['command']}"] if r.get("command") else []),
            r["weights"]["note"],
            r["elnet"]["trunk_note"],
            *r["notes"],
        ],
        figure=(out / "results.png").read_bytes(),
        max_items=60,
        curves=(out / "curves.png").read_bytes() if r.get("curves_file") else None,
    )
