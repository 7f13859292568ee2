"""``elnet evaluate`` road measures per image (JSON, CSV, report), the buffer tolerance
(``--road-buffer``) and the width of line ground truth (``--line-width``), on tiny masks whose
centre lines are known: a 3 px road along rows 15-17 of a 32 x 32 truth thins to 30 px (Guo-Hall
thinning takes one pixel off each end)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from helpers_data import write_mask_png

from sam2elnet.cli import main
from sam2elnet.engine.metrics import ROAD_COUNT_KEYS, RoadCounts, road_scores


@pytest.fixture
def roads(tmp_path: Path) -> tuple[Path, Path]:
    """Truth: one road, rows 15-17. a: the road 5 rows lower (rows 20-22); b: its left half."""
    t = np.zeros((32, 32), bool)
    t[15:18, :] = True
    a = np.zeros_like(t)
    a[20:23, :] = True
    b = np.zeros_like(t)
    b[15:18, :16] = True
    for name, p in (("a", a), ("b", b)):
        write_mask_png(tmp_path / "truth" / f"{name}_mask.png", t)
        write_mask_png(tmp_path / "pred" / f"{name}_pred.png", p)
    return tmp_path / "pred", tmp_path / "truth"


# (correctness, completeness, quality, connectivity) per image and buffer, from the centre lines:
# a: 30 px each, 5 rows apart; b: 14 px predicted (cols 1-14), all on the true line, which has
# 17 px (cols 1-17) within 3 px of it and 19 px within 5 px
EXPECTED = {
    3.0: {"a": (0.0, 0.0, 0.0, 0.0), "b": (1.0, 17 / 30, 14 / 27, 0.0)},
    5.0: {"a": (1.0, 1.0, 1.0, 1.0), "b": (1.0, 19 / 30, 14 / 25, 0.0)},
}
KEYS = ("road_correctness", "road_completeness", "road_quality", "road_connectivity")


@pytest.mark.parametrize("buffer", [3.0, 5.0])
def test_per_image_road_measures_in_json_csv_and_report(
    roads: tuple[Path, Path], tmp_path: Path, buffer: float
) -> None:
    """Each image's row has its four road measures and the counts behind them; the counts sum
    to the aggregate's; the report's cards show the four measures."""
    pred, truth = roads
    out = tmp_path / f"out{buffer:g}"
    argv = ["evaluate", "--pred", str(pred), "--truth", str(truth), "--roads", "--no-progress",
            "--json", str(out / "e.json"), "--csv", str(out / "e.csv"), "--report"]  # fmt: skip
    if buffer != 3.0:
        argv += ["--road-buffer", f"{buffer:g}"]
    assert main(argv) == 0
    js = json.loads((out / "e.json").read_text())
    assert js["options"]["road_buffer_px"] == buffer
    with open(out / "e.csv", newline="") as fh:
        rows = {r["image"]: r for r in csv.DictReader(fh)}
    images = {r["image"]: r for r in js["images"]}
    total = RoadCounts()
    for name, want in EXPECTED[buffer].items():
        got_json = tuple(images[name][k] for k in KEYS)
        got_csv = tuple(float(rows[name][k]) for k in KEYS)
        assert got_json == pytest.approx(want) and got_csv == pytest.approx(want), name
        counts = RoadCounts(*(int(rows[name][k]) for k in ROAD_COUNT_KEYS))
        assert (counts.pred_length, counts.truth_length) == ((30, 30) if name == "a" else (14, 30))
        assert [images[name][k] for k in ROAD_COUNT_KEYS] == list(counts.as_tuple())
        total = total + counts
    agg = js["aggregate"]
    assert {k: agg[k] for k in KEYS} == pytest.approx(road_scores(total))
    if buffer == 3.0:  # lengths summed: 14 of 44 predicted and 17 of 60 true pixels matched
        assert (agg["road_correctness"], agg["road_completeness"]) == pytest.approx(
            (14 / 44, 17 / 60)
        )
        assert agg["road_quality"] == pytest.approx(14 / (44 + 43))
    page = (out / "report.html").read_text()  # b's card: its completeness, not the aggregate's
    assert f"{EXPECTED[buffer]['b'][1]:.4f}" in page and f"{agg['road_completeness']:.4f}" in page


def test_undefined_road_measures_are_empty_not_zero(roads: tuple[Path, Path], tmp_path: Path):
    """Wiedemann et al. (1998): no reference road -> no completeness; nothing predicted -> no
    correctness. Such values are null in JSON and empty in CSV, and the image
    adds 0 to the summed lengths (aggregate = that of the other images)."""
    pred, truth = roads
    empty = np.zeros((32, 32), bool)
    false_road = empty.copy()
    false_road[5:8, :] = True
    write_mask_png(truth / "c_mask.png", empty)  # no reference road, a false detection
    write_mask_png(pred / "c_pred.png", false_road)
    write_mask_png(truth / "d_mask.png", empty)  # no road, none predicted
    write_mask_png(pred / "d_pred.png", empty)
    out = tmp_path / "o"
    argv = ["evaluate", "--pred", str(pred), "--truth", str(truth), "--roads", "--no-progress",
            "--json", str(out / "e.json"), "--csv", str(out / "e.csv")]  # fmt: skip
    assert main(argv) == 0
    js = json.loads((out / "e.json").read_text())
    images = {r["image"]: r for r in js["images"]}
    with open(out / "e.csv", newline="") as fh:
        rows = {r["image"]: r for r in csv.DictReader(fh)}
    c, d = images["c"], images["d"]
    assert c["road_completeness"] is None and rows["c"]["road_completeness"] == ""
    assert c["road_correctness"] == 0.0 and c["road_quality"] == 0.0
    assert all(d[k] is None and rows["d"][k] == "" for k in KEYS)
    agg = js["aggregate"]  # a and b as in EXPECTED[3.0]; c adds 30 unmatched predicted px
    assert agg["road_completeness"] == pytest.approx(17 / 60)
    assert agg["road_correctness"] == pytest.approx(14 / 74)
    assert agg["road_quality"] == pytest.approx(14 / (74 + 43))


@pytest.mark.parametrize("value", ["0", "-1", "101", "nan", "inf", "x"])
def test_bad_road_buffer_is_one_error_line(
    roads: tuple[Path, Path], value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pred, truth = roads
    rc = main(["evaluate", "--pred", str(pred), "--truth", str(truth), "--road-buffer", value])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith("error:") and "--road-buffer" in err[0]
    if value != "x":
        assert err[0].endswith("allowed: 0 < x <= 100)")


def _line_pair(tmp_path: Path) -> tuple[Path, Path]:
    """A 32 x 32 GeoTIFF prediction of 10 m pixels (rows 14-18 object) and a GeoPackage with
    one road centre line through the centres of row 16, across the tile and beyond."""
    import geopandas as gpd
    import rasterio
    from affine import Affine
    from shapely.geometry import LineString

    x0, y0 = 500_000.0, 4_000_000.0
    p = np.zeros((1, 32, 32), np.uint8)
    p[0, 14:19, :] = 255
    pred = tmp_path / "pred.tif"
    with rasterio.open(pred, "w", driver="GTiff", width=32, height=32, count=1, dtype="uint8",
                       crs="EPSG:32633", transform=Affine(10, 0, x0, 0, -10, y0)) as ds:  # fmt: skip
        ds.write(p)
    y = y0 - 10 * 16.5
    line = LineString([(x0 - 50, y), (x0 + 370, y)])
    truth = tmp_path / "roads.gpkg"
    gpd.GeoDataFrame(geometry=[line], crs=32633).to_file(truth)
    return pred, truth


@pytest.mark.parametrize(
    ("flags", "truth_px"),
    [
        ([], 32),  # burnt 1 px wide: row 16
        (["--line-width", "5", "--line-width-px"], 160),  # rows 14-18: centres within 2.5 px
        (["--line-width", "50"], 160),  # the same in metres (10 m pixels)
        (["--line-width", "30"], 96),  # rows 15-17
    ],
)
def test_line_width_of_line_truth(
    tmp_path: Path, flags: list[str], truth_px: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """--line-width buffers the truth's lines to that total width before rasterising (map units
    of the prediction's CRS, or px with --line-width-px); without it they are 1 px wide."""
    pred, truth = _line_pair(tmp_path)
    js = tmp_path / "e.json"
    argv = ["evaluate", "--pred", str(pred), "--truth", str(truth), "--roads", "--json", str(js)]
    assert main([*argv, "--no-progress", *flags]) == 0
    res = json.loads(js.read_text())
    row = res["images"][0]
    assert row["truth_pixels"] == truth_px and row["tp"] == truth_px
    assert row["fp"] == 160 - truth_px
    assert res["options"]["line_width"] == (float(flags[1]) if flags else None)
    assert res["options"]["line_width_unit"] == ("px" if "--line-width-px" in flags else "map")
    # the centre lines of truth and prediction coincide whatever the width
    assert row["road_correctness"] == row["road_completeness"] == 1.0
    err = capsys.readouterr().err
    assert ("burnt 1 px wide" in err) == (not flags)


@pytest.mark.parametrize("value", ["0", "-2", "nan", "1e9"])
def test_bad_line_width_is_one_error_line(
    tmp_path: Path, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pred, truth = _line_pair(tmp_path)
    rc = main(["evaluate", "--pred", str(pred), "--truth", str(truth), "--line-width", value])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith(f"error: invalid value for --line-width: {float(value)}")
    assert err[0].endswith("allowed: 0 < x <= 100000)")


@pytest.mark.parametrize("how", [["--roads"], []], ids=["asked", "auto"])
def test_the_road_buffer_is_said_in_the_terminal_and_the_report(
    roads: tuple[Path, Path], tmp_path: Path, how: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Road measures mean nothing without their buffer: the printed table and the report say
    which one scored them (the terminal said nothing of it, and nothing at all with --roads)."""
    pred, truth = roads
    if not how:  # detected: masks that look like a road network (two 32 px rows do not)
        from helpers_roads import make_road_dataset

        data = make_road_dataset(tmp_path / "net", n=4, size=96)
        pred, truth = data / "masks", data / "masks"
    out = tmp_path / "out"
    argv = ["evaluate", "--pred", str(pred), "--truth", str(truth), *how, "--road-buffer", "5",
            "--no-progress", "--json", str(out / "e.json"), "--report"]  # fmt: skip
    assert main(argv) == 0
    said = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    words = "road measures: centre lines matched within 5 px (--road-buffer)"
    assert words in said
    assert ("--no-roads turns them off" in said) == (not how)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert words in page
    # each image's road quality is a sortable column of the per-image table (cards only before)
    assert '<th data-key="road_quality" data-type="num"' in page
    if how:  # a: the road 5 rows lower, all matched at 5 px; b: its left half, 14 / (14 + 11)
        rows = dict(re.findall(r'<tr [^>]*data-name="(\w+)"[^>]*>(.*?)</tr>', page, re.S))
        assert 'data-v="1.0"' in rows["a"] and f'data-v="{14 / 25}"' in rows["b"]


def test_no_road_quality_column_without_road_measures(roads: tuple[Path, Path], tmp_path: Path):
    pred, truth = roads
    argv = ["evaluate", "--pred", str(pred), "--truth", str(truth), "--no-roads", "--report",
            "--json", str(tmp_path / "o" / "e.json")]  # fmt: skip
    assert main(argv) == 0
    assert 'data-key="road_quality"' not in (tmp_path / "o" / "report.html").read_text()


def test_no_road_buffer_line_without_road_measures(
    roads: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    pred, truth = roads
    assert main(["evaluate", "--pred", str(pred), "--truth", str(truth), "--no-roads"]) == 0
    assert "--road-buffer" not in capsys.readouterr().out


@pytest.mark.parametrize(
    "how, why",
    [(["--no-roads"], "(--no-roads)"), ([], "(auto: other, "), (["--roads"], None)],
    ids=["off", "auto-off", "on"],
)
def test_a_road_buffer_for_measures_that_are_off_is_said_unused(
    roads: tuple[Path, Path], how: list[str], why: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--road-buffer 5` with the measures off (asked, or two 32 px rows not detected as roads)
    was silently ignored: a road mapper saw no road measures and no reason. Now --no-roads says
    the buffer is unused; without --no-roads a buffer given switches the measures on (new-user
    GIS trial), saying what auto alone would have decided."""
    pred, truth = roads
    argv = ["evaluate", "--pred", str(pred), "--truth", str(truth), *how, "--road-buffer", "5"]
    assert main(argv) == 0
    said = " ".join(capsys.readouterr().out.split())
    if why is None:
        assert "unused" not in said
    elif how == []:  # a buffer given: road measures wanted, auto's reason said beside it
        assert "unused" not in said and "road measure (centre-line lengths summed)" in said
        assert "road measures: on (--road-buffer 5 given; auto: other, " in said, said
        assert "alone would leave them off; --no-roads turns them off)" in said, said
    else:
        assert f"note: --road-buffer 5 unused: road measures are off {why}" in said
        assert "--roads turns them on" not in said


def test_too_few_truths_to_judge_say_road_measures_are_off(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A road mapper scoring one scene (a 6 x 6 tile mosaic, one truth file) got no road measures
    and no word why: auto needs 3 labels with objects to judge their shape, and said so only in
    the log. Now one note says they are off, why, and that --roads turns them on; with road
    truths enough to judge (or --roads / --no-roads) no such note."""
    t = np.zeros((96, 96), bool)
    t[[20, 50, 80], :] = True
    t[:, [30, 70]] = True  # a grid of 1 px roads: a road network by its shape
    write_mask_png(tmp_path / "truth" / "scene.png", t)
    write_mask_png(tmp_path / "pred" / "scene.png", t)
    argv = ["evaluate", "--pred", str(tmp_path / "pred"), "--truth", str(tmp_path / "truth")]
    assert main(argv) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert (
        "note: road measures: off (auto: other, only 1 label with objects to judge the "
        "shape; --roads turns them on)"
    ) in said, said
    assert main([*argv, "--roads"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "road measures: off" not in said and "road quality │ 1.0000" in said, said
    assert main([*argv, "--no-roads"]) == 0
    assert "road measures: off" not in capsys.readouterr().out


def test_both_buffer_units_are_refused_in_the_options_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found in a docs walk (docs/evaluation.md: `--road-buffer-m 2 --road-buffer 3  # exit 2`):
    evaluate named the API's fields, `road_buffer (3 px) and road_buffer_m (2 m)`, where train,
    cv and experiment name the options."""
    rc = main(["evaluate", "--pred", str(tmp_path / "p"), "--truth", str(tmp_path / "t"),
               "--road-buffer-m", "2", "--road-buffer", "3"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == [
        "error: --road-buffer (pixels) and --road-buffer-m (metres) both given: give one of them"
    ]
