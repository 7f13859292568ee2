"""report.html of a training run: curves from metrics.csv, the kept epoch, validation images."""

from __future__ import annotations

import html
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers_data import trained_run

from sam2elnet.errors import UserError
from sam2elnet.pipeline.report_train import (
    learning_curves,
    read_history,
    val_scale_spans,
    write_train_report,
)


@pytest.fixture
def run_copy(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A copy of the shared micro run (2 epochs, 4 validation images), safe to write into."""
    shared = trained_run(tmp_path_factory)
    run = tmp_path / "run"
    shutil.copytree(shared["run"], run)
    return {"run": run, "data": shared["data"]}


def test_report_shows_every_validation_image_and_the_kept_epoch(run_copy: dict[str, Path]) -> None:
    run = run_copy["run"]
    page = write_train_report(run)
    assert page == run / "report.html"
    html = page.read_text(encoding="utf-8")
    val = json.loads((run / "splits.json").read_text())["val"]
    train = json.loads((run / "splits.json").read_text())["train"]
    assert len(val) == 4
    for name in val:
        assert name in html
    # training images are not validation images and are not shown as cards
    for name in train:
        assert f">{name}<" not in html
    assert "Learning curves (metrics.csv)" in html
    assert "Epochs (metrics.csv)" in html
    assert "kept epoch (model.pt)" in html
    assert "data:image/png;base64," in html  # the curves are embedded, the page works offline
    assert not re.search(r"(src|href)=\"https?://", html)


def test_max_images_limits_the_cards_and_says_so(run_copy: dict[str, Path]) -> None:
    html = write_train_report(run_copy["run"], max_images=1).read_text(encoding="utf-8")
    assert "1 of 4 validation images shown (sorted by id)" in html
    val = sorted(json.loads((run_copy["run"] / "splits.json").read_text())["val"])
    assert val[0] in html
    assert val[1] not in html


def test_moved_data_folder_is_named_and_curves_still_drawn(
    run_copy: dict[str, Path], tmp_path: Path
) -> None:
    cfg = (run_copy["run"] / "config.yaml").read_text(encoding="utf-8")
    (run_copy["run"] / "config.yaml").write_text(
        cfg.replace(str(run_copy["data"]), str(tmp_path / "gone")), encoding="utf-8"
    )
    html = write_train_report(run_copy["run"]).read_text(encoding="utf-8")
    assert "is gone (pass data=)" in html
    assert "Learning curves" in html
    # given the new place, the images come back
    moved = write_train_report(run_copy["run"], data=run_copy["data"], path=tmp_path / "r.html")
    val = json.loads((run_copy["run"] / "splits.json").read_text())["val"]
    assert all(v in moved.read_text(encoding="utf-8") for v in val)


def test_history_reads_empty_cells_as_nan(tmp_path: Path) -> None:
    f = tmp_path / "metrics.csv"
    f.write_text("epoch,train_loss,val_loss,val_iou\n1,0.5,,\n2,0.4,0.45,0.61\n", encoding="utf-8")
    rows = read_history(f)
    assert rows[0]["epoch"] == 1.0 and rows[1]["val_iou"] == pytest.approx(0.61)
    assert math.isnan(rows[0]["val_loss"])


@pytest.mark.parametrize(
    ("text", "message"),
    [(None, "no metrics.csv"), ("epoch,train_loss\n", "no epochs yet")],
)
def test_history_errors(tmp_path: Path, text: str | None, message: str) -> None:
    f = tmp_path / "metrics.csv"
    if text is not None:
        f.write_text(text, encoding="utf-8")
    with pytest.raises(UserError, match=message):
        read_history(f)


def test_curves_leave_out_columns_without_values() -> None:
    """No validation split: only the training curves (and the kept-epoch line) are drawn."""
    nan = float("nan")
    hist = [
        {
            "epoch": 1.0,
            "train_loss": 0.9,
            "val_loss": nan,
            "train_iou": 0.2,
            "val_iou_annotate": nan,
        },
        {
            "epoch": 2.0,
            "train_loss": 0.7,
            "val_loss": nan,
            "train_iou": 0.4,
            "val_iou_annotate": nan,
        },
    ]
    fig = learning_curves(hist, best_epoch=2)
    loss_ax, iou_ax = fig.axes
    assert [ln.get_label() for ln in loss_ax.get_lines()] == ["training", "kept epoch"]
    assert [ln.get_label() for ln in iou_ax.get_lines()] == ["training", "kept epoch"]
    assert np.allclose(loss_ax.get_lines()[0].get_ydata(), [0.9, 0.7])
    assert iou_ax.get_lines()[1].get_xdata()[0] == 2


def test_run_folder_without_a_model_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "metrics.csv").write_text("epoch,train_loss\n1,0.5\n", encoding="utf-8")
    with pytest.raises(UserError, match="no model.pt"):
        write_train_report(tmp_path)


def test_history_keeps_the_validation_scale_as_text(tmp_path: Path) -> None:
    """val_scale is text ("resized" / "native", empty without validation); a metrics.csv from
    before the column reads as before."""
    f = tmp_path / "metrics.csv"
    f.write_text("epoch,val_scale,val_iou\n1,resized,0.6\n2,,\n3,native,0.5\n", encoding="utf-8")
    rows = read_history(f)
    assert [r["val_scale"] for r in rows] == ["resized", "", "native"]
    assert val_scale_spans(rows) == [("resized", 1, 1), ("native", 3, 3)]
    f.write_text("epoch,val_iou\n1,0.6\n", encoding="utf-8")
    old = read_history(f)
    assert "val_scale" not in old[0] and val_scale_spans(old) == []


def test_curves_mark_where_validation_changed() -> None:
    rows = [
        {"epoch": float(e), "train_loss": 0.5, "val_loss": 0.4, "train_iou": 0.5, "val_scale": s}
        for e, s in ((1, "resized"), (2, "resized"), (3, "native"), (4, "native"))
    ]
    for ax in learning_curves(rows, best_epoch=4).axes:
        marks = [ln for ln in ax.get_lines() if ln.get_label() == "validation resized -> native"]
        assert len(marks) == 1 and marks[0].get_xdata()[0] == 2.5
    same = [{**r, "val_scale": "native"} for r in rows]
    for ax in learning_curves(same, best_epoch=4).axes:
        assert not [ln for ln in ax.get_lines() if "->" in str(ln.get_label())]


def test_report_says_when_a_run_mixes_validation_scales(run_copy: dict[str, Path]) -> None:
    run = run_copy["run"]
    note = "validation changed during this run"
    assert note not in write_train_report(run, max_images=0).read_text(encoding="utf-8")
    f = run / "metrics.csv"
    lines = f.read_text(encoding="utf-8").splitlines()
    col = lines[0].split(",").index("val_scale")
    first = lines[1].split(",")
    assert first[col] == "native"
    first[col] = "resized"  # epoch 1 as a resumed run's old row
    f.write_text("\n".join([lines[0], ",".join(first), *lines[2:]]) + "\n", encoding="utf-8")
    html = write_train_report(run, max_images=0).read_text(encoding="utf-8")
    assert (
        f"{note} (a --resume across versions): epoch 1 with images resized to the crop size, "
        "epoch 2 at native scale; their val_* scores are not comparable"
    ) in html
    assert ">resized<" in html and ">native<" in html  # the epoch table's val_scale cells


def test_report_names_the_validation_scale_only_when_one_was_used(
    run_copy: dict[str, Path],
) -> None:
    """The note on the validation images names how metrics.csv's val_iou* were scored only when
    every epoch was scored that way: native, resized (an older run), mixed (no scale named;
    the mixing note instead), no val_scale column (no scale named, no mixing note)."""
    run = run_copy["run"]
    f = run / "metrics.csv"
    lines = f.read_text(encoding="utf-8").splitlines()
    col = lines[0].split(",").index("val_scale")
    native = "val_iou* are of each image's centred image_size window at native scale"
    resized = "val_iou* are of each image resized to the crop size"
    either = "val_iou* are of each image cut or resized to image_size"
    mixing = "validation changed during this run"

    def page(scales: list[str] | None) -> str:
        rows = [ln.split(",") for ln in [lines[0], *lines[1:]]]
        if scales is None:  # a metrics.csv from before the column
            rows = [r[:col] + r[col + 1 :] for r in rows]
        else:
            for row, scale in zip(rows[1:], scales, strict=True):
                row[col] = scale
        f.write_text("\n".join(",".join(r) for r in rows) + "\n", encoding="utf-8")
        return html.unescape(write_train_report(run, max_images=0).read_text(encoding="utf-8"))

    assert len(lines) == 3  # two epochs
    for scales, says in (
        (["native", "native"], native),
        (["resized", "resized"], resized),
        (["resized", "native"], either),
        (None, either),
    ):
        text = page(scales)
        shown = [n for n in (native, resized, either) if n in text]
        assert shown == [says], (scales, shown)
        assert (mixing in text) == (scales == ["resized", "native"]), scales


def test_the_validation_road_buffer_is_said_in_its_unit(tmp_path: Path) -> None:
    """The kept epoch's road measures come with their buffer (was not in report.html): px, or
    metres with each validation image's px range; none without road measures."""
    from sam2elnet.pipeline.report_train import val_road_buffer_said

    row = {"val_iou": 0.5, "val_road_quality": 0.4}
    px = {"road_buffer_px": 5.0, "road_buffer_px_range": [5.0, 5.0], "road_buffer_m": None,
          "road_buffer_unit": "px"}  # fmt: skip
    short, note = val_road_buffer_said({"val_road_buffer": px}, row, tmp_path)  # type: ignore[misc]
    assert short == "5 px" and "validation road measures: centre lines matched within 5 px" in note
    m = {"road_buffer_px": None, "road_buffer_px_range": [2.6, 5.2], "road_buffer_m": 1.3,
         "road_buffer_unit": "m"}  # fmt: skip
    short, note = val_road_buffer_said({"val_road_buffer": m}, row, tmp_path)  # type: ignore[misc]
    assert short == "1.3 m = 2.6-5.2 px by image"
    assert "within 1.3 m = 2.6-5.2 px (--road-buffer-m; per image" in note, note
    assert val_road_buffer_said({"val_road_buffer": m}, {"val_iou": 0.5}, tmp_path) is None
    (tmp_path / "config.yaml").write_text("data: d\nout: o\nroad_buffer_m: 2\n")  # older run
    short, _ = val_road_buffer_said({}, row, tmp_path)  # type: ignore[misc]
    assert short == "2 m"
