"""The one band-count rule between an image and a model, for every prediction path.

``annotate``, ``enhance``, ``scene``, ``serve``, the experiment's evaluation and the Python API
(:class:`sam2elnet.engine.predictor.Predictor`) all ask :func:`band_layout` what to do when an
image has another band count than the model was trained on (whole images through
:func:`sam2elnet.data.normalize.normalize_for_model`, windows of large scenes through
:func:`sam2elnet.engine.scene_norm.make_scene_normalizer`):

* the counts match (or the model takes any count): the bands are used as they are;
* one band into a 3-band *optical* model (RGB): the band is repeated to R, G and B, as a grey or
  panchromatic image is shown to a colour network;
* one band into any other model of two or more bands (a Sentinel-1 VV+VH model, an RGB+NIR or
  a multispectral model, a 3-band SAR composite): an error. The model's bands are different
  measurements (VH backscatter is typically 6-10 dB below VV over the sea), so repeating the
  band would feed it VV as VH and give a wrong answer without a sign. The message names the
  file, the model's bands (their names when the training images had band descriptions) and
  the way out: an image holding all of them (``gdalbuildvrt -separate``), or ``--bands 1,1``
  to repeat the band knowingly;
* a grey image stored as identical bands into a one-band model: its first band;
* any other mismatch: an error suggesting ``--bands``; 3 or more bands into a one- or two-band
  SAR model (an RGB photo) also says the model is one of SAR backscatter and the image looks
  optical.

The counts matching, :func:`check_polarisation` warns when a band's description names another
polarisation than the model's band in its place (a VV model given a VH image, or ``--bands 2``
of a VV/VH stack).

:class:`~sam2elnet.errors.BandCountError` is a :class:`~sam2elnet.errors.DataError`: a folder
job skips such a file (``skipped.csv``), a single file is one ``error:`` line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from sam2elnet.errors import BandCountError
from sam2elnet.utils.advice import plural

__all__ = [
    "IDENTICAL_NORMALISED_ATOL",
    "band_descriptions",
    "band_layout",
    "check_polarisation",
    "identical_bands",
    "match_bands",
    "model_bands_text",
    "polarisation",
]

IDENTICAL_NORMALISED_ATOL = 2.0 / 255
"""Largest difference on the normalised [0, 1] scale between bands that still count as one grey
band stored several times (JPEG noise of 2 grey levels in uint8)."""


def identical_bands(scaled: np.ndarray, raw: np.ndarray) -> bool:
    """Whether several bands are one grey band stored several times (the SOS JPEGs' R = G = B).

    Judged on the normalised scale (within :data:`IDENTICAL_NORMALISED_ATOL`), except where the
    scaling made the first band constant: there the raw values decide, so two different bands
    that a model's range clips to the same constant (a VV / VH stack in dB, all below 0, given
    to a model of 8-bit images: both 0) are two bands, a band-count error, not one band that is
    then "constant after scaling".

    Args:
        scaled: (C, ...) normalised values, float in [0, 1].
        raw: (C, ...) the same pixels in the file's units (integer data: within 2 units, the
            JPEG noise :func:`~sam2elnet.data.images.read_image` allows grey bands).

    Returns:
        True when the bands count as one.
    """
    if not np.allclose(scaled, scaled[:1], atol=IDENTICAL_NORMALISED_ATOL):
        return False
    if scaled.size and np.ptp(scaled[0]) > IDENTICAL_NORMALISED_ATOL:
        return True
    raw = np.asarray(raw)
    atol = 2.0 if np.issubdtype(raw.dtype, np.integer) else 0.0  # JPEG noise, as on reading
    raw = raw.astype(np.float64)
    return bool(np.allclose(raw, raw[:1], rtol=1e-6, atol=atol, equal_nan=True))


COLOUR_BANDS = 3
"""The band count of a colour (RGB) model, the one a single grey band is repeated into."""


_POLARISATION = re.compile(r"(?<![a-z])(hh|hv|vh|vv)(?![a-z])", re.IGNORECASE)


def polarisation(name: str | None) -> str | None:
    """The SAR polarisation a band description names: ``"Sigma0_VH_db"`` -> ``"VH"``.

    Args:
        name: A band description (GDAL, e.g. SNAP's ``Sigma0_VV_db``, ``Amplitude_VH``, ``HH``).

    Returns:
        ``HH`` / ``HV`` / ``VH`` / ``VV`` when the name holds exactly one of them as a word of its
        own (separated by anything but a letter); None otherwise (no name, none, or several:
        ``VV_VH_ratio``).
    """
    found = {m.upper() for m in _POLARISATION.findall(name or "")}
    return found.pop() if len(found) == 1 else None


def check_polarisation(
    path: str | Path | None, names: Sequence[str] | None, select: Sequence[int] | None = None
) -> str | None:
    """A warning text when an image band holds another polarisation than the model's band in
    its place: a model trained on VV given VH (6-10 dB darker over the sea, inside a widened dB
    range, so the range check is silent) labels it without a sign.

    Judged on band descriptions only (the model's ``NormalizationConfig.band_names``, recorded
    by ``elnet train`` from its training images, and the image's GDAL descriptions), so images
    and models without them are never warned about.

    Args:
        path: The image file (None, PNG / JPEG or unreadable: no check).
        names: The model's band names (None: no check).
        select: The 1-based file bands fed to the model (``--bands`` / the model's
            ``band_select``); None: the file's bands in order.

    Returns:
        None when every band fed has the model band's polarisation (or either names none);
        else the text (the caller puts the file first), with ``--bands`` choosing the file's
        band of the model's polarisation when it has one.
    """
    model = [polarisation(n) for n in names or []]
    if path is None or not any(model):
        return None
    image = band_descriptions(path, select)
    if len(image) != len(model):
        return None
    fed = list(select) if select else list(range(1, len(image) + 1))
    wrong = [
        (fed[i], p, image[i], m, (names or [])[i])
        for i, (m, p) in enumerate(zip(model, map(polarisation, image), strict=True))
        if m and p and m != p
    ]
    if not wrong:
        return None
    band, pol, desc, want, want_desc = wrong[0]
    file_pols = [polarisation(n) for n in band_descriptions(path)]
    if all(model) and all(m in file_pols for m in model):  # every model band named, in the file
        choice = ",".join(str(file_pols.index(m) + 1) for m in model)
        fix = (
            f"give the file's {want} band with --bands {choice}"
            if len(model) == 1
            else f"give the file's bands in the model's order ({', '.join(map(str, model))}) "
            f"with --bands {choice}"
        )
    else:
        fix = f"give a {want} image, or train a model on {pol} images"
    more = f" (and {plural(len(wrong) - 1, 'more band')})" if len(wrong) > 1 else ""
    return (
        f"band {band} is {pol} ({desc!r}) but the model was trained on {want} ({want_desc!r})"
        f"{more}, a different measurement (cross-polarised VH / HV backscatter is typically "
        f"6-10 dB below VV / HH over the sea), so its labels are unreliable; {fix}"
    )


def band_descriptions(path: str | Path, bands: Sequence[int] | None = None) -> list[str]:
    """The band descriptions of a GDAL raster (e.g. ``["VV", "VH"]``), for the bands kept.

    Args:
        path: the raster; PNG / JPEG and unreadable files have none.
        bands: 1-based file bands kept (``--bands``), in that order; None: all.

    Returns:
        One string per band kept ("" where a band has no description); ``[]`` when the file has
        no description at all or cannot be opened (never raises).
    """
    import rasterio

    from sam2elnet.data.naming import CV2_SUFFIXES
    from sam2elnet.data.windowed import GDAL_ENV, open_raster

    p = Path(path)
    if p.suffix.lower() in CV2_SUFFIXES:
        return []
    try:
        with rasterio.Env(**GDAL_ENV), open_raster(p) as src:
            names = [d or "" for d in src.descriptions]
    except (rasterio.errors.RasterioError, OSError):
        return []
    if not any(names):
        return []
    return [names[b - 1] if 0 < b <= len(names) else "" for b in bands] if bands else names


def model_bands_text(bands: int, names: Sequence[str] | None, select: Sequence[int] | None) -> str:
    """How a message names a model's bands, after their count: ``" (VV, VH)"`` with recorded
    band names, else ``" (file bands 4,3,2)"`` with a recorded ``--bands`` selection, else
    ``""``."""
    if names and len(names) == bands and all(names):
        return f" ({', '.join(names)})"
    if select and len(select) == bands:
        return f" (file bands {','.join(map(str, select))})"
    return ""


def band_layout(
    count: int,
    bands: int | None,
    identical: Callable[[], bool],
    path: Path | str | None,
    *,
    sar: bool = False,
    names: Sequence[str] | None = None,
    select: Sequence[int] | None = None,
    chosen: Sequence[int] | None = None,
    colour: bool = False,
    file_bands: int | None = None,
) -> str:
    """What to do with an image of ``count`` bands given to a model of ``bands`` (module doc).

    Args:
        count: bands read from the image (alpha dropped, ``--bands`` applied).
        bands: bands the model was trained on; None accepts any count.
        identical: called only when a one-band model meets several bands: whether they are one
            grey band stored several times (within :data:`IDENTICAL_NORMALISED_ATOL` after
            normalisation).
        path: the image, for the message.
        sar: the model is a SAR model (``NormalizationConfig.sar``): its bands are never a
            colour triplet a grey band may stand in for.
        names: the model's band names (``NormalizationConfig.band_names``), for the message.
        select: the model's file bands (``NormalizationConfig.band_select``), for the message.
        chosen: the file bands the user chose with ``--bands`` (None: not chosen); when the
            ``count`` bands are these, the message says ``2 bands chosen with --bands 1,2``
            instead of ``image has 2 bands``.
        colour: the image is 8-bit with 3 bands after its alpha band is dropped (RGB / RGBA):
            only then does the message into a SAR model call it an optical (colour) image; a
            stack of VV, VH and their ratio, or of 3 dates, is SAR too.
        file_bands: the bands the file holds, which ``chosen`` picks from: the message's
            ``--bands`` example names only these (None: not known, no example given).

    Returns:
        ``"keep"`` (counts match, or any count accepted), ``"repeat"`` (one band into a
        3-band optical model: repeated to R, G, B) or ``"first"`` (grey stored as identical
        bands: the first one for a one-band model).

    Raises:
        BandCountError: any other combination; one band into a model of several different
            bands (e.g. VV into a VV+VH model) included (the message names the file, both band
            counts and ``--bands``).
    """
    if bands is None or count == bands:
        return "keep"
    named = model_bands_text(bands, names, select)
    by_flag = chosen is not None and len(chosen) == count  # else e.g. grey collapsed to 1 band
    flag = f"--bands {','.join(map(str, chosen or ()))}"
    if count == 1:
        if bands == COLOUR_BANDS and not sar:
            return "repeat"
        ones = ",".join(["1"] * bands)
        raise BandCountError(
            "unsupported band count: "
            f"{f'1 band chosen with {flag}' if by_flag else 'image has 1 band'} but the model "
            f"was trained on {bands} bands{named}; "
            "repeating it would give the model the same values for each of its bands (e.g. VV "
            "as VH), so its answer would be wrong. Give an image holding all "
            f"{bands} bands (e.g. gdalbuildvrt -separate STACK.vrt BAND1.tif BAND2.tif), or "
            f"repeat band {chosen[0] if by_flag and chosen else 1} knowingly with --bands "
            f"{','.join([str(chosen[0])] * bands) if by_flag and chosen else ones}",
            path,
        )
    if bands == 1 and identical():
        return "first"
    if sar and colour and bands < COLOUR_BANDS <= count:  # an RGB photo into a SAR model
        named = (
            f" {'band' if bands == 1 else 'bands'} of SAR backscatter{named}; {count} different "
            "bands look like an optical (colour) image, which needs an optical model"
        )
    # the image's own bands (a 2-band image into a 3-band model: 1,2,2, not a band 3 it lacks);
    # after --bands the file may hold more bands than were chosen
    top = (file_bands or 0) if by_flag else count
    example = ",".join(str(min(i, top)) for i in range(1, bands + 1))
    if by_flag:
        of = f" of the file's {file_bands}" if file_bands else " of the file's bands"
        raise BandCountError(
            f"unsupported band count: {count} bands chosen with {flag} but the model was "
            f"trained for {bands}{named}; give {plural(bands, 'band number')}{of} to --bands"
            + (f" (e.g. --bands {example})" if file_bands else ""),
            path,
        )
    raise BandCountError(
        f"unsupported band count: image has {count} bands but the model was trained for "
        f"{bands}{named}; choose {plural(bands, 'band')} "
        f"with --bands (e.g. --bands {example}) or train a model on this kind of image",
        path,
    )


def match_bands(
    x: np.ndarray,
    bands: int | None,
    path: Path | str | None,
    *,
    sar: bool = False,
    names: Sequence[str] | None = None,
    select: Sequence[int] | None = None,
) -> np.ndarray:
    """Make the band count what the model expects where that is unambiguous (:func:`band_layout`).

    One band is repeated to a 3-band optical model's R, G, B; a grey image stored as identical
    channels (within 2/255 on the normalised scale) collapses to one band for a one-band model.

    Args:
        x: Normalised (C, H, W) float image.
        bands: Bands the model was trained on; None accepts any count.
        path: The image file, for the message.
        sar, names, select: as :func:`band_layout`.

    Returns:
        (bands, H, W) image (``x`` itself when the count already matches).

    Raises:
        BandCountError: any other mismatch (the message suggests ``--bands``).
    """
    layout = band_layout(
        x.shape[0],
        bands,
        lambda: bool(np.allclose(x, x[:1], atol=IDENTICAL_NORMALISED_ATOL)),
        path,
        sar=sar,
        names=names,
        select=select,
    )
    if layout == "repeat":
        return np.repeat(x, bands, axis=0)
    if layout == "first":
        return np.ascontiguousarray(x[:1])
    return x
