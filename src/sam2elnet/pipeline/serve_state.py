"""What ``elnet serve`` keeps across restarts: ``WORKDIR/state.json`` and model versions.

Part of :mod:`sam2elnet.pipeline.serve`. ``state.json`` records the ``--model`` the backend was
started from (its path and :func:`~sam2elnet.data.run_model.model_version`), the model it serves now (the latest fine-tuned
one), the fine-tuning jobs and the number of reviews not yet trained on. A restart with the same
``--model`` takes them back (:func:`read_state`); another ``--model`` starts afresh.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sam2elnet.utils.atomic import write_json_atomic

log = logging.getLogger(__name__)

__all__ = ["SavedState", "read_state", "write_state"]


@dataclass
class SavedState:
    """What :func:`read_state` takes back from ``state.json``."""

    model: Path | None = None
    """The model served before the restart, when its file is still there (else None)."""
    jobs: list[dict[str, Any]] = field(default_factory=list)
    """The fine-tuning jobs; one that was ``running`` is marked ``interrupted``."""
    pending: int = 0
    """Reviews stored and not yet trained on."""
    interrupted: str | None = None
    """The name of the (last) job the restart interrupted, to run again; None when none was."""


def read_state(path: Path, base_version: str) -> SavedState | None:
    """The state in ``path`` when it was made from the model of version ``base_version``; None
    (logged, the backend starts from ``--model``) when the file is missing, unreadable or made
    from another model."""
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        log.warning("%s unreadable (%s); starting from --model", path, err)
        return None
    if state.get("base_version") != base_version:
        log.warning(
            "%s was made from %s; starting again from --model %s",
            path,
            state.get("base_version"),
            base_version,
        )
        return None
    saved = SavedState(jobs=list(state.get("jobs") or []), pending=int(state.get("pending") or 0))
    current = Path(str(state.get("model") or ""))
    if current.is_file():
        saved.model = current
        log.info("serving %s, the latest fine-tuned model in %s", current, path)
    interrupted = [j for j in saved.jobs if j.get("state") == "running"]
    for j in interrupted:
        j["state"] = "interrupted"
    saved.interrupted = interrupted[-1]["job"] if interrupted else None
    return saved


def write_state(
    path: Path,
    *,
    base_model: Path,
    base_version: str,
    model: Path,
    version: str,
    pending: int,
    jobs: list[dict[str, Any]],
) -> None:
    """Write ``state.json`` atomically: the ``--model`` started from (``base_model``, resolved,
    and its version), the model served now and its version, the reviews not yet trained on and
    the jobs."""
    write_json_atomic(
        path,
        {
            "base_model": str(Path(base_model).resolve()),
            "base_version": base_version,
            "model": str(model),
            "model_version": version,
            "pending": pending,
            "jobs": jobs,
        },
    )
