"""``elnet import`` (reviewed annotations back to masks) and ``elnet serve`` (Label Studio ML backend).

Thin wrappers over :mod:`sam2elnet.export.labelstudio`, :mod:`sam2elnet.export.coco_import` and
:mod:`sam2elnet.pipeline.serve`; their errors carry the messages.
"""

# ruff: noqa: UP045  (Optional: typer resolves annotations at runtime; keep 3.10-safe)
from pathlib import Path
from typing import Optional  # noqa: UP035

import typer

from sam2elnet.cli.app import app

_SOURCES = ("label-studio", "coco")


@app.command("import")
def import_cmd(
    export: Path = typer.Argument(
        ..., help="Label Studio JSON export, or a COCO 1.0 JSON (e.g. from CVAT)."
    ),
    source: str = typer.Option(
        ..., "--from", help="label-studio | coco (COCO 1.0 as CVAT exports it)."
    ),
    out: Path = typer.Option(..., "--out", help="Folder for the masks (0/255, named like images)."),
    images: Optional[Path] = typer.Option(
        None,
        "--images",
        help="Source images (folder matched by name, or a file): masks take their size and "
        "georeference.",
    ),
    document_root: Optional[Path] = typer.Option(
        None,
        "--document-root",
        help="Label Studio: document root the image URLs are relative to (to find the images).",
    ),
    category: Optional[str] = typer.Option(
        None, "--category", help="Only regions with this label / category (default: all)."
    ),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
) -> None:
    """Turn reviewed annotations (Label Studio or COCO/CVAT) into masks for `elnet train`."""
    from sam2elnet.errors import UserError
    from sam2elnet.utils.paths import check_input, check_output

    kind = source.lower()
    if kind not in _SOURCES:
        raise UserError(f"unknown --from {source!r}; use {' or '.join(_SOURCES)}")
    check_input(export, "EXPORT", "export file")
    for opt, path in (("--images", images), ("--document-root", document_root)):
        if path is not None:
            check_input(path, opt)
    check_output(out, "dir", "--out")
    if kind == "label-studio":
        from sam2elnet.export.labelstudio import import_label_studio

        res = import_label_studio(
            export,
            out,
            images=images,
            document_root=document_root,
            category=category,
            progress=not no_progress,
        )
    else:
        from sam2elnet.export.coco_import import import_coco

        res = import_coco(export, out, images=images, category=category, progress=not no_progress)
    for note in res.notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(res.summary())
