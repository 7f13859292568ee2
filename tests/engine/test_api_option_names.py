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
        "enhance needs labels (--labels): a folder or a vector file of coarse labels, or one "
        "georeferenced GeoTIFF for all the images; or split (--split) with a dataset whose "
        "split folders hold a coarse/ folder"
    )


def test_the_cuda_refusal_names_the_argument_and_the_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    from sam2elnet.engine.runtime import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError) as err:
        resolve_device("cuda")
    assert str(err.value) == (
        "device 'cuda' requested but CUDA is not available; use device='cpu' (--device cpu)"
    )


def test_predictor_messages_name_the_argument_and_the_flag(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``Predictor(max_memory="1M")`` said ``--max-memory '1M' must be ...`` and a model file
    without a quality evaluator ``trained with --no-quality``: flags a library user has not got.
    Now ``max_memory (--max-memory)`` and ``fit_quality=False (--no-quality)``."""
    from sam2elnet.engine.predictor import Predictor
    from sam2elnet.model import ModelConfig, build_model

    model = build_model(ModelConfig(size="micro", in_bands=3))
    with pytest.raises(UserError) as err:
        Predictor(model, {}, precision="32", max_memory="1M")
    assert str(err.value) == (
        "max_memory (--max-memory) '1M' must be a size of at least 1MiB (1.05M), e.g. 1.5G or 800M"
    )
    caplog.clear()
    with caplog.at_level("WARNING"):  # a path of its own: warned once per file and text
        Predictor(model, {}, precision="32", path=tmp_path / "no_evaluator.pt")
    (text,) = [r.getMessage() for r in caplog.records if "not fitted" in r.getMessage()]
    assert "(the model file holds none: trained with fit_quality=False (--no-quality), or " in text
    assert text.endswith("or train without fit_quality=False (--no-quality)")


def test_an_elnet_command_names_the_flag_alone(capsys: pytest.CaptureFixture[str]) -> None:
    """The same messages through ``elnet``: the command line's flag alone (a CLI user has no
    ``device='cpu'`` to type); the API spelling again after the command."""
    from sam2elnet.cli import main
    from sam2elnet.option_checks import api_option, command_line_names

    with command_line_names():
        assert api_option("device='cpu'", "--device cpu") == "--device cpu"
        assert api_option("new_objects") == "--new-objects"
    assert api_option("new_objects") == "new_objects (--new-objects)"
    assert main(["enhance", "--model", "m.pt", "--images", ".", "--new-objects", "maybe"]) == 2
    err = capsys.readouterr().err
    assert "new_objects (" not in err and err.startswith("error:"), err
    assert api_option("max_growth_px", "--max-growth") == "max_growth_px (--max-growth)"
