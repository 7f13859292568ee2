"""An exclusive lock on an output folder, so two jobs never write into the same ``--out``.

Two ``elnet annotate`` runs into one folder with different filters used to leave the same image
in both ``labels/`` and ``rejected/`` and a ``quality.csv`` describing half of the files. Every
job that writes a folder takes :func:`output_lock` first: an ``fcntl.flock`` on ``OUT/.elnet.lock``
(released by the kernel when the process dies, so a killed job never leaves a stale lock), with
the holder's PID and command written into the file for the error message of the second job.
Re-entrant within one process (the CLI and the library function it calls may both take it).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from sam2elnet.errors import LockedError

__all__ = ["lock_created", "output_lock", "LOCK_NAME"]

LOCK_NAME = ".elnet.lock"


def lock_created(folder: str | Path) -> bool:
    """This process holds :func:`output_lock` on ``folder`` and that lock made the folder (it
    did not exist before the lock was taken): the run's own folder, to remove when the run
    produced nothing. False for a folder the user made (empty or not) and for a folder no lock
    of this process holds. The decision is ``not folder.exists()`` taken before the lock file
    was created, never what the folder holds (a user's empty folder holds only the lock too)."""
    key = str(Path(folder).resolve())
    with _guard:
        return key in _made and key in _held


_held: dict[str, tuple[int, int]] = {}  # resolved folder -> (fd, depth)
_made: set[str] = set()  # resolved folders whose held lock created them
_guard = threading.Lock()


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return "another process"
    pid, _, cmd = text.partition(" ")
    if pid.isdigit():
        return f"another elnet job (PID {pid}{': ' + cmd[:80] if cmd else ''})"
    return "another process"


@contextlib.contextmanager
def output_lock(folder: str | Path) -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` (created if missing) for the duration of the block.

    Raises:
        LockedError: another process holds the lock; the message names its PID and command.
        UserError: ``folder`` is a file, lies under a file, or cannot be written
            (:func:`~sam2elnet.utils.paths.check_output`; the Python API gets the error the
            CLI's ``--out`` check gives, not a bare ``FileExistsError``).
    """
    from sam2elnet.utils.paths import check_output

    root = Path(folder)
    if not root.is_dir():  # an existing folder needs no check (the lock's open tells)
        check_output(root, "dir", "--out")
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    key = str(root.resolve())
    lock_path = root / LOCK_NAME
    with _guard:
        if key in _held:
            fd, depth = _held[key]
            _held[key] = (fd, depth + 1)
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield root
        finally:
            with _guard:
                fd, depth = _held[key]
                _held[key] = (fd, depth - 1)
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover  (Windows: no advisory locks; run unlocked)
        yield root
        return
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise LockedError(
                f"output folder is in use by {_holder(lock_path)}; wait for it to finish or "
                "choose another --out",
                root,
            ) from None
        # the previous holder may have removed the file between our open and flock: retry then
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock_path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    with contextlib.suppress(OSError):  # who holds it: best effort (a full disk must not fail it)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {' '.join(sys.argv[:4])}\n".encode())
    with _guard:
        _held[key] = (fd, 1)
        if created:
            _made.add(key)
    try:
        yield root
    finally:
        with _guard:
            _held.pop(key, None)
            _made.discard(key)
        with contextlib.suppress(OSError):
            os.unlink(lock_path)
        os.close(fd)  # releases the flock
        if created:  # a job that failed before writing anything leaves no empty folder behind
            with contextlib.suppress(OSError):
                root.rmdir()
