"""A resumed experiment read each downstream stage's done-marker twice: once to decide which
trainings are still to do (``Stages.done``), once more when the stage ran (``Stages.run``). The
record is now read once and passed on (``Stages.finished`` -> ``Stages.run(finished=...)``)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from sam2elnet.pipeline import experiment_downstream
from sam2elnet.pipeline.experiment_downstream import train_downstream
from sam2elnet.pipeline.experiment_engine import downstream_config
from sam2elnet.pipeline.experiment_split import Split
from sam2elnet.pipeline.experiment_stages import Stages

IDS = ["a", "b", "c", "d"]


def _split(root: Path) -> Split:
    """Four image / mask file pairs (the trainings are replaced: only their file states count)."""
    (root / "data").mkdir()
    files = {}
    for i in IDS:
        for kind in ("img", "mask"):
            (p := root / "data" / f"{i}_{kind}.png").write_bytes(i.encode())
            files[i, kind] = str(p)
    return Split(
        modality="optical", layout="flat", labelled=IDS[:2], unlabelled=[], test=IDS[2:],
        images={i: files[i, "img"] for i in IDS}, masks={i: files[i, "mask"] for i in IDS},
        own={}, own_is_truth=False, test_source="split",
    )  # fmt: skip


def test_a_resumed_run_reads_each_downstream_marker_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sam2elnet.data.normalize import NormalizationConfig
    from sam2elnet.engine import downstream
    from sam2elnet.pipeline.experiment_config import ExperimentConfig

    split = _split(tmp_path)
    out = tmp_path / "exp"
    cfg = ExperimentConfig(data=tmp_path / "data", out=out, size="micro")
    runs = {"full": (IDS[:2], split.masks, 2), "fraction": (IDS[:1], split.masks, 1)}
    trained: list[int] = []

    def fake_training(train_pairs, **_kw):  # noqa: ANN001, ANN003, ANN202
        trained.append(len(train_pairs))
        return SimpleNamespace(to_dict=lambda: {"iou": 0.5, "n_train": len(train_pairs)})

    monkeypatch.setattr(downstream, "train_and_evaluate", fake_training)
    monkeypatch.setattr(experiment_downstream, "pool_workers", lambda n, device: 1)
    dcfg, norm = downstream_config(cfg), NormalizationConfig()

    def run(stages: Stages) -> dict:
        return train_downstream(cfg, stages, out, split, runs, dcfg, norm, roads=False)

    first = run(Stages(out, resume=False))
    assert sorted(trained) == [1, 2] and first["full"]["iou"] == 0.5

    reads: list[str] = []
    read_text = Path.read_text

    def counted(path: Path, *a, **k):  # noqa: ANN002, ANN003, ANN202
        if path.parent.name == "stages":
            reads.append(path.name)
        return read_text(path, *a, **k)

    monkeypatch.setattr(Path, "read_text", counted)
    stages = Stages(out, resume=True)
    again = run(stages)
    assert sorted(trained) == [1, 2]  # nothing trained again
    assert again == first and set(stages.status.values()) == {"cached"}
    assert sorted(reads) == ["downstream_fraction.json", "downstream_full.json"]  # was 2 each


class _Result(dict):
    def to_dict(self) -> dict:
        return dict(self)


def _fake_training(train_pairs, **_kw):  # noqa: ANN001, ANN003, ANN202
    import time

    time.sleep({1: 0.3, 2: 2.5}[len(train_pairs)])  # module level: pickles to a worker process
    return _Result(iou=0.5, n_train=len(train_pairs))


@pytest.mark.parametrize("workers", [1, 2])
def test_other_stages_run_while_the_trainings_train(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """``meanwhile`` (table 2's label sets in elnet experiment / demo) runs once the trainings
    leave a CPU free: in turn before them, side by side beside the last one, after the stages of
    the trainings done by then; the settings it returns are handled like the others (here
    skipped: no enhancement downstream) and come last."""
    import time

    from sam2elnet.data.normalize import NormalizationConfig
    from sam2elnet.engine import downstream
    from sam2elnet.pipeline.experiment_config import NO_ENHANCEMENT_DOWNSTREAM, ExperimentConfig
    from sam2elnet.utils import threads

    split = _split(tmp_path)
    out = tmp_path / "exp"
    cfg = ExperimentConfig(
        data=tmp_path / "data", out=out, size="micro", enhancement_downstream=False
    )
    runs = {"fraction": (IDS[:1], split.masks, 1), "full": (IDS[:2], split.masks, 2)}
    monkeypatch.setattr(downstream, "train_and_evaluate", _fake_training)
    monkeypatch.setattr(experiment_downstream, "pool_workers", lambda n, device: workers)
    monkeypatch.setattr(threads, "thread_count", lambda *a, **k: 2)
    seen: list[tuple[float, list[str]]] = []

    def meanwhile() -> dict:
        seen.append((time.perf_counter() - t0, sorted(p.stem for p in stages.dir.glob("*.json"))))
        return {"enh_sim_guided": (IDS[:2], split.masks, 2)}

    stages = Stages(out, resume=False)
    t0 = time.perf_counter()
    down = train_downstream(
        cfg, stages, out, split, runs, downstream_config(cfg), NormalizationConfig(),
        roads=False, meanwhile=meanwhile,
    )  # fmt: skip
    assert list(down) == ["fraction", "full", "enh_sim_guided"]
    assert down["enh_sim_guided"] == {"skipped": NO_ENHANCEMENT_DOWNSTREAM}
    assert down["full"]["n_train"] == 2 and down["fraction"]["n_train"] == 1
    assert len(seen) == 1
    at, markers = seen[0]
    if workers == 1:  # in turn: before any training, as without meanwhile
        assert at < 0.25 and markers == []
    else:  # the 0.3 s training ended (its stage recorded), the 2.5 s one runs alone beside it
        assert 0.25 < at < 2.5 and markers == ["downstream_fraction"]
