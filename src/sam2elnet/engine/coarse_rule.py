"""Rules that tie an enhanced label to its coarse label (``elnet enhance --new-objects / --max-growth``).

Enhancement is meant to correct the *shape* of the objects a coarse label marks, not to find
new ones: on 400 held-out sos-2k images with held-out-family (``freehand``) coarse labels, the
connected components of the enhanced label that did not touch any coarse component held
14,184 false-positive pixels against 483 true-positive ones, and they caused 11 of the 18
images that came out worse than their coarse label by more than 2 IoU points (5 of them empty
images with a correct empty coarse label; docs/results.md, "Measuring enhancement").

Two rules, both applied to the probability map before it is thresholded and scored, so the
label, its probability map and the quality evaluator's features describe the same output:

* ``new_objects="drop"`` (the default of ``elnet enhance``): a connected component (8-connected)
  of the thresholded prediction (probability > 0.5) that does not overlap the coarse label is
  removed; pixels within :data:`NEW_OBJECT_MARGIN_PX` of the coarse label or of a kept component
  are left as predicted (their soft edges stay for the evaluator). An empty coarse label thus
  gives an empty enhanced label. ``"keep"`` turns the rule off.
* ``max_growth_px=D``: the enhanced label may extend at most ``D`` px (Euclidean distance to the
  nearest coarse-label pixel, :func:`scipy.ndimage.distance_transform_edt`) beyond the coarse
  label; it may still shrink anywhere. Off (None) by default: it suits coarse labels drawn around
  their objects, and clips true objects a coarse label under-draws by more than ``D`` px.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

NewObjects = Literal["drop", "keep"]
NEW_OBJECTS_MODES: tuple[str, ...] = ("drop", "keep")

NEW_OBJECT_MARGIN_PX = 4.0
"""Distance (px) from the coarse label or a kept component within which ``new_objects="drop"``
leaves the prediction untouched. Measured on the sos-2k hold-out: margins of 0, 4, 8 and 16 px
give the same per-image shares within 0.5 points; 4 px keeps the soft edge of each kept object."""


@dataclass(frozen=True)
class CoarseRule:
    """How far an enhanced label may depart from its coarse label (see module docstring).

    Attributes:
        new_objects: ``"drop"`` removes predicted objects that do not overlap the coarse label;
            ``"keep"`` leaves them.
        max_growth_px: largest distance (px, >= 0) the label may extend beyond the coarse label,
            or None for no limit.

    Raises:
        ValueError: an unknown ``new_objects`` mode or a negative / non-finite ``max_growth_px``.
    """

    new_objects: NewObjects = "drop"
    max_growth_px: float | None = None

    def __post_init__(self) -> None:
        if self.new_objects not in NEW_OBJECTS_MODES:
            raise ValueError(
                f"new_objects must be one of {NEW_OBJECTS_MODES}, got {self.new_objects!r}"
            )
        g = self.max_growth_px
        if g is not None and not (np.isfinite(g) and g >= 0):
            raise ValueError(f"max_growth_px must be a finite number >= 0, got {g!r}")

    @property
    def active(self) -> bool:
        """True when the rule can change a prediction."""
        return self.new_objects == "drop" or self.max_growth_px is not None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready description (for summary.json)."""
        d = asdict(self)
        d["new_object_margin_px"] = NEW_OBJECT_MARGIN_PX
        return d

    def support(self, prob: np.ndarray, coarse: np.ndarray) -> np.ndarray:
        """Pixels where the enhanced label may be foreground.

        Args:
            prob: (H, W) float probabilities in [0, 1] of one image.
            coarse: (H, W) coarse label, foreground where > 0.5.

        Returns:
            (H, W) bool; all True when the rule is inactive, all False for an empty coarse label
            under either rule (nothing overlaps an empty label, nothing is within ``D`` of it).
        """
        from scipy import ndimage as ndi

        prob = np.asarray(prob)
        c = np.asarray(coarse) > 0.5
        ok = np.ones(prob.shape, bool)
        if not self.active:
            return ok
        if not c.any():
            return np.zeros(prob.shape, bool)
        dist_c: np.ndarray | None = None
        if self.new_objects == "drop":
            fg = prob > 0.5
            lab, _ = ndi.label(fg, structure=np.ones((3, 3), bool))
            touching = np.unique(lab[fg & c])
            kept = np.isin(lab, touching[touching > 0])
            ok = ndi.distance_transform_edt(~(kept | c)) <= NEW_OBJECT_MARGIN_PX
        if self.max_growth_px is not None:
            dist_c = ndi.distance_transform_edt(~c)
            ok &= dist_c <= self.max_growth_px
        return ok


def apply_rule(rule: CoarseRule | None, probs: np.ndarray, coarse: np.ndarray) -> np.ndarray | None:
    """Support masks (B, H, W) bool of a batch, or None when ``rule`` is None or inactive.

    ``probs`` is (B, H, W) probabilities, ``coarse`` (B, H, W) or (B, 1, H, W) in {0, 1}.
    """
    if rule is None or not rule.active:
        return None
    c = np.asarray(coarse).reshape(np.asarray(probs).shape)
    return np.stack([rule.support(p, ci) for p, ci in zip(probs, c, strict=True)])
