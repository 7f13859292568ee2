"""The closing error of a batch in which nothing could be used counts alike reasons once: the
images whose matched label files (``labels/a.geojson`` for ``a.png``) all fail the same way
gave the same long reason once per image on the one error line (``elnet enhance`` with a folder
of GeoJSON labels over PNG images: three copies of the RFC 7946 advice)."""

from __future__ import annotations

from pathlib import Path

from sam2elnet.utils.batch import SkipLog

WHY = "the image has no CRS but the labels are in EPSG:4326; save the layer as GeoPackage"


def test_label_files_failing_alike_are_one_reason(tmp_path: Path) -> None:
    skips = SkipLog("image")
    for s in ("a", "b", "c"):
        skips.add(tmp_path / "images" / f"{s}.png", f"{tmp_path / 'labels' / s}.geojson: {WHY}")
    err = str(skips.nothing_done(3))
    assert err.count(WHY) == 1 and f"(3 x {WHY})" in err, err
    # a reason met once keeps the file it names
    skips = SkipLog("image")
    skips.add(tmp_path / "a.png", f"{tmp_path / 'a.geojson'}: {WHY}")
    skips.add(tmp_path / "b.png", f"{tmp_path / 'b.png'}: cannot decode image")
    err = str(skips.nothing_done(2))
    assert f"({tmp_path / 'a.geojson'}: {WHY}; cannot decode image)" in err, err
