"""A resumed run's ``--weights`` file is compared as the file the run recorded.

Before: two equal ``--weights`` texts were one setting before any SHA-256 was looked at, so
``--weights sam2.pt`` resumed from another working folder (``elnet train --resume``, ``elnet cv``)
went on with whatever ``sam2.pt`` lay there; the ``ln -s`` hint for a saved file not on this
machine named a relative saved path (relative to an unknown folder); and ``elnet experiment``
recorded no digest, so an experiment moved to a node holding the same file at another path was
refused. Now the runs record the file's absolute path beside its digest
(``model.checkpoint_files.weights_record``), recorded digests decide (same bytes elsewhere: the
same setting; other bytes under the same text: refused, naming both files), the hint names
absolute paths, and ``experiment.json`` records both as ``cv_config.json`` does. No training here:
the comparisons run before any.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from helpers_data import tiny_experiment_config

from sam2elnet.config import TrainConfig
from sam2elnet.engine.train_setup import resumed_config
from sam2elnet.errors import UserError
from sam2elnet.pipeline.crossval_config import CVConfig, changed_options

BYTES, OTHER = b"PK\x03\x04 the SAM2 weights", b"PK\x03\x04 other SAM2 weights"


def _folders(tmp_path: Path, a_bytes: bytes, b_bytes: bytes) -> tuple[Path, Path]:
    """Two working folders, each with its own ``sam2.pt``."""
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, data in ((a, a_bytes), (b, b_bytes)):
        folder.mkdir()
        (folder / "sam2.pt").write_bytes(data)
    return a, b


def _cv(tmp_path: Path, weights: str) -> CVConfig:
    train = {"size": "micro", "epochs": 2, "image_size": 32, "weights": weights}
    return CVConfig(data=tmp_path / "data", out=tmp_path / "cv", folds=3, train=train)


def _train(tmp_path: Path, weights: str) -> TrainConfig:
    return TrainConfig(data=tmp_path, out=tmp_path / "run", weights=weights, epochs=3)


def test_a_relative_weights_text_resumed_from_another_folder_is_compared_by_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = _folders(tmp_path, BYTES, OTHER)
    monkeypatch.chdir(a)
    record = {  # what the run started in a/ recorded
        "weights_path": str((a / "sam2.pt").resolve()),
        "weights_sha256": hashlib.sha256(BYTES).hexdigest(),
    }
    cv_record = {**_cv(tmp_path, "sam2.pt").identity(), "resolved": record}
    assert changed_options(_cv(tmp_path, "sam2.pt"), cv_record) == []  # from the same folder
    monkeypatch.chdir(b)  # the same text names b/sam2.pt here: other bytes, another setting
    want = (
        f"--weights 'sam2.pt' (saved: 'sam2.pt'; {(b / 'sam2.pt').resolve()} holds other bytes "
        f"than {(a / 'sam2.pt').resolve()}, the file the run was made with: give --weights "
        f"{(a / 'sam2.pt').resolve()})"
    )
    assert changed_options(_cv(tmp_path, "sam2.pt"), cv_record) == [want]
    source = tmp_path / "run" / "config.yaml"
    with pytest.raises(UserError) as err:  # elnet train --resume: last.pt's record
        resumed_config(_train(tmp_path, "sam2.pt"), _train(tmp_path, "sam2.pt"), source, record)
    assert str(err.value) == (
        f"{source}: --resume continues the run saved in config.yaml; {want} would change it: "
        "drop the option, or start a new run with another --out"
    )
    # the same bytes in this folder: the same setting (the run's folder need not be here)
    (b / "sam2.pt").write_bytes(BYTES)
    (a / "sam2.pt").unlink()
    assert changed_options(_cv(tmp_path, "sam2.pt"), cv_record) == []
    cfg = resumed_config(_train(tmp_path, "sam2.pt"), _train(tmp_path, "sam2.pt"), source, record)
    assert cfg.weights == "sam2.pt"
    # an older record holds only the text: read as before, in the folder it is given from
    older = {**cv_record, "resolved": {}}
    assert changed_options(_cv(tmp_path, "sam2.pt"), older) == []
    from sam2elnet.model.checkpoint_files import weights_record

    monkeypatch.chdir(a)
    (a / "sam2.pt").write_bytes(BYTES)
    assert weights_record("sam2.pt") == record  # the record the runs write


def test_other_bytes_at_the_recorded_path_are_another_setting(tmp_path: Path) -> None:
    a, _ = _folders(tmp_path, BYTES, BYTES)
    w = str(a / "sam2.pt")
    sha = hashlib.sha256(BYTES).hexdigest()
    cv_record = {**_cv(tmp_path, w).identity(), "resolved": {"weights_sha256": sha}}
    (a / "sam2.pt").write_bytes(OTHER)  # replaced in place since the run recorded it
    assert changed_options(_cv(tmp_path, w), cv_record) == [
        f"--weights '{w}' (saved: '{w}'; {(a / 'sam2.pt').resolve()} holds other bytes than when "
        "the run recorded it: put back the file the run was made with)"
    ]


def test_the_link_hint_names_absolute_paths_for_a_relative_saved_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The saved file not on this machine and no digest of it recorded: the ``ln -s`` named the
    saved path as recorded (``ln -s /b/sam2.pt sam2.pt``: relative to which folder?)."""
    _, b = _folders(tmp_path, BYTES, BYTES)
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    given = str(b / "sam2.pt")
    hint = "(saved: 'sam2.pt', not on this machine, no fingerprint of it recorded: if {g} is the "
    hint += "same file, link it there: ln -s {g} {s})"
    # a run that recorded the file's path but could not read it (no digest): that path
    recorded = {**_cv(tmp_path, "sam2.pt").identity(), "resolved": {"weights_path": "/n/a.pt"}}
    (change,) = changed_options(_cv(tmp_path, given), recorded)
    assert change == f"--weights '{given}' " + hint.format(g=b.resolve() / "sam2.pt", s="/n/a.pt")
    # an older record (only the text): the text as it is read here, from this folder
    older = {**recorded, "resolved": {}}
    (change,) = changed_options(_cv(tmp_path, given), older)
    assert change == f"--weights '{given}' " + hint.format(
        g=b.resolve() / "sam2.pt", s=here.resolve() / "sam2.pt"
    )
    (here / "sam2.pt").symlink_to(b.resolve() / "sam2.pt")  # the link it says: then it fits
    assert changed_options(_cv(tmp_path, given), older) == []


def _finished_experiment(tmp_path: Path, weights: Path) -> Path:
    """An experiment folder started with ``weights`` whose split stage is done."""
    from sam2elnet.pipeline.experiment_resume import settle_identity

    out = tmp_path / "exp"
    settle_identity(tiny_experiment_config(tmp_path / "data", out, weights=str(weights)), out)
    (out / "stages").mkdir()
    (out / "stages" / "split.json").write_text("{}")
    return out


def test_an_experiment_moved_to_a_node_with_the_weights_elsewhere_goes_on(tmp_path: Path) -> None:
    from sam2elnet.pipeline.experiment_resume import settle_identity

    a, b = _folders(tmp_path, BYTES, BYTES)
    out = _finished_experiment(tmp_path, a / "sam2.pt")
    made = json.loads((out / "experiment.json").read_text())
    (a / "sam2.pt").unlink()  # node A's path is not on this machine
    cfg, ident, _ = settle_identity(
        tiny_experiment_config(tmp_path / "data", out, weights=str(b / "sam2.pt")), out
    )  # before: refused, --weights .../b/sam2.pt (saved: .../a/sam2.pt)
    assert cfg.weights == ident["weights"] == str(b / "sam2.pt")
    assert made["resolved"] == {  # recorded as cv_config.json records it
        "weights_path": str((a / "sam2.pt").resolve()),
        "weights_sha256": hashlib.sha256(BYTES).hexdigest(),
    }
    assert json.loads((out / "experiment.json").read_text())["resolved"] == {
        "weights_path": str((b / "sam2.pt").resolve()),
        "weights_sha256": hashlib.sha256(BYTES).hexdigest(),
    }
    # other bytes: another experiment, both files named
    (out / "experiment.json").write_text(json.dumps(made))
    (b / "sam2.pt").write_bytes(OTHER)
    with pytest.raises(UserError) as err:
        settle_identity(
            tiny_experiment_config(tmp_path / "data", out, weights=str(b / "sam2.pt")), out
        )
    assert str(err.value) == (
        f"{out}: this folder holds an experiment with other settings: --weights {b / 'sam2.pt'} "
        f"(saved: {a / 'sam2.pt'}; {(b / 'sam2.pt').resolve()} holds other bytes than "
        f"{(a / 'sam2.pt').resolve()}, the file the run was made with (not on this machine): "
        "give --weights a copy of that file); give the saved values to continue it, or choose a "
        "new --out or delete the folder"
    )


def test_cli_cv_refuses_the_relative_weights_of_another_folder_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``elnet cv --weights sam2.pt`` into a run started with that text from another folder,
    whose file held other bytes: exit 2, one ``error:`` line naming both files (was: the run
    went on with the other file); nothing written."""
    import torch

    from sam2elnet.cli import main

    a, b = _folders(tmp_path, BYTES, OTHER)
    for folder, value in ((a, 0.0), (b, 1.0)):  # checkpoints (the CLI reads a few bytes first)
        torch.save({"model": {"x": torch.full((1,), value)}}, folder / "sam2.pt")
    (tmp_path / "data").mkdir()
    out = tmp_path / "cv"
    out.mkdir()
    record = {
        "weights_path": str((a / "sam2.pt").resolve()),
        "weights_sha256": hashlib.sha256((a / "sam2.pt").read_bytes()).hexdigest(),
    }
    first = {**_cv(tmp_path, "sam2.pt").identity(), "resolved": record}
    (out / "cv_config.json").write_text(json.dumps(first))
    before = (out / "cv_config.json").read_bytes()
    monkeypatch.chdir(b)
    argv = ["cv", "--data", str(tmp_path / "data"), "--out", str(out), "--folds", "3"]
    argv += ["--size", "micro", "--epochs", "2", "--image-size", "32", "--weights", "sam2.pt"]
    capsys.readouterr()
    assert main([*argv, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: {out}: folder holds a cross-validation run with other settings: --weights "
        f"'sam2.pt' (saved: 'sam2.pt'; {(b / 'sam2.pt').resolve()} holds other bytes than "
        f"{(a / 'sam2.pt').resolve()}, the file the run was made with: give --weights "
        f"{(a / 'sam2.pt').resolve()}); they would change its folds' results: give the saved "
        "values to continue it, or choose a new --out\n"
    )
    assert (out / "cv_config.json").read_bytes() == before


def test_a_hugging_face_folder_is_the_same_setting_after_a_readme_is_added(tmp_path):
    """The digest of a weights folder covers its ``*.safetensors`` (what the loader reads): a
    README or config added later is the same setting, another safetensors file is not; a record
    made over every file of the folder (before 2026-12-04) still matches the unchanged folder."""
    from sam2elnet.model.checkpoint_files import _folder_digest, weights_files, weights_record

    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "model.safetensors").write_bytes(BYTES)
    (hf / "config.json").write_text("{}")
    record = weights_record(str(hf))
    old_record = {**record, "weights_sha256": _folder_digest(hf, "*")}
    (hf / "README.md").write_text("added by a download tool")
    assert weights_files(str(hf), str(hf), record).same
    (hf / "README.md").unlink()
    assert weights_files(str(hf), str(hf), old_record).same
    (hf / "model.safetensors").write_bytes(OTHER)
    for rec in (record, old_record):
        files = weights_files(str(hf), str(hf), rec)
        assert not files.same
        assert "holds other bytes than when the run recorded it" in files.change()


def test_a_given_file_not_on_this_machine_names_the_recorded_one_that_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--weights a/sam2.pt`` resumed from another folder, where it names no file: the refusal
    ended ``.../b/a/sam2.pt is not on this machine)`` without the recorded file, which is here
    with the recorded digest; now it says to give that file (only when it is here and, where a
    digest is recorded, holds those bytes)."""
    from sam2elnet.model.checkpoint_files import weights_files

    a, b = _folders(tmp_path, BYTES, OTHER)
    made = (a / "sam2.pt").resolve()
    record = {"weights_path": str(made), "weights_sha256": hashlib.sha256(BYTES).hexdigest()}
    monkeypatch.chdir(b)
    missing = (b / "a" / "sam2.pt").resolve()
    head = f"--weights 'a/sam2.pt' (saved: 'a/sam2.pt'; {missing} is not on this machine"
    for rec in (record, {"weights_path": str(made)}):  # with a digest recorded, and without
        files = weights_files("a/sam2.pt", "a/sam2.pt", rec)
        assert not files.same
        assert files.change() == f"{head}; the run was made with {made}: give --weights {made})"
    (a / "sam2.pt").write_bytes(OTHER)  # other bytes than the run recorded: not named
    assert weights_files("a/sam2.pt", "a/sam2.pt", record).change() == head + ")"
    (a / "sam2.pt").unlink()  # the recorded file not here either: not named
    assert weights_files("a/sam2.pt", "a/sam2.pt", {"weights_path": str(made)}).change() == (
        head + ")"
    )


def test_an_experiment_on_the_cached_weights_records_them_and_refuses_other_cached_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ``weights``: the experiment starts from the cached official checkpoint. Before,
    ``experiment.json`` recorded no path or digest of it (``resolved`` both None), so a re-run
    that found other bytes in the cache went on with them unnoticed; now they are recorded as a
    ``--weights`` file is, and other bytes (or none cached now) are another experiment."""
    from sam2elnet.pipeline.experiment_resume import settle_identity

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("SAM2ELNET_HOME", str(home))
    cached = home / "sam2.1_hiera_tiny.pt"
    cached.write_bytes(BYTES)
    out = tmp_path / "exp"

    def cfg(**kw):
        return tiny_experiment_config(tmp_path / "data", out, size="tiny", **kw)

    settle_identity(cfg(), out)
    (out / "stages").mkdir()
    (out / "stages" / "split.json").write_text("{}")
    made = json.loads((out / "experiment.json").read_text())
    assert made["weights"] is None
    assert made["resolved"] == {
        "weights_path": str(cached.resolve()),
        "weights_sha256": hashlib.sha256(BYTES).hexdigest(),
        "cached": True,
    }
    assert settle_identity(cfg(), out)[0].weights is None  # the same bytes: goes on
    tail = "; give the saved values to continue it, or choose a new --out or delete the folder"
    head = f"{out}: this folder holds an experiment with other settings: --weights not given "
    head += f"(saved: not given, the cached SAM2 weights {cached.resolve()}"
    cached.write_bytes(OTHER)  # another download, another release: other bytes in the cache
    with pytest.raises(UserError) as err:
        settle_identity(cfg(), out)
    assert str(err.value) == (
        f"{head}; {cached.resolve()} holds other bytes than when the run recorded it: put back "
        f"the file the run was made with){tail}"
    )
    kept = tmp_path / "kept.pt"  # the file the run was made with, given as --weights: goes on
    kept.write_bytes(BYTES)
    assert settle_identity(cfg(weights=str(kept)), out)[0].weights == str(kept)
    (out / "experiment.json").write_text(json.dumps(made))
    cached.unlink()  # nothing cached now: the run would go on from a random encoder
    with pytest.raises(UserError) as err:
        settle_identity(cfg(), out)
    assert str(err.value) == (
        f"{head}; none cached now: put that file back, or give --weights a copy of it){tail}"
    )
    # an experiment started with nothing cached, whose cache now holds a checkpoint
    (out / "experiment.json").unlink()
    (out / "stages" / "split.json").unlink()
    settle_identity(cfg(), out)
    (out / "stages" / "split.json").write_text("{}")
    assert json.loads((out / "experiment.json").read_text())["resolved"] == {
        "weights_path": None,
        "weights_sha256": None,
        "cached": True,
    }
    cached.write_bytes(BYTES)
    with pytest.raises(UserError) as err:
        settle_identity(cfg(), out)
    assert str(err.value) == (
        f"{out}: this folder holds an experiment with other settings: --weights not given "
        f"(saved: not given, no SAM2 weights cached then; the cache now holds {cached.resolve()}: "
        f"give --weights none to go on as started){tail}"
    )
    assert settle_identity(cfg(weights="none"), out)[0].weights == "none"
    # a record made before the cache was recorded (no "cached"): compared as the text, as before
    older = {**made, "resolved": {"weights_path": None, "weights_sha256": None}}
    (out / "experiment.json").write_text(json.dumps(older))
    assert settle_identity(cfg(), out)[0].weights is None


def test_train_and_cv_without_weights_do_not_read_the_weights_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unlike ``elnet experiment``, ``elnet train`` and ``elnet cv`` without ``--weights`` build a
    random trunk whatever the cache holds, so their records (``last.pt``, ``cv_config.json``,
    ``fold.json``: ``weights_path`` / ``weights_sha256`` None) have no cached file to name. If
    they ever start from the cache, they must record and compare it as ``experiment.json`` does
    (``pipeline.experiment_resume._weights_compared``): this test says so."""
    from sam2elnet.data.normalize import NormalizationConfig
    from sam2elnet.engine.train_setup import build_model_for
    from sam2elnet.model import weights_cache
    from sam2elnet.model.checkpoint_files import weights_record
    from sam2elnet.pipeline.crossval_fold import fold_config

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("SAM2ELNET_HOME", str(home))
    (home / "sam2.1_hiera_tiny.pt").write_bytes(BYTES)  # not a checkpoint: reading it would fail

    looked_up: list[str] = []  # sizes looked up (experiment_engine.cached_weights swallows errors)

    def find(size: str = "tiny", home: Path | None = None) -> Path | None:
        looked_up.append(size)
        return None

    monkeypatch.setattr(weights_cache, "find_cached_weights", find)
    cv = CVConfig(data=tmp_path / "data", out=tmp_path / "cv", folds=3, train={"size": "tiny"})
    for cfg in (
        TrainConfig(data=tmp_path, out=tmp_path / "run", size="tiny"),
        fold_config(cv, tmp_path / "fold-1", "auto"),
    ):
        assert cfg.weights is None
        model = build_model_for(cfg, 3, NormalizationConfig())
        assert model.config.weights is None  # a random trunk
    assert looked_up == [], "the weights cache was read: record it as experiment.json does"
    assert weights_record(None) == {"weights_path": None, "weights_sha256": None}
    from sam2elnet.pipeline.experiment_engine import cached_weights

    assert cached_weights("tiny") is None and looked_up == ["tiny"]  # the lookup is watched
