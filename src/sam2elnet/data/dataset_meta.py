"""What a dataset folder states about itself, without its pixels being read: its ``dataset.json``
and the modality its layout or that file names (the first three rules of
:mod:`sam2elnet.data.modality`). Shared by :func:`sam2elnet.data.layouts.discover` and
:func:`sam2elnet.data.modality.folder_modality`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from sam2elnet.errors import DataError

__all__ = ["layout_modality", "read_dataset_meta"]


def read_dataset_meta(root: Path) -> dict[str, Any]:
    """A dataset folder's ``dataset.json`` (as written by ``elnet synth``, ``elnet cv`` or by hand).

    Args:
        root: the dataset folder.

    Returns:
        The file's JSON object (e.g. ``{"modality": "sar", ...}``); ``{}`` when ``root`` has no
        ``dataset.json`` or the file holds something other than an object.

    Raises:
        DataError: the file cannot be read or is not JSON (naming the file).
    """
    meta_path = root / "dataset.json"
    if not meta_path.is_file():
        return {}
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # ValueError: JSONDecodeError, UnicodeDecodeError
        raise DataError(f"cannot parse dataset.json ({err}); fix or delete it", meta_path) from None
    return meta if isinstance(meta, dict) else {}


def layout_modality(
    layout: str, meta: dict[str, Any], given: str | None
) -> tuple[Literal["sar", "optical"], str, str]:
    """The modality a dataset states without its pixels being read: the first three rules of
    :mod:`sam2elnet.data.modality` (given, layout, ``dataset.json``).

    Args:
        layout: the dataset's layout (``sos``, ``chn6`` or ``generic``).
        meta: its ``dataset.json`` (:func:`read_dataset_meta`; ``{}`` when none).
        given: ``sar`` | ``optical`` (``--modality``); None or ``auto`` = decide.

    Returns:
        ``(modality, source, reason)``: ``sar`` | ``optical``; which rule decided (``given``,
        ``layout``, ``dataset.json``, or ``default``: none did, optical assumed; the caller may
        then look at the images, :func:`sam2elnet.data.modality.decide_modality`); a few words
        for the log line (e.g. ``SOS layout``).

    Raises:
        DataError: ``given`` is not sar / optical / auto / None.
    """
    if given not in (None, "auto", "sar", "optical"):
        raise DataError(f"unknown modality {given!r}; choose sar or optical")
    if given in ("sar", "optical"):
        return given, "given", f"given: --modality {given}"
    if layout in ("sos", "chn6"):
        return (
            ("sar", "layout", "SOS layout")
            if layout == "sos"
            else ("optical", "layout", "CHN6-CUG layout")
        )
    stated = meta.get("modality")
    if stated in ("sar", "optical"):
        if isinstance(meta.get("cv"), dict):  # a fold's training data, written by elnet cv
            return stated, "dataset.json", "decided once by elnet cv for every fold"
        return stated, "dataset.json", f"dataset.json modality {stated!r}"
    return "optical", "default", "no layout or dataset.json states it"
