"""An output option never overwrites an input: ``elnet stats --out``, ``elnet evaluate --json /
--csv``, ``elnet experiment-summary --out`` and the ``<out>_<format>_skipped.csv`` list of ``elnet export``.

Each refusal is one ``error:`` line naming the file and saying to choose another path, exit 2,
and the input is left as it was (utils.paths.check_not_input / check_output ``read_from``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from helpers_data import blob_mask, make_generic, write_png
from rasterio.transform import from_origin

from sam2elnet.cli import main
from sam2elnet.utils.paths import check_not_input


def _refused(capsys: pytest.CaptureFixture[str], argv: list[str], path: Path, flag: str) -> str:
    """Run ``elnet argv``; assert one error line naming ``path`` and ``flag``; return it."""
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.count("\n") == 1 and err.startswith(f"error: {flag} {path}: "), err
    assert "would replace the input" in err and f"Choose another {flag} path" in err, err
    assert "Traceback" not in err
    return err.strip()


def test_stats_out_onto_a_dataset_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_generic(tmp_path / "d", n=3)
    mask = data / "masks" / "img0.png"
    before = mask.read_bytes()
    err = _refused(capsys, ["stats", "--data", str(data), "--out", str(mask)], mask, "--out")
    assert err == (
        f"error: --out {mask}: is an input file (read from {data}); writing it would replace "
        "the input. Choose another --out path"
    )
    assert mask.read_bytes() == before
    (data / "dataset.json").write_text('{"modality": "optical"}')
    _refused(capsys, ["stats", "--data", str(data), "--out", str(data / "dataset.json")],
             data / "dataset.json", "--out")  # fmt: skip
    assert (data / "dataset.json").read_text() == '{"modality": "optical"}'
    # a JSON file of its own in the dataset folder (an earlier --out) is not an input: rewritten
    (data / "stats.json").write_text("{}")
    assert main(["stats", "--data", str(data), "--out", str(data / "stats.json")]) == 0
    written = json.loads((data / "stats.json").read_text())
    assert written["images_used"] == 3 and written["layout"] == "generic"


@pytest.fixture
def run_folder(tmp_path: Path) -> tuple[Path, Path]:
    """(PRED, TRUTH): an annotate-like run folder (masks, quality.csv, summary.json) and truth."""
    pred, truth = tmp_path / "pred", tmp_path / "truth"
    for i in range(3):
        m = blob_mask(32, i).astype(np.uint8) * 255
        write_png(truth / f"img{i}.png", m)
        write_png(pred / f"img{i}.png", m)
    (pred / "quality.csv").write_text("image,predicted_iou\nimg0.png,0.9\nimg1.png,0.8\n")
    (pred / "summary.json").write_text('{"n_images": 3}')
    return pred, truth


@pytest.mark.parametrize(
    ("flag", "name"),
    [("--csv", "quality.csv"), ("--json", "summary.json"), ("--json", "img1.png")],
)
def test_evaluate_json_csv_onto_a_file_it_reads_are_refused(
    run_folder: tuple[Path, Path], capsys: pytest.CaptureFixture[str], flag: str, name: str
) -> None:
    pred, truth = run_folder
    target = pred / name
    before = target.read_bytes()
    argv = ["evaluate", "--pred", str(pred), "--truth", str(truth), flag, str(target)]
    err = _refused(capsys, [*argv, "--no-progress"], target, flag)
    assert f"is an input file (read from {pred})" in err
    assert target.read_bytes() == before


def test_evaluate_csv_onto_the_given_quality_table_is_refused(
    run_folder: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pred, truth = run_folder
    q = tmp_path / "q.csv"
    q.write_text((pred / "quality.csv").read_text())
    argv = ["evaluate", "--pred", str(pred), "--truth", str(truth), "--quality", str(q)]
    err = _refused(capsys, [*argv, "--csv", str(q), "--no-progress"], q, "--csv")
    assert f"is the input file {q}" in err
    # an evaluation file of its own next to the inputs is fine
    assert main([*argv, "--csv", str(tmp_path / "eval.csv"), "--no-progress"]) == 0
    assert main([*argv, "--csv", str(pred / "eval.csv"), "--no-progress"]) == 0


def test_experiment_summary_out_onto_a_results_json_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = []
    for seed in (1, 2):
        r = tmp_path / f"seed{seed}"
        r.mkdir()
        (r / "results.json").write_text('{"table1": []}')
        runs.append(r)
    target = runs[1] / "results.json"
    argv = ["experiment-summary", str(runs[0]), str(runs[1]), "--out", str(target)]
    err = _refused(capsys, argv, target, "--out")
    assert f"is an input file (read from {runs[1]})" in err
    assert target.read_text() == '{"table1": []}'


def _label(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    prof = dict(driver="GTiff", width=32, height=32, count=1, dtype="uint8", nodata=127,
                crs="EPSG:32633", transform=from_origin(500000, 4500000, 10, 10))  # fmt: skip
    with rasterio.open(path, "w", **prof) as ds:
        ds.write(blob_mask(32, 0).astype(np.uint8) * 255, 1)
    return path


def test_export_skipped_list_onto_an_input_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--out o.gpkg`` writes ``o_gpkg_skipped.csv`` when a label is unreadable; here that name is the
    quality table given with --quality: refused before anything is written."""
    lab = tmp_path / "lab"
    _label(lab / "a.tif")
    (lab / "b.tif").write_bytes(b"not a tiff")  # would be skipped, writing o_gpkg_skipped.csv
    q = tmp_path / "o_gpkg_skipped.csv"
    q.write_text("label,quality\na.tif,0.9\n")
    out = tmp_path / "o.gpkg"
    argv = ["export", "--labels", str(lab), "--quality-csv", str(q), "--out", str(out)]
    rc = main([*argv, "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    assert err.strip() == (
        f"error: --out {out}: its list of skipped labels {q}: is the input file {q}; writing it "
        "would replace the input. Choose another --out path"
    )
    assert q.read_text() == "label,quality\na.tif,0.9\n" and not out.exists()
    # another --out: the skipped list goes next to it
    out2 = tmp_path / "p.gpkg"
    assert main(["export", "--labels", str(lab), "--quality-csv", str(q), "--out", str(out2),
                 "--no-progress"]) == 0  # fmt: skip
    assert "b.tif" in (tmp_path / "p_gpkg_skipped.csv").read_text()


def test_read_from_counts_files_by_suffix_or_name_at_any_depth(tmp_path: Path) -> None:
    from sam2elnet.errors import UserError

    deep = tmp_path / "in" / "sub" / "x.PNG"
    deep.parent.mkdir(parents=True)
    deep.write_bytes(b"png")
    with pytest.raises(UserError, match=r"is an input file \(read from"):
        check_not_input(deep, [], read_from=[(tmp_path / "in", (".png",))])
    check_not_input(deep, [], read_from=[(tmp_path / "in", (".tif", "quality.csv"))])
    check_not_input(deep, [], read_from=[(tmp_path / "other", (".png",)), (None, (".png",))])
    link = tmp_path / "in" / "link.png"  # a link in the folder is the folder's file
    link.symlink_to(tmp_path / "elsewhere.png")
    (tmp_path / "elsewhere.png").write_bytes(b"x")
    with pytest.raises(UserError):
        check_not_input(link, [], read_from=[(tmp_path / "in", (".png",))])
