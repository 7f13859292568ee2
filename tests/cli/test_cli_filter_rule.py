"""The label filter takes one rule, the same in every command: ``--min-quality`` or
``--target-precision``, not both (options.check_one_filter). ``experiment`` refused the pair with
its whole option dict in the message; ``annotate`` / ``enhance`` took "the stricter threshold" and
then reported the target's threshold and held-out precision for labels the other one kept."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers_data import grey_rgb, write_png

from sam2elnet.cli import main
from sam2elnet.errors import UserError
from sam2elnet.option_checks import check_options
from sam2elnet.options import FolderJobOptions

os.environ.setdefault("SAM2ELNET_THREADS", "1")

BOTH = ["--min-quality", "0.5", "--target-precision", "0.9"]
WANTED = (
    "error: give either --min-quality 0.5 (keep labels with predicted IoU >= it) or "
    "--target-precision 0.9 (the threshold whose held-out precision reaches it), not both"
)


@pytest.mark.parametrize("cmd", ["annotate", "enhance", "experiment"])
def test_both_filters_refused_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cmd: str
) -> None:
    """One ``error:`` line naming both flags and what each keeps, exit 2, nothing written."""
    images = tmp_path / "images"
    write_png(images / "a.png", grey_rgb(32))
    model = tmp_path / "model.pt"
    model.write_bytes(b"never read: the options are refused first")
    out = tmp_path / "out"
    argv = {
        "annotate": ["annotate", "--model", str(model), "--images", str(images)],
        "enhance": ["enhance", "--model", str(model), "--images", str(images), "--labels",
                    str(images)],
        "experiment": ["experiment", "--data", str(images)],
    }[cmd]  # fmt: skip
    capsys.readouterr()
    assert main([*argv, "--out", str(out), *BOTH]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [WANTED], err
    assert not out.exists()


def test_api_refuses_both_filters() -> None:
    """annotate_folder / enhance_folder check their options through FolderJobOptions."""
    with pytest.raises(UserError, match="not both"):
        check_options(FolderJobOptions, min_quality=0.5, target_precision=0.9)
    assert check_options(FolderJobOptions, min_quality=0.5).min_quality == 0.5
