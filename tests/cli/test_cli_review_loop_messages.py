"""Messages a new user meets in the review loop (train -> annotate -> review -> import -> train
--init-model -> evaluate) that pointed at options or files that do not do what they said."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_data import grey_rgb, make_generic, write_mask_png, write_png

from sam2elnet.cli import main
from sam2elnet.errors import CheckpointError


def test_unmatched_files_warning_names_the_verbose_option_where_it_works(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`elnet train` warned "(listed with --verbose)", but `--verbose` is an option of `elnet`
    itself: `elnet train ... --verbose` is "No such option". The warning names the form that
    works, and that form lists the file."""
    data = make_generic(tmp_path / "d", n=2)
    lonely = write_png(data / "images" / "lonely.png", grey_rgb(32, 9))
    assert main(["stats", "--data", str(data), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "1 file under" in err
    assert "`elnet --verbose COMMAND ...`" in err
    assert "lonely.png" not in err  # counted, not listed, without --verbose
    assert main(["--verbose", "stats", "--data", str(data), "--no-progress"]) == 0
    assert f"unmatched: {lonely}" in capsys.readouterr().err


def _fake_resume_state(path: Path) -> Path:
    from sam2elnet.engine.train_state import LAST_FORMAT, LAST_VERSION

    torch.save({"format": LAST_FORMAT, "version": LAST_VERSION, "epoch": 1}, path)
    return path


def test_resume_state_given_as_a_model_says_to_give_model_pt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run folder holds model.pt and last.pt; `--init-model run/last.pt` (or `--model`) was
    refused as "not a sam2elnet model file (for SAM2 encoder checkpoints use --weights, not
    --model)", as if last.pt were an encoder checkpoint. It is named for what it is."""
    from sam2elnet.model.io import read_model_file

    last = _fake_resume_state(tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match=r"resume state \(last.pt.*give the run's model.pt"):
        read_model_file(last)

    images = tmp_path / "images"
    write_png(images / "a.png", grey_rgb(32, 1))
    out = tmp_path / "auto"
    argv = ["annotate", "--model", str(last), "--images", str(images), "--out", str(out)]
    assert main([*argv, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"error: {last}: ")
    assert "resume state" in err and "model.pt" in err and "Traceback" not in err
    assert not out.exists()

    other = tmp_path / "other.pt"
    torch.save({"format": "something else"}, other)
    with pytest.raises(CheckpointError, match="not a sam2elnet model file") as info:
        read_model_file(other)
    assert "not --model" not in str(info.value)  # also the message of --init-model


def test_evaluate_unmatched_line_says_where_they_are_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ "unmatched: ... (listed in the JSON)" was printed without --json, when no JSON is
    written: it says which option lists them, or the file that does."""
    pred, truth = tmp_path / "pred", tmp_path / "truth"
    m = np.zeros((24, 24), bool)
    m[4:20, 4:20] = True
    write_mask_png(pred / "a.png", m)
    write_mask_png(truth / "a.png", m)
    write_mask_png(truth / "b.png", m)  # no prediction
    argv = ["evaluate", "--pred", str(pred), "--truth", str(truth), "--no-progress"]
    assert main(argv) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "unmatched: 0 predictions, 1 ground-truth mask (--json FILE lists them)" in out
    js = tmp_path / "m.json"
    assert main([*argv, "--json", str(js)]) == 0
    out = "".join(capsys.readouterr().out.split())
    assert f"1ground-truthmask(listedin{js})" in out
    assert [Path(p).name for p in json.loads(js.read_text())["unmatched_truth"]] == ["b.png"]


def test_warp_line_names_the_verbose_option_where_it_works(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The `--warp-to` summary said "--verbose prints each grid", an option `annotate` and
    `enhance` do not have (it is `elnet`'s own)."""
    from types import SimpleNamespace

    from sam2elnet.cli.job_summary import print_folder

    summary = {
        "n_images": 1, "n_kept": 1, "n_rejected": 0, "n_skipped": 0, "seconds": 1.0,
        "mean_predicted_iou": 0.5, "warp": {"to": "EPSG:32633", "method": "gcp_tps"},
    }  # fmt: skip
    print_folder(SimpleNamespace(summary=summary, out_dir=str(tmp_path)), "annotated")
    out = capsys.readouterr().out
    assert "(GCP transformer gcp_tps; `elnet --verbose COMMAND ...` prints each grid)" in out
