"""Messages of the Python API that named only ``elnet``'s flags now name the argument too.

Before: ``annotate_folder(..., max_memory="2M")`` said ``within --max-memory 2.00 MB``,
``annotate_folder(..., resume=True)`` into a folder of another model ``--model m.pt is another
model ... give a new --out ... or drop --resume``, ``prepare_data`` ``raise --fraction``,
``evaluate_folders`` ``--pred and --truth must both be files`` and an unfitted evaluator
``train again ... or with --quality-folds``: flags a library user has not got. Now each names
the argument and the flag (``max_memory (--max-memory)``,
:func:`sam2elnet.option_checks.api_option`); inside ``elnet`` (:func:`command_line_names`) the
text is the flag alone, byte for byte as before.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers_data import grey_rgb, make_dataset, micro_model_file, small_cfg, write_png

from sam2elnet.errors import UserError
from sam2elnet.option_checks import command_line_names


def _both(make: Callable[[], Any]) -> tuple[str, str]:
    """``make()``'s text (a returned string or a raised UserError) from the Python API and
    inside ``elnet`` (:func:`command_line_names`)."""

    def text() -> str:
        try:
            return str(make())
        except UserError as err:
            return str(err)

    api = text()
    with command_line_names():
        cli = text()
    return api, cli


def test_memory_budget_messages_name_max_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sam2elnet.engine import folder_large
    from sam2elnet.engine.folder_large import WindowedImages
    from sam2elnet.engine.predictor import Predictor
    from sam2elnet.engine.window_size import WindowSize
    from sam2elnet.pipeline.scenes import _check_window_memory

    api, cli = _both(lambda: WindowSize(768, True, 1_500_000_000).note())
    assert api == (
        "windows of 768 px (auto: the largest that fits max_memory (--max-memory) 1.50 GB; "
        "--tile overrides)"
    )
    assert (
        cli
        == "windows of 768 px (auto: the largest that fits --max-memory 1.50 GB; --tile overrides)"
    )

    tally = WindowedImages(n_images=3, n_windows=12, seconds=0.4)
    api, cli = _both(lambda: tally.summary("annotate", WindowSize(64, False), 2_000_000))
    assert api == (
        "annotate window by window: 3 images too large to predict whole within max_memory "
        "(--max-memory) 2.00 MB, 12 windows of up to 64 px (--tile 64) in 0.4 s"
    )
    assert cli == (
        "annotate window by window: 3 images too large to predict whole within --max-memory "
        "2.00 MB, 12 windows of up to 64 px (--tile 64) in 0.4 s"
    )

    # a budget below the model and runtime alone: annotate's warning and scene's refusal
    net = Predictor.from_file(micro_model_file(tmp_path / "m.pt"), max_memory="2M")
    said: list[str] = []
    monkeypatch.setattr(
        folder_large, "warn_once", lambda _log, _kind, text, **_k: said.append(text)
    )
    window = WindowSize(64, False, net.max_memory)
    _both(lambda: folder_large._warn_window_memory(net, Path("big.png"), window, False, (96, 96)))
    need = folder_large.memory.format_bytes(net.whole_bytes(64 * 64))
    api, cli = said
    assert api.startswith(
        f"big.png: one 64 x 64 px window (--tile 64) needs about {need}, more than max_memory "
        "(--max-memory) 2.00 MB; the model and runtime alone take about "
    )
    assert api.endswith(f"give max_memory (--max-memory) {need} or more")
    assert cli == api.replace("max_memory (--max-memory)", "--max-memory")

    api, cli = _both(lambda: _check_window_memory(net, Path("s.tif"), window, False, (64, 64)))
    assert api.startswith("max_memory (--max-memory) 0.002G: one 64 x 64 px window (--tile 64) ")
    assert "so no --tile keeps to it: give max_memory (--max-memory) " in api
    assert cli.startswith("--max-memory 0.002G: one 64 x 64 px window (--tile 64) ")
    assert cli == api.replace("max_memory (--max-memory)", "--max-memory")


def test_an_unfitted_evaluator_names_the_quality_folds_setting() -> None:
    from sam2elnet.engine.quality_filter import keep_threshold, more_labels_advice
    from sam2elnet.model.quality import QualityEvaluator

    api, cli = _both(lambda: keep_threshold(QualityEvaluator(), target_precision=0.9))
    assert api.endswith(
        "; use --min-quality, or train again on more labelled images (e.g. reviewed labels "
        "together with the earlier ones, docs/review.md), or with quality.crossfit_folds "
        "(--quality-folds), which scores every labelled image out of fold (docs/training.md)"
    )
    assert cli.endswith(
        "; use --min-quality, or train again on more labelled images (e.g. reviewed labels "
        "together with the earlier ones, docs/review.md), or with --quality-folds, which scores "
        "every labelled image out of fold (docs/training.md)"
    )
    assert api.endswith(more_labels_advice())


def _other_model_folder(tmp_path: Path) -> tuple[Path, Path]:
    """A folder whose labels ``builtin:smoothing`` made, and another model file."""
    from sam2elnet.data.run_model import builtin_identity, write_model_identity

    out = tmp_path / "out"
    out.mkdir()
    write_model_identity(out, {**builtin_identity("builtin:smoothing"), "bands": None})
    return out, micro_model_file(tmp_path / "m.pt")


def test_resume_refusals_name_the_arguments(tmp_path: Path) -> None:
    """``check_resume_model`` as ``scene_job`` calls it (``model``, ``out``)."""
    from sam2elnet.data.run_model import model_identity
    from sam2elnet.engine.folder_inputs import check_resume_model

    out, model = _other_model_folder(tmp_path)
    version = model_identity(model)["model_version"]
    api, cli = _both(lambda: check_resume_model(out, model, True))
    assert api == (
        f"{out}: its labels were made by model builtin:smoothing; model (--model) {model} is "
        f"another model ({version}), and resume (--resume) would mix the two: give a new out "
        "(--out) for this model, resume with model (--model) builtin:smoothing, or drop resume "
        "(--resume) to start over"
    )
    assert cli == (
        f"{out}: its labels were made by model builtin:smoothing; --model {model} is another "
        f"model ({version}), and --resume would mix the two: give a new --out for this model, "
        "resume with --model builtin:smoothing, or drop --resume to start over"
    )
    api, cli = _both(lambda: check_resume_model(out, "builtin:smoothing", True, [3, 2, 1]))
    assert api == (
        f"{out}: its labels were read from bands the model's default (no bands (--bands)); this "
        "run's bands (--bands) is 3,2,1, and resume (--resume) would mix the two: resume with "
        "the same bands (--bands), give a new out (--out) for these bands, or drop resume "
        "(--resume) to start over"
    )
    assert cli == (
        f"{out}: its labels were read from bands the model's default (no --bands); this run's "
        "--bands is 3,2,1, and --resume would mix the two: resume with the same --bands, give a "
        "new --out for these bands, or drop --resume to start over"
    )


def test_annotate_folder_names_its_own_arguments(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``annotate_folder`` takes ``model_path`` and ``out_dir``: the refusal names those."""
    from sam2elnet.engine.folder_inputs import check_resume_model, read_done
    from sam2elnet.engine.infer import annotate_folder

    out, model = _other_model_folder(tmp_path)
    image = write_png(tmp_path / "images" / "a.png", grey_rgb(32, 0))
    with pytest.raises(UserError) as err:
        annotate_folder(model, [image], out, resume=True, progress=False)
    assert f"; model_path (--model) {model} is another model (" in str(err.value)
    assert ": give a new out_dir (--out) for this model, resume with model_path (--model) " in (
        str(err.value)
    )
    # a folder made before the record: the warning; a quality.csv that is not text
    (out / "model_id.json").unlink()
    (out / "quality.csv").write_bytes(b"\x00\xff\xfe" * 64)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        _both(lambda: check_resume_model(out, model, True))
    api, cli = [r.getMessage() for r in caplog.records]
    assert api.endswith(
        f"resume (--resume) cannot check that its labels come from model (--model) {model}"
    )
    assert cli.endswith(f": --resume cannot check that its labels come from --model {model}")
    api, cli = _both(lambda: read_done(out, ["image"]))
    assert api.endswith("delete it to redo every image, or drop resume (--resume)")
    assert cli.endswith("delete it to redo every image, or drop --resume")


def test_training_data_refusals_name_the_config_fields(tmp_path: Path) -> None:
    from sam2elnet.engine.train_data import prepare_data

    data = make_dataset(tmp_path / "d", n=4)
    api, cli = _both(lambda: prepare_data(small_cfg(data, tmp_path / "r", fraction=0.01)))
    assert api.endswith(
        "fraction (--fraction) 0.01 of 4 labelled images selects none; raise fraction (--fraction)"
    )
    assert cli.endswith(": --fraction 0.01 of 4 labelled images selects none; raise --fraction")
    api, cli = _both(lambda: prepare_data(small_cfg(data, tmp_path / "r", val_fraction=0.99)))
    assert api.endswith(
        "no training images left after the validation split; lower val_fraction (--val-fraction)"
    )
    assert cli.endswith(
        ": no training images left after the validation split; lower --val-fraction"
    )
    norm = prepare_data(small_cfg(data, tmp_path / "r")).norm.model_dump(mode="json")
    stats = tmp_path / "stats.json"
    stats.write_text(json.dumps({"normalization": {**norm, "low": [0, 0], "high": [1, 1]}}))
    api, cli = _both(lambda: prepare_data(small_cfg(data, tmp_path / "r", norm_stats=stats)))
    assert api == (
        f"{stats}: norm_stats (--norm-stats) has statistics for 2 bands but the training images "
        "have 3; compute them with `elnet stats --data` on this dataset"
    )
    assert cli == api.replace("norm_stats (--norm-stats)", "--norm-stats")


def test_evaluation_input_refusals_name_the_arguments(tmp_path: Path) -> None:
    from sam2elnet.engine.eval_inputs import (
        Pairs,
        check_not_images,
        no_pairs_error,
        pair_inputs,
        single_pair,
    )

    folder = tmp_path / "masks"
    folder.mkdir()
    pred, gpkg, geojson = tmp_path / "a_pred.png", tmp_path / "a.gpkg", tmp_path / "b.geojson"
    for f in (pred, gpkg, geojson):
        f.write_bytes(b"x")
    api, cli = _both(lambda: single_pair(pred, folder))
    assert api.startswith(
        "pred_dir (--pred) and truth_dir (--truth) must both be files (one pair) or both "
        f"folders, but {pred} is a file and {folder} a folder;"
    )
    assert cli.startswith(
        f"--pred and --truth must both be files (one pair) or both folders, but {pred} is a "
        f"file and {folder} a folder;"
    )
    refusal = (
        "truth_split (--split) needs a dataset root as truth_dir (--truth), not a file; drop "
        "truth_split (--split)"
    )
    old = "--split needs a dataset root as --truth, not a file; drop --split"
    assert _both(lambda: single_pair(pred, pred, "test")) == (
        f"{pred}: {refusal}",
        f"{pred}: {old}",
    )
    assert _both(lambda: pair_inputs(folder, gpkg, "test", [])) == (
        f"{gpkg}: {refusal}",
        f"{gpkg}: {old}",
    )
    api, cli = _both(lambda: single_pair(gpkg, geojson))
    assert api.startswith(
        f"{gpkg}: pred_dir (--pred) and truth_dir (--truth) are both polygon files, so there is "
    )
    assert "; polygon predictions are read as one file given as pred_dir (--pred) (e.g. " in api
    assert cli.startswith(f"{gpkg}: --pred and --truth are both polygon files, so there is ")
    assert "; polygon predictions are read as one file given as --pred (e.g. " in cli

    pairs = Pairs({"x": tmp_path / "x_pred.png"}, {"a": gpkg})
    api, cli = _both(lambda: no_pairs_error(tmp_path, folder, pairs))
    assert api.endswith(
        "to score every prediction against the polygons of one file, give "
        f"truth_dir={str(gpkg)!r} (--truth {gpkg})"
    )
    assert cli.endswith(
        f"to score every prediction against the polygons of one file, give --truth {gpkg}"
    )

    image = write_png(tmp_path / "truth" / "a_mask.png", grey_rgb(64, 1))
    mask = write_png(tmp_path / "a_mask.png", np.zeros((64, 64), np.uint8))
    api, cli = _both(lambda: check_not_images({"a": mask}, {"a": image}, ["a"]))
    assert "; truth_dir (--truth) expects ground-truth masks (0/255, 0/1 or class values): " in api
    assert "; --truth expects ground-truth masks (0/255, 0/1 or class values): " in cli
