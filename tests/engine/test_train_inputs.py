"""Training on real-world dataset folders: split-aware layouts (SOS train/ vs test/, CHN6-CUG
train/ vs val/), degenerate label sets, NaN-free metrics.csv and progress lines without a bar."""

from __future__ import annotations

import os

os.environ.setdefault("SAM2ELNET_THREADS", "1")

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from helpers_data import (
    make_chn6,
    make_dataset,
    make_sos,
    micro_sar_model_and_reviewed_pairs,
    small_cfg,
    write_png,
)

from sam2elnet.data.datasets import select_split
from sam2elnet.errors import DataError


# ------------------------------------------------------------------ split selection
def test_select_split_sos_defaults_to_train(tmp_path):
    root = make_sos(tmp_path / "sos")  # 3+3 train pairs, 2+2 test pairs
    ch = select_split(root)
    assert ch.found == {"train": 6, "test": 4}
    assert ch.used == ["train"]
    assert {s.split for s in ch.index.samples} == {"train"} and len(ch.index.samples) == 6
    assert ch.describe() == "splits found: train (6), test (4); training on: train (6 pairs)"
    test = select_split(root, "test", purpose="evaluating")
    assert test.used == ["test"] and len(test.index.samples) == 4
    both = select_split(root, ["train", "test"])
    assert len(both.index.samples) == 10


def test_select_split_chn6_and_errors(tmp_path):
    root = make_chn6(tmp_path / "chn6")
    ch = select_split(root)
    assert ch.found == {"train": 3, "val": 3} and ch.used == ["train"]
    assert sorted(s.id for s in ch.index.samples) == ["train0", "train1", "train2"]
    with pytest.raises(DataError, match="split 'test' not found; this dataset has: train, val"):
        select_split(root, "test")
    with pytest.raises(DataError, match="unknown split 'dev'"):
        select_split(root, "dev")


def test_select_split_flat_and_only_test(tmp_path, caplog):
    flat = make_dataset(tmp_path / "flat", n=4)
    ch = select_split(flat)
    assert ch.found == {} and ch.used is None and len(ch.index.samples) == 4
    assert ch.describe() == "no split folders found; training on all 4 pairs"
    with pytest.raises(DataError, match="no split folders"):
        select_split(flat, "train")
    sos = make_sos(tmp_path / "sos")
    import shutil

    shutil.rmtree(sos / "train")
    with caplog.at_level("WARNING"):
        only = select_split(sos)
    assert only.used == ["test"] and "no 'train' split folder" in caplog.text


def test_train_uses_only_the_training_split(tmp_path):
    from sam2elnet.engine.train import train
    from sam2elnet.model import load_model

    root = make_sos(tmp_path / "sos", size=40)
    lines: list[str] = []
    res = train(small_cfg(root, tmp_path / "run", val_fraction=0.34), echo=lines.append)
    used = res.splits["train"] + res.splits["val"]
    assert sorted(used) == ["10000", "10001", "10002", "20000", "20001", "20002"]
    saved = json.loads((tmp_path / "run" / "splits.json").read_text())
    assert saved["dataset_splits"] == ["train"]
    _, extra = load_model(res.best_path)
    assert extra["train"]["dataset_splits"] == ["train"]
    assert extra["train"]["n_train"] + extra["train"]["n_val"] == 6
    # the counts add up: training + validation = the 6 pairs of the train split
    assert lines[0] == (
        "splits found: train (6), test (4); using: train (6 labelled pairs): training on 4, "
        "validation 2"
    )
    # explicit choice: the test split (e.g. a deliberate experiment), ids from that split only
    res2 = train(small_cfg(root, tmp_path / "run2", split=["test"], fit_quality=False))
    assert sorted(res2.splits["train"] + res2.splits["val"]) == ["10500", "10501", "20500", "20501"]


def test_split_line_counts_what_the_run_trains_on(tmp_path):
    """The run's first line used to say "training on all N pairs" with N counting validation and
    held-out images too; now the parts add up to the labelled pairs."""
    from sam2elnet.engine.train_data import prepare_data

    data = make_dataset(tmp_path / "flat", n=10)
    d = prepare_data(small_cfg(data, tmp_path / "r", fraction=0.8, val_fraction=0.25))
    assert (len(d.train_samples), len(d.val_samples), len(d.splits["held_out"])) == (6, 2, 2)
    assert d.notes[0] == (
        "no split folders found; 10 labelled pairs: training on 6, validation 2, held out 2 "
        "(fraction=0.8 (--fraction 0.8))"  # the Python API: the argument and the flag
    )
    (data / "images" / "s03.png").write_bytes(b"not a png")  # one unreadable pair
    d = prepare_data(small_cfg(data, tmp_path / "r", val_fraction=0.2, max_train=4))
    n_train, n_val = len(d.train_samples), len(d.val_samples)
    assert [x["id"] for x in d.skipped] == ["s03"]
    assert n_train + n_val == 5  # 4 training (--max-train) + 2 validation drawn, s03 dropped
    assert d.notes[0] == (
        f"no split folders found; 10 labelled pairs: training on {n_train}, validation {n_val}, "
        f"skipped 1 unreadable (RUN/skipped.csv), unused {10 - n_train - n_val - 1} "
        "(max_train (--max-train))"
    )
    # the unused pairs are listed (were only counted): never trained nor validated on
    unused = d.splits["unused"]
    assert len(unused) == 10 - n_train - n_val - 1 > 0
    assert sorted([*d.splits["train"], *d.splits["val"], *unused, "s03"]) == [
        f"s{i:02d}" for i in range(10)
    ]
    from sam2elnet.data.runfolder import read_id_list

    (tmp_path / "splits.json").write_text(json.dumps(d.splits))  # as RUN/splits.json
    assert read_id_list(tmp_path / "splits.json") == set(unused)  # held_out is empty here


def test_train_cli_split_option_and_progress_lines(tmp_path, capsys):
    from sam2elnet.cli import main

    root = make_chn6(tmp_path / "chn6", size=40)
    rc = main(
        [
            "train", "--data", str(root), "--out", str(tmp_path / "run"), "--weights", "none",
            "--size", "micro", "--epochs", "2", "--image-size", "32", "--batch-size", "2",
            "--split", "val", "--no-progress", "--no-quality",
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    assert "splits found: train (3), val (3); using: val (3 labelled pairs): training on" in out
    epoch_lines = [ln for ln in out.splitlines() if ln.startswith("epoch ")]
    assert [ln.split(":")[0] for ln in epoch_lines] == ["epoch 1/2", "epoch 2/2"]
    assert all("loss" in ln and "train IoU" in ln and "img/s" in ln for ln in epoch_lines)
    saved = json.loads((tmp_path / "run" / "splits.json").read_text())
    assert sorted(saved["train"] + saved["val"]) == ["val0", "val1", "val2"]
    rc = main(["train", "--data", str(root), "--out", str(tmp_path / "r2"), "--split", "test"])
    err = capsys.readouterr().err
    assert rc == 2 and "split 'test' not found; this dataset has: train, val" in err


# ------------------------------------------------------------------ degenerate label sets
def _set(root: Path, masks: list[np.ndarray], size: int = 32) -> Path:
    rng = np.random.default_rng(0)
    for i, m in enumerate(masks):
        write_png(root / "images" / f"i{i}.png", rng.integers(0, 255, (size, size), np.uint8))
        write_png(root / "masks" / f"i{i}.png", m.astype(np.uint8) * 255)
    return root


def test_all_empty_or_all_full_masks_are_refused(tmp_path):
    from sam2elnet.engine.train import train

    empty = _set(tmp_path / "empty", [np.zeros((32, 32), bool)] * 4)
    with pytest.raises(DataError, match="all 2 training masks are empty"):
        train(small_cfg(empty, tmp_path / "r1"))
    assert not (tmp_path / "r1" / "model.pt").exists()
    full = _set(tmp_path / "full", [np.ones((32, 32), bool)] * 4)
    with pytest.raises(DataError, match="all 2 training masks are full"):
        train(small_cfg(full, tmp_path / "r2"))


def test_validation_without_objects_warns_and_metrics_have_no_nan(tmp_path, caplog):
    from sam2elnet.engine.train import train

    m = np.zeros((32, 32), bool)
    m[8:20, 8:20] = True
    # seed 0 with val_fraction 0.5 puts i0, i1 in validation: both empty
    root = _set(tmp_path / "d", [np.zeros_like(m), np.zeros_like(m), m, m])
    with caplog.at_level("WARNING"):
        res = train(small_cfg(root, tmp_path / "run", epochs=2, fit_quality=False))
    assert sorted(res.splits["val"]) == ["i0", "i1"]
    assert "validation split (2 images) has no object pixels" in caplog.text
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    assert len(rows) == 2
    for r in rows:
        assert all(v.lower() != "nan" for v in r.values())
        assert float(r["val_coarse_iou"]) == 1.0  # empty coarse vs empty truth: agreement
    # no validation split at all: val columns are empty cells, not 'nan'
    res = train(small_cfg(root, tmp_path / "run2", val_fraction=0.0, fit_quality=False))
    text = (tmp_path / "run2" / "metrics.csv").read_text()
    assert "nan" not in text.lower()
    row = next(csv.DictReader(text.splitlines()))
    assert row["val_iou"] == "" and row["val_scale"] == "" and row["train_loss"] != ""


def test_stats_uses_the_training_split(tmp_path):
    from sam2elnet.cli import main

    root = make_sos(tmp_path / "sos")
    rc = main(["stats", "--data", str(root), "--no-progress", "--out", str(tmp_path / "n.json")])
    assert rc == 0
    payload = json.loads((tmp_path / "n.json").read_text())
    assert payload["images_used"] == 6  # the 6 train pairs, not the 4 test pairs
    assert payload["pairs"] == {
        "test/palsar": 2,
        "test/sentinel": 2,
        "train/palsar": 3,
        "train/sentinel": 3,
    }
    rc = main(
        [
            "stats",
            "--data",
            str(root),
            "--split",
            "test",
            "--no-progress",
            "--out",
            str(tmp_path / "t.json"),
        ]
    )
    assert rc == 0 and json.loads((tmp_path / "t.json").read_text())["images_used"] == 4


def test_annotate_and_evaluate_address_the_test_split(tmp_path, capsys):
    from sam2elnet.cli import main

    root = make_sos(tmp_path / "sos", size=40)
    assert main(
        ["train", "--data", str(root), "--out", str(tmp_path / "run"), "--weights", "none",
         "--size", "micro", "--epochs", "1", "--image-size", "32", "--batch-size", "2",
         "--no-progress", "--no-quality"]
    ) == 0  # fmt: skip
    model = str(tmp_path / "run" / "model.pt")
    rc = main(
        ["annotate", "--model", model, "--images", str(root), "--split", "test",
         "--out", str(tmp_path / "ann"), "--no-progress"]
    )  # fmt: skip
    assert rc == 0
    labels = sorted(p.name for p in (tmp_path / "ann" / "labels").iterdir())
    assert labels == ["10500_sat.png", "10501_sat.png", "20500_sat.png", "20501_sat.png"]
    capsys.readouterr()
    rc = main(
        ["evaluate", "--pred", str(tmp_path / "ann"), "--truth", str(root), "--split", "test",
         "--json", str(tmp_path / "m.json")]
    )  # fmt: skip
    assert rc == 0
    assert json.loads((tmp_path / "m.json").read_text())["aggregate"]["n_images"] == 4
    rc = main(
        ["evaluate", "--pred", str(tmp_path / "ann"), "--truth", str(root), "--split", "val"]
    )  # fmt: skip
    assert (
        rc == 2
        and "split 'val' not found; this dataset has: train, test" in capsys.readouterr().err
    )


def test_an_empty_validation_image_is_warned_of_after_the_split_line(tmp_path):
    """The warning about a validation split without object pixels comes after the split line
    it is about (it used to come before it), and one image is "1 image", not "1 images"."""
    import logging

    from sam2elnet.data.splits import split_fraction
    from sam2elnet.engine.train import train

    ids = [f"i{k}" for k in range(4)]
    val, _ = split_fraction(ids, 0.25, seed=1)  # prepare_data's validation split (seed + 1)
    assert len(val) == 1
    m = np.zeros((32, 32), bool)
    m[8:20, 8:20] = True
    root = _set(tmp_path / "d", [np.zeros_like(m) if i in val else m for i in ids])
    events: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            events.append(f"{record.levelname.lower()}: {record.getMessage()}")

    keep = Keep(level=logging.WARNING)
    logging.getLogger("sam2elnet").addHandler(keep)
    try:
        cfg = small_cfg(root, tmp_path / "run", val_fraction=0.25, fit_quality=False)
        res = train(cfg, echo=events.append)
    finally:
        logging.getLogger("sam2elnet").removeHandler(keep)
    assert res.splits["val"] == val
    split = next(k for k, x in enumerate(events) if x.startswith("no split folders found"))
    assert events[split].endswith("4 labelled pairs: training on 3, validation 1")
    warned = [k for k, x in enumerate(events) if "has no object pixels" in x]
    assert len(warned) == 1 and warned[0] > split, events
    assert events[warned[0]].startswith(
        "warning: validation split (1 image) has no object pixels: its IoU cannot rank epochs"
    )


def test_init_model_keeps_its_normalisation_on_a_generic_folder(tmp_path):
    """The review loop retrains from a SAR model on ``reviewed/{images,masks}`` (grey-as-RGB SOS
    images, no dataset.json): the folder reads as optical, which made 3-band per-image-stretched
    inputs and refused the 1-band model ('takes 1 bands but the images have 3'). Fine-tuning now
    reads and scales the images as the --init-model was trained."""
    from helpers_data import blob_mask, grey_rgb

    from sam2elnet.data.normalize import NormalizationConfig
    from sam2elnet.engine.train_data import prepare_data
    from sam2elnet.model import ModelConfig, build_model, save_model

    sar = NormalizationConfig.for_modality("sar")
    assert sar.sar and sar.method == "fixed"
    net = build_model(ModelConfig(size="micro", in_bands=1, normalization=sar.model_dump()))
    init = save_model(net, tmp_path / "m.pt", extra={"normalization": sar.model_dump(mode="json")})
    data = tmp_path / "reviewed"
    for i in range(4):
        write_png(data / "images" / f"1000{i}_sat.png", grey_rgb(32, i))
        write_png(data / "masks" / f"1000{i}_sat.png", blob_mask(32, i).astype(np.uint8) * 255)
    plain = prepare_data(small_cfg(data, tmp_path / "r0"))
    assert (plain.in_bands, plain.norm.method, plain.modality) == (3, "percentile", "optical")
    d = prepare_data(small_cfg(data, tmp_path / "r1", init_model=init))
    assert d.in_bands == 1 and d.modality == "sar"
    assert d.norm.model_dump() == sar.model_dump()
    assert f"(the init_model (--init-model)'s, {init})" in d.notes[1]
    # --norm-stats still wins over the model file's normalisation
    stats = tmp_path / "stats.json"
    stats.write_text(json.dumps({"normalization": plain.norm.model_dump(mode="json")}))
    d = prepare_data(small_cfg(data, tmp_path / "r2", init_model=init, norm_stats=stats))
    assert d.norm.method == "percentile" and d.in_bands == 3


def test_missing_weights_file_is_refused_before_the_data_is_read(tmp_path, monkeypatch):
    """The missing --weights file was found only when the network was built, after every training
    image had been read (21 s on the 400 sos-dev pairs, minutes on SOS)."""
    import sam2elnet.engine.train as train_mod
    from sam2elnet.errors import CheckpointError

    def data_read(cfg):
        raise AssertionError("the training data was read before the weights file was checked")

    monkeypatch.setattr(train_mod, "_prepare_data", data_read)
    data = make_dataset(tmp_path / "flat", n=4)
    missing = tmp_path / "sam2.1_hiera_tiny.pt"
    cfg = small_cfg(data, tmp_path / "r", weights=str(missing))
    with pytest.raises(CheckpointError, match="weights file not found; run `elnet weights list`"):
        train_mod.train(cfg)
    assert not (tmp_path / "r").exists()


def test_init_model_file_is_read_once_per_run(tmp_path, monkeypatch):
    """``elnet train --init-model M`` read M three times (its normalisation, its domain, then the
    network); a large model file read three times costs seconds and memory. Now once."""
    import sam2elnet.model.io as model_io
    from sam2elnet.engine.train import train

    init, data = micro_sar_model_and_reviewed_pairs(tmp_path)
    reads: list[str] = []
    real = model_io.safe_torch_load

    def counted(path):
        reads.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(model_io, "safe_torch_load", counted)
    res = train(small_cfg(data, tmp_path / "run", init_model=init, fit_quality=False))
    assert reads.count("m.pt") == 1, reads
    assert res.best_path.is_file()


def test_init_model_run_records_the_network_it_trained(tmp_path):
    """Fine-tuning keeps the --init-model's architecture, but the model file's training record
    (and the training report) said ``size: tiny`` (--size's default, or a --size given and
    ignored) for a micro network, and the log said nothing about the size. The record names the
    network trained, and one line says that --size / --trunk / --weights do not change it."""

    from sam2elnet.engine.train import train
    from sam2elnet.model import load_model

    init, data = micro_sar_model_and_reviewed_pairs(tmp_path)
    lines: list[str] = []
    cfg = small_cfg(data, tmp_path / "run", init_model=init, fit_quality=False, size="tiny")
    res = train(cfg, echo=lines.append)
    record = load_model(res.best_path)[1]["train"]
    assert (record["size"], record["trunk"], record["weights"]) == ("micro", "none", None)
    assert (
        "model: micro, trunk training none (the --init-model's architecture, kept in "
        "fine-tuning; --size, --trunk and --weights do not change it); 32 px crops (--image-size)"
    ) in lines


@pytest.mark.parametrize("flag", ["--weights", "--init-model"])
def test_a_checkpoint_of_the_wrong_kind_is_refused_before_the_data_is_read(
    tmp_path, monkeypatch, capsys, flag
):
    """``elnet train --weights config.yaml`` was refused only after the data folder had been
    scanned and the network built; the kind of --weights / --init-model is now checked first
    (one error line, exit 2), also when --data is missing or would take long to read."""
    import sam2elnet.engine.train as train_mod
    from sam2elnet.cli import main

    def data_read(cfg):
        raise AssertionError("the training data was read before the checkpoint was checked")

    monkeypatch.setattr(train_mod, "_prepare_data", data_read)
    yaml_file = tmp_path / "config.yaml"
    yaml_file.write_text("epochs: 1\nsize: micro\n")
    data = make_dataset(tmp_path / "flat", n=4)
    for where in (data, tmp_path / "no-such-data"):
        out = tmp_path / "r"
        rc = main(["train", "--data", str(where), "--out", str(out), flag, str(yaml_file)])
        err = capsys.readouterr().err
        assert rc == 2
        assert err == (
            f"error: {yaml_file}: not a readable checkpoint: a text file (first line "
            "'epochs: 1'); check the path (or, for a download, download the file again)\n"
        )
        assert not out.exists()
    # a folder without .safetensors, an empty file, bytes of another kind
    empty, other, folder = tmp_path / "e.pt", tmp_path / "x.pt", tmp_path / "w"
    empty.write_bytes(b"")
    other.write_bytes(b"\x00\x01GIF89a" + bytes(64))
    folder.mkdir()
    for bad, says in (
        (empty, "file is empty"),
        (other, "not a checkpoint (neither a PyTorch .pt file nor .safetensors)"),
        (
            folder,
            "folder has no .safetensors" if flag == "--weights" else "--init-model is a folder",
        ),
    ):
        rc = main(["train", "--data", str(data), "--out", str(tmp_path / "r"), flag, str(bad)])
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith(f"error: {bad}: {says}") and err.count("\n") == 1, err


def test_run_skipped_csv_lists_unreadable_pairs_and_survives_a_kill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """RUN/skipped.csv (image, id, reason; utils.batch.SkipLog.write_csv) is written before the
    first epoch; a run killed after it and resumed writes the same list."""
    import sam2elnet.engine.train as tr
    import sam2elnet.engine.train_checkpoints as ck

    data = make_dataset(tmp_path / "d", n=6, size=32)
    (data / "images" / "s03.png").write_bytes(b"not a png")
    run = tmp_path / "run"

    def killed(*a, **kw):  # noqa: ANN002, ANN003, ANN202
        raise KeyboardInterrupt  # the kill arrives at the first checkpoint

    monkeypatch.setattr(ck, "save_last", killed)
    with pytest.raises(KeyboardInterrupt):
        tr.train(small_cfg(data, run, epochs=2, fit_quality=False))
    monkeypatch.undo()
    listed = (run / "skipped.csv").read_text()
    with (run / "skipped.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["image", "id", "reason"]
    assert [(Path(r["image"]).name, r["id"]) for r in rows] == [("s03.png", "s03")]
    assert rows[0]["reason"] and "s03.png:" not in rows[0]["reason"]
    res = tr.train(small_cfg(data, run, epochs=2, fit_quality=False, resume=True))
    assert [x["id"] for x in res.skipped] == ["s03"]
    assert (run / "skipped.csv").read_text() == listed


def test_nothing_to_train_on_replaces_an_earlier_skip_list_and_leaves_no_new_folder(
    tmp_path: Path,
):
    """Was: a run whose every pair was skipped (exit 2) left an earlier run's RUN/skipped.csv in
    place, listing another run's files. Now this run's list (why nothing trained) replaces it;
    into a new --out nothing is left behind (no folder holding only a skip list)."""
    import sam2elnet.engine.train as tr
    from sam2elnet.utils.batch import NothingDoneError

    data = make_dataset(tmp_path / "d", n=3, size=32)
    for k in range(3):
        (data / "images" / f"s{k:02d}.png").write_bytes(b"not a png")
    fresh = tmp_path / "fresh"
    with pytest.raises(NothingDoneError, match="nothing produced: all 3 images") as err:
        tr.train(small_cfg(data, fresh, epochs=1, fit_quality=False))
    assert not fresh.exists() and str(err.value).endswith("fix or remove the files and re-run")
    run = tmp_path / "run"
    run.mkdir()
    (run / "skipped.csv").write_text("image,id,reason\nold.png,old,an earlier run's\n")
    with pytest.raises(NothingDoneError) as err:
        tr.train(small_cfg(data, run, epochs=1, fit_quality=False))
    assert str(err.value).endswith(f"re-run (listed with the reasons in {run / 'skipped.csv'})")
    with (run / "skipped.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted((Path(r["image"]).name, r["id"]) for r in rows) == [
        (f"s{k:02d}.png", f"s{k:02d}") for k in range(3)
    ], rows
