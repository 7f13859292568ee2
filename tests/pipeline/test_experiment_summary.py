"""``elnet experiment-summary``: runs of several seeds side by side (constructed and tiny real runs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sam2elnet.cli import main
from sam2elnet.errors import DataError, UserError
from sam2elnet.pipeline.experiment_summary import render_summary, summarize_runs


def _fake_run(
    root: Path,
    seed: int,
    ious: dict[str, float],
    data: str = "d",
    settings: dict | None = None,
) -> Path:
    rows = [
        {
            "setting": k,
            "title": k,
            "hand_labels": 100 if k == "full" else 30,
            "iou": v,
            "iou_ci": [v - 0.02, v + 0.02],
            "f1": v,
            "precision": v,
            "recall": v,
            "miou": v,
            "by_group": {"palsar": {"iou": v - 0.1}, "sentinel": {"iou": v + 0.1}},
        }
        for k, v in ious.items()
    ]
    root.mkdir(parents=True)
    (root / "results.json").write_text(
        json.dumps(
            {
                "data": data,
                "settings": {"seed": seed, "data": data, "fraction": 0.3, **(settings or {})},
                "groups": ["palsar", "sentinel"],
                "table1": rows,
                "table2": [],
            }
        )
    )
    return root


def test_summary_means_sd_and_verdict(tmp_path: Path) -> None:
    # s0 predates --split-seed (its test split was drawn with seed + 1000 = 1000); s1 names it
    a = _fake_run(
        tmp_path / "s0", 0, {"full": 0.70, "auto_filtered": 0.60, "fraction_auto_filtered": 0.69}
    )
    b = _fake_run(
        tmp_path / "s1",
        1,
        {"full": 0.72, "auto_filtered": 0.62, "fraction_auto_filtered": 0.71},
        settings={"split_seed": 1000},
    )
    s = summarize_runs([a, b])
    rows = {r["setting"]: r for r in s["rows"]}
    assert rows["full"]["mean"]["iou"] == pytest.approx(0.71)
    assert rows["full"]["sd"]["iou"] == pytest.approx(0.0141421, abs=1e-6)
    assert rows["full"]["by_group"]["sentinel"]["iou"] == pytest.approx(0.81)
    assert "does not reach 97% of (a)" in s["verdict"][0]
    assert "reaches 97% of (a) on the mean over 2 seeds: 98.6 %" in s["verdict"][1]
    assert "70.0 % fewer" in s["verdict"][1]
    md = render_summary(s)
    assert "| full | 100 | 0.710 | 0.014 | 0.700 [0.680, 0.720] | 0.720 [0.700, 0.740] |" in md
    assert "Per sensor" in md


def test_summary_refuses_bad_combinations(tmp_path: Path) -> None:
    a = _fake_run(tmp_path / "a", 0, {"full": 0.7})
    with pytest.raises(UserError, match="at least two"):
        summarize_runs([a])
    with pytest.raises(UserError, match="share a seed"):
        summarize_runs([a, _fake_run(tmp_path / "b", 0, {"full": 0.7})])
    with pytest.raises(UserError, match="other options"):
        summarize_runs([a, _fake_run(tmp_path / "c", 1, {"full": 0.7}, data="other")])
    # two runs before --split-seed with different seeds were scored on different test splits
    with pytest.raises(UserError, match="split_seed"):
        summarize_runs([a, _fake_run(tmp_path / "d", 1, {"full": 0.7})])
    with pytest.raises(DataError, match="no results.json"):
        summarize_runs([a, tmp_path / "missing"])


def test_summary_of_runs_with_label_scores_only_table2(tmp_path: Path) -> None:
    """Runs with --no-enhancement-downstream: table 2 has no test IoU, so it is left out with a
    note; a run made before the option (no key in its settings) reads as trained (True)."""
    from sam2elnet.pipeline.experiment_config import NO_ENHANCEMENT_DOWNSTREAM

    ious = {"full": 0.70, "auto_filtered": 0.60, "fraction_auto_filtered": 0.69}
    runs = []
    for seed in (0, 1):
        run = _fake_run(
            tmp_path / f"s{seed}",
            seed,
            ious,
            settings={"split_seed": 1000, "downstream_epochs": 10, "enhancement_downstream": False},
        )
        r = json.loads((run / "results.json").read_text())
        r["table2"] = [
            {"setting": "enh_sim_coarse", "title": "as is", "labels": "simulated coarse",
             "hand_labels": 100, "iou": None, "label_iou_all": 0.6,
             "skipped": NO_ENHANCEMENT_DOWNSTREAM}
        ]  # fmt: skip
        (run / "results.json").write_text(json.dumps(r))
        runs.append(run)
    s = summarize_runs(runs)
    assert [row["table"] for row in s["rows"]] == ["table1"] * 3
    assert s["notes"] == [NO_ENHANCEMENT_DOWNSTREAM]
    assert f"Note: {NO_ENHANCEMENT_DOWNSTREAM}; their rows are left out." in render_summary(s)
    # an older run (no key) trained those models: it is not combined with a label-scores-only one
    old = _fake_run(
        tmp_path / "old", 2, ious, settings={"split_seed": 1000, "downstream_epochs": 10}
    )
    with pytest.raises(UserError, match=r"other options .*\(enhancement_downstream\)"):
        summarize_runs([runs[0], old])


def test_cli_over_two_tiny_seeded_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from sam2elnet.data.synthetic import generate_dataset
    from sam2elnet.pipeline.experiment import ExperimentConfig, run_experiment

    monkeypatch.setenv("SAM2ELNET_THREADS", "1")
    data = tmp_path / "data"
    generate_dataset(data, task="oil-spill", count=10, size=32, seed=3, progress=False)
    outs = []
    for seed in (0, 1):
        out = tmp_path / f"run{seed}"
        run_experiment(
            ExperimentConfig(
                data=data, out=out, fraction=0.4, epochs=1, downstream_steps=2, image_size=32,
                batch_size=4, size="micro", enhancement=False, downstream_width=4,
                downstream_depth=2, seed=seed, progress=False, report=False,
            )
        )  # fmt: skip
        outs.append(out)
    md = tmp_path / "summary.md"
    assert main(["experiment-summary", str(outs[0]), str(outs[1]), "--out", str(md)]) == 0
    text = md.read_text()
    assert "over 2 seeds" in text and "seed 0" in text and "seed 1" in text
    assert "(f) SAM2-ELNet itself" in text
    # a folder that is not a finished run: one error line, exit code 2
    assert main(["experiment-summary", str(outs[0]), str(tmp_path), "--out", str(md)]) == 2
    assert "results.json" in capsys.readouterr().err


def test_summary_of_table2_label_iou_per_sensor(tmp_path: Path) -> None:
    """Table 2's label IoU (all / unlabelled part, per sensor) as mean and sd over the seeds, also
    for runs without downstream models on table 2's label sets."""
    from sam2elnet.pipeline.experiment_config import NO_ENHANCEMENT_DOWNSTREAM

    runs = []
    for seed, v in ((0, 0.60), (1, 0.64)):
        run = _fake_run(
            tmp_path / f"s{seed}",
            seed,
            {"full": 0.7},
            settings={"split_seed": 1000, "enhancement_downstream": False},
        )
        r = json.loads((run / "results.json").read_text())
        r["table2"] = [
            {"setting": "enh_sim_coarse", "title": "as is", "labels": "simulated coarse",
             "hand_labels": 100, "iou": None, "skipped": NO_ENHANCEMENT_DOWNSTREAM,
             "label_iou_all": v, "label_iou_unlabelled": v - 0.1,
             "label_by_group": {"palsar": {"n": 3, "iou": v - 0.2},
                                "sentinel": {"n": 3, "iou": v + 0.2}},
             "label_unlabelled_by_group": {"palsar": {"n": 2, "iou": v - 0.3},
                                           "sentinel": {"n": 2, "iou": v + 0.1}}},
            {"setting": "enh_own_coarse", "title": "as is", "labels": "dataset's own",
             "hand_labels": 100, "iou": None, "label_iou_all": None,
             "label_iou_unlabelled": None, "label_by_group": {}},
        ]  # fmt: skip
        (run / "results.json").write_text(json.dumps(r))
        runs.append(run)
    s = summarize_runs(runs)
    assert s["label_groups"] == ["palsar", "sentinel"]
    (row,) = s["label_rows"]  # the own labels as their truth have no label IoU: no row
    assert row["mean"]["all"] == pytest.approx(0.62) and row["sd"]["all"] == pytest.approx(
        0.02828, abs=1e-5
    )
    assert row["by_group"]["sentinel"]["all"] == pytest.approx(0.82)
    assert row["by_group"]["palsar"]["unlabelled"] == pytest.approx(0.32)
    md = render_summary(s)
    assert "## Table 2 label IoU (mean over seeds, sd)" in md
    assert (
        "| labels: method | label IoU (all) | palsar (all) | sentinel (all) | "
        "label IoU (unlabelled part) | palsar (unlabelled) | sentinel (unlabelled) |" in md
    )
    assert (
        "| simulated coarse: as is | 0.620 (0.028) | 0.420 (0.028) | 0.820 (0.028) | "
        "0.520 (0.028) | 0.320 (0.028) | 0.720 (0.028) |" in md
    )


def test_summary_of_road_runs_has_the_road_measures(tmp_path: Path) -> None:
    """Road data: each row's four road measures get their mean and sample sd over the seeds, in
    the dict and in a Markdown table; runs without road measures get neither."""
    runs = []
    for seed, (corr, comp, qual) in enumerate(((0.8, 0.6, 0.5), (0.9, 0.7, 0.6))):
        run = _fake_run(
            tmp_path / f"s{seed}",
            seed,
            {"full": 0.7 + 0.02 * seed, "auto_filtered": 0.6},
            settings={"split_seed": 1000},
        )
        r = json.loads((run / "results.json").read_text())
        for row in r["table1"]:
            row |= {"road_correctness": corr, "road_completeness": comp, "road_quality": qual,
                    "road_connectivity": None if seed else 0.5}  # fmt: skip
        (run / "results.json").write_text(json.dumps(r))
        runs.append(run)
    s = summarize_runs(runs)
    assert s["roads"] is True
    full = next(r for r in s["rows"] if r["setting"] == "full")
    assert full["mean"]["road_correctness"] == pytest.approx(0.85)
    assert full["sd"]["road_correctness"] == pytest.approx(0.0707107, abs=1e-6)
    assert full["mean"]["road_quality"] == pytest.approx(0.55)
    # connectivity of one seed only (the other had no true road component): no sd
    assert full["mean"]["road_connectivity"] == 0.5 and full["sd"]["road_connectivity"] is None
    assert [x["road_completeness"] for x in full["seeds"]] == [0.6, 0.7]
    md = render_summary(s)
    assert "## Road measures (mean over seeds, sd)" in md
    assert "| full | 0.850 (0.071) | 0.650 (0.071) | 0.550 (0.071) | 0.500 (–) |" in md
    plain = summarize_runs(
        [
            _fake_run(
                tmp_path / f"p{i}",
                i,
                {"full": 0.7, "auto_filtered": 0.6},
                settings={"split_seed": 1000},
            )
            for i in (0, 1)
        ]
    )
    assert plain["roads"] is False and "road_quality" not in plain["rows"][0]["mean"]
    assert "Road measures" not in render_summary(plain)


def _degenerate(run: Path, keys: tuple[str, ...], kind: str) -> None:
    """Make the rows ``keys`` of ``run``'s table 1 degenerate: every test pixel foreground
    (recall 1, background IoU 0: mIoU = IoU / 2) or none (recall 0, IoU 0)."""
    path = run / "results.json"
    r = json.loads(path.read_text())
    for row in r["table1"]:
        if row["setting"] in keys:
            if kind == "all":
                row.update(recall=1.0, miou=row["iou"] / 2)
            else:
                row.update(iou=0.0, recall=0.0, f1=0.0, miou=0.45)
    path.write_text(json.dumps(r))


def test_summary_gives_no_verdict_on_degenerate_downstream_models(tmp_path: Path) -> None:
    # found in a docs walk: two micro runs whose every U-Net labelled everything (seed 0) or
    # nothing (seed 1) foreground; each run's results.md said "no verdict", the summary said
    # "reaches 97% ... (>= 97% in 1 of 1)" from the all-foreground seed's equal IoUs
    same = {"split_seed": 1000}
    ious = {"full": 0.052, "auto_filtered": 0.052, "fraction_auto_filtered": 0.6}
    a = _fake_run(tmp_path / "s0", 0, ious, settings=same)
    b = _fake_run(tmp_path / "s1", 1, ious, settings=same)
    _degenerate(a, ("full", "auto_filtered"), "all")
    _degenerate(b, ("full", "auto_filtered"), "none")
    s = summarize_runs([a, b])
    assert s["verdict"][0] == (
        "auto_filtered: no verdict over 2 seeds: seed 0: (a) is degenerate (all foreground) and "
        "auto_filtered is degenerate (all foreground); seed 1: (a) is degenerate (no foreground) "
        "and auto_filtered is degenerate (no foreground), so those IoUs say nothing about the "
        "labels; train the downstream models longer (--downstream-epochs / --downstream-steps) "
        "or on more images. It uses 30 hand labels instead of 100 (70.0 % fewer)."
    )
    assert s["verdict"][1].startswith(
        "fraction_auto_filtered: no verdict over 2 seeds: seed 0: (a) is degenerate (all "
        "foreground); seed 1: (a) is degenerate (no foreground), so"
    )
    assert "reaches" not in render_summary(s)
    # one clean seed does not rescue the mean: still no verdict, naming only the bad seed
    c = _fake_run(tmp_path / "c0", 0, {"full": 0.7, "auto_filtered": 0.69}, settings=same)
    d = _fake_run(tmp_path / "c1", 1, {"full": 0.052, "auto_filtered": 0.052}, settings=same)
    _degenerate(d, ("auto_filtered",), "all")
    v = summarize_runs([c, d])["verdict"]
    assert v[0].startswith(
        "auto_filtered: no verdict over 2 seeds: seed 1: auto_filtered is degenerate "
        "(all foreground), so"
    )
