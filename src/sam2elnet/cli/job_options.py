"""The options ``elnet annotate`` and ``elnet enhance`` share: declared once, given to both commands.

:data:`SHARED_JOB_OPTIONS` lists them (name, type, typer option); :func:`with_job_options` appends
them to a command's signature; :func:`job_kwargs` validates them through
:class:`~sam2elnet.options.FolderJobOptions` (defaults and ranges written there) into the keyword
arguments of :func:`sam2elnet.pipeline.jobs.annotate_folder` / ``enhance_folder``;
:func:`check_job_io` checks the paths before the model loads. The commands are
:mod:`sam2elnet.cli.engine_cmd`.
"""

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Optional  # noqa: UP035  (typer resolves these at runtime on 3.10)

import typer

from sam2elnet.cli.shared_options import FILTER_HELP, NO_PROGRESS, WARP_METHOD, WARP_TO
from sam2elnet.option_checks import check_options, option_default
from sam2elnet.option_values import DEFAULT_WARP_METHOD, PRECISION_HELP
from sam2elnet.options import TILE_RANGE_HELP, FolderJobOptions

# Options shared by annotate and enhance (one definition, one help text).
MODEL = typer.Option(..., "--model", help="Model file from `elnet train` (RUN/model.pt).")
IMAGES = typer.Option(..., "--images", help="Image folder or single image (PNG/JPEG/GeoTIFF).")
OUT = typer.Option(..., "--out", help="Output folder.")
_MIN_QUALITY = typer.Option(None, "--min-quality", help=FILTER_HELP["min_quality"])
_TARGET_PRECISION = typer.Option(None, "--target-precision", help=FILTER_HELP["target_precision"])
_TAU = typer.Option(None, "--tau", help=FILTER_HELP["tau"])
_SAVE_PROB = typer.Option(False, "--save-prob", help="Also write probability maps (OUT/prob/).")
_RESUME = typer.Option(False, "--resume", help="Skip images already done in OUT.")
_REPORT = typer.Option(False, "--report", help="Write OUT/report.html.")
_D = FolderJobOptions  # the one declaration of these options' defaults and ranges
_BATCH = typer.Option(
    option_default(_D, "batch_size"), "--batch-size", help="Images per forward pass (1-1024)."
)
_DEVICE = typer.Option(option_default(_D, "device"), "--device", help="cpu | cuda | cuda:N.")
_PRECISION = typer.Option(option_default(_D, "precision"), "--precision", help=PRECISION_HELP)
_TTA = typer.Option(None, "--tta", help="Override the evaluator's test-time views (0-7).")
_TILE = typer.Option(
    None,
    "--tile",
    help=f"Window size, px, for images too large for --max-memory ({TILE_RANGE_HELP}).",
)
_OVERLAP = typer.Option(
    option_default(_D, "overlap"),
    "--overlap",
    help="Window overlap for windowed images, px (0 to < --tile).",
)
_MAX_MEMORY = typer.Option(
    None,
    "--max-memory",
    help="Memory budget, e.g. 1.5G or 800M (default "
    f"{option_default(_D, 'max_memory') / 1e9:g}G): images too large to predict whole within it "
    "are predicted window by window (--tile, --overlap).",
)
_BACKEND = typer.Option(
    option_default(_D, "backend"),
    "--backend",
    help="local | ray: spread the images over Ray workers (same outputs; docs/geospatial.md).",
)
_ADDRESS = typer.Option(
    None,
    "--address",
    help="Ray cluster with --backend ray: auto, HOST:6379 or ray://HOST:10001 (default: a "
    "private local Ray).",
)
_WORKERS = typer.Option(
    option_default(_D, "workers"),
    "--workers",
    help="Ray actors with --backend ray (each loads the model once).",
)
_BANDS = typer.Option(
    None,
    "--bands",
    help="File bands to use, 1-based, e.g. 4,3,2 (default: the bands the model was trained on); "
    "a number may repeat: 1,1 feeds band 1 to both bands of a two-band (e.g. VV+VH) model.",
)


# The options annotate and enhance share, declared once and appended to both commands'
# signatures by with_job_options (typer reads a command's options from its signature, and a
# decorator may replace that through ``__signature__``, see inspect.signature).
SHARED_JOB_OPTIONS: list[tuple[str, object, object]] = [
    ("min_quality", Optional[float], _MIN_QUALITY),  # noqa: UP045
    ("target_precision", Optional[float], _TARGET_PRECISION),  # noqa: UP045
    ("tau", Optional[float], _TAU),  # noqa: UP045
    ("save_prob", bool, _SAVE_PROB),
    ("resume", bool, _RESUME),
    ("report", bool, _REPORT),
    ("batch_size", int, _BATCH),
    ("device", str, _DEVICE),
    ("precision", str, _PRECISION),
    ("tta", Optional[int], _TTA),  # noqa: UP045
    ("no_progress", bool, NO_PROGRESS),
    ("tile", Optional[int], _TILE),  # noqa: UP045
    ("overlap", int, _OVERLAP),
    ("bands", Optional[str], _BANDS),  # noqa: UP045
    ("max_memory", Optional[str], _MAX_MEMORY),  # noqa: UP045
    ("backend", str, _BACKEND),
    ("address", Optional[str], _ADDRESS),  # noqa: UP045
    ("workers", int, _WORKERS),
    ("warp_to", Optional[str], WARP_TO),  # noqa: UP045
    ("warp_method", str, WARP_METHOD),
]


def with_job_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command`` (which takes them as ``**shared``) the options of SHARED_JOB_OPTIONS."""
    sig = inspect.signature(command)
    own = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    shared = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=ann)
        for name, ann, opt in SHARED_JOB_OPTIONS
    ]
    command.__signature__ = sig.replace(parameters=own + shared)  # type: ignore[attr-defined]
    return command


def job_kwargs(**kw: object) -> dict[str, object]:
    """Keyword arguments shared by annotate_folder and enhance_folder, validated against
    :class:`~sam2elnet.options.FolderJobOptions` (ranges in the error message)."""
    names = set(FolderJobOptions.model_fields)
    checked = check_options(FolderJobOptions, **{k: v for k, v in kw.items() if k in names})
    for k in names & set(kw):
        kw[k] = getattr(checked, k)
    kw["progress"] = not kw.pop("no_progress")
    if "warp_to" in kw:  # checked before the model loads or anything is written
        from sam2elnet.data.warp import check_warp_options

        method = kw.get("warp_method", DEFAULT_WARP_METHOD)
        kw["warp_to"] = check_warp_options(kw["warp_to"], method)  # type: ignore[arg-type]
    if "bands" in kw:
        from sam2elnet.data.images import parse_bands

        kw["bands"] = parse_bands(kw["bands"])  # type: ignore[arg-type]
    return kw


def check_job_io(images: Path, out: Path, model: Path, labels: Path | None = None) -> None:
    """Inputs exist and the output folder can be created: checked before the model loads."""
    from sam2elnet.utils.paths import check_input, check_output

    check_input(model, "--model", "model file")
    check_input(images, "--images", "image file or folder")
    if labels is not None:
        check_input(labels, "--labels", "label file or folder")
    check_output(out, "dir", "--out")
