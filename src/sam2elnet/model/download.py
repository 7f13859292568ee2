"""Downloading official SAM2 checkpoints into the local weights cache.

The download goes to a temporary file, is verified by actually loading the encoder from it, and only
then is renamed into place: a half-finished or corrupt download never sits under the final name.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from sam2elnet.errors import UserError
from sam2elnet.model.weights_cache import (
    SAM2_SIZES,
    official_filename,
    official_url,
    weights_home,
)
from sam2elnet.utils.atomic import atomic_path
from sam2elnet.utils.progress import progress_bar


def list_weights(home: Path | None = None) -> list[dict[str, object]]:
    """Every official size/version with its URL, local path and whether it is present."""
    base = home or weights_home()
    rows = []
    for version in ("2.1", "2"):
        for size in SAM2_SIZES:
            path = base / official_filename(size, version)
            rows.append(
                {
                    "size": size,
                    "version": version,
                    "present": path.is_file(),
                    "path": str(path),
                    "url": official_url(size, version),
                }
            )
    return rows


def download_weights(
    size: str = "tiny",
    version: str = "2.1",
    dest: Path | None = None,
    timeout: float = 30.0,
    progress: bool = True,
) -> Path:
    """Download an official checkpoint into ``dest`` (default: the cache), verify it, return its path.

    ``progress``: a bar of bytes received, or (False) one line when the download ends
    (:func:`sam2elnet.utils.progress.progress_bar`)."""
    from sam2elnet.model.hiera import load_encoder_weights  # torch: only when downloading

    url = official_url(size, version)
    folder = dest or weights_home()
    final = folder / official_filename(size, version)
    if final.is_file():
        return final
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(final) as tmp:
            with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as out:
                total = int(resp.headers.get("Content-Length") or 0) or None
                bar = progress_bar(total, final.name, "B", progress, unit_scale=True)
                try:
                    while chunk := resp.read(1 << 20):
                        out.write(chunk)
                        bar.update(len(chunk))
                finally:
                    bar.close()
            load_encoder_weights(tmp, size)  # verify before it takes the final name
    except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
        reason = getattr(err, "reason", err)
        raise UserError(
            f"could not download {url} ({reason}); download it by hand on a machine with internet "
            f"access and put it at {final}"
        ) from None
    except OSError as err:
        raise UserError(
            f"could not write {final.name} ({err.strerror or err}); check free space", folder
        ) from None
    return final
