"""Road measures in the reports of road runs: the protocol's report.html (tables 1 and 2), SAM2-ELNet's
own test row (f) scored like the downstream models, and the evaluate report (aggregate and per
image), each checked against the values of the metrics dict it was built from."""

from __future__ import annotations

import html
import re
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from sam2elnet.engine.metrics import ROAD_KEYS, RoadCounts, road_counts

F4 = "{:.4f}".format  # the page's number format (sam2elnet.pipeline.report_tables.fmt_value)


def _page_rows(page: str, title: str) -> list[list[str]]:
    """Cell texts of the report table captioned ``title`` (unescaped page), one list per row."""
    body = re.search(rf"<h3>{re.escape(title)}</h3>.*?<tbody>(.*?)</tbody>", page, re.S)
    assert body, f"no table {title!r} in report.html"
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body.group(1), re.S)
    return [re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in rows]


def _row(title: str, iou: float, roads: tuple[float | None, ...] | None, **kw) -> dict:
    r = {
        "title": title,
        "hand_labels": 12,
        "train_images": 12,
        "iou": iou,
        "f1": 2 * iou / (1 + iou),
    }
    r.update(precision=0.8, recall=0.7, miou=0.75, **kw)
    if roads is not None:
        r.update(dict(zip(ROAD_KEYS, roads, strict=True)))
    return r


def _results(roads: bool) -> dict:
    t1 = [
        _row("(a) full labels", 0.61, (0.812, 0.655, 0.5712, 0.4) if roads else None),
        _row("(b) fraction", 0.43, (0.7, 0.5, 0.41, None) if roads else None),  # no true roads
        {"title": "(c) auto-labels", "hand_labels": 5, "train_images": 0, "skipped": "no labels"},
    ]
    t2 = [
        _row("morphological", 0.52, (0.66, 0.61, 0.4633, 0.25) if roads else None),
        _row("SAM2-ELNet", 0.58, (0.71, 0.69, 0.5401, 0.5) if roads else None),
    ]
    for row, (labels, method) in zip(
        t2, (("simulated coarse", "morphological"), ("simulated coarse", "elnet")), strict=True
    ):
        row.update(labels=labels, method=method, label_iou_all=0.5)
    return {
        "table1": t1,
        "table2": t2,
        "autolabels": {"n": 4, "n_kept": 2, "threshold": 0.5},
        "split": {"labelled": 5, "test": 3},
        "settings": {"enhancement_downstream": True},
    }


def test_protocol_report_shows_road_measures_of_both_tables(tmp_path: Path) -> None:
    from sam2elnet.pipeline.report_protocol import write_protocol_report

    r = _results(roads=True)
    page = html.unescape(
        write_protocol_report(tmp_path / "report.html", r, [], title="roads").read_text()
    )
    # table 1: the rows with road measures (not the skipped one), each value in its column
    t1 = _page_rows(page, "Table 1: road measures")
    assert t1 == [
        ["(a) full labels", "0.6100", F4(2 * 0.61 / 1.61), "0.8120", "0.6550", "0.5712", "0.4000"],
        ["(b) fraction", "0.4300", F4(2 * 0.43 / 1.43), "0.7000", "0.5000", "0.4100", "—"],
    ]
    head = re.search(r"<h3>Table 1: road measures</h3>.*?<thead>(.*?)</thead>", page, re.S)
    assert head is not None
    names = re.findall(r"<abbr[^>]*>(.*?)</abbr>|<th[^>]*>([^<]+)</th>", head.group(1))
    assert [a or b for a, b in names][-4:] == [
        "road correctness",
        "road completeness",
        "road quality",
        "road connectivity",
    ]
    # table 2: training labels and method name each row
    assert _page_rows(page, "Table 2: road measures") == [
        ["simulated coarse", "morphological", "0.5200", F4(2 * 0.52 / 1.52)]
        + ["0.6600", "0.6100", "0.4633", "0.2500"],
        ["simulated coarse", "SAM2-ELNet", "0.5800", F4(2 * 0.58 / 1.58)]
        + ["0.7100", "0.6900", "0.5401", "0.5000"],
    ]
    assert "Wiedemann et al. 1998" in page  # the note saying what the measures are
    # oil (or any other) data: no road table, no road note
    other = html.unescape(
        write_protocol_report(tmp_path / "o.html", _results(False), [], title="oil").read_text()
    )
    assert "road measures" not in other and "Wiedemann" not in other
    assert "Table 1: automatic annotation" in other


def test_road_rows_in_results_md_as_in_report() -> None:
    from sam2elnet.pipeline.experiment_markdown import _road_table
    from sam2elnet.pipeline.experiment_stats import road_rows

    r = _results(roads=True)
    rows = road_rows(r["table2"], ("labels", "title"))
    assert [list(x) for x in rows] == [["labels", "title", "iou", "f1", *ROAD_KEYS]] * 2
    md = _road_table(r["table2"], ("labels", "title"))
    assert "| training labels | method | IoU | F1 | road correctness |" in md[3]
    assert md[5] == (
        f"| simulated coarse | morphological | 0.520 | {2 * 0.52 / 1.52:.3f} | 0.660 | 0.610 | "
        "0.463 | 0.250 |"
    )
    assert _road_table(r["table1"])[-1].startswith("| (b) fraction | 0.430 |")
    assert _road_table(r["table1"])[-1].endswith("| 0.410 | – |")
    assert _road_table(_results(roads=False)["table1"]) == []


def _write_mask(path: Path, m: np.ndarray) -> Path:
    cv2.imwrite(str(path), (m > 0).astype(np.uint8) * 255)
    return path


def test_elnet_test_row_gets_road_measures_as_downstream_rows(tmp_path: Path) -> None:
    """counts_vs_truth with ``road_counts`` (row (f) of a road experiment) appends each image's
    road counts over its valid pixels: the values road_counts gives on the pair."""
    from sam2elnet.data.normalize import NormalizationConfig
    from sam2elnet.pipeline.experiment_scores import counts_vs_truth

    truth = np.zeros((48, 48), np.uint8)
    truth[22:26, :] = 1  # one road across the image, 4 px wide
    label = np.zeros_like(truth)
    label[22:26, :24] = 1  # its left half found
    label[5:8, 30:44] = 1  # and a stray piece
    img = np.full((48, 48, 3), 90, np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), img)
    split = SimpleNamespace(
        images={"a": str(tmp_path / "a.png")},
        masks={"a": str(_write_mask(tmp_path / "a_mask.png", truth))},
    )
    labels = {"a": str(_write_mask(tmp_path / "a_label.png", label))}
    got: list[RoadCounts] = []
    counts = counts_vs_truth(labels, split, ["a"], norm=NormalizationConfig(), road_counts=got)
    assert counts.tolist() == [[24 * 4, 14 * 3, 24 * 4, 48 * 48 - 48 * 4 - 14 * 3]]
    assert len(got) == 1
    want = road_counts(label.astype(bool), truth.astype(bool)).scores()
    assert got[0].scores() == pytest.approx(want, nan_ok=True)
    s = got[0].scores()
    # about half of the true centre line is matched; the stray piece lowers correctness
    assert 0.4 < s["road_completeness"] < 0.6 and s["road_correctness"] < 0.75
    # without the list (other data) nothing is computed and the counts are the same
    assert counts_vs_truth(labels, split, ["a"], norm=NormalizationConfig()).tolist() == (
        counts.tolist()
    )


def test_evaluate_report_shows_road_measures(tmp_path: Path) -> None:
    """``elnet evaluate`` on road truth (roads="auto" detects it): the aggregate table of
    report.html holds the aggregate road measures, the per-image table each image's road
    quality, and eval JSON rows carry the same values."""
    from helpers_roads import road_mask

    from sam2elnet.engine.evaluate import evaluate_folders
    from sam2elnet.pipeline.report import write_evaluation_report

    rng = np.random.default_rng(4)
    pred, truth = tmp_path / "pred", tmp_path / "truth"
    pred.mkdir()
    truth.mkdir()
    for k in range(4):
        t = road_mask(48, rng) > 0
        p = t.copy()
        p[:, : 12 * (k + 1) // 2] = False  # a growing part of every road missed
        _write_mask(truth / f"r{k}_mask.png", t)
        _write_mask(pred / f"r{k}_pred.png", p)
    res = evaluate_folders(pred, truth, roads="auto", progress=False)
    assert res.options["roads"] is True
    agg = res.aggregate
    page = html.unescape(write_evaluation_report(res, tmp_path / "report.html").read_text())
    shown = dict(
        re.findall(r'<code class="key">(road_\w+)</code></th><td class="num">([^<]*)</td>', page)
    )
    assert shown == {k: F4(agg[k]) for k in ROAD_KEYS}
    assert agg["road_completeness"] < 0.95 and agg["road_correctness"] > 0.95  # misses only
    for r in res.images:
        assert F4(r.roads.scores()["road_quality"]) in page
    assert res.images[0].as_dict()["road_quality"] == pytest.approx(
        res.images[0].roads.scores()["road_quality"]
    )


def test_tiny_roads_experiment_reports_road_measures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``elnet experiment`` on road data (detected by shape): every scored row of table 1, (f)
    included, and of table 2 carries the road measures in results.json, and report.html's road
    tables and results.md show exactly those values."""
    import json

    from helpers_data import tiny_experiment_config
    from helpers_roads import make_road_dataset

    from sam2elnet.pipeline.experiment import run_experiment
    from sam2elnet.pipeline.experiment_stats import road_note

    monkeypatch.setenv("SAM2ELNET_THREADS", "1")
    data = make_road_dataset(tmp_path / "roads", n=12, size=48)
    make_road_dataset(data / "test", n=3, size=48, seed=1)
    out = tmp_path / "exp"
    cfg = tiny_experiment_config(
        data, out, sources=("sim",), enhancement_downstream=True, downstream_curve_points=0
    )
    r = run_experiment(cfg)
    assert r == json.loads((out / "results.json").read_text())
    scored1 = [row for row in r["table1"] if not row.get("skipped")]
    assert any(row["setting"] == "elnet_direct" for row in scored1)
    assert r["table2"] and all(not row.get("skipped") for row in r["table2"])
    for row in scored1 + r["table2"]:
        assert row["road_quality"] is not None and 0 <= row["road_quality"] <= 1, row["title"]

    def cells(row: dict, names: tuple[str, ...]) -> list[str]:
        return [row[k] for k in names] + [
            "—" if row.get(k) is None else F4(row[k]) for k in ("iou", "f1", *ROAD_KEYS)
        ]

    page = html.unescape((out / "report.html").read_text())
    assert _page_rows(page, "Table 1: road measures") == [cells(x, ("title",)) for x in scored1]
    assert _page_rows(page, "Table 2: road measures") == [
        cells(x, ("labels", "title")) for x in r["table2"]
    ]
    md = (out / "results.md").read_text()
    assert md.count(f"{road_note(r)}:") == 2
    assert "matched within 3 px (--road-buffer), lengths summed" in road_note(r)
    f = next(row for row in scored1 if row["setting"] == "elnet_direct")
    assert f"| {f['title']} | {f['iou']:.3f} |" in md
    assert f"{f['road_quality']:.3f} |" in md.split(f["title"])[-1].splitlines()[0]
    # per_image.csv: each test image's road measures and counts; a setting's counts summed over
    # its test images give its row's measures; label rows (no downstream scoring) leave them empty
    import csv

    from sam2elnet.engine.metrics import ROAD_COUNT_KEYS, RoadCounts, road_scores

    with open(out / "per_image.csv", newline="") as fh:
        lines = list(csv.DictReader(fh))
    assert list(lines[0])[8:] == ["road_buffer_px", *ROAD_KEYS, *ROAD_COUNT_KEYS]
    assert {x["road_buffer_px"] for x in lines if x["part"] == "test"} == {"3.0"}
    for row in scored1 + r["table2"]:
        mine = [x for x in lines if x["setting"] == row["setting"] and x["part"] == "test"]
        assert len(mine) == r["split"]["test"] > 0, row["setting"]
        counts = [RoadCounts(*(int(x[k]) for k in ROAD_COUNT_KEYS)) for x in mine]
        assert road_scores(sum(counts, RoadCounts())) == pytest.approx(
            {k: row[k] for k in ROAD_KEYS}, nan_ok=True
        )
        for x, c in zip(mine, counts, strict=True):
            want = road_scores(c)
            for k in ROAD_KEYS:
                assert (float(x[k]) if x[k] else float("nan")) == pytest.approx(
                    want[k], nan_ok=True
                )
    assert all(x["road_quality"] == "" for x in lines if x["part"] != "test")
