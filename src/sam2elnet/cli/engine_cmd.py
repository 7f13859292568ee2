"""``elnet train``, ``elnet enhance`` and ``elnet annotate``: thin wrappers over sam2elnet.engine.

Each command parses options, calls one library function and prints a short summary; all logic
(and all error messages) live in :mod:`sam2elnet.engine.train` and :mod:`sam2elnet.engine.infer`.
The options annotate and enhance share are declared once in :mod:`sam2elnet.cli.job_options`.
"""

import os
from pathlib import Path
from typing import Optional  # noqa: UP035  (typer resolves these at runtime on 3.10)

import typer

from sam2elnet.cli.app import app
from sam2elnet.cli.job_options import IMAGES, MODEL, OUT, check_job_io, job_kwargs, with_job_options
from sam2elnet.cli.job_summary import fmt as _fmt
from sam2elnet.cli.job_summary import print_folder
from sam2elnet.cli.shared_options import (
    LAYER,
    LINE_WIDTH,
    LINE_WIDTH_PX,
    NO_PROGRESS,
    ROAD_BUFFER,
    ROAD_BUFFER_M,
    line_width_unit,
    road_buffer_px_of,
)
from sam2elnet.cli.shared_options import TRAIN_HELP as _H
from sam2elnet.config import QUALITY_FLAGS, TrainConfig
from sam2elnet.data.runfolder import SKIPPED_CSV
from sam2elnet.option_checks import option_default
from sam2elnet.option_values import LAYOUTS_HELP, PRECISION_HELP
from sam2elnet.options import FolderJobOptions


def _positive_list(text: str | None) -> list[float] | None:
    from sam2elnet.data.mask_values import parse_positive_values

    vals = parse_positive_values(text)
    return list(vals) if vals else None


@app.command("train")
def train_cmd(
    data: Path | None = typer.Option(
        None, "--data", help="Labelled dataset folder (SOS, CHN6-CUG or images/+masks/)."
    ),  # noqa: UP045
    out: Path | None = typer.Option(
        None, "--out", help="Run folder for model.pt, last.pt, config.yaml, metrics.csv."
    ),  # noqa: UP045
    config: Path | None = typer.Option(
        None, "--config", help="YAML TrainConfig; command-line options override it."
    ),  # noqa: UP045
    weights: str | None = typer.Option(
        None, "--weights", help="SAM2 checkpoint for the encoder, or 'none' (random)."
    ),  # noqa: UP045
    init_model: Path | None = typer.Option(
        None,
        "--init-model",
        help="Start from this model file (fine-tune on corrected labels, e.g. after a review).",
    ),  # noqa: UP045
    size: str | None = typer.Option(
        None, "--size", help="micro | tiny | small | base_plus | large (default tiny)."
    ),  # noqa: UP045
    fraction: float | None = typer.Option(
        None,
        "--fraction",
        help="Train on this reproducible fraction of the labelled set, in (0, 1], e.g. 0.3 "
        "(default 1: all).",
    ),  # noqa: UP045
    seed: int | None = typer.Option(
        None, "--seed", help="Seed for splits, augmentation and initialisation (default 0)."
    ),  # noqa: UP045
    epochs: Optional[str] = typer.Option(  # noqa: UP045
        None, "--epochs", help=_H["epochs"], metavar="N|auto"
    ),
    batch_size: Optional[str] = typer.Option(  # noqa: UP045
        None, "--batch-size", help=_H["batch_size"], metavar="N|auto"
    ),
    image_size: int | None = typer.Option(None, "--image-size", help=_H["train_image_size"]),  # noqa: UP045
    lr: float | None = typer.Option(None, "--lr", help=_H["lr"]),  # noqa: UP045
    val_fraction: float | None = typer.Option(None, "--val-fraction", help=_H["val_fraction"]),  # noqa: UP045
    resume: bool = typer.Option(False, "--resume", help="Continue a killed run in --out."),
    precision: Optional[str] = typer.Option(None, "--precision", help=PRECISION_HELP),  # noqa: UP045
    device: Optional[str] = typer.Option(None, "--device", help="cpu | cuda | cuda:N."),  # noqa: UP045
    trunk: str | None = typer.Option(
        None, "--trunk", help="Also train the trunk: none | last | all (for runs without weights)."
    ),  # noqa: UP045
    max_train: int | None = typer.Option(None, "--max-train", help=_H["max_train"]),  # noqa: UP045
    trunk_scale: int | None = typer.Option(  # noqa: UP045
        None,
        "--trunk-scale",
        help=_H["trunk_scale"] + " With --init-model: the model file's unless given.",
    ),
    layout: Optional[str] = typer.Option(  # noqa: UP045
        None, "--layout", help=LAYOUTS_HELP
    ),
    split: list[str] | None = typer.Option(
        None,
        "--split",
        help="Dataset split folder(s) to train on: train, val, test (repeatable). Default: the "
        "'train' split of a split-aware layout (SOS, CHN6-CUG), everything in a flat one.",
    ),  # noqa: UP006, UP045
    sensor: list[str] | None = typer.Option(
        None, "--sensor", help="SOS sensor(s): palsar, sentinel (repeatable)."
    ),  # noqa: UP006, UP045
    bands: str | None = typer.Option(
        None,
        "--bands",
        help="File bands to train on, 1-based, e.g. 4,3,2 (stored in the model; default: all).",
    ),  # noqa: UP045
    positive_values: str | None = typer.Option(
        None,
        "--positive-values",
        help="Mask value(s) that mean 'object' in class-index masks, e.g. 1 or 2,3 (the rest is "
        "background). Default: the rule in docs/data.md.",
    ),  # noqa: UP045
    norm_stats: Path | None = typer.Option(
        None,
        "--norm-stats",
        help="Normalisation from `elnet stats --out FILE` (default: chosen from the training data).",
    ),  # noqa: UP045
    workers: int | None = typer.Option(
        None, "--workers", help="DataLoader workers, >= 0 (default: automatic)."
    ),  # noqa: UP045
    tta: int | None = typer.Option(
        None, "--tta", help="Test-time views for the quality evaluator (0-7)."
    ),  # noqa: UP045
    tau: float | None = typer.Option(
        None,
        "--tau",
        help="IoU that makes a label 'good' for the evaluator, in (0, 1) (default 0.7).",
    ),  # noqa: UP045
    quality: Optional[bool] = typer.Option(  # noqa: UP045
        None,
        "--quality/--no-quality",
        help="Fit the quality evaluator after training (default), or skip it. With --resume "
        "the run's choice unless given: --resume --quality on a finished --no-quality run fits "
        "one without training again.",
    ),
    quality_folds: int | None = typer.Option(
        None,
        "--quality-folds",
        help="Fit the quality evaluator on out-of-fold predictions of K extra networks, each "
        "trained without one fold of the training images (2-20; costs ~K extra trainings; "
        "default 0 = off: validation + in-sample training predictions). See docs/training.md.",
    ),  # noqa: UP045
    q_epochs: int | None = typer.Option(
        None,
        "--quality-fold-epochs",
        help="Epochs of each --quality-folds network (default: --epochs).",
    ),  # noqa: UP045
    no_progress: bool = NO_PROGRESS,
    coarse_prior: float | None = typer.Option(
        None,
        "--coarse-prior",
        help="Logit offset towards a given coarse label, so enhancement learns corrections to "
        "it (>= 0, e.g. 2; default 0 = off). See docs/training.md for measurements.",
    ),
    modality: str | None = typer.Option(
        None,
        "--modality",
        help="auto (default: from the layout, dataset.json or the images; grey images cannot "
        "tell, see docs/data.md) | sar | optical. sar reads grey-as-RGB as one band with a "
        "fixed 0..255 scale and names non-road labels 'oil spill'.",
    ),  # noqa: UP045
    domain: str | None = typer.Option(
        None,
        "--domain",
        help=_H["domain"],
    ),  # noqa: UP045
    topology_loss: str | None = typer.Option(
        None,
        "--topology-loss",
        help=_H["topology_loss"],
    ),  # noqa: UP045
    topology_weight: float | None = typer.Option(
        None, "--topology-weight", help=_H["topology_weight"]
    ),  # noqa: UP045
    aug_scale: str | None = typer.Option(
        None,
        "--aug-scale",
        help="Crop scale range LOW,HIGH, e.g. 0.5,2 (default 0.75,1.33; roads 0.5,2).",
    ),  # noqa: UP045
    aug_photometric: float | None = typer.Option(
        None,
        "--aug-photometric",
        help=_H["aug_photometric"],
    ),  # noqa: UP045
    aug_band_jitter: float | None = typer.Option(
        None,
        "--aug-band-jitter",
        help=_H["aug_band_jitter"],
    ),  # noqa: UP045
    road_buffer: Optional[float] = ROAD_BUFFER,  # noqa: UP045
    road_buffer_m: Optional[float] = ROAD_BUFFER_M,  # noqa: UP045
    report: bool = typer.Option(
        False,
        "--report",
        help="Write OUT/report.html: learning curves, the kept epoch and validation images "
        "predicted by model.pt next to their truth.",
    ),
) -> None:
    """Fine-tune SAM2-ELNet (adapters, stem, mask encoder, decoder) on labelled images."""
    from sam2elnet.data.images import parse_bands
    from sam2elnet.engine.train import train

    given = {
        "data": data,
        "out": out,
        "weights": weights,
        "size": size,
        "fraction": fraction,
        "seed": seed,
        "epochs": epochs,  # "auto" as given: it overrides a --config file's epochs
        "batch_size": batch_size,  # "auto" as given, as --epochs
        "image_size": image_size,
        "lr": lr,
        "val_fraction": val_fraction,
        "precision": precision,
        "device": device,
        "trunk": trunk,
        "max_train": max_train,
        "trunk_scale": trunk_scale,
        "layout": layout,
        "split": split or None,
        "sensor": sensor or None,
        "norm_stats": norm_stats,
        "bands": parse_bands(bands),
        "positive_values": _positive_list(positive_values),
        "num_workers": workers,
        "coarse_prior": coarse_prior,
        "init_model": init_model,
        "modality": modality,
        "domain": domain,
        "topology_loss": topology_loss,
        "topology_weight": topology_weight,
        "aug_scale": aug_scale,
        "aug_photometric": aug_photometric,
        "aug_band_jitter": aug_band_jitter,
        "road_buffer": road_buffer,  # either unit replaces the other of a --config file / run
        "road_buffer_m": road_buffer_m,
    }
    road_buffer_px_of(road_buffer, road_buffer_m)
    cfg = TrainConfig.from_sources(
        given,
        config=config,
        resume=resume,
        progress=not no_progress,
        fit_quality=quality,
        quality=dict(tta=tta, tau=tau, crossfit_folds=quality_folds, crossfit_epochs=q_epochs),
        flags={"num_workers": "--workers", **QUALITY_FLAGS},
    )
    from sam2elnet.engine.train_setup import check_weights_file
    from sam2elnet.model.checkpoint_files import RANDOM_INIT_CLI
    from sam2elnet.utils.paths import check_input, check_output

    # a few bytes read, before the data folder is looked at; a missing file in the option's words
    check_weights_file(cfg, random_init=RANDOM_INIT_CLI)
    check_input(cfg.data, "--data", "dataset folder")
    check_output(cfg.out, "dir", "--out")
    res = train(cfg, echo=typer.echo)
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun: one summary, from rank 0
        return
    if res.resumed:
        typer.echo(f"--resume: {res.resumed}")
    typer.echo(
        f"best model: {res.best_path} (epoch {res.best_epoch}, val IoU {_fmt(res.best_val_iou)})"
    )
    if res.history:
        last = res.history[-1]
        typer.echo(
            f"last epoch: train IoU {_fmt(last['train_iou'])}, {_fmt(last['train_img_per_s'])} img/s; "
            f"metrics in {res.run_dir / 'metrics.csv'}"
        )
    if res.quality:
        from sam2elnet.engine.quality_fit import describe_summary

        # its warning, if any, was issued once while fitting (QualityEvaluator.fit)
        typer.echo(describe_summary(res.quality))
    held = len(res.splits.get("held_out", []))
    if held:
        typer.echo(
            f"held out (not trained on): {held} labelled images, listed in {res.run_dir / 'splits.json'}"
        )
    if res.skipped:
        from sam2elnet.utils.batch import skip_line

        n_total = len(res.splits.get("train", [])) + len(res.splits.get("val", []))
        typer.echo(
            skip_line(len(res.skipped), n_total + len(res.skipped), res.run_dir / SKIPPED_CSV)
        )
    if report:
        from sam2elnet.pipeline.report_train import write_train_report

        typer.echo(f"report: {write_train_report(res.run_dir, device=cfg.device)}")


@app.command("annotate")
@with_job_options
def annotate_cmd(
    model: Path = MODEL,
    images: Path = IMAGES,
    out: Path = OUT,
    split: Optional[list[str]] = typer.Option(  # noqa: UP006, UP045
        None,
        "--split",
        help="With a dataset root as --images: label this split's images (e.g. test).",
    ),
    **shared: object,
) -> None:
    """Label images from scratch and score every label (predicted IoU)."""
    from sam2elnet.pipeline.jobs import annotate_folder

    opts = job_kwargs(split=split, **shared)
    check_job_io(images, out, model)
    print_folder(annotate_folder(model, images, out, echo=typer.echo, **opts), "annotated")


@app.command("enhance")
@with_job_options
def enhance_cmd(
    model: Path = MODEL,
    images: Path = IMAGES,
    labels: Optional[Path] = typer.Option(  # noqa: UP045
        None,
        "--labels",
        help="Folder of coarse labels matched by name (masks or vector files), one "
        "GeoJSON/GeoPackage/Shapefile or georeferenced GeoTIFF covering all images (an image it "
        "misses: an empty coarse label), or one mask file when --images is one image. Required "
        "unless --split picks a split that has coarse/ folders.",
    ),
    out: Path = OUT,
    line_width: Optional[float] = LINE_WIDTH,  # noqa: UP045
    line_width_px: bool = LINE_WIDTH_PX,
    skip_missing: bool = typer.Option(
        False, "--skip-missing", help="Enhance only images that have a label."
    ),
    no_changes: bool = typer.Option(False, "--no-changes", help="Do not write change maps."),
    positive_values: Optional[str] = typer.Option(  # noqa: UP045
        None,
        "--positive-values",
        help="Coarse-label value(s) that mean 'object' in class-index masks, e.g. 1 or 2,3.",
    ),
    split: Optional[list[str]] = typer.Option(  # noqa: UP006, UP045
        None,
        "--split",
        help="With a dataset root as --images: enhance this split's images (e.g. test); "
        "without --labels their coarse labels come from the split's coarse/ folders.",
    ),
    new_objects: str = typer.Option(
        option_default(FolderJobOptions, "new_objects"),
        "--new-objects",
        help="drop: remove predicted objects that do not overlap the coarse label (an empty "
        "coarse label stays empty); keep: leave them (docs/training.md).",
    ),
    max_growth: Optional[float] = typer.Option(  # noqa: UP045
        None,
        "--max-growth",
        help="Largest distance, px, the label may extend beyond the coarse label (default: no "
        "limit; suits coarse labels drawn around their objects).",
    ),
    layer: Optional[str] = LAYER,  # noqa: UP045
    **shared: object,
) -> None:
    """Turn coarse labels into clean ones (image + coarse label -> enhanced label + change map)."""
    from sam2elnet.pipeline.jobs import enhance_folder

    opts = job_kwargs(
        line_width=line_width,
        line_width_unit=line_width_unit(line_width_px),
        skip_missing=skip_missing,
        no_changes=no_changes,
        positive_values=positive_values,
        split=split,
        new_objects=new_objects,
        max_growth=max_growth,
        layer=layer,
        **shared,
    )
    check_job_io(images, out, model, labels)
    opts["save_changes"] = not opts.pop("no_changes")
    pv = _positive_list(opts.pop("positive_values"))
    opts["positive_values"] = tuple(pv) if pv else None
    print_folder(enhance_folder(model, images, labels, out, echo=typer.echo, **opts), "enhanced")
