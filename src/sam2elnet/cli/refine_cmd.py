"""``elnet refine``: classical refinement of coarse labels over a folder (the baselines that
``elnet enhance`` is measured against). Thin layer over :func:`sam2elnet.pipeline.refine.refine_folder`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from sam2elnet.cli.app import app
from sam2elnet.cli.shared_options import NO_PROGRESS
from sam2elnet.data.runfolder import SKIPPED_CSV
from sam2elnet.utils.advice import plural

_METHODS = "morphological | guided | grabcut | no_change"


@app.command("refine")
def refine_cmd(
    method: str = typer.Option(
        ...,
        "--method",
        help=f"{_METHODS}: opening/closing/hole filling; guided filter snapping edges to the "
        "image; GrabCut from the coarse label; the coarse label itself.",
    ),
    images: Path = typer.Option(..., "--images", help="Image folder (PNG/JPEG/GeoTIFF)."),
    coarse: Path = typer.Option(
        ..., "--coarse", help="Folder of coarse labels, matched to the images by name."
    ),
    out: Path = typer.Option(..., "--out", help="Output folder for the refined labels."),
    modality: str = typer.Option(
        "auto",
        "--modality",
        help="auto (default: from the dataset layout or dataset.json the images belong to, else "
        "from the images; grey images cannot tell, see docs/data.md) | sar | optical: how the "
        "images are normalised (as in training).",
    ),
    skip_missing: bool = typer.Option(
        False, "--skip-missing", help="Refine only the images that have a coarse label."
    ),
    resume: bool = typer.Option(False, "--resume", help="Keep labels already written in OUT."),
    no_progress: bool = NO_PROGRESS,
) -> None:
    """Refine coarse labels with a classical method; score them with `elnet evaluate --baseline`."""
    from sam2elnet.pipeline.refine import refine_folder
    from sam2elnet.utils.paths import check_input, check_output

    check_input(images, "--images", "image folder")
    check_input(coarse, "--coarse", "coarse label folder")
    check_output(out, "dir", "--out")
    res = refine_folder(
        images,
        coarse,
        out,
        method,
        modality=modality,
        skip_missing=skip_missing,
        resume=resume,
        progress=not no_progress,
    )
    done = len(res.rows) - res.n_resumed
    kept = f" ({res.n_resumed} kept from an earlier run)" if res.n_resumed else ""
    typer.echo(
        f"refined {plural(done, 'label')} with {method} in {res.seconds:.1f} s{kept}; "
        f"outputs in {out} (refine.csv)"
    )
    if res.missing_labels_note:  # --skip-missing, as enhance prints it
        typer.echo(f"note: {res.missing_labels_note}", err=True)
    if res.skipped:
        from sam2elnet.utils.batch import skip_line

        typer.echo(skip_line(len(res.skipped), len(res.rows) + len(res.skipped), out / SKIPPED_CSV))
