"""CVAT's downloads back to one 0/255 mask per image (``elnet import --from cvat``), the export
told by its content:

* "CVAT for images 1.1" (CVAT's default): ``annotations.xml``, alone or in its zip
  (:mod:`sam2elnet.export.cvat_xml`: polygons, boxes, ellipses and masks are unioned);
* "Segmentation mask 1.1": a zip of ``labelmap.txt`` (``# label:color_rgb:parts:actions`` and
  one ``name:r,g,b::`` line per label) and ``SegmentationClass/<image path without suffix>.png``
  colour masks (:func:`read_labelmap`); the category's colour (every label's but
  ``background`` by default) is foreground. An image of ``ImageSets/Segmentation/*.txt``
  without a PNG (nothing drawn) gets an empty mask of its image's size;
* "COCO 1.0": a zip with ``annotations/instances_*.json`` or a JSON file:
  :func:`~sam2elnet.export.coco_import.import_coco`.

A zip downloaded with CVAT's "Save images" box carries the task's images, as CVAT's
documentation (docs.cvat.ai, "CVAT" and "Segmentation Mask" formats) and its exporters lay them
out: ``images/<image name>`` beside ``annotations.xml`` ("CVAT for images 1.1") and
``JPEGImages/<image name>`` beside ``SegmentationClass/`` ("Segmentation mask 1.1": Datumaro's
Pascal VOC layout, ``VocPath.IMAGES_DIR``). Without ``images`` they are used as ``images``
would be (sizes, names, and a GeoTIFF's georeference); ``images``, when given, wins. A note
says which source was used. They are read from the zip in place, nothing extracted up front: an
image is read only when its mask needs it (its size is not in the export, a GeoTIFF's
georeference, a PNG's transparency, a header size other than the export's), extracted alone to a
temporary file for that time (:class:`~sam2elnet.export.cvat_zip_images.ZipImages`), so a
task of many large images does not need their size in temporary disk space.

Images, masks and errors follow the COCO import (:mod:`~sam2elnet.export.mask_folder`, the
steps they share): images are found under ``images`` by name with folders
(:func:`~sam2elnet.export.image_lookup.find_image`), two images of one stem stop the import,
``--category`` must name a label of the export, an image under ``images`` of another size than
the export gives stops it, and ``out`` holds exactly this import's masks, written whole or not
at all (:class:`~sam2elnet.export.mask_folder.MaskFolder`).

Format source: CVAT's documentation (docs.cvat.ai, "Segmentation Mask").
"""

from __future__ import annotations

import contextlib
import os
import zipfile
import zlib
from dataclasses import replace
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from sam2elnet.errors import DataError, UserError
from sam2elnet.export.cvat_xml import EXPORT_AGAIN, XML_NAME, read_cvat_xml, xml_images
from sam2elnet.export.cvat_zip_images import ZipImages, zip_image_members, zip_images
from sam2elnet.export.image_lookup import (
    ExportImage,
    check_unique_stems,
    find_images,
    missing_note,
    none_found,
    sought_names,
)
from sam2elnet.export.import_result import ImportResult
from sam2elnet.export.mask_folder import (
    CommitCheck,
    MaskFolder,
    category_note,
    check_category,
    removed_note,
    write_masks,
)
from sam2elnet.export.review_set import download_check
from sam2elnet.utils.advice import plural

__all__ = ["import_cvat", "read_labelmap"]

_SAME_NAME = "rename one in the CVAT task, or review each folder in a task of its own"
_BACKGROUND = "background"
_SEGMASK = "the Segmentation mask export"


# ---------------------------------------------------------------------- Segmentation mask 1.1


def read_labelmap(text: str) -> dict[str, tuple[int, int, int]]:
    """Label name -> RGB colour of a "Segmentation mask 1.1" ``labelmap.txt``.

    Lines ``name:r,g,b:parts:actions`` (``#`` starts a comment line, as in CVAT's header
    ``# label:color_rgb:parts:actions``); a name may hold ``:`` (the last three fields are split
    off).

    Raises:
        DataError: a line without a colour of three integers 0..255, or no label.
    """
    out: dict[str, tuple[int, int, int]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.rsplit(":", 3)
        try:
            if len(fields) != 4:
                raise ValueError
            rgb = tuple(int(v) for v in fields[1].split(","))
            if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
                raise ValueError
        except ValueError:
            raise DataError(
                f"labelmap.txt line {line[:60]!r} is not 'name:r,g,b:parts:actions'"
            ) from None
        out[fields[0]] = rgb  # type: ignore[assignment]
    if not out:
        raise DataError("labelmap.txt lists no labels")
    return out


def _segmask_entries(
    zf: zipfile.ZipFile, category: str | None, p: Path
) -> tuple[list[ExportImage], set[str]]:
    """The export images of a "Segmentation mask 1.1" zip and (filled while the masks are read)
    the foreground labels found in them."""
    names = zf.namelist()
    lm = [n for n in names if PurePosixPath(n).name == "labelmap.txt"]
    if not lm:
        raise DataError(
            f"the zip has SegmentationClass/ but no labelmap.txt (the label colours); {EXPORT_AGAIN}",
            p,
        )
    try:
        labels = read_labelmap(zf.read(lm[0]).decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise DataError(f"labelmap.txt is not UTF-8 text; {EXPORT_AGAIN}", p) from None
    except DataError as err:
        raise DataError(f"{err}; {EXPORT_AGAIN}", p) from None
    check_category(category, labels, "labelmap.txt", p)
    fg = (
        {category: labels[category]}
        if category is not None
        else {n: c for n, c in labels.items() if n != _BACKGROUND and c != (0, 0, 0)}
    )
    pngs = {
        n.split("SegmentationClass/", 1)[1][: -len(".png")]: n
        for n in names
        if "SegmentationClass/" in n and n.lower().endswith(".png")
    }
    listed: list[str] = []
    for n in sorted(x for x in names if "ImageSets/Segmentation/" in x and x.endswith(".txt")):
        listed += [ln.strip() for ln in zf.read(n).decode("utf-8-sig").splitlines() if ln.strip()]
    ids = list(dict.fromkeys([*sorted(pngs), *listed]))
    if not ids:
        raise DataError(f"the zip's SegmentationClass/ holds no masks; {EXPORT_AGAIN}", p)
    used: set[str] = set()
    entries = []
    for i in ids:
        size = None
        member = pngs.get(i)
        if member is not None:
            size = _png_size(zf, member, p)
        mask = (
            partial(_segmask, zf, member, labels, fg, used, p)
            if member is not None
            else partial(_empty)
        )
        # the image's suffix is unknown: the mask's own name, found by stem (find_image)
        entries.append(ExportImage(f"{i}.png", size, mask))
    return entries, used


def _named_by_image(
    entries: list[ExportImage], found: list[Any], by_mask: bool = False
) -> list[ExportImage]:
    """``entries`` each named by the image found for it (``found``: its file, or its member of
    the zip; None: none), folders kept, when the two differ in suffix only: a "Segmentation
    mask 1.1" export names each image by its mask (``11166_sat.png``), the user knows the image
    (``11166_sat.jpg``). ``by_mask`` (such an export): an image not found is named by its stem
    and ``.*`` (``11166_sat.*``: its suffix is unknown), not by its mask file. The others as
    they are."""
    out = []
    for e, m in zip(entries, found, strict=True):
        image = PurePosixPath(str(m).replace("\\", "/")).name if m is not None else None
        if image is None and by_mask:
            image = f"{e.stem}.*"
        if image is not None and PurePosixPath(image).stem == e.stem:
            e = replace(e, name=str(PurePosixPath(e.name.replace("\\", "/")).with_name(image)))
        out.append(e)
    return out


def _png_size(zf: zipfile.ZipFile, member: str, p: Path) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with zf.open(member) as fh, Image.open(fh) as im:
            return im.height, im.width
    except (UnidentifiedImageError, OSError, zlib.error) as err:
        raise DataError(f"{member} in the zip is not a PNG ({err}); {EXPORT_AGAIN}", p) from None


def _empty(height: int, width: int) -> np.ndarray:
    return np.zeros((height, width), dtype=bool)


def _segmask(
    zf: zipfile.ZipFile,
    member: str,
    labels: dict[str, tuple[int, int, int]],
    fg: dict[str, tuple[int, int, int]],
    used: set[str],
    p: Path,
    height: int,
    width: int,
) -> np.ndarray:
    """Foreground (bool (height, width)) of one SegmentationClass PNG: the pixels of ``fg``'s
    colours. A one-band PNG holds label indices (``labels``' order), RGB / palette ones colours.

    Raises:
        DataError: an unreadable PNG, or a colour / index labelmap.txt does not have.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with zf.open(member) as fh, Image.open(fh) as im:
            im.load()
            if im.mode in ("L", "I", "I;16"):
                idx = np.asarray(im).astype(np.int64)
                rgb = None
            else:
                rgb = np.asarray(im.convert("RGB")).astype(np.int64)
    except (UnidentifiedImageError, OSError, zlib.error) as err:
        raise DataError(f"{member} in the zip is not a PNG ({err}); {EXPORT_AGAIN}", p) from None
    names = list(labels)
    if rgb is not None:
        code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        by_code = {(r << 16) | (g << 8) | b: n for n, (r, g, b) in labels.items()}
        fg_codes = [(r << 16) | (g << 8) | b for r, g, b in fg.values()]
    else:
        code, by_code = idx, dict(enumerate(names))
        fg_codes = [names.index(n) for n in fg]
    present = np.unique(code)
    unknown = [int(c) for c in present if int(c) not in by_code]
    if unknown:
        c = unknown[0]
        what = f"colour {(c >> 16, (c >> 8) & 255, c & 255)}" if rgb is not None else f"index {c}"
        raise DataError(
            f"{member} in the zip has {what}, which labelmap.txt does not list; {EXPORT_AGAIN}",
            p,
        )
    used.update(by_code[int(c)] for c in present if by_code[int(c)] in fg)
    return np.isin(code, fg_codes)  # (height, width): the PNG gave the size write_masks checked


# --------------------------------------------------------------------------------- import


def _kind(p: Path) -> str:
    """``"xml"``, ``"segmask"`` or ``"coco"``: which CVAT export ``p`` is, by its content.

    Raises:
        DataError: a missing file, a folder (an unzipped export: the message says what to
            give), a damaged zip, or a zip / file none of the three.
    """
    if p.is_dir():  # CVAT's download, unzipped
        xml = p / XML_NAME
        give = "the zip CVAT downloaded"
        if xml.is_file():
            imgs = p / "images"
            give += f", or {xml} with --images {imgs if imgs.is_dir() else 'the task images'}"
        raise DataError(f"a folder, not a CVAT export file; give {give}", p)
    if not p.is_file():
        raise DataError("CVAT export does not exist; check the path", p)
    if zipfile.is_zipfile(p):
        try:
            with zipfile.ZipFile(p) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError) as err:
            raise DataError(
                f"unreadable zip ({type(err).__name__}: {err}); download the export again", p
            ) from None
        base = {PurePosixPath(n).name for n in names}
        if XML_NAME in base:
            return "xml"
        if any("SegmentationClass/" in n for n in names):
            return "segmask"
        if any(b.startswith("instances_") and b.endswith(".json") for b in base):
            return "coco"
        raise DataError(
            f"the zip holds neither {XML_NAME} ('CVAT for images 1.1'), SegmentationClass/ "
            "('Segmentation mask 1.1') nor annotations/instances_*.json ('COCO 1.0'); "
            f"{EXPORT_AGAIN}",
            p,
        )
    with open(p, "rb") as fh:
        head = fh.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"PK"):
        raise DataError("unreadable zip (cut short or damaged); download the export again", p)
    if head.startswith(b"<"):
        return "xml"
    if head.startswith((b"{", b"[")):
        return "coco"
    raise DataError(f"neither CVAT XML, a CVAT zip nor COCO JSON; {EXPORT_AGAIN}", p)


def import_cvat(
    path: str | Path,
    out: str | Path,
    *,
    images: str | Path | None = None,
    category: str | None = None,
    review_set: str | Path | None = None,
    reviewed_only: bool = False,
    progress: bool = True,
    commit_check: CommitCheck | None = None,
) -> ImportResult:
    """Write one mask per image of a CVAT export into ``out`` (module docstring: which export,
    which shapes).

    A CVAT export holds every frame, reviewed or not, and CVAT's exports carry no per-frame or
    job state; each mask is compared with the one ``elnet export --format coco`` sent out (its
    review record, :func:`~sam2elnet.export.review_set.download_check`): a note names the
    images that come back unchanged, and ``reviewed_only`` leaves them out (a partial review).

    Args:
        path: "CVAT for images 1.1" (``annotations.xml`` or its zip), "Segmentation mask 1.1"
            (zip) or "COCO 1.0" (zip or JSON; :func:`~sam2elnet.export.coco_import.import_coco`).
        out: Folder for the masks (``<image stem>.tif`` with a GeoTIFF image's georeference, else
            ``.png``; 0/255, 127 = image nodata); afterwards it holds exactly this import's
            masks, written whole or not at all.
        images: Folder of the task's images (or one image file), found by name with folders
            (:func:`~sam2elnet.export.image_lookup.find_image`). Images not found get a PNG of
            the size the export gives (one note counts them); for "Segmentation mask 1.1" an
            image nothing was drawn on has no PNG in the zip and needs its image here, and the
            notes name an image not found by its stem (``x.*``), not by its mask. None:
            the images a zip downloaded with "Save images" carries (module docstring), if any.
        category: Only shapes of that label (default: all; a note names the labels when there
            are several).
        review_set: The export's review record (default: beside ``path``, else the one COCO
            export's record in its folder).
        reviewed_only: No mask for an image whose mask is the exported one.
        progress: Show a progress bar.
        commit_check: Called before the masks move into ``out``
            (:data:`~sam2elnet.export.mask_folder.CommitCheck`); an error it raises leaves
            ``out`` as it was (``elnet import --with-labels``).

    Returns:
        :class:`~sam2elnet.export.import_result.ImportResult`.

    Raises:
        DataError: a damaged zip / XML / PNG, a zip without a CVAT export, an image without a
            size, a shape or labelmap.txt line that cannot be read, an image under ``images``
            of another size than the export gives (nothing written), a zip whose images folder
            holds none of its images (without ``images``), or no image gave a mask.
        UserError: ``reviewed_only`` without a review record (or a ``review_set`` listing none
            of the images); a ``category`` the export does not have; two images with one stem; an
            ``images`` holding none of the images; an ``out`` that is a file, the images'
            folder, or holds masks no import wrote.
    """
    p = Path(path)
    kind = _kind(p)
    if kind == "coco":
        from sam2elnet.export.coco_import import import_coco

        return import_coco(
            p, out, images=images, category=category, review_set=review_set,
            reviewed_only=reviewed_only, progress=progress,
        )  # fmt: skip
    ipath = Path(images) if images is not None else None
    folder = MaskFolder(Path(out), p, ipath, check=commit_check)
    review = (review_set, reviewed_only)
    prefix, members = zip_image_members(p, kind)
    source: list[str] = []
    if members and ipath is not None:
        were = "was" if len(members) == 1 else "were"
        source = [
            f"images from --images {ipath}; the {plural(len(members), 'image')} in the zip's "
            f"{prefix} {were} not used (--images wins: it keeps a GeoTIFF's georeference)"
        ]
    with contextlib.ExitStack() as stack:
        zimages = None
        if members and ipath is None:
            zimages = stack.enter_context(zip_images(p, prefix, members))
        if kind == "xml":
            entries, notes = xml_images(read_cvat_xml(p), category, p)
            return _write(
                entries, notes, ipath, zimages, source, folder, XML_NAME, p, progress, review
            )  # fmt: skip
        try:
            with zipfile.ZipFile(p) as zf:
                entries, used = _segmask_entries(zf, category, p)
                res = _write(
                    entries, [], ipath, zimages, source, folder, _SEGMASK, p, progress, review,
                )  # fmt: skip
        except (zipfile.BadZipFile, zlib.error, EOFError) as err:
            raise DataError(
                f"unreadable zip ({type(err).__name__}: {err}); download the export again", p
            ) from None
    res.notes[:0] = category_note(category, used, _SEGMASK)
    return res


def _write(
    entries: list[ExportImage],
    notes: list[str],
    ipath: Path | None,
    zimages: ZipImages | None,
    source: list[str],
    folder: MaskFolder,
    what: str,
    p: Path,
    progress: bool,
    review: tuple[str | Path | None, bool],
) -> ImportResult:
    """Find the images (under ``ipath``, else the zip's, read in place), write the masks,
    commit (the COCO import's steps); ``review``: ``--review-set`` and ``--reviewed-only``
    (:func:`~sam2elnet.export.review_set.download_check`)."""
    shown: Path | str | None = ipath
    local: Any = contextlib.nullcontext
    if zimages is not None:
        prefix = zimages.prefix
        found = [zimages.find(e.name) for e in entries]
        if not any(found):
            names = sought_names(entries, by_mask=what == _SEGMASK)
            head = none_found(names, what, f"the zip's {prefix}")
            raise DataError(
                f"{head}; give --images the folder the CVAT task's images came from",
                p,
            )
        check_unique_stems(((e.stem, e.name) for e in entries), what, _SAME_NAME, p)
        shown = f"the zip's {prefix}"
        source = [
            f"images from the zip's {prefix} (downloaded with CVAT's 'Save images'); --images, "
            "when given, wins (the task's GeoTIFFs keep their georeference)"
        ]
        missing = [e.name for e, m in zip(entries, found, strict=True) if m is None]
        sources: list[Any] = [
            m if m is not None and zimages.needed(m, e.size) else None
            for e, m in zip(entries, found, strict=True)
        ]
        local = zimages.local
    else:
        sources, missing = find_images(
            entries, ipath, what, _SAME_NAME, p, by_mask=what == _SEGMASK
        )
        found = sources
    # the notes name the image the user knows (an image not found: by its stem, for a
    # Segmentation mask export, whose names are the masks')
    looked = set(missing)  # not found where looked (none looked for: no --images, no zip images)
    named = _named_by_image(entries, found, by_mask=what == _SEGMASK)
    # an image without a size in the export and without its image is skipped (one note, below),
    # not written as a PNG of the export's size: the not-found note leaves it out
    missing = [n.name for e, n in zip(entries, named, strict=True) if e.name in looked and e.size]
    entries = named
    notes = source + notes + missing_note(missing, len(entries), what, shown)
    check, more = download_check(p, *review, [e.stem for e in entries])
    with folder:
        try:
            written, skipped = write_masks(
                entries, sources, folder, what, p, progress, local, check.keep
            )
        except UserError as err:  # an image of the zip: named as in the zip, not the temp copy
            zdir = None if zimages is None else zimages.root
            if zdir is None or str(zdir) not in str(err):
                raise
            text = str(err).replace(f"{zdir}{os.sep}", prefix).replace(str(zdir), prefix)
            raise DataError(
                f"{text} (an image in the zip: download the export again, or give --images)", p
            ) from None
        if not written:
            why = f" ({skipped[0][0]}: {skipped[0][1]})" if skipped else check.none_left()
            raise DataError(f"no image of {what} gave a mask{why}; check --images", p)
        removed = folder.commit()
    notes += more + check.notes(len(written))
    notes += [f"skipped {s}: {why}" for s, why in skipped] + removed_note(folder.out, removed)
    return ImportResult(
        folder.out, written, skipped, notes, removed, check.model(), images=folder.images
    )
