"""The task images a CVAT zip downloaded with "Save images" carries, read from the zip in place
for :func:`~sam2elnet.export.cvat_import.import_cvat` (nothing extracted up front).

Where CVAT puts them (:data:`ZIP_IMAGES`, as CVAT's documentation, docs.cvat.ai, "CVAT" and
"Segmentation Mask" formats, and its exporters lay them out): ``images/<image name>`` beside
``annotations.xml`` ("CVAT for images 1.1"), ``JPEGImages/<image name>`` beside
``SegmentationClass/`` ("Segmentation mask 1.1").
"""

from __future__ import annotations

import contextlib
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from sam2elnet.data.naming import CV2_SUFFIXES
from sam2elnet.errors import DataError
from sam2elnet.export.image_lookup import image_candidates

__all__ = ["ZIP_IMAGES", "ZipImages", "zip_image_members", "zip_images"]

ZIP_IMAGES = {"xml": ("annotations.xml", "images/"), "segmask": ("labelmap.txt", "JPEGImages/")}
"""Per export: (the file its images folder lies beside, that folder), as CVAT writes them."""


def zip_image_members(p: Path, kind: str) -> tuple[str, list[str]]:
    """(the images folder as named in the zip, e.g. ``images/``; its files) of a CVAT zip
    downloaded with "Save images" (no files: downloaded without)."""
    if kind not in ZIP_IMAGES or not zipfile.is_zipfile(p):
        return "", []
    anchor, folder = ZIP_IMAGES[kind]
    with zipfile.ZipFile(p) as zf:
        names = zf.namelist()
    tops = [n[: -len(anchor)] for n in names if PurePosixPath(n).name == anchor]
    if not tops:
        return "", []
    prefix = min(tops, key=lambda n: n.count("/")) + folder
    return prefix, [n for n in names if n.startswith(prefix) and not n.endswith("/")]


class ZipImages:
    """The images a CVAT zip downloaded with "Save images" carries (``members`` under
    ``prefix``), read from the zip in place: nothing is extracted up front.

    An image is looked up by :func:`~sam2elnet.export.image_lookup.find_image`'s rule over the
    member names (:meth:`find`), and read (:meth:`needed`) only when its mask needs more than
    the export gives: a size the export does not give, a GeoTIFF's georeference and nodata, a
    PNG's transparency (nodata), or a size (from the image header, streamed from the zip) other
    than the export's, which stops the import as an ``--images`` image of another size does. A
    JPEG or opaque PNG of the export's size gives the same mask unread. An image that is read is
    extracted alone into a temporary folder (:attr:`root`) for that time (:meth:`local`), so the
    disk holds at most one of the task's images at a time.
    """

    def __init__(self, p: Path, prefix: str, members: list[str], root: Path) -> None:
        self.p, self.prefix, self.root = p, prefix, root
        self.members = set(members)
        self.zf = zipfile.ZipFile(p)

    def close(self) -> None:
        self.zf.close()

    def find(self, name: str) -> str | None:
        """The member of the export's image ``name``, or None."""
        return next(
            (self.prefix + c for c in image_candidates(name) if self.prefix + c in self.members),
            None,
        )

    def needed(self, member: str, size: tuple[int, int] | None) -> bool:
        """Whether the mask of the image ``member`` (``size``: (height, width) the export
        gives, or None) needs the image read (class docstring)."""
        from PIL import Image

        suffix = PurePosixPath(member).suffix.lower()
        if size is None or suffix not in CV2_SUFFIXES:  # no georeference / nodata but alpha
            return True
        try:
            with self.zf.open(member) as fh, Image.open(fh) as im:
                alpha = "A" in im.getbands() or "transparency" in im.info
                return alpha or (im.height, im.width) != size
        except Exception:  # noqa: BLE001 - read_image names what is wrong with it
            return True

    @contextlib.contextmanager
    def local(self, member: str) -> Iterator[Path]:
        """``member`` extracted to :attr:`root` (by its name below :attr:`prefix`) for the time
        of the ``with``, streamed in 1 MiB chunks.

        Raises:
            DataError: a damaged zip member.
        """
        parts = [q for q in member[len(self.prefix) :].split("/") if q not in ("", ".", "..")]
        dst = self.root.joinpath(*parts)
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.zf.open(member) as src, open(dst, "wb") as fh:
                while chunk := src.read(1 << 20):
                    fh.write(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError) as err:
            dst.unlink(missing_ok=True)
            raise DataError(
                f"unreadable zip ({type(err).__name__}: {err}); download the export again", self.p
            ) from None
        try:
            yield dst
        finally:
            dst.unlink(missing_ok=True)


@contextlib.contextmanager
def zip_images(p: Path, prefix: str, members: list[str]) -> Iterator[ZipImages]:
    """:class:`ZipImages` of ``p`` with its temporary folder; both closed afterwards."""
    with tempfile.TemporaryDirectory(prefix="elnet-cvat-images-") as tmp:
        zi = ZipImages(p, prefix, members, Path(tmp))
        try:
            yield zi
        finally:
            zi.close()
