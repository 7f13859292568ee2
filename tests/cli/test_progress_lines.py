"""--no-progress: long commands still print one line per epoch / stage / half minute."""

from __future__ import annotations

import logging
import os
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
    assert any(ln.startswith("polygonise: 2/2 label in ") for ln in out.splitlines()), out


def test_export_progress_line_counts_the_skipped_labels(tmp_path, capsys):
    """Was: an export of 3 labels of which one cannot be read closed with ``polygonise: 2/2
    label in ...``, as if nothing was skipped. Now the line counts every label and says how
    many were skipped, as annotate's and evaluate's do: ``polygonise: 3/3 label in ...,
    skipped 1``; none skipped, no count (``polygonise: 2/2 label in ... (... label/s)``)."""
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
    assert re.fullmatch(r"polygonise: 3/3 label in [\d.]+ s \([\d.]+ label/s\), skipped 1",
                        lines[0]), lines  # fmt: skip
    (tmp_path / "labels" / "l2.tif").unlink()
    assert main(["export", "--labels", str(tmp_path / "labels"), "--out", str(tmp_path / "p.gpkg"),
                 "--no-progress"]) == 0  # fmt: skip
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("polygonise: ")]
    assert re.fullmatch(r"polygonise: 2/2 label in [\d.]+ s \([\d.]+ label/s\)", lines[0]), lines


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
    assert any(ln.startswith("coco: 3/3 label in ") for ln in out.splitlines()), out
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
    assert any(ln.startswith("import: 2/2 task in ") for ln in out.splitlines()), out


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
    assert len(msgs) == 1 and msgs[0].startswith("check data: 3/3 pair in ")


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
