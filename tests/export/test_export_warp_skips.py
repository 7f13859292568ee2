"""``elnet export --warp-to``: a label of a folder that cannot be warped is skipped by the batch
rule (one warning, a row in ``<out stem>_gpkg_skipped.csv`` naming the user's file, exit 0), and the
export fails (exit 2, one ``error:`` line, nothing written) only when nothing was exported; the
skip list of an earlier export is removed when a re-run skips nothing."""

from __future__ import annotations

import csv
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from review_helpers import make_run

from sam2elnet.cli import main

SCORES = {"a": 0.8, "b": 0.9, "c": 0.7}


def _label(path: Path, h: int = 40, w: int = 48, **geo: object) -> Path:
    """A 0/255 uint8 label GeoTIFF (nodata 127) with a 20 x 20 px square, georeferenced by
    ``geo`` (``crs`` + ``transform``, or ``gcps`` + ``crs``)."""
    lab = np.zeros((1, h, w), np.uint8)
    lab[0, h // 4 : h // 4 + h // 2, w // 4 : w // 4 + h // 2] = 255
    with rasterio.open(path, "w", driver="GTiff", height=h, width=w, count=1, dtype="uint8",
                       nodata=127, **geo) as dst:  # fmt: skip
        dst.write(lab)
    return path


def _unwarpable(folder: Path) -> dict[str, str]:
    """Three labels in ``folder`` that cannot be warped to EPSG:3857, each -> what its reason
    says: corrupt, two GCPs (3 needed), and a polar label (outside Web Mercator's area)."""
    (folder / "corrupt.tif").write_bytes(b"II*\x00" + b"not a tiff directory" * 8)
    two = [GroundControlPoint(0, 0, 28.0, 43.0), GroundControlPoint(0, 48, 28.1, 43.0)]
    _label(folder / "two_gcps.tif", gcps=two, crs=CRS.from_epsg(4326))
    _label(folder / "polar.tif", crs="EPSG:4326", transform=Affine(0.01, 0, 10, 0, -0.01, 90))
    return {
        "corrupt.tif": "cannot read raster (",
        "two_gcps.tif": "has 2 ground control points; warping needs at least 3 with a CRS",
        "polar.tif": "cannot warp to EPSG:3857 (",
    }


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_labels_that_cannot_be_warped_are_skipped_not_fatal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """Was: the first corrupt label, label with too few GCPs or label outside the target CRS's
    area stopped the whole export (exit 2; the polar one with a traceback). Now each is skipped
    with its reason in o_gpkg_skipped.csv (named by the user's path) and one warning, the others
    exported, exit 0, and a re-run without them removes the stale list."""
    run = make_run(tmp_path, SCORES)
    why = _unwarpable(run / "labels")
    out = tmp_path / "o.gpkg"
    argv = ["export", "--labels", str(run), "--out", str(out), "--warp-to", "EPSG:3857",
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err
    gdf = gpd.read_file(out, layer="labels")
    assert set(gdf["label"]) == {"a.tif", "b.tif", "c.tif"} and gdf.crs.to_epsg() == 3857
    rows = _rows(tmp_path / "o_gpkg_skipped.csv")
    assert list(rows[0]) == ["label", "reason"]
    assert {r["label"]: r["reason"] for r in rows}.keys() == {str(run / "labels" / n) for n in why}
    for r in rows:
        assert r["reason"].startswith(why[Path(r["label"]).name]), r
        assert "elnet-warp-" not in r["reason"] and str(tmp_path) not in r["reason"], r
    assert "outside the area EPSG:3857 maps" in _by_name(rows, "polar.tif")["reason"]
    warnings = [ln for ln in cap.err.splitlines() if ln.startswith("warning: skipping")]
    assert sorted(warnings) == sorted(
        f"warning: skipping {r['label']}: {r['reason']}" for r in rows
    ), cap.err
    assert (
        cap.out.strip().splitlines()[-1] == f"3 of 6 skipped, see {tmp_path / 'o_gpkg_skipped.csv'}"
    )
    # fixed (the bad labels removed) and re-run: the earlier list no longer holds
    for name in why:
        (run / "labels" / name).unlink()
    assert main(argv) == 0
    assert not (tmp_path / "o_gpkg_skipped.csv").exists()
    assert "skipped" not in capsys.readouterr().out


def _by_name(rows: list[dict[str, str]], name: str) -> dict[str, str]:
    (row,) = [r for r in rows if Path(r["label"]).name == name]
    return row


def test_nothing_warped_is_one_error_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """A folder of which no label can be warped: exit 2, one error line naming the folder and
    the reasons, no layer and no skip list (the error line is the record); an earlier
    export's list, which no longer holds, is removed (was: left in place)."""
    folder = tmp_path / "bad"
    folder.mkdir()
    _unwarpable(folder)
    out = tmp_path / "n.gpkg"
    (tmp_path / "n_skipped.csv").write_text("label,reason\nold.tif,an earlier export's\n")
    rc = main(["export", "--labels", str(folder), "--out", str(out), "--warp-to", "EPSG:3857",
               "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert rc == 2 and "Traceback" not in err, err
    assert len(errors) == 1 and errors[0].startswith(
        f"error: {folder}: nothing produced: all 3 labels could not be used ("
    ), err
    assert "2 ground control points" in errors[0] and "cannot warp to EPSG:3857" in errors[0]
    assert err.count("warning: skipping") == 3
    assert list(tmp_path.glob("n*")) == [], list(tmp_path.iterdir())
    skips = [ln for ln in err.splitlines() if ln.startswith("warning: skipping")]
    assert all(any(n in ln for ln in skips) for n in ("corrupt.tif", "polar.tif", "two_gcps.tif"))


def test_a_label_skipped_after_warping_is_named_by_the_users_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """A small label the --simplify tolerance spans whole is skipped among larger ones; with
    --warp-to the skip list and the warning named its warped copy in a temporary folder
    (/tmp/elnet-warp-.../tiny.tif), which is gone after the export. Now the user's label."""
    run = make_run(tmp_path, SCORES)
    tiny = _label(run / "labels" / "tiny.tif", h=8, w=8, crs="EPSG:32633",
                  transform=Affine(10, 0, 500000, 0, -10, 4000000))  # fmt: skip
    out = tmp_path / "t.gpkg"
    rc = main(["export", "--labels", str(run), "--out", str(out), "--warp-to", "utm",
               "--simplify", "200", "--no-progress"])  # fmt: skip
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    (row,) = _rows(tmp_path / "t_gpkg_skipped.csv")
    assert row["label"] == str(tiny)
    assert row["reason"].startswith("--simplify 200 is in the label's map units")
    assert row["reason"].endswith("the other labels are larger, so only it is skipped")
    warnings = [ln for ln in cap.err.splitlines() if ln.startswith("warning: skipping")]
    assert warnings == [f"warning: skipping {tiny}: {row['reason']}"], cap.err
    assert set(gpd.read_file(out, layer="labels")["label"]) == {"a.tif", "b.tif", "c.tif"}


def test_a_truncated_label_is_called_corrupt_and_the_fix_names_its_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """Was: a truncated label whose header opens (no georeference read from it) was skipped as
    "no georeference ... export it alone without --warp-to (... --labels t.tif ...)": it is
    corrupt, and the path dropped its folder. Now the reader's corrupt/truncated reason, and a
    label truly without georeference is told its path as given (l2/plain.tif)."""
    folder = tmp_path / "l2"
    folder.mkdir()
    utm = {"crs": "EPSG:32633", "transform": Affine(10, 0, 500000, 0, -10, 4000000)}
    _label(folder / "geo.tif", **utm)
    _label(folder / "plain.tif", h=256, w=256)
    data = (folder / "plain.tif").read_bytes()
    (folder / "t.tif").write_bytes(data[: len(data) // 2])
    out = tmp_path / "w.gpkg"
    rc = main(["export", "--labels", str(folder), "--out", str(out), "--warp-to", "EPSG:4326",
               "--no-progress"])  # fmt: skip
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    rows = {Path(r["label"]).name: r["reason"] for r in _rows(tmp_path / "w_gpkg_skipped.csv")}
    assert rows.keys() == {"plain.tif", "t.tif"}
    assert rows["t.tif"].startswith("cannot read raster (") and "truncated" in rows["t.tif"]
    assert "georeference" not in rows["t.tif"], rows
    assert rows["plain.tif"].endswith(
        f"(elnet export --labels {folder / 'plain.tif'} --out plain.gpkg) its "
        "polygons are in pixel coordinates"
    ), rows


def test_nothing_produced_without_warp_removes_an_earlier_skip_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    """Was: an export of which every label was skipped (exit 2, "nothing produced") left an
    earlier export's o_skipped.csv in place, listing files of another run. Now it is removed and
    nothing is written beside the failed --out (the error line names the files and why)."""
    folder = tmp_path / "bad"
    folder.mkdir()
    for name in ("x.tif", "y.tif"):
        (folder / name).write_bytes(b"II*\x00" + b"not a tiff directory" * 8)
    stale = tmp_path / "o_skipped.csv"
    stale.write_text("label,reason\nold.tif,an earlier export's\n")
    rc = main(["export", "--labels", str(folder), "--out", str(tmp_path / "o.gpkg"),
               "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and f"error: {folder}: nothing produced: all 2 labels" in err, err
    assert list(tmp_path.glob("o*")) == []
    assert "cannot read label raster" in err, err
