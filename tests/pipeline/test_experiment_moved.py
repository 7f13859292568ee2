"""A moved or copied experiment folder, resumed from another working folder, reads its own files:
the stage records store paths inside ``--out`` relative to it (no stage runs again, no link of
report.html points into the old folder, which is deleted first)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from helpers_data import tiny_experiment_config

from sam2elnet.pipeline.experiment import run_experiment
from sam2elnet.pipeline.experiment_stages import PATHS_RELATIVE, out_relative, out_resolved


def _sos(root: Path) -> Path:
    """SOS layout: train/<sensor>/<id>_sat.png + _mask.png (6 per sensor), test/<sensor>/sat|gt."""
    from sam2elnet.data.synthetic import generate_dataset

    src = root / "synth"
    generate_dataset(src, task="oil-spill", count=12, size=48, seed=3, progress=False)
    data = root / "sos"
    for sensor, ks in {"palsar": range(0, 5), "sentinel": range(5, 10)}.items():
        d = data / "train" / sensor
        d.mkdir(parents=True)
        for k in ks:
            shutil.copy(src / "images" / f"{k:05d}.png", d / f"{k:05d}_sat.png")
            shutil.copy(src / "masks" / f"{k:05d}.png", d / f"{k:05d}_mask.png")
    for sensor, k in {"palsar": 10, "sentinel": 11}.items():
        for sub, tag, part in (("sat", "sat", "images"), ("gt", "mask", "masks")):
            d = data / "test" / sensor / sub
            d.mkdir(parents=True)
            shutil.copy(src / part / f"{k:05d}.png", d / f"{k:05d}_{tag}.png")
    return data


def test_a_copied_experiment_folder_resumed_elsewhere_reads_its_own_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAM2ELNET_THREADS", "1")
    data = _sos(tmp_path)
    first = tmp_path / "first"
    first.mkdir()
    monkeypatch.chdir(first)  # --out as a user gives it: relative to the working folder
    kw = {"downstream_curve_points": 0, "enhancement_downstream": False}
    run_experiment(tiny_experiment_config(data, Path("run2"), **kw))
    annotate = json.loads((first / "run2/stages/annotate.json").read_text())
    assert annotate["paths"] == PATHS_RELATIVE
    labels = annotate["summary"]["labels"]
    assert labels and all(p.startswith("autolabels/") for p in labels.values())

    shutil.copytree(first / "run2", tmp_path / "moved" / "run2y")
    shutil.rmtree(first)  # nothing may read the old folder
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    new = tmp_path / "moved" / "run2y"
    r = run_experiment(tiny_experiment_config(data, Path("../moved/run2y"), resume=True, **kw))
    assert set(r["stages"].values()) == {"cached"}, r["stages"]
    page = (new / "report.html").read_text()
    links = re.findall(r'(?:href|src)="([^"#][^"]*)"', page)
    files = [u for u in links if not u.startswith(("data:", "http", "mailto:"))]
    assert files, "no file links in report.html"
    from urllib.parse import unquote

    inside = [u for u in files if not u.startswith("file:")]
    outside = [u for u in files if u.startswith("file:")]  # the dataset's images and masks
    assert all(unquote(u).startswith(f"file://{data}/") for u in outside), outside
    assert not [u for u in inside if not (new / unquote(u)).is_file()]
    assert any(u.startswith("autolabels/") for u in inside)


def test_records_of_older_runs_are_mapped_under_the_current_folder(tmp_path: Path) -> None:
    """Markers written before paths were stored relative: a path whose end exists under the
    current --out is read there (even where the old folder still exists); other paths as given."""
    out = tmp_path / "run2y"
    (out / "autolabels" / "labels").mkdir(parents=True)
    (out / "autolabels" / "labels" / "1.png").write_bytes(b"x")
    old = {"labels": {"1": "run2/autolabels/labels/1.png"}, "data": "/data/sos/a.png", "n": 3}
    got = out_resolved(old, out, relative=False)
    assert got == {
        "labels": {"1": str(out / "autolabels/labels/1.png")},
        "data": "/data/sos/a.png",
        "n": 3,
    }
    stored = out_relative(got, out)
    assert stored["labels"] == {"1": "autolabels/labels/1.png"}
    assert stored["data"] == "/data/sos/a.png"
    assert out_resolved(stored, out, relative=True) == got
