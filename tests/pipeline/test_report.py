"""HTML report: written atomically, self-contained, sorted, with overlays, plots, table and flags."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from helpers_data import annotate_run_folder, write_quality_csv, write_tif
from PIL import Image

from sam2elnet.pipeline.report import (
    ReportItem,
    display_rgb,
    overlay_rgb,
    write_report,
    write_run_report,
)
from sam2elnet.pipeline.report_map import footprint_map, read_footprint
from sam2elnet.pipeline.report_plots import filter_curves, quality_scatter
from sam2elnet.pipeline.report_protocol import degenerate_rows, write_protocol_report


def _items(n: int = 6, bands: int = 1) -> list[ReportItem]:
    rng = np.random.default_rng(0)
    items = []
    for k in range(n):
        img = rng.gamma(1.0, 100.0, size=(bands, 48, 64)).astype(np.float32)  # SAR-like
        truth = np.zeros((48, 64), bool)
        truth[10:30, 10:40] = True
        out = np.zeros_like(truth)
        out[10 + k : 30, 10 : 40 - k] = True
        coarse = np.zeros_like(truth)
        coarse[5:35, 5:45] = True
        items.append(
            ReportItem(
                name=f"tile_{k}<b>",  # must be escaped
                image=img,
                input_label=coarse,
                output=out,
                truth=truth,
                predicted_iou=1.0 - 0.1 * k,
                true_iou=float((out & truth).sum() / (out | truth).sum()),
                kept=k < 3,
                extra={"area": int(out.sum())},
            )
        )
    return items


def _card_names(text: str) -> list[str]:
    return re.findall(r'<span class="nm">([^<]+)</span>', text)


def _table_names(text: str) -> list[str]:
    return re.findall(r'<tr data-idx="\d+" data-name="([^"]+)"', text)


def test_report_self_contained(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    path = write_report(
        tmp_path / "sub" / "report.html",
        _items(),
        title="Test report",
        metrics={"iou": 0.5, "iou_bg": 0.9, "per sensor": {"palsar": 0.4, "sentinel": 0.6}},
        quality_threshold=0.75,
        notes=["first note", "second"],
        figures={"a line": fig},
        tables={"extra": [{"k": 1, "v": 0.25}, {"k": 2, "v": 0.5}]},
    )
    plt.close(fig)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "data:image/png;base64" in text and "data:image/jpeg;base64" in text
    # nothing is fetched: no remote src/href, one inline script (no src), no stylesheet link
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert text.count("<script") == 1 and "<script src" not in text
    assert 'rel="stylesheet"' not in text
    assert "tile_0&lt;b&gt;" in text and "tile_0<b>" not in text
    assert "Test report" in text and "first note" in text and "sentinel" in text
    # metric keys get readable names and a glossary entry
    assert "IoU (background)" in text and 'id="glossary"' in text
    assert "TN / (TN + FP + FN)" in text
    assert 'class="badge kept"' in text and 'class="badge rejected"' in text
    assert "unfiltered" not in text.split('id="cards"')[1]  # a filter ran: no "unfiltered" badge
    # cards sorted by predicted IoU, worst first; the table lists every item
    assert _card_names(text) == [f"tile_{k}&lt;b&gt;" for k in (5, 4, 3, 2, 1, 0)]
    assert len(_table_names(text)) == 6
    # enhancement-style items (input label + output + truth) show input -> output IoU
    assert "→" in text and 'data-key="gain"' in text
    # the quality-filter curves are drawn (6 labels with known truth)
    assert "Quality filter: precision and recall" in text
    # no temporary files left behind
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]


def test_report_max_items_best_first_rgb_and_paths(tmp_path: Path) -> None:
    items = _items(5, bands=3)
    img = (np.random.default_rng(1).random((40, 40, 3)) * 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "img.png")
    Image.fromarray(np.eye(40, dtype=np.uint8) * 255).save(tmp_path / "m.png")
    items.append(ReportItem("from_files", image=tmp_path / "img.png", output=tmp_path / "m.png"))
    path = write_report(tmp_path / "r.html", items, title="t", max_items=3, order="best")
    text = path.read_text(encoding="utf-8")
    assert _card_names(text) == ["tile_0&lt;b&gt;", "tile_1&lt;b&gt;", "tile_2&lt;b&gt;"]
    assert "3 of 6" in text
    assert len(_table_names(text)) == 6  # the table keeps every item, cards are capped
    # file items link to their files so a reviewer can open the label; both lie next to the
    # page, so the links are relative (tests/pipeline/test_report_links.py: moved folders)
    assert '<a href="m.png" title=' in text and '<a href="img.png" title=' in text
    assert "file://" not in text


def test_report_without_scores(tmp_path: Path) -> None:
    items = [ReportItem(name=n, image=np.zeros((8, 8))) for n in ("b", "a")]
    text = write_report(tmp_path / "r.html", items, title="plain").read_text(encoding="utf-8")
    assert _card_names(text) == ["a", "b"]


def test_unfiltered_labels_are_not_called_kept(tmp_path: Path) -> None:
    """kept=True without a filter (no threshold, nothing rejected) reads 'unfiltered'."""
    items = [
        ReportItem(name=f"i{k}", image=np.zeros((8, 8)), predicted_iou=0.1 * k, kept=True)
        for k in range(3)
    ]
    text = write_report(tmp_path / "r.html", items, title="t").read_text(encoding="utf-8")
    assert 'class="badge kept"' not in text
    assert text.count('class="badge unfiltered"') == 6  # table + card, 3 items
    assert "No quality filter ran" in text
    # the same items with a threshold are kept
    text = write_report(tmp_path / "r2.html", items, title="t", quality_threshold=0.0).read_text(
        encoding="utf-8"
    )
    assert text.count('class="badge kept"') == 6 and "No quality filter ran" not in text


def test_summary_counts_add_up_with_items_no_filter_decided_on(tmp_path: Path) -> None:
    """The demo's report: 3 kept and 3 rejected auto-labels beside 2 enhanced labels (no filter
    decision) read "images 8, kept 3, rejected 3", leaving 2 unexplained."""
    extra = [
        ReportItem(name=f"enh{k}", image=np.zeros((8, 8)), predicted_iou=0.5, kept=None)
        for k in range(2)
    ]
    text = write_report(
        tmp_path / "r.html", _items() + extra, title="t", quality_threshold=0.75
    ).read_text(encoding="utf-8")

    def count(label: str, page: str) -> str | None:
        found = re.search(rf">{label}</abbr>(?:<code[^>]*>\w+</code>)?</th><td[^>]*>(\d+)<", page)
        return found.group(1) if found else None

    assert [count(k, text) for k in ("images", "kept", "rejected", "not filtered")] == [
        "8", "3", "3", "2"
    ]  # fmt: skip
    only_filtered = write_report(tmp_path / "f.html", _items(), title="t", quality_threshold=0.75)
    assert count("not filtered", only_filtered.read_text(encoding="utf-8")) is None


def test_no_filter_alert_where_no_filter_could_have_run(tmp_path: Path) -> None:
    """The cv report said "No quality filter ran (no --min-quality / --target-precision)": cv has
    no such options. ``filter_possible=False`` keeps the 'unfiltered' badges, drops the alert."""
    items = [
        ReportItem(name=f"i{k}", image=np.zeros((8, 8)), predicted_iou=0.1 * k, kept=True)
        for k in range(3)
    ]
    text = write_report(tmp_path / "r.html", items, title="t", filter_possible=False).read_text(
        encoding="utf-8"
    )
    assert text.count('class="badge unfiltered"') == 6
    assert "No quality filter ran" not in text


def test_false_alarms_on_empty_truth_are_named(tmp_path: Path) -> None:
    empty = np.zeros((16, 16), bool)
    blob = empty.copy()
    blob[4:8, 4:8] = True
    items = [
        ReportItem("alarm", output=blob, truth=empty, predicted_iou=0.4),
        ReportItem("quiet", output=empty, truth=empty, predicted_iou=0.9),
        ReportItem("miss", output=empty, truth=blob, predicted_iou=0.2),
        ReportItem("hit", output=blob, truth=blob, predicted_iou=0.8),
    ]
    text = write_report(tmp_path / "r.html", items, title="t").read_text(encoding="utf-8")
    flags = dict(re.findall(r'data-name="([^"]+)" data-status="[^"]*" data-flag="([^"]+)"', text))
    assert flags == {"alarm": "false alarm", "quiet": "correct empty", "miss": "missed", "hit": "-"}
    assert "1 of 2 images with empty ground truth got a non-empty label" in text
    # true IoU computed from the masks: 0 for the false alarm, 1 for both-empty and the hit
    true = dict(
        re.findall(r'data-name="([^"]+)".*?\n.*?\n.*?\n<td class="num" data-v="([^"]*)"', text)
    )
    assert true == {"alarm": "0.0", "quiet": "1.0", "miss": "0.0", "hit": "1.0"}


def test_true_iou_leaves_ignored_truth_pixels_out(tmp_path: Path) -> None:
    """Pixels the truth marks 'ignore' (127 in this project's labels) are not scored."""
    t = np.zeros((16, 16), np.uint8)
    t[2:10, 2:10] = 255
    t[10:14, 2:10] = 127  # ignore
    Image.fromarray(t).save(tmp_path / "t_mask.png")
    label = np.zeros((16, 16), bool)
    label[2:14, 2:10] = True  # covers the object and the ignored band
    items = [ReportItem("t", output=label, truth=tmp_path / "t_mask.png", predicted_iou=0.5)]
    text = write_report(tmp_path / "r.html", items, title="t").read_text()
    assert 'data-v="1.0">1.000</td>' in text


def test_object_counts() -> None:
    from sam2elnet.pipeline.report import object_counts

    truth = np.zeros((20, 20), bool)
    truth[1:4, 1:4] = truth[10:14, 10:14] = truth[16:19, 1:3] = True  # 3 objects
    label = np.zeros_like(truth)
    label[2:5, 2:5] = True  # hits object 1
    label[12:13, 12:18] = True  # hits object 2
    label[1:3, 15:19] = True  # touches nothing: extra
    assert object_counts(label, truth) == (3, 1, 1)  # object 3 missed
    assert object_counts(np.zeros_like(truth), truth) == (3, 3, 0)


def test_report_size_is_modest(tmp_path: Path) -> None:
    """200 noisy 256 px SAR tiles with 3 masks each stay under 10 MB."""
    rng = np.random.default_rng(0)
    truth = np.zeros((256, 256), bool)
    truth[60:200, 40:220] = True
    items = [
        ReportItem(
            name=str(k),
            image=rng.gamma(1.0, 1.0, (1, 256, 256)).astype(np.float32),
            input_label=truth,
            output=truth,
            truth=truth,
            predicted_iou=rng.random(),
        )
        for k in range(200)
    ]
    size = write_report(tmp_path / "big.html", items, title="big").stat().st_size
    assert size < 10_000_000


def test_overlay_and_display() -> None:
    sar = np.random.default_rng(0).gamma(1.0, 1.0, (1, 20, 30)).astype(np.float32)
    sar[0, 0, 0] = np.nan
    rgb = display_rgb(sar)
    assert rgb.shape == (20, 30, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0].tolist() == [0, 0, 0]
    mask = np.zeros((20, 30), bool)
    mask[5:15, 5:15] = True
    ov = overlay_rgb(sar, mask, color=(255, 0, 0), alpha=0.5)
    assert ov.shape == (20, 30, 3)
    assert ov[5, 5].tolist() == [255, 0, 0]  # outline drawn solid
    assert np.array_equal(ov[~mask], rgb[~mask])  # outside the mask untouched
    # a half-size mask is resized to the image
    assert overlay_rgb(sar, mask[::2, ::2]).shape == (20, 30, 3)
    with pytest.raises(ValueError):
        display_rgb(np.zeros((2, 2, 2, 2)))


def test_filter_curves_values() -> None:
    """precision = good kept / kept, recall = good kept / good (good: true IoU >= tau)."""
    pred = [0.2, 0.4, 0.6, 0.8]
    true = [0.1, 0.9, 0.5, 0.95]  # good at tau 0.7: items 1 and 3
    c = filter_curves(pred, true, tau=0.7)
    at = {
        round(float(t), 3): (p, r, f)
        for t, p, r, f in zip(c.thresholds, c.precision, c.recall, c.kept_fraction, strict=True)
    }
    assert at[0.0] == (0.5, 1.0, 1.0)
    assert at[0.4] == (pytest.approx(2 / 3), 1.0, 0.75)
    assert at[0.6] == (0.5, 0.5, 0.5)
    assert at[0.8] == (1.0, 0.5, 0.25)
    assert np.isnan(at[1.0][0]) and at[1.0][1:] == (0.0, 0.0)
    assert c.n_good == 2


def test_quality_scatter_draws_unfiltered_labels() -> None:
    """A run without a quality filter (status "unfiltered", as the report rows say) still gets
    one point per label: the scatter was empty, with a matplotlib legend warning (roads-dev)."""
    fig = quality_scatter(
        [0.1, 0.5, 0.9, 0.3], [0.2, 0.4, 0.8, 0.0], ["unfiltered"] * 4, [False, False, False, True]
    )
    ax = fig.axes[0]
    counts = {c.get_label(): len(c.get_offsets()) for c in ax.collections if len(c.get_offsets())}
    assert counts == {"not filtered (3)": 3, "false alarm on empty truth (1)": 1}
    fig = quality_scatter([0.1, 0.9, 0.5], [0.2, 0.8, 0.5], ["rejected", "kept", None], [False] * 3)
    counts = {c.get_label(): len(c.get_offsets()) for c in fig.axes[0].collections}
    assert counts == {"kept (1)": 1, "rejected (1)": 1, "not filtered (1)": 1}


def test_filter_curves_need_a_good_label(tmp_path: Path) -> None:
    """No curves (and a note saying why) when no label reaches tau; drawn once one does."""
    items = [
        ReportItem(f"i{k}", predicted_iou=0.1 * k, true_iou=0.1 * k, kept=k > 2) for k in range(5)
    ]
    text = write_report(tmp_path / "r.html", items, title="t", tau=0.7).read_text()
    assert "No quality-filter curves: none of the 5 labels" in text
    assert "Quality filter: precision and recall" not in text
    text = write_report(tmp_path / "r.html", items, title="t", tau=0.3).read_text()
    assert "Quality filter: precision and recall" in text and "No quality-filter" not in text


def test_degenerate_downstream_rows_are_flagged(tmp_path: Path) -> None:
    all_fg = {"title": "x", "iou": 0.05, "miou": 0.025, "precision": 0.05, "recall": 1.0}
    fine = {"title": "y", "iou": 0.6, "miou": 0.78, "precision": 0.7, "recall": 0.8}
    none = {"title": "z", "iou": 0.0, "miou": 0.47, "precision": 0.0, "recall": 0.0}
    assert degenerate_rows([all_fg, fine, none, {"title": "?"}]) == [
        "all foreground",
        None,
        "no foreground",
        None,
    ]
    results = {
        "table1": [dict(all_fg, hand_labels=9, train_images=9, f1=0.1)] * 2,
        "table2": [dict(all_fg, labels="coarse", hand_labels=9, train_images=9, f1=0.1)],
        "autolabels": {"n": 0, "threshold": None},
        "split": {"labelled": 3},
    }
    text = write_protocol_report(tmp_path / "p.html", results, [], title="protocol").read_text()
    assert "Every downstream model is degenerate: it labelled (almost) every test pixel" in text
    assert text.count('class="flagged"') == 3
    results["table1"] = [dict(fine, hand_labels=9, train_images=9, f1=0.7), results["table1"][0]]
    text = write_protocol_report(tmp_path / "p.html", results, [], title="protocol").read_text()
    assert "Every downstream" not in text and "2 downstream models are degenerate" in text


def test_degenerate_table1_rows_are_named_in_results_md_and_the_printed_tables() -> None:
    """report.html flagged degenerate downstream models, but results.md and the console gave
    the verdict '(c) ... does not reach 97 % of (a)' from an all-foreground U-Net (sos-dev,
    2 downstream epochs) without a word; degenerate_note is the sentence both now show."""
    from sam2elnet.pipeline.experiment_markdown import degenerate_note

    all_fg = {"iou": 0.245, "miou": 0.1225, "recall": 1.0}
    fine = {"iou": 0.6, "miou": 0.78, "recall": 0.8}
    none = {"iou": 0.0, "miou": 0.47, "recall": 0.0}
    rows = [
        dict(fine, title="(a) 100 % original labels"),
        dict(all_fg, title="(b) labelled fraction only"),
        dict(all_fg, title="(c) filtered auto-labels only"),
        {"title": "(d) fraction + filtered auto-labels", "skipped": "no labels kept"},
        dict(none, title="(e) fraction + all auto-labels (unfiltered)"),
    ]
    note = degenerate_note(rows)
    assert note is not None and note.startswith("3 models of table 1 are degenerate: ")
    assert "(b), (c) labelled (almost) every test pixel foreground" in note
    assert "(e) found no foreground (recall 0)" in note and "(d)" not in note
    assert degenerate_note([rows[0], rows[3]]) is None
    # the flags the run worked out for its verdict are the ones named (one per row not skipped)
    flags = [None, None, "no foreground", None]
    assert degenerate_note(rows, flags) == degenerate_note([rows[2]], ["no foreground"])
    assert "1 model of table 1 is degenerate: (c)" in degenerate_note(
        rows, flags
    ) and "(b)" not in degenerate_note(rows, flags)


def _geotiff(path: Path, left: float, top: float, crs: str = "EPSG:32633") -> None:
    from rasterio.transform import from_origin

    transform = from_origin(left, top, 10.0, 10.0)
    write_tif(path, np.full((1, 16, 16), 100, np.uint8), crs=crs, transform=transform)


def test_footprint_map_of_georeferenced_images(tmp_path: Path) -> None:
    _geotiff(tmp_path / "a.tif", 500_000, 4_000_160)
    _geotiff(tmp_path / "b.tif", 500_160, 4_000_160)  # east of a, same row
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "c.png")  # no georeference
    fa, fb = read_footprint(tmp_path / "a.tif"), read_footprint(tmp_path / "b.tif")
    assert read_footprint(tmp_path / "c.png") is None
    assert fa is not None and fb is not None
    assert (fa.left, fa.bottom, fa.right, fa.top) == (500_000, 4_000_000, 500_160, 4_000_160)
    geo = footprint_map([fa, fb, None], [0.9, 0.1, 0.5], width=336)
    assert geo is not None and geo["crs"] == "EPSG:32633"
    a, b = geo["boxes"]
    assert (a["index"], b["index"]) == (0, 1)
    assert a["x"] == 8 and b["x"] == pytest.approx(168) and a["y"] == b["y"] == 8
    assert a["w"] == pytest.approx(160) and a["color"] != b["color"]
    items = [
        ReportItem(n, image=tmp_path / f, predicted_iou=q)
        for n, f, q in (("a", "a.tif", 0.9), ("b", "b.tif", 0.1), ("c", "c.png", 0.5))
    ]
    text = write_report(tmp_path / "r.html", items, title="geo").read_text()
    assert 'id="map"' in text and text.count('<rect class="fp"') == 2 and "EPSG:32633" in text


def test_footprint_map_mixed_crs_goes_to_wgs84() -> None:
    from sam2elnet.pipeline.report_map import Footprint

    a = Footprint(500_000, 4_000_000, 501_000, 4_001_000, "EPSG:32633")  # 15.00-15.011 E, 36.145 N
    b = Footprint(15.02, 36.14, 15.03, 36.15, "EPSG:4326")
    geo = footprint_map([a, b], [0.5, None])
    assert geo is not None and geo["crs"] == "EPSG:4326"
    x0, y0, x1, y1 = geo["bounds"]
    assert (x0, y0, x1, y1) == pytest.approx((15.0, 36.14, 15.03, 36.1537), abs=1e-4)
    assert geo["boxes"][1]["color"] == "#9aa3b2"  # no score: grey


def test_write_run_report(tmp_path: Path) -> None:
    """Report of an annotate/enhance output folder, with true IoU from a truth folder."""
    run, truth = tmp_path / "run", tmp_path / "gt"
    rows = annotate_run_folder(run, tmp_path, [f"{k}_sat" for k in range(3)], n_images=3)
    truth.mkdir()
    t = np.zeros((20, 20), np.uint8)
    t[2:18, 2:18] = 255
    for k in range(3):
        Image.fromarray(t).save(truth / f"{k}_mask.png")
    path = write_run_report(run, truth_dir=truth)
    assert path == run / "report.html"
    text = path.read_text(encoding="utf-8")
    assert "sam2elnet annotate" in text and "true IoU" in text
    assert text.count('class="card ') == 3
    assert text.count('<span class="badge rejected">') == 2  # table row + card of item 2
    assert text.count('hidden data-layer="prob"') == 3  # one probability layer per card
    # true IoU of item 1 (rows 2..15 of 2..18) = 13/16
    assert 'data-v="0.8125"' in text
    # the same folder without a filter: nothing is "kept"
    for r in rows:
        r["kept"] = True
    write_quality_csv(run, rows)
    (run / "summary.json").write_text(json.dumps({"task": "annotate", "threshold": None}))
    text = write_run_report(run).read_text(encoding="utf-8")
    assert '<span class="badge kept">' not in text and "unfiltered" in text


def test_vector_input_label_is_drawn_on_its_image(tmp_path: Path) -> None:
    """An enhance run from QGIS polygons: the report's input label is the .gpkg; it is rasterised
    onto the image's grid (it was read as a raster: one 'cannot read raster' warning per image
    and no input layer), so the input IoU against the truth is computed."""
    import geopandas as gpd
    import rasterio
    from affine import Affine
    from shapely.geometry import box

    from sam2elnet.pipeline.report_rows import prepare_item

    grid = Affine(10, 0, 500000, 0, -10, 4000000)  # 10 m pixels, EPSG:32633
    img = tmp_path / "scene.tif"
    with rasterio.open(
        img,
        "w",
        driver="GTiff",
        height=32,
        width=32,
        count=1,
        dtype="uint8",
        crs="EPSG:32633",
        transform=grid,
    ) as ds:
        ds.write(np.full((1, 32, 32), 90, np.uint8))
    poly = box(500000 + 40, 4000000 - 200, 500000 + 200, 4000000 - 40)  # cols 4..19, rows 4..19
    gpkg = tmp_path / "scene.gpkg"
    gpd.GeoDataFrame({"id": [1]}, geometry=[poly], crs="EPSG:32633").to_file(gpkg)
    truth = np.zeros((32, 32), np.uint8)
    truth[4:20, 4:24] = 255  # 16 x 20 px; the polygon covers 16 x 16 of it
    Image.fromarray(truth).save(tmp_path / "truth.png")
    item = ReportItem("scene", image=img, input_label=gpkg, truth=tmp_path / "truth.png")
    row = prepare_item(item, 0, filtered=False)
    assert row["errors"] == []
    assert row["true"] == pytest.approx(256 / 320)  # no output: the input label is scored
    path = write_report(tmp_path / "r.html", [item], title="vector input")
    assert "cannot read" not in path.read_text(encoding="utf-8")


def test_footprint_of_a_south_up_raster_is_its_real_extent(tmp_path: Path) -> None:
    """A GeoTIFF stored bottom-up (positive y pixel size, row 0 at the southern edge) covers
    the same ground as its north-up twin: rasterio's bounds gave bottom > top and the report map
    drew it as a 1 px sliver below the map. Same footprint, same box."""
    import rasterio
    from affine import Affine

    _geotiff(tmp_path / "north_up.tif", 500_000, 4_000_160)
    with rasterio.open(
        tmp_path / "south_up.tif", "w", driver="GTiff", width=16, height=16, count=1,
        dtype="uint8", crs="EPSG:32633", transform=Affine(10.0, 0, 500_000, 0, 10.0, 4_000_000),
    ) as dst:  # fmt: skip
        dst.write(np.full((1, 16, 16), 100, np.uint8))
    fn, fs = read_footprint(tmp_path / "north_up.tif"), read_footprint(tmp_path / "south_up.tif")
    assert fs is not None and fn is not None
    assert (fs.left, fs.bottom, fs.right, fs.top) == (500_000, 4_000_000, 500_160, 4_000_160)
    a, b = footprint_map([fn, fs], [0.9, 0.1], width=176)["boxes"]
    assert (b["x"], b["y"], b["w"], b["h"]) == (a["x"], a["y"], a["w"], a["h"]) == (8, 8, 160, 160)
