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


def test_write_csv_is_the_one_writer_of_a_skip_list(tmp_path: Path) -> None:
    """Columns: the item, the extra ones given to add (train's pair id), reason; written whole
    (no temporary file left); an empty log removes an earlier run's list and returns None."""
    import csv

    skips = SkipLog("image")
    skips.add(tmp_path / "a.png", f"{tmp_path / 'a.png'}: cannot decode image", id="a")
    skips.add(tmp_path / "b.png", "truncated", id="b")
    path = tmp_path / "run" / "skipped.csv"
    path.parent.mkdir()
    assert skips.write_csv(path) == path
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows == [
        ["image", "id", "reason"],
        [str(tmp_path / "a.png"), "a", "cannot decode image"],
        [str(tmp_path / "b.png"), "b", "truncated"],
    ]
    assert sorted(p.name for p in path.parent.iterdir()) == ["skipped.csv"]
    assert SkipLog("image").write_csv(path) is None and not path.exists()
    assert SkipLog("label").write_csv(path) is None  # nothing there: nothing to remove


def test_many_files_of_one_reason_are_one_summary_warning(tmp_path: Path, caplog) -> None:
    """A warning each for the first WARN_EACH files of a reason; the others of that reason are
    counted and named in one warning when the list is written (or the batch fails), another
    reason gets its own warnings."""
    import logging

    from sam2elnet.utils.batch import WARN_EACH

    caplog.set_level(logging.WARNING, logger="sam2elnet.utils.batch")
    skips = SkipLog("image")
    for k in range(7):
        skips.add(tmp_path / f"i{k}.png", f"{tmp_path / f'i{k}.png'}: {WHY}")
    skips.add(tmp_path / "x.png", "cannot decode image")
    said = [r.getMessage() for r in caplog.records]
    assert said == [f"skipping {tmp_path / f'i{k}.png'}: {WHY}" for k in range(WARN_EACH)] + [
        f"skipping {tmp_path / 'x.png'}: cannot decode image"
    ]
    csv = skips.write_csv(tmp_path / "out" / "skipped.csv")
    assert csv is not None and len(csv.read_text().splitlines()) == 1 + 8
    summary = [r.getMessage() for r in caplog.records][len(said) :]
    assert summary == [
        f"skipping 4 more images for the reason given above ({WHY}): i3.png, i4.png, "
        f"i5.png (+1); all listed in {csv}"
    ]
    caplog.clear()
    for k in range(5):  # a batch that fails: said before its error line, no list named
        skips.add(tmp_path / f"j{k}.png", "cannot decode image")
    skips.nothing_done(13)
    assert [r.getMessage() for r in caplog.records][-1] == (
        "skipping 3 more images for the reason given above (cannot decode image): j2.png, "
        "j3.png, j4.png"
    )


def test_unlabelled_skips_adds_the_rows_itself(tmp_path: Path, caplog) -> None:
    """enhance and refine --skip-missing: the images without a coarse label go into the job's
    own skip list (no warning each) and one note names them."""
    import logging

    from sam2elnet.utils.batch import unlabelled_skips

    skips = SkipLog("image")
    skips.add(tmp_path / "bad.png", "cannot decode image", warn=False)
    missing = [tmp_path / f"m{i}.png" for i in range(7)]
    with caplog.at_level(logging.WARNING):
        note = unlabelled_skips(skips, missing, 9, "coarse/")
    assert not caplog.records
    assert skips.rows()[1:] == [
        {"image": str(m), "reason": "no coarse label in coarse/"} for m in missing
    ]
    assert note == (
        "7 of 9 images have no coarse label in coarse/ and were skipped (--skip-missing): "
        "m0.png, m1.png, m2.png, m3.png, m4.png (+2)"
    )
    empty = SkipLog("image")
    assert unlabelled_skips(empty, [], 3, "coarse/") is None and len(empty) == 0


def test_other_reasons_are_counted_in_words(tmp_path: Path) -> None:
    """The reasons past the first three: '1 other reason' (it said '1 other reason(s)')."""
    for n, words in ((4, "1 other reason"), (5, "2 other reasons")):
        skips = SkipLog("image")
        for i in range(n):
            skips.add(tmp_path / f"{i}.png", f"reason number {i}", warn=False)
        assert skips.reasons().endswith(f"; {words}"), skips.reasons()


def test_one_image_without_a_coarse_label_in_words(tmp_path: Path) -> None:
    """One image of one / of two: '1 of 1 image has ... and was skipped' (it said '1 of 1
    images have ... and were skipped')."""
    from sam2elnet.utils.batch import unlabelled_skips

    one = [tmp_path / "a.png"]
    assert unlabelled_skips(SkipLog("image"), one, 1, "coarse/") == (
        "1 of 1 image has no coarse label in coarse/ and was skipped (--skip-missing): a.png"
    )
    assert unlabelled_skips(SkipLog("image"), one, 2, "coarse/") == (
        "1 of 2 images has no coarse label in coarse/ and was skipped (--skip-missing): a.png"
    )
    two = [tmp_path / "a.png", tmp_path / "b.png"]
    assert unlabelled_skips(SkipLog("image"), two, 2, "coarse/") == (
        "2 of 2 images have no coarse label in coarse/ and were skipped (--skip-missing): "
        "a.png, b.png"
    )


def test_an_old_list_name_that_is_another_outputs_list_is_left(tmp_path: Path) -> None:
    """``elnet evaluate --csv w.csv`` lists its skipped pairs in ``w_evaluate_skipped.csv``,
    the old name (``<csv stem>_skipped.csv``) of ``--csv w_evaluate.csv``'s list. Was:
    evaluating to ``w_evaluate.csv`` removed ``w.csv``'s list as its own older one. Now an old
    name that another output's list has now is left; an old list of no other name still goes."""
    from sam2elnet.engine.eval_result import skipped_list

    skips = SkipLog("file")
    theirs = skipped_list(tmp_path / "w.csv").write(_one_skipped(skips))
    assert theirs == tmp_path / "w_evaluate_skipped.csv"
    before = theirs.read_text()
    ours = skipped_list(tmp_path / "w_evaluate.csv")
    assert ours.write(SkipLog("file")) is None and ours.drop_old() is None
    ours.drop()
    assert theirs.read_text() == before
    old = tmp_path / "v_skipped.csv"  # v.csv's list of the old name: removed as before
    old.write_text(before)
    assert skipped_list(tmp_path / "v.csv").drop_old() == old and not old.exists()


def _one_skipped(skips: SkipLog) -> SkipLog:
    skips.add("x.png", "cannot decode image", warn=False)
    return skips
