"""--no-progress: long commands still print one line per epoch / stage / half minute."""

from __future__ import annotations

import logging
import os
import re
import sys

os.environ.setdefault("SAM2ELNET_THREADS", "1")

import numpy as np
import pytest
from helpers_data import trained_run, write_png, write_tif

from sam2elnet.utils.progress import LOGGER_NAME, ProgressLines, progress_bar


def test_progress_lines_periodic_and_final(caplog):
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        bar = progress_bar(3, "annotate", "img", enabled=False, every_s=0.0)
        assert isinstance(bar, ProgressLines)
        bar.update(1)
        bar.set_postfix(kept=1, skipped=0)
        bar.update(1)
        bar.update(1)  # the last item: only the final line
        bar.close()
        bar.close()  # idempotent
    msgs = [r.getMessage() for r in caplog.records if r.name == LOGGER_NAME]
    assert len(msgs) == 3
    assert msgs[0].startswith("annotate: 1/3 img after ")
    assert msgs[1].startswith("annotate: 2/3 img after ") and msgs[1].endswith("kept 1, skipped 0")
    assert msgs[2].startswith("annotate: 3/3 img in ") and "img/s" in msgs[2]
    quiet = progress_bar(5, "x", enabled=False)  # default: a line every 30 s, so none here
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        caplog.clear()
        quiet.update(2)
    assert not caplog.records


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory):
    """The shared micro model, trained (if no earlier test did) before ``capsys`` starts: the
    training's own progress lines never mix with the lines the test checks."""
    return trained_run(tmp_path_factory)["model"]


def test_annotate_and_scene_no_progress_print_lines(model, tmp_path, capsys):
    from sam2elnet.cli import main

    rng = np.random.default_rng(0)
    for i in range(3):
        write_png(tmp_path / "img" / f"a{i}.png", rng.integers(0, 255, (40, 40, 3), np.uint8))
    rc = main(
        ["annotate", "--model", str(model), "--images", str(tmp_path / "img"),
         "--out", str(tmp_path / "ann"), "--no-progress"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    lines = [ln for ln in out.splitlines() if ln.startswith("annotate: ")]
    assert len(lines) == 1 and lines[0].startswith("annotate: 3/3 img in ")
    assert lines[0].endswith("kept 3, skipped 0")
    scene = write_tif(tmp_path / "scene.tif", rng.integers(0, 255, (3, 96, 96)).astype(np.uint8))
    rc = main(
        ["scene", "--model", str(model), "--image", str(scene), "--out", str(tmp_path / "s.tif"),
         "--tile", "64", "--overlap", "16", "--no-progress"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    assert any(ln.startswith("scene.tif: 4/4 win in ") for ln in out.splitlines()), out


def test_annotate_into_a_log_file_prints_lines_not_a_bar(model, tmp_path, capsys, monkeypatch):
    """Without --no-progress, stderr not a terminal (``elnet annotate ... > run.log 2>&1`` on a
    cluster): the stage line, no tqdm bar redrawn with ``\\r`` into the log; on a terminal the bar.
    Found in a cluster user trial: the bar's redraws went into the job's log file."""
    from sam2elnet.cli import main

    rng = np.random.default_rng(0)
    for i in range(3):
        write_png(tmp_path / "img" / f"a{i}.png", rng.integers(0, 255, (40, 40, 3), np.uint8))
    args = ["annotate", "--model", str(model), "--images", str(tmp_path / "img")]
    assert main([*args, "--out", str(tmp_path / "log")]) == 0
    cap = capsys.readouterr()
    assert "\r" not in cap.err and "img/s]" not in cap.err, cap.err
    lines = [ln for ln in cap.out.splitlines() if ln.startswith("annotate: ")]
    assert len(lines) == 1 and lines[0].startswith("annotate: 3/3 img in "), cap.out
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # a terminal: the bar, no line
    assert main([*args, "--out", str(tmp_path / "tty")]) == 0
    cap = capsys.readouterr()
    assert "annotate: 100%" in cap.err and "3/3 [" in cap.err, cap.err
    assert not any(ln.startswith("annotate: 3/3 img in ") for ln in cap.out.splitlines())


def test_export_no_progress_prints_a_line_per_stage(tmp_path, capsys):
    """export --no-progress (polygons, chips): one line per stage instead of a silent run."""
    from sam2elnet.cli import main

    lab = np.zeros((1, 40, 40), np.uint8)
    lab[0, 5:20, 5:20] = 255
    for i in range(2):
        write_tif(tmp_path / "labels" / f"l{i}.tif", lab)
    rc = main(["export", "--labels", str(tmp_path / "labels"), "--out", str(tmp_path / "p.gpkg"),
               "--no-progress"])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    assert any(ln.startswith("polygonise: 2/2 labels in ") for ln in out.splitlines()), out


def test_export_progress_line_counts_the_skipped_labels(tmp_path, capsys):
    """Was: an export of 3 labels of which one cannot be read closed with ``polygonise: 2/2
    label in ...``, as if nothing was skipped. Now the line counts every label and says how
    many were skipped, as annotate's and evaluate's do: ``polygonise: 3/3 labels in ...,
    skipped 1``; none skipped, no count (``polygonise: 2/2 labels in ... (... label/s)``)."""
    import re

    from sam2elnet.cli import main

    lab = np.zeros((1, 40, 40), np.uint8)
    lab[0, 5:20, 5:20] = 255
    for i in range(2):
        write_tif(tmp_path / "labels" / f"l{i}.tif", lab)
    (tmp_path / "labels" / "l2.tif").write_bytes(b"not a raster")
    rc = main(["export", "--labels", str(tmp_path / "labels"), "--out", str(tmp_path / "p.gpkg"),
               "--no-progress"])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    lines = [ln for ln in out.splitlines() if ln.startswith("polygonise: ")]
    assert len(lines) == 1, out
    assert re.fullmatch(r"polygonise: 3/3 labels in [\d.]+ s \([\d.]+ label/s\), skipped 1",
                        lines[0]), lines  # fmt: skip
    (tmp_path / "labels" / "l2.tif").unlink()
    assert main(["export", "--labels", str(tmp_path / "labels"), "--out", str(tmp_path / "p.gpkg"),
                 "--no-progress"]) == 0  # fmt: skip
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("polygonise: ")]
    assert re.fullmatch(r"polygonise: 2/2 labels in [\d.]+ s \([\d.]+ label/s\)", lines[0]), lines


def _ls_task(name: str) -> dict:
    """A reviewed Label Studio task: one polygon on a 20x30 px image (size in the annotation)."""
    region = {"type": "polygonlabels", "original_height": 20, "original_width": 30,
              "value": {"points": [[10, 10], [60, 10], [60, 60]], "polygonlabels": ["oil"]}}  # fmt: skip
    return {"data": {"image": f"/data/local-files/?d={name}.png"},
            "annotations": [{"id": 1, "result": [region]}]}  # fmt: skip


def _labels(folder, n: int) -> None:
    lab = np.zeros((1, 40, 40), np.uint8)
    lab[0, 5:20, 5:20] = 255
    for i in range(n):
        write_tif(folder / f"l{i}.tif", lab)


def test_import_and_coco_export_no_progress_print_a_line(tmp_path, capsys):
    """import (label-studio, coco) and export --format coco with --no-progress: one line each,
    in tasks / images / labels out of the known total (they printed nothing)."""
    import json

    from sam2elnet.cli import main

    _labels(tmp_path / "labels", 3)
    coco = tmp_path / "c.json"
    rc = main(["export", "--labels", str(tmp_path / "labels"), "--out", str(coco),
               "--format", "coco", "--no-progress"])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    assert any(ln.startswith("coco: 3/3 labels in ") for ln in out.splitlines()), out
    rc = main(["import", str(coco), "--from", "coco", "--out", str(tmp_path / "m"),
               "--no-progress"])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    assert any(ln.startswith("import: 3/3 img in ") for ln in out.splitlines()), out
    ls = tmp_path / "ls.json"
    ls.write_text(json.dumps([_ls_task("a"), _ls_task("b")]))
    rc = main(["import", str(ls), "--from", "label-studio", "--out", str(tmp_path / "m2"),
               "--no-progress"])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0 and len(list((tmp_path / "m2").glob("*.png"))) == 2
    assert any(ln.startswith("import: 2/2 tasks in ") for ln in out.splitlines()), out


def test_import_and_coco_export_bars_have_units_and_totals(tmp_path, capsys, monkeypatch):
    """With the bar on: 'task' / 'img' / 'label' units and the total (were 'it', COCO no total)."""
    import json

    from sam2elnet.cli import main

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # bars are drawn on terminals
    _labels(tmp_path / "labels", 2)
    coco = tmp_path / "c.json"
    assert main(["export", "--labels", str(tmp_path / "labels"), "--out", str(coco),
                 "--format", "coco"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert "coco: " in err and "/2 [" in err and "label/s]" in err and "it/s" not in err, err
    assert main(["import", str(coco), "--from", "coco", "--out", str(tmp_path / "m")]) == 0
    err = capsys.readouterr().err
    assert "import: " in err and "/2 [" in err and "img/s]" in err and "it/s" not in err, err
    ls = tmp_path / "ls.json"
    ls.write_text(json.dumps([_ls_task("a"), _ls_task("b"), _ls_task("c")]))
    assert main(["import", str(ls), "--from", "label-studio", "--out", str(tmp_path / "m2")]) == 0
    err = capsys.readouterr().err
    assert "import: " in err and "/3 [" in err and "task/s]" in err and "it/s" not in err, err


def test_check_data_no_progress_prints_one_line(tmp_path, caplog):
    """elnet train's data check (minutes on SOS) prints its one line with --no-progress."""
    from sam2elnet.data.layouts import Sample
    from sam2elnet.data.normalize import NormalizationConfig
    from sam2elnet.engine.train_checks import check_pairs

    rng = np.random.default_rng(0)
    samples = []
    for i in range(3):
        img, msk = tmp_path / f"a{i}.png", tmp_path / f"a{i}_mask.png"
        write_png(img, rng.integers(0, 255, (32, 32, 3), np.uint8))
        write_png(msk, (rng.random((32, 32)) > 0.5).astype(np.uint8) * 255)
        samples.append(Sample(id=f"a{i}", image=img, mask=msk))
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        skips = check_pairs(samples, NormalizationConfig.for_modality("optical"), progress=False)
    assert not skips.items
    msgs = [r.getMessage() for r in caplog.records if r.name == LOGGER_NAME]
    assert len(msgs) == 1 and msgs[0].startswith("check data: 3/3 pairs in ")


def test_only_utils_progress_asks_whether_stderr_is_a_terminal():
    """One rule for bar or lines (:func:`sam2elnet.utils.progress.bar_wanted`): a command passes
    ``progress=not no_progress`` and never tests the terminal itself (elnet evaluate did, a
    second copy of the rule)."""
    from pathlib import Path

    import sam2elnet

    root = Path(sam2elnet.__file__).parent
    askers = sorted(
        str(p.relative_to(root)) for p in root.rglob("*.py") if "isatty" in p.read_text()
    )
    assert askers == ["utils/progress.py"]


def test_evaluate_draws_a_bar_on_a_terminal_and_lines_into_a_log(tmp_path, capsys, monkeypatch):
    """elnet evaluate without --no-progress: the bar on a terminal (no closing line), the
    closing 'evaluate: 2/2 img in ...' line when stderr is a log file or a pipe."""
    from sam2elnet.cli import main

    mask = np.zeros((32, 32), np.uint8)
    mask[4:20, 4:20] = 255
    for i in range(2):
        write_png(tmp_path / "pred" / f"{i}_pred.png", mask)
        write_png(tmp_path / "truth" / f"{i}_mask.png", mask)
    args = ["evaluate", "--pred", str(tmp_path / "pred"), "--truth", str(tmp_path / "truth")]
    assert main(args) == 0
    cap = capsys.readouterr()
    assert "\r" not in cap.err and "img/s]" not in cap.err, cap.err
    assert [ln for ln in cap.out.splitlines() if ln.startswith("evaluate: 2/2 img in ")], cap.out
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main(args) == 0
    cap = capsys.readouterr()
    assert "evaluate: 100%" in cap.err and "2/2 [" in cap.err, cap.err
    assert not any(ln.startswith("evaluate: 2/2 img in ") for ln in cap.out.splitlines())


def _closing(out: str, desc: str) -> list[str]:
    """The lines of stage ``desc`` (``coco: ...``) in ``out``."""
    return [ln for ln in out.splitlines() if ln.startswith(f"{desc}: ")]


def _one_label_unreadable(tmp_path) -> tuple[str, str]:
    """3 PNG labels (l0..l2) with their images; l2 truncated. (labels, images) folders."""
    lab = np.zeros((40, 40), np.uint8)
    lab[5:20, 5:20] = 255
    img = np.random.default_rng(0).integers(0, 255, (40, 40, 3), np.uint8)
    for i in range(3):
        write_png(tmp_path / "labels" / f"l{i}.png", lab)
        write_png(tmp_path / "images" / f"l{i}.png", img)
    bad = tmp_path / "labels" / "l2.png"
    bad.write_bytes(bad.read_bytes()[:40])  # truncated: skipped by the export's screen
    return str(tmp_path / "labels"), str(tmp_path / "images")


def _skipped_1(desc: str, unit: str, n: int = 3) -> str:
    """The closing line's pattern: ``desc: n/n pairs in ... (... pair/s), skipped 1`` (``img``
    stays: an abbreviation, ``utils.progress.ABBREVIATED_UNITS``)."""
    noun = unit if unit == "img" else unit + "s"
    return rf"{re.escape(desc)}: {n}/{n} {noun} in [\d.]+ s \([\d.]+ {unit}/s\), skipped 1"


def _says_one_skipped(capsys, rc: int, desc: str, unit: str, n: int = 3) -> None:
    """The command exited 0 and printed one closing line of ``desc`` saying one skipped item."""
    lines = _closing(capsys.readouterr().out, desc)
    assert rc == 0 and len(lines) == 1, lines
    assert re.fullmatch(_skipped_1(desc, unit, n), lines[0]), lines


def test_coco_export_progress_counts_the_skipped_labels(tmp_path, capsys, monkeypatch):
    """Was: a COCO export (for CVAT) of 3 labels of which one is truncated closed with
    ``coco: 2/2 labels in ...`` and its bar ran to 2/2. Now both count every label and say the
    skipped one, as ``polygonise`` does: ``coco: 3/3 labels in ..., skipped 1``."""
    from sam2elnet.cli import main

    labels, _ = _one_label_unreadable(tmp_path)
    args = ["export", "--labels", labels, "--out", str(tmp_path / "c.json"), "--format", "coco"]
    assert main([*args, "--no-progress"]) == 0
    lines = _closing(capsys.readouterr().out, "coco")
    assert len(lines) == 1 and re.fullmatch(_skipped_1("coco", "label"), lines[0]), lines
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # the bar: out of every label
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "coco: " in err and "/3 [" in err and "/2 [" not in err, err


def test_label_studio_export_progress_counts_the_skipped_labels(tmp_path, capsys):
    """Was: ``label-studio: 2/2 labels in ...`` for 3 labels of which one is truncated. Now
    ``label-studio: 3/3 labels in ..., skipped 1``; none skipped, nothing added."""
    from sam2elnet.cli import main

    labels, images = _one_label_unreadable(tmp_path)
    args = ["export", "--labels", labels, "--format", "label-studio", "--images", images,
            "--no-progress"]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "ls" / "tasks.json")]) == 0
    lines = _closing(capsys.readouterr().out, "label-studio")
    assert len(lines) == 1 and re.fullmatch(_skipped_1("label-studio", "label"), lines[0]), lines
    (tmp_path / "labels" / "l2.png").unlink()
    assert main([*args, "--out", str(tmp_path / "ls2" / "tasks.json")]) == 0
    lines = _closing(capsys.readouterr().out, "label-studio")
    assert re.fullmatch(r"label-studio: 2/2 labels in [\d.]+ s \([\d.]+ label/s\)", lines[0])


def test_chips_progress_counts_the_skipped_labels(tmp_path, capsys):
    """Was: ``export --chips`` closed its chips stage with ``chips: 2/2 labels in ...`` for 3
    labels of which one is truncated. Now ``chips: 3/3 labels in ..., skipped 1`` (a COCO file
    of chips counts chips, ``coco: 2 chips in ...``, not the skipped labels)."""
    from sam2elnet.cli import main

    labels, images = _one_label_unreadable(tmp_path)
    rc = main(["export", "--labels", labels, "--out", str(tmp_path / "p.gpkg"), "--chips",
               str(tmp_path / "chips"), "--images", images, "--no-progress"])  # fmt: skip
    _says_one_skipped(capsys, rc, "chips", "label")


def test_label_studio_import_progress_says_the_skipped_tasks(tmp_path, capsys):
    """Was: ``import: 3/3 tasks in ...`` for 3 tasks of which one was not reviewed (skipped,
    one note). Now the line says it, as annotate's does: ``import: 3/3 tasks in ..., skipped
    1``."""
    import json

    from sam2elnet.cli import main

    unreviewed = {"data": {"image": "/data/local-files/?d=c.png"}, "annotations": []}
    ls = tmp_path / "ls.json"
    ls.write_text(json.dumps([_ls_task("a"), _ls_task("b"), unreviewed]))
    rc = main(["import", str(ls), "--from", "label-studio", "--out", str(tmp_path / "m"),
               "--no-progress"])  # fmt: skip
    _says_one_skipped(capsys, rc, "import", "task")


def test_coco_import_progress_says_the_skipped_images(tmp_path, capsys):
    """``elnet import --from coco`` / ``cvat`` (one writer, ``export.mask_folder.write_masks``):
    an image whose annotation cannot be read is skipped (a note); was ``import: 3/3 img in
    ...``, now ``import: 3/3 img in ..., skipped 1``."""
    import json

    from sam2elnet.cli import main

    _labels(tmp_path / "labels", 2)
    coco = tmp_path / "c.json"
    assert main(["export", "--labels", str(tmp_path / "labels"), "--out", str(coco),
                 "--format", "coco", "--no-progress"]) == 0  # fmt: skip
    data = json.loads(coco.read_text())
    data["images"].append({"id": 9, "file_name": "l9.png", "width": 40, "height": 40})
    bad_rle = {"size": [3, 3], "counts": "x"}  # not the image's size: unreadable
    data["annotations"].append({"id": 99, "image_id": 9, "category_id": 1, "iscrowd": 0,
                                "segmentation": bad_rle, "area": 1, "bbox": [0, 0, 1, 1]})  # fmt: skip
    coco.write_text(json.dumps(data))
    capsys.readouterr()
    rc = main(["import", str(coco), "--from", "coco", "--out", str(tmp_path / "m"),
               "--no-progress"])  # fmt: skip
    _says_one_skipped(capsys, rc, "import", "img")


def test_vector_import_progress_says_the_skipped_images(tmp_path, capsys):
    """``elnet import --from vector``: an image of --images that cannot be read (truncated) is
    skipped (a note); was ``import: 2/2 img in ...``, now ``..., skipped 1``."""
    from sam2elnet.cli import main

    labels, images = _one_label_unreadable(tmp_path)
    (tmp_path / "labels" / "l2.png").unlink()
    gpkg = tmp_path / "p.gpkg"
    assert main(["export", "--labels", labels, "--out", str(gpkg), "--no-progress"]) == 0
    bad = tmp_path / "images" / "l1.png"
    bad.write_bytes(bad.read_bytes()[:60])
    capsys.readouterr()
    rc = main(["import", str(gpkg), "--from", "vector", "--images", images, "--out",
               str(tmp_path / "m"), "--no-progress"])  # fmt: skip
    _says_one_skipped(capsys, rc, "import", "img", 2)


def _masks_and_images(tmp_path) -> None:
    """images/a{i}.png and masks/a{i}.png (i 0..2): a dark square on a bright ground."""
    truth = np.zeros((40, 40), bool)
    truth[8:30, 10:28] = True
    for i in range(3):
        write_png(tmp_path / "images" / f"a{i}.png", np.where(truth, 40, 200).astype(np.uint8))
        write_png(tmp_path / "masks" / f"a{i}.png", truth.astype(np.uint8) * 255)


def test_degrade_progress_says_the_skipped_masks(tmp_path, capsys):
    """``elnet degrade``: a truncated mask is skipped (listed); was ``degrade: 3/3 masks in
    ...``, now ``degrade: 3/3 masks in ..., skipped 1``."""
    from sam2elnet.cli import main

    _masks_and_images(tmp_path)
    bad = tmp_path / "masks" / "a2.png"
    bad.write_bytes(bad.read_bytes()[:40])
    rc = main(["degrade", "--masks", str(tmp_path / "masks"), "--out", str(tmp_path / "c"),
               "--profile", "freehand", "--no-progress"])  # fmt: skip
    _says_one_skipped(capsys, rc, "degrade", "mask")


def test_refine_progress_counts_the_skipped_images(tmp_path, capsys):
    """``elnet refine``: an image that cannot be read is skipped before the refinement (the
    normalisation fit leaves it out); was ``refine (morphological): 2/2 img in ...``, now
    ``refine (morphological): 3/3 img in ..., skipped 1``."""
    from sam2elnet.cli import main

    _masks_and_images(tmp_path)
    bad = tmp_path / "images" / "a1.png"
    bad.write_bytes(bad.read_bytes()[:40])
    rc = main(["refine", "--method", "morphological", "--images", str(tmp_path / "images"),
               "--coarse", str(tmp_path / "masks"), "--out", str(tmp_path / "r"),
               "--no-progress"])  # fmt: skip
    _says_one_skipped(capsys, rc, "refine (morphological)", "img")


def test_check_pairs_progress_says_the_skipped_pairs(tmp_path, caplog):
    """elnet train's data check and ``elnet stats --check`` skip a pair whose mask is truncated
    (listed); their lines were ``check data: 3/3 pairs in ...`` / ``check pairs: 3/3 pairs in
    ...``, now ``..., skipped 1``."""
    from sam2elnet.data.layouts import Sample
    from sam2elnet.data.normalize import NormalizationConfig
    from sam2elnet.data.stats import check_pairs as stats_check_pairs
    from sam2elnet.engine.train_checks import check_pairs

    _masks_and_images(tmp_path)
    bad = tmp_path / "masks" / "a1.png"
    bad.write_bytes(bad.read_bytes()[:40])
    samples = [
        Sample(id=f"a{i}", image=tmp_path / "images" / f"a{i}.png",
               mask=tmp_path / "masks" / f"a{i}.png")
        for i in range(3)
    ]  # fmt: skip
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        skips = check_pairs(samples, NormalizationConfig.for_modality("optical"), progress=False)
        _, skips2 = stats_check_pairs(samples, progress=False)
    assert len(skips.items) == 1 and len(skips2.items) == 1
    msgs = [r.getMessage() for r in caplog.records if r.name == LOGGER_NAME]
    assert len(msgs) == 2, msgs
    assert re.fullmatch(_skipped_1("check data", "pair"), msgs[0]), msgs
    assert re.fullmatch(_skipped_1("check pairs", "pair"), msgs[1]), msgs


def test_stats_progress_says_the_images_it_skipped_only(tmp_path, caplog):
    """``elnet stats``' statistics stage skips an image it cannot read (listed); its line was
    ``stats: 3/3 img in ...``, now ``..., skipped 1``. The skip list it is given may already
    hold an earlier stage's skips (``--check``): those are not counted again here."""
    from sam2elnet.data.norm_fit import compute_stats
    from sam2elnet.data.normalize import NormalizationConfig
    from sam2elnet.utils.batch import SkipLog

    _masks_and_images(tmp_path)
    bad = tmp_path / "images" / "a1.png"
    bad.write_bytes(bad.read_bytes()[:40])
    skips = SkipLog("file")
    skips.add(tmp_path / "earlier.png", "checked before")  # an earlier stage's skip
    paths = sorted((tmp_path / "images").glob("*.png"))
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        compute_stats(paths, NormalizationConfig.for_modality("optical"), progress=False,
                      skips=skips)  # fmt: skip
    assert len(skips.items) == 2
    msgs = [r.getMessage() for r in caplog.records if r.name == LOGGER_NAME]
    assert len(msgs) == 1 and re.fullmatch(_skipped_1("stats", "img"), msgs[0]), msgs
