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
  removed, with its soft edge (:data:`NEW_OBJECT_MARGIN_PX`), except where it comes within that
  distance of the coarse label or of a kept component (a fragment next to a kept object stays
  there). An empty coarse label thus gives an empty enhanced label. ``"keep"`` turns it off.
* ``max_growth_px=D``: the enhanced label may extend at most ``D`` px (Euclidean distance to the
  nearest coarse-label pixel, :func:`scipy.ndimage.distance_transform_edt`) beyond the coarse
  label; it may still shrink anywhere. Off (None) by default: it suits coarse labels drawn around
  their objects, and clips true objects a coarse label under-draws by more than ``D`` px.

Only the removed pixels are set to probability 0; the background elsewhere keeps its predicted
probabilities. (Zeroing everything outside a band around the coarse label was tried first: it
changed the evaluator's image-wide features on every image and its Spearman on the sos-2k hold-out
fell from 0.811 to 0.771.)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from sam2elnet.errors import UserError
from sam2elnet.option_checks import api_option

NewObjects = Literal["drop", "keep"]
NEW_OBJECTS_MODES: tuple[str, ...] = ("drop", "keep")

NEW_OBJECT_MARGIN_PX = 4.0
"""``new_objects="drop"``: width (px) of the soft edge zeroed around a removed object, and the
distance from the coarse label or a kept object within which the prediction stays. Measured on the sos-2k hold-out: margins of 0, 4, 8 and 16 px
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
        UserError: an unknown ``new_objects`` mode or a negative / non-finite (or non-numeric)
            ``max_growth_px``; the message names the argument and ``elnet enhance``'s flag.
    """

    new_objects: NewObjects = "drop"
    max_growth_px: float | None = None

    def __post_init__(self) -> None:
        if self.new_objects not in NEW_OBJECTS_MODES:
            raise UserError(
                f"invalid value for {api_option('new_objects')}: {self.new_objects!r} "
                f"(choose {' | '.join(NEW_OBJECTS_MODES)})"
            )
        g = self.max_growth_px
        try:
            ok = g is None or bool(np.isfinite(g) and g >= 0)
        except TypeError:  # not a number ("5 px")
            ok = False
        if not ok:
            raise UserError(
                f"invalid value for {api_option('max_growth_px', '--max-growth')}: {g!r} "
                "(a distance in px >= 0, or None for no limit)"
            )

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
        """Pixels the rule leaves as predicted (False: set to probability 0).

        Only what the rule removes is zeroed: the removed objects with a halo of
        :data:`NEW_OBJECT_MARGIN_PX` (their soft edge), and foreground pixels (probability > 0.5)
        beyond ``max_growth_px``. Background probabilities elsewhere stay as predicted, so the
        quality evaluator's image-wide features (mean entropy, uncertain share) do not change for
        images the rule does not touch.

        Args:
            prob: (H, W) float probabilities in [0, 1] of one image.
            coarse: (H, W) coarse label, foreground where > 0.5.

        Returns:
            (H, W) bool; all True when the rule is inactive or changes nothing. With an empty
            coarse label no foreground pixel is left under either rule.
        """
        from scipy import ndimage as ndi

        prob = np.asarray(prob)
        c = np.asarray(coarse) > 0.5
        ok = np.ones(prob.shape, bool)
        fg = prob > 0.5
        if not self.active or not fg.any():
            return ok
        if self.new_objects == "drop":
            lab, _ = ndi.label(fg, structure=np.ones((3, 3), bool))
            touching = np.unique(lab[fg & c])
            kept = np.isin(lab, touching[touching > 0])
            near_kept = (
                ndi.distance_transform_edt(~(kept | c)) <= NEW_OBJECT_MARGIN_PX
                if (kept | c).any()
                else np.zeros_like(fg)
            )
            dropped = fg & ~kept & ~near_kept
            if dropped.any():
                halo = ndi.distance_transform_edt(~dropped) <= NEW_OBJECT_MARGIN_PX
                ok &= ~(halo & ~near_kept)
        if self.max_growth_px is not None:
            if c.any():
                ok &= ~(fg & (ndi.distance_transform_edt(~c) > self.max_growth_px))
            else:
                ok &= ~fg
        return ok


def apply_rule(rule: CoarseRule | None, probs: np.ndarray, coarse: np.ndarray) -> np.ndarray | None:
    """Support masks (B, H, W) bool of a batch, or None when ``rule`` is None or inactive.

    ``probs`` is (B, H, W) probabilities, ``coarse`` (B, H, W) or (B, 1, H, W) in {0, 1}.
    """
    if rule is None or not rule.active:
        return None
    c = np.asarray(coarse).reshape(np.asarray(probs).shape)
    return np.stack([rule.support(p, ci) for p, ci in zip(probs, c, strict=True)])
