"""``elnet cv``: k-fold and cross-domain cross-validation, a thin wrapper over
:func:`sam2elnet.pipeline.crossval.run_cv`."""

from pathlib import Path
from typing import Optional  # noqa: UP035  (typer resolves these at runtime on 3.10)

import typer

from sam2elnet.cli.app import app
from sam2elnet.cli.shared_options import (
    NO_PROGRESS,
    ROAD_BUFFER,
    ROAD_BUFFER_M,
    count_if_number,
    road_buffer_px_of,
)
from sam2elnet.cli.shared_options import TRAIN_HELP as _H
from sam2elnet.option_checks import check_options, option_default
from sam2elnet.option_values import PRECISION_HELP
from sam2elnet.pipeline.crossval_config import CVConfig


@app.command("cv")
def cv_cmd(
    data: Path = typer.Option(
        ..., "--data", help="Labelled dataset folder (SOS, CHN6-CUG, images/+masks/)."
    ),
    out: Path = typer.Option(..., "--out", help="Output folder (every fold is kept here)."),
    mode: str = typer.Option(
        option_default(CVConfig, "mode"),
        "--mode",
        help="kfold | cross-domain (train on one appearance group, test on the other).",
    ),
    folds: int = typer.Option(
        option_default(CVConfig, "folds"),
        "--folds",
        help="k of k-fold cross-validation (2-20; cross-domain ignores it).",
    ),
    seed: int = typer.Option(
        option_default(CVConfig, "seed"),
        "--seed",
        help="Seed of the folds and of every training run.",
    ),
    in_domain_fraction: float = typer.Option(
        option_default(CVConfig, "in_domain_fraction"),
        "--in-domain-fraction",
        help="cross-domain: share of the training group kept for the in-domain test (0.05-0.5).",
    ),
    modality: Optional[str] = typer.Option(  # noqa: UP045
        None,
        "--modality",
        help="auto (default: from the layout, dataset.json or the images) | sar | optical.",
    ),
    domain: str = typer.Option(
        option_default(CVConfig, "domain"), "--domain", help="auto | roads | other."
    ),
    max_folds: Optional[int] = typer.Option(  # noqa: UP045
        None, "--max-folds", help="Run only the first N folds (smoke runs)."
    ),
    fold: Optional[list[str]] = typer.Option(  # noqa: UP045
        None,
        "--fold",
        metavar="NAME",
        help="Run only this fold (fold-3 or 3; A-to-B / B-to-A), repeatable: one fold per "
        "machine, each into its own --out; copy their folds/ folders into one --out and run "
        "again without --fold to summarise them all (finished folds are reused).",
    ),
    size: Optional[str] = typer.Option(
        None, "--size", help="micro | tiny | small | base_plus | large (default tiny)."
    ),  # noqa: UP045
    weights: Optional[str] = typer.Option(  # noqa: UP045
        None, "--weights", help="SAM2 checkpoint for the encoder, or 'none' (random)."
    ),
    trunk: Optional[str] = typer.Option(  # noqa: UP045
        None, "--trunk", help="Also train the trunk: none | last | all (for runs without weights)."
    ),
    epochs: Optional[str] = typer.Option(  # noqa: UP045
        None, "--epochs", help=_H["epochs"], metavar="N|auto"
    ),
    batch_size: Optional[str] = typer.Option(  # noqa: UP045
        None,
        "--batch-size",
        help=_H["batch_size"] + " Also images per forward pass on the test images (default 8).",
        metavar="N|auto",
    ),
    image_size: Optional[int] = typer.Option(None, "--image-size", help=_H["image_size"]),  # noqa: UP045
    lr: Optional[float] = typer.Option(None, "--lr", help=_H["lr"]),  # noqa: UP045
    val_fraction: Optional[float] = typer.Option(None, "--val-fraction", help=_H["val_fraction"]),  # noqa: UP045
    max_train: Optional[int] = typer.Option(None, "--max-train", help=_H["max_train"]),  # noqa: UP045
    trunk_scale: Optional[int] = typer.Option(None, "--trunk-scale", help=_H["trunk_scale"]),  # noqa: UP045
    topology_loss: Optional[str] = typer.Option(  # noqa: UP045
        None, "--topology-loss", help=_H["topology_loss"]
    ),
    topology_weight: Optional[float] = typer.Option(
        None, "--topology-weight", help=_H["topology_weight"]
    ),  # noqa: UP045
    aug_scale: Optional[str] = typer.Option(  # noqa: UP045
        None, "--aug-scale", help="Crop scale range LOW,HIGH (default by domain)."
    ),
    aug_photometric: Optional[float] = typer.Option(
        None, "--aug-photometric", help=_H["aug_photometric"]
    ),  # noqa: UP045
    aug_band_jitter: Optional[float] = typer.Option(
        None, "--aug-band-jitter", help=_H["aug_band_jitter"]
    ),  # noqa: UP045
    quality: bool = typer.Option(
        True,
        "--quality/--no-quality",
        help="Fit the quality evaluator in each fold (default), or skip it.",
    ),
    road_buffer: Optional[float] = ROAD_BUFFER,  # noqa: UP045
    road_buffer_m: Optional[float] = ROAD_BUFFER_M,  # noqa: UP045
    precision: str = typer.Option(
        option_default(CVConfig, "precision"), "--precision", help=PRECISION_HELP
    ),
    device: str = typer.Option(
        option_default(CVConfig, "device"), "--device", help="cpu | cuda | cuda:N."
    ),
    no_progress: bool = NO_PROGRESS,
    report: bool = typer.Option(
        False,
        "--report",
        help="Write OUT/report.html (folds, means, every test image worst first) and a training "
        "and a test-image report in each fold.",
    ),
) -> None:
    """Cross-validate training: k-fold or cross-domain, mean ± std of IoU and F1.

    k models (or both directions of a cross-domain split), each scored on images it never saw;
    mean ± std of IoU, F1 and (for roads) road measures."""
    from sam2elnet.pipeline.crossval import run_cv
    from sam2elnet.utils.paths import check_input, check_output

    batch_size = count_if_number(batch_size)  # type: ignore[assignment]  # auto: None
    given = {
        "size": size,
        "weights": weights,
        "trunk": trunk,
        "epochs": count_if_number(epochs),
        "batch_size": batch_size,
        "image_size": image_size,
        "lr": lr,
        "val_fraction": val_fraction,
        "max_train": max_train,
        "trunk_scale": trunk_scale,
        "modality": modality,
        "topology_loss": topology_loss,
        "topology_weight": topology_weight,
        "aug_scale": aug_scale,
        "aug_photometric": aug_photometric,
        "aug_band_jitter": aug_band_jitter,
        "precision": precision,
        "device": device,
    }
    train = {k: v for k, v in given.items() if v is not None}
    road_buffer_px = road_buffer_px_of(road_buffer, road_buffer_m)
    if not quality:  # the default (fit) is left out: a run recorded before reads the same
        train["fit_quality"] = False
    cfg = check_options(
        CVConfig,
        data=data,
        out=out,
        mode=mode,
        folds=folds,
        seed=seed,
        in_domain_fraction=in_domain_fraction,
        domain=domain,
        train=train,
        max_folds=max_folds,
        only_folds=fold or None,
        road_buffer=road_buffer_px,
        road_buffer_m=road_buffer_m,
        progress=not no_progress,
        batch_size=batch_size,
        device=device,
        precision=precision,
        report=report,
    )
    from sam2elnet.model.checkpoint_files import RANDOM_INIT_CLI, check_weights_exist

    # a missing --weights file in the option's words (run_cv says the API's weights=None); the
    # rest (an --out holding it, a file of the wrong kind) run_cv checks in that order
    template = cfg.validate()
    check_weights_exist(template.weights, RANDOM_INIT_CLI, init_model=template.init_model)
    check_input(data, "--data", "dataset folder")
    check_output(out, "dir", "--out")
    r = run_cv(cfg, echo=typer.echo)
    for line in summary_lines(r["summary"]):
        typer.echo(line)
    typer.echo(f"tables: {Path(out) / 'cv.md'}")


def summary_lines(summary: dict) -> list[str]:
    """The closing lines of ``elnet cv``: per test set IoU and F1 (and, for roads, the four road
    measures of cv.md) as mean ± std over the folds, then the cross-domain gap when there is one.

    ``summary`` is :func:`~sam2elnet.pipeline.crossval.run_cv`'s ``"summary"``: test set name ->
    metric -> ``{"mean", "std"}`` (None where unknown), plus ``"iou_gap"`` (and, for roads,
    ``"road_quality_gap"``) for cross-domain runs.
    """
    from sam2elnet.pipeline.crossval_report import GAPS, pm

    lines = []
    for name, s in summary.items():
        if name in GAPS:
            continue
        parts = [f"IoU {pm(s['iou'])}", f"F1 {pm(s['f1'])}"]
        if "road_quality" in s:
            parts += [
                f"road completeness {pm(s['road_completeness'])}",
                f"correctness {pm(s['road_correctness'])}",
                f"quality {pm(s['road_quality'])}",
                f"connectivity {pm(s.get('road_connectivity') or {})}",
            ]
        lines.append(f"{name.replace('_', '-')}: " + ", ".join(parts))
    for gap, (_, words) in GAPS.items():
        if gap in summary:
            lines.append(f"in-domain minus cross-domain {words}: {pm(summary[gap])}")
    return lines
