"""The one rule for the flags that make an input unusable whatever its label's score.

Whole images (:func:`sam2elnet.model.quality_features.input_flags`, on the scaled batch, and
:func:`sam2elnet.engine.folder_chunk.explain_constant`, on the file's pixels) and scenes read
window by window (:class:`sam2elnet.engine.scene_norm.ValueSpread`) decide ``all nodata``,
``constant image`` and ``constant after scaling`` with :func:`spread_flag`. No torch: the scene
path imports it without a model.
"""

from __future__ import annotations

from collections.abc import Mapping

from sam2elnet.data.validity import ALL_NODATA_FLAG, NO_VALID_PIXEL

__all__ = [
    "CLIPPED_FLAG",
    "CONSTANT_SPREAD",
    "REJECT_FLAGS",
    "is_unusable",
    "spread_flag",
    "unusable_counts",
    "unusable_text",
]

#: The flag of an image whose valid pixels vary in the file but all become one value in the
#: model's scaling (a float dB scene given to a model trained on 0..255 images: every pixel is
#: clipped to 0); ``input_flags`` sees only the scaled input and says ``"constant image"``, the
#: folder jobs, which have the file's pixels, say this instead.
CLIPPED_FLAG = "constant after scaling (pixel values outside the model's input range)"

#: Flags (``QualityResult.flags``) for which the label is never kept, whatever the threshold.
REJECT_FLAGS = ("no pixels", ALL_NODATA_FLAG, "constant image", CLIPPED_FLAG, "non-finite features")


def is_unusable(flag: object) -> bool:
    """Whether a ``quality_flag`` (``QualityResult.flags``, the column of ``quality.csv``; None or
    ``""`` when none) is one of :data:`REJECT_FLAGS`: the label is never kept, whatever the
    threshold. The one filter of those flags (folder jobs, resumed rows, summaries)."""
    return flag in REJECT_FLAGS


def unusable_counts(flagged: Mapping[str, int]) -> dict[str, int]:
    """The entries of ``flagged`` (``summary.json``'s ``n_flagged``: label count per flag) whose
    flag makes the label unusable (:func:`is_unusable`) and whose count is not 0, in order."""
    return {flag: n for flag, n in flagged.items() if is_unusable(flag) and n}


#: Widest band range (max - min over the valid pixels, in the model's scaled units) at or below
#: which an input counts as constant: float32 rounding of one value, not image content.
CONSTANT_SPREAD = 1e-6


def spread_flag(has_valid: bool, spread: float, file_varies: bool = False) -> str:
    """The one rule for the flags of an input's pixel values (whole images and scenes alike).

    Args:
        has_valid: some pixel is valid (not nodata, finite).
        spread: widest band range of the valid pixels after the model's scaling.
        file_varies: the valid pixels of the file vary in some band (before scaling).

    Returns:
        ``"all nodata"``, ``"constant image"`` (``spread <= CONSTANT_SPREAD`` and the file's
        pixels one value too), :data:`CLIPPED_FLAG` (constant only after scaling), else ``""``.
    """
    if not has_valid:
        return ALL_NODATA_FLAG
    if spread > CONSTANT_SPREAD:
        return ""
    return CLIPPED_FLAG if file_varies else "constant image"


def unusable_text(flag: str, what: str = "scene") -> str:
    """The one wording of an input refused for ``flag`` (``all nodata``, ``constant image``,
    :data:`CLIPPED_FLAG`: :func:`spread_flag`'s words): ``unusable {what}, no label written:
    {flag}``, what the flag means and what to do. ``what`` names the input (``scene``, ``image``);
    the caller adds the file (``DataError(text, path)``). Used by ``elnet scene``
    (:func:`sam2elnet.engine.scene_norm.unusable_scene_error`) and by the whole-image reader
    (:meth:`sam2elnet.engine.predictor.Predictor.read`, an all-nodata image)."""
    todo = f"; give a {what} that holds something to label"
    if flag == CLIPPED_FLAG:
        todo = "; rescale it to the value range the model was trained on (the range warning "
        todo += "says how)"
    elif flag == "constant image":
        todo = f" (every valid pixel of every band has one value){todo} (not blank, "
        todo += "zero-filled or saturated)"
    elif flag == ALL_NODATA_FLAG:
        todo = f" ({NO_VALID_PIXEL}); check the file's nodata value or mask"
    return f"unusable {what}, no label written: {flag}{todo}"
