"""Data commands: ``elnet stats``, ``elnet synth``, ``elnet degrade`` (thin wrappers over sam2elnet.data)."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from sam2elnet.cli.app import app
from sam2elnet.cli.shared_options import NO_PROGRESS, PROGRESS, switch
from sam2elnet.data.naming import IMAGE_SUFFIXES, MASK_SUFFIXES
from sam2elnet.data.runfolder import SKIPPED_CSV, read_id_list
from sam2elnet.option_checks import check_options, option_default
from sam2elnet.option_values import COARSE_PROFILES_HELP, LAYOUTS_HELP
from sam2elnet.options import DegradeOptions, StatsOptions, SynthOptions
from sam2elnet.utils.atomic import write_json_atomic


@app.command("stats")
def stats_cmd(
    data: Path = typer.Option(
        ..., "--data", help="Dataset folder (SOS, CHN6-CUG or images/ + masks/)."
    ),
    layout: str = typer.Option(
        option_default(StatsOptions, "layout"),
        "--layout",
        help=LAYOUTS_HELP,
    ),
    split: list[str] = typer.Option(
        None, "--split", help="Only these splits (train, val, test); repeatable."
    ),
    sensor: list[str] = typer.Option(
        None, "--sensor", help="SOS only: palsar and/or sentinel; repeatable."
    ),
    modality: str = typer.Option(
        None,
        "--modality",
        help="sar | optical (default: from the layout, dataset.json or the images; grey images "
        "cannot tell, see docs/data.md).",
    ),
    db: bool = typer.Option(
        False,
        "--db",
        help="Convert linear SAR intensity to dB (10*log10) before statistics. Default: as "
        "`elnet train` does (SAR stored with more than 8 bits and not already in dB).",
    ),
    no_db: bool = typer.Option(False, "--no-db", help="Keep the values as stored (no dB)."),
    p_low: float = typer.Option(
        option_default(StatsOptions, "p_low"),
        "--p-low",
        help="Lower percentile for the scaling range (0-100).",
    ),
    p_high: float = typer.Option(
        option_default(StatsOptions, "p_high"),
        "--p-high",
        help="Upper percentile for the scaling range (0-100, above --p-low).",
    ),
    max_images: int = typer.Option(
        option_default(StatsOptions, "max_images"),
        "--max-images",
        help="Use at most N images (evenly spaced); 0 = all.",
    ),
    out: Path = typer.Option(None, "--out", help="Write the normalisation config (JSON) here."),
    check: bool = typer.Option(
        False,
        "--check",
        help="Verify every pair first: a file that is truncated or unreadable, or a label of "
        "another size than its image, skips its pair (a warning each, listed in --out); the "
        "statistics come from the other pairs. Without it only the images are read, and one "
        "that cannot be read is skipped the same way.",
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="List unmatched files."),
    progress: bool = PROGRESS,
    no_progress: bool = NO_PROGRESS,
) -> None:
    """Count image/label pairs per split and sensor and compute per-band normalisation statistics."""
    from sam2elnet.data.modality import with_modality
    from sam2elnet.data.normalize import describe
    from sam2elnet.data.splits import discover_readable
    from sam2elnet.data.stats import index_stats
    from sam2elnet.utils.batch import skip_line
    from sam2elnet.utils.paths import check_input, check_output

    to_db = switch(db, no_db, "db")  # None: as `elnet train` does
    progress = bool(switch(progress, no_progress, "progress", True))
    check_options(
        StatsOptions,
        layout=layout,
        modality=modality,
        p_low=p_low,
        p_high=p_high,
        max_images=max_images,
    )
    check_input(data, "--data", "dataset folder")
    # the images, masks and dataset.json read from --data are inputs, not places to write
    read = (*IMAGE_SUFFIXES, *MASK_SUFFIXES, "dataset.json")
    check_output(out, "file", "--out", read_from=[(data, read)])
    # every split that can be read; one that cannot is named in a warning (--split: an error)
    index, decided = with_modality(
        discover_readable(
            data, split or None, layout=layout, sensors=sensor or None, modality=modality
        )
    )
    typer.echo(f"layout: {index.layout}  modality: {index.modality}  pairs: {len(index.samples)}")
    if decided.undecided:
        logging.getLogger(__name__).warning(decided.line())
    else:
        typer.echo(decided.line())
    for (sp, se), n in index.counts().items():
        typer.echo(f"  split={sp:<6} sensor={se:<9} pairs={n}")
    typer.echo(f"unmatched files: {len(index.unmatched)}")
    if verbose:
        for p in index.unmatched:
            typer.echo(f"  unmatched: {p}")
    # a pair that cannot be used is skipped (a warning each); none usable: one error line
    st = index_stats(index, split, to_db=to_db, p_low=p_low, p_high=p_high,
                     max_images=max_images, check=check, progress=progress)  # fmt: skip
    if st.train_only:
        typer.echo(f"statistics from the train split ({st.n_pairs} pairs); --split to choose")
    if st.checked and not st.skipped:
        typer.echo("all pairs read and have matching sizes")
    for line in st.domain_lines():
        typer.echo(line)
    cfg = st.config
    typer.echo(describe(cfg))
    for b in range(cfg.bands or 0):
        typer.echo(
            f"  band {b}: mean={cfg.mean[b]:.3f} std={cfg.std[b]:.3f} "
            f"p{p_low:g}={cfg.low[b]:.3f} p{p_high:g}={cfg.high[b]:.3f}"
        )
    training = st.training_line()
    if training:
        typer.echo(training)
    if st.zero_warning:  # the untagged no-data border `elnet train` would warn about
        logging.getLogger(__name__).warning(st.zero_warning)
    if out is not None:
        write_json_atomic(out, st.payload())
        typer.echo(f"wrote {out}")
    if st.skipped:  # the last line, as in every batch command
        typer.echo(skip_line(len(st.skipped), st.n_pairs, out or "the warnings above"))


@app.command("synth")
def synth_cmd(
    task: str = typer.Option(
        option_default(SynthOptions, "task"), "--task", help="oil-spill | road."
    ),
    count: int = typer.Option(
        option_default(SynthOptions, "count"), "--count", help="Number of scenes."
    ),
    size: int = typer.Option(
        option_default(SynthOptions, "size"), "--size", help="Image side in pixels (32-8192)."
    ),
    out: Path = typer.Option(
        ..., "--out", help="Output folder (images/, masks/, coarse/, dataset.json)."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed; same seed, same bytes."),
    profile: str = typer.Option(
        option_default(SynthOptions, "coarse_profile"),
        "--coarse-profile",
        help=f"Coarse-label profile for coarse/: {COARSE_PROFILES_HELP}",
    ),
    severity: float = typer.Option(
        option_default(SynthOptions, "coarse_severity"),
        "--coarse-severity",
        help="Coarse-label severity in [0, 1].",
    ),
    progress: bool = PROGRESS,
    no_progress: bool = NO_PROGRESS,
) -> None:
    """Generate synthetic scenes with exact masks and simulated coarse labels."""
    from sam2elnet.data.synthetic import generate_dataset
    from sam2elnet.utils.paths import check_output

    progress = bool(switch(progress, no_progress, "progress", True))
    check_options(
        SynthOptions,
        task=task,
        count=count,
        size=size,
        coarse_profile=profile,
        coarse_severity=severity,
    )
    check_output(out, "dir", "--out")
    from sam2elnet.utils.lock import output_lock

    with output_lock(out):  # one job per output folder, like every other batch command
        path = generate_dataset(out, task, count, size, seed, profile, severity, progress=progress)
    typer.echo(f"wrote {count} {task} scenes of {size} px to {out} ({path.name})")


@app.command("degrade")
def degrade_cmd(
    masks: Path = typer.Option(..., "--masks", help="Folder of accurate masks."),
    out: Path = typer.Option(
        ..., "--out", help="Output folder for coarse labels and coarse_iou.csv."
    ),
    profile: str = typer.Option(
        option_default(DegradeOptions, "profile"),
        "--profile",
        help=COARSE_PROFILES_HELP,
    ),
    severity: float = typer.Option(
        option_default(DegradeOptions, "severity"), "--severity", help="Severity in [0, 1]."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    positive_values: str | None = typer.Option(
        None,
        "--positive-values",
        help="Mask value(s) that mean 'object' in class-index masks, e.g. 1 or 2,3.",
    ),
    ids: Path | None = typer.Option(
        None,
        "--ids",
        help="Degrade only these images: a text file (one id per line), a JSON list, or a run's "
        "splits.json (its held_out and unused ids: never trained on) / an experiment's split.json (test).",
    ),
    progress: bool = PROGRESS,
    no_progress: bool = NO_PROGRESS,
) -> None:
    """Simulate coarse labels from accurate masks; write them and a CSV of per-file IoU.

    In the SOS layout (images next to masks) only the masks are degraded."""
    from sam2elnet.data.coarse import degrade_folder
    from sam2elnet.data.mask_values import parse_positive_values
    from sam2elnet.utils.paths import check_input, check_not_input, check_out_folder, check_output

    progress = bool(switch(progress, no_progress, "progress", True))
    check_options(DegradeOptions, profile=profile, severity=severity)
    check_input(masks, "--masks", "mask folder")
    check_output(out, "dir", "--out")
    # the coarse labels keep the masks' names: never into the mask folder; the tables it writes
    # in --out are never the --ids list
    src = [("the masks read with --masks", masks)]
    check_out_folder(out, [("", "its coarse labels")], [], "degrade", folders=src)
    for name in ("coarse_iou.csv", SKIPPED_CSV):
        check_not_input(out / name, [ids], what=f"--out {out}: its {name} {out / name}")
    keep = None
    if ids is not None:
        check_input(ids, "--ids", "id list")
        keep = read_id_list(ids)
    skipped: list[dict[str, str]] = []
    csv_path, mean_iou = degrade_folder(
        masks,
        out,
        profile,
        severity,
        seed,
        progress=progress,
        positive_values=parse_positive_values(positive_values),
        skipped=skipped,
        ids=keep,
    )
    typer.echo(f"wrote coarse labels to {out}; mean IoU to input {mean_iou:.3f} ({csv_path.name})")
    if skipped:
        from sam2elnet.utils.batch import skip_line

        n_total = len(skipped) + len(csv_path.read_text(encoding="utf-8").splitlines()) - 1
        typer.echo(skip_line(len(skipped), n_total, out / SKIPPED_CSV))
