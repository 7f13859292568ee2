"""Where ``elnet serve`` finds a Label Studio task's image: a local file, or a download.

Part of :mod:`sam2elnet.pipeline.serve`. In order (:func:`task_image`): the task's
``data.source`` (a local path, as ``elnet export --format label-studio`` writes it), a
``/data/local-files/?d=`` URL under Label Studio's ``document_root``, the URL as a local path, or
a download into the work folder's ``cache/``. The ``Authorization: Token`` header goes only to
the Label Studio host (:func:`same_host`), never to another server a task's URL names.
"""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from sam2elnet.errors import DataError

__all__ = ["download", "same_host", "task_image"]


def task_image(
    task: dict[str, Any],
    key: str,
    *,
    document_root: Path | None,
    cache: Path,
    hostname: str | None,
    token: str | None,
) -> Path:
    """The local file of ``task``'s image (the order is in the module docstring).

    Args:
        task: A Label Studio task (``data`` holds the image URL under ``key``).
        key: The data key of the image URL (the labelling config's ``<Image value="$KEY">``).
        document_root: Label Studio's ``LOCAL_FILES_DOCUMENT_ROOT``; None: not readable here.
        cache: The folder downloads go to.
        hostname: The Label Studio URL (``http://host:port``) that relative URLs are under.
        token: Label Studio's API token, sent only to ``hostname``.

    Raises:
        DataError: no URL under ``key``, a relative URL without a known host, or a failed
            download.
    """
    data = task.get("data") or {}
    src = data.get("source")
    if isinstance(src, str) and src and Path(src).is_file():
        return Path(src)
    url = str(data.get(key) or "")
    if not url:
        raise DataError(f"task has no data.{key} (the image of the labelling config)")
    if url.startswith("/data/local-files") and document_root is not None:
        rel = parse_qs(urlparse(url).query).get("d", [""])[0]
        p = (document_root / rel).resolve()
        if p.is_file() and p.is_relative_to(document_root.resolve()):
            return p
    if Path(url).is_file():
        return Path(url)
    return download(url, task.get("id", "x"), cache, hostname, token)


def download(url: str, task_id: Any, cache: Path, hostname: str | None, token: str | None) -> Path:
    """Download ``url`` (relative: under ``hostname``) to ``cache/<task_id>_<name>``.

    Raises:
        DataError: a relative URL without ``hostname``, or the download failed (the reason).
    """
    if url.startswith("/"):
        if not hostname:
            raise DataError(f"cannot fetch {url}: Label Studio host unknown (give --ls-url)")
        url = hostname + url
    cache.mkdir(parents=True, exist_ok=True)
    name = Path(urlparse(url).path).name or "image"
    if "d" in parse_qs(urlparse(url).query):
        name = Path(parse_qs(urlparse(url).query)["d"][0]).name
    dst = cache / f"{task_id}_{name}"
    req = urllib.request.Request(url)
    if token and hostname and same_host(url, hostname):
        req.add_header("Authorization", f"Token {token}")  # never to other hosts
    try:
        with urllib.request.urlopen(req, timeout=60) as r, open(dst, "wb") as fh:
            shutil.copyfileobj(r, fh)
    except OSError as err:
        raise DataError(f"cannot download {url} ({err})") from None
    return dst


def same_host(url: str, host: str) -> bool:
    """True when ``url`` points at the Label Studio ``host`` (scheme and network location)."""
    a, b = urlparse(url), urlparse(host)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)
