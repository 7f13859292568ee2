"""The SAM2 weights file at another absolute path on another node is the same setting.

``elnet cv --fold NAME`` trains one fold per node; the summary run (no ``--fold``) on the
folder the folds were copied into refused every fold as "trained with other settings: --weights
'/scratch/b/sam2.pt' (saved: '/home/a/sam2.pt')" when the file lay elsewhere on each node:
paths were one setting only when they resolved to the same file. Now the runs record the
file's SHA-256 (``fold.json``, ``cv_config.json``, ``last.pt``) and the same bytes at another
path are the same setting; without a record and without the saved file here the refusal says
how to make it fit. No training here: the comparisons run before any.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sam2elnet.errors import UserError
from sam2elnet.pipeline.crossval_config import CVConfig

BYTES = b"PK\x03\x04 the same SAM2 weights"


def _nodes(tmp_path: Path) -> tuple[Path, Path]:
    """The weights at /a/sam2.pt (the node that trained) and /b/sam2.pt (this one)."""
    a, b = tmp_path / "node-a" / "sam2.pt", tmp_path / "node-b" / "sam2.pt"
    for p in (a, b):
        p.parent.mkdir(parents=True)
        p.write_bytes(BYTES)
    return a, b


def _cfg(tmp_path: Path, weights: Path) -> CVConfig:
    train = {"size": "micro", "epochs": 2, "image_size": 32, "weights": str(weights)}
    return CVConfig(data=tmp_path / "data", out=tmp_path / "cv", folds=3, train=train)


def _want(cfg: CVConfig) -> dict:
    from sam2elnet.pipeline.crossval_fold import fold_config, fold_want
    from sam2elnet.pipeline.crossval_plan import Fold

    root = cfg.out / "folds" / "fold-1"
    return fold_want(Fold("fold-1", ["a", "b"], {"test": ["c"]}), fold_config(cfg, root, "roads"))


def _trained_fold(cfg: CVConfig, record: dict) -> Path:
    root = cfg.out / "folds" / "fold-1"
    root.mkdir(parents=True)
    (root / "fold.json").write_text(json.dumps(record))
    (root / "result.json").write_text(json.dumps({"fold": "fold-1", "tests": {}}))
    return root


def test_a_fold_copied_from_a_node_with_the_weights_elsewhere_is_reused(tmp_path: Path) -> None:
    import hashlib

    from sam2elnet.pipeline.crossval_reuse import check_reuse

    a, b = _nodes(tmp_path)
    made = _want(_cfg(tmp_path, a))  # fold.json as node A wrote it
    assert made["weights_sha256"] == hashlib.sha256(BYTES).hexdigest()
    a.unlink()  # node A's path is not on this machine
    root = _trained_fold(_cfg(tmp_path, b), made)
    want = _want(_cfg(tmp_path, b))
    said: list[str] = []
    check_reuse(root, want, "fold-1", said.append)
    assert said == [] and (root / "result.json").is_file()  # reused, not trained again
    assert json.loads((root / "fold.json").read_text())["train"]["weights"] == str(b)
    # other bytes at the other path: another setting, refused as before
    (root / "fold.json").write_text(json.dumps(made))
    b.write_bytes(b"PK\x03\x04 other weights")
    with pytest.raises(UserError, match=r"other settings: --weights '.*node-b/sam2.pt' \(saved"):
        check_reuse(root, _want(_cfg(tmp_path, b)), "fold-1", said.append)


def test_an_older_fold_without_a_fingerprint_is_refused_saying_what_to_do(tmp_path: Path) -> None:
    from sam2elnet.pipeline.crossval_reuse import check_reuse

    a, b = _nodes(tmp_path)
    made = {k: v for k, v in _want(_cfg(tmp_path, a)).items() if k != "weights_sha256"}
    root = _trained_fold(_cfg(tmp_path, b), made)
    want = _want(_cfg(tmp_path, b))
    check_reuse(root, want, "fold-1", print)  # node A's file here: compared by its bytes
    (root / "fold.json").write_text(json.dumps(made))
    a.unlink()  # not here, and no record of its bytes: refused, saying how to make it fit
    with pytest.raises(UserError) as err:
        check_reuse(root, want, "fold-1", print)
    assert str(err.value) == (
        f"{root}: fold-1 holds a trained network, but it was trained with other settings: "
        f"--weights '{b}' (saved: '{a}', not on this machine, no fingerprint of it recorded: if "
        f"{b} is the same file, link it there: ln -s {b.resolve()} {a}); give the saved values "
        "to reuse it (hours of training, perhaps), or move the folder away to train it again"
    )


def test_cv_config_and_train_resume_take_the_same_bytes_elsewhere(tmp_path: Path) -> None:
    import hashlib

    from sam2elnet.config import TrainConfig
    from sam2elnet.engine.train_setup import resumed_config
    from sam2elnet.pipeline.crossval_config import changed_options

    a, b = _nodes(tmp_path)
    digest = hashlib.sha256(BYTES).hexdigest()
    recorded = {**_cfg(tmp_path, a).identity(), "resolved": {"weights_sha256": digest}}
    a.unlink()
    assert changed_options(_cfg(tmp_path, b), recorded) == []
    older = {**recorded, "resolved": {}}  # recorded before the digest
    (change,) = changed_options(_cfg(tmp_path, b), older)
    assert change.startswith(f"--weights '{b}' (saved: '{a}', not on this machine, ")
    # elnet train --resume: last.pt's digest (state["weights_sha256"])
    saved = TrainConfig(data=tmp_path, out=tmp_path / "run", weights=str(a), epochs=3)
    given = TrainConfig(data=tmp_path, out=tmp_path / "run", weights=str(b), epochs=3)
    source = tmp_path / "run" / "config.yaml"
    recorded_last = {"weights_sha256": digest}  # last.pt's record (weights_record)
    assert resumed_config(saved, given, source, recorded_last).weights == str(b)  # read from here
    with pytest.raises(UserError, match=r"--weights .*, not on this machine, .*ln -s"):
        resumed_config(saved, given, source)
    b.write_bytes(b"PK other")
    with pytest.raises(UserError) as err:
        resumed_config(saved, given, source, recorded_last)
    assert (
        f"--weights '{b}' (saved: '{a}'; {b} holds other bytes than {a}, the file the run "
        in str(err.value)
        and str(err.value).endswith(
            "would change it: drop the option, or start a new run with another --out"
        )
    )
