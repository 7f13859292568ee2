"""Where official SAM2 checkpoints live locally: the weights cache, file names and download URLs.

The cache folder is ``$SAM2ELNET_HOME`` or ``~/.cache/sam2elnet`` (:func:`weights_home`);
downloading into it is :mod:`sam2elnet.model.download`. No torch here: ``elnet weights list``
and the paths of a run need none (the trunk is :mod:`sam2elnet.model.hiera`).
"""

from __future__ import annotations

import os
from pathlib import Path

from sam2elnet.errors import CheckpointError

#: the official SAM2 releases' encoder sizes (``HIERA_SPECS`` in :mod:`sam2elnet.model.hiera` adds
#: ``micro``, this project's miniature for tests)
SAM2_SIZES = ("tiny", "small", "base_plus", "large")

OFFICIAL_URLS = {
    "2": "https://dl.fbaipublicfiles.com/segment_anything_2/072824/sam2_hiera_{size}.pt",
    "2.1": "https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_{size}.pt",
}


def weights_home() -> Path:
    """The local weights cache: ``$SAM2ELNET_HOME`` or ``~/.cache/sam2elnet``."""
    return Path(os.environ.get("SAM2ELNET_HOME", Path.home() / ".cache" / "sam2elnet")).expanduser()


def official_filename(size: str, version: str = "2.1") -> str:
    """File name of an official checkpoint (``sam2.1_hiera_tiny.pt`` ...)."""
    if version not in OFFICIAL_URLS:
        raise CheckpointError(f"unknown SAM2 version {version!r}; choose 2 or 2.1")
    if size not in SAM2_SIZES:
        raise CheckpointError(f"unknown SAM2 size {size!r}; choose one of {', '.join(SAM2_SIZES)}")
    return OFFICIAL_URLS[version].rsplit("/", 1)[1].format(size=size)


def official_url(size: str, version: str = "2.1") -> str:
    official_filename(size, version)  # validates
    return OFFICIAL_URLS[version].format(size=size)


def find_cached_weights(size: str = "tiny", home: Path | None = None) -> Path | None:
    """The locally cached official checkpoint for ``size`` (SAM 2.1 preferred), or None."""
    base = home or weights_home()
    for version in ("2.1", "2"):
        p = base / official_filename(size, version)
        if p.is_file():
            return p
    return None
