"""Messages of the Python API name the argument a library user gives and the command line's flag.

Before: ``enhance_folder(..., new_objects="maybe")`` said ``invalid value for --new-objects``,
``enhance_folder`` without labels ``enhance needs --labels``, ``Predictor`` on a machine without
CUDA ``use --device cpu``: flags a library user has not got. Now each names both
(``new_objects (--new-objects)``, :func:`sam2elnet.option_checks.api_option`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sam2elnet.errors import UserError


def _folders(tmp_path: Path) -> tuple[Path, Path]:
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    return images, labels


def test_folder_job_option_errors_name_the_argument_and_the_flag(tmp_path: Path) -> None:
    from sam2elnet.engine.infer import annotate_folder, enhance_folder

    images, labels = _folders(tmp_path)
    model, out = tmp_path / "m.pt", tmp_path / "out"
    with pytest.raises(UserError) as err:
        enhance_folder(model, images, labels, out, new_objects="maybe")  # type: ignore[arg-type]
    assert (
        str(err.value)
        == "invalid value for new_objects (--new-objects): 'maybe' (choose drop | keep)"
    )
    with pytest.raises(UserError) as err:
        annotate_folder(model, images, out, tta=99)
    assert str(err.value).startswith("invalid value for tta (--tta): 99 (")
    with pytest.raises(UserError) as err:
        enhance_folder(model, images, None, out)
    assert str(err.value) == (
        "enhance needs labels (--labels): a folder or a vector file of coarse labels; or split "
        "(--split) with a dataset whose split folders hold a coarse/ folder"
    )


def test_the_cuda_refusal_names_the_argument_and_the_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    from sam2elnet.engine.runtime import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError) as err:
        resolve_device("cuda")
    assert str(err.value) == (
        "device 'cuda' requested but CUDA is not available; use device='cpu' (--device cpu)"
    )
