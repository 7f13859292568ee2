"""The folder jobs' outputs never replace or mix with their inputs: ``elnet annotate``,
``elnet enhance`` and ``elnet refine`` refuse an ``--out`` whose written folders hold the images,
coarse labels or a dataset's masks, and ``elnet evaluate`` refuses two outputs that are one file.

Each refusal is one ``error:`` line naming the file and saying to choose another path, exit 2,
before the model loads and with nothing written (utils.paths.check_out_folder /
check_distinct_outputs). An out folder next to the inputs, the images folder itself, and an
earlier out folder being resumed are not refused.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from helpers_data import blob_mask, grey_rgb, make_generic, write_png
from helpers_logs import error_line, file_tree, refused_untouched

from sam2elnet.cli import main
from sam2elnet.errors import UserError
from sam2elnet.utils.paths import check_distinct_outputs

os.environ.setdefault("SAM2ELNET_THREADS", "1")


def _images(folder: Path, n: int = 3) -> list[Path]:
    return [write_png(folder / f"img{i}.png", grey_rgb(32, i)) for i in range(n)]


def test_annotate_images_in_out_labels_are_refused(
    tmp_path: Path, unread_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--images RUN/labels --out RUN``: the labels would be written over the images."""
    run = tmp_path / "run"
    _images(run / "labels")
    argv = [
        "annotate",
        "--model",
        str(unread_model),
        "--images",
        str(run / "labels"),
        "--out",
        str(run),
    ]
    err = refused_untouched(capsys, argv, tmp_path)
    assert err == (
        f"error: --out {run}: annotate writes its labels into {run / 'labels'}, which holds an "
        f"image read with --images ({run / 'labels' / 'img0.png'}); they would replace or mix "
        "with the inputs. Choose another --out folder"
    )


def test_annotate_save_prob_onto_an_image_folder_is_refused(
    tmp_path: Path, unread_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    _images(run / "prob")
    argv = [
        "annotate",
        "--model",
        str(unread_model),
        "--images",
        str(run / "prob"),
        "--out",
        str(run),
    ]
    err = error_line(capsys, [*argv, "--save-prob"])
    assert f"annotate writes probability maps into {run / 'prob'}, which holds an image" in err
    # without --save-prob nothing goes to prob/: the check passes and the model is read
    err = error_line(capsys, argv)
    assert "model.pt" in err and "replace or mix" not in err
    assert not (run / "quality.csv").exists()


def test_annotate_into_a_dataset_root_with_a_labels_folder_is_refused(
    tmp_path: Path, unread_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Generic layout ``d/images`` + ``d/labels`` (the masks): ``--out d`` would write the
    predicted labels over the ground truth, which annotate does not even read."""
    d = make_generic(tmp_path / "d", n=3, mask_dir="labels")
    argv = [
        "annotate",
        "--model",
        str(unread_model),
        "--images",
        str(d / "images"),
        "--out",
        str(d),
    ]
    err = refused_untouched(capsys, argv, d)
    assert err == (
        f"error: --out {d}: annotate writes its labels into {d / 'labels'}, which holds the "
        f"dataset's labels next to --images {d / 'images'} ({d / 'labels'}); they would replace "
        "or mix with the inputs. Choose another --out folder"
    )
    # an out folder next to the inputs, or the images folder itself, passes (the model is read)
    for out in (d / "auto", d / "images"):
        err = error_line(capsys, [*argv[:-1], str(out)])
        assert "model.pt" in err and "replace or mix" not in err, err


def test_annotate_split_into_the_split_folder_is_refused(
    tmp_path: Path, unread_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = make_generic(tmp_path / "d" / "test", n=3, mask_dir="labels").parent
    argv = ["annotate", "--model", str(unread_model), "--images", str(d), "--split", "test"]
    err = error_line(capsys, [*argv, "--out", str(d / "test")])
    assert f"annotate writes its labels into {d / 'test' / 'labels'}, which holds " in err
    assert "Choose another --out folder" in err
    assert not (d / "test" / "quality.csv").exists()


def test_enhance_coarse_labels_in_out_labels_are_refused(
    tmp_path: Path, unread_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``elnet enhance --labels RUN/labels --out RUN`` (enhancing an annotate run in place)."""
    _images(tmp_path / "images")
    run = tmp_path / "run"
    for i in range(3):
        write_png(run / "labels" / f"img{i}.png", blob_mask(32, i).astype(np.uint8) * 255)
    argv = ["enhance", "--model", str(unread_model), "--images", str(tmp_path / "images"),
            "--labels", str(run / "labels"), "--out", str(run)]  # fmt: skip
    err = refused_untouched(capsys, argv, tmp_path)
    assert err == (
        f"error: --out {run}: enhance writes its labels into {run / 'labels'}, which holds a "
        f"coarse label read with --labels ({run / 'labels' / 'img0.png'}); they would replace or "
        "mix with the inputs. Choose another --out folder"
    )


def test_enhance_vector_labels_named_like_a_run_file_are_refused(
    tmp_path: Path, unread_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A GeoJSON ``--labels RUN/summary.json`` would be replaced by the run's summary.json."""
    _images(tmp_path / "images")
    run = tmp_path / "run"
    run.mkdir()
    vec = run / "summary.json"
    vec.write_text('{"type": "FeatureCollection", "features": []}')
    argv = ["enhance", "--model", str(unread_model), "--images", str(tmp_path / "images"),
            "--labels", str(vec), "--out", str(run)]  # fmt: skip
    err = error_line(capsys, argv)
    assert err == (
        f"error: --out {run}: its summary.json {vec}: is the input file {vec}; writing it would "
        "replace the input. Choose another --out path"
    )
    assert vec.read_text() == '{"type": "FeatureCollection", "features": []}'


@pytest.fixture
def refine_data(tmp_path: Path) -> Path:
    """Generic layout d/images, d/masks, d/coarse (3 pairs, 32 px)."""
    return make_generic(tmp_path / "d", n=3, coarse=True)


@pytest.mark.parametrize(
    ("out", "holds"),
    [
        ("images", "an image read with --images ({d}/images/img0.png)"),
        ("coarse", "a coarse label read with --coarse ({d}/coarse/img0.png)"),
        ("masks", "the dataset's masks next to --images {d}/images ({d}/masks)"),
    ],
)
def test_refine_into_an_input_folder_is_refused(
    refine_data: Path, capsys: pytest.CaptureFixture[str], out: str, holds: str
) -> None:
    """refine writes ``OUT/<stem>.png`` straight into OUT: into the images, coarse or mask
    folder it would replace ``img0.png`` ... of the same names."""
    d = refine_data
    argv = ["refine", "--method", "morphological", "--images", str(d / "images"),
            "--coarse", str(d / "coarse"), "--out", str(d / out), "--no-progress"]  # fmt: skip
    err = refused_untouched(capsys, argv, d)
    assert err == (
        f"error: --out {d / out}: refine writes its refined labels into {d / out}, which holds "
        f"{holds.format(d=d)}; they would replace or mix with the inputs. Choose another --out "
        "folder"
    )


def test_refine_next_to_the_inputs_and_resumed_is_not_refused(
    refine_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = refine_data
    argv = ["refine", "--method", "morphological", "--images", str(d / "images"),
            "--coarse", str(d / "coarse"), "--out", str(d / "refined"), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    assert sorted(p.name for p in (d / "refined").iterdir()) == [
        "img0.png", "img1.png", "img2.png", "refine.csv",
    ]  # fmt: skip
    assert main([*argv, "--resume"]) == 0
    assert "(3 kept from an earlier run)" in capsys.readouterr().out
    # an earlier refine output named like a dataset folder (d/labels, made by a first run) resumes
    argv[-2] = str(d / "labels")
    assert main(argv) == 0 and main([*argv, "--resume"]) == 0


def test_evaluate_two_outputs_in_one_file_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pred, truth = tmp_path / "pred", tmp_path / "truth"
    for i in range(2):
        m = blob_mask(32, i).astype(np.uint8) * 255
        write_png(truth / f"img{i}.png", m)
        write_png(pred / f"img{i}.png", m)
    base = ["evaluate", "--pred", str(pred), "--truth", str(truth), "--no-progress"]
    out = tmp_path / "eval.txt"
    err = error_line(capsys, [*base, "--json", str(out), "--csv", str(out)])
    assert err == (
        f"error: --csv {out}: is the same file as --json {out}; one would overwrite the other. "
        "Choose another --csv path"
    )
    # the same file by another spelling (.. and a symlinked folder)
    (tmp_path / "link").symlink_to(tmp_path)
    other = tmp_path / "link" / "sub" / ".." / "eval.txt"
    (tmp_path / "sub").mkdir()
    err = error_line(capsys, [*base, "--json", str(out), "--csv", str(other)])
    assert err.startswith(f"error: --csv {other}: is the same file as --json {out};")
    # --report writes report.html next to --json
    page = tmp_path / "report.html"
    err = error_line(capsys, [*base, "--json", str(page), "--report"])
    assert err == (
        f"error: --json {page}: is the same file as the --report page {page}; one would "
        "overwrite the other. Choose another --json path"
    )
    assert not out.exists() and not page.exists()
    assert main([*base, "--json", str(out), "--csv", str(tmp_path / "eval.csv")]) == 0
    assert out.is_file() and (tmp_path / "eval.csv").is_file()


def test_check_distinct_outputs_hard_links_and_none(tmp_path: Path) -> None:
    a = tmp_path / "a.json"
    a.write_text("{}")
    b = tmp_path / "b.csv"
    os.link(a, b)
    with pytest.raises(UserError, match=r"^--csv .*b\.csv: is the same file as --json .*a\.json"):
        check_distinct_outputs([("--json", a), ("--csv", b)])
    check_distinct_outputs([("--json", a), ("--csv", None), ("--x", tmp_path / "c.csv")])


def test_degrade_into_the_mask_folder_or_onto_its_id_list_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """degrade writes coarse labels under the masks' own names: never into --masks; and its
    ``OUT/skipped.csv`` / ``coarse_iou.csv`` are never the ``--ids`` list it reads."""
    masks = make_generic(tmp_path / "d", n=3).joinpath("masks")
    before = file_tree(tmp_path)
    err = error_line(
        capsys, ["degrade", "--masks", str(masks), "--out", str(masks), "--no-progress"]
    )
    assert err == (
        f"error: --out {masks}: degrade writes its coarse labels into {masks}, which holds the "
        f"masks read with --masks ({masks}); they would replace or mix with the inputs. Choose "
        "another --out folder"
    )
    out = tmp_path / "coarse"
    out.mkdir()
    ids = out / "skipped.csv"
    ids.write_text("img0\nimg1\n")
    argv = ["degrade", "--masks", str(masks), "--out", str(out), "--no-progress"]
    err = error_line(capsys, [*argv, "--ids", str(ids)])
    assert err == (
        f"error: --out {out}: its skipped.csv {ids}: is the input file {ids}; writing it would "
        "replace the input. Choose another --out path"
    )
    assert file_tree(tmp_path) == {**before, "coarse/skipped.csv": b"img0\nimg1\n"}
    # the id list elsewhere: two coarse labels, named as their masks
    (tmp_path / "ids.txt").write_text("img0\nimg1\n")
    assert main([*argv, "--ids", str(tmp_path / "ids.txt")]) == 0
    assert sorted(p.name for p in out.glob("*.png")) == ["img0.png", "img1.png"]
