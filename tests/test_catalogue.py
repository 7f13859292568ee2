"""Catalogue of bad inputs across every command (the reliability contract, docs/reliability.md).

Each case runs the CLI in-process (``sam2elnet.cli.main``) and must give exit code 2, exactly one
``error:`` line on stderr, last, with nothing else there but ``warning:`` lines (captured at the
file-descriptor level, so native libpng/GDAL/OpenCV chatter would count), no traceback, and leave
the workspace exactly as it was (no output folder, no temporary file, no lock file). One micro model (trained once per test session) serves every case.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers_data import trained_run, write_tif

from sam2elnet.cli import main
from sam2elnet.utils import paths

os.environ.setdefault("SAM2ELNET_THREADS", "1")


class _Evil:
    def __reduce__(self):  # noqa: ANN204
        return (os.system, ("echo pwned > /dev/null",))


@dataclass
class Env:
    """The shared workspace: every path a case may name."""

    root: Path
    model: Path
    data: Path

    @property
    def masks(self) -> str:
        return str(self.data / "masks")

    def __getattr__(self, name: str) -> str:
        return str(self.root / name.replace("__", "/"))


def _png_bytes(arr: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", arr)
    assert ok
    return buf.tobytes()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    run = trained_run(tmp_path_factory)
    root = tmp_path_factory.mktemp("catalogue")
    rng = np.random.default_rng(0)
    mask = np.zeros((64, 64), np.uint8)
    mask[10:40, 12:50] = 255
    noise = (rng.random((96, 96)) * 255).astype(np.uint8)
    full = _png_bytes(noise)

    (root / "good").mkdir()
    for p in sorted((run["data"] / "images").glob("*.png"))[:2]:
        (root / "good" / p.name).write_bytes(p.read_bytes())
    (root / "afile").write_text("a plain file\n")
    (root / "empty").mkdir()
    (root / "corrupt").mkdir()
    (root / "corrupt" / "a.png").write_bytes(b"\x89PNG not really")
    (root / "corrupt" / "b.png").write_bytes(full[: len(full) // 2])
    (root / "one_bad.png").write_bytes(b"garbage, not an image")
    (root / "trunc").mkdir()
    (root / "trunc" / "label.png").write_bytes(_png_bytes(mask)[:200])
    (root / "trunc.png").write_bytes(full[: len(full) // 2])
    write_tif(root / "bands20.tif", rng.integers(0, 255, (20, 32, 32)).astype(np.uint8))
    write_tif(root / "scene1.tif", rng.integers(0, 255, (1, 64, 64)).astype(np.uint8))
    (root / "corrupt.tif").write_bytes(b"II*\x00" + b"\x00" * 60)
    os.symlink(root / "loop_b", root / "loop_a")
    os.symlink(root / "loop_a", root / "loop_b")
    (root / "ro").mkdir()  # "not writable": a new file in it raises PermissionError (we are root)
    # a previous annotate run whose quality.csv is binary
    (root / "binrun").mkdir()
    (root / "binrun" / "quality.csv").write_bytes(bytes(range(256)) * 4)
    (root / "bad.yaml").write_text("epochs: [\n")
    (root / "ls.json").write_text("[]\n")
    (root / "coco-empty.json").write_text('{"images": [], "annotations": [], "categories": []}\n')
    (root / "cvat-cut.xml").write_text('<?xml version="1.0"?>\n<annotations><version>1.1</ver')
    (root / "badscenes").mkdir()
    (root / "badscenes" / "a.tif").write_bytes(b"II*\x00" + b"\x00" * 60)
    (root / "badscenes" / "b.tif").write_bytes(b"not a tiff")
    # checkpoints
    (root / "evil.pkl").write_bytes(pickle.dumps({"model": _Evil()}))
    torch.save(
        {"model": {"image_encoder.trunk.blocks.0.norm1.weight": torch.zeros(4)}},
        root / "nopatch.pt",
    )
    (root / "text_model.pt").write_text("not a model\n")
    # vector labels for enhance: a georeferenced image and labels that cannot be used with it
    write_tif(root / "geo" / "img.tif", rng.integers(0, 255, (3, 32, 32)).astype(np.uint8))
    (root / "vec").mkdir()
    (root / "vec" / "empty.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    (root / "vec" / "broken.geojson").write_text('{"type": "FeatureCollection", "feat')
    far = (
        '{"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": '
        '"urn:ogc:def:crs:EPSG::32633"}}, "features": [{"type": "Feature", "properties": {}, '
        '"geometry": {"type": "Polygon", "coordinates": [[[100, 100], [110, 100], [110, 110], '
        "[100, 110], [100, 100]]]}}]}"
    )
    (root / "vec" / "far.geojson").write_text(far)
    # a dataset whose every pair is unreadable
    (root / "baddata" / "images").mkdir(parents=True)
    (root / "baddata" / "masks").mkdir(parents=True)
    for i in range(3):
        (root / "baddata" / "images" / f"s{i}.png").write_bytes(full[:100])
        (root / "baddata" / "masks" / f"s{i}.png").write_bytes(_png_bytes(mask))
    # folders an output must not land in: a run folder whose labels/ holds the images, and a
    # generic dataset with its masks in labels/
    for p in sorted((run["data"] / "images").glob("*.png"))[:2]:
        for sub in ("runlike/labels", "ds/images"):
            (root / sub).mkdir(parents=True, exist_ok=True)
            (root / sub / p.name).write_bytes(p.read_bytes())
        (root / "ds" / "labels").mkdir(exist_ok=True)
        (root / "ds" / "labels" / p.name).write_bytes(_png_bytes(mask))
    return Env(root=root, model=run["model"], data=run["data"])


def _snapshot(root: Path) -> set[tuple[str, int]]:
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            size = p.lstat().st_size if not p.is_dir() or p.is_symlink() else -1
            out.add((str(p.relative_to(root)), size))
    return out


Case = tuple[str, Callable[[Env], list[str]]]
M = "{model}"

# fmt: off
CASES: list[Case] = [
    # ------------------------------------------------------------------ synth
    ("synth-out-under-file", lambda e: ["synth", "--count", "2", "--size", "64", "--out", e.afile + "/x"]),
    ("synth-out-onto-file", lambda e: ["synth", "--count", "2", "--size", "64", "--out", e.afile]),
    ("synth-out-symlink-loop", lambda e: ["synth", "--count", "2", "--size", "64", "--out", e.loop_a + "/x"]),
    ("synth-out-not-writable", lambda e: ["synth", "--count", "2", "--size", "64", "--out", e.ro + "/x"]),
    ("synth-count-0", lambda e: ["synth", "--count", "0", "--out", e.root / "s"]),
    ("synth-size-8", lambda e: ["synth", "--size", "8", "--out", e.root / "s"]),
    ("synth-task", lambda e: ["synth", "--task", "forest", "--out", e.root / "s"]),
    ("synth-severity", lambda e: ["synth", "--coarse-severity", "2", "--out", e.root / "s"]),
    ("synth-profile", lambda e: ["synth", "--coarse-profile", "wobbly", "--out", e.root / "s"]),
    ("synth-count-not-int", lambda e: ["synth", "--count", "many", "--out", e.root / "s"]),
    # ------------------------------------------------------------------ stats
    ("stats-percentiles-swapped", lambda e: ["stats", "--data", e.data, "--p-low", "99", "--p-high", "1"]),
    ("stats-p-low-negative", lambda e: ["stats", "--data", e.data, "--p-low", "-1"]),
    ("stats-layout", lambda e: ["stats", "--data", e.data, "--layout", "weird"]),
    ("stats-modality", lambda e: ["stats", "--data", e.data, "--modality", "lidar"]),
    ("stats-data-missing", lambda e: ["stats", "--data", e.root / "nope"]),
    ("stats-data-empty", lambda e: ["stats", "--data", e.empty, "--no-progress"]),
    ("stats-data-symlink-loop", lambda e: ["stats", "--data", e.loop_a]),
    ("stats-out-under-file", lambda e: ["stats", "--data", e.data, "--out", e.afile + "/n.json"]),
    ("stats-out-onto-folder", lambda e: ["stats", "--data", e.data, "--out", e.empty]),
    # ------------------------------------------------------------------ degrade
    ("degrade-only-corrupt", lambda e: ["degrade", "--masks", e.corrupt, "--out", e.root / "d", "--no-progress"]),
    ("degrade-200-byte-png", lambda e: ["degrade", "--masks", e.trunc, "--out", e.root / "d", "--no-progress"]),
    ("degrade-severity", lambda e: ["degrade", "--masks", e.masks, "--out", e.root / "d", "--severity", "2"]),
    ("degrade-profile", lambda e: ["degrade", "--masks", e.masks, "--out", e.root / "d", "--profile", "x"]),
    ("degrade-out-onto-file", lambda e: ["degrade", "--masks", e.masks, "--out", e.afile]),
    ("degrade-masks-missing", lambda e: ["degrade", "--masks", e.root / "nope", "--out", e.root / "d"]),
    # ------------------------------------------------------------------ train
    ("train-data-empty", lambda e: ["train", "--data", e.empty, "--out", e.root / "r", "--size", "micro"]),
    ("train-data-all-corrupt", lambda e: ["train", "--data", e.baddata, "--out", e.root / "r", "--size", "micro", "--weights", "none", "--no-progress"]),
    ("train-out-under-file", lambda e: ["train", "--data", e.data, "--out", e.afile + "/r"]),
    ("train-out-not-writable", lambda e: ["train", "--data", e.data, "--out", e.ro + "/r"]),
    ("train-batch-size-0", lambda e: ["train", "--data", e.data, "--out", e.root / "r", "--batch-size", "0"]),
    ("train-epochs-0", lambda e: ["train", "--data", e.data, "--out", e.root / "r", "--epochs", "0"]),
    ("train-precision", lambda e: ["train", "--data", e.data, "--out", e.root / "r", "--precision", "fp16"]),
    ("train-size", lambda e: ["train", "--data", e.data, "--out", e.root / "r", "--size", "huge"]),
    ("train-tta-99", lambda e: ["train", "--data", e.data, "--out", e.root / "r", "--tta", "99"]),
    ("train-fraction-0", lambda e: ["train", "--data", e.data, "--out", e.root / "r", "--fraction", "0"]),
    ("train-weights-evil-pickle", lambda e: ["train", "--data", e.data, "--out", e.root / "r", "--size", "micro", "--weights", e.root / "evil.pkl", "--no-progress"]),
    ("train-weights-no-patch-embed", lambda e: ["train", "--data", e.data, "--out", e.root / "r", "--size", "micro", "--weights", e.root / "nopatch.pt", "--no-progress"]),
    ("train-config-binary", lambda e: ["train", "--config", e.root / "binrun" / "quality.csv", "--out", e.root / "r"]),
    ("train-config-bad-yaml", lambda e: ["train", "--config", e.root / "bad.yaml", "--out", e.root / "r"]),
    ("scene-batch-all-corrupt", lambda e: ["scene", "--model", "builtin:smoothing", "--image", e.root / "badscenes", "--out", e.root / "sb", "--no-progress"]),
    ("evaluate-quality-binary", lambda e: ["evaluate", "--pred", e.masks, "--truth", e.masks, "--quality", e.root / "binrun" / "quality.csv"]),
    ("export-quality-csv-binary", lambda e: ["export", "--labels", e.masks, "--out", e.root / "x.gpkg", "--quality-csv", e.root / "binrun" / "quality.csv", "--no-progress"]),
    ("train-resume-nothing", lambda e: ["train", "--out", e.root / "r", "--resume"]),
    # ------------------------------------------------------------------ annotate
    ("annotate-tta-99", lambda e: ["annotate", "--model", M, "--images", e.good, "--out", e.root / "a", "--tta", "99"]),
    ("annotate-tta-negative", lambda e: ["annotate", "--model", M, "--images", e.good, "--out", e.root / "a", "--tta", "-1"]),
    ("annotate-precision-fp16", lambda e: ["annotate", "--model", M, "--images", e.good, "--out", e.root / "a", "--precision", "fp16"]),
    ("annotate-batch-size-0", lambda e: ["annotate", "--model", M, "--images", e.good, "--out", e.root / "a", "--batch-size", "0"]),
    ("annotate-tile-0", lambda e: ["annotate", "--model", M, "--images", e.good, "--out", e.root / "a", "--tile", "0"]),
    ("annotate-overlap-ge-tile", lambda e: ["annotate", "--model", M, "--images", e.good, "--out", e.root / "a", "--overlap", "2000"]),
    ("annotate-min-quality-2", lambda e: ["annotate", "--model", M, "--images", e.good, "--out", e.root / "a", "--min-quality", "2"]),
    ("annotate-target-precision-0", lambda e: ["annotate", "--model", M, "--images", e.good, "--out", e.root / "a", "--target-precision", "0"]),
    ("annotate-device", lambda e: ["annotate", "--model", M, "--images", e.good, "--out", e.root / "a", "--device", "gpu"]),
    ("annotate-unknown-option", lambda e: ["annotate", "--model", M, "--images", e.good, "--out", e.root / "a", "--fast"]),
    ("annotate-missing-option", lambda e: ["annotate", "--model", M, "--images", e.good]),
    ("annotate-out-under-file", lambda e: ["annotate", "--model", M, "--images", e.good, "--out", e.afile + "/a"]),
    ("annotate-out-onto-file", lambda e: ["annotate", "--model", M, "--images", e.good, "--out", e.afile]),
    ("annotate-out-symlink-loop", lambda e: ["annotate", "--model", M, "--images", e.good, "--out", e.loop_a]),
    ("annotate-out-not-writable", lambda e: ["annotate", "--model", M, "--images", e.good, "--out", e.ro + "/a"]),
    ("annotate-model-missing", lambda e: ["annotate", "--model", e.root / "nope.pt", "--images", e.good, "--out", e.root / "a"]),
    ("annotate-model-symlink-loop", lambda e: ["annotate", "--model", e.loop_a, "--images", e.good, "--out", e.root / "a"]),
    ("annotate-model-text-file", lambda e: ["annotate", "--model", e.root / "text_model.pt", "--images", e.good, "--out", e.root / "a"]),
    ("annotate-model-evil-pickle", lambda e: ["annotate", "--model", e.root / "evil.pkl", "--images", e.good, "--out", e.root / "a"]),
    ("annotate-images-missing", lambda e: ["annotate", "--model", M, "--images", e.root / "nope", "--out", e.root / "a"]),
    ("annotate-images-empty", lambda e: ["annotate", "--model", M, "--images", e.empty, "--out", e.root / "a"]),
    ("annotate-single-unreadable", lambda e: ["annotate", "--model", M, "--images", e.root / "one_bad.png", "--out", e.root / "a", "--no-progress"]),
    ("annotate-only-corrupt", lambda e: ["annotate", "--model", M, "--images", e.corrupt, "--out", e.root / "a", "--no-progress"]),
    ("annotate-20-bands", lambda e: ["annotate", "--model", M, "--images", e.root / "bands20.tif", "--out", e.root / "a", "--no-progress"]),
    ("annotate-resume-binary-quality-csv", lambda e: ["annotate", "--model", M, "--images", e.good, "--out", e.binrun, "--resume", "--no-progress"]),
    # ------------------------------------------------------------------ enhance
    ("enhance-labels-missing", lambda e: ["enhance", "--model", M, "--images", e.good, "--labels", e.root / "nope", "--out", e.root / "n"]),
    ("enhance-vector-empty", lambda e: ["enhance", "--model", M, "--images", e.geo, "--labels", e.vec + "/empty.geojson", "--out", e.root / "n", "--no-progress"]),
    ("enhance-vector-unparsable", lambda e: ["enhance", "--model", M, "--images", e.geo, "--labels", e.vec + "/broken.geojson", "--out", e.root / "n", "--no-progress"]),
    ("enhance-vector-misses-image", lambda e: ["enhance", "--model", M, "--images", e.geo, "--labels", e.vec + "/far.geojson", "--out", e.root / "n", "--no-progress"]),
    ("enhance-tta-99", lambda e: ["enhance", "--model", M, "--images", e.good, "--labels", e.masks, "--out", e.root / "n", "--tta", "99"]),
    ("enhance-out-onto-file", lambda e: ["enhance", "--model", M, "--images", e.good, "--labels", e.masks, "--out", e.afile]),
    ("enhance-line-width-negative", lambda e: ["enhance", "--model", M, "--images", e.good, "--labels", e.masks, "--out", e.root / "n", "--line-width", "-3"]),
    # ------------------------------------------------------------------ scene
    ("scene-threshold-2", lambda e: ["scene", "--model", "builtin:smoothing", "--image", e.root / "scene1.tif", "--out", e.root / "o.tif", "--threshold", "2"]),
    ("scene-tile-0", lambda e: ["scene", "--model", "builtin:smoothing", "--image", e.root / "scene1.tif", "--out", e.root / "o.tif", "--tile", "0"]),
    ("scene-overlap-ge-tile", lambda e: ["scene", "--model", "builtin:smoothing", "--image", e.root / "scene1.tif", "--out", e.root / "o.tif", "--tile", "64", "--overlap", "64"]),
    ("scene-bands-5-on-1-band", lambda e: ["scene", "--model", "builtin:smoothing", "--image", e.root / "scene1.tif", "--out", e.root / "o.tif", "--bands", "5", "--no-progress"]),
    ("scene-bands-not-numbers", lambda e: ["scene", "--model", "builtin:smoothing", "--image", e.root / "scene1.tif", "--out", e.root / "o.tif", "--bands", "red"]),
    ("scene-backend", lambda e: ["scene", "--model", "builtin:smoothing", "--image", e.root / "scene1.tif", "--out", e.root / "o.tif", "--backend", "spark"]),
    ("scene-workers-0", lambda e: ["scene", "--model", "builtin:smoothing", "--image", e.root / "scene1.tif", "--out", e.root / "o.tif", "--workers", "0"]),
    ("scene-out-under-file", lambda e: ["scene", "--model", "builtin:smoothing", "--image", e.root / "scene1.tif", "--out", e.afile + "/o.tif"]),
    ("scene-out-onto-folder", lambda e: ["scene", "--model", "builtin:smoothing", "--image", e.root / "scene1.tif", "--out", e.empty]),
    ("scene-image-missing", lambda e: ["scene", "--model", "builtin:smoothing", "--image", e.root / "nope.tif", "--out", e.root / "o.tif"]),
    ("scene-image-corrupt", lambda e: ["scene", "--model", "builtin:smoothing", "--image", e.root / "corrupt.tif", "--out", e.root / "o.tif", "--no-progress"]),
    ("scene-model-missing", lambda e: ["scene", "--model", e.root / "nope.pt", "--image", e.root / "scene1.tif", "--out", e.root / "o.tif"]),
    # ------------------------------------------------------------------ export
    ("export-chip-size-negative", lambda e: ["export", "--labels", e.masks, "--out", e.root / "x.gpkg", "--chip-size", "-4"]),
    ("export-truncated-png", lambda e: ["export", "--labels", e.root / "trunc.png", "--out", e.root / "x.geojson", "--no-progress"]),
    ("export-only-corrupt", lambda e: ["export", "--labels", e.corrupt, "--out", e.root / "x.geojson", "--no-progress"]),
    ("export-format", lambda e: ["export", "--labels", e.masks, "--out", e.root / "x.gpkg", "--format", "kml"]),
    ("export-simplify-negative", lambda e: ["export", "--labels", e.masks, "--out", e.root / "x.gpkg", "--simplify", "-1"]),
    ("export-min-area-negative", lambda e: ["export", "--labels", e.masks, "--out", e.root / "x.gpkg", "--min-area", "-1"]),
    ("export-out-under-file", lambda e: ["export", "--labels", e.masks, "--out", e.afile + "/x.gpkg"]),
    ("export-out-onto-folder", lambda e: ["export", "--labels", e.masks, "--out", e.empty]),
    ("export-chips-onto-file", lambda e: ["export", "--labels", e.masks, "--out", e.root / "x.gpkg", "--chips", e.afile]),
    ("export-labels-missing", lambda e: ["export", "--labels", e.root / "nope", "--out", e.root / "x.gpkg"]),
    # ------------------------------------------------------------------ evaluate
    ("evaluate-json-under-file", lambda e: ["evaluate", "--pred", e.masks, "--truth", e.masks, "--json", e.afile + "/m.json"]),
    ("evaluate-csv-onto-folder", lambda e: ["evaluate", "--pred", e.masks, "--truth", e.masks, "--csv", e.empty]),
    ("evaluate-json-not-writable", lambda e: ["evaluate", "--pred", e.masks, "--truth", e.masks, "--json", e.ro + "/m.json"]),
    ("evaluate-tolerance-negative", lambda e: ["evaluate", "--pred", e.masks, "--truth", e.masks, "--tolerance", "-1"]),
    ("evaluate-max-items-0", lambda e: ["evaluate", "--pred", e.masks, "--truth", e.masks, "--max-items", "0"]),
    ("evaluate-pred-missing", lambda e: ["evaluate", "--pred", e.root / "nope", "--truth", e.masks]),
    # ------------------------------------------------------------------ experiment / demo / weights
    ("experiment-fraction-0", lambda e: ["experiment", "--data", e.data, "--out", e.root / "x", "--fraction", "0"]),
    ("experiment-fraction-1.5", lambda e: ["experiment", "--data", e.data, "--out", e.root / "x", "--fraction", "1.5"]),
    ("experiment-trunk", lambda e: ["experiment", "--data", e.data, "--out", e.root / "x", "--trunk", "some"]),
    ("experiment-precision", lambda e: ["experiment", "--data", e.data, "--out", e.root / "x", "--precision", "fp16"]),
    ("experiment-depth", lambda e: ["experiment", "--data", e.data, "--out", e.root / "x", "--downstream-depth", "9"]),
    ("experiment-out-under-file", lambda e: ["experiment", "--data", e.data, "--out", e.afile + "/x"]),
    ("demo-out-under-file", lambda e: ["demo", "--out", e.afile + "/demo"]),
    ("demo-out-onto-file", lambda e: ["demo", "--out", e.afile]),
    ("import-out-under-file", lambda e: ["import", e.root / "ls.json", "--from", "label-studio", "--out", e.afile + "/m"]),
    ("import-out-onto-file", lambda e: ["import", e.root / "ls.json", "--from", "label-studio", "--out", e.afile]),
    ("import-from", lambda e: ["import", e.root / "ls.json", "--from", "cvat-xml", "--out", e.root / "m"]),
    ("import-binary-export", lambda e: ["import", e.root / "binrun" / "quality.csv", "--from", "label-studio", "--out", e.root / "m"]),
    ("import-export-missing", lambda e: ["import", e.root / "nope.json", "--from", "coco", "--out", e.root / "m"]),
    ("import-empty-export", lambda e: ["import", e.root / "ls.json", "--from", "label-studio", "--out", e.root / "m"]),
    ("import-coco-no-images", lambda e: ["import", e.root / "coco-empty.json", "--from", "coco", "--out", e.root / "m"]),
    ("import-cvat-damaged-xml", lambda e: ["import", e.root / "cvat-cut.xml", "--from", "cvat", "--out", e.root / "m"]),
    ("import-cvat-not-an-export", lambda e: ["import", e.root / "ls.json", "--from", "cvat", "--out", e.root / "m"]),
    ("weights-dest-onto-file", lambda e: ["weights", "download", "--dest", e.afile]),
    ("refine-method", lambda e: ["refine", "--method", "snake", "--images", e.good, "--coarse", e.masks, "--out", e.root / "r"]),
    ("refine-coarse-missing", lambda e: ["refine", "--method", "guided", "--images", e.good, "--coarse", e.root / "nope", "--out", e.root / "r"]),
    ("refine-no-coarse-for-images", lambda e: ["refine", "--method", "guided", "--images", e.good, "--coarse", e.corrupt, "--out", e.root / "r"]),
    ("refine-only-corrupt", lambda e: ["refine", "--method", "guided", "--images", e.corrupt, "--coarse", e.corrupt, "--out", e.root / "r", "--no-progress"]),
    ("refine-out-onto-file", lambda e: ["refine", "--method", "guided", "--images", e.good, "--coarse", e.masks, "--out", e.afile]),
    ("evaluate-baseline-missing", lambda e: ["evaluate", "--pred", e.masks, "--truth", e.masks, "--baseline", e.root / "nope"]),
    ("evaluate-baseline-empty", lambda e: ["evaluate", "--pred", e.masks, "--truth", e.masks, "--baseline", e.empty]),
    ("evaluate-group-by", lambda e: ["evaluate", "--pred", e.masks, "--truth", e.masks, "--group-by", "sensor"]),
    ("evaluate-ids-binary", lambda e: ["evaluate", "--pred", e.masks, "--truth", e.masks, "--ids", e.root / "binrun" / "quality.csv"]),
    ("degrade-ids-missing", lambda e: ["degrade", "--masks", e.masks, "--out", e.root / "d", "--ids", e.root / "nope.txt"]),
    ("degrade-ids-bad-json", lambda e: ["degrade", "--masks", e.masks, "--out", e.root / "d", "--ids", e.root / "ls.json"]),
    # ------------------------------------------------------------------ outputs onto inputs
    ("annotate-out-labels-hold-the-images", lambda e: ["annotate", "--model", M, "--images", e.runlike__labels, "--out", e.runlike]),
    ("annotate-out-is-a-dataset-with-labels", lambda e: ["annotate", "--model", M, "--images", e.ds__images, "--out", e.ds]),
    ("enhance-out-labels-hold-the-coarse", lambda e: ["enhance", "--model", M, "--images", e.ds__images, "--labels", e.runlike__labels, "--out", e.runlike]),
    ("refine-out-is-the-images", lambda e: ["refine", "--method", "guided", "--images", e.ds__images, "--coarse", e.ds__labels, "--out", e.ds__images]),
    ("degrade-out-is-the-masks", lambda e: ["degrade", "--masks", e.ds__labels, "--out", e.ds__labels]),
    ("evaluate-json-is-csv", lambda e: ["evaluate", "--pred", e.masks, "--truth", e.masks, "--json", e.root / "ev.out", "--csv", e.root / "ev.out"]),
    ("evaluate-json-is-the-report", lambda e: ["evaluate", "--pred", e.masks, "--truth", e.masks, "--json", e.root / "report.html", "--report"]),
]
# fmt: on


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_clean_error(
    case: Case, env: Env, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    name, build = case
    argv = [str(a).replace(M, str(env.model)) for a in build(env)]
    real_create = paths.create_new_file
    ro = str(env.root / "ro")

    def create_new(path: Path) -> None:
        d = str(Path(path).parent)
        if d == ro or d.startswith(ro + os.sep):
            raise PermissionError(13, "Permission denied", d)
        real_create(path)

    monkeypatch.setattr(paths, "create_new_file", create_new)
    before = _snapshot(env.root)
    capfd.readouterr()
    rc = main(argv)
    out, err = capfd.readouterr()
    error_lines = [ln for ln in err.splitlines() if ln.lower().startswith("error:")]
    # nothing else leaks: no native-library chatter, no traceback, no Python source lines
    strays = [ln for ln in err.splitlines() if not ln.startswith(("error: ", "warning: "))]
    if os.environ.get("ELNET_CATALOGUE_LOG"):  # review the messages: one line per case
        with open(os.environ["ELNET_CATALOGUE_LOG"], "a", encoding="utf-8") as fh:
            fh.write(f"{name}\t{rc}\t{' | '.join(err.splitlines())}\n")
    assert rc == 2, f"{name}: exit {rc}\nstdout: {out}\nstderr: {err}"
    assert len(error_lines) == 1, f"{name}: {len(error_lines)} error lines:\n{err}"
    assert err.splitlines()[-1].startswith("error: "), err
    assert not strays, f"{name}: stray stderr lines {strays}"
    assert "Traceback" not in out + err, err
    after = _snapshot(env.root)
    assert after == before, f"{name}: left behind {sorted(after - before)}"


def test_catalogue_is_large_enough() -> None:
    commands = {build(Env(Path("/x"), Path("/m"), Path("/d")))[0] for _, build in CASES}
    assert len(CASES) >= 60
    assert commands >= {
        "synth", "stats", "degrade", "train", "annotate", "enhance", "scene", "export",
        "evaluate", "experiment", "demo", "weights", "import", "refine",
    }  # fmt: skip
