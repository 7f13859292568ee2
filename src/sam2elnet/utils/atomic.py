"""Atomic, verified file output: write to a temporary name in the same folder, check, then rename.

A killed job therefore never leaves a half-written file under the final name, which is what makes
``--resume`` safe (a file that exists is complete). Some writers report success on a full disk
(``cv2.imwrite`` and GDAL both return normally after a failed ``fclose``, leaving a 0-byte file),
so before the rename the temporary file is checked: it must exist, be non-empty (or exactly the
bytes written, for text) and pass the caller's ``verify`` (for images: decode it again). A failed
check on a file system with almost no space left raises :class:`~sam2elnet.errors.DiskFullError`
("disk full"); any ``ENOSPC``/``EDQUOT`` raised by a writer is reported the same way.

Temporary names are ``.<stem>.<random>.tmp<suffix>``; :func:`remove_stale_temps` deletes those a
killed job left behind (``--resume`` calls it).
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sam2elnet.errors import DiskFullError, UserError
from sam2elnet.utils import paths

#: below this many free bytes a failed write is blamed on a full disk
LOW_SPACE_BYTES = 1 << 20

_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def free_bytes(folder: str | Path) -> int:
    """Bytes available to this process in the file system holding ``folder`` (-1 if unknown)."""
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):
        return -1
    return int(st.f_bavail) * int(st.f_frsize)


def disk_full_error(final: Path) -> DiskFullError:
    """The one error raised when the disk fills while writing ``final``."""
    return DiskFullError(
        "disk full (no space left on device) while writing this file; free some space or "
        "choose another output folder, then re-run with --resume",
        final,
    )


def _looks_disk_full(err: BaseException, folder: Path) -> bool:
    if isinstance(err, OSError) and err.errno in _DISK_FULL:
        return True
    text = str(err).lower()
    if "no space left" in text or "disk full" in text or "quota" in text:
        return True
    # writers that wrap the OS error (torch.save's RuntimeError, rasterio's CPLE_*) lose errno
    free = free_bytes(folder)
    return 0 <= free < LOW_SPACE_BYTES


def _check_written(tmp: Path, final: Path, verify: Callable[[Path], Any] | None) -> None:
    """Raise when the temporary file is missing, empty or fails ``verify``."""
    if tmp.is_dir():
        return
    size = tmp.stat().st_size if tmp.exists() else -1
    ok = size > 0
    if ok and verify is not None:
        try:
            ok = verify(tmp) is not False
        except Exception:  # noqa: BLE001  (any failure to re-read means a bad file)
            ok = False
    if ok:
        return
    if 0 <= free_bytes(final.parent) < LOW_SPACE_BYTES:
        raise disk_full_error(final)
    raise UserError(
        "the written file is "
        + ("missing" if size < 0 else "empty" if size == 0 else "unreadable")
        + " after writing (disk full or failing storage?); check the output folder and re-run",
        final,
    )


@contextlib.contextmanager
def atomic_path(
    path: str | Path,
    suffix: str | None = None,
    verify: Callable[[Path], Any] | None = None,
    allow_empty: bool = False,
) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success check it and rename it to ``path``.

    Args:
        path: the final file.
        suffix: suffix of the temporary name; defaults to the final file's suffix so libraries
            that pick a format from the file name (rasterio, PIL, geopandas) still do the right
            thing.
        verify: called with the temporary path after writing; raising or returning False means
            the file is bad (e.g. re-open and decode an image).
        allow_empty: accept a 0-byte file (an empty text file is a valid output).

    Raises:
        DiskFullError: the disk filled up (ENOSPC from the writer, or a bad file with < 1 MiB
            free); the temporary file is removed and nothing appears under ``path``.
        UserError: the written file is empty or unreadable for another reason.
    """
    final = Path(path)
    if final.is_dir():  # else the writing runs, and os.replace fails with a bare OSError
        raise UserError("is a folder, expected a file name; add a file name", final)
    sfx = final.suffix if suffix is None else suffix
    # The name is chosen before the file exists, so an interrupt (Ctrl-C, SIGTERM) at any
    # instruction after it finds the cleanup below: with tempfile.mkstemp a signal between its
    # creating the file and its returning the name left the file behind (a scene stopped under
    # load, 3 of 30 runs; tests/utils/test_atomic_interrupt.py).
    tmp = final.parent / f".{final.stem}.{secrets.token_hex(6)}.tmp{sfx}"
    ready = False
    try:
        _claim(tmp, final)  # the folder takes a new file here: created and removed at once
        ready = True
        yield tmp
        if not (allow_empty and tmp.is_file() and tmp.stat().st_size == 0):
            _check_written(tmp, final, verify)
        os.replace(tmp, final)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError if ready else OSError):
            if tmp.is_dir():
                shutil.rmtree(tmp)
            else:
                tmp.unlink()
        if ready and not isinstance(err, (DiskFullError, KeyboardInterrupt, SystemExit)):
            if _looks_disk_full(err, final.parent):
                raise disk_full_error(final) from None
        raise


def _claim(tmp: Path, final: Path) -> None:
    """Make ``final``'s folder, create ``tmp`` there (exclusively, mode 0600) and remove it again,
    so that a folder that takes no new file fails here, before any work is written; the writer
    creates ``tmp`` itself (some writers refuse to overwrite).

    Raises:
        DiskFullError: no space left (ENOSPC / EDQUOT).
        UserError: a file stands where a folder of ``final``'s path must be.
        OSError: the folder cannot be made or written (permission denied, read-only ...).
    """
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        paths.create_new_file(tmp)
    except OSError as err:
        if err.errno in _DISK_FULL:
            raise disk_full_error(final) from None
        if err.errno in (errno.ENOTDIR, errno.EEXIST):  # a file where a folder must be made
            paths.check_output(final, "file", "output file")  # the UserError naming that file
        raise
    tmp.unlink()


def write_bytes_atomic(path: str | Path, data: bytes, sync: bool = True) -> Path:
    """Write bytes atomically; the file must have exactly ``len(data)`` bytes before the rename.

    ``sync`` (default): ``fsync`` the bytes before the rename, so that they survive a power loss
    once the file is under its name (a kill never loses them: the page cache outlives the
    process). ``sync=False`` is for records whose loss after a power failure the reader handles
    (``model_id.json``: :func:`sam2elnet.data.run_model.write_model_identity`); each ``fsync``
    costs 1-10 ms of wall time on a shared disk (docs/benchmarks.md)."""

    def _same_size(tmp: Path) -> bool:
        return tmp.stat().st_size == len(data)

    with atomic_path(path, verify=_same_size, allow_empty=not data) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            if sync:
                fh.flush()
                os.fsync(fh.fileno())
    return Path(path)


def write_text_atomic(path: str | Path, text: str, sync: bool = True) -> Path:
    """Write a UTF-8 text file atomically (size checked before the rename; ``sync``: as
    :func:`write_bytes_atomic`); return its path."""
    return write_bytes_atomic(path, text.encode("utf-8"), sync=sync)


def strict_json_value(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, +-inf, also NumPy floats) replaced by None,
    recursively through dicts, lists and tuples (tuples become lists), so that it dumps as
    strict JSON (RFC 8259 has no NaN/Infinity; ``json.dumps`` would write the bare tokens).
    Other values are returned unchanged."""
    if isinstance(obj, dict):
        return {k: strict_json_value(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json_value(v) for v in obj]
    if isinstance(obj, float) or type(obj).__name__ in ("float16", "float32", "float64"):
        f = float(obj)
        return f if math.isfinite(f) else None
    return obj


def json_text(obj: Any, indent: int | None = 2, sort_keys: bool = False) -> str:
    """Strict JSON text of ``obj`` (no trailing newline): non-finite floats become ``null``
    (:func:`strict_json_value`), other non-JSON values their ``str()``. The one serialisation
    every JSON file of the package goes through."""
    return json.dumps(
        strict_json_value(obj), indent=indent, sort_keys=sort_keys, default=str, allow_nan=False
    )


def write_json_atomic(path: str | Path, obj: Any, sync: bool = True) -> Path:
    """Write ``obj`` as indented strict JSON (:func:`json_text`: NaN/inf as null) atomically and
    return the path (``sync``: as :func:`write_bytes_atomic`)."""
    return write_text_atomic(path, json_text(obj) + "\n", sync=sync)


def remove_stale_temps(folder: str | Path, recursive: bool = True) -> int:
    """Delete temporary files a killed job left in ``folder`` (``.<stem>.<random>.tmp<sfx>``).

    Returns how many were removed. Only names this module creates are touched.
    """
    root = Path(folder)
    if not root.is_dir():
        return 0
    n = 0
    it = root.rglob(".*.tmp*") if recursive else root.glob(".*.tmp*")
    for p in list(it):
        if ".tmp" not in p.name or not p.name.startswith("."):
            continue
        with contextlib.suppress(OSError):
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink()
            n += 1
    return n
