"""``elnet export`` output safety and messages (new-user trial): an ``--out`` that is an input is
refused, a re-exported Shapefile replaces all its files (no stale ``.prj``), corrupt labels give
one captured GDAL reason, one line for labels without a CRS, short CRS names in notes, and
``--geojson-crs`` case-insensitive and noted where it does not apply."""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from helpers_data import write_tif
from rasterio.crs import CRS
from rasterio.transform import from_origin

from sam2elnet.cli import main
from sam2elnet.data.georef import crs_name
from sam2elnet.errors import UserError
from sam2elnet.export.api import export_labels
from sam2elnet.utils.paths import check_not_input

UTM = CRS.from_epsg(32633)
LAEA = CRS.from_proj4(
    "+proj=laea +lat_0=48 +lon_0=12 +x_0=1000000 +y_0=1000000 +ellps=GRS80 +units=m +no_defs"
)


def _label() -> np.ndarray:
    """40x50 0/255: a 20x20 square with a 5x5 hole and a 5x15 rectangle (2 polygons)."""
    a = np.zeros((40, 50), np.uint8)
    a[5:25, 5:25] = 255
    a[10:15, 10:15] = 0
    a[30:35, 30:45] = 255
    return a


def _tif(path: Path, crs: CRS | None, transform=from_origin(500000, 4500000, 10, 10)) -> Path:
    return write_tif(path, _label()[None], nodata=127, crs=crs, transform=transform)


def _export(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    rc = main(["export", *args, "--no-progress"])
    return rc, capsys.readouterr().err


# ------------------------------------------------------------ 1. --out is an input file


@pytest.mark.parametrize("how", ["same", "relative", "symlink", "folder"])
def test_out_that_is_an_input_label_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    src = _tif(tmp_path / "utm" / "a.tif", UTM)
    before = src.read_bytes()
    monkeypatch.chdir(tmp_path)
    labels, out = {
        "same": ("utm/a.tif", "utm/a.tif"),
        "relative": ("utm", "utm/../utm/a.tif"),
        "symlink": ("utm", "link.tif"),
        "folder": ("utm", "utm/a.tif"),
    }[how]
    if how == "symlink":
        os.symlink(src, tmp_path / "link.tif")
    rc, err = _export(capsys, "--labels", labels, "--out", out, "--format", "geojson")
    assert rc == 2
    assert err.startswith("error: --out") and err.count("\n") == 1, err
    assert "is the input file" in err and "a.tif" in err and "Choose another --out" in err
    assert src.read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "utm").iterdir()) == ["a.tif"]


def test_out_shapefile_sidecar_of_input_is_refused(tmp_path: Path) -> None:
    """For a Shapefile every sidecar counts: ``x.shp`` would write ``x.dbf``, an input here."""
    inp = tmp_path / "x.dbf"
    inp.write_bytes(b"input")
    with pytest.raises(UserError, match="is the input file"):
        check_not_input(tmp_path / "x.shp", [inp])
    check_not_input(tmp_path / "y.shp", [inp])  # another name: fine
    check_not_input(tmp_path / "new.tif", [inp, None, tmp_path])  # absent out, folder input


def test_api_refuses_out_that_is_the_quality_table(tmp_path: Path) -> None:
    _tif(tmp_path / "lab" / "a.tif", UTM)
    q = tmp_path / "lab" / "quality.csv"
    q.write_text("label,quality\na.tif,0.9\n")
    with pytest.raises(UserError, match="is the input file"):
        export_labels(tmp_path / "lab", q, "coco", progress=False)
    assert q.read_text() == "label,quality\na.tif,0.9\n"


def test_scene_out_that_is_the_image_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    img = _tif(tmp_path / "scene.tif", UTM)
    before = img.read_bytes()
    rc = main(["scene", "--model", "builtin:smoothing", "--image", str(img), "--out", str(img)])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: --out") and err.count("\n") == 1, err
    assert img.read_bytes() == before


def test_scene_companion_that_is_the_image_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--out x.tif --prob`` also writes ``x_prob.tif``: the input image here."""
    img = _tif(tmp_path / "x_prob.tif", UTM)
    before = img.read_bytes()
    argv = ["scene", "--model", "builtin:smoothing", "--image", str(img), "--prob"]
    rc = main([*argv, "--out", str(tmp_path / "x.tif")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    out = tmp_path / "x.tif"  # the message names the user's --out, then its companion file
    assert err.startswith(f"error: --out {out}: its probability map {img}: is the input file {img}")
    assert img.read_bytes() == before and not (tmp_path / "x.tif").exists()


# ------------------------------------------------------- 2. Shapefile files replaced as a set


def test_reexport_shapefile_without_crs_drops_the_old_prj(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    utm = _tif(tmp_path / "utm" / "a.tif", UTM)
    plain = _tif(tmp_path / "plain" / "a.tif", None, from_origin(0, 40, 1, 1))
    out = tmp_path / "o.shp"
    assert _export(capsys, "--labels", str(utm), "--out", str(out))[0] == 0
    assert out.with_suffix(".prj").exists() and gpd.read_file(out).crs == UTM
    (tmp_path / "o.qix").write_bytes(b"stale spatial index")  # an old sidecar of another tool
    (tmp_path / "o.gpkg").write_bytes(b"not a sidecar")  # another output, kept
    rc, err = _export(capsys, "--labels", str(plain), "--out", str(out))
    assert rc == 0, err
    assert not out.with_suffix(".prj").exists() and not (tmp_path / "o.qix").exists()
    g = gpd.read_file(out)
    assert g.crs is None and len(g) == 2
    assert g.total_bounds.tolist() == [5.0, 5.0, 45.0, 35.0]  # pixel coordinates
    assert (tmp_path / "o.gpkg").read_bytes() == b"not a sidecar"
    names = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("o."))
    assert names == ["o.cpg", "o.dbf", "o.gpkg", "o.qml", "o.shp", "o.shx"]  # .qml: the QGIS style
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".o.")]  # temp folder gone
    # and back: the CRS labels write a .prj again
    assert _export(capsys, "--labels", str(utm), "--out", str(out))[0] == 0
    assert gpd.read_file(out).crs == UTM


# ------------------------------------------------------------- 3. corrupt label files


def test_corrupt_label_reason_is_gdal_cause_and_no_raw_output(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    lab = tmp_path / "lab"
    _tif(lab / "a.tif", UTM)
    good = _tif(lab / "b.tif", UTM).read_bytes()
    (lab / "b.tif").write_bytes(good[: len(good) // 3])  # header kept, strips cut off
    rc = main(["export", "--labels", str(lab), "--out", str(tmp_path / "o.gpkg"), "--no-progress"])
    out, err = capfd.readouterr()  # fd level: what GDAL prints itself is seen here
    assert rc == 0
    assert "Warning 1" not in err and "TIFFFetch" not in out + err.split("warning:")[0]
    lines = [ln for ln in err.splitlines() if "b.tif" in ln]
    assert len(lines) == 1 and lines[0].startswith("warning: skipping"), err
    assert "previous exception" not in lines[0]
    assert "IReadBlock failed" in lines[0] or "TIFFRead" in lines[0], lines[0]
    skipped = (tmp_path / "o_gpkg_skipped.csv").read_text()
    assert "b.tif" in skipped and "previous exception" not in skipped


def test_exports_of_one_stem_in_one_folder_keep_a_skipped_list_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Was: ``--out w.gpkg`` and ``--out w.geojson`` both listed their skipped labels in
    ``w_skipped.csv``: the second export replaced the first's list, and one that skipped
    nothing removed the other's. Now a list is named by the format as the review record is
    (``w_<format>_skipped.csv``, a GeoPackage's too)."""
    lab = tmp_path / "lab"
    _tif(lab / "a.tif", UTM)
    (lab / "c.tif").write_bytes(b"not a raster")
    lists = {"gpkg": tmp_path / "w_gpkg_skipped.csv", "geojson": tmp_path / "w_geojson_skipped.csv"}
    for ext, listed in lists.items():
        rc = main(["export", "--labels", str(lab), "--out", str(tmp_path / f"w.{ext}"),
                   "--no-progress"])  # fmt: skip
        out = capsys.readouterr().out
        assert rc == 0 and out.strip().splitlines()[-1] == f"1 of 2 skipped, see {listed}", out
    assert all("c.tif" in listed.read_text() for listed in lists.values())
    (lab / "c.tif").unlink()  # the GeoJSON again, nothing skipped: its own list goes, only it
    assert main(["export", "--labels", str(lab), "--out", str(tmp_path / "w.geojson"),
                 "--no-progress"]) == 0  # fmt: skip
    assert not lists["geojson"].exists() and "c.tif" in lists["gpkg"].read_text()


def test_an_export_whose_old_list_name_is_another_exports_list_leaves_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``w_gpkg_skipped.csv`` is both the list of ``--out w.gpkg`` and the old name
    (``<out stem>_skipped.csv``) of ``--out w_gpkg.geojson``'s list. Was: the export to
    ``w_gpkg.geojson`` removed it as its own older list, so ``w.gpkg``'s list of skipped labels
    was gone. Now an old name that is also another output's list is left alone."""
    lab = tmp_path / "lab"
    _tif(lab / "a.tif", UTM)
    (lab / "c.tif").write_bytes(b"not a raster")
    gpkg_list = tmp_path / "w_gpkg_skipped.csv"
    assert main(["export", "--labels", str(lab), "--out", str(tmp_path / "w.gpkg"),
                 "--no-progress"]) == 0  # fmt: skip
    assert "c.tif" in gpkg_list.read_text()
    for skipped in (True, False):  # a list of its own written, or nothing skipped
        if not skipped:
            (lab / "c.tif").unlink()
        assert main(["export", "--labels", str(lab), "--out", str(tmp_path / "w_gpkg.geojson"),
                     "--no-progress"]) == 0  # fmt: skip
        assert (tmp_path / "w_gpkg_geojson_skipped.csv").exists() is skipped
        assert "c.tif" in gpkg_list.read_text()
    capsys.readouterr()


@pytest.mark.parametrize(
    ("name", "record"),
    [("w.gpkg", "w_review.json"), ("w.geojson", "w_geojson_review.json"),
     ("w.json", "w_coco_review.json")],
)  # fmt: skip
def test_an_export_names_its_review_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, record: str
) -> None:
    """Was: an export for review (a layer for QGIS, COCO for CVAT) wrote its review record,
    which ``elnet import`` needs back, without naming it: the user had to know its name. Now a
    line after the summary names it, ``review record: PATH``, before the skip line (last)."""
    lab = tmp_path / "lab"
    _tif(lab / "a.tif", UTM)
    (lab / "c.tif").write_bytes(b"not a raster")
    out = tmp_path / name
    assert main(["export", "--labels", str(lab), "--out", str(out), "--no-progress"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert (tmp_path / record).is_file()
    assert lines[-3].startswith(f"{out}: ") and lines[-2] == f"review record: {tmp_path / record}"
    assert lines[-1].startswith("1 of 2 skipped, see ")


# ------------------------------------------------ 4.-6. one line per message, short CRS names


@pytest.mark.parametrize("ext", ["gpkg", "shp"])
def test_no_crs_message_printed_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ext: str
) -> None:
    lab = _tif(tmp_path / "a.tif", None, from_origin(0, 40, 1, 1))
    rc, err = _export(capsys, "--labels", str(lab), "--out", str(tmp_path / f"o.{ext}"))
    assert rc == 0
    assert err.count("labels have no CRS") == 1 and "note: labels have no CRS" in err, err


def test_reprojection_note_names_the_crs_shortly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Labels in two CRSs need --crs (one error line naming both, nothing written); with it,
    one note names the CRSs shortly."""
    _tif(tmp_path / "mix" / "a.tif", UTM)
    _tif(tmp_path / "mix" / "b_wkt.tif", LAEA, from_origin(1000000, 1000000, 10, 10))
    args = ["--labels", str(tmp_path / "mix"), "--out", str(tmp_path / "m.gpkg")]
    rc, err = _export(capsys, *args)
    assert rc == 2 and not (tmp_path / "m.gpkg").exists()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {tmp_path / 'mix'}: "), err
    assert "2 CRSs (EPSG:32633: 1 (a.tif); the custom CRS 'unknown': 1 (b_wkt.tif))" in lines[0]
    assert "give --crs to reproject them all to it, e.g. --crs EPSG:32633 or --crs wgs84" in err
    rc, err = _export(capsys, *args, "--crs", "EPSG:32633")
    assert rc == 0
    line = next(ln for ln in err.splitlines() if "reprojected" in ln)
    assert line == (
        "note: polygons reprojected to EPSG:32633 by --crs: 1 from the custom CRS 'unknown' "
        "(b_wkt.tif); area_map is in each label's own CRS units"
    )
    assert crs_name(UTM) == "EPSG:32633" and "PROJCS" not in crs_name(LAEA)


@pytest.mark.parametrize("ext", ["gpkg", "json"])
def test_geojson_crs_noted_where_it_does_not_apply(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ext: str
) -> None:
    lab = _tif(tmp_path / "a.tif", UTM)
    rc, err = _export(
        capsys, "--labels", str(lab), "--out", str(tmp_path / f"o.{ext}"), "--geojson-crs", "wgs84"
    )
    assert rc == 0
    assert err.count("--geojson-crs") == 1 and "applies to GeoJSON output only" in err, err


def test_geojson_crs_case_insensitive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lab = _tif(tmp_path / "a.tif", UTM)
    out = tmp_path / "o.geojson"
    rc, err = _export(capsys, "--labels", str(lab), "--out", str(out), "--geojson-crs", "WGS84")
    assert rc == 0, err
    assert gpd.read_file(out).crs.to_epsg() == 4326


# ------------------------------------------------------------ run folders given to vector export


def test_run_folder_errors_name_labels_and_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's `elnet export --labels out/auto/labels` on a run that rejected every label
    said only 'does not exist'; a run folder itself said 'no label rasters in the folder' (now
    it is exported, labels/ and rejected/, as Label Studio tasks always took it)."""
    run = tmp_path / "auto"
    _tif(run / "rejected" / "a.tif", UTM)
    (run / "quality.csv").write_text(
        "image,label,predicted_iou,kept\na.tif,rejected/a.tif,0.1,False\n"
    )
    rc, err = _export(capsys, "--labels", str(run / "labels"), "--out", str(tmp_path / "o.gpkg"))
    assert rc == 2 and err.strip() == (
        f"error: {run / 'labels'}: label folder does not exist: the run kept no label; its "
        f"rejected labels are in {run / 'rejected'} (pass that folder)"
    )
    # the run folder itself is exported as Label Studio exports it: labels/ and rejected/
    rc, err = _export(capsys, "--labels", str(run), "--out", str(tmp_path / "r.gpkg"))
    assert rc == 0, err
    assert "exported 0 kept labels (labels/) and 1 the quality filter rejected" in err
    assert set(gpd.read_file(tmp_path / "r.gpkg", layer="labels")["label"]) == {"a.tif"}
    # a folder with empty labels/ and rejected/ still names them
    (tmp_path / "empty" / "rejected").mkdir(parents=True)
    rc, err = _export(
        capsys, "--labels", str(tmp_path / "empty"), "--out", str(tmp_path / "o.gpkg")
    )
    assert rc == 2 and err.strip().endswith(
        f"in the folder; an annotate/enhance run folder: pass {tmp_path / 'empty' / 'rejected'}"
    )
    assert not (tmp_path / "o.gpkg").exists()
    rc, _ = _export(capsys, "--labels", str(run / "rejected"), "--out", str(tmp_path / "o.gpkg"))
    assert rc == 0 and (tmp_path / "o.gpkg").is_file()


def test_label_studio_export_of_a_run_folder_counts_kept_and_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/review.md: every format given a run folder says how many kept and rejected labels
    went out. The Label Studio export said nothing (the polygon and COCO exports did), and one
    kept label read '1 kept labels'."""
    run = tmp_path / "auto"
    rows = ["image,label,predicted_iou,kept"]
    for name, sub, q in (("a", "labels", 0.9), ("b", "rejected", 0.1), ("c", "rejected", 0.2)):
        _tif(run / sub / f"{name}.tif", UTM)
        img = _tif(tmp_path / "images" / f"{name}.tif", UTM)  # an image: any raster will do
        rows.append(f"{img},{sub}/{name}.tif,{q},{q >= 0.5}")
    (run / "quality.csv").write_text("\n".join(rows) + "\n")
    want = "exported 1 kept label (labels/) and 2 the quality filter rejected (rejected/)"
    rc, err = _export(capsys, "--labels", str(run), "--format", "label-studio",
                      "--out", str(tmp_path / "ls" / "tasks.json"))  # fmt: skip
    assert rc == 0, err
    assert want in err, err
    rc, err = _export(capsys, "--labels", str(run), "--out", str(tmp_path / "r.gpkg"))
    assert rc == 0 and want in err, err


def test_an_export_replaces_an_older_list_of_skipped_labels_of_its_stem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exports named their list of skipped labels ``<out stem>_skipped.csv`` before (every
    format; later a GeoPackage only). Was: an export under the new name left such a list in
    place, so a fresh ``w.geojson`` that skipped nothing sat beside a ``w_skipped.csv`` saying
    labels were skipped. Now an export of that stem, which would have replaced that list,
    removes it: with nothing skipped no list is left, with a label skipped only its own
    ``w_<format>_skipped.csv``. An evaluation's list of that old name (``file`` column) stays."""
    lab = tmp_path / "lab"
    _tif(lab / "a.tif", UTM)
    old = tmp_path / "w_skipped.csv"
    old.write_text("label,reason\nold.tif,an earlier export's\n")
    rc = main(["export", "--labels", str(lab), "--out", str(tmp_path / "w.geojson"),
               "--no-progress"])  # fmt: skip
    assert rc == 0 and "skipped" not in capsys.readouterr().out
    assert not list(tmp_path.glob("*skipped*")) and (tmp_path / "w.geojson").is_file()
    old.write_text("label,reason\nold.tif,an earlier export's\n")
    (lab / "c.tif").write_bytes(b"not a raster")
    assert main(["export", "--labels", str(lab), "--out", str(tmp_path / "w.gpkg"),
                 "--no-progress"]) == 0  # fmt: skip
    listed = tmp_path / "w_gpkg_skipped.csv"
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"1 of 2 skipped, see {listed}"
    assert not old.exists() and "c.tif" in listed.read_text()
    evaluation = "file,reason\nx.png,an evaluation's\n"
    old.write_text(evaluation)  # elnet evaluate --csv w.csv's list of the old name
    assert main(["export", "--labels", str(lab), "--out", str(tmp_path / "w.gpkg"),
                 "--no-progress"]) == 0  # fmt: skip
    assert old.read_text() == evaluation
