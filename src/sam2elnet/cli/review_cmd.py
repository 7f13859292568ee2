"""``elnet import`` (reviewed annotations back to masks) and ``elnet serve`` (Label Studio ML backend).

Thin wrappers over :func:`sam2elnet.export.review_import.import_labels` (the importers and
``--with-labels``' training set) and :mod:`sam2elnet.pipeline.serve`; their errors carry the
messages.
"""

# ruff: noqa: UP045  (Optional: typer resolves annotations at runtime; keep 3.10-safe)
from pathlib import Path
from typing import Optional  # noqa: UP035

import typer

from sam2elnet.cli.app import app
from sam2elnet.cli.shared_options import (
    LINE_WIDTH,
    LINE_WIDTH_PX,
    NO_PROGRESS,
    line_width_unit,
    switch,
)
from sam2elnet.option_checks import check_options, option_default
from sam2elnet.options import ImportOptions
from sam2elnet.pipeline.serve_config import BackendConfig

#: ``import``'s --layer: repeated, several layers burnt into the same masks
IMPORT_LAYERS = typer.Option(
    None,
    "--layer",
    help="--from vector: the layer to read from a file with several (default: its 'labels' "
    "layer, else the first polygon / line layer, with a warning naming the layers); repeat it "
    "to burn several layers into the same masks, e.g. --layer labels --layer missing_roads "
    "(lines buffered to --line-width, polygons as they are).",
)


@app.command("import")
def import_cmd(
    export: Path = typer.Argument(
        ...,
        help="Label Studio JSON export, a CVAT export (zip or annotations.xml), a COCO 1.0 JSON, "
        "or a polygon or line layer (.gpkg/.shp/.geojson, e.g. an `elnet export` GeoPackage "
        "edited in QGIS; lines: --line-width).",
    ),
    source: str = typer.Option(
        ...,
        "--from",
        help="label-studio | coco (COCO 1.0) | cvat (CVAT's download as it is: 'CVAT for "
        "images 1.1', 'Segmentation mask 1.1' or 'COCO 1.0', told by content) | vector "
        "(GeoPackage / Shapefile / GeoJSON polygons, e.g. from QGIS; needs --images).",
    ),
    out: Path = typer.Option(
        ...,
        "--out",
        help="Folder for the masks (0/255, named like their images; not the images' folder); "
        "afterwards it holds exactly this import's masks (stale ones of an earlier import are "
        "removed).",
    ),
    images: Optional[Path] = typer.Option(
        None,
        "--images",
        help="Source images (folder matched by name, or a file): masks take their size and "
        "georeference. vector: required; the reviewed ones among them get masks. cvat: "
        "without it, the images of a zip downloaded with 'Save images' are used.",
    ),
    document_root: Optional[Path] = typer.Option(
        None,
        "--document-root",
        help="Label Studio: document root the image URLs are relative to (to find the images).",
    ),
    category: Optional[str] = typer.Option(
        None,
        "--category",
        help="Only regions with this label / category (default: all; vector: the 'category' "
        "attribute).",
    ),
    review_set: Optional[Path] = typer.Option(
        None,
        "--review-set",
        help="vector, cvat, coco: the export's review record as `elnet export` wrote it "
        "beside the .gpkg (<stem>_review.json), .geojson / .shp (<stem>_geojson_review.json, "
        "<stem>_shp_review.json) or COCO file (<stem>_coco_review.json) (default: the one next "
        "to the layer; cvat/coco: the one COCO export's record in the download's folder that "
        "lists its images). vector: only the images it lists get masks.",
    ),
    all_images: bool = typer.Option(
        False,
        "--all-images",
        help="vector: a mask for every image of --images (all background where no polygon is).",
    ),
    reviewed_only: bool = typer.Option(
        False,
        "--reviewed-only",
        help="vector, cvat, coco: masks only for the images whose mask differs from the "
        "exported one (vector: a polygon moved, deleted or drawn, or status = 'accepted'; "
        "cvat/coco: a shape drawn, changed or deleted); the others come back as exported and "
        "are left out (a partial review). Needs the export's review record.",
    ),
    with_labels: Optional[Path] = typer.Option(
        None,
        "--with-labels",
        help="The kept auto-labels (RUN/labels of elnet annotate / enhance): also build the "
        "next training set, --train-set, of the images with their reviewed mask where there is "
        "one, else their kept auto-label (rejected labels nobody reviewed are left out); images "
        "hard-linked or copied, masks copied, rebuilt by each import. Images: a reviewed mask's "
        "the one the import read, else the run's, else --images.",
    ),
    train_set: Optional[Path] = typer.Option(
        None,
        "--train-set",
        help="With --with-labels: the training folder to write (images/ + masks/, for "
        "`elnet train --data`; default: --out/train-set).",
    ),
    layer: Optional[list[str]] = IMPORT_LAYERS,
    line_width: Optional[float] = LINE_WIDTH,
    line_width_px: bool = LINE_WIDTH_PX,
    no_progress: bool = NO_PROGRESS,
) -> None:
    """Turn reviewed annotations (Label Studio, CVAT, QGIS) into masks for `elnet train`
    (--with-labels: and the next training set, reviewed masks over the kept auto-labels)."""
    from sam2elnet.export.review_import import import_labels, import_source
    from sam2elnet.utils.paths import check_input, check_output

    kind = import_source(source)
    check_options(
        ImportOptions, source=kind, line_width=line_width,
        line_width_unit=line_width_unit(line_width_px), layer=layer, review_set=review_set,
        all_images=all_images, reviewed_only=reviewed_only,
    )  # fmt: skip
    check_input(export, "EXPORT", "export file")
    for opt, path in (
        ("--images", images),
        ("--document-root", document_root),
        ("--review-set", review_set),
    ):
        if path is not None:
            check_input(path, opt)
    check_output(out, "dir", "--out")
    res = import_labels(
        kind, export, out, images=images, document_root=document_root, category=category,
        review_set=review_set, all_images=all_images, reviewed_only=reviewed_only, layer=layer,
        line_width=line_width, line_width_unit=line_width_unit(line_width_px),
        with_labels=with_labels, train_set=train_set, progress=not no_progress,
    )  # fmt: skip
    for note in res.notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(res.summary())


@app.command("serve")
def serve_cmd(
    model: Path = typer.Option(..., "--model", help="Model file from `elnet train`."),
    workdir: Path = typer.Option(
        option_default(BackendConfig, "workdir"),
        "--workdir",
        help="Folder for reviewed masks (data/images, data/masks) and fine-tuning runs (runs/).",
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(9090, "--port", help="Port to listen on."),
    document_root: Optional[Path] = typer.Option(
        None,
        "--document-root",
        help="Label Studio's LOCAL_FILES_DOCUMENT_ROOT, to read /data/local-files images directly.",
    ),
    ls_url: Optional[str] = typer.Option(
        None, "--ls-url", help="Label Studio URL for image downloads (default: from /setup)."
    ),
    ls_token: Optional[str] = typer.Option(
        None,
        "--ls-token",
        envvar="LABEL_STUDIO_API_KEY",
        help="Label Studio API token for image downloads (default: from /setup).",
    ),
    threshold: float = typer.Option(
        option_default(BackendConfig, "threshold"),
        "--threshold",
        help="Probability threshold for masks, in (0, 1).",
    ),
    category: Optional[str] = typer.Option(
        None,
        "--category",
        help="Label name in the results (default: the model's domain, 'road' or 'oil spill', "
        "else 'foreground', as `elnet export` names it).",
    ),
    train: bool = typer.Option(
        False,
        "--train",
        help="Fine-tune on submitted annotations (via the webhook)"
        + ("; the default." if option_default(BackendConfig, "train") else "."),
    ),
    no_train: bool = typer.Option(False, "--no-train", help="Pre-annotate only: never fine-tune."),
    train_after: int = typer.Option(
        option_default(BackendConfig, "train_after"),
        "--train-after",
        help="Start fine-tuning after this many new reviewed annotations.",
    ),
    epochs: int = typer.Option(
        option_default(BackendConfig, "epochs"), "--epochs", help="Epochs of each fine-tuning run."
    ),
    image_size: int | None = typer.Option(  # noqa: UP045
        option_default(BackendConfig, "image_size"),
        "--image-size",
        help="Crop size (pixels) of the fine-tuning runs (default: the size the model was "
        "trained at, from its training record; 256 without one).",
    ),
    device: str = typer.Option(
        option_default(BackendConfig, "device"), "--device", help="cpu | cuda | cuda:N"
    ),
) -> None:
    """Run a Label Studio ML backend: pre-annotations on demand, fine-tuning on reviews."""
    from sam2elnet.pipeline.serve import serve
    from sam2elnet.utils.paths import check_input, check_output

    train_on = switch(train, no_train, "train", option_default(BackendConfig, "train"))
    cfg = check_options(
        BackendConfig,
        model=model,
        workdir=workdir,
        document_root=document_root,
        ls_url=ls_url,
        ls_token=ls_token,
        threshold=threshold,
        category=category,
        device=device,
        train=train_on,
        train_after=train_after,
        epochs=epochs,
        image_size=image_size,
    )
    check_input(model, "--model", "model file")
    check_output(workdir, "dir", "--workdir")
    if document_root is not None:
        check_input(document_root, "--document-root")
    serve(cfg, host=host, port=port)
