"""Where each dataset layout keeps its files: the folder rule of :func:`~sam2elnet.data.layouts.discover`.

:func:`detect_layout` recognises a layout (SOS sensor folders, CHN6-CUG ``gt/``, generic
``masks/`` / ``labels/``, a flat folder of ``<id>`` + ``<id>_mask`` files; see
:mod:`sam2elnet.data.layouts`) and :func:`places` lists the folders it reads, with a few ``stat``
calls (a folder without any of those sub-folders is listed once, to find a ``_sat`` / ``_mask``
file); :func:`read_folders` gives those folders
to the run-folder overlap checks (:func:`sam2elnet.engine.folder_inputs.check_run_out`), which
must not list a whole dataset to refuse an ``--out`` inside one of them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "SOS_SENSORS",
    "SPLIT_NAMES",
    "Place",
    "detect_layout",
    "flat_folder",
    "places",
    "read_folders",
    "sensor_folder",
    "sensor_place",
    "unreadable_splits",
]

SOS_SENSORS = ("palsar", "sentinel")
SPLIT_NAMES = ("train", "val", "test")


def sos_roots(root: Path) -> list[tuple[str | None, Path]]:
    """(split, folder holding sensor folders): the dataset root, or one split folder. A folder
    named for a sensor that holds ``images/`` is no sensor folder (:func:`_no_images`)."""
    found = [
        (s, root / s)
        for s in ("train", "test")
        if any(_no_images(root / s / n) for n in SOS_SENSORS)
    ]
    if not found and any(_no_images(root / n) for n in SOS_SENSORS):
        found = [(root.name if root.name in SPLIT_NAMES else None, root)]
    return found


def split_dirs(root: Path, image_dir: str) -> list[tuple[str | None, Path]]:
    """(split, folder holding ``image_dir``): the root itself, or its split folders."""
    if (root / image_dir).is_dir():
        return [(root.name if root.name in SPLIT_NAMES else None, root)]
    return [(s, root / s) for s in SPLIT_NAMES if _is_dir(root / s / image_dir)]


def unreadable_splits(root: Path) -> list[tuple[Path, OSError]]:
    """The split folders of ``root`` (``train/``, ``val/``, ``test/``) that exist but cannot be
    looked into (no read or no search permission), each with the error listing it gave. Layout
    detection passes over them (:func:`_is_dir`); :func:`~sam2elnet.data.layouts.discover`
    stops on one a command reads."""
    out = []
    for name in SPLIT_NAMES:
        folder = root / name
        if not os.path.isdir(folder):  # never raises
            continue
        try:
            with os.scandir(folder) as entries:
                first = next(entries, None)
                if first is not None:
                    first.stat(follow_symlinks=False)  # needs search permission
        except OSError as err:
            out.append((folder, err))
    return out


def _tagged_file(root: Path, tags: tuple[str, ...]) -> bool:
    """Whether ``root`` holds a file whose stem ends in one of ``tags`` (stops at the first)."""
    try:
        return any(p.is_file() and p.stem.lower().endswith(tags) for p in root.iterdir())
    except OSError:
        return False


def sensor_folder(root: Path) -> bool:
    """``root`` is one SOS sensor folder itself (``sos/train/palsar``: ``<id>_sat.jpg`` +
    ``<id>_mask.png``; ``sos/test/sentinel``: ``sat/`` + ``gt/``, or one of them: see
    :func:`sensor_place`). Its name alone does not make it one: a CHN6-CUG folder named
    ``palsar`` (``images/`` + ``gt/``) is read as ``chn6`` (:func:`_no_images`)."""
    return (
        root.name in SOS_SENSORS
        and _no_images(root)
        and (_split_sensor(root) or _tagged_file(root, ("_sat",)))
    )


def _no_images(folder: Path) -> bool:
    """``folder`` exists and holds no ``images/`` folder: it may be an SOS sensor folder. One
    with ``images/`` is a CHN6-CUG or generic dataset (``images/`` + ``gt/`` / ``masks/``),
    whatever its name; no SOS folder has one."""
    return _is_dir(folder) and not _is_dir(folder / "images")


def _is_dir(path: Path) -> bool:
    """Whether ``path`` is a folder; False when it cannot be looked at (its folder unreadable:
    reading that folder names it)."""
    try:
        return path.is_dir()
    except OSError:
        return False


def _split_sensor(folder: Path) -> bool:
    return (folder / "sat").is_dir() or (folder / "gt").is_dir()


def flat_folder(root: Path) -> bool:
    """``root`` holds images and their masks side by side (``<id>.tif`` + ``<id>_mask.tif``,
    any tag of :data:`~sam2elnet.data.naming.MASK_TAGS`), with no ``images/`` folder: at least
    one image file with a mask tag and one without (a folder of masks only is no dataset)."""
    from sam2elnet.data.naming import IMAGE_SUFFIXES, MASK_TAGS

    if (root / "images").is_dir():
        return False
    seen = set()
    try:
        for p in root.iterdir():
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
                seen.add(p.stem.lower().endswith(MASK_TAGS))
                if len(seen) == 2:
                    return True
    except OSError:
        pass
    return False


@dataclass(frozen=True)
class Place:
    """One folder of images a layout reads, with its labels' folder (the same one for SOS
    training sensors: ``mixed``, told apart by the ``_sat`` / ``_mask`` tags) and coarse labels."""

    split: str | None
    sensor: str | None
    images: Path
    masks: Path | None
    coarse: Path | None = None
    mixed: bool = False


def sensor_place(split: str | None, sensor: str, folder: Path) -> Place:
    """Where one SOS sensor ``folder`` keeps its files, the one rule for a sensor folder given
    as the root and one under ``train/`` / ``test/``: ``sat/`` images + ``gt/`` labels (the
    test layout) when either sub-folder exists, else the folder itself, ``<id>_sat`` images
    beside their ``<id>_mask`` labels (the training layout, ``mixed``). A folder with ``gt/``
    but no ``sat/`` gets a place whose ``images`` folder is missing; reading it is then an
    error naming ``sat/`` (:func:`sam2elnet.data.layouts.discover`), never a silent mix."""
    if _split_sensor(folder):
        return Place(split, sensor, folder / "sat", folder / "gt")
    return Place(split, sensor, folder, folder, mixed=True)


def places(
    root: Path, found: str, splits: set[str] | None = None, sensors: set[str] | None = None
) -> list[Place]:
    """Where layout ``found`` reads under ``root`` (only ``splits`` / ``sensors`` when given):
    the one rule of :func:`~sam2elnet.data.layouts.discover` and :func:`read_folders` (a few
    ``stat`` calls; no folder is listed)."""
    out: list[Place] = []
    if found == "sos" and not sos_roots(root) and sensor_folder(root):  # sos/train/palsar
        split = root.parent.name if root.parent.name in SPLIT_NAMES else None
        if (splits and split not in splits) or (sensors and root.name not in sensors):
            return []
        return [sensor_place(split, root.name, root)]
    if found == "flat":
        split = root.name if root.name in SPLIT_NAMES else None
        return (
            [] if splits and split not in splits else [Place(split, None, root, root, mixed=True)]
        )
    if found == "sos":
        for split, base in sos_roots(root):
            for sensor in SOS_SENSORS:
                f = base / sensor
                if (splits and split not in splits) or (sensors and sensor not in sensors):
                    continue
                if f.is_dir():
                    out.append(sensor_place(split, sensor, f))
        return out
    mask_dirs = ("gt",) if found == "chn6" else ("masks", "labels")
    for split, base in split_dirs(root, "images"):
        if splits and split not in splits:
            continue
        mdir = next((base / m for m in mask_dirs if (base / m).is_dir()), None)
        coarse = base / "coarse" if mdir is not None and (base / "coarse").is_dir() else None
        out.append(Place(split, None, base / "images", mdir, coarse))
    return out


def read_folders(root: str | Path) -> list[tuple[str, Path]]:
    """The folders :func:`~sam2elnet.data.layouts.discover` (layout auto) reads image and label
    files from, as
    ``("images" | "masks" | "coarse labels", folder)``, found with a few ``stat`` calls and no
    file listed (existing folders only; empty when no layout is recognised). An SOS training
    sensor folder, which holds images and masks, is named once, as ``"images"``."""
    base = Path(root)
    found = detect_layout(base) if base.is_dir() else None
    out: list[tuple[str, Path]] = []
    for p in places(base, found) if found else []:
        for role, folder in (("images", p.images), ("masks", p.masks), ("coarse labels", p.coarse)):
            if folder is not None and folder.is_dir() and all(f != folder for _, f in out):
                out.append((role, folder))
    return out


def detect_layout(root: Path) -> str | None:
    """The layout of ``root`` (``sos``, ``chn6``, ``generic``, ``flat``), or None when none
    matches. One SOS sensor folder (``sos/train/palsar``) is ``sos``; a folder of images and
    their ``<id>_mask`` files side by side is ``flat``."""
    if sos_roots(root) or sensor_folder(root):
        return "sos"
    for _split, base in split_dirs(root, "images"):
        if (base / "gt").is_dir():
            return "chn6"
        if (base / "masks").is_dir() or (base / "labels").is_dir():
            return "generic"
    return "flat" if flat_folder(root) else None
