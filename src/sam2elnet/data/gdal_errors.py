"""GDAL / rasterio errors as one-line reasons: the one wording of every raster skip reason.

rasterio wraps GDAL's error in ``RasterioIOError('Read failed. See previous exception for
details.')`` and GDAL prints its warnings straight to file descriptor 2; a skip reason or an
``error: ...`` line needs the real cause instead, in one line. Every place that turns a raster
read or write error into a :class:`~sam2elnet.errors.DataError` (image, mask, label and scene
readers, export, warp) words it with :func:`gdal_reason`, so ``skipped.csv`` rows read alike::

    cannot read raster (<reason>); corrupt, truncated or unsupported format: re-export it as
    GeoTIFF/PNG or remove it

A vector file GDAL / pyogrio cannot open is worded by :func:`vector_error_text`, GDAL's text
said once (pyogrio repeats it, and a GeoPackage's carries the SQL statement that failed).
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = [
    "REEXPORT_HINT",
    "VECTOR_HINT",
    "gdal_reason",
    "raster_error_text",
    "vector_error_text",
]

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
    return _clipped(" ".join(msg.split()) or type(err).__name__)


def _clipped(reason: str) -> str:
    """``reason`` cut to :data:`MAX_REASON` characters, ending in ``...`` when it was longer."""
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 3] + "..."


def raster_error_text(what: str, err: BaseException, native: str = "") -> str:
    """``cannot read <what> (<reason>); <REEXPORT_HINT>`` for a raster GDAL cannot read.

    Args:
        what: the kind of file, e.g. ``"raster"``, ``"mask"``, ``"label raster"``.
        err: the rasterio / GDAL (or OS) error.
        native: GDAL's printed warnings, as :func:`gdal_reason`.
    """
    return f"cannot read {what} ({gdal_reason(err, native)}); {REEXPORT_HINT}"


VECTOR_HINT = (
    "save or export it again as GeoPackage, GeoJSON or Shapefile polygons/lines (QGIS: "
    "right-click the layer, Export > Save Features As...)"
)
"""What to do about a vector file GDAL cannot read (the end of :func:`vector_error_text`)."""

_SQLITE_CALL = re.compile(r"sqlite3_\w+\(.*?\) failed: ", re.DOTALL)
_DAMAGED_SQLITE = ("database disk image is malformed", "file is not a database")


def vector_error_text(path: str | Path, err: BaseException) -> str:
    """``not a readable vector file (...); <VECTOR_HINT>`` for a vector file pyogrio cannot open.

    GDAL's message is said once: pyogrio's ``DataSourceError`` repeats SQLite's reason after the
    failed statement (``sqlite3_prepare_v2(SELECT ...) failed: database disk image is
    malformed; database disk image is malformed``); the statement, the repeats, the file's own
    name and GDAL's advice to name a driver (``It might help to specify the correct driver
    ...``) are left out. A GeoPackage SQLite calls damaged (cut short by an interrupted copy or
    download) is said so, with the first thing to try: copy it again.

    Args:
        path: the file (named by the caller's error, not repeated here).
        err: the pyogrio / GDAL error.

    Returns:
        One line, e.g. ``not a readable vector file (GDAL: not recognized as being in a
        supported file format); save or export it again as ...``.
    """
    msg = _SQLITE_CALL.sub("", str(err))
    for name in {str(path), Path(path).name}:
        msg = msg.replace(f"'{name}' ", "")
    parts: list[str] = []
    for part in re.split(r";\s+", msg):
        part = " ".join(part.split()).rstrip(".")
        if part and not part.startswith("It might help to specify") and part not in parts:
            parts.append(part)
    reason = _clipped("; ".join(parts) or type(err).__name__)
    if any(d in reason for d in _DAMAGED_SQLITE):
        kind = "GeoPackage" if Path(path).suffix.lower() == ".gpkg" else "SQLite file"
        return (
            f"not a readable vector file: the {kind} is damaged ({reason}: cut short or "
            "overwritten, e.g. by an interrupted copy or download); copy it again from where it "
            f"came from, or {VECTOR_HINT}"
        )
    return f"not a readable vector file (GDAL: {reason}); {VECTOR_HINT}"
