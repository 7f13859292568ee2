"""``--road-buffer-m`` of ``elnet train``, ``cv`` and ``experiment``: the road buffer in ground
metres, made pixels per image from each image's own ground pixel size (as ``elnet evaluate``'s).
Web Mercator tiles of 0.5 m CRS pixels at 60 deg N (0.25 m on the ground: 1.3 m = 5.2 px) and
at the equator (0.5 m: 2.6 px), micro networks trained for one epoch on 64 px images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers_roads import make_mercator_road_dataset, make_road_dataset, record_road_buffers

from sam2elnet.cli import main

TRAIN = ["--size", "micro", "--epochs", "1", "--image-size", "32", "--batch-size", "2",
         "--weights", "none", "--no-progress"]  # fmt: skip
NORTH, EQUATOR = 1.3 / 0.2504, 1.3 / 0.4983  # px of 1.3 m (ground pixel sizes of the tiles)


@pytest.fixture
def buffers(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every buffer (px) the road measures are computed with."""
    return record_road_buffers(monkeypatch)


def _one_of_the_two(seen: list[float]) -> set[str]:
    """Which latitude's buffer each recorded buffer is (fails on any other)."""
    out = set()
    for b in seen:
        if b == pytest.approx(NORTH, rel=2e-3):
            out.add("north")
        else:
            assert b == pytest.approx(EQUATOR, rel=2e-3), seen
            out.add("equator")
    return out


def test_train_matches_each_validation_image_within_its_own_ground_buffer(
    tmp_path: Path, buffers: list[float], capsys: pytest.CaptureFixture[str]
) -> None:
    """train --road-buffer-m 1.3: each validation tile's road measures within 1.3 m in its own
    pixels; config.yaml records the metres, model.pt the per-image range, the epoch line both."""
    from sam2elnet.model import load_model

    data = make_mercator_road_dataset(tmp_path / "roads")
    out = tmp_path / "r"
    argv = ["train", "--data", str(data), *TRAIN, "--no-quality", "--val-fraction", "0.5"]
    assert main([*argv, "--out", str(out), "--domain", "roads", "--road-buffer-m", "1.3"]) == 0
    assert buffers and _one_of_the_two(buffers)
    assert "road_buffer_m: 1.3" in (out / "config.yaml").read_text()
    rec = load_model(out / "model.pt")[1]["train"]["val_road_buffer"]
    assert rec["road_buffer_unit"] == "m" and rec["road_buffer_m"] == 1.3
    assert rec["road_buffer_px_range"] == pytest.approx([min(buffers), max(buffers)])
    lo, hi = rec["road_buffer_px_range"]
    said = f"{lo:.3g} px" if hi - lo < 0.01 * lo else f"{lo:.3g}-{hi:.3g} px"
    assert f"(buffer 1.3 m = {said})" in capsys.readouterr().out
    from sam2elnet.pipeline.report_train import write_train_report  # the buffer on the page too

    page = write_train_report(out, max_images=0).read_text(encoding="utf-8")
    assert f"1.3 m = {said}{' by image' if '-' in said else ''}" in page
    assert f"validation road measures: centre lines matched within 1.3 m = {said}" in page


@pytest.mark.parametrize("command", ["train", "cv"])
def test_a_buffer_in_metres_on_pngs_is_one_error_line(
    tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """PNGs have no pixel size in metres: one ``error:`` line naming an image and --road-buffer,
    exit code 2, nothing trained; both units at once: the same line as ``elnet evaluate``."""
    data = make_road_dataset(tmp_path / "roads", n=6, size=48)
    out = tmp_path / "r"
    argv = [command, "--data", str(data), "--out", str(out), *TRAIN, "--no-quality"]
    if command == "cv":
        argv += ["--folds", "2"]
    assert main([*argv, "--domain", "roads", "--road-buffer-m", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and ".png: has no CRS: " in err[0]
    assert err[0].endswith("give the buffer in pixels with --road-buffer"), err
    assert not out.exists() or not any(out.rglob("*.pt")), sorted(out.rglob("*"))
    assert main([*argv, "--road-buffer-m", "2", "--road-buffer", "3"]) == 2
    assert "both given: give one of them" in capsys.readouterr().err


def test_cv_scores_each_test_tile_within_its_own_ground_buffer_and_rescores_in_pixels(
    tmp_path: Path, buffers: list[float], capsys: pytest.CaptureFixture[str]
) -> None:
    """cv --road-buffer-m 1.3: the folds' validation and test road measures use each tile's own
    px (tiles r00, r02, r04 at 60 deg N, the others at the equator); every test row of
    evaluation.json says its px, cv.json and cv.md the metres and the range. Run again with
    --road-buffer 3: the finished fold's predictions are scored again in pixels, not trained."""
    data = make_mercator_road_dataset(tmp_path / "roads")
    out = tmp_path / "cv"
    argv = ["cv", "--data", str(data), "--out", str(out), *TRAIN, "--no-quality", "--folds", "2",
            "--max-folds", "1", "--domain", "roads"]  # fmt: skip
    assert main([*argv, "--road-buffer-m", "1.3"]) == 0
    assert buffers and _one_of_the_two(buffers)  # validation (test scoring may count by strips)
    ev = json.loads((out / "folds" / "fold-1" / "pred-test" / "evaluation.json").read_text())
    for row in ev["images"]:
        want = NORTH if int(row["image"][1:]) % 2 == 0 else EQUATOR
        assert row["road_buffer_px"] == pytest.approx(want, rel=2e-3), row["image"]
    cv = json.loads((out / "cv.json").read_text())
    assert cv["road_buffer_m"] == 1.3 and cv["folds"][0]["val_road_buffer"] == "1.3 m"
    lo, hi = cv["road_buffer_px_range"]
    assert EQUATOR * 0.998 <= lo <= hi <= NORTH * 1.002
    md = " ".join((out / "cv.md").read_text().split())
    px = f"{lo:.3g} px" if hi - lo < 0.01 * lo else f"{lo:.3g}-{hi:.3g} px by image"
    assert f"matched within 1.3 m = {px} (--road-buffer-m;" in md  # was "2.61-2.61 px"
    capsys.readouterr()
    assert main([*argv, "--road-buffer", "3"]) == 0
    said = capsys.readouterr().out
    assert "scored again with road buffer 3 px (were 1.3 m), its network and predictions" in said
    ev = json.loads((out / "folds" / "fold-1" / "pred-test" / "evaluation.json").read_text())
    assert {row["road_buffer_px"] for row in ev["images"]} == {3.0}
    cv = json.loads((out / "cv.json").read_text())
    assert cv["road_buffer"] == 3.0 and cv["road_buffer_m"] is None


def test_experiment_scores_each_test_tile_within_its_own_ground_buffer(
    tmp_path: Path,
    experiment_configs: list,
    buffers: list[float],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """experiment --road-buffer-m 1.3: the config carries it (part of the identity; runs made
    before read as px); each test tile's buffer is its own px, used by the scoring against the
    truth (rows (f), as the downstream models) and written per row to per_image.csv; PNG test
    images are one error naming the file. (A whole experiment takes ~25 s: its parts here.)"""
    import csv

    from sam2elnet.data.normalize import NormalizationConfig
    from sam2elnet.engine.metrics import RoadCounts
    from sam2elnet.errors import DataError
    from sam2elnet.pipeline.experiment_config import upgrade_identity
    from sam2elnet.pipeline.experiment_scores import counts_vs_truth, write_per_image_csv
    from sam2elnet.pipeline.experiment_split import Split, test_road_buffers

    data = make_mercator_road_dataset(tmp_path / "roads", n=4)
    seen = experiment_configs
    base = ["experiment", "--data", str(data), "--out", str(tmp_path / "x")]
    assert main([*base, "--road-buffer-m", "1.3"]) == 0
    cfg = seen[0]
    assert cfg.identity()["road_buffer_m"] == 1.3
    assert upgrade_identity({"seed": 0})["road_buffer_m"] is None
    assert main([*base, "--road-buffer-m", "1.3", "--road-buffer", "3"]) == 2
    assert "both given: give one of them" in capsys.readouterr().err

    ids = [f"r{k:02d}" for k in range(4)]
    split = Split(
        modality="optical", layout="generic", labelled=[], unlabelled=[], test=ids,
        images={i: str(data / "images" / f"{i}.tif") for i in ids},
        masks={i: str(data / "masks" / f"{i}.tif") for i in ids},
        own={}, own_is_truth=True, test_source="test",
    )  # fmt: skip
    bufs = test_road_buffers(cfg, split)
    assert bufs == pytest.approx({"r00": NORTH, "r01": EQUATOR, "r02": NORTH, "r03": EQUATOR},
                                 rel=2e-3)  # fmt: skip
    rows: list[RoadCounts] = []
    norm = NormalizationConfig.for_modality("optical")
    counts = counts_vs_truth(split.masks, split, ids, norm=norm, road_counts=rows,
                             road_buffer=list(bufs.values()))  # fmt: skip
    assert buffers == list(bufs.values())
    csv_rows = [("f", "test", i, "all", [*map(int, c), *r.as_tuple()])
                for i, c, r in zip(ids, counts, rows, strict=True)]  # fmt: skip
    write_per_image_csv(tmp_path / "per_image.csv", csv_rows, cfg.road_buffer, bufs)
    with open(tmp_path / "per_image.csv", newline="") as fh:
        written = {r["id"]: float(r["road_buffer_px"]) for r in csv.DictReader(fh)}
    assert written == pytest.approx(bufs)

    png = make_road_dataset(tmp_path / "png", n=2, size=48)
    split.images = {i: str(png / "images" / f"r{k:02d}.png") for k, i in enumerate(ids[:2])}
    split.test = ids[:2]
    with pytest.raises(DataError, match="has no CRS: --road-buffer-m needs images in a projected"):
        test_road_buffers(cfg, split)


def test_experiment_in_metres_on_pngs_records_nothing_so_the_advised_retry_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """experiment --road-buffer-m on PNG roads: one error line advising --road-buffer, exit 2,
    checked before any stage is recorded; the advised retry in the same --out is not refused
    as "other settings" (it is stopped here when it starts training)."""
    import sam2elnet.pipeline.experiment as experiment_mod
    from sam2elnet.errors import UserError

    def stop(*_a, **_k):  # noqa: ANN002, ANN003
        raise UserError("stopped at training")

    monkeypatch.setattr(experiment_mod, "train_elnet", stop)
    data = make_road_dataset(tmp_path / "roads", n=8, size=48)
    base = ["experiment", "--data", str(data), "--out", str(tmp_path / "x"), "--no-progress"]
    assert main([*base, "--road-buffer-m", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ".png: has no CRS: " in err[0], err
    assert err[0].endswith("give the buffer in pixels with --road-buffer"), err
    assert not (tmp_path / "x" / "stages" / "split.json").exists()
    assert main([*base, "--road-buffer", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: stopped at training"], err
