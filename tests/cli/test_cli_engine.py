"""CLI: elnet train / annotate / enhance (exit codes, messages, outputs)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from helpers_data import make_dataset

from sam2elnet.cli import main

os.environ.setdefault("SAM2ELNET_THREADS", "1")


def test_train_cli_end_to_end_and_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_dataset(tmp_path / "d", n=6)
    args = [
        "train",
        "--data",
        str(data),
        "--out",
        str(tmp_path / "r"),
        "--size",
        "micro",
        "--epochs",
        "1",
        "--batch-size",
        "2",
        "--image-size",
        "32",
        "--val-fraction",
        "0.34",
        "--fraction",
        "1.0",
        "--weights",
        "none",
        "--precision",
        "32",
        "--no-progress",
        "--tta",
        "1",
        "--report",
    ]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert "best model" in out and (tmp_path / "r" / "model.pt").is_file()
    # --report: the training report, with the validation images' names on it
    assert f"report: {tmp_path / 'r' / 'report.html'}" in out
    import json

    page = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    val = json.loads((tmp_path / "r" / "splits.json").read_text())["val"]
    assert len(val) == 2 and all(v in page for v in val)
    # --weights none: the trunk at half resolution by default, said in the log and recorded
    assert "trunk at half resolution (auto without SAM2 weights" in out
    from sam2elnet.model import load_model

    assert load_model(tmp_path / "r" / "model.pt")[0].config.trunk_scale == 2
    ann = tmp_path / "ann"
    assert main(["annotate", "--model", str(tmp_path / "r" / "model.pt"), "--images",
                 str(data / "images"), "--out", str(ann), "--no-progress"]) == 0  # fmt: skip
    assert len(list((ann / "labels").glob("*.png"))) == 6
    # 4 training + 2 validation images: too few samples to fit the quality evaluator; its
    # warning is printed once (the command used to repeat it after the summary line)
    said = [x for x in err.splitlines() if "quality evaluator" in x]
    assert len(said) == 1 and said[0].startswith(
        "warning: quality evaluator not fitted: only 12 labelled samples (need >= 16)"
    ), err
    assert "quality evaluator: too_few_samples on 12 labelled samples (4 held out, 8 from " in out
    assert "tta: 1" in (tmp_path / "r" / "config.yaml").read_text()
    assert main(args) == 2  # refuses to overwrite a run
    assert "--resume" in capsys.readouterr().err
    assert (
        main(["train", "--out", str(tmp_path / "r"), "--resume", "--no-progress"]) == 0
    )  # nothing left


def test_train_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert (
        main(
            [
                "train",
                "--data",
                str(tmp_path / "empty"),
                "--out",
                str(tmp_path / "r"),
                "--size",
                "micro",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("error:") and "empty" in err
    assert (
        main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--epochs", "0"]) == 2
    )
    assert "epochs" in capsys.readouterr().err
    bad = ["train", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--trunk-scale", "3"]
    assert main(bad) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "--trunk-scale" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_annotate_cli(
    run: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "annotate",
            "--model",
            str(run["model"]),
            "--images",
            str(run["data"] / "images"),
            "--out",
            str(tmp_path / "a"),
            "--min-quality",
            "0.0",
            "--no-progress",
            "--precision",
            "32",
        ]
    )
    assert code == 0
    assert "annotated 8 images" in capsys.readouterr().out
    assert len(list((tmp_path / "a" / "labels").glob("*.png"))) == 8
    assert not (tmp_path / "a" / "rejected").exists() or not list(
        (tmp_path / "a" / "rejected").iterdir()
    )
    code = main(
        [
            "annotate",
            "--model",
            str(run["model"]),
            "--images",
            str(run["data"] / "images"),
            "--out",
            str(tmp_path / "b"),
            "--min-quality",
            "1.01",
            "--no-progress",
        ]
    )
    assert code == 2 and "min-quality" in capsys.readouterr().err


def test_enhance_cli_missing_labels(
    run: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = tmp_path / "coarse"
    labels.mkdir()
    for p in sorted((run["data"] / "masks").glob("*.png"))[:5]:
        (labels / p.name).write_bytes(p.read_bytes())
    base = [
        "enhance",
        "--model",
        str(run["model"]),
        "--images",
        str(run["data"] / "images"),
        "--labels",
        str(labels),
        "--no-progress",
    ]
    assert main([*base, "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "3 images have no label" in err and "s07.png" in err
    assert main([*base, "--out", str(tmp_path / "e"), "--skip-missing"]) == 0
    assert len(list((tmp_path / "e" / "labels").glob("*.png"))) == 5
    assert len(list((tmp_path / "e" / "changes").glob("*.png"))) == 5


def test_cli_bad_model_and_inputs(
    run: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(run["model"].read_bytes()[:1000])
    assert (
        main(
            [
                "annotate",
                "--model",
                str(trunc),
                "--images",
                str(run["data"] / "images"),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "trunc.pt" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert (
        main(
            [
                "annotate",
                "--model",
                str(run["model"]),
                "--images",
                str(tmp_path / "empty"),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "no images" in capsys.readouterr().err
    bands = tmp_path / "bands"
    bands.mkdir()
    import rasterio

    with rasterio.open(
        bands / "x.tif", "w", driver="GTiff", width=32, height=32, count=2, dtype="uint8"
    ) as d:
        d.write(np.random.default_rng(0).integers(0, 255, (2, 32, 32), dtype=np.uint8))
    assert (
        main(
            [
                "annotate",
                "--model",
                str(run["model"]),
                "--images",
                str(bands),
                "--out",
                str(tmp_path / "o2"),
                "--no-progress",
            ]
        )
        == 2
    )
    assert "trained for 3" in capsys.readouterr().err


def _split_root(run: dict[str, Path], root: Path, coarse: bool) -> Path:
    """Generic split layout from the run's data: train/ (4 pairs) and test/ (4 pairs, coarse/)."""
    imgs = sorted((run["data"] / "images").glob("*.png"))
    for split, part in (("train", imgs[:4]), ("test", imgs[4:8])):
        for sub in ("images", "masks") + (("coarse",) if coarse and split == "test" else ()):
            (root / split / sub).mkdir(parents=True)
        for p in part:
            mask = (run["data"] / "masks" / p.name).read_bytes()
            (root / split / "images" / p.name).write_bytes(p.read_bytes())
            (root / split / "masks" / p.name).write_bytes(mask)
            if coarse and split == "test":
                (root / split / "coarse" / p.name).write_bytes(mask)
    return root


def test_enhance_cli_split(
    run: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """enhance --split picks a split's images as annotate --split does; without --labels the
    split's own coarse/ folder is used; a folder given with --labels is matched by name."""
    root = _split_root(run, tmp_path / "ds", coarse=True)
    test_names = sorted(p.name for p in (root / "test" / "images").iterdir())
    base = ["enhance", "--model", str(run["model"]), "--images", str(root), "--no-progress"]
    assert main([*base, "--split", "test", "--out", str(tmp_path / "e")]) == 0
    assert sorted(p.name for p in (tmp_path / "e" / "labels").iterdir()) == test_names
    import csv

    rows = list(csv.DictReader((tmp_path / "e" / "quality.csv").open()))
    assert sorted(Path(r["coarse"]).parent.name for r in rows) == ["coarse"] * 4
    assert {Path(r["coarse"]).parent.parent.name for r in rows} == {"test"}
    # --labels with --split: the train split's images, coarse labels from any folder by name
    rc = main(
        [*base, "--split", "train", "--labels", str(run["data"] / "masks"),
         "--out", str(tmp_path / "t")]
    )  # fmt: skip
    assert rc == 0
    train_names = sorted(p.name for p in (root / "train" / "images").iterdir())
    assert sorted(p.name for p in (tmp_path / "t" / "labels").iterdir()) == train_names
    capsys.readouterr()
    # bad inputs: one error line, exit 2
    for args, msg in (
        (["--split", "val"], "split 'val' not found; this dataset has: train, test"),
        (["--split", "train"], "hold no coarse labels (no coarse/ folder next to images/)"),
        ([], "enhance needs --labels: a folder or a vector file of coarse labels"),
        (["--split", "test", "--images", str(run["data"])], "has no split folders"),
        (["--split", "test", "--images", str(run["data"] / "images")], "no recognisable"),
    ):
        assert main([*base, *args, "--out", str(tmp_path / "bad")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and msg in err and err.count("\n") == 1, err
    assert not (tmp_path / "bad" / "labels").exists()


def test_annotate_and_enhance_share_one_declaration_of_their_job_options(capsys):
    """The shared options are declared once (cli.job_options.SHARED_JOB_OPTIONS) and both
    commands accept and document every one of them."""
    import click
    import typer

    from sam2elnet.cli.app import app
    from sam2elnet.cli.job_options import SHARED_JOB_OPTIONS

    group = typer.main.get_command(app)
    ctx = click.Context(group)
    params = {}
    for name in ("annotate", "enhance"):
        cmd = group.get_command(ctx, name)
        params[name] = {p.name: p for p in cmd.params}
    for name, _ann, _opt in SHARED_JOB_OPTIONS:
        a, e = params["annotate"][name], params["enhance"][name]
        assert a.opts == e.opts and a.help == e.help and a.default == e.default, name
    assert "labels" in params["enhance"] and "labels" not in params["annotate"]
    assert {"split", "model", "images", "out"} <= set(params["annotate"]) & set(params["enhance"])


def test_enhance_cli_coarse_rule_options(
    run: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--new-objects / --max-growth: recorded in summary.json; bad values: one error line, exit 2."""
    import json

    labels = tmp_path / "coarse"
    labels.mkdir()
    for p in sorted((run["data"] / "masks").glob("*.png"))[:2]:
        (labels / p.name).write_bytes(p.read_bytes())
    base = ["enhance", "--model", str(run["model"]), "--images", str(run["data"] / "images"),
            "--labels", str(labels), "--skip-missing", "--no-progress"]  # fmt: skip
    assert main([*base, "--out", str(tmp_path / "e"), "--new-objects", "keep",
                 "--max-growth", "3"]) == 0  # fmt: skip
    rule = json.loads((tmp_path / "e" / "summary.json").read_text())["coarse_rule"]
    assert (rule["new_objects"], rule["max_growth_px"]) == ("keep", 3.0)
    capsys.readouterr()
    for args, msg in (
        (["--new-objects", "maybe"], "--new-objects"),
        (["--max-growth", "-1"], "--max-growth"),
    ):
        assert main([*base, *args, "--out", str(tmp_path / "bad")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error:") and msg in err and err.count("\n") == 1, err
    assert not (tmp_path / "bad").exists()


def test_enhance_refuses_images_given_as_labels(
    run: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--labels naming the images folder (or a folder of images) was accepted and each image
    "enhanced" with itself (or a grey image thresholded) as its coarse label: nonsense, silently.
    Now one error line naming the folder and what --labels expects, before the model loads."""
    import cv2

    images = run["data"] / "images"
    expected = (
        "--labels expects coarse labels: masks (one band, or bands that agree: 0/255, 0/1 or "
        "class values) or vector files (GeoJSON/GPKG/SHP) named like the images, or one vector "
        "file\n"
    )
    copies, grey = tmp_path / "copies", tmp_path / "grey"
    copies.mkdir()
    grey.mkdir()
    rng = np.random.default_rng(0)
    for p in sorted(images.glob("*.png")):
        (copies / p.name).write_bytes(p.read_bytes())
        sar = rng.normal(120, 40, cv2.imread(str(p), cv2.IMREAD_GRAYSCALE).shape)
        cv2.imwrite(str(grey / p.name), sar.clip(0, 255).astype(np.uint8))
    colour = tmp_path / "colour"  # other colour images, named like the images
    colour.mkdir()
    dn = tmp_path / "dn"  # uint16 SAR GeoTIFFs (DNs): the old 8-bit grey rule let them through
    dn.mkdir()
    for p in sorted(images.glob("*.png")):
        cv2.imwrite(str(colour / p.name), rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
        sar16 = rng.gamma(1.5, 400.0, (40, 40)).astype(np.uint16)
        assert cv2.imwrite(str(dn / f"{p.stem}.tif"), sar16)
    for labels, why in (
        (images, "is the --images folder: each image would be its own coarse label; "),
        (copies, "holds copies of the --images files, not coarse labels (s00.png is "
         f"byte-identical to {images / 's00.png'}); "),
        (colour, "holds images, not coarse labels (s00.png: 3 bands that differ, a colour "
         "image); "),
        (grey, "holds images, not coarse labels (s00.png: continuous greys, "),
        (dn, "holds images, not coarse labels (s00.tif: continuous uint16 values, "),
    ):  # fmt: skip
        out = tmp_path / "e"
        args = ["enhance", "--model", str(run["model"]), "--images", str(images)]
        rc = main([*args, "--labels", str(labels), "--out", str(out), "--no-progress"])
        err = capsys.readouterr().err
        assert rc == 2, err
        assert err.startswith(f"error: {labels}: {why}") and err.endswith(expected), err
        assert err.count("\n") == 1 and not out.exists()
    # the dataset's own masks are labels
    out = tmp_path / "ok"
    masks = run["data"] / "masks"
    args = ["enhance", "--model", str(run["model"]), "--images", str(images), "--labels"]
    assert main([*args, str(masks), "--out", str(out), "--no-progress"]) == 0


def test_train_road_buffer_reaches_the_validation_road_measures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``elnet train --road-buffer`` (as ``elnet evaluate``'s): the validation road measures
    use it (they used a fixed 3 px) and config.yaml records it; a bad value is one error line."""
    from helpers_roads import make_road_dataset, record_road_buffers

    buffers = record_road_buffers(monkeypatch)
    data = make_road_dataset(tmp_path / "roads", n=6, size=48)
    out = tmp_path / "r"
    args = ["train", "--data", str(data), "--size", "micro", "--epochs", "1", "--image-size"]
    args += ["32", "--batch-size", "2", "--weights", "none", "--no-quality", "--no-progress"]
    assert main([*args, "--out", str(out), "--domain", "roads", "--road-buffer", "6.5"]) == 0
    assert buffers and set(buffers) == {6.5}
    assert "road_buffer: 6.5" in (out / "config.yaml").read_text()
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "bad"), "--road-buffer", "101"]) == 2
    assert capsys.readouterr().err == (
        "error: invalid value for --road-buffer: 101.0 (input should be less than or equal to "
        "100; allowed: 0 < x <= 100)\n"
    )
