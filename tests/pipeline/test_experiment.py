"""End-to-end test of the protocol experiment on a miniature synthetic set, plus its bad inputs."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pytest
from helpers_data import tiny_experiment_config

from sam2elnet.cli import main
from sam2elnet.errors import DataError, UserError
from sam2elnet.pipeline.experiment import ExperimentConfig, run_experiment
from sam2elnet.pipeline.experiment_stages import stage_summary


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sam2elnet.data.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("synth")
    generate_dataset(root, task="oil-spill", count=12, size=48, seed=3, progress=False)
    return root


def _cfg(data: Path, out: Path, **kw) -> ExperimentConfig:
    return tiny_experiment_config(data, out, **kw)


@pytest.fixture
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """One thread: on a machine shared with other jobs, 2 spinning OpenMP threads are much slower."""
    monkeypatch.setenv("SAM2ELNET_THREADS", "1")


def test_miniature_experiment_end_to_end_and_caching(
    synth: Path, tmp_path: Path, one_thread
) -> None:
    out = tmp_path / "exp"
    cfg = _cfg(synth, out)
    r = run_experiment(cfg)

    # results.json structure
    saved = json.loads((out / "results.json").read_text())
    assert saved["version"] == 1
    for key in (
        "settings",
        "weights",
        "split",
        "elnet",
        "autolabels",
        "downstream_config",
        "table1",
        "table2",
        "stages",
    ):
        assert key in saved, key
    assert saved["weights"]["random_init"] is True
    assert [row["setting"] for row in saved["table1"]] == [
        "full",
        "fraction",
        "auto_filtered",
        "fraction_auto_filtered",
        "fraction_auto_all",
        "elnet_direct",
    ]
    sp = saved["split"]
    assert sp["labelled"] + sp["unlabelled"] + sp["test"] == 12
    t1 = {row["setting"]: row for row in saved["table1"]}
    assert t1["full"]["hand_labels"] == sp["labelled"] + sp["unlabelled"]
    assert t1["fraction"]["hand_labels"] == sp["labelled"] == t1["auto_filtered"]["hand_labels"]
    assert t1["elnet_direct"]["hand_labels"] == sp["labelled"] == t1["elnet_direct"]["train_images"]
    for row in saved["table1"]:
        assert row["skipped"] or 0.0 <= row["iou"] <= 1.0
        if not row["skipped"] and row["iou_ci"] is not None:  # the IoU's bootstrap interval
            lo, hi = row["iou_ci"]
            assert 0.0 <= lo <= row["iou"] + 1e-9 and row["iou"] - 1e-9 <= hi <= 1.0
        elif not row["skipped"]:  # tiny test split: too many resamples without foreground
            assert row["iou_ci_left_out"] > 0.025 * 2000
            md_text = (out / "results.md").read_text()
            assert f"(no CI: {row['iou_ci_left_out']} resamples without foreground)" in md_text
        if not row["skipped"]:
            assert set(row["by_group"]) == {"all"}  # generic layout: one group
            assert row["by_group"]["all"]["iou"] == pytest.approx(row["iou"])
    # per-image counts: one line per (setting, test image), summing to the aggregate scores
    import csv

    with open(out / "per_image.csv", newline="") as fh:
        recs = list(csv.DictReader(fh))
    for setting in ("full", "elnet_direct"):
        mine = [x for x in recs if x["setting"] == setting]
        assert len(mine) == sp["test"]
        tp, fp, fn = (sum(int(x[k]) for x in mine) for k in ("tp", "fp", "fn"))
        assert t1[setting]["iou"] == pytest.approx(tp / (tp + fp + fn) if tp + fp + fn else 1.0)
    auto_rows = [x for x in recs if x["setting"] == "autolabels"]
    assert len(auto_rows) == sp["unlabelled"]
    tp, fp, fn = (sum(int(x[k]) for x in auto_rows) for k in ("tp", "fp", "fn"))
    assert saved["autolabels"]["iou_all"]["iou"] == pytest.approx(tp / (tp + fp + fn))
    assert saved["verdict"] and "(a)" in saved["verdict"][0]  # tiny models: maybe IoU 0
    a = saved["autolabels"]
    assert a["n"] == sp["unlabelled"] and 1 <= a["n_kept"] <= a["n"]
    assert 0.0 <= a["iou_all"]["iou"] <= 1.0
    # the filter decision as data: the threshold applied and the words stored beside it
    f = a["filter"]
    assert f["threshold"] == a["threshold"] and f["rule"] == a["threshold_rule"]
    assert f["fallback"] == bool(a["fallback"]) and f["keep"] in (">=", ">")
    # table 2: both label sources x (coarse, morphological, elnet)
    combos = {(row["source"], row["method"]) for row in saved["table2"]}
    assert combos == {(s, m) for s in ("sim", "own") for m in ("coarse", "morphological", "elnet")}
    for row in saved["table2"]:
        assert 0.0 <= row["label_iou_all"] <= 1.0  # synthetic data: truth exists for both sources
    md = (out / "results.md").read_text()
    assert "Table 1" in md and "Table 2" in md and "RANDOMLY INITIALISED" in md
    assert "IoU [95 % CI]" in md and "Verdict" in md and "(f) SAM2-ELNet itself" in md
    from sam2elnet.pipeline.experiment_markdown import degenerate_note

    note = degenerate_note(saved["table1"])  # tiny models: often degenerate, and then said so
    assert (f"**Warning:** {note}." in md) if note else ("**Warning:**" not in md)
    # the model-selection rule is named (default coarse_prob 0.5: the mean of the two modes)
    assert saved["elnet"]["selection"].startswith("val_iou = 0.5 x annotation IoU + 0.5 x")
    assert "(val_iou = 0.5 x annotation IoU + 0.5 x enhancement IoU" in md
    assert (out / "results.png").stat().st_size > 1000
    assert (out / "report.html").is_file()
    # the command behind every number: results.json, results.md and report.html
    from sam2elnet.pipeline.experiment_command import experiment_command

    assert saved["command"] == experiment_command(cfg)
    assert saved["command"].startswith(f"elnet experiment --data {synth} --out {out} ")
    assert f"Command (every number below): `{saved['command']}`" in md
    page = html.unescape((out / "report.html").read_text())
    assert f"Command (every number here): {saved['command']}" in page
    # report.html also gives the verdict lines and the learning curves results.md gives
    assert all(f"Verdict: {line}" in page for line in saved["verdict"])
    assert saved["curves_file"] == "curves.png" and "downstream learning curves" in page
    # every stage did its work; a downstream setting training on the same labels as an earlier
    # one (the filter kept every auto-label: (e) = (d)) takes that result (no second U-Net, and
    # no ~0 s timing sample for the ETA)
    reused = {k for k, v in r["stages"].items() if v == "reused"}
    assert set(r["stages"].values()) - {"reused"} == {"ran"}
    if a["n_kept"] == a["n"]:
        assert reused == {"downstream_fraction_auto_all"}
        same = {row["setting"]: row["iou"] for row in r["table1"]}
        assert same["fraction_auto_all"] == same["fraction_auto_filtered"]
    else:
        assert not reused
    # --trunk-scale auto without SAM2 weights: the half-resolution trunk, as built, recorded
    said = "SAM2-ELNet: trunk at half resolution (2) (--trunk-scale auto)"
    assert saved["elnet"]["trunk_scale"] == 2 and saved["elnet"]["trunk_note"] == said
    assert saved["settings"]["trunk_scale"] is None  # the option (auto), part of the identity
    assert "trunk training none, trunk at half resolution (2) (--trunk-scale auto), 1 epochs" in md
    assert said in (out / "report.html").read_text()

    # second run: every stage is skipped
    r2 = run_experiment(cfg)
    assert set(r2["stages"].values()) == {"cached"}
    assert r2["elnet"]["trunk_scale"] == 2  # a cached network: read from its model file
    assert r2["table1"] == r["table1"] and r2["table2"] == r["table2"]

    # a removed marker re-runs only that stage (what --resume relies on after a kill)
    (out / "stages" / "downstream_fraction.json").unlink()
    r3 = run_experiment(_cfg(synth, out, resume=True))
    redone = {k: v for k, v in r3["stages"].items() if v != "cached"}
    assert redone == {"downstream_fraction": "reused"}  # its trained result was kept by fingerprint

    # a rewritten auto-label invalidates exactly the downstream models trained on it
    labels = stage_summary(out, "annotate")["labels"]
    label = Path(labels[sorted(labels)[0]])
    data = label.read_bytes()
    label.unlink()
    label.write_bytes(data + b"")
    r4 = run_experiment(cfg)
    redone = {k for k, v in r4["stages"].items() if v != "cached"}
    assert "downstream_fraction_auto_all" in redone and "downstream_fraction" not in redone

    # other downstream settings re-train only the downstream models
    r5 = run_experiment(_cfg(synth, out, downstream_steps=3))
    ran = {k for k, v in r5["stages"].items() if v != "cached"}
    assert ran and all(k.startswith("downstream_") for k in ran)
    assert r5["downstream_config"]["steps"] == 3
    # learning curves: every downstream model scored after each of its 3 steps, plotted, linked
    for row in r5["table1"][:5] + r5["table2"]:
        assert [p["step"] for p in row["curve"]] == [1, 2, 3]
        assert row["curve"][-1]["iou"] == pytest.approx(row["iou"])
    assert (out / "curves.png").stat().st_size > 1000
    assert "](curves.png)" in (out / "results.md").read_text()
    # no curve asked: the curve run's models are the same (curve scoring is inference only),
    # their results taken without the curve, nothing trained again (was: all 11 retrained)
    r6 = run_experiment(_cfg(synth, out, downstream_steps=3, downstream_curve_points=0))
    down6 = {k: v for k, v in r6["stages"].items() if k.startswith("downstream_")}
    assert down6 and set(down6.values()) == {"reused"}
    assert {k for k, v in r6["stages"].items() if v != "cached"} == set(down6)
    rows6, rows5 = r6["table1"][:5] + r6["table2"], r5["table1"][:5] + r5["table2"]
    for row, before in zip(rows6, rows5, strict=True):
        assert row["curve"] == [] and row["iou"] == before["iou"]

    # other settings in the same folder are refused
    with pytest.raises(UserError, match="other settings"):
        run_experiment(_cfg(synth, out, fraction=0.5))


@pytest.mark.parametrize("fraction", ["0", "1", "1.5", "-0.2"])
def test_cli_rejects_fraction_outside_open_interval(
    synth: Path, tmp_path: Path, fraction: str, capsys
) -> None:
    code = main(
        ["experiment", "--data", str(synth), "--out", str(tmp_path / "o"), "--fraction", fraction]
    )
    assert code == 2
    assert "error:" in capsys.readouterr().err


def test_cli_missing_and_empty_data(tmp_path: Path, capsys) -> None:
    code = main(["experiment", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "nope" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    code = main(["experiment", "--data", str(empty), "--out", str(tmp_path / "o2")])
    assert code == 2
    assert "empty" in capsys.readouterr().err


def test_cli_rejects_conflicting_filters_and_bad_options(
    synth: Path, tmp_path: Path, capsys
) -> None:
    args = ["experiment", "--data", str(synth), "--out", str(tmp_path / "o")]
    assert main([*args, "--min-quality", "0.5", "--target-precision", "0.9"]) == 2
    assert "either" in capsys.readouterr().err
    assert main([*args, "--refiners", "crf"]) == 2
    assert main([*args, "--trunk", "some"]) == 2
    assert main([*args, "--image-size", "8"]) == 2


def test_cli_trunk_scale_as_in_train(
    synth: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--trunk-scale: the help text of train and cv, refused out of range in one line, passed
    to the protocol's training (None = auto, resolved there as in ``elnet train``)."""
    import typer

    import sam2elnet.engine.train as engine_train
    import sam2elnet.pipeline.experiment as experiment
    from sam2elnet.cli.app import app
    from sam2elnet.cli.shared_options import TRAIN_HELP
    from sam2elnet.pipeline.experiment_engine import train_elnet

    cmds = {c.name: c for c in typer.main.get_command(app).commands.values()}
    helps = {
        name: next(p.help for p in cmds[name].params if p.name == "trunk_scale")
        for name in ("experiment", "cv")
    }
    assert helps["experiment"] == helps["cv"] == TRAIN_HELP["trunk_scale"]
    args = ["experiment", "--data", str(synth), "--out", str(tmp_path / "o")]
    assert main([*args, "--trunk-scale", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: invalid value for --trunk-scale: 3") and "\n" not in err
    seen = []

    class Stop(Exception):
        pass

    def capture(cfg, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
        seen.append(cfg)
        raise Stop

    monkeypatch.setattr(experiment, "run_experiment", capture)
    monkeypatch.setattr(engine_train, "train", capture)
    for given, want in (([], None), (["--trunk-scale", "1"], 1)):
        with pytest.raises(Stop):
            main([*args, *given])
        assert seen[-1].trunk_scale == want and seen[-1].identity()["trunk_scale"] == want
        with pytest.raises(Stop):
            train_elnet(seen[-1], tmp_path / "lab", tmp_path / "run", None)
        assert seen[-1].trunk_scale == want  # the TrainConfig: auto resolved by training


def test_too_few_pairs_is_a_data_error(tmp_path: Path) -> None:
    from sam2elnet.data.synthetic import generate_dataset
    from sam2elnet.errors import DataError

    root = tmp_path / "tiny"
    generate_dataset(root, count=4, size=32, progress=False)
    with pytest.raises(DataError, match="at least 6"):
        run_experiment(_cfg(root, tmp_path / "o"))


def test_seeds_share_one_test_split_unless_split_seed_changes(synth: Path, tmp_path: Path) -> None:
    from sam2elnet.pipeline.experiment import make_split

    s0 = make_split(_cfg(synth, tmp_path / "a", seed=0))
    s1 = make_split(_cfg(synth, tmp_path / "b", seed=1))
    other = make_split(_cfg(synth, tmp_path / "c", seed=0, split_seed=7))
    assert s0.test == s1.test  # --seed redraws the labelled part only
    assert s0.labelled != s1.labelled
    assert other.test != s0.test
    assert not set(s0.test) & set(s0.labelled + s0.unlabelled)


def _class_index_copy(src: Path, dst: Path) -> Path:
    """The synthetic set with class-index masks and coarse labels: 2 = object (the 255 of the
    original), 1 = another class (a background strip), 0 = the rest."""
    import shutil

    import cv2
    import numpy as np

    shutil.copytree(src / "images", dst / "images")
    for sub in ("masks", "coarse"):
        (dst / sub).mkdir(parents=True)
        for f in sorted((src / sub).glob("*.png")):
            m = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
            out = np.where(m > 127, 2, 0).astype(np.uint8)
            out[:, :4][m[:, :4] <= 127] = 1
            cv2.imwrite(str(dst / sub / f.name), out)
    return dst


def test_class_index_masks_refused_without_and_scored_with_positive_values(
    synth: Path, tmp_path: Path, capsys, one_thread
) -> None:
    import numpy as np

    from sam2elnet.data.raster import read_mask, read_mask_valid
    from sam2elnet.pipeline.experiment_config import upgrade_identity

    data = _class_index_copy(synth, tmp_path / "classes")
    # without the option: one error line naming the values and the option, exit 2, nothing trained
    code = main(
        ["experiment", "--data", str(data), "--out", str(tmp_path / "o0"), "--size", "micro"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "class-index" in err and "--positive-values" in err
    assert "Traceback" not in err
    assert not (tmp_path / "o0" / "elnet").exists()

    out = tmp_path / "exp"
    cfg = _cfg(data, out, positive_values=(2,), sources=("own",), downstream_curve_points=0)
    r = run_experiment(cfg)
    split = stage_summary(out, "split")
    for i, p in split["masks"].items():  # decoded once: 2 -> object, 0 and 1 -> background
        assert Path(p).parent == out / "truth" / "masks"
        assert np.array_equal(read_mask(p), read_mask(synth / "masks" / f"{i}.png"))
    # the own coarse labels' IoU against the truth: the value computed from the original 0/255 files
    inter = union = 0
    for i in split["labelled"] + split["unlabelled"]:
        t, _ = read_mask_valid(synth / "masks" / f"{i}.png")
        c = read_mask(synth / "coarse" / f"{i}.png")
        inter += int((t & c).sum())
        union += int((t | c).sum())
    coarse_row = next(row for row in r["table2"] if row["method"] == "coarse")
    assert 0.2 < inter / union < 0.95  # the check below cannot pass by a trivial 0 or 1
    assert coarse_row["label_iou_all"] == pytest.approx(inter / union)
    assert all(row["iou"] is not None for row in r["table1"][:2])
    assert r["settings"]["positive_values"] == [2.0]
    assert "--positive-values" in (out / "results.md").read_text()
    assert "read as object (--positive-values): 2." in (out / "results.md").read_text()
    # part of the experiment's identity; a run made before the option reads as "not given"
    ident = json.loads((out / "experiment.json").read_text())
    assert ident["positive_values"] == [2.0]
    with pytest.raises(UserError, match=r"other settings: --positive-values 1,2 \(saved: 2\); "):
        run_experiment(_cfg(data, out, positive_values=(1, 2), sources=("own",)))
    old = {k: v for k, v in cfg.model_copy(update={"positive_values": None}).identity().items()}
    del old["positive_values"]
    assert upgrade_identity(old)["positive_values"] is None


def test_refused_experiment_leaves_nothing_behind(synth: Path, tmp_path: Path, one_thread) -> None:
    """A run stopped by bad data before any stage finished removes the folder it created, and in
    a folder that already existed only its own experiment.json."""
    data = _class_index_copy(synth, tmp_path / "classes")
    out = tmp_path / "new"
    with pytest.raises(DataError, match="class-index"):
        run_experiment(_cfg(data, out, sources=("own",)))
    assert not out.exists()
    kept = tmp_path / "existing"
    kept.mkdir()
    (kept / "notes.txt").write_text("the user's file")
    with pytest.raises(DataError, match="class-index"):
        run_experiment(_cfg(data, kept, sources=("own",)))
    assert sorted(p.name for p in kept.iterdir() if p.is_file()) == ["notes.txt"]


def test_precision_is_one_vocabulary_and_old_fp32_experiments_continue(
    synth: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Experiments made before the one precision vocabulary stored float32 as ``fp32`` in
    experiment.json; ``--precision 32`` (or the old spelling) continues them, bf16 is refused."""
    import sam2elnet.pipeline.experiment as experiment

    out = tmp_path / "old"
    old = _cfg(synth, out, precision="32").identity()
    assert old["precision"] == "32"
    (out / "stages").mkdir(parents=True)
    (out / "experiment.json").write_text(json.dumps({**old, "precision": "fp32"}))
    (out / "stages" / "split.json").write_text("{}")  # a finished stage: the identity is checked
    with pytest.raises(UserError, match=r"other settings: --precision bf16 \(saved: 32\); "):
        run_experiment(_cfg(synth, out, precision="bf16"))

    class Passed(Exception):
        pass

    def past_the_identity_check(cfg: ExperimentConfig, random_init: str) -> None:
        raise Passed

    monkeypatch.setattr(experiment, "resolve_weights", past_the_identity_check)
    for given in ("32", "fp32"):
        with pytest.raises(Passed):
            run_experiment(_cfg(synth, out, precision=given))
    assert json.loads((out / "experiment.json").read_text())["precision"] == "32"

    # the CLI: the values in the help, a bad one refused in one line before any work
    new = tmp_path / "new"
    args = ["experiment", "--data", str(synth), "--out", str(new)]
    assert main([*args, "--precision", "foo"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: invalid value for --precision: 'foo'") and "\n" not in err
    assert "auto | bf16 | 32" in err and "fp32" not in err
    assert not new.exists()


def _label_iou(labels: dict[str, str], masks: dict[str, str], ids: list[str]) -> float:
    """Pixel-aggregated IoU of label files vs true masks, counted here from the files."""
    from sam2elnet.data.raster import read_mask, read_mask_valid

    inter = union = 0
    for i in ids:
        t, valid = read_mask_valid(masks[i])
        p = read_mask(labels[i])
        v = True if valid is None else valid
        inter += int((t & p & v).sum())
        union += int(((t | p) & v).sum())
    return inter / union


def test_enhancement_table_by_label_scores_then_with_downstream_models(
    synth: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch, one_thread
) -> None:
    """--no-enhancement-downstream: table 2 scores its label sets against the truth only (no U-Net
    trained on them, the ETA plans none); switching it on later in the same folder trains just
    those models, and off again reuses everything."""
    import sam2elnet.pipeline.experiment as experiment
    from sam2elnet.cli.pipeline_cmd import _print_tables
    from sam2elnet.pipeline.experiment_config import NO_ENHANCEMENT_DOWNSTREAM
    from sam2elnet.pipeline.experiment_stages import Stages

    # the CLI flag reaches the config (default on)
    seen: list[ExperimentConfig] = []

    def stop(cfg: ExperimentConfig, **options: str) -> None:
        seen.append(cfg)
        raise UserError("stop here")

    with monkeypatch.context() as m:
        m.setattr(experiment, "run_experiment", stop)
        args = ["experiment", "--data", str(synth), "--out", str(tmp_path / "cli")]
        assert main([*args, "--no-enhancement-downstream"]) == 2 and main(args) == 2
    assert [c.enhancement_downstream for c in seen] == [False, True]

    plans: list[dict[str, int]] = []
    expect = Stages.expect
    monkeypatch.setattr(
        Stages, "expect", lambda self, plan, *a: (plans.append(plan), expect(self, plan, *a))
    )
    out = tmp_path / "exp"
    run_experiment(_cfg(synth, out, enhancement_downstream=False, downstream_curve_points=0))
    table1 = ["full", "fraction", "auto_filtered", "fraction_auto_filtered", "fraction_auto_all"]
    trained = sorted(p.stem for p in (out / "stages").glob("downstream_*.json"))
    assert trained == sorted(f"downstream_{k}" for k in table1)  # no downstream_enh_*
    assert plans[-1]["downstream"] == 5 and plans[-1]["labelscore"] == 6  # 2 sources x 3 sets

    r = json.loads((out / "results.json").read_text())
    assert r["settings"]["enhancement_downstream"] is False
    split = stage_summary(out, "split")
    pool = split["labelled"] + split["unlabelled"]
    files = {
        ("sim", m): {i: str(out / "labels" / "sim" / m / f"{i}.png") for i in pool}
        for m in ("coarse", "morphological")
    }
    files[("own", "coarse")] = {i: str(synth / "coarse" / f"{i}.png") for i in pool}
    files[("own", "morphological")] = {
        i: str(out / "labels" / "own" / "morphological" / f"{i}.png") for i in pool
    }
    for src in ("sim", "own"):
        enh = stage_summary(out, f"enhance_{src}")
        files[(src, "elnet")] = enh["labels"]
    assert {(row["source"], row["method"]) for row in r["table2"]} == set(files)
    for row in r["table2"]:
        labels = files[(row["source"], row["method"])]
        assert row["label_iou_all"] == pytest.approx(_label_iou(labels, split["masks"], pool))
        assert row["label_iou_unlabelled"] == pytest.approx(
            _label_iou(labels, split["masks"], split["unlabelled"])
        )
        # no downstream numbers, and it says why
        assert row["skipped"] == NO_ENHANCEMENT_DOWNSTREAM
        assert row["iou"] is None and row["f1"] is None and row["miou"] is None
        assert row["iou_ci"] is None and row["curve"] == [] and row["by_group"] == {}
    sim_coarse = next(x for x in r["table2"] if x["source"] == "sim" and x["method"] == "coarse")
    assert 0.2 < sim_coarse["label_iou_all"] < 0.95  # the check above is not a trivial 0 or 1
    md = (out / "results.md").read_text()
    assert f"Note: {NO_ENHANCEMENT_DOWNSTREAM}." in md and "test IoU [95 % CI]" not in md
    assert "not trained on them" in (out / "report.html").read_text()
    import csv

    with open(out / "per_image.csv", newline="") as fh:
        enh_rows = [x for x in csv.DictReader(fh) if x["setting"].startswith("enh_")]
    # no downstream (test) rows; each label set's own counts per pool image instead
    assert {x["part"] for x in enh_rows} == {"labelled", "unlabelled"}
    assert len(enh_rows) == len(r["table2"]) * len(pool)
    _print_tables(r)
    printed = capsys.readouterr().out
    assert "table 2 (label IoU):" in printed and NO_ENHANCEMENT_DOWNSTREAM in printed
    assert "test IoU" not in printed.split("table 2")[1]

    # switched on in the same folder: exactly the six missing downstream models are trained
    r2 = run_experiment(_cfg(synth, out, downstream_curve_points=0, report=False))
    ran = {k for k, v in r2["stages"].items() if v == "ran"}
    assert ran == {f"downstream_enh_{s}_{m}" for s, m in files}
    assert plans[-1]["downstream"] == 5 + 6
    assert sum(k.startswith("downstream_") for k in r2["stages"]) == plans[-1]["downstream"]
    for row, before in zip(r2["table2"], r["table2"], strict=True):
        assert row["label_iou_all"] == before["label_iou_all"]
        assert not row["skipped"] and 0.0 <= row["iou"] <= 1.0
    md = (out / "results.md").read_text()
    assert "test IoU [95 % CI]" in md and NO_ENHANCEMENT_DOWNSTREAM not in md

    # and off again: nothing runs, the trained models are not reported
    r3 = run_experiment(
        _cfg(synth, out, enhancement_downstream=False, downstream_curve_points=0, report=False)
    )
    assert set(r3["stages"].values()) == {"cached"}
    assert all(row["iou"] is None for row in r3["table2"])


def test_weights_none_means_random_init_even_with_a_cached_checkpoint(
    synth: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--weights none`` (the spelling elnet train and cv take) was read as a file name and
    refused; it means a random encoder, without looking in the weights cache. The note and a
    missing file's error are in the API's words (``weights="none"``; they said ``--weights``)
    unless the command line passes its own."""
    import sam2elnet.model.weights_cache as weights_cache
    from sam2elnet.pipeline.experiment_engine import resolve_weights

    cached = tmp_path / "sam2.1_hiera_tiny.pt"
    cached.write_bytes(b"x")
    monkeypatch.setattr(weights_cache, "find_cached_weights", lambda size: cached)
    for given in ("none", "None", " NONE "):
        cfg = _cfg(synth, tmp_path / "e", size="tiny", weights=given)
        assert cfg.weights == "none"
        path, note = resolve_weights(cfg)
        assert path is None
        # the Python API's words (ExperimentConfig's weights=None is the cached checkpoint)
        assert note.startswith('RANDOMLY INITIALISED SAM2 Hiera-tiny encoder (weights="none";')
        assert "--weights" not in note
        cli_note = resolve_weights(cfg, "--weights none")[1]
        assert cli_note.startswith("RANDOMLY INITIALISED SAM2 Hiera-tiny encoder (--weights none;")
    for given in (None, "", "null"):  # the default: the cached checkpoint
        cfg = _cfg(synth, tmp_path / "e", size="tiny", weights=given)
        assert cfg.weights is None
        assert resolve_weights(cfg)[0] == str(cached)
    missing = tmp_path / "missing.pt"
    with pytest.raises(UserError) as info:  # from the API: no --weights in the message
        resolve_weights(_cfg(synth, tmp_path / "e", weights=str(missing)))
    assert str(info.value) == (
        f"{missing}: weights file not found; run `elnet weights list` to see where weights are "
        'looked for, or pass weights="none" to train from random initialisation'
    )
    text = tmp_path / "config.yaml"  # a file of the wrong kind: refused before the data split
    text.write_text("epochs: 1\n")
    with pytest.raises(UserError, match="not a readable checkpoint: a text file"):
        resolve_weights(_cfg(synth, tmp_path / "e", weights=str(text)))


def test_experiment_road_buffer_reaches_the_road_measures(
    tmp_path: Path, capsys, experiment_configs
):
    """``elnet experiment --road-buffer`` (as ``elnet evaluate``'s; a fixed 3 px before): the
    config carries it, part of the experiment's identity (runs made before read as 3 px), and
    the scoring of labels against the truth (rows (f) and the auto-labels) matches centre lines
    within it."""
    from helpers_roads import make_road_dataset

    from sam2elnet.cli import main
    from sam2elnet.data.normalize import NormalizationConfig
    from sam2elnet.engine.metrics import RoadCounts
    from sam2elnet.option_values import ROAD_BUFFER_PX
    from sam2elnet.pipeline.experiment_config import upgrade_identity
    from sam2elnet.pipeline.experiment_scores import counts_vs_truth
    from sam2elnet.pipeline.experiment_split import Split

    data = make_road_dataset(tmp_path / "roads", n=4, size=48)
    seen = experiment_configs
    base = ["experiment", "--data", str(data), "--out", str(tmp_path / "x")]
    assert main([*base, "--road-buffer", "4.5"]) == 0
    assert seen[0].road_buffer == 4.5 and seen[0].identity()["road_buffer"] == 4.5
    assert main([*base, "--road-buffer", "-1"]) == 2
    assert capsys.readouterr().err.startswith("error: invalid value for --road-buffer: -1.0 (")
    assert upgrade_identity({"seed": 0})["road_buffer"] == ROAD_BUFFER_PX
    # a prediction shifted 4 px down and right of the true roads: matched within 8 px, hardly
    # within 1 px
    import cv2
    import numpy as np

    ids = sorted(p.stem for p in (data / "masks").glob("*.png"))
    shifted = tmp_path / "shifted"
    shifted.mkdir()
    labels = {}
    for i in ids:
        m = cv2.imread(str(data / "masks" / f"{i}.png"), cv2.IMREAD_GRAYSCALE)
        labels[i] = str(shifted / f"{i}.png")
        cv2.imwrite(labels[i], np.roll(m, (4, 4), axis=(0, 1)))
    split = Split(
        modality="optical", layout="generic", labelled=[], unlabelled=[], test=ids,
        images={i: str(data / "images" / f"{i}.png") for i in ids},
        masks={i: str(data / "masks" / f"{i}.png") for i in ids},
        own={}, own_is_truth=True, test_source="test",
    )  # fmt: skip
    norm = NormalizationConfig.for_modality("optical")
    quality = {}
    for buffer in (1.0, 8.0):
        rows: list[RoadCounts] = []
        counts_vs_truth(labels, split, ids, norm=norm, road_counts=rows, road_buffer=buffer)
        quality[buffer] = sum(rows, RoadCounts()).scores()["road_quality"]
    assert quality[8.0] > 0.8 and quality[1.0] < 0.3, quality


def test_degenerate_table1_warning_is_logged_by_the_pipeline_and_printed_once(
    synth: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys, one_thread
) -> None:
    """The degenerate-models sentence is a log warning of run_experiment (API users see it),
    which the CLI prints as one ``warning:`` line (it echoed it itself, unseen by the API)."""
    import logging

    from sam2elnet.pipeline.experiment_markdown import degenerate_note

    out = tmp_path / "deg"
    with caplog.at_level(logging.WARNING, logger="sam2elnet"):
        r = run_experiment(_cfg(synth, out, enhancement=False, report=False))
    note = degenerate_note(r["table1"])
    assert note is not None  # one-epoch width-4 U-Nets on 12 images of 48 px (seeded): degenerate
    logged = [rec for rec in caplog.records if "degenerate" in rec.getMessage()]
    assert [(rec.name, rec.levelno, rec.getMessage()) for rec in logged] == [
        ("sam2elnet.pipeline.experiment", logging.WARNING, note)
    ]
    args = ["experiment", "--data", str(synth), "--out", str(out), "--fraction", "0.4"]
    args += ["--epochs", "1", "--downstream-epochs", "1", "--image-size", "48"]
    args += ["--batch-size", "4", "--size", "micro", "--refiners", "morphological"]
    args += ["--downstream-width", "4", "--downstream-depth", "2", "--no-enhancement"]
    args += ["--no-report", "--no-progress"]
    capsys.readouterr()
    assert main(args) == 0  # every stage done before: the same table 1
    got = capsys.readouterr()
    said = note.split(" degenerate: ")[0]  # "N models of table 1 are"
    assert [x for x in got.err.splitlines() if said in x] == [f"warning: {note}"]
    assert said not in got.out


def test_another_quality_filter_filters_the_stored_auto_labels_again(
    synth: Path, tmp_path: Path, one_thread, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    """--min-quality / --target-precision change which auto-labels are kept, not SAM2-ELNet or
    its labels: a re-run into the same --out with another filter filters the stored labels
    again from their stored predicted quality (one line; nothing trained or predicted again),
    and only the U-Nets trained on the kept labels ((c), (d)) train again. It used to be refused
    ('other settings (min_quality)')."""
    import logging

    import sam2elnet.engine.downstream as downstream
    import sam2elnet.pipeline.experiment as experiment_mod
    import sam2elnet.pipeline.experiment_autolabels as autolabels
    from sam2elnet.pipeline.experiment_scores import label_counts, summarize_counts

    out = tmp_path / "exp"

    def run(**kw: Any) -> dict[str, Any]:
        caplog.clear()
        return run_experiment(_cfg(synth, out, enhancement=False, report=False, **kw))

    r = run()
    a, n, n_lab = r["autolabels"], r["autolabels"]["n"], r["split"]["labelled"]
    assert a["n_kept"] == n  # the tiny unfitted evaluator scores every label 0: all kept
    # predicted qualities 0.1 ... 0.6, as a fitted evaluator would store them
    marker = out / "stages" / "annotate.json"
    rec = json.loads(marker.read_text())
    ids = sorted(rec["summary"]["quality"])
    rec["summary"]["quality"] = {i: 0.1 * (k + 1) for k, i in enumerate(ids)}
    del rec["summary"]["filter_options"]  # as a marker made before it was recorded
    marker.write_text(json.dumps(rec))
    labels = stage_summary(out, "annotate")["labels"]
    model = Path(r["elnet"]["model"])
    files = [model, *(Path(x) for x in labels.values())]
    stamps = {p: p.stat().st_mtime_ns for p in files}
    trained: list[int] = []
    real = downstream.train_and_evaluate

    def counted(*args: Any, **kw: Any) -> Any:
        trained.append(len(args[0] if args else kw["train_pairs"]))
        return real(*args, **kw)

    def refuse(*args: Any, **kw: Any) -> Any:
        raise AssertionError("SAM2-ELNet trained or predicted again")

    def said() -> list[str]:
        return [x.split("] ", 1)[1] for x in caplog.messages if "filtered again" in x]

    with monkeypatch.context() as m, caplog.at_level(logging.INFO, "sam2elnet.progress"):
        m.setattr(experiment_mod, "train_elnet", refuse)
        m.setattr(autolabels, "annotate_images", refuse)
        m.setattr(downstream, "train_and_evaluate", counted)
        r2 = run(min_quality=0.35)
        assert said() == [
            f"stage annotate: done before; its {n} auto-labels filtered again with "
            f"--min-quality 0.35 (were filtered with the default rule): 3 kept (were {n}); the "
            "U-Nets of (c) and (d), trained on the kept labels, train again"
        ], caplog.messages
        a2 = r2["autolabels"]
        kept = ids[-3:]
        assert [i for i in ids if json.loads(marker.read_text())["summary"]["kept"][i]] == kept
        assert (a2["n_kept"], a2["threshold"], a2["threshold_rule"]) == (
            3,
            0.35,
            "--min-quality 0.35",
        )
        want = summarize_counts(label_counts(labels, _masks(out), kept))
        assert a2["iou_kept"]["iou"] == pytest.approx(want["iou"])
        assert a2["iou_all"]["iou"] == pytest.approx(a["iou_all"]["iou"])
        assert r2["settings"]["min_quality"] == 0.35
        assert json.loads((out / "experiment.json").read_text())["min_quality"] == 0.35
        st = r2["stages"]
        assert st["annotate"] == "refiltered" and st["elnet"] == "cached"
        redone = {k for k, v in st.items() if v not in ("cached", "refiltered")}
        assert redone == {"downstream_auto_filtered", "downstream_fraction_auto_filtered"}
        assert sorted(trained) == [3, n_lab + 3]
        t1 = {row["setting"]: row for row in r2["table1"]}
        assert t1["auto_filtered"]["train_images"] == 3
        assert t1["fraction_auto_filtered"]["train_images"] == n_lab + 3

        # the same filter again: nothing filtered or trained again
        r3 = run(min_quality=0.35)
        assert set(r3["stages"].values()) == {"cached"} and not said()
        # a filter keeping every label again: the first run's U-Nets (kept by their labels)
        trained.clear()
        (out / "report.html").write_text("an earlier run's page", encoding="utf-8")
        r4 = run(min_quality=0.05)
        assert r4["table1"] == r["table1"] and trained == []
        # without --report the page with the earlier filter's numbers is removed, with a line
        assert not (out / "report.html").exists()
        assert any(
            m.endswith(
                f"removed {out / 'report.html'}: the auto-labels were filtered again and it "
                "showed the earlier numbers; --report writes it again"
            )
            for m in caplog.messages
        ), caplog.messages
        # the default rule (unfitted evaluator: predicted quality >= 0.5) asks SAM2-ELNet's
        # evaluator, without predicting: 2 kept
        r5 = run()
        assert r5["autolabels"]["n_kept"] == 2 and sorted(trained) == [2, n_lab + 2]
        assert r5["autolabels"]["threshold_rule"].startswith("minimum predicted quality 0.5")
    assert {p: p.stat().st_mtime_ns for p in files} == stamps
    # the identity options other than the filter's are still refused
    with pytest.raises(
        UserError, match=r"other settings: --fraction 0.5 \(saved: 0.4\); give the saved"
    ):
        run(fraction=0.5)
    # another --road-buffer on data that are not roads changes no number: the run goes on with
    # its recorded buffer, and says so (it was refused as another experiment)
    record = (out / "experiment.json").read_text()
    with caplog.at_level(logging.INFO, "sam2elnet.progress"):
        r6 = run(road_buffer=5.0)
    assert set(r6["stages"].values()) == {"cached"} and r6["table1"] == r5["table1"]
    assert r6["settings"]["road_buffer"] == 3 and (out / "experiment.json").read_text() == record
    said_buffer = [m for m in caplog.messages if "--road-buffer 5 changes no number" in m]
    assert len(said_buffer) == 1 and said_buffer[0].endswith(
        "--road-buffer 5 changes no number here: the data are not roads ("
        + road_reason(out)
        + "); the experiment keeps its 3 px"
    ), caplog.messages
    # on road data it is refused, saying why
    from sam2elnet.data.domain import resolve_domain
    from sam2elnet.pipeline import experiment_resume

    monkeypatch.setattr(
        experiment_resume, "road_domain", lambda split: resolve_domain("roads", None)
    )
    with pytest.raises(UserError) as e:
        run(road_buffer=5.0)
    assert str(e.value).endswith(
        "other settings: --road-buffer 5 (saved: 3); the downstream U-Nets keep no predictions "
        "to score again with another --road-buffer (on road data it means training them all "
        "again); give the saved values to continue it, or choose a new --out or delete the folder"
    )


def road_reason(out: Path) -> str:
    """Why the run in ``out`` decided its data are not roads (the split stage's record)."""
    from sam2elnet.pipeline.experiment_split import Split, road_domain

    split = stage_summary(out, "split")
    return road_domain(Split(**split)).reason


def _masks(out: Path) -> dict[str, str]:
    """The true masks of an experiment's split (id -> path), as its split stage recorded them."""
    return stage_summary(out, "split")["masks"]
