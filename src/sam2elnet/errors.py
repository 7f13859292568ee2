"""User-facing errors.

Library code raises :class:`UserError` for anything the *user* can fix (missing file, corrupt image,
wrong checkpoint, empty folder...). The CLI turns it into a one-line ``error: ...`` message and exit
code 2, with no traceback. Programming errors stay ordinary exceptions so they are never hidden.
"""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """An error caused by input the user controls; the message says what is wrong and what to do."""

    exit_code = 2

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        super().__init__(message if path is None else f"{path}: {message}")


class CheckpointError(UserError):
    """A weights or model file that cannot be used (truncated, foreign, wrong size, unsafe)."""


class DataError(UserError):
    """An image, mask, vector file or dataset folder that cannot be used."""


class NoPairsError(DataError):
    """A dataset folder (or the splits / sensors asked for) holding no image/label pair: an
    absent split, not a broken one (:func:`sam2elnet.data.splits.select_split` tells them apart)."""


class BandCountError(DataError):
    """An image whose band count the model cannot take. Folder jobs skip it (listed in
    ``skipped.csv`` with this message) and label the usable images; ``--bands`` selects bands."""


def require_exists(path: str | Path, what: str = "file") -> Path:
    """Return ``path`` as a Path, or raise a UserError that names it when it does not exist."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{what} does not exist; check the path", p)
    return p


class DiskFullError(UserError):
    """The file system ran out of space (ENOSPC) while writing an output; nothing was left under
    the final name."""


class LockedError(UserError):
    """The output folder is in use by another running job."""
