"""Table 2 of the protocol with label scores only (``enhancement_downstream=False``) on a two-sensor
SOS-layout set without separate coarse labels: label IoU per sensor (the values ``elnet evaluate``
gives on each subset), the dataset's own labels left out (not refined, not enhanced) with the
reason stated, and a resumed run that re-runs nothing; then with downstream models on the label
sets: report.html's table 2 per sensor (test scores) holds results.md's rows."""

from __future__ import annotations

import copy
import html
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers_data import tiny_experiment_config

from sam2elnet.pipeline.experiment import ExperimentConfig, run_experiment
from sam2elnet.pipeline.experiment_config import OWN_IS_TRUTH_NOTE, OWN_NOT_SCORED
from sam2elnet.pipeline.experiment_stages import stage_summary

SENSORS = {"palsar": range(0, 6), "sentinel": range(6, 12)}
TEST = {"palsar": range(12, 14), "sentinel": range(14, 16)}


@pytest.fixture(scope="module")
def sos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic set in the SOS layout: train/<sensor>/<id>_sat.png + <id>_mask.png (6 per
    sensor), test/<sensor>/sat|gt (2 per sensor); no coarse labels of its own."""
    from sam2elnet.data.synthetic import generate_dataset

    src = tmp_path_factory.mktemp("synth")
    generate_dataset(src, task="oil-spill", count=16, size=48, seed=3, progress=False)
    root = tmp_path_factory.mktemp("sos")
    for sensor, ks in SENSORS.items():
        d = root / "train" / sensor
        d.mkdir(parents=True)
        for k in ks:
            shutil.copy(src / "images" / f"{k:05d}.png", d / f"{k:05d}_sat.png")
            shutil.copy(src / "masks" / f"{k:05d}.png", d / f"{k:05d}_mask.png")
    for sensor, ks in TEST.items():
        for sub, tag, part in (("sat", "sat", "images"), ("gt", "mask", "masks")):
            d = root / "test" / sensor / sub
            d.mkdir(parents=True)
            for k in ks:
                shutil.copy(src / part / f"{k:05d}.png", d / f"{k:05d}_{tag}.png")
    return root


def _cfg(data: Path, out: Path, **kw) -> ExperimentConfig:
    kw = {"downstream_curve_points": 0, "enhancement_downstream": False, **kw}
    return tiny_experiment_config(data, out, **kw)


def _evaluate_iou(pred_dir: Path, truth_dir: Path, ids: list[str]) -> float:
    from sam2elnet.engine.evaluate import evaluate_folders

    res = evaluate_folders(pred_dir, truth_dir, ids=set(ids), progress=False)
    assert res.aggregate["n_images"] == len(ids)
    return res.aggregate["iou"]


def test_label_scores_per_sensor_and_own_labels_left_out(
    sos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from sam2elnet.cli.pipeline_cmd import _print_tables
    from sam2elnet.pipeline.experiment_stages import Stages

    monkeypatch.setenv("SAM2ELNET_THREADS", "1")
    plans: list[dict[str, int]] = []
    expect = Stages.expect
    monkeypatch.setattr(
        Stages, "expect", lambda self, plan, *ref: (plans.append(plan), expect(self, plan, *ref))
    )
    out = tmp_path / "exp"
    r = run_experiment(_cfg(sos, out, sources=("sim", "own")))

    # the own labels are the truth (no coarse/): not refined, not enhanced, not scored, no rows
    stages = sorted(p.stem for p in (out / "stages").glob("*.json"))
    assert not [s for s in stages if s.endswith("_own") or "_own_" in s]
    assert not (out / "labels" / "own").exists()
    assert {row["source"] for row in r["table2"]} == {"sim"}
    assert [row["method"] for row in r["table2"]] == ["coarse", "morphological", "elnet"]
    assert r["table2_absent"] == {"own": OWN_NOT_SCORED}
    split = stage_summary(out, "split")
    assert OWN_IS_TRUTH_NOTE in split["notes"] and OWN_IS_TRUTH_NOTE not in r["notes"]
    assert plans[-1]["refine"] == 1 and plans[-1]["enhance"] == 1
    assert plans[-1]["labelscore"] == 3 and plans[-1]["downstream"] == 5
    md = (out / "results.md").read_text()
    assert f"{OWN_NOT_SCORED}." in md and "| dataset's own |" not in md
    assert OWN_NOT_SCORED in html.unescape((out / "report.html").read_text())
    _print_tables(r)
    assert f"{OWN_NOT_SCORED}." in capsys.readouterr().out

    # label IoU per sensor: what elnet evaluate gives on that sensor's images, all and unlabelled
    pool = sorted(split["labelled"] + split["unlabelled"])
    sensor_of = {f"{k:05d}": s for s, ks in SENSORS.items() for k in ks}
    assert {sensor_of[i] for i in split["unlabelled"]} == {"palsar", "sentinel"}
    pred_dirs = {m: out / "labels" / "sim" / m for m in ("coarse", "morphological", "elnet")}
    undefined = []
    for row in r["table2"]:
        pred = pred_dirs[row["method"]]
        assert row["label_iou_all"] == pytest.approx(_evaluate_iou(pred, sos / "train", pool))
        for key, part in (
            ("label_by_group", pool),
            ("label_unlabelled_by_group", split["unlabelled"]),
        ):
            assert set(row[key]) == {"palsar", "sentinel"}
            for sensor in ("palsar", "sentinel"):
                ids = [i for i in part if sensor_of[i] == sensor]
                g = row[key][sensor]
                assert g["n"] == len(ids)
                assert g["iou"] == pytest.approx(_evaluate_iou(pred, sos / "train", ids))
                if len(ids) > 1 and g["iou_ci"] is not None:
                    assert g["iou_ci"][0] <= g["iou"] <= g["iou_ci"][1]
                elif len(ids) > 1:  # too many resamples of images without foreground: no CI
                    assert g["iou_ci_left_out"] > 0.025 * 2000
                    undefined.append(g)
    for g in undefined:  # results.md says why there is no interval
        assert f"(no CI: {g['iou_ci_left_out']} resamples without foreground)" in md
    coarse = r["table2"][0]
    assert 0.2 < coarse["label_iou_all"] < 0.95  # the checks above are not a trivial 0 or 1
    assert coarse["label_by_group"]["palsar"]["iou"] != coarse["label_by_group"]["sentinel"]["iou"]
    assert "### Table 2 per sensor (label IoU)" in md
    by = coarse["label_by_group"]["sentinel"]
    assert f"| simulated coarse | {coarse['title']} | sentinel | {by['n']} | {by['iou']:.3f}" in md
    # report.html shows the same per-sensor rows (numbers as the page formats them)
    page = html.unescape((out / "report.html").read_text())
    assert "Table 2 per sensor: label IoU" in page and f"{by['iou']:.4f}" in page
    _table1_in_html_as_in_results_md(r, md, page)
    # the tiny downstream models score IoU 0 everywhere: once more with distinct scores per row
    # and sensor, from fixed counts, including intervals with resamples left out and no interval
    from sam2elnet.pipeline.experiment_markdown import render_markdown
    from sam2elnet.pipeline.experiment_stats import add_intervals
    from sam2elnet.pipeline.report_protocol import write_protocol_report

    rng = np.random.default_rng(0)
    ids = [f"t{k}" for k in range(8)]
    groups = {i: ("palsar" if k < 4 else "sentinel") for k, i in enumerate(ids)}
    r2 = copy.deepcopy(r)
    for k, row in enumerate(r2["table1"]):
        c = rng.integers(0, 400, size=(8, 4))
        c[:, 0] += 100
        c[: (7, 4)[k] if k < 2 else 0, :3] = 0  # empty truth and label: no CI / 4 left out
        row.pop("iou_ci_left_out", None)
        add_intervals(row, c, ids, groups)
        tp, fp, fn = c[:, :3].sum(axis=0)
        row["iou"] = float(tp / (tp + fp + fn))
    assert r2["table1"][0]["iou_ci"] is None and r2["table1"][0]["iou_ci_left_out"] > 50
    assert r2["table1"][1]["iou_ci"] and 0 < r2["table1"][1]["iou_ci_left_out"] <= 50
    write_protocol_report(tmp_path / "r2.html", r2, [], title="distinct scores")
    page2 = html.unescape((tmp_path / "r2.html").read_text())
    _table1_in_html_as_in_results_md(r2, render_markdown(r2), page2)
    # the class is named by the domain: oil here; road when the rows carry the road measures
    assert "IoU = oil (foreground) IoU" in md and "mean of oil and background IoU" in md
    r3 = copy.deepcopy(r)
    r3["table1"][0].update(road_correctness=0.5, road_completeness=0.4, road_quality=0.3)
    md3 = render_markdown(r3)
    assert "IoU = road (foreground) IoU" in md3 and "mean of road and background IoU" in md3
    assert " oil" not in md3
    # ... and results.md gets table 1's road measures under it (the row that has them)
    from sam2elnet.pipeline.experiment_markdown import _f
    from sam2elnet.pipeline.experiment_stats import road_note

    road_md = md3.split(f"{road_note(r3)}:\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    row0 = r3["table1"][0]
    assert road_md[2:] == [
        f"| {row0['title']} | {_f(row0['iou'])} | {_f(row0['f1'])} | 0.500 | 0.400 | 0.300 | – |"
    ]
    # per_image.csv: each label set's counts per pool image, next to the other rows
    import csv

    with open(out / "per_image.csv", newline="") as fh:
        recs = list(csv.DictReader(fh))
    for row in r["table2"]:
        mine = [x for x in recs if x["setting"] == row["setting"]]
        assert sorted(x["id"] for x in mine) == pool  # no test rows: no downstream models
        assert {x["id"] for x in mine if x["part"] == "unlabelled"} == set(split["unlabelled"])
        for part, key in (("labelled", None), ("unlabelled", "label_unlabelled_by_group")):
            sub = [x for x in mine if x["part"] == part and x["group"] == "sentinel"]
            assert all(sensor_of[x["id"]] == "sentinel" for x in sub)
            tp, fp, fn = (sum(int(x[k]) for x in sub) for k in ("tp", "fp", "fn"))
            if key:
                assert row[key]["sentinel"]["iou"] == pytest.approx(tp / (tp + fp + fn))
        tp, fp, fn = (sum(int(x[k]) for x in mine) for k in ("tp", "fp", "fn"))
        assert row["label_iou_all"] == pytest.approx(tp / (tp + fp + fn))
        # the label IoU's bootstrap interval over the pool's images (results.md's table 2 cells
        # had none: only the per-sensor rows did), from exactly these lines
        from sam2elnet.engine.metrics import bootstrap_iou_interval
        from sam2elnet.pipeline.experiment_stats import ci_text

        line = {x["id"]: [int(x[k]) for k in ("tp", "fp", "fn", "tn")] for x in mine}
        for part, part_ids in (("all", pool), ("unlabelled", sorted(split["unlabelled"]))):
            iv = bootstrap_iou_interval([line[i] for i in part_ids], seed=0)
            got = row["label_ci"][part]
            assert got["iou_ci"] == ([iv.low, iv.high] if iv.defined else None)
            assert got.get("iou_ci_left_out", 0) == iv.left_out
        md_row = f"| {row['labels']} | {row['title']} | {row['hand_labels']} | "
        cell = f"{row['label_iou_all']:.3f} {ci_text(row['label_ci']['all'])}".rstrip()
        assert md_row + cell + " | " in (out / "results.md").read_text()

    # resumed: every stage cached, the same tables
    r2 = run_experiment(_cfg(sos, out, sources=("sim", "own"), report=False))
    assert set(r2["stages"].values()) == {"cached"}
    assert r2["table2"] == r["table2"] and r2["table1"] == r["table1"]

    # downstream models on table 2's label sets (same folder: only their models train, the own
    # labels' are refined and enhanced first; own coarse = the truth = table 1's (a): reused):
    # report.html gets table 2 per sensor (their test scores) as results.md has it
    r3 = run_experiment(_cfg(sos, out, sources=("sim", "own"), enhancement_downstream=True))
    new = {k for k, v in r3["stages"].items() if v in ("ran", "reused") and k.startswith("down")}
    assert new == {f"downstream_{row['setting']}" for row in r3["table2"]}
    md3, page3 = (out / "results.md").read_text(), html.unescape((out / "report.html").read_text())
    _per_sensor_in_html_as_in_results_md(r3, md3, page3, "Table 2 per sensor", "table2")
    # the tiny models score IoU 0 everywhere: once more with distinct scores from fixed counts
    r4 = copy.deepcopy(r3)
    for k, row in enumerate(r4["table2"]):
        c = rng.integers(0, 400, size=(8, 4))
        c[:, 0] += 100
        c[: (7, 4)[k] if k < 2 else 0, :3] = 0  # empty truth and label: no CI / 4 left out
        row.pop("iou_ci_left_out", None)
        add_intervals(row, c, ids, groups)
    write_protocol_report(tmp_path / "r4.html", r4, [], title="distinct table 2 scores")
    page4 = html.unescape((tmp_path / "r4.html").read_text())
    want = _per_sensor_in_html_as_in_results_md(
        r4, render_markdown(r4), page4, "Table 2 per sensor", "table2"
    )
    sens = r4["table2"][2]["by_group"]["sentinel"]  # one row spelled out
    lo, hi = sens["iou_ci"]
    assert want[5][:5] == [
        f"simulated coarse: {r4['table2'][2]['title']}",
        "sentinel",
        "4",
        f"{sens['iou']:.4f}",
        f"[{lo:.3f}, {hi:.3f}]",
    ]
    assert want[4][3] != want[5][3]  # the sensors differ: each value in its place
    assert "Table 2 per sensor" not in re.findall(r"<h3>(.*?)</h3>", page)  # label scores only


def _page_rows(page: str, title: str) -> list[list[str]]:
    """Cell texts of the report table captioned ``title`` (unescaped page), one list per row."""
    body = re.search(rf"<h3>{re.escape(title)}</h3>.*?<tbody>(.*?)</tbody>", page, re.S)
    assert body, f"no table {title!r} in report.html"
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body.group(1), re.S)
    return [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in rows]


def _table1_in_html_as_in_results_md(r: dict, md: str, page: str) -> None:
    """report.html's table 1 shows each test IoU's bootstrap interval as results.md writes it,
    and its per-sensor table 1 holds results.md's per-sensor rows (two sensors here)."""
    assert r["groups"] == ["palsar", "sentinel"]
    f4 = lambda v: "—" if v is None else f"{v:.4f}"  # noqa: E731 (the page's number format)
    page_t1 = {c[0]: c for c in _page_rows(page, "Table 1: automatic annotation")}
    for row in r["table1"]:
        left = row.get("iou_ci_left_out")
        ci = (
            f"[{row['iou_ci'][0]:.3f}, {row['iou_ci'][1]:.3f}]"
            + (f" ({left} resamples without foreground left out)" if left else "")
            if row.get("iou_ci")
            else (f"(no CI: {left} resamples without foreground)" if left else "")
        )
        assert f"| {row['train_images']} | {row['iou']:.3f} {ci}".rstrip() + " |" in md
        assert page_t1[row["title"]][3:5] == [f4(row["iou"]), ci]
    want = _per_sensor_in_html_as_in_results_md(r, md, page, "Table 1 per sensor", "table1")
    assert len(want) >= 2 * 4  # every trained setting, both sensors


def _per_sensor_in_html_as_in_results_md(
    r: dict, md: str, page: str, title: str, table: str
) -> list[list[str]]:
    """report.html's per-sensor table ``title`` holds results.md's rows of that title (setting,
    sensor, test images, IoU and its interval, F1, precision, recall, mIoU) for every row of
    ``r[table]`` and both sensors, with at least one interval; returns the page's rows."""
    from sam2elnet.pipeline.experiment_stats import ci_text

    f4 = lambda v: "—" if v is None else f"{v:.4f}"  # noqa: E731 (the page's number format)
    section = md.split(f"### {title}\n\n", 1)[1].split("\n\n", 1)[0]
    md_rows = [[c.strip() for c in line.strip("|").split("|")] for line in section.splitlines()[2:]]
    want, cis = [], []
    for row in r[table]:
        name = row["title"] if table == "table1" else f"{row['labels']}: {row['title']}"
        for g in r["groups"]:
            gr = (row.get("by_group") or {}).get(g)
            if gr:
                cis.append((gr["iou"], ci_text(gr)))
                nums = [gr[k] for k in ("f1", "precision", "recall", "miou")]
                want.append([name, g, str(gr["n"]), f4(gr["iou"]), cis[-1][1], *map(f4, nums)])
    assert any(t for _, t in cis)
    assert _page_rows(page, title) == want
    assert len(md_rows) == len(want)
    for m, w, (iou, ci) in zip(md_rows, want, cis, strict=True):
        assert m[:3] == w[:3] and m[3] == f"{iou:.3f} {ci}".rstrip()
    return want


def test_table2_sources_leaves_out_only_unscorable_own_labels(tmp_path: Path) -> None:
    from sam2elnet.pipeline.experiment_split import Split
    from sam2elnet.pipeline.experiment_table2 import table2_sources

    def split(own_is_truth: bool) -> Split:
        return Split("sar", "sos", ["a", "b"], ["c"], ["d"], {}, {}, {}, own_is_truth, "test")

    def cfg(**kw) -> ExperimentConfig:
        return ExperimentConfig(data=tmp_path, out=tmp_path / "o", **kw)

    off = {"enhancement_downstream": False}
    assert table2_sources(cfg(**off), split(True)) == (["sim"], {"own": OWN_NOT_SCORED})
    assert table2_sources(cfg(**off, sources=("own",)), split(True)) == (
        [],
        {"own": OWN_NOT_SCORED},
    )
    # own labels with a truth to score them by, or scored by downstream models: kept
    assert table2_sources(cfg(**off), split(False)) == (["sim", "own"], {})
    assert table2_sources(cfg(), split(True)) == (["sim", "own"], {})
    assert table2_sources(cfg(enhancement=False), split(True)) == ([], {})
