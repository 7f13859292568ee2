"""The picture card of one shown image of the report: image, mask, error and probability layers.

:func:`add_card` draws the layers of an item from the masks its row was made from
(:func:`~sam2elnet.pipeline.report_items.read_masks`), with
:mod:`sam2elnet.pipeline.report_figures`; the pixels that are not scored are hatched grey. An
unreadable image or probability map costs the card a note, never the report.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.errors import DataError
from sam2elnet.pipeline import report_figures as figs
from sam2elnet.pipeline.report_figures import COLORS, display_rgb
from sam2elnet.pipeline.report_items import ItemMasks, ReportItem, counted_pixels, read_masks

log = logging.getLogger("sam2elnet.pipeline.report_items")
"""The logger of the report's item warnings (one name for the masks' and the card's)."""

__all__ = ["add_card"]


def _load_prob(p: np.ndarray | str | Path | None) -> np.ndarray | None:
    if p is None:
        return None
    if isinstance(p, (str, Path)):
        from sam2elnet.data.images import read_image

        return np.asarray(read_image(p).data)[0]
    return np.asarray(p)


def add_card(
    view: dict[str, Any],
    item: ReportItem,
    thumb_px: int,
    full_px: int,
    styles: list,
    masks: ItemMasks | None = None,
) -> None:
    """Add the picture layers of a shown item to ``view`` (image embedded once as a CSS class).

    The error map leaves the pixels that are not scored (the truth's ignore pixels, the label's
    nodata; for an evaluated pair every pixel ``elnet evaluate`` left out) out of TP / FP / FN:
    they are hatched grey (``COLORS["nodata"]``, :func:`~sam2elnet.pipeline.report_figures.error_layer`).
    Without an image the panels have a neutral background, the error map comes first and
    ``item.image_note`` (default "no image") says why.

    Args:
        view: The item's row from :func:`prepare_item`; gets a ``card`` entry (sizes in px,
            PNG data URIs of the mask / error / probability layers, ``image_note``, ``panels``:
            how many panels it shows) and notes in ``errors``.
        item: The item (image and masks are read here).
        thumb_px: Longest side of the card thumbnail (chips smaller than half of it are drawn
            up to twice as large, pixels kept sharp).
        full_px: Longest side of the embedded image and layers (click to enlarge).
        styles: Receives ``(css class, JPEG data URI)`` of the image.
        masks: The masks :func:`prepare_item` made the row from (:func:`read_masks`); None:
            read again here (their errors are already on the row, not logged twice).
    """
    if masks is None:
        masks = read_masks(item, warn=False)
    (inp, inp_v), (out, out_v), (tru, tru_v) = masks.input, masks.output, masks.truth
    rgb = None
    if item.image is not None:
        try:
            rgb = display_rgb(item.image)
        except (DataError, ValueError) as err:
            log.warning("report: %s", err)
            view["errors"].append(f"image: {err}")
    shapes = [a.shape[:2] for a in (inp, out, tru) if a is not None]
    native = rgb.shape[:2] if rgb is not None else (shapes[0] if shapes else (thumb_px, thumb_px))
    fh, fw = figs.fit_shape(native, full_px)
    th, tw = figs.fit_shape(native, thumb_px)
    # tiny chips (e.g. 64 px) are drawn up to twice as large, pixels kept sharp
    up = min(2.0, thumb_px / max(th, tw))
    if up > 1.0:
        th, tw = round(th * up), round(tw * up)
    cls = f"im{view['idx']}"
    if rgb is not None:
        styles.append((cls, figs.image_data_uri(figs.resize_rgb(rgb, (fh, fw)))))
    width = max(1, round(max(fh, fw) / max(th, tw)))  # outline still visible on the card
    small = {
        k: (figs.resize_mask(m, (fh, fw)) if m is not None else None)
        for k, m in (("input", inp), ("output", out), ("truth", tru))
    }
    layers = []
    if small["input"] is not None:
        layers.append(
            ("input", "input label", figs.mask_layer(small["input"], COLORS["input"], width))
        )
    if small["output"] is not None:
        layers.append(
            ("output", "label", figs.mask_layer(small["output"], COLORS["output"], width))
        )
    if small["truth"] is not None:
        layers.append(
            ("truth", "ground truth", figs.mask_layer(small["truth"], COLORS["truth"], width))
        )
    cmp_, cmp_v = (
        (small["output"], out_v) if small["output"] is not None else (small["input"], inp_v)
    )
    if small["truth"] is not None and cmp_ is not None:
        cap = "errors" if small["output"] is not None else "label errors"
        # not scored: the truth's ignore pixels and the label's nodata (a pixel of the drawn
        # size is left out when at least half of the pixels it stands for are)
        valid = counted_pixels(tru_v, cmp_v, shape=tru.shape)  # type: ignore[union-attr]
        if valid is not None:
            valid = ~figs.resize_mask(~valid, (fh, fw))
        errors = ("errors", cap, figs.error_layer(cmp_, small["truth"], valid))
        if rgb is not None:
            layers.append(errors)
        else:  # without an image the error map comes first, on a neutral background
            layers.insert(0, errors)
    prob = None
    if item.probability is not None:
        try:
            prob = figs.probability_layer(_load_prob(item.probability), (fh, fw))
        except (DataError, ValueError) as err:
            log.warning("report: %s", err)
            view["errors"].append(f"probability: {err}")
    note = None
    if rgb is None:
        note = (
            "image could not be read" if item.image is not None else (item.image_note or "no image")
        )
    view["card"] = {
        "cls": cls,
        "has_image": rgb is not None,
        "image_note": note,
        "panels": len(layers) + (0 if rgb is None and layers and layers[0][0] == "errors" else 1),
        "tw": tw,
        "th": th,
        "fw": fw,
        "fh": fh,
        "native": f"{native[1]} × {native[0]} px",
        "pixelated": up > 1.0,
        "layers": [
            {"key": k, "caption": c, "src": figs.png_data_uri(a, palette=True)}
            for k, c, a in layers
        ],
        "prob": figs.png_data_uri(prob) if prob is not None else None,
    }
