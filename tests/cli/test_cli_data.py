"""CLI: elnet stats / synth / degrade, including the one-line error contract (exit 2)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from helpers_data import (
    blob_mask,
    grey_rgb,
    make_generic,
    make_sos,
    shared,
    write_png,
    write_tif,
)

from sam2elnet.cli import main


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err, err
    return err


def test_stats_sos_layout(tmp_path, capsys):
    root = make_sos(tmp_path / "sos")
    out = tmp_path / "stats.json"
    assert main(["stats", "--data", str(root), "--no-progress", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "layout: sos" in text and "split=train  sensor=palsar" in text and "pairs=3" in text
    payload = json.loads(out.read_text())
    assert payload["pairs"]["test/sentinel"] == 2 and payload["normalization"]["bands"] == 1
    from sam2elnet.data.normalize import NormalizationConfig

    assert NormalizationConfig.model_validate(payload["normalization"]).method == "stats"


def test_stats_verbose_lists_unmatched(tmp_path, capsys):
    root = make_generic(tmp_path / "g", n=2)
    write_png(root / "images" / "lonely.png", grey_rgb(32))
    assert main(["stats", "--data", str(root), "--no-progress", "--verbose"]) == 0
    text = capsys.readouterr().out
    assert "unmatched files: 1" in text and "lonely.png" in text


def test_synth_and_degrade(tmp_path, capsys):
    out = tmp_path / "syn"
    assert (
        main(
            [
                "synth",
                "--task",
                "road",
                "--count",
                "3",
                "--size",
                "48",
                "--out",
                str(out),
                "--seed",
                "0",
                "--no-progress",
            ]
        )
        == 0
    )
    assert len(list((out / "coarse").glob("*.png"))) == 3 and (out / "dataset.json").is_file()
    deg = tmp_path / "deg"
    args = [
        "degrade",
        "--masks",
        str(out / "masks"),
        "--out",
        str(deg),
        "--profile",
        "mixed",
        "--severity",
        "0.5",
        "--seed",
        "0",
        "--no-progress",
    ]
    assert main(args) == 0
    rows = list(csv.DictReader((deg / "coarse_iou.csv").open()))
    assert len(rows) == 3 and "mean IoU" in capsys.readouterr().out
    # the held-out (evaluation-only) family is available to degrade, and so is every other
    # profile by name, e.g. wavy (which mixed never draws)
    for profile in ("freehand", "wavy"):
        args[args.index("--out") + 1] = str(deg := tmp_path / profile)
        args[args.index("--profile") + 1] = profile
        assert main(args) == 0
        rows = list(csv.DictReader((deg / "coarse_iou.csv").open()))
        assert len(rows) == 3 and all(r["ops"].startswith(f"{profile}(") for r in rows)


@pytest.mark.parametrize(
    ("setup", "args", "needle"),
    [
        ("missing", ["stats", "--data", "{d}/nope"], "does not exist"),
        ("empty", ["stats", "--data", "{d}/empty"], "empty"),
        ("junk", ["stats", "--data", "{d}/junk"], "no recognisable dataset layout"),
        ("corrupt", ["stats", "--data", "{d}/corrupt"], "cannot decode"),
        ("bands", ["stats", "--data", "{d}/bands"], "band count"),
        ("missing", ["degrade", "--masks", "{d}/nope", "--out", "{d}/o"], "does not exist"),
        (
            "missing",
            ["degrade", "--masks", "{d}", "--out", "{d}/o", "--profile", "wobbly"],
            "profile",
        ),
        ("missing", ["synth", "--task", "lake", "--out", "{d}/s"], "task"),
    ],
)
def test_bad_input_is_one_line_error_exit_2(tmp_path, capsys, setup, args, needle):
    if setup == "empty":
        (tmp_path / "empty").mkdir()
    elif setup == "junk":
        (tmp_path / "junk").mkdir()
        (tmp_path / "junk" / "notes.txt").write_text("x")
    elif setup == "corrupt":
        root = make_generic(tmp_path / "corrupt", n=1)
        (root / "images" / "img0.png").write_bytes(b"\x89PNG broken")
    elif setup == "bands":
        from helpers_data import write_tif

        write_tif(tmp_path / "bands" / "images" / "a.tif", np.zeros((20, 8, 8), np.uint8))
        write_png(tmp_path / "bands" / "masks" / "a.png", np.zeros((8, 8), np.uint8))
    else:
        write_png(tmp_path / "m.png", blob_mask(16).astype(np.uint8) * 255)
    rc = main([a.format(d=tmp_path) for a in args] + ["--no-progress"])
    assert rc == 2
    err = _err(capsys)
    assert needle in err


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_stats_check_skips_bad_pairs_and_uses_the_rest(tmp_path, capsys):
    """--check: a truncated image, a mask of another size and a truncated GeoTIFF mask skip their
    pairs (a warning each, listed in --out); the statistics are those of the one good pair."""
    import shutil

    from sam2elnet.data.stats import dataset_stats

    root = make_generic(tmp_path / "g", n=4, size=32)
    good = make_generic(tmp_path / "only2", n=0)
    for sub in ("images", "masks"):  # the expected statistics: img2 alone
        (good / sub).mkdir(parents=True)
        shutil.copy(root / sub / "img2.png", good / sub / "img2.png")
    argv = ["stats", "--data", str(root), "--check", "--no-progress"]
    assert main(argv) == 0 and "all pairs read and have matching sizes" in capsys.readouterr().out
    _truncate(root / "images" / "img0.png")
    write_png(root / "masks" / "img1.png", np.zeros((16, 16), np.uint8))
    (root / "masks" / "img3.png").unlink()
    write_tif(root / "masks" / "img3.tif", np.zeros((1, 32, 32), np.uint8), georef=False)
    _truncate(root / "masks" / "img3.tif")
    out = tmp_path / "stats.json"
    assert main([*argv, "--out", str(out)]) == 0
    cap = capsys.readouterr()
    warned = [
        ln.removeprefix("warning: skipping ").partition(": ")
        for ln in cap.err.splitlines()
        if ln.startswith("warning: skipping ")
    ]
    files = [str(root / "images" / "img0.png"), str(root / "masks" / "img1.png"),
             str(root / "masks" / "img3.tif")]  # fmt: skip
    assert [w[0] for w in warned] == files
    warned = [w[2] for w in warned]
    assert "cannot decode image" in warned[0] and "(16, 16) differs from image" in warned[1]
    assert "cannot read raster" in warned[2]
    assert cap.out.splitlines()[-1] == f"3 of 4 skipped, see {out}"
    payload = json.loads(out.read_text())
    assert payload["images_used"] == 1 and payload["n_skipped"] == 3
    assert [s["file"] for s in payload["skipped"]] == files
    expected = dataset_stats(good, progress=False).payload()["normalization"]
    assert payload["normalization"] == json.loads(json.dumps(expected))


def test_stats_check_with_no_usable_pair_is_one_error(tmp_path, capsys):
    root = make_generic(tmp_path / "g", n=2, size=32)
    for i in range(2):
        _truncate(root / "images" / f"img{i}.png")
    out = tmp_path / "stats.json"
    argv = ["stats", "--data", str(root), "--check", "--no-progress", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("warning: skipping") == 2
    last = err.strip().splitlines()[-1]
    assert [ln for ln in err.splitlines() if ln.startswith("error:")] == [last]
    assert last.startswith(f"error: {root}: nothing produced: all 2 files could not be used (")
    assert "cannot decode image" in last and not out.exists()


def test_stats_without_check_skips_unreadable_images(tmp_path, capsys):
    """Without --check an image that cannot be read no longer stops the command at the first
    one: it is skipped (a warning each, listed in --out, 'N of M skipped' last line) and the
    statistics are those of the other pairs; nothing readable is one error line, exit 2."""
    import shutil

    from sam2elnet.data.stats import dataset_stats

    root = make_generic(tmp_path / "g", n=3, size=32)
    good = make_generic(tmp_path / "only2", n=0)
    for sub in ("images", "masks"):  # the expected statistics: img2 alone
        (good / sub).mkdir(parents=True)
        shutil.copy(root / sub / "img2.png", good / sub / "img2.png")
    for i in (0, 1):
        (root / "images" / f"img{i}.png").write_bytes(b"\x89PNG broken")
    out = tmp_path / "stats.json"
    assert main(["stats", "--data", str(root), "--no-progress", "--out", str(out)]) == 0
    cap = capsys.readouterr()
    skipped = [ln for ln in cap.err.splitlines() if ln.startswith("warning: skipping ")]
    files = [str(root / "images" / f"img{i}.png") for i in (0, 1)]
    assert [ln.removeprefix("warning: skipping ").partition(": ")[0] for ln in skipped] == files
    assert all("cannot decode image" in ln for ln in skipped)
    assert cap.out.splitlines()[-1] == f"2 of 3 skipped, see {out}"
    assert "all pairs read" not in cap.out  # said only when --check verified them
    payload = json.loads(out.read_text())
    assert payload["images_used"] == 1 and payload["n_skipped"] == 2
    assert [s["file"] for s in payload["skipped"]] == files
    expected = dataset_stats(good, progress=False).payload()["normalization"]
    assert payload["normalization"] == json.loads(json.dumps(expected))

    (root / "images" / "img2.png").write_bytes(b"")
    out.unlink()
    assert main(["stats", "--data", str(root), "--no-progress", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("warning: skipping") == 3
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert errors == [err.strip().splitlines()[-1]] and not out.exists()
    assert "nothing produced: all 3 files could not be used (" in errors[0]


def test_verify_pairs_batch_mode_skips(tmp_path, caplog):
    from sam2elnet.data.datasets import discover
    from sam2elnet.data.pair_sizes import verify_pairs
    from sam2elnet.errors import DataError

    root = make_generic(tmp_path / "g", n=3, size=32)
    write_png(root / "masks" / "img1.png", np.zeros((16, 16), np.uint8))
    samples = discover(root).samples
    with pytest.raises(DataError, match="img1"):
        verify_pairs(samples)
    good = verify_pairs(samples, strict=False)
    assert [s.id for s in good] == ["img0", "img2"] and "skipping" in caplog.text


def test_size_mismatch_error_names_both_files(tmp_path, capsys):
    from sam2elnet.data.datasets import SegmentationDataset, discover
    from sam2elnet.data.normalize import NormalizationConfig
    from sam2elnet.errors import DataError

    root = make_generic(tmp_path / "g", n=1, size=32)
    write_png(root / "masks" / "img0.png", np.zeros((16, 16), np.uint8))
    with pytest.raises(DataError) as err:
        SegmentationDataset(discover(root).samples, NormalizationConfig(), size=16)[0]
    assert "masks/img0.png" in str(err.value) and "images/img0.png" in str(err.value)


def test_stats_on_real_sos(capsys):
    sos = shared("sos-dev")
    assert (
        main(
            [
                "stats",
                "--data",
                str(sos),
                "--sensor",
                "palsar",
                "--max-images",
                "5",
                "--no-progress",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "pairs: 200" in text and "sensor=palsar" in text and "band 0" in text


def test_degrade_nothing_produced_replaces_an_earlier_skip_list(tmp_path, capsys):
    """Was: a degrade run whose every mask was skipped (exit 2) left an earlier run's
    OUT/skipped.csv in place, listing files of another run. Now this run's list (why nothing
    came out) replaces it; a folder the run created is still removed (nothing written)."""
    masks = tmp_path / "masks"
    masks.mkdir()
    for name in ("a.png", "b.png"):
        (masks / name).write_bytes(b"\x89PNG broken")
    out = tmp_path / "deg"
    out.mkdir()
    stale = out / "skipped.csv"
    stale.write_text("image,reason\nold.png,an earlier run's\n")
    argv = ["degrade", "--masks", str(masks), "--out", str(out), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "nothing produced: all 2 " in err
    assert err.rstrip().endswith(f"and re-run (listed with the reasons in {stale})"), err
    assert sorted(p.name for p in out.iterdir() if p.name != ".elnet.lock") == ["skipped.csv"]
    rows = list(csv.DictReader(stale.open(newline="")))
    assert [Path(r[next(iter(r))]).name for r in rows] == ["a.png", "b.png"], rows
    assert all("cannot decode" in r["reason"] for r in rows), rows
    fresh = tmp_path / "fresh"
    assert main([*argv[:4], str(fresh), "--no-progress"]) == 2
    assert not fresh.exists() or not any(fresh.iterdir())
    assert capsys.readouterr().err.rstrip().endswith("fix or remove the files and re-run")
