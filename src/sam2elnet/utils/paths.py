"""Output-path checks run before any work starts, and OS errors turned into one-line messages.

Every command calls :func:`check_output` for each of its output options (``--out``, ``--json``,
``--csv``, ``--chips``, ...) before it reads a single input, so a path that cannot be created
(under an existing file, onto a file where a folder is expected, through a symlink loop, in a
folder without write permission) fails in a second with one ``error:`` line instead of after
hours of work with a traceback. The check creates nothing: a write probe is removed at once.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from sam2elnet.errors import UserError

__all__ = [
    "SHAPEFILE_SIDECARS",
    "check_distinct_outputs",
    "check_not_input",
    "check_out_folder",
    "check_out_overlap",
    "check_output",
    "check_input",
    "os_error_message",
    "read_access_advice",
]

#: the files of one Shapefile ``x.shp`` (``x.<suffix>``, any case) that GDAL, QGIS and ArcGIS
#: read or write with it: geometry, index, attributes, projection, code page, QGIS metadata,
#: spatial indexes and metadata XML
SHAPEFILE_SIDECARS = (
    ".shp",
    ".shx",
    ".dbf",
    ".prj",
    ".cpg",
    ".qmd",
    ".qml",
    ".qix",
    ".sbn",
    ".sbx",
    ".fix",
    ".shp.xml",
)


def _with_sidecars(p: Path) -> list[Path]:
    """``p``, and for a Shapefile every sidecar name of it (:data:`SHAPEFILE_SIDECARS`)."""
    if p.suffix.lower() != ".shp":
        return [p]
    return [p.with_name(p.stem + s) for s in SHAPEFILE_SIDECARS]


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (or cannot be reached): not the same file
        return False


ReadFrom = Iterable[tuple[str | Path | None, Iterable[str]]]
"""Folders a command reads, each with what it reads there: lower-case suffixes (``".png"``) and
exact file names (``"quality.csv"``), at any depth (see :func:`check_not_input`)."""


def _read_from_folder(p: Path, read_from: ReadFrom) -> Path | None:
    """The folder of ``read_from`` from which the existing file ``p`` would be read, or None.

    ``p``'s folder is resolved (symlinks, ``..``) but not ``p`` itself, so a link inside the
    folder counts as the folder's file."""
    entry = Path(os.path.realpath(p.parent)) / p.name
    for folder, patterns in read_from:
        if folder is None or not Path(folder).is_dir():
            continue
        root = Path(os.path.realpath(folder))
        if not entry.is_relative_to(root):
            continue
        pats = {x.lower() for x in patterns}
        if p.name.lower() in pats or any(p.name.lower().endswith(x) for x in pats if x[:1] == "."):
            return Path(folder)
    return None


def check_not_input(
    out: str | Path | None,
    inputs: Iterable[str | Path | None],
    flag: str = "--out",
    read_from: ReadFrom = (),
    what: str | None = None,
) -> None:
    """Refuse an output path that is one of the input files, before anything is written.

    ``out`` and each input are compared as files (``os.path.samefile``: symlinks, hard links,
    ``..`` and relative paths resolved); for a Shapefile every sidecar (:data:`SHAPEFILE_SIDECARS`)
    of the output and of an input counts. Inputs that are folders or do not exist are ignored
    (pass the files read from a folder, or the folder in ``read_from``).

    Args:
        out: the output file (None: nothing to check).
        inputs: input files.
        flag: the option name used in messages.
        read_from: input folders with what the command reads in them (:data:`ReadFrom`): an
            existing ``out`` under such a folder whose suffix or name is listed is an input too
            (``elnet evaluate --csv PRED/quality.csv``).
        what: how the message names the output (default ``"<flag> <out>"``; e.g. a companion
            file written next to ``--out``).

    Raises:
        UserError: one line naming the output and the input file it would replace, and saying
            to choose another ``flag`` path.
    """
    if out is None:
        return
    head = what or f"{flag} {out}"
    outs = [o for o in _with_sidecars(Path(out)) if o.exists()]
    if not outs:
        return
    for inp in inputs:
        if inp is None:
            continue
        for i in _with_sidecars(Path(inp)):
            if i.is_file() and any(_same_file(o, i) for o in outs):
                raise UserError(
                    f"{head}: is the input file {i}; writing it would replace the input. "
                    f"Choose another {flag} path"
                )
    for o in outs:
        folder = _read_from_folder(o, read_from) if o.is_file() else None
        if folder is not None:
            raise UserError(
                f"{head}: is an input file (read from {folder}); writing it would replace the "
                f"input. Choose another {flag} path"
            )


def check_distinct_outputs(
    outputs: Iterable[tuple[str, str | Path | None]], advice: str | None = None
) -> None:
    """Refuse two outputs of one command that are the same file, before anything is written.

    Paths are compared after ``os.path.realpath`` (symlinks, ``..``, relative paths), and as
    files (device and inode: hard links) when both exist. One ``realpath`` and one ``stat`` per
    path, so thousands of outputs (a folder of scenes) are checked in milliseconds.

    Args:
        outputs: ``(option, path)`` in order; None paths are ignored. The later of two equal
            paths is the one the message tells to change, so list an output whose place the
            user does not choose (e.g. ``report.html`` next to ``--json``) first.
        advice: what the message tells to do (default ``Choose another <option> path``), for
            outputs whose names the user does not give (``Rename one of the two scenes``).

    Raises:
        UserError: ``<option> <path>: is the same file as <other option> <path>; ...``.
    """
    by_real: dict[str, tuple[str, Path]] = {}
    by_inode: dict[tuple[int, int], tuple[str, Path]] = {}
    for flag, p in outputs:
        if p is None:
            continue
        q = Path(p)
        real = os.path.realpath(q)
        try:
            st = os.stat(q)
            inode: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except OSError:  # does not exist (or cannot be reached): compared by path only
            inode = None
        hit = by_real.get(real) or (by_inode.get(inode) if inode is not None else None)
        if hit is not None:
            flag0, q0 = hit
            raise UserError(
                f"{flag} {q}: is the same file as {flag0} {q0}; one would overwrite the "
                f"other. {advice or f'Choose another {flag} path'}"
            )
        by_real.setdefault(real, (flag, q))
        if inode is not None:
            by_inode.setdefault(inode, (flag, q))


def check_out_folder(
    out: str | Path,
    writes: Iterable[tuple[str, str]],
    reads: Iterable[tuple[str, str | Path | None]],
    command: str,
    flag: str = "--out",
    folders: Iterable[tuple[str, str | Path]] = (),
) -> None:
    """Refuse an output folder whose sub-folders would receive files next to the inputs.

    A folder job writes files named after its inputs into fixed sub-folders of ``out``
    (``labels/``, ``prob/``, ...; ``""`` for ``out`` itself). When such a folder already exists
    and is (``os.path.realpath``) the folder of an input file, or an input folder, the written
    files would replace inputs of the same name and mix with the others (a later run reads them
    as inputs). A folder next to the inputs, or an earlier output folder being resumed, is not
    refused. Nothing is created or written; one ``stat`` per distinct input folder.

    Args:
        out: the output folder.
        writes: ``(sub-folder, what the command writes there)``, e.g. ``("labels", "its
            labels")``; ``""`` is ``out`` itself.
        reads: ``(how the message names it, input file)``: the file's folder is protected;
            None files are ignored.
        command: the command's name in the message (``"annotate"``).
        flag: the option name used in messages.
        folders: ``(how the message names it, input folder)``: protected themselves.

    Raises:
        UserError: one line naming ``out``, the folder written into and the input found there,
            and saying to choose another ``flag`` folder.
    """
    root = Path(out)
    targets: dict[str, tuple[Path, str]] = {}
    for sub, what in writes:
        t = root / sub if sub else root
        if t.is_dir():
            targets.setdefault(os.path.realpath(t), (t, what))
    if not targets:
        return
    entries = [(d, Path(p), Path(p).parent) for d, p in reads if p is not None]
    entries += [(d, Path(p), Path(p)) for d, p in folders]
    seen: set[Path] = set()
    for desc, q, folder in entries:
        if folder in seen:
            continue
        seen.add(folder)
        hit = targets.get(os.path.realpath(folder))
        if hit is not None:
            t, what = hit
            raise UserError(
                f"{flag} {out}: {command} writes {what} into {t}, which holds {desc} ({q}); "
                f"they would replace or mix with the inputs. Choose another {flag} folder"
            )


def check_out_overlap(
    out: str | Path,
    writes: Iterable[tuple[str, str]],
    command: str,
    *,
    folders: Iterable[tuple[str, str | Path]] = (),
    roots: Iterable[tuple[str, str | Path]] = (),
    flag: str = "--out",
) -> None:
    """Refuse an output folder that overlaps an input folder, in either direction.

    Compared as ``os.path.realpath`` (symlinks followed; ``out`` need not exist yet):

    * ``out`` is, or is inside, one of ``folders`` (folders read from: a split folder, an images
      or masks folder, ...): the outputs would land among the inputs;
    * one of ``folders`` or ``roots`` is, or is inside, a sub-folder of ``out`` the command
      writes (``writes`` entries other than ``""``), which a re-run may replace or clear;
    * ``out`` is one of ``roots``.

    ``roots`` (the dataset folder) may hold ``out`` and may lie in ``out`` outside its written
    sub-folders: only its split / image / mask folders (given in ``folders``) are read. Nothing
    is created or written.

    Args:
        out: the output folder.
        writes: ``(sub-folder, what the command writes there)``; ``""`` is ``out`` itself.
        command: the command's name in the message (``"cv"``).
        folders: ``(how the message names it, input folder)``.
        roots: ``(how the message names it, input folder)``: overlap allowed as said above.
        flag: the option name used in messages.

    Raises:
        UserError: one line naming ``out``, the input folder it overlaps and saying to choose
            another ``flag`` folder.
    """
    root = Path(out)
    real = Path(os.path.realpath(root))
    # (description, folder, its realpath, is a root); roots first: they name a hit below best
    inputs = [(d, Path(p), Path(os.path.realpath(p)), True) for d, p in roots]
    inputs += [(d, Path(p), Path(os.path.realpath(p)), False) for d, p in folders]
    hits = [i for i in inputs if real == i[2] or (not i[3] and real.is_relative_to(i[2]))]
    if hits:  # the innermost folder holding out names it best
        desc, p, rp, _ = max(hits, key=lambda i: len(i[2].parts))
        raise UserError(
            f"{flag} {out}: is {'' if real == rp else 'inside '}{desc} ({p}); {command} "
            f"would write its outputs among the inputs. Choose a {flag} folder outside it"
        )
    for sub, what in writes:
        if not sub:
            continue
        t = root / sub
        rt = Path(os.path.realpath(t))
        for desc, p, rp, _ in inputs:
            if rp.is_relative_to(rt):
                raise UserError(
                    f"{flag} {out}: {command} writes {what} into {t}, which holds {desc} ({p}); "
                    f"they would replace or mix with the inputs. Choose another {flag} folder"
                )


def _stat_error(p: Path) -> OSError | None:
    """The error ``os.stat`` raises for ``p`` other than 'does not exist' (ELOOP, ENOTDIR, EACCES)."""
    try:
        os.stat(p)
    except FileNotFoundError:
        return None
    except OSError as err:
        return err
    return None


def _describe(err: OSError, p: Path) -> str:
    if err.errno == errno.ELOOP:
        return (
            f"{p}: symbolic link loop (a link that points back to itself); fix or remove the link"
        )
    if err.errno == errno.ENOTDIR:
        first = next((a for a in reversed(p.parents) if a.is_file()), None)
        where = f"{first} is a file" if first is not None else "a part of the path is a file"
        return f"{p}: {where}, so nothing can be created under it; choose another path"
    return os_error_message(err, p)


def create_new_file(path: Path) -> None:
    """Create the empty file ``path`` (mode 0600), the one way this package tests that a folder
    takes new files (:func:`check_output`, :func:`sam2elnet.utils.atomic.atomic_path`).

    Raises:
        OSError: ``FileExistsError`` when ``path`` exists (``O_EXCL``), ``PermissionError``,
            ``ENOSPC`` ... as the operating system says.
    """
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def check_output(
    path: str | Path | None,
    kind: Literal["file", "dir"] = "file",
    flag: str = "--out",
    inputs: Iterable[str | Path | None] = (),
    read_from: ReadFrom = (),
) -> Path | None:
    """Check that ``path`` can be created or overwritten, before any work starts; return it.

    Args:
        path: the output file or folder (None: nothing to check, returns None).
        kind: ``"file"`` (a folder there is an error) or ``"dir"`` (a file there is an error).
        flag: the option name used in messages.
        inputs: input files the command reads; ``path`` must not be one of them
            (:func:`check_not_input`).
        read_from: input folders and what is read in them (:func:`check_not_input`).

    Raises:
        UserError: one line naming the path and what to do — a symlink loop, a path under an
            existing file, a file where a folder is expected (or the reverse), or a folder that is
            not writable (a probe file cannot be created in it; the probe is removed at once),
            or a file that is one of ``inputs``.
    """
    if path is None:
        return None
    p = Path(path)
    if str(p).strip() == "":
        raise UserError(f"{flag} is empty; give a {'folder' if kind == 'dir' else 'file'} path")
    err = _stat_error(p)
    if err is not None:
        raise UserError(f"{flag} {_describe(err, p)}")
    if p.is_symlink() and not p.exists():
        raise UserError(f"{flag} {p}: broken symbolic link; fix or remove the link")
    if p.exists():
        if kind == "dir" and not p.is_dir():
            raise UserError(f"{flag} {p}: is a file, expected a folder; choose a folder path")
        if kind == "file" and p.is_dir():
            raise UserError(f"{flag} {p}: is a folder, expected a file name; add a file name")
        if kind == "file":
            check_not_input(p, inputs, flag, read_from)
    # nearest existing ancestor: the folder in which the first missing part will be created
    anc = p if (kind == "dir" and p.is_dir()) else p.parent
    while not anc.exists():
        if anc.is_symlink():
            raise UserError(f"{flag} {anc}: broken symbolic link; fix or remove the link")
        anc = anc.parent
    if not anc.is_dir():
        raise UserError(
            f"{flag} {p}: {anc} is a file, so nothing can be created under it; choose another path"
        )
    # named before it exists, so an interrupt at any point finds it to remove (atomic_path)
    probe = anc / f".elnet-write-test.{secrets.token_hex(6)}"
    try:
        create_new_file(probe)
        probe.unlink()
    except OSError as oerr:
        raise UserError(f"{flag} {os_error_message(oerr, anc)}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            probe.unlink()
        raise
    return p


def check_input(path: str | Path, flag: str, what: str = "file or folder") -> Path:
    """Check that an input exists (a symlink loop is named as one); return it as a Path.

    Raises:
        UserError: naming ``flag`` and the path when it is missing or cannot be reached.
    """
    p = Path(path)
    err = _stat_error(p)
    if err is not None:
        raise UserError(f"{flag} {_describe(err, p)}")
    if not p.exists():
        if p.is_symlink():
            raise UserError(f"{flag} {p}: broken symbolic link; fix or remove the link")
        raise UserError(f"{flag} {p}: {what} does not exist; check the path")
    return p


_MESSAGES = {
    errno.ENOSPC: "disk full (no space left on device); free some space or choose another "
    "output folder, then re-run with --resume",
    errno.EDQUOT: "disk quota exceeded; free some space, then re-run with --resume",
    errno.EACCES: "permission denied; choose a folder you can write to or fix its permissions",
    errno.EPERM: "operation not permitted; choose a folder you can write to",
    errno.EROFS: "read-only file system; choose a writable output folder",
    errno.ELOOP: "symbolic link loop (a link that points back to itself); fix or remove the link",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
    errno.EISDIR: "is a folder, expected a file; give a file name",
    errno.ENOENT: "no such file or folder; check the path",
    errno.ENAMETOOLONG: "file name too long; choose a shorter path",
    errno.EMFILE: "too many open files; raise the limit (ulimit -n) and re-run",
}


def read_access_advice(path: str | Path) -> str:
    """What to do about a file or folder this user may not read, for one message line:
    ``let your user read it (chmod -R u+rX PATH)``; every refusal of an unreadable input says it
    with these words (:func:`os_error_message`, an unreadable split folder of
    :func:`sam2elnet.data.layouts.discover`), the caller adding its other way out."""
    return f"let your user read it (chmod -R u+rX {path})"


def os_error_message(err: OSError, path: str | Path | None = None) -> str:
    """One-line, user-facing text for an ``OSError`` (names the file; says what to do).

    Permission denied on a file or folder that exists and this user cannot read is an input
    problem (let the user read it), not an output one (choose a folder you can write to)."""
    where = path if path is not None else (err.filename or "")
    text = _MESSAGES.get(err.errno or -1)
    if err.errno == errno.EACCES and where and _unreadable(where):
        text = (
            f"permission denied: your user cannot read it; {read_access_advice(where)} or copy "
            "it somewhere readable"
        )
    if text is None:
        text = (err.strerror or str(err)).strip().rstrip(".") or err.__class__.__name__
    return f"{where}: {text}" if where else text


def _unreadable(path: str | Path) -> bool:
    """Whether ``path`` exists (as the OS sees it) but this user may not read it."""
    try:
        return os.path.lexists(path) and not os.access(path, os.R_OK)
    except (OSError, ValueError):
        return False


def link_or_copy(src: str | Path, dst: str | Path) -> None:
    """Make ``dst`` a symlink to ``src`` (resolved), or a copy where symlinks are not allowed.

    Replaces an existing ``dst`` and creates its parent folders. Used to build run-folder subsets
    (experiment, cross-validation) without duplicating the images.
    """
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.is_symlink() or dst.exists():
        dst.unlink()
    try:
        os.symlink(Path(src).resolve(), dst)
    except OSError:
        shutil.copyfile(src, dst)
