"""The library front doors take their keyword defaults from the options models (one place each).

The CLI reads every option's default from its options model (:mod:`sam2elnet.options`,
:func:`sam2elnet.option_checks.option_default`); the library functions behind the commands take
the same options as keyword arguments. A default typed again there as a literal (``batch_size=8``,
``device="cpu"``: ``engine.folder_workers.load_predictor`` had them) drifts the day the model's
changes, and the API then does something else than the command. For each function of
:data:`FRONT_DOORS`, every parameter named like a field of its options model must

* have that field's default (:func:`differing_defaults`), and
* not write it as a literal in the signature (:func:`typed_defaults`): it reads the model
  (``_default("batch_size")``, ``option_default(SceneOptions, "batch_size")``).

``None`` in a signature is the "not given" of the API and is not a typed default. The parameters
that differ on purpose are listed in :data:`DIFFERENT_ON_PURPOSE` with the reason.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

from sam2elnet.data import coarse, synthetic
from sam2elnet.engine import (
    comparison,
    evaluate,
    folder_job,
    folder_workers,
    infer,
    predictor,
    quality_crossfit,
    quality_fit,
    scene,
)
from sam2elnet.export import api, chips, review_import
from sam2elnet.options import (
    DegradeOptions,
    EvaluateOptions,
    ExportOptions,
    FolderJobOptions,
    ImportOptions,
    SceneOptions,
    SynthOptions,
)
from sam2elnet.pipeline import jobs, report, scenes

FRONT_DOORS: list[tuple[Callable[..., Any], type[BaseModel]]] = [
    (jobs.annotate_folder, FolderJobOptions),
    (jobs.enhance_folder, FolderJobOptions),
    (jobs.ray_backend, FolderJobOptions),
    (infer.annotate_folder, FolderJobOptions),
    (infer.enhance_folder, FolderJobOptions),
    (folder_workers.load_predictor, FolderJobOptions),
    (folder_job.FolderJob.__init__, FolderJobOptions),
    (predictor.Predictor.__init__, FolderJobOptions),
    (predictor.Predictor.from_file, FolderJobOptions),
    # the quality evaluator's samples are predicted as annotate predicts (images per pass)
    (quality_fit.fit_quality, FolderJobOptions),
    (quality_fit.collect_quality_samples, FolderJobOptions),
    (quality_crossfit.crossfit_samples, FolderJobOptions),
    (scenes.scene_job, SceneOptions),
    (scenes.load_scene_predictor, SceneOptions),
    (scene.predict_scene, SceneOptions),
    (synthetic.generate_dataset, SynthOptions),
    (coarse.degrade, DegradeOptions),
    (coarse.degrade_folder, DegradeOptions),
    (evaluate.evaluate_folders, EvaluateOptions),
    (comparison.compare, EvaluateOptions),
    (report.write_evaluation_report, EvaluateOptions),
    (chips.iter_chips, ExportOptions),
    (api._export_labels, ExportOptions),
    (review_import.import_labels, ImportOptions),
]
"""(library function, the options model of the command it stands behind)."""

DIFFERENT_ON_PURPOSE: dict[tuple[str, str], str] = {
    ("load_predictor", "max_memory"): "None: DEFAULT_MAX_MEMORY, itself read from the model",
    ("annotate_folder", "max_memory"): "None: DEFAULT_MAX_MEMORY, itself read from the model",
    ("enhance_folder", "max_memory"): "None: DEFAULT_MAX_MEMORY, itself read from the model",
    ("load_scene_predictor", "max_memory"): "None: DEFAULT_MAX_MEMORY (Predictor.fit_batch)",
    ("scene_job", "max_memory"): "None: DEFAULT_MAX_MEMORY (Predictor.fit_batch)",
    ("Predictor.__init__", "max_memory"): "None: DEFAULT_MAX_MEMORY, itself read from the model",
    ("Predictor.from_file", "max_memory"): "None: DEFAULT_MAX_MEMORY (Predictor.__init__)",
    ("predict_scene", "tile"): "the engine takes a window side; scene_job resolves None (auto)",
    ("_export_labels", "crs"): "None: LAYER_CRS[0] ('image'), the field's own declaration",
}
"""(function or method qualified name, parameter) -> why its default is not the field's."""


def _params(fn: Callable[..., Any], model: type[BaseModel]) -> list[inspect.Parameter]:
    """The keyword parameters of ``fn`` with a default, named like a field of ``model``."""
    return [
        p
        for p in inspect.signature(fn).parameters.values()
        if p.default is not inspect.Parameter.empty
        and p.name in model.model_fields
        and (fn.__qualname__, p.name) not in DIFFERENT_ON_PURPOSE
    ]


def differing_defaults(fn: Callable[..., Any], model: type[BaseModel]) -> list[str]:
    """``function: param default X, Model.param Y`` for each default that is not the field's."""
    return [
        f"{fn.__module__}.{fn.__qualname__}: {p.name} default {p.default!r}, "
        f"{model.__name__}.{p.name} {model.model_fields[p.name].default!r}"
        for p in _params(fn, model)
        if p.default != model.model_fields[p.name].default
    ]


def _literal(node: ast.expr) -> bool:
    """Whether ``node`` is a value written out (``8``, ``-1.5``, ``"cpu"``, ``(0.2, 0.8)``)."""
    try:
        ast.literal_eval(node)
    except ValueError:
        return False
    return True


def typed_defaults(fn: Callable[..., Any], model: type[BaseModel]) -> list[str]:
    """``function: param = LITERAL`` for each default of a field of ``model`` written as a literal
    (other than None) in ``fn``'s signature instead of read from the model."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))
    a = node.args
    positional = [*a.posonlyargs, *a.args]
    pairs = [*zip(positional[len(positional) - len(a.defaults) :], a.defaults, strict=True)]
    pairs += [(k, d) for k, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d is not None]
    names = {p.name for p in _params(fn, model)}
    return [
        f"{fn.__module__}.{fn.__qualname__}: {arg.arg} = {ast.unparse(d)}"
        for arg, d in pairs
        if arg.arg in names and _literal(d) and ast.literal_eval(d) is not None
    ]


@pytest.mark.parametrize(("fn", "model"), FRONT_DOORS, ids=lambda x: getattr(x, "__qualname__", ""))
def test_front_door_defaults_are_the_options_models(fn: Callable[..., Any], model: type[BaseModel]):
    assert differing_defaults(fn, model) == []
    assert typed_defaults(fn, model) == [], f"read these from {model.__name__} (option_default)"


def test_the_front_doors_share_options_with_their_models() -> None:
    """Each listed function has parameters the check compares (a renamed model or parameter
    would leave the check comparing nothing)."""
    assert all(_params(fn, model) for fn, model in FRONT_DOORS)
    shared = {p.name for p in _params(folder_workers.load_predictor, FolderJobOptions)}
    assert shared == {"batch_size", "device", "precision", "tta"}


def _typed(batch_size: int = 8, device: str = "cpu", workers: int = 3, tta: int | None = None):
    """A made-up front door: two defaults typed again, one differing, one None."""


def test_a_typed_or_drifted_default_is_caught() -> None:
    """Guards on a made-up function: literals equal to the model's are reported as typed, a
    literal that is not the model's as both, and None (not given) as neither."""
    assert typed_defaults(_typed, FolderJobOptions) == [
        f"{__name__}._typed: batch_size = 8",
        f"{__name__}._typed: device = 'cpu'",
        f"{__name__}._typed: workers = 3",
    ]
    assert differing_defaults(_typed, FolderJobOptions) == [
        f"{__name__}._typed: workers default 3, FolderJobOptions.workers 2"
    ]
