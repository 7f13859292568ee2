"""``elnet demo``: the whole tool in a few minutes on a fresh CPU machine, with no downloads.

Steps: generate a small synthetic SAR oil-spill set (:mod:`sam2elnet.data.synthetic`; or use
``--data DIR``), fine-tune a small SAM2-ELNet on 30 % of it, enhance and refine coarse labels and
score them against the true labels, auto-annotate the rest, filter by predicted quality, train the
downstream U-Net on each label set of table 1, and write ``OUT/report.html`` plus ``OUT/results.md``.

Size choices (measured on the 2-core development CPU, see docs/results.md): 120 images of 128 px,
Hiera-``tiny`` (pretrained weights from the local cache when present, otherwise random with a clear
notice; on a CPU without native bf16 and without cached weights Hiera-``micro``, see below), 40
SAM2-ELNet epochs (120 updates of 8 on the 25 training images of the 29 labelled; 8
were too few: enhancement then made labels worse; 24 left SAM2-ELNet's own test IoU at 0.433
instead of 0.543 and its enhanced labels below the coarse ones, 0.637 vs 0.648 label IoU, measured
2026-12-01 with ``--epochs 24``), a width-8 U-Net downstream given the same number of updates in every
setting (what setting (a) gets in 6 epochs), only the simulated-coarse variant in the enhancement
table, and that table scored by label IoU against the true labels only
(``enhancement_downstream=False``): the five downstream U-Nets of table 2 took about as long as
table 1's five (half of the 222 s of downstream training in docs/benchmarks.md, "Demo timing"),
and the label IoU is the direct measure of label quality. ``elnet experiment`` trains them (the
paper's table 2). ``micro`` is the size on CPUs that train in float32 (no native bf16) when no
SAM2 weights are cached (:func:`demo_size`): there ``tiny`` took 190-226 s (its 40 epochs 119 s),
``micro`` 111-129 s with the same reading of both tables (docs/benchmarks.md, "Demo timing"). On a
real folder (``--data``)
a seeded subset of ``count`` training and ``count/4`` test images is used, and its own labels join
the enhancement table when it ships separate coarse ones (labels that are the truth itself cannot
be scored, so they are not refined or enhanced; the table says why). The demo is the
experiment pipeline with a small budget, so it is cached and resumable too.
"""

from __future__ import annotations

import json
import math
import time
from functools import partial
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sam2elnet.data.runfolder import REPORT_HTML
from sam2elnet.errors import DataError
from sam2elnet.option_values import ModelSize
from sam2elnet.utils.atomic import write_text_atomic


class DemoConfig(BaseModel):
    """Budget of the demo (the hidden CLI options exist so tests can run it in seconds).

    One declaration of every option's default and range: the CLI takes its defaults from here
    and validates through it (:func:`sam2elnet.option_checks.check_options`).
    """

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    data: Path | None = None
    """A labelled folder to run on instead of synthetic data."""
    out: Path = Path("demo-out")
    count: int = Field(120, ge=8, le=100_000)
    """Synthetic images to generate (on real data: the training-pool cap, test = count / 4); at
    least 8, so the labelled 30 % of the training pool holds two images."""
    image_size: int = Field(128, ge=32, le=4096)
    """Image side and crop size, px."""
    epochs: int = Field(40, ge=1)
    """SAM2-ELNet epochs: the labelled 30 % is small (29 images, 25 of them for training), so 40
    epochs are 120 updates (~3 min on the 2-core AVX2 VM, docs/benchmarks.md "Demo timing"); 8
    and 24 epochs left enhancement worse than its input (measured)."""
    downstream_epochs: int = Field(6, ge=1)
    """Every downstream model gets the updates that setting (a) gets in this many epochs, so
    settings with fewer labels are not also trained for fewer steps."""
    size: ModelSize | Literal["auto"] = "auto"
    """Hiera size of SAM2-ELNet; ``auto``: :func:`demo_size` (``tiny`` where the CPU trains in
    bf16 natively or SAM2 tiny weights are cached, else ``micro``; a re-run into a folder with a
    finished stage: the size it was started with, :func:`recorded_size`)."""
    max_train: int | None = Field(None, ge=2)
    seed: int = 0
    resume: bool = False
    progress: bool = True


# Seconds per stage of each kind of the default demo on the idle 2-core reference machine (native
# bf16; docs/benchmarks.md "Demo timing", 2026-12-02 17:34 UTC, 171 s: SAM2-ELNet 96 s, the five
# U-Nets 57 s, annotation, refinement and enhancement 9 s). A downstream U-Net: one training on
# one thread (engine.downstream_pool; 8.3-9.2 CPU s measured 2026-12-03, 9.5 s wall with the
# evaluation), its time on one core; side by side on 2 cores the ETA counts them with
# engine.downstream_pool.makespan (Stages.side_by_side)
REFERENCE_SECONDS: dict[str, float] = {
    "split": 1.5, "subsets": 0.2, "elnet": 96.0, "annotate": 2.5, "elnettest": 1.2,
    "autocounts": 0.1, "coarse": 0.3, "refine": 0.8, "enhance": 3.0, "downstream": 9.5,
    "labelscore": 0.1,
}  # fmt: skip


# Seconds per stage of each kind of the default demo with Hiera-micro on the idle 2-core AVX2 AMD
# EPYC VM without native bf16, where demo_size chooses micro and everything runs in float32
# (docs/benchmarks.md "Demo timing", 2026-12-04 16:55 UTC, 129 s; a downstream U-Net: one
# training's CPU seconds on one thread): the ETA's start on the machines that run micro.
MICRO_REFERENCE_SECONDS: dict[str, float] = {
    "split": 0.2, "subsets": 0.1, "elnet": 58.0, "annotate": 1.2, "elnettest": 0.6,
    "autocounts": 0.1, "coarse": 0.2, "refine": 0.8, "enhance": 2.4, "downstream": 18.5,
    "labelscore": 0.1,
}  # fmt: skip

#: Why :func:`demo_size` chose each size (the demo's log line and report note).
SIZE_WHY = {
    "bf16": "auto: this CPU trains in bf16 natively",
    "cached": "auto: SAM2 tiny weights are cached",
    "float32": (
        "auto: no native bf16 on this CPU, so training runs in float32, where Hiera-tiny's 40 "
        "epochs take over twice as long, and no SAM2 weights are cached"
    ),
}


def demo_size(cfg: DemoConfig) -> tuple[str, str]:
    """The Hiera size the demo trains and why: ``(size, reason)``.

    ``cfg.size`` as given unless it is ``"auto"``; then ``"tiny"`` where the CPU computes bf16
    natively (:func:`sam2elnet.engine.runtime.native_bf16`, so ``--precision auto`` trains in
    bf16) or the SAM2 tiny weights are in the local cache (a pretrained trunk is worth its
    time), else ``"micro"``: a random-trunk demo in float32 that keeps both tables' reading
    within the 2-minute budget (docs/benchmarks.md, "Demo timing"). The same machine type
    gets the same size, so its numbers are reproducible (``SAM2ELNET_NATIVE_BF16=1`` / ``=0``
    overrides the detection). Raises nothing: an unreadable weights cache counts as empty.
    """
    if cfg.size != "auto":
        return cfg.size, "--size"
    from sam2elnet.engine.runtime import native_bf16

    if native_bf16("cpu"):
        return "tiny", SIZE_WHY["bf16"]
    try:
        from sam2elnet.model.weights_cache import find_cached_weights

        cached = find_cached_weights("tiny") is not None
    except Exception:  # noqa: BLE001 - an unreadable cache is no cache (as the experiment reads it)
        cached = False
    return ("tiny", SIZE_WHY["cached"]) if cached else ("micro", SIZE_WHY["float32"])


def recorded_size(experiment_out: Path) -> str | None:
    """The Hiera size the demo's experiment in ``experiment_out`` (``OUT/experiment``) was made
    with, once one of its stages finished (then ``experiment.json`` binds it: another size is
    another experiment); None when nothing is finished or the record cannot be read. A re-run
    with ``--size auto`` keeps it (:func:`run_demo`), so a folder made where auto chose
    ``tiny`` (or before ``micro`` became the float32 choice) continues as it was started."""
    record = experiment_out / "experiment.json"
    if not (record.is_file() and any((experiment_out / "stages").glob("*.json"))):
        return None
    try:
        size = json.loads(record.read_text(encoding="utf-8")).get("size")
    except (OSError, ValueError, AttributeError):
        return None
    return size if isinstance(size, str) else None


def reference_seconds(cfg: DemoConfig, size: str = "tiny") -> dict[str, float]:
    """:data:`REFERENCE_SECONDS` (a ``size`` of ``"micro"``: :data:`MICRO_REFERENCE_SECONDS`)
    scaled to ``cfg``'s budget (images x pixels, and the epochs of SAM2-ELNet and of the
    downstream U-Nets): the ETA of the stages not timed yet in a run, which scales them again by
    that run's speed (:meth:`~sam2elnet.pipeline.experiment_stages.Stages.expect`). Seconds per
    stage kind.
    """
    default = DemoConfig()
    work = (cfg.count / default.count) * (cfg.image_size / default.image_size) ** 2
    base = MICRO_REFERENCE_SECONDS if size == "micro" else REFERENCE_SECONDS
    ref = {k: v * work for k, v in base.items()}
    ref["elnet"] *= cfg.epochs / default.epochs
    ref["downstream"] *= cfg.downstream_epochs / default.downstream_epochs
    return ref


def _synthetic(cfg: DemoConfig) -> Path:
    """Generate (or reuse) the synthetic oil-spill set under OUT/data."""
    from sam2elnet.data.synthetic import generate_dataset

    root = Path(cfg.out) / "data"
    meta = root / "dataset.json"
    if meta.is_file():
        m = json.loads(meta.read_text(encoding="utf-8"))
        if (
            m.get("count") == cfg.count
            and m.get("size") == cfg.image_size
            and m.get("seed") == cfg.seed
        ):
            return root
        raise DataError(
            "the demo folder holds synthetic data of another size/count; choose a new --out", root
        )
    generate_dataset(
        root,
        task="oil-spill",
        count=cfg.count,
        size=cfg.image_size,
        seed=cfg.seed,
        progress=cfg.progress,
    )
    return root


def run_demo(cfg: DemoConfig) -> dict[str, Any]:
    """Run the demo; return {"results": results dict, "report": path, "results_md": path, "seconds"}.

    Raises:
        DataError: ``cfg.data`` given but missing, ``cfg.out`` holding synthetic data of another
            size / count (choose a new ``out``), or the data giving no usable labelled pairs.
        UserError, CheckpointError, LockedError: what
            :func:`~sam2elnet.pipeline.experiment.run_experiment` raises for the experiment it
            runs under ``cfg.out / "experiment"`` (options that select no image, unusable
            ``weights``, another job writing there).
    """
    from sam2elnet.pipeline.experiment import run_experiment
    from sam2elnet.pipeline.experiment_config import ExperimentConfig

    t0 = time.perf_counter()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.data is None:
        data = _synthetic(cfg)
        sources: tuple[str, ...] = ("sim",)
        max_train, max_test = cfg.max_train, None
    else:
        data = Path(cfg.data)
        if not data.exists():
            raise DataError("data folder does not exist; check --data", data)
        sources = ("sim", "own")
        # a demo budget on real folders too: a seeded subset (the experiment command runs on all)
        max_train = cfg.max_train if cfg.max_train is not None else cfg.count
        max_test = max(2, cfg.count // 4)
    size, why = demo_size(cfg)
    if cfg.size == "auto":
        from sam2elnet.utils.progress import line

        kept = recorded_size(out / "experiment")
        if kept is not None and kept != size:  # the folder's experiment goes on as started
            size, why = kept, f"as this demo folder was started; auto chooses {size} here now"
        line(f"model: Hiera-{size} ({why}; --size tiny or micro chooses)")
    pool = max_train if max_train is not None else round(cfg.count * 0.8)
    downstream_steps = max(1, math.ceil(pool / 8)) * cfg.downstream_epochs
    ecfg = ExperimentConfig(
        data=data,
        out=out / "experiment",
        fraction=0.3,
        epochs=cfg.epochs,
        downstream_epochs=cfg.downstream_epochs,
        downstream_steps=downstream_steps,
        image_size=cfg.image_size,
        batch_size=8,
        max_train=max_train,
        max_test=max_test,
        size=size,
        seed=cfg.seed,
        sources=sources,
        downstream_width=8,
        enhancement_downstream=False,  # table 2 by label IoU only: 5 fewer U-Nets (docstring)
        eta_reference=reference_seconds(cfg, size),
        resume=cfg.resume,
        progress=cfg.progress,
        report=False,
    )
    results = run_experiment(ecfg)
    if cfg.size == "auto":
        results.setdefault("notes", []).insert(0, f"SAM2-ELNet: Hiera-{size} ({why}).")
    report = _demo_report(ecfg, results, out)
    md = out / "results.md"

    write_text_atomic(md, (ecfg.out / "results.md").read_text(encoding="utf-8"))
    return {
        "results": results,
        "report": report,
        "results_md": md,
        "seconds": time.perf_counter() - t0,
    }


def _demo_report(ecfg: Any, results: dict[str, Any], out: Path) -> Path:
    """OUT/report.html: enhancement and annotation examples next to the truth, both tables, plot."""
    from sam2elnet.pipeline.experiment_report import auto_label_item
    from sam2elnet.pipeline.experiment_split import Split
    from sam2elnet.pipeline.experiment_stages import stage_summary
    from sam2elnet.pipeline.report_items import ReportItem
    from sam2elnet.pipeline.report_protocol import write_protocol_report

    exp = Path(ecfg.out)
    # the stored summaries name files relative to the run folder: read them resolved against it
    stage = partial(stage_summary, exp)
    split = Split(**stage("split"))
    auto = stage("annotate")
    items: list[ReportItem] = []
    enh_marker = exp / "stages" / "enhance_sim.json"
    if enh_marker.is_file():
        enh = stage("enhance_sim")
        for i in split.unlabelled[:12]:
            items.append(
                ReportItem(
                    name=f"enhance {i}",
                    image=split.images[i],
                    input_label=str(exp / "labels" / "sim" / "coarse" / f"{i}.png"),
                    output=enh["labels"][i],
                    truth=split.masks[i],
                    predicted_iou=enh["quality"].get(i),
                    extra={"task": "enhance a simulated coarse label"},
                )
            )
    items += [
        auto_label_item(
            i, split, auto, name=f"annotate {i}", extra={"task": "automatic annotation"}
        )
        for i in split.unlabelled
    ]
    notes = [
        results["weights"]["note"],
        "Demo budget: tiny data, few epochs; the numbers show the pipeline works, not what the "
        "method reaches on real data with pretrained SAM2 weights.",
        *results.get("notes", []),
    ]
    return write_protocol_report(
        out / REPORT_HTML,
        results,
        items,
        title="SAM2-ELNet demo",
        notes=notes,
        figure=(exp / "results.png").read_bytes(),
        max_items=80,
        order="name",
    )
