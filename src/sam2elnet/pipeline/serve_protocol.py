"""What ``elnet serve`` reads from Label Studio's requests: checked payloads and the project's
labelling config.

Part of :mod:`sam2elnet.pipeline.serve`. Two jobs:

* :class:`BadRequest` and the ``*_of`` readers: a request body of the wrong shape (a list where an
  object belongs, a task without ``data``) is answered ``400`` with one sentence naming the field,
  never ``500`` with a Python exception name; a well-formed request that cannot be answered
  raises :class:`Unprocessable` (``422``);
* :class:`LabelTarget` / :func:`label_target`: the control the predictions go to. A project's
  labelling config (``/setup``'s ``schema``, ``/predict``'s ``label_config``) names its own
  ``<BrushLabels name=.. toName=..>`` (or ``<PolygonLabels>``), its ``<Image value="$KEY">`` and
  its ``<Label value=..>`` names. Regions sent with other names are dropped by Label Studio, so
  the backend answers with the names of the config it is given; without one, those of
  ``elnet export --format label-studio`` (``label`` -> ``image``, data key ``image``).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any
from xml.etree import ElementTree

from sam2elnet.export.labelstudio import FROM_NAME, TO_NAME

log = logging.getLogger(__name__)

__all__ = [
    "BadRequest",
    "LabelTarget",
    "Unprocessable",
    "annotations_of",
    "label_target",
    "object_of",
    "tasks_of",
]


class BadRequest(ValueError):
    """A request body Label Studio would not send (answered HTTP 400 with this message)."""


class Unprocessable(ValueError):
    """A well-formed request that cannot be answered (HTTP 422 with this message)."""


def object_of(value: Any, what: str) -> dict[str, Any]:
    """``value`` when it is a JSON object; :class:`BadRequest` naming ``what`` otherwise."""
    if not isinstance(value, dict):
        raise BadRequest(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def tasks_of(payload: dict[str, Any], key: str = "tasks") -> list[dict[str, Any]]:
    """``payload[key]``: a list of task objects, each with a ``data`` object (BadRequest if not)."""
    tasks = payload.get(key)
    if tasks is None:
        return []
    if not isinstance(tasks, list):
        raise BadRequest(f"'{key}' must be a list of tasks, got {type(tasks).__name__}")
    for i, t in enumerate(tasks):
        object_of(t, f"{key}[{i}]")
        object_of(t.get("data"), f"{key}[{i}].data")
    return tasks


def annotations_of(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """A webhook's annotation objects (``annotation``, or ``annotations`` of bulk events), each
    with a ``result`` list (BadRequest if not)."""
    anns = payload.get("annotations")
    if anns is None:
        anns = [payload["annotation"]] if payload.get("annotation") is not None else []
    if not isinstance(anns, list):
        raise BadRequest(f"'annotations' must be a list, got {type(anns).__name__}")
    for i, a in enumerate(anns):
        object_of(a, f"annotation {i}")
        if not isinstance(a.get("result") or [], list):
            raise BadRequest(f"annotation {i}: 'result' must be a list of regions")
    return anns


@dataclasses.dataclass(frozen=True)
class LabelTarget:
    """Names the predictions carry: control (``from_name``), image (``to_name``), the task data
    key holding the image URL, the label value and the region kind."""

    from_name: str = FROM_NAME
    to_name: str = TO_NAME
    data_key: str = TO_NAME
    label: str = "foreground"
    polygons: bool = False

    def apply(self, regions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``regions`` (from :func:`~sam2elnet.export.labelstudio.mask_result`) renamed to this
        target: control, image and label."""
        for r in regions:
            r["from_name"], r["to_name"] = self.from_name, self.to_name
            for k in ("brushlabels", "polygonlabels"):
                if k in r.get("value", {}):
                    r["value"][k] = [self.label]
        return regions


def label_target(config: str | None, category: str, current: LabelTarget) -> LabelTarget:
    """The :class:`LabelTarget` of a labelling config (XML); ``current`` when ``config`` is empty,
    unreadable or has no ``BrushLabels`` / ``PolygonLabels`` control.

    The first ``BrushLabels`` or ``PolygonLabels`` control in document order wins: brush RLE
    masks, or one polygon per connected component (``elnet export``'s config lists both tools,
    the pre-annotation's first, so a ``--polygons`` project is answered with polygons). Its label is ``category`` when the control lists it,
    else the control's first ``<Label value>`` (logged).
    """
    if not config or not isinstance(config, str):
        return current
    try:
        root = ElementTree.fromstring(config)
    except ElementTree.ParseError:
        log.warning("the project's labelling config is not XML; answering with %s", current)
        return current
    ctrl = next((e for e in root.iter() if e.tag in ("BrushLabels", "PolygonLabels")), None)
    polygons = ctrl is not None and ctrl.tag == "PolygonLabels"
    if ctrl is None or not ctrl.get("name") or not ctrl.get("toName"):
        return current
    to_name = ctrl.get("toName", TO_NAME).split(",")[0]
    key = to_name
    for img in root.iter("Image"):
        if img.get("name") == to_name and img.get("value", "").startswith("$"):
            key = img.get("value", "")[1:]
    labels = [lab.get("value") for lab in ctrl.iter("Label") if lab.get("value")]
    label = category
    if labels and category not in labels:
        label = str(labels[0])
    new = LabelTarget(str(ctrl.get("name")), to_name, key, label, polygons)
    if new != current:
        if label != category:
            log.warning(
                "label %r is not in the project's labelling config; predictions use %r "
                "(give --category to choose one of %s)",
                category,
                label,
                ", ".join(map(str, labels)),
            )
        log.info("predictions go to %s", new)
    return new
