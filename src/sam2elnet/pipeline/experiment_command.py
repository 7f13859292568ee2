"""The ``elnet experiment`` command line that reproduces a run (results.md, results.json
``command``, report.html): a reader of the results sees the command behind every number.

Part of :mod:`sam2elnet.pipeline.experiment`. Built from the run's :class:`ExperimentConfig`
(the options in force when the results were written, also after a re-run that changed the
downstream options or the quality filter), not from the typed words: options left at their
default are left out, the rest are the flags of ``elnet experiment``.
"""

from __future__ import annotations

import shlex
from typing import Any

from sam2elnet.pipeline.experiment_config import ExperimentConfig

__all__ = ["experiment_command"]

_FLAGS = {"downstream_curve_points": "--curve-points"}
"""Fields whose flag is not ``--`` + the field name with dashes."""
_OFF_SWITCHES = {
    "enhancement": "--no-enhancement",
    "enhancement_downstream": "--no-enhancement-downstream",
}
"""On/off fields (default on): the flag that turns each off."""
_NOT_FLAGS = ("data", "out", "resume", "progress", "report", "eta_reference")
"""Fields said otherwise (``--data`` / ``--out`` first) or that change no number."""
API_ONLY = ("test_fraction", "sources")
"""Fields without a flag of ``elnet experiment``: named after the command as ``field=value``."""


def _value(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ",".join(_value(x) for x in v)
    return f"{v:g}" if isinstance(v, float) else str(v)


def experiment_command(cfg: ExperimentConfig) -> str:
    """``elnet experiment --data DATA --out OUT`` followed by every option of ``cfg`` that is
    not at its default, as the flags ``elnet experiment`` takes (paths quoted for a POSIX shell).
    ``--road-buffer`` is left out when ``--road-buffer-m`` set the buffer; fields without a
    flag (``test_fraction``, ``sources``; API only) follow as ``(API: test_fraction=0.3)``.
    Parsing the returned line with ``elnet experiment`` gives back ``cfg``'s options
    (``tests/pipeline/test_experiment_command.py``)."""
    default = ExperimentConfig(data=cfg.data, out=cfg.out)
    words = ["elnet", "experiment", "--data", str(cfg.data), "--out", str(cfg.out)]
    api = []
    for name in ExperimentConfig.model_fields:
        v = getattr(cfg, name)
        if name in _NOT_FLAGS or v == getattr(default, name):
            continue
        if name == "road_buffer" and cfg.road_buffer_m is not None:
            continue
        if name in API_ONLY:
            api.append(f"{name}={_value(v)}")
        elif name in _OFF_SWITCHES:
            words.append(_OFF_SWITCHES[name])
        elif v is not None:
            words += [_FLAGS.get(name, "--" + name.replace("_", "-")), _value(v)]
    line = shlex.join(words)
    return line + (f" (API: {', '.join(api)})" if api else "")
