"""Reuse of an ``elnet cv`` fold folder: what a fold was trained and tested on, and what of it
fits the run (part of :mod:`sam2elnet.pipeline.crossval`).

Each fold records its image ids and training options in ``OUT/folds/<name>/fold.json``; a fold
whose record differs from the run's plan (the data folder changed, an unfinished fold of another
run) is trained again, with one line saying why; a *trained* fold made with other training
options (fold folders copied from runs with other options, a default changed between versions)
is refused, naming the options, before any fold trains, and so is a trained fold of other
images (the data folder changed): a trained network is never deleted. A reused fold keeps the precision and
trunk scale it was trained with (:func:`fold_trained_with`, read from its model file), whatever
``--precision`` says now.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sam2elnet.errors import CheckpointError, UserError
from sam2elnet.utils.atomic import write_json_atomic

__all__ = [
    "FoldModel",
    "check_reuse",
    "refuse_other_settings",
    "fold_label",
    "fold_settings",
    "fold_trained_with",
    "made_in",
    "model_extra",
    "summarise_folds",
]


def fold_label(name: str) -> str:
    """A fold's name for log lines: ``fold-1`` as it is, a cross-domain direction ``A-to-B`` as
    ``fold A-to-B`` (never "fold fold-1")."""
    return name if name.startswith("fold") else f"fold {name}"


FOLD_OWN_PATHS = ("data", "out")
"""TrainConfig fields a fold sets to its own folders (``train-data``, ``run``): not settings.
Left out of ``fold.json``, and of the comparison with records written before (which held them
as the run was given them, absolute or relative to the working folder of the time, so a moved
or copied ``elnet cv`` folder retrained every fold: "trained with other settings (out)")."""


def fold_settings(tcfg: Any) -> dict[str, Any]:
    """The options of a fold's training that change its network: its TrainConfig less the
    runtime options ``--resume`` may change (:data:`~sam2elnet.engine.train_setup.RESUME_MAY_CHANGE`:
    precision, device, threads, quality evaluator...), less :data:`FOLD_OWN_PATHS` (``data``,
    ``out``: the fold's own folders; the image ids stand for the data) and less ``road_buffer`` /
    ``road_buffer_m`` (they change what is measured, not the network; ``OUT/cv_config.json``
    keeps them one value per run). No path of the run's own folder: a moved fold still fits."""
    from sam2elnet.engine.train_setup import RESUME_MAY_CHANGE

    d = tcfg.model_dump(mode="json")
    skip = {*RESUME_MAY_CHANGE, *FOLD_OWN_PATHS, "road_buffer", "road_buffer_m"}
    keep = {k: v for k, v in sorted(d.items()) if k not in skip}
    return json.loads(json.dumps(keep, default=str))


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) else None


def _recorded(root: Path) -> dict[str, Any]:
    """What a fold folder says it was trained and tested on: its ``fold.json``, or for folds
    made before that file existed, ``result.json`` (ids), ``train-data/images`` (training ids of
    an unfinished fold) and ``run/config.yaml`` (settings). Unknown parts are None."""
    from sam2elnet.config import TrainConfig

    rec = _read_json(root / "fold.json")
    if rec is not None:
        return rec
    rec = {"train": None, "train_ids": None, "tests": None}
    if (root / "run" / "config.yaml").is_file():
        try:
            rec["train"] = fold_settings(TrainConfig.load(root / "run" / "config.yaml"))
        except UserError:
            pass
    res = _read_json(root / "result.json")
    if res is not None:
        rec["train_ids"] = res.get("train_ids")
        rec["tests"] = {n: t.get("ids") for n, t in (res.get("tests") or {}).items()}
    elif (root / "train-data" / "images").is_dir():
        rec["train_ids"] = sorted(p.stem for p in (root / "train-data" / "images").iterdir())
    return rec


def _stale(root: Path, want: dict[str, Any]) -> tuple[str, str] | None:
    """Why the work in a fold folder does not fit this run, and what must be redone (``"fold"``:
    train again; ``"tests"``: the network fits, score it again; ``"refuse"``: a trained network
    with other options, which is not thrown away); None when it fits or nothing is there.

    ``OUT/cv_config.json`` already refuses other options into the same ``OUT``; this covers what
    it cannot see: a data folder whose images changed (other fold ids), a fold folder copied from
    another run, settings whose defaults changed between versions, a missing network.
    """
    result, trained, run = root / "result.json", root / "trained.json", root / "run"
    if not (result.is_file() or trained.is_file() or run.is_dir()):
        return None
    rec = _recorded(root)
    if rec.get("train") is None:
        return (
            "no record of the settings it was trained with (no fold.json, no run/config.yaml)",
            "fold",
        )
    from sam2elnet.model.checkpoint_files import weights_files
    from sam2elnet.option_checks import same_setting

    old, new = rec["train"], want["train"]
    keys = (set(old) | set(new)) - set(FOLD_OWN_PATHS)  # an older record's paths: no setting
    # --weights as fold.json records its file (weights_path, weights_sha256): fold folders
    # copied from other nodes hold the same bytes at another path
    weights = weights_files(old.get("weights"), new.get("weights"), rec)
    diff = sorted(k for k in keys if not same_setting(k, old.get(k), new.get(k), weights))
    done = result.is_file() or trained.is_file()  # a trained network: never deleted
    if diff and done:
        from sam2elnet.option_checks import option_change

        what = ", ".join(
            weights.change() if k == "weights" else option_change(k, new.get(k), old.get(k))
            for k in diff
        )
        return f"it was trained with other settings: {what}", "refuse"
    if diff:
        return f"it was trained with other settings ({', '.join(diff)})", "fold"
    if rec.get("train_ids") != want["train_ids"]:
        why = "it was trained on other images (did the data folder change?)"
        return why, "refuse" if done else "fold"
    if not result.is_file() and trained.is_file() and not (run / "model.pt").is_file():
        return "its network (run/model.pt) is missing", "fold"
    if rec.get("tests") is not None and rec["tests"] != want["tests"]:
        return "it was tested on other images (did the data folder change?)", "tests"
    return None


def refuse_other_settings(root: Path, want: dict[str, Any], name: str) -> None:
    """Raise when the fold folder ``root`` holds a trained network made with other training
    options than ``want["train"]``, or on other images than ``want["train_ids"]`` (see
    :func:`check_reuse`); ``elnet cv`` checks every fold it will run before the first one trains,
    so no hour of training comes before the refusal.

    Raises:
        UserError: naming each option with the fold's saved value, or the other images.
    """
    _refuse(_stale(root, want), root, name)


def _refuse(stale: tuple[str, str] | None, root: Path, name: str) -> None:
    if stale is None or stale[1] != "refuse":
        return
    what = "give the saved values" if "settings" in stale[0] else "use the data it was trained on"
    raise UserError(
        f"{fold_label(name)} holds a trained network, but {stale[0]}; {what} to reuse it (hours "
        "of training, perhaps), or move the folder away to train it again",
        root,
    )


def check_reuse(root: Path, want: dict[str, Any], name: str, say: Callable[[str], None]) -> None:
    """Clear what of a fold folder cannot be reused (one line says why), then record ``want``.

    Raises:
        UserError: the folder holds a trained network made with other training options (fold
            folders copied from runs with other options, or a default that changed between
            versions): a trained fold is never deleted; the options are named with their
            saved values.
    """
    stale = _stale(root, want)
    _refuse(stale, root, name)
    if stale is not None:
        why, scope = stale
        if scope == "fold":
            say(f"{fold_label(name)}: not reused: {why}; training it again")
            shutil.rmtree(root)
        else:
            say(f"{fold_label(name)}: result not reused: {why}; scoring its network again")
            (root / "result.json").unlink(missing_ok=True)
            for d in root.glob("pred-*"):
                shutil.rmtree(d)
    write_json_atomic(root / "fold.json", want)


def _model_payload(model: Path) -> dict[str, Any]:
    """A fold's model file as stored (``config``, ``extra``...), read without building the
    network; ``{}`` when the file is missing or unreadable."""
    from sam2elnet.model.io import read_model_file

    try:
        return dict(read_model_file(model))
    except (CheckpointError, OSError):
        return {}


class FoldModel:
    """A fold's model file (``run/model.pt``) as stored, read on first use and then kept: a
    reused fold whose records predate their newer fields needs its precision, trunk scale and
    quality evaluator from it (:func:`fold_trained_with`, then the quality evaluator's record),
    one read of a file of up to hundreds of MB, not one each."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._payload: dict[str, Any] | None = None

    @property
    def payload(self) -> dict[str, Any]:
        """The file's payload (``config``, ``extra``...); ``{}`` when missing or unreadable."""
        if self._payload is None:
            self._payload = _model_payload(self.path)
        return self._payload

    @property
    def extra(self) -> dict[str, Any]:
        """Its ``extra`` record (quality evaluator, ``train`` metadata); ``{}`` when none."""
        return dict(self.payload.get("extra") or {})


def model_extra(model: Path) -> dict[str, Any]:
    """The ``extra`` record of a fold's model file (quality evaluator, ``train`` metadata), read
    without building the network; ``{}`` when the file is missing or unreadable."""
    return dict(_model_payload(model).get("extra") or {})


TRAINED_WITH = ("precision_option", "precision_resolved", "trunk_scale", "epochs")
"""What :func:`fold_trained_with` reports of a fold's network."""


def fold_trained_with(result: dict[str, Any], model: FoldModel) -> dict[str, Any]:
    """How a fold's network was trained: ``{"precision_option", "precision_resolved"}`` (str),
    ``"trunk_scale"`` (int, 1 = full, 2 = half resolution: the scale built, auto resolved) and
    ``"epochs"`` (int, ``--epochs auto`` resolved) from its result record, else from its model file (``extra["train"]`` and ``config``; folds
    made before the result recorded them); None where neither says.

    A reused fold ran with the precision and trunk scale of the run that trained it, not with
    this run's options.
    """
    if all(result.get(k) for k in TRAINED_WITH):
        return {k: result[k] for k in TRAINED_WITH}
    from sam2elnet.model.io import model_config_of

    payload = model.payload
    train = model.extra.get("train") or {}
    got: dict[str, Any] = {k: (str(train[k]) if train.get(k) else None) for k in TRAINED_WITH[:2]}
    try:
        got["trunk_scale"] = (
            int(model_config_of(payload, model.path).trunk_scale) if payload else None
        )
    except CheckpointError:
        got["trunk_scale"] = None
    got["epochs"] = int(train["epochs"]) if train.get("epochs") else None
    return got


def made_in(root: Path) -> str | None:
    """The fold folder that the fold in ``root`` was trained in, when it is another one (fold
    folders of ``elnet cv --fold`` runs copied into one ``--out``, or a moved ``--out``): the
    parent of the run folder its ``run/config.yaml`` records, as recorded; None when it is
    ``root`` or not recorded. A relative one (``elnet cv --out cv``) was relative to the working
    folder of that run, unknown here: it is ``root`` when ``root`` ends with it (``elnet cv
    --out ../cv`` run from another folder is the same ``--out``, not one copied in). The
    absolute paths in that fold's files (``pred-*/evaluation.json``, ``pred-*/quality.csv``,
    ``run/config.yaml``) name that folder: ``cv.md`` says so."""
    import yaml

    try:
        out = yaml.safe_load((root / "run" / "config.yaml").read_text(encoding="utf-8"))["out"]
    except (OSError, ValueError, yaml.YAMLError, KeyError, TypeError):
        return None
    if not isinstance(out, str) or not out:
        return None
    there = Path(out).expanduser().parent
    here = root.resolve()
    if there.resolve() == here:
        return None
    if not there.is_absolute():  # of another working folder: the same folder if it ends so
        tail = list(there.parts)
        while tail and tail[0] == "..":
            tail.pop(0)
        if tail and ".." not in tail and here.parts[-len(tail) :] == tuple(tail):
            return None
    return str(there)


def summarise_folds(folds: list[dict[str, Any]], key: str) -> Any:
    """One value for the run record when every fold says the same, else ``mixed: fold-1 32,
    fold-2 bf16`` (``not recorded`` for a fold without the entry)."""
    vals = [(f.get("fold", "?"), f.get(key) or "not recorded") for f in folds]
    distinct = sorted({v for _, v in vals}, key=str)
    if not distinct:
        return "not recorded"
    if len(distinct) == 1:
        return distinct[0]
    return "mixed: " + ", ".join(f"{n} {v}" for n, v in vals)
