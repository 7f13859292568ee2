"""elnet export: what a polygon layer does with a label without georeference among GeoTIFFs
(skipped, by the batch rule), the one table of which option applies to which format (one note
per ignored option), each label opened once before polygonising."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import geopandas as gpd
import numpy as np
import pytest
import rasterio
from review_helpers import make_run

from sam2elnet.cli import main
from sam2elnet.errors import UserError
from sam2elnet.export.api import export_labels

SCORES = {"a": 0.8, "b": 0.9, "c": 0.7}


def _run_with_a_png(tmp_path: Path) -> Path:
    """An annotate run of GeoTIFF labels (domain 'oil spill') plus one PNG label."""
    run = make_run(tmp_path, SCORES)
    summary = json.loads((run / "summary.json").read_text())
    summary["domain"] = {"category": "oil spill"}
    (run / "summary.json").write_text(json.dumps(summary))
    png = np.zeros((40, 48), np.uint8)
    png[10:30, 12:36] = 255
    cv2.imwrite(str(run / "labels" / "tile_143.png"), png)
    return run


def test_a_png_among_geotiff_labels_is_skipped_from_the_polygon_layer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """Was: exit 2, 'some labels are georeferenced and some are not', and the workaround
    (another folder + --quality-csv) lost the run's category. Now: the PNG is skipped with its
    reason in <out stem>_gpkg_skipped.csv and one warning line, the GeoTIFFs are exported with the
    run's category, exit 0."""
    run = _run_with_a_png(tmp_path)
    out = tmp_path / "o.gpkg"
    rc = main(["export", "--labels", str(run), "--out", str(out), "--no-progress"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    gdf = gpd.read_file(out, layer="labels")
    assert set(gdf["label"]) == {"a.tif", "b.tif", "c.tif"}
    assert set(gdf["category"]) == {"oil spill"}
    with open(tmp_path / "o_gpkg_skipped.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [Path(r["label"]).name for r in rows] == ["tile_143.png"]
    assert "no georeference" in rows[0]["reason"] and "--labels tile_143.png" in rows[0]["reason"]
    assert [ln for ln in cap.err.splitlines() if "tile_143" in ln] == [
        ln for ln in cap.err.splitlines() if ln.startswith("warning: skipping")
    ]
    assert len([ln for ln in cap.err.splitlines() if "tile_143" in ln]) == 1, cap.err
    assert "1 of 4 skipped" in cap.out


def test_warp_to_skips_a_png_among_geotiff_labels_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """Was: --warp-to refused the whole run ('has no georeference ... drop --warp-to') where the
    plain export skipped the PNG. Now the same batch rule: skipped with its reason in
    <out stem>_gpkg_skipped.csv, the GeoTIFFs warped and exported, exit 0; a PNG alone (nothing to
    place on a map) is still one error line, exit 2, nothing written."""
    run = _run_with_a_png(tmp_path)
    out = tmp_path / "w.gpkg"
    args = ["export", "--out", str(out), "--warp-to", "EPSG:4326", "--no-progress"]
    rc = main([*args, "--labels", str(run)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    gdf = gpd.read_file(out, layer="labels")
    assert set(gdf["label"]) == {"a.tif", "b.tif", "c.tif"} and gdf.crs.to_epsg() == 4326
    assert set(gdf["category"]) == {"oil spill"}
    with open(tmp_path / "w_gpkg_skipped.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["label"] for r in rows] == [str(run / "labels" / "tile_143.png")]
    png = run / "labels" / "tile_143.png"  # the fix names it as found, folder and all
    assert "--warp-to" in rows[0]["reason"] and f"--labels {png} --out" in rows[0]["reason"]
    assert "1 of 4 skipped" in cap.out
    png = run / "labels" / "tile_143.png"
    for labels in (png, png.parent.parent.parent / "pngs"):  # one file; a folder of PNGs only
        if labels.name == "pngs":
            labels.mkdir()
            cv2.imwrite(str(labels / "p.png"), cv2.imread(str(png)))
        rc = main([*args, "--labels", str(labels), "--out", str(tmp_path / "none.gpkg")])
        err = capsys.readouterr().err
        lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
        assert rc == 2 and len(lines) == 1 and "has no georeference" in lines[0], err
        assert not list(tmp_path.glob("none*")), err


def test_a_negative_smooth_is_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """Was: only --simplify / --min-area were checked by the API; smooth=-1 buffered the
    polygons in then out (an erosion) and wrote the layer. Now the options model's range
    (ExportOptions, smooth >= 0) for the API as for the CLI: one error line, exit 2."""
    run = make_run(tmp_path, SCORES)
    out = tmp_path / "o.gpkg"
    with pytest.raises(UserError, match="--smooth: -1"):
        export_labels(run, out, progress=False, smooth=-1.0)
    rc = main(["export", "--labels", str(run), "--out", str(out), "--smooth", "-1",
               "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and [ln for ln in err.splitlines() if ln.startswith("error: ")] == [
        ln for ln in err.splitlines() if ln.strip()
    ], err
    assert "--smooth" in err and not list(tmp_path.glob("o*")), err


def test_a_png_alone_still_exports_in_pixel_coordinates(tmp_path: Path):
    """The way out the skip reason names works: the PNG exported alone."""
    run = _run_with_a_png(tmp_path)
    res = export_labels(run / "labels" / "tile_143.png", tmp_path / "p.gpkg", progress=False)
    assert res.n_features == 1 and not res.skipped


def test_options_of_other_formats_get_one_note_each(tmp_path: Path):
    """--polygons / --document-root for polygons and COCO, --simplify / --chips for Label
    Studio, --coco-rle for polygons: each was ignored without a word."""
    run = make_run(tmp_path, SCORES)
    ls_only = {"polygons": True, "document_root": tmp_path}
    gpkg = export_labels(run, tmp_path / "o.gpkg", progress=False, coco_rle=True, **ls_only)
    flags = [n.split(" applies")[0] for n in gpkg.notes if " applies to " in n]
    assert flags == ["--coco-rle", "--polygons", "--document-root"]
    coco = export_labels(
        run, tmp_path / "o.json", progress=False, simplify=1.0, smooth=2.0, **ls_only
    )
    flags = [n.split(" applies")[0] for n in coco.notes if " applies to " in n]
    assert flags == ["--simplify", "--smooth", "--polygons", "--document-root"]
    assert all(n.endswith("ignored for coco") for n in coco.notes if " applies to " in n)
    ls = export_labels(
        run, tmp_path / "ls" / "t.json", "label-studio", progress=False, simplify=1.0,
        chips=tmp_path / "chips", coco_rle=True, min_area_px=5,
    )  # fmt: skip
    flags = [n.split(" applies")[0] for n in ls.notes if " applies to " in n]
    assert flags == ["--simplify", "--min-area", "--chips", "--coco-rle"]
    assert not (tmp_path / "chips").exists()


def test_option_scope_is_the_one_table_docs_list(tmp_path: Path):
    """docs/geospatial.md lists every option of the table with the formats it applies to."""
    from sam2elnet.export.option_scope import OPTION_SCOPE

    doc = (Path(__file__).parents[2] / "docs" / "geospatial.md").read_text(encoding="utf-8")
    for scope in OPTION_SCOPE.values():
        row = next((ln for ln in doc.splitlines() if ln.startswith(f"| `{scope.flag}`")), None)
        assert row is not None, scope.flag
        assert all(f in row for f in scope.formats), row


def test_an_unknown_format_lists_label_studio():
    """format_of (API users) listed the polygon formats and coco, not label-studio."""
    from sam2elnet.export.layer_files import format_of
    from sam2elnet.option_values import EXPORT_FORMATS

    with pytest.raises(UserError) as err:
        format_of("x.gpkg", "kml")
    assert all(name in str(err.value) for name in EXPORT_FORMATS)
    assert format_of("x.json", "Label-Studio") == "label-studio"


def test_a_polygon_export_opens_each_label_once_before_polygonising(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Was: every label opened by the readability check, again by the georeference check
    (_check_georef), then for polygonising; the georeference is now read by the first. The
    other open: the model record in the label tags, read once for run_model_version and
    default_category (was twice). Measured: 5 opens per label, then 4, now 3."""
    run = make_run(tmp_path, SCORES)
    labels = {p.resolve() for p in run.rglob("*.tif")}
    opens: list[Path] = []
    real = rasterio.open

    def counting(path, *a, **k):  # type: ignore[no-untyped-def]
        if isinstance(path, (str, Path)) and Path(path).resolve() in labels:
            opens.append(Path(path).resolve())
        return real(path, *a, **k)

    monkeypatch.setattr(rasterio, "open", counting)
    export_labels(run, tmp_path / "o.gpkg", progress=False)
    per_label = {p: opens.count(p) for p in labels}
    assert max(per_label.values()) <= 3, per_label
