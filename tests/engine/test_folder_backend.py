"""A folder job's summary.json records the backend that ran its images (engine API too)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

from sam2elnet.engine.executors import LocalExecutor
from sam2elnet.engine.folder_workers import executor_record
from sam2elnet.engine.infer import annotate_folder
from sam2elnet.engine.predictor import Predictor


class _OwnExecutor(LocalExecutor):
    """A caller's executor: runs locally from the workers' predictor factory, no record()."""

    record = None  # type: ignore[assignment]

    def __init__(self, factory: object) -> None:
        super().__init__(factory())  # type: ignore[operator]


def test_engine_annotate_records_the_backend_that_ran(
    run: dict[str, Path], pred: Predictor, tmp_path: Path
) -> None:
    images = sorted((run["data"] / "images").glob("*.png"))[:2]
    res = annotate_folder(run["model"], images, tmp_path / "a", progress=False, predictor=pred)
    assert res.summary["backend"] == {"name": "local"}
    saved = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert saved["backend"] == {"name": "local"}
    res = annotate_folder(
        run["model"], images, tmp_path / "b", progress=False, predictor=pred,
        executor_factory=functools.partial(_OwnExecutor),
    )  # fmt: skip
    assert res.summary["backend"] == {"name": "_OwnExecutor"}


def test_executor_record_of_the_ray_executor() -> None:
    from sam2elnet.engine.distributed import RayExecutor

    ex = RayExecutor.__new__(RayExecutor)  # no Ray started: only the recorded attributes
    ex.num_workers, ex.address = 3, None
    assert executor_record(ex) == {"name": "ray", "workers": 3, "address": "local"}
    ex.address = "head:6379"
    assert executor_record(ex)["address"] == "head:6379"
