"""Whether a dataset's images are SAR or optical, decided from facts the files hold, and why.

The modality switches how images are read and scaled (SAR: a grey image stored as 3 identical
channels is read as one band, 8-bit data keep their absolute brightness with a fixed 0..255 scale;
optical: every band is kept and each image gets a per-image percentile stretch), which domain
training assumes (:mod:`sam2elnet.data.domain`: non-road SAR data are oil-spill scenes) and the
category exports name (``"oil spill"`` or ``"foreground"``). :func:`decide_modality` decides in
this order and says which fact decided:

1. ``--modality sar|optical`` (given);
2. the layout: SOS -> sar, CHN6-CUG -> optical;
3. ``dataset.json`` ``"modality"`` (written by ``elnet synth`` and ``elnet cv``, or by hand);
4. the images (generic layout): up to :data:`SAMPLE_IMAGES` evenly spread images are looked at.

   * SAR evidence: band descriptions naming a polarisation or a radar backscatter quantity
     (``VV``, ``VH``, ``HH``, ``HV``, ``Sigma0``, ``Gamma0``, ``Beta0``: SNAP and GDAL exports of
     Sentinel-1 / ALOS products), or floating-point values with a negative median (calibrated
     backscatter in dB, :func:`sam2elnet.data.norm_fit.looks_like_db`; reflectances and DNs are
     not negative).
   * Optical evidence: 3 or more bands that differ (colour or multispectral; within
     :data:`sam2elnet.data.band_match.IDENTICAL_NORMALISED_ATOL` of the data range they count as one
     grey band stored several times).
   * Anything else (1 band, 2 bands, or a grey image stored as identical RGB channels) does not
     tell: single-polarisation SAR and panchromatic optical imagery look alike as pixel arrays,
     and no pixel statistic separates display-scaled SAR JPEGs from panchromatic photos reliably.

   SAR evidence without optical evidence -> sar; optical evidence without SAR evidence ->
   optical; both -> the majority (ties: optical), named in the reason. Neither -> optical, the
   previous default, with :attr:`ModalityDecision.undecided` set: callers log a warning that
   names ``--modality sar`` (and ``dataset.json``), never a silent guess.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sam2elnet.utils.advice import plural

Modality = Literal["sar", "optical"]
MODALITIES = ("auto", "sar", "optical")
SAMPLE_IMAGES = 8
"""Images looked at by the pixel rule (evenly spread over the dataset)."""

SAR_BAND_NAME = re.compile(r"(?<![A-Za-z])(VV|VH|HH|HV)(?![A-Za-z])|sigma0|gamma0|beta0", re.I)
"""Band descriptions of radar products: a polarisation (VV, VH, HH, HV) or a backscatter
coefficient (SNAP writes e.g. ``Sigma0_VV_db``; GDAL's Sentinel-1 driver ``VV``)."""

Source = Literal["given", "layout", "dataset.json", "images", "undecided", "unread"]
"""Which rule decided: ``undecided``: the images looked at are grey (optical assumed, the caller
warns); ``unread``: no image could be read (optical; the data check that follows reports the
files, so no modality warning is added to its error)."""

__all__ = [
    "MODALITIES",
    "SAMPLE_IMAGES",
    "ModalityDecision",
    "decide_modality",
    "folder_modality",
    "image_evidence",
    "with_modality",
]


@dataclass(frozen=True)
class ModalityDecision:
    """The modality of a dataset and why (see the module docstring for the rules)."""

    modality: Modality
    reason: str
    source: Source

    @property
    def undecided(self) -> bool:
        """True when nothing told: optical was assumed (the log must say so and name the option)."""
        return self.source == "undecided"

    def line(self) -> str:
        """One log line: ``modality: sar (SOS layout; --modality sar|optical overrides)``; for an
        undecided dataset what was assumed, what that does and how to say otherwise."""
        if self.undecided:
            return (
                f"modality: optical assumed ({self.reason}; SAR and panchromatic optical images "
                "cannot be told apart from their pixels): every band kept, per-image stretch, "
                "labels named 'foreground' rather than 'oil spill'. If these are SAR images (e.g. SOS oil-spill JPEGs) pass "
                '--modality sar, or write {"modality": "sar"} into the folder\'s dataset.json'
            )
        hint = "" if self.source == "given" else "; --modality sar|optical overrides"
        return f"modality: {self.modality} ({self.reason}{hint})"


def image_evidence(
    path: str | Path, bands: Sequence[int] | None = None
) -> tuple[Modality | None, str]:
    """What one image says about the modality: ``("sar" | "optical" | None, fact)``.

    Args:
        path: an image file (any format :func:`sam2elnet.data.images.read_image` reads; a file
            above the windowed-read threshold is judged on its statistics sample).
        bands: 1-based file bands to judge (``--bands``); None = all.

    Returns:
        ``("sar", ...)`` for radar band names or float dB values, ``("optical", ...)`` for 3 or
        more differing bands, ``(None, "grey")`` / ``(None, "2 bands")`` when the pixels do not
        tell (see the module docstring).

    Raises:
        DataError: the image cannot be read.
    """
    from sam2elnet.data.band_match import IDENTICAL_NORMALISED_ATOL, band_descriptions
    from sam2elnet.data.images import identical_channels
    from sam2elnet.data.norm_fit import looks_like_db, read_image_or_sample

    p = Path(path)
    # by file band number ("" where a band has no description), so --bands picks its own names
    names = band_descriptions(p, bands)
    radar = [n for n in names if n and SAR_BAND_NAME.search(n)]
    if radar:
        return "sar", f"radar band names ({', '.join(radar)})"
    img = read_image_or_sample(p, sar=False, bands=bands)
    x = img.data[:, img.valid] if img.valid.any() else img.data.reshape(img.bands, -1)
    if looks_like_db(x):
        return "sar", "float values in dB (negative median)"
    if img.bands >= 3:
        if np.issubdtype(x.dtype, np.integer):
            span = float(np.iinfo(x.dtype).max) - float(np.iinfo(x.dtype).min)
        else:
            finite = x[np.isfinite(x)]
            span = float(np.ptp(finite)) if finite.size else 0.0
        if not identical_channels(x[:, None, :], tol=IDENTICAL_NORMALISED_ATOL * span):
            return "optical", f"{img.bands} differing bands (colour / multispectral)"
        return None, f"grey stored as {img.bands} identical bands"
    return None, "grey (1 band)" if img.bands == 1 else f"{img.bands} bands"


def _from_images(paths: Sequence[Path], bands: Sequence[int] | None) -> ModalityDecision:
    from sam2elnet.errors import DataError

    n = len(paths)
    picks = (
        np.unique(np.linspace(0, n - 1, min(n, SAMPLE_IMAGES)).astype(int)).tolist() if n else []
    )
    votes: Counter[str | None] = Counter()
    facts: dict[str | None, str] = {}
    for i in picks:
        try:
            kind, fact = image_evidence(paths[int(i)], bands)
        except DataError:  # unreadable images are reported by the data check that follows
            continue
        votes[kind] += 1
        facts.setdefault(kind, fact)
    seen = sum(votes.values())
    if not seen:
        return ModalityDecision("optical", "no image could be read to judge", "unread")
    sar, opt = votes["sar"], votes["optical"]
    if sar == 0 and opt == 0:
        return ModalityDecision(
            "optical", f"{seen} of {seen} images looked at: {facts[None]}", "undecided"
        )
    kind: Modality = "sar" if sar > opt else "optical"
    reason = f"{votes[kind]} of {seen} images looked at: {facts[kind]}"
    other = "optical" if kind == "sar" else "sar"
    if votes[other]:
        reason += f"; {plural(votes[other], 'other')}: {facts[other]}"
    return ModalityDecision(kind, reason, "images")


def decide_modality(index: Any, bands: Sequence[int] | None = None) -> ModalityDecision:
    """The modality of a discovered dataset (:class:`sam2elnet.data.layouts.DatasetIndex`) and why.

    Args:
        index: what :func:`sam2elnet.data.layouts.discover` found; its ``modality_source`` says
            whether the modality was given, came from the layout or ``dataset.json``, or is still
            open (then up to :data:`SAMPLE_IMAGES` of its images are looked at).
        bands: 1-based file bands the run reads (``--bands``); None = all.

    Returns:
        :class:`ModalityDecision`. Unreadable images are passed over (the data check reports them).
    """
    source = getattr(index, "modality_source", "default")
    if source != "default":
        return ModalityDecision(index.modality, index.modality_reason, source)
    return _from_images([s.image for s in index.samples], bands)


def with_modality(index: Any, bands: Sequence[int] | None = None) -> tuple[Any, ModalityDecision]:
    """``index`` with the modality :func:`decide_modality` decides, and the decision."""
    d = decide_modality(index, bands)
    return (
        replace(index, modality=d.modality, modality_source=d.source, modality_reason=d.reason),
        d,
    )


def folder_modality(
    folder: str | Path,
    files: Sequence[Path],
    given: str | None = None,
    bands: Sequence[int] | None = None,
) -> ModalityDecision:
    """The modality of an image folder a command reads without a dataset (``elnet refine``), by
    the rules of :func:`decide_modality`.

    Args:
        folder: the image folder (``--images``). When it is where a dataset layout keeps its
            images (the folder itself, or up to 3 levels above it, is an SOS, CHN6-CUG or generic
            dataset: e.g. ``sos/train/palsar`` or ``data/images``), that dataset's layout and
            ``dataset.json`` decide as in :func:`sam2elnet.data.layouts.discover`.
        files: the images the command reads (the pixel rule looks at up to
            :data:`SAMPLE_IMAGES` of them).
        given: ``sar`` | ``optical`` (``--modality``); None or ``auto`` = decide.
        bands: 1-based file bands the command reads; None = all.

    Returns:
        :class:`ModalityDecision`.

    Raises:
        DataError: ``given`` is not sar / optical / auto / None, or the dataset's
            ``dataset.json`` cannot be parsed.
    """
    from sam2elnet.data.dataset_meta import layout_modality, read_dataset_meta
    from sam2elnet.data.layout_places import detect_layout, places

    if given not in (None, "auto"):
        mod, source, reason = layout_modality("generic", {}, given)
        return ModalityDecision(mod, reason, source)
    here = Path(folder).resolve()
    for root in (here, *list(here.parents)[:3]):
        found = detect_layout(root) if root.is_dir() else None
        if found and any(p.images.resolve() == here for p in places(root, found)):
            mod, source, reason = layout_modality(found, read_dataset_meta(root), None)
            if source != "default":
                return ModalityDecision(mod, f"{reason}: {root}", source)
            break
    return _from_images(list(files), bands)
