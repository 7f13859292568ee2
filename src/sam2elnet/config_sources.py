"""Where a run's configuration comes from: YAML files and the layering of sources.

A run's settings are layered, later layers winning: the model's defaults < a YAML file
(``--config``, or the run's own ``OUT/config.yaml`` on ``--resume``) < the options given on the
command line (:func:`layered_config`, behind ``TrainConfig.from_sources``). :func:`load_yaml_model`
reads any pydantic model from YAML with one-line errors naming the file. The models themselves
(defaults and ranges) are :mod:`sam2elnet.config` and :mod:`sam2elnet.options`; this module
imports neither's classes, so they can import it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from sam2elnet.errors import UserError
from sam2elnet.option_checks import option_error
from sam2elnet.option_values import SAVED_FILE, TRUNK_SCALE_AUTO_KEY

__all__ = ["layered_config", "load_yaml_model"]


#: Fields that say one thing in two units: one given on the command line drops the other from
#: the layers below (``--road-buffer 5`` over a file's or run's ``road_buffer_m: 2``), so it
#: replaces it instead of clashing with it (both in one layer stay an error).
ALTERNATIVES = (("road_buffer", "road_buffer_m"), ("road_buffer_m", "road_buffer"))


def layered_config(
    cls: Any,
    options: dict[str, Any],
    *,
    config: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    fit_quality: bool | None = None,
    quality: dict[str, Any] | None = None,
    flags: dict[str, str] | None = None,
) -> Any:
    """A run's configuration (``cls``: :class:`~sam2elnet.config.TrainConfig`) from its layered
    sources (what ``elnet train`` does).

    Layers, later ones win: the YAML file ``config`` (else, with ``resume``, the run's own
    ``OUT/config.yaml``, so a resumed run keeps its hyper-parameters); then ``options``
    (field name -> value; None means "not given" and keeps the layer below); then
    ``quality`` (QualityConfig fields, e.g. ``tta``, ``tau``; None values ignored). A field of
    :data:`ALTERNATIVES` given in ``options`` drops its other unit from the lower layers.

    Args:
        options: Field values as given on the command line (``out`` locates the run).
        config: YAML TrainConfig to start from.
        resume: Continue the run in ``options["out"]``.
        progress: Show progress bars.
        fit_quality: False skips fitting the quality evaluator (``--no-quality``), True fits
            it (``--quality``: a resumed ``--no-quality`` run then fits one), None keeps the
            layers' (the run's ``config.yaml`` on ``resume``; default: fit).
        quality: Overrides of the quality evaluator's settings.
        flags: Field name -> command-line flag for messages (default ``--field-name``).

    Returns:
        The validated configuration.

    Raises:
        UserError: unreadable ``config``; ``--resume`` on a folder without a run and no
            ``data``; ``data`` or ``out`` missing from every layer; a value out of range
            (one line naming the flag, the value and the allowed range).
    """
    out = options.get("out")
    base: dict[str, Any] = {}
    if config is not None:  # a shared file need not name the run's data / out folders
        # (--init-model too: an image_size the file does not name is then the model's)
        keys = ("data", "out", "init_model")
        paths = {k: options[k] for k in keys if options.get(k) is not None}
        base = load_yaml_model(cls, config, paths)
        base = base.model_dump()
    elif resume and out is not None and (Path(out) / "config.yaml").is_file():
        run = cls.load(Path(out) / "config.yaml")
        base = run.model_dump()
        if run._trunk_scale_auto and options.get("trunk_scale") is None:
            base[TRUNK_SCALE_AUTO_KEY] = True  # not given: the run's auto-resolved scale
    given = {k: v for k, v in options.items() if v is not None}
    for key, other in ALTERNATIVES:  # e.g. --road-buffer over a file's road_buffer_m
        if key in given and other not in given:
            base.pop(other, None)
    merged: dict[str, Any] = {**base, **given, "resume": resume, "progress": progress}
    if fit_quality is not None:
        merged["fit_quality"] = fit_quality
    q = dict(merged.get("quality") or {})
    q.update({k: v for k, v in (quality or {}).items() if v is not None})
    if q:
        merged["quality"] = q
    if resume and out is not None and merged.get("data") is None:
        raise UserError(
            "nothing to resume: no run (config.yaml) in this folder; give --data to start a "
            "new run, or point --out at an existing run",
            out,
        )
    for key in ("data", "out"):
        if merged.get(key) is None:
            flag = (flags or {}).get(key, f"--{key}")
            raise UserError(f"{flag} is required (or give it in --config)")
    try:
        return cls.model_validate(merged)
    except ValidationError as err:
        raise option_error(cls, err, flags) from None


def load_yaml_model(
    cls: type[BaseModel],
    path: str | Path,
    given: dict[str, Any] | None = None,
    defaults: dict[str, Any] | None = None,
) -> Any:
    """Parse a YAML file into a pydantic model, with user-facing errors.

    Args:
        cls: The pydantic model class.
        path: The YAML file (a mapping of field: value).
        given: Field values that override the file's (e.g. ``data`` / ``out`` given on the
            command line, so a shared config file need not name them).
        defaults: Field values for fields the file does not name (files of older versions).

    Returns:
        The validated ``cls`` instance, validated with the context
        :data:`~sam2elnet.option_values.SAVED_FILE` (a file may be an earlier version's: its
        ``road_buffer: 3.0`` beside ``road_buffer_m`` is that version's px default,
        :func:`~sam2elnet.option_values.road_buffer_units`).

    Raises:
        UserError: missing file, not text, bad YAML, not a mapping, or invalid fields (up to five
            named), each naming the file.
    """
    import yaml  # lazy: only runs that read a config need it (keeps ``elnet --help`` fast)

    p = Path(path)
    if not p.is_file():
        raise UserError("config file does not exist; check the path", p)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise UserError("not a text (YAML) file; give a YAML config", p) from None
    except yaml.YAMLError as err:
        raise UserError(f"not valid YAML ({err}); fix or delete the file", p) from err
    if not isinstance(raw, dict):
        raise UserError("expected a mapping of option: value; fix or delete the file", p)
    try:
        values = {**(defaults or {}), **raw, **(given or {})}
        return cls.model_validate(values, context={SAVED_FILE: True})  # a file: see SAVED_FILE
    except ValidationError as err:
        msgs = "; ".join(
            ": ".join(x for x in (".".join(str(x) for x in e["loc"]), e["msg"]) if x)
            for e in err.errors()[:5]
        )
        raise UserError(f"invalid configuration ({msgs})", p) from err
