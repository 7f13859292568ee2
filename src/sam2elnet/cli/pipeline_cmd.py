"""``elnet experiment`` (the paper's protocol) and ``elnet demo``: thin wrappers over sam2elnet.pipeline."""

from pathlib import Path
from typing import Optional, get_args  # noqa: UP035  (typer resolves these at runtime on 3.10)

import typer

from sam2elnet.cli.app import app
from sam2elnet.cli.shared_options import (
    FILTER_HELP,
    NO_PROGRESS,
    ROAD_BUFFER,
    ROAD_BUFFER_M,
    TRAIN_HELP,
    road_buffer_px_of,
    switch,
)
from sam2elnet.config import QualityConfig
from sam2elnet.data.runfolder import REPORT_HTML
from sam2elnet.errors import UserError
from sam2elnet.option_checks import check_options, option_default
from sam2elnet.option_values import COARSE_PROFILES_HELP, PRECISION_HELP, ModelSize
from sam2elnet.pipeline.demo import DemoConfig, run_demo
from sam2elnet.pipeline.experiment_config import (
    NO_ENHANCEMENT_DOWNSTREAM,
    UNFITTED_MIN_QUALITY,
    ExperimentConfig,
    table2_downstream,
)

_DEMO = {name: f.default for name, f in DemoConfig.model_fields.items()}  # the demo's defaults
_EXP = {name: f.default for name, f in ExperimentConfig.model_fields.items()}  # the protocol's
_TARGET_PRECISION = option_default(QualityConfig, "default_target_precision")
#: the experiment filters its auto-labels by default (annotate / enhance keep all: FILTER_HELP)
EXPERIMENT_MIN_QUALITY_HELP = (
    "Keep auto-labels with predicted IoU >= Q (0-1). Default (neither this nor "
    f"--target-precision): target precision {_TARGET_PRECISION:g} when "
    f"SAM2-ELNet's quality evaluator is fitted, else >= {UNFITTED_MIN_QUALITY:g}; when the rule "
    "keeps none, the labels above the median."
)


def _f(v: object) -> str:
    return f"{v:.3f}" if isinstance(v, float) else ("–" if v is None else str(v))


@app.command("experiment")
def experiment_cmd(
    data: Path = typer.Option(
        ..., "--data", help="Labelled dataset folder (SOS, CHN6-CUG, images/+masks/)."
    ),
    out: Path = typer.Option(..., "--out", help="Experiment folder (every stage is cached here)."),
    fraction: float = typer.Option(
        _EXP["fraction"],
        "--fraction",
        help="Share of the training pool that keeps its labels, in (0, 1).",
    ),
    epochs: int = typer.Option(_EXP["epochs"], "--epochs", help="SAM2-ELNet fine-tuning epochs."),
    downstream_epochs: int = typer.Option(
        _EXP["downstream_epochs"], "--downstream-epochs", help="Epochs of every downstream U-Net."
    ),
    downstream_steps: Optional[int] = typer.Option(
        None,
        "--downstream-steps",
        help="Fixed optimiser steps per downstream model (overrides epochs).",
    ),  # noqa: UP045
    image_size: int = typer.Option(
        _EXP["image_size"], "--image-size", help="Training crop size (SAM2-ELNet and U-Net)."
    ),
    batch_size: int = typer.Option(
        _EXP["batch_size"],
        "--batch-size",
        help="Images per optimiser step of SAM2-ELNet and every U-Net, and per prediction call "
        "(1-1024).",
    ),
    max_train: Optional[int] = typer.Option(
        None, "--max-train", help="Cap on the training pool (seeded subset)."
    ),  # noqa: UP045
    max_test: Optional[int] = typer.Option(
        None, "--max-test", help="Cap on the test split (seeded subset)."
    ),  # noqa: UP045
    size: str = typer.Option(
        _EXP["size"], "--size", help="SAM2 Hiera size: micro | tiny | small | base_plus | large."
    ),
    weights: Optional[str] = typer.Option(
        None,
        "--weights",
        help="SAM2 checkpoint (default: the cached one, else random), or 'none' (random).",
    ),  # noqa: UP045
    trunk: str = typer.Option(
        _EXP["trunk"], "--trunk", help="Also train the trunk: none | last | all."
    ),
    trunk_scale: Optional[int] = typer.Option(  # noqa: UP045
        _EXP["trunk_scale"], "--trunk-scale", help=TRAIN_HELP["trunk_scale"]
    ),
    seed: int = typer.Option(
        _EXP["seed"],
        "--seed",
        help="Seed of the labelled/unlabelled draw, the training runs and the simulated coarse "
        "labels (the test split has --split-seed).",
    ),
    split_seed: int = typer.Option(
        _EXP["split_seed"],
        "--split-seed",
        help="Seed of the held-out test split; fixed by default so several --seed runs share it.",
    ),
    positive_values: Optional[str] = typer.Option(
        None,
        "--positive-values",
        help="Mask value(s) that mean 'object' in class-index masks, e.g. 2 or 2,3 (the rest is "
        "background; truth and the dataset's coarse labels). Default: the rule in docs/data.md.",
    ),  # noqa: UP045
    min_quality: Optional[float] = typer.Option(
        None, "--min-quality", help=EXPERIMENT_MIN_QUALITY_HELP
    ),  # noqa: UP045
    target_precision: Optional[float] = typer.Option(
        None, "--target-precision", help=FILTER_HELP["target_precision"]
    ),  # noqa: UP045
    quality_folds: int = typer.Option(
        _EXP["quality_folds"],
        "--quality-folds",
        help="Fit SAM2-ELNet's quality evaluator on K cross-fitted networks' out-of-fold "
        "predictions (elnet train --quality-folds; ~K extra trainings; 0 = off).",
    ),
    quality_fold_epochs: Optional[int] = typer.Option(
        None,
        "--quality-fold-epochs",
        help="Epochs of each cross-fitting network (default --epochs).",
    ),  # noqa: UP045
    refiners: str = typer.Option(
        ",".join(_EXP["refiners"]),
        "--refiners",
        help="Classical baselines in table 2, comma-separated: "
        f"{', '.join(_EXP['refiners'])} (default: all).",
        show_default=False,
    ),
    no_enhancement: bool = typer.Option(
        False, "--no-enhancement", help="Skip table 2 (label enhancement)."
    ),
    coarse_profile: str = typer.Option(
        _EXP["coarse_profile"],
        "--coarse-profile",
        help=f"Simulated coarse labels of table 2 (elnet degrade profiles): {COARSE_PROFILES_HELP}",
    ),
    coarse_severity: float = typer.Option(
        _EXP["coarse_severity"],
        "--coarse-severity",
        help="Severity of the simulated coarse labels, in [0, 1].",
    ),
    enhancement_downstream: bool = typer.Option(
        False,
        "--enhancement-downstream",
        help="Train a downstream U-Net on every table 2 label set (the default: the paper's "
        "protocol); given into a --no-enhancement-downstream run's --out, trains just those.",
        show_default=False,
    ),
    no_enhancement_downstream: bool = typer.Option(
        False,
        "--no-enhancement-downstream",
        help="Score table 2's label sets against the true labels only (label IoU; what elnet "
        "demo does), no U-Net on them.",
    ),
    downstream_width: int = typer.Option(
        _EXP["downstream_width"], "--downstream-width", help="U-Net width (16 = 1.9 M parameters)."
    ),
    downstream_depth: int = typer.Option(
        _EXP["downstream_depth"], "--downstream-depth", help="U-Net depth."
    ),
    curve_points: int = typer.Option(
        _EXP["downstream_curve_points"],
        "--curve-points",
        help="Test-split scores per downstream model during training (learning curves, "
        "curves.png); 0 = final score only.",
    ),
    modality: str = typer.Option(
        _EXP["modality"],
        "--modality",
        help="auto (default: from the layout, dataset.json or the images; grey images cannot "
        "tell, see docs/data.md) | sar | optical: how SAM2-ELNet, the refiners and every "
        "downstream U-Net read and scale the images. Part of the experiment's identity.",
    ),
    road_buffer: Optional[float] = ROAD_BUFFER,  # noqa: UP045
    road_buffer_m: Optional[float] = ROAD_BUFFER_M,  # noqa: UP045
    precision: str = typer.Option(_EXP["precision"], "--precision", help=PRECISION_HELP),
    device: str = typer.Option(_EXP["device"], "--device", help="cpu | cuda | cuda:N."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue interrupted stages instead of restarting them."
    ),
    no_report: bool = typer.Option(False, "--no-report", help="Do not write report.html."),
    no_progress: bool = NO_PROGRESS,
) -> None:
    """Run the paper's protocol: 30 % labels -> SAM2-ELNet -> auto-labels -> downstream models."""
    from sam2elnet.data.mask_values import parse_positive_values
    from sam2elnet.model.checkpoint_files import RANDOM_INIT_CLI, check_weights_exist
    from sam2elnet.pipeline.experiment import run_experiment
    from sam2elnet.utils.paths import check_input, check_output

    road_buffer_px = road_buffer_px_of(road_buffer, road_buffer_m)
    cfg = check_options(
        ExperimentConfig,
        {"downstream_curve_points": "--curve-points"},
        data=data,
        out=out,
        fraction=fraction,
        epochs=epochs,
        downstream_epochs=downstream_epochs,
        downstream_steps=downstream_steps,
        image_size=image_size,
        batch_size=batch_size,
        max_train=max_train,
        max_test=max_test,
        size=size,
        weights=weights,
        trunk=trunk,
        trunk_scale=trunk_scale,
        seed=seed,
        split_seed=split_seed,
        positive_values=parse_positive_values(positive_values),
        min_quality=min_quality,
        target_precision=target_precision,
        quality_folds=quality_folds,
        quality_fold_epochs=quality_fold_epochs,
        refiners=tuple(r.strip() for r in refiners.split(",") if r.strip()),
        enhancement=not no_enhancement,
        coarse_profile=coarse_profile,
        coarse_severity=coarse_severity,
        enhancement_downstream=switch(
            enhancement_downstream, no_enhancement_downstream, "enhancement-downstream", True
        ),
        downstream_width=downstream_width,
        downstream_depth=downstream_depth,
        downstream_curve_points=curve_points,
        road_buffer=road_buffer_px,
        road_buffer_m=road_buffer_m,
        modality=modality,
        precision=precision,
        device=device,
        resume=resume,
        progress=not no_progress,
        report=not no_report,
    )
    # the weights file exists, before the data folder is looked at and --out written (as train)
    check_weights_exist(cfg.weights, RANDOM_INIT_CLI)
    check_input(data, "--data", "dataset folder")
    check_output(out, "dir", "--out")
    r = run_experiment(cfg, random_init=RANDOM_INIT_CLI)  # notes and errors in the flag's words
    _print_tables(r)
    typer.echo(
        f"results: {out / 'results.md'}  {out / 'results.json'}  {out / 'results.png'}"
        + (f"  {out / REPORT_HTML}" if not no_report else "")
    )


def _print_table(title: str, columns: list[str], rows: list[list[str]], text: int = 1) -> None:
    """One console table (rich): the first ``text`` columns words, the others numbers
    (right-aligned).

    Columns keep their alignment at any terminal width: a long setting name wraps inside its
    cell (80 columns when the output is not a terminal) instead of pushing the numbers out.
    Printed through typer.echo without trailing blanks, like the other summary lines."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, title_justify="left", title_style=None, box=None, pad_edge=False)
    for i, name in enumerate(columns):
        if i < text:
            t.add_column(name, overflow="fold")
        else:
            t.add_column(name, justify="right", no_wrap=True)
    for row in rows:
        t.add_row(*row)
    console = Console(highlight=False)
    with console.capture() as text_out:
        console.print(t)
    typer.echo("\n".join(line.rstrip() for line in text_out.get().splitlines()))


def _print_tables(r: dict) -> None:
    """The closing summary of ``elnet experiment`` / ``elnet demo``: the notes, table 1, the
    auto-label line, table 2, and one ``warning:`` line per stage whose every label was unusable
    (results.json ``unusable``, in results.md / report.html's words:
    :func:`~sam2elnet.pipeline.report_protocol.unusable_lines`) under the table it concerns."""
    from sam2elnet.pipeline.report_protocol import unusable_lines

    typer.echo(r["weights"]["note"])
    typer.echo(r["elnet"]["trunk_note"])
    # road data: the rows carry the road measures (results.md / report.html: their own table)
    road = any(row.get("road_quality") is not None for row in r["table1"])
    _print_table(
        "table 1 (downstream test IoU / hand labels):",
        ["setting", "test IoU", *(["road quality"] if road else []), "hand labels"],
        [
            [row["title"], _f(row["iou"])]
            + ([_f(row.get("road_quality"))] if road else [])
            + [str(row["hand_labels"])]
            for row in r["table1"]
        ],
    )
    a = r["autolabels"]
    typer.echo(
        f"auto-labels kept {a['n_kept']}/{a['n']}, IoU all {_f(a['iou_all']['iou'])} "
        f"kept {_f(a['iou_kept']['iou'])}, Spearman {_f(a['spearman'])}"
    )
    for why in unusable_lines(r, 1):
        typer.echo(f"warning: {why}.")
    if r["table2"]:
        down = table2_downstream(r)
        _print_table(
            "table 2 (label IoU / downstream test IoU):" if down else "table 2 (label IoU):",
            ["labels", "method", "label IoU", *(["test IoU"] if down else [])],
            [
                [row["labels"], row["title"], _f(row.get("label_iou_all"))]
                + ([_f(row["iou"])] if down else [])
                for row in r["table2"]
            ],
            text=2,
        )
        if not down:
            typer.echo(f"  ({NO_ENHANCEMENT_DOWNSTREAM})")
    for why in unusable_lines(r, 2):
        typer.echo(f"warning: {why}.")
    for why in (r.get("table2_absent") or {}).values():
        typer.echo(f"{why}.")


@app.command("experiment-summary")
def experiment_summary_cmd(
    runs: list[Path] = typer.Argument(
        ..., help="Two or more finished `elnet experiment` folders that differ only in --seed."
    ),
    out: Path = typer.Option(..., "--out", help="Markdown file to write (e.g. summary.md)."),
) -> None:
    """Put experiment runs of several seeds side by side in a Markdown summary.

    Per-setting mean IoU, sd, each seed's IoU with its 95 % interval, per sensor, and the
    (c)/(d)-vs-(a) verdict."""
    from sam2elnet.pipeline.experiment_summary import write_summary
    from sam2elnet.utils.paths import check_output

    check_output(out, "file", "--out", read_from=[(r, ("results.json",)) for r in runs])
    _check_summary_out(runs, out)
    s = write_summary(runs, out)
    _print_table(
        f"test IoU over {len(runs)} seeds:",
        ["setting", "mean IoU", "sd"],
        [[row["title"], _f(row["mean"]["iou"]), _f(row["sd"]["iou"])] for row in s["rows"]],
    )
    for v in s["verdict"]:
        typer.echo(v)
    typer.echo(f"summary: {out}")


def _check_summary_out(runs: list[Path], out: Path) -> None:
    """Refuse a summary path that is not Markdown (``.md``) or lies in one of the run folders
    (whose files, such as results.md, the experiment writes and rewrites on --resume)."""
    if out.suffix.lower() != ".md":
        raise UserError(
            f"--out {out}: the summary is a Markdown file; give a .md file name "
            f"(e.g. {out.with_suffix('.md').name})"
        )
    where = out.parent.resolve()
    for run in runs:
        r = run.resolve()
        if (r / "results.json").is_file() and (where == r or r in where.parents):
            raise UserError(
                f"--out {out}: is inside the experiment folder {run}, whose files (results.md, "
                "report.html, ...) the experiment writes; choose a path outside the run folders"
            )


@app.command("demo")
def demo_cmd(
    data: Optional[Path] = typer.Option(
        None, "--data", help="Run on this labelled folder instead of synthetic data."
    ),  # noqa: UP045
    out: Path = typer.Option(_DEMO["out"], "--out", help="Output folder."),
    count: int = typer.Option(
        _DEMO["count"], "--count", help="Synthetic images to generate.", hidden=True
    ),
    image_size: int = typer.Option(
        _DEMO["image_size"], "--image-size", help="Image / crop size.", hidden=True
    ),
    epochs: int = typer.Option(_DEMO["epochs"], "--epochs", help="SAM2-ELNet epochs.", hidden=True),
    downstream_epochs: int = typer.Option(
        _DEMO["downstream_epochs"],
        "--downstream-epochs",
        help="Every downstream U-Net gets the optimiser steps setting (a) gets in this many "
        "epochs (at least 1).",
        hidden=True,
    ),
    size: str = typer.Option(
        _DEMO["size"],
        "--size",
        help=f"SAM2 Hiera size: auto | {' | '.join(get_args(ModelSize))} (default "
        f"{_DEMO['size']}). auto: tiny where the CPU trains in bf16 natively or SAM2 tiny weights "
        "are cached, else micro; in a demo folder already started, the size it was started with.",
        show_default=False,
    ),
    max_train: Optional[int] = typer.Option(
        None, "--max-train", help="Cap on the training pool (real data).", hidden=True
    ),  # noqa: UP045
    seed: int = typer.Option(
        _DEMO["seed"], "--seed", help="Seed of the synthetic data, the data draws and training."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted demo."),
    no_progress: bool = NO_PROGRESS,
) -> None:
    """Run a few-minute tour of the whole method on synthetic SAR oil spills.

    Synthetic data -> fine-tune -> enhance -> annotate -> quality filter -> protocol table ->
    report.html, on a fresh machine."""
    from sam2elnet.utils.paths import check_input, check_output

    cfg = check_options(
        DemoConfig,
        data=data,
        out=out,
        count=count,
        image_size=image_size,
        epochs=epochs,
        downstream_epochs=downstream_epochs,
        size=size,
        max_train=max_train,
        seed=seed,
        resume=resume,
        progress=not no_progress,
    )
    if data is not None:
        check_input(data, "--data", "dataset folder")
    check_output(out, "dir", "--out")
    res = run_demo(cfg)
    _print_tables(res["results"])
    typer.echo(f"report:  {res['report']}")
    typer.echo(f"results: {res['results_md']}")
    typer.echo(f"total time: {res['seconds']:.0f} s")
