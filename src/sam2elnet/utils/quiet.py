"""Keep native-library chatter (libpng, libjpeg, OpenCV, GDAL) out of the user's terminal.

Decoders written in C print to file descriptor 2 directly ("libpng error: Read Error",
"Premature end of JPEG file", "[ WARN:0] global grfmt_png.cpp ..."), which Python cannot catch
and which would otherwise appear next to the one-line ``error:`` message. :func:`quiet_native_stderr`
points fd 2 at a temporary file for the duration of a decode, hands what was printed to the
caller (``.text``, so a truncation warning can be turned into an error for that file) and logs it
at DEBUG level (``elnet -v`` does not show it; ``logging`` at DEBUG does).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Iterator

log = logging.getLogger(__name__)

__all__ = ["NativeOutput", "quiet_native_stderr", "TRUNCATION_WORDS", "mentions_truncation"]

#: substrings (lower case) of decoder messages that mean the file ended early or is damaged
TRUNCATION_WORDS = (
    "premature end",
    "incomplete",
    "truncat",
    "read error",
    "corrupt",
    "crc error",
    "unexpected end",
    "not enough",
    "bad huffman",
    "ireadblock failed",
)


def mentions_truncation(text: str) -> bool:
    """True when decoder output ``text`` reports a truncated or damaged file."""
    low = text.lower()
    return any(w in low for w in TRUNCATION_WORDS)


class NativeOutput:
    """What native code printed while the context was active (filled on exit)."""

    text: str = ""


_lock = threading.Lock()
_depth = 0
_saved_fd: int | None = None
_capture: tempfile._TemporaryFileWrapper | None = None  # type: ignore[type-arg]


def _enabled() -> bool:
    return os.environ.get("SAM2ELNET_NATIVE_STDERR", "") != "1"


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[NativeOutput]:
    """Redirect fd 2 to a temporary file while the block runs; yield a :class:`NativeOutput`.

    Re-entrant and safe with threads (the first entrant redirects, the last one restores; text
    printed by other threads meanwhile lands in the same capture). ``SAM2ELNET_NATIVE_STDERR=1``
    disables the redirect (debugging).
    """
    global _depth, _saved_fd, _capture
    res = NativeOutput()
    if not _enabled():
        yield res
        return
    with _lock:
        if _depth == 0:
            try:
                sys.stderr.flush()
                _capture = tempfile.TemporaryFile(mode="w+b")
                _saved_fd = os.dup(2)
                os.dup2(_capture.fileno(), 2)
            except OSError:  # no fd 2 (embedded interpreters): run unredirected
                _capture = None
        _depth += 1
        cap = _capture
        start = cap.tell() if cap is not None else 0
    try:
        yield res
    finally:
        with _lock:
            if cap is not None:
                cap.flush()
                cap.seek(start)
                res.text = cap.read().decode("utf-8", "replace")
                cap.seek(0, os.SEEK_END)
            _depth -= 1
            if _depth == 0 and _capture is not None and _saved_fd is not None:
                os.dup2(_saved_fd, 2)
                os.close(_saved_fd)
                _capture.close()
                _capture, _saved_fd = None, None
        if res.text.strip():
            log.debug("native library output: %s", res.text.strip())
