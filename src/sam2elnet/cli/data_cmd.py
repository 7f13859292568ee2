"""Data commands: ``elnet stats``, ``elnet synth``, ``elnet degrade`` (thin wrappers over sam2elnet.data)."""

from __future__ import annotations

from pathlib import Path

import typer

from sam2elnet.cli.app import app


@app.command("stats")
def stats_cmd(
    data: Path = typer.Option(
        ..., "--data", help="Dataset folder (SOS, CHN6-CUG or images/ + masks/)."
    ),
    layout: str = typer.Option("auto", "--layout", help="auto | sos | chn6 | generic."),
    split: list[str] = typer.Option(
        None, "--split", help="Only these splits (train, val, test); repeatable."
    ),
    sensor: list[str] = typer.Option(
        None, "--sensor", help="SOS only: palsar and/or sentinel; repeatable."
    ),
    modality: str = typer.Option(
        None, "--modality", help="sar | optical (default: from the layout)."
    ),
    to_db: bool = typer.Option(
        False, "--db", help="Convert linear SAR intensity to dB before statistics."
    ),
    p_low: float = typer.Option(1.0, "--p-low", help="Lower percentile for the scaling range."),
    p_high: float = typer.Option(99.0, "--p-high", help="Upper percentile for the scaling range."),
    max_images: int = typer.Option(
        0, "--max-images", help="Use at most N images (evenly spaced); 0 = all."
    ),
    out: Path = typer.Option(None, "--out", help="Write the normalisation config (JSON) here."),
    check: bool = typer.Option(
        False, "--check", help="Verify every image/label pair has the same size."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="List unmatched files."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Count image/label pairs per split and sensor and compute per-band normalisation statistics."""
    from sam2elnet.data.datasets import discover, verify_pairs
    from sam2elnet.data.normalize import NormalizationConfig, compute_stats
    from sam2elnet.utils.atomic import write_json_atomic

    index = discover(
        data, layout=layout, split=split or None, sensors=sensor or None, modality=modality
    )
    typer.echo(f"layout: {index.layout}  modality: {index.modality}  pairs: {len(index.samples)}")
    for (sp, se), n in index.counts().items():
        typer.echo(f"  split={sp:<6} sensor={se:<9} pairs={n}")
    typer.echo(f"unmatched files: {len(index.unmatched)}")
    if verbose:
        for p in index.unmatched:
            typer.echo(f"  unmatched: {p}")
    samples = index.samples
    if check:
        verify_pairs(samples, strict=True, progress=progress)
        typer.echo("all pairs have matching sizes")
    if max_images and len(samples) > max_images:
        step = len(samples) / max_images
        samples = [samples[int(i * step)] for i in range(max_images)]
    base = NormalizationConfig.for_modality(index.modality).model_copy(
        update={"to_db": to_db, "p_low": p_low, "p_high": p_high}
    )
    cfg = compute_stats([s.image for s in samples], base, progress=progress)
    for b in range(cfg.bands or 0):
        typer.echo(
            f"  band {b}: mean={cfg.mean[b]:.3f} std={cfg.std[b]:.3f} "
            f"p{p_low:g}={cfg.low[b]:.3f} p{p_high:g}={cfg.high[b]:.3f}"
        )
    if out is not None:
        payload = {
            "normalization": cfg.model_dump(),
            "layout": index.layout,
            "modality": index.modality,
            "pairs": {f"{sp}/{se}": n for (sp, se), n in index.counts().items()},
            "unmatched": len(index.unmatched),
            "images_used": len(samples),
        }
        write_json_atomic(out, payload)
        typer.echo(f"wrote {out}")


@app.command("synth")
def synth_cmd(
    task: str = typer.Option("oil-spill", "--task", help="oil-spill | road."),
    count: int = typer.Option(200, "--count", help="Number of scenes."),
    size: int = typer.Option(256, "--size", help="Image side in pixels."),
    out: Path = typer.Option(
        ..., "--out", help="Output folder (images/, masks/, coarse/, dataset.json)."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed; same seed, same bytes."),
    profile: str = typer.Option(
        "mixed", "--coarse-profile", help="Coarse-label profile for coarse/."
    ),
    severity: float = typer.Option(
        0.5, "--coarse-severity", help="Coarse-label severity in [0, 1]."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Generate synthetic scenes with exact masks and simulated coarse labels."""
    from sam2elnet.data.synthetic import generate_dataset

    path = generate_dataset(out, task, count, size, seed, profile, severity, progress=progress)
    typer.echo(f"wrote {count} {task} scenes of {size} px to {out} ({path.name})")


@app.command("degrade")
def degrade_cmd(
    masks: Path = typer.Option(..., "--masks", help="Folder of accurate masks."),
    out: Path = typer.Option(
        ..., "--out", help="Output folder for coarse labels and coarse_iou.csv."
    ),
    profile: str = typer.Option(
        "mixed", "--profile", help="polygon | sloppy | blocky | strip | mixed."
    ),
    severity: float = typer.Option(0.5, "--severity", help="Severity in [0, 1]."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Simulate coarse labels from accurate masks; write them and a CSV of per-file IoU."""
    from sam2elnet.data.coarse import degrade_folder

    csv_path, mean_iou = degrade_folder(masks, out, profile, severity, seed, progress=progress)
    typer.echo(f"wrote coarse labels to {out}; mean IoU to input {mean_iou:.3f} ({csv_path.name})")
