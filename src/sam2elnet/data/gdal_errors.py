"""GDAL / rasterio errors as one-line reasons: the one wording of every raster skip reason.

rasterio wraps GDAL's error in ``RasterioIOError('Read failed. See previous exception for
details.')`` and GDAL prints its warnings straight to file descriptor 2; a skip reason or an
``error: ...`` line needs the real cause instead, in one line. Every place that turns a raster
read or write error into a :class:`~sam2elnet.errors.DataError` (image, mask, label and scene
readers, export, warp) words it with :func:`gdal_reason`, so ``skipped.csv`` rows read alike::

    cannot read raster (<reason>); corrupt, truncated or unsupported format: re-export it as
    GeoTIFF/PNG or remove it
"""

from __future__ import annotations

__all__ = ["REEXPORT_HINT", "gdal_reason", "raster_error_text"]

MAX_REASON = 240
"""Longest reason (characters); longer ones end in ``...`` (a GDAL message may hold a whole WKT)."""

REEXPORT_HINT = "corrupt, truncated or unsupported format: re-export it as GeoTIFF/PNG or remove it"
"""What to do about a raster GDAL cannot read (the end of the message of every raster reader)."""


def gdal_reason(err: BaseException, native: str = "") -> str:
    """The real cause of a rasterio / GDAL error, one line of at most :data:`MAX_REASON` characters.

    rasterio's ``RasterioIOError('Read failed. See previous exception for details.')`` chains
    the GDAL error (``CPLE_AppDefinedError``: ``IReadBlock failed ... TIFFReadEncodedStrip()
    failed``); that message is used, else the error's own, else its class name (an error without
    text). ``native``: what GDAL printed while the file was read (captured by
    :func:`~sam2elnet.utils.quiet.quiet_native_stderr`, ``Warning 1: TIFFFetchNormalTag:IO
    error ...``); its first line is added as GDAL's warning.
    """
    msg = str(err).strip()
    cause = err.__cause__ or err.__context__
    if cause is not None and (not msg or "previous exception" in msg):
        msg = str(cause).strip()
    lines = [ln.strip() for ln in native.splitlines() if ln.strip()]
    if lines:
        first = (
            lines[0].split(": ", 1)[-1] if lines[0].startswith(("Warning", "ERROR")) else lines[0]
        )
        msg = f"{msg}; GDAL warned: {first}" if msg else first
    msg = " ".join(msg.split()) or type(err).__name__
    return msg if len(msg) <= MAX_REASON else msg[: MAX_REASON - 3] + "..."


def raster_error_text(what: str, err: BaseException, native: str = "") -> str:
    """``cannot read <what> (<reason>); <REEXPORT_HINT>`` for a raster GDAL cannot read.

    Args:
        what: the kind of file, e.g. ``"raster"``, ``"mask"``, ``"label raster"``.
        err: the rasterio / GDAL (or OS) error.
        native: GDAL's printed warnings, as :func:`gdal_reason`.
    """
    return f"cannot read {what} ({gdal_reason(err, native)}); {REEXPORT_HINT}"
