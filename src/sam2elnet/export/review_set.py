"""Which images an export sent for review: ``<stem>_review.json`` next to a GeoPackage,
``<stem>_<format>_review.json`` next to a GeoJSON, Shapefile or COCO file, named by the export
format, not the file suffix (:func:`review_set_path`).

A polygon layer holds features only where a label has foreground, so the layer alone cannot tell
an image whose polygons a reviewer deleted (no object there: its corrected mask is empty) from an
image that was never exported (no mask should be made for it). ``elnet export`` to GeoPackage /
Shapefile / GeoJSON therefore writes this record beside the layer (:func:`write_review_set`),
and ``elnet import --from vector`` (:mod:`~sam2elnet.export.vector_import`) makes masks for the
images it lists (:func:`read_review_set`). The file survives editing the layer in QGIS (saving
edits changes only the layer file); after *Save As* under another name, give it with
``--review-set``.

Format (JSON object, UTF-8): ``kind`` = :data:`KIND`, ``version`` 1, ``layer`` (file
name), ``format`` (the export's: ``gpkg``, ``geojson``, ``shp`` or ``coco``; absent in
records written before it), ``images``: one entry per exported label with ``source`` (the
image's file name, the layer's ``source`` attribute), ``label`` (the label file's name),
``polygons`` (features written) and ``quality`` (predicted IoU or null); ``model`` (the absolute
path of the model that made the labels, :func:`~sam2elnet.data.run_model.run_model_path`) and
``model_version`` (``NAME@HASH``) when the run recorded them (``elnet import`` names that model
in its ``next:`` line); with road centre lines
(:mod:`~sam2elnet.export.centrelines`) also ``centre_lines`` (lines written),
``road_length_px`` (their summed length, pixels) and ``road_length_m`` (metres; null without a
CRS). ``mask_sha256``, ``mask_shape``, ``mask_bits`` and ``loose_bits``
(:func:`~sam2elnet.export.review_edits.exported_fields` of the label's exported polygons
rasterised on the label's grid, pixel centres inside; absent for labels over
:data:`~sam2elnet.export.review_edits.DIGEST_MAX_PIXELS`; records written before ``mask_bits`` hold ``mask_sha256`` only) let
the import tell an image the reviewer left as exported from one they edited
(:func:`read_review_digests`, :func:`~sam2elnet.export.review_edits.unchanged`): a partial
review.

A COCO export (``elnet export --format coco``, for CVAT) writes the same record beside its JSON
(``<stem>_coco_review.json``), ``layer`` naming that file and ``annotations`` (COCO
annotations written) in place of ``polygons``; its mask fields are the label's mask, which
its annotations (RLE, or polygons of 4-connected regions without holes) give back pixel for
pixel. ``elnet import --from cvat`` / ``--from coco`` find it in the download's folder
(:func:`coco_records`: a record whose ``format`` is ``coco``) and compare each image's imported
mask with it (:class:`ReviewCheck`, the rule the vector import uses too). An export whose
record would replace another export's is refused (:func:`check_review_record`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.errors import DataError, UserError
from sam2elnet.export.review_edits import has_mask, mask_digest, unchanged

__all__ = [
    "KIND",
    "ReviewCheck",
    "check_review_record",
    "coco_records",
    "download_check",
    "layer_record",
    "mask_digest",
    "read_review_digests",
    "read_review_set",
    "record_layer",
    "review_set_path",
    "write_review_set",
]

KIND = "elnet review set"
"""The ``kind`` entry that marks the file."""


def review_set_path(layer: str | Path, fmt: str | None = None) -> Path:
    """Where an export's record goes, next to it: ``<stem>_review.json`` for a GeoPackage,
    ``<stem>_<format>_review.json`` for the others (GeoJSON ``x_geojson_review.json``,
    Shapefile ``x_shp_review.json``, no sidecar name of the Shapefile's own; COCO
    ``x_coco_review.json``), so exports of one stem in one folder keep a record each.

    ``fmt`` is the export format (``gpkg``, ``geojson``, ``shp``, ``coco``): the name follows
    it, not the suffix (``--format geojson --out x.json``: ``x_geojson_review.json``). None:
    the format ``layer``'s suffix means (``.json``: COCO; another suffix: its own name). The
    rule of every such file: :func:`~sam2elnet.export.layer_files.export_sidecar`."""
    from sam2elnet.export.layer_files import export_sidecar

    return export_sidecar(layer, fmt, "_review.json")


def layer_record(layer: str | Path) -> Path:
    """The record of the polygon ``layer`` as ``elnet import --from vector`` looks for it:
    :func:`review_set_path` (a ``.json`` layer is a GeoJSON here: ``<stem>_geojson_review.json``),
    else ``<stem>_review.json`` when it names ``layer`` (GeoJSON / Shapefile exports wrote their
    record there before the format was in the name). May not exist."""
    own = review_set_path(layer, "geojson" if Path(layer).suffix.lower() == ".json" else None)
    old = Path(layer).with_name(f"{Path(layer).stem}_review.json")
    if not own.is_file() and old.is_file() and record_layer(old) == Path(layer).name:
        return old
    return own


def write_review_set(
    layer: Path,
    images: list[dict[str, Any]],
    fmt: str | None = None,
    model: tuple[Path | None, str | None] = (None, None),
) -> Path:
    """Write the record of ``layer`` atomically (:func:`review_set_path`); returns its path.

    Args:
        layer: The polygon layer (or COCO file) just written.
        fmt: Its format (``gpkg``, ``geojson``, ``shp``, ``coco``; None: from the suffix),
            recorded as ``format`` and naming the record.
        images: One dict per exported label: ``source``, ``label``, ``polygons`` (COCO:
            ``annotations``), ``quality``, ``mask_sha256``.
        model: (model file, ``NAME@HASH``) of the run that made the labels, each None when
            not known; recorded as ``model`` / ``model_version`` when known.
    """
    from sam2elnet.export.layer_files import sidecar_format
    from sam2elnet.utils.atomic import write_json_atomic

    kind = sidecar_format(layer, fmt)
    data: dict[str, Any] = {"kind": KIND, "version": 1, "layer": Path(layer).name, "format": kind}
    if model[0] is not None:
        data["model"] = str(model[0])
    if model[1]:
        data["model_version"] = model[1]
    return write_json_atomic(review_set_path(layer, kind), {**data, "images": images})


def _record_data(path: str | Path) -> dict[str, Any] | None:
    """The JSON object of a review record, else None (never raises)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("kind") == KIND else None


def record_layer(path: str | Path) -> str | None:
    """The ``layer`` a review record names when ``path`` is one, else None (any other file, or
    one that cannot be read: never raises). For messages: a record given where its layer was
    expected."""
    data = _record_data(path)
    return None if data is None else str(data.get("layer") or "")


def _is_coco_record(data: dict[str, Any]) -> bool:
    """Whether a review record's JSON object (:func:`_record_data`) is that of a COCO export:
    its ``format`` is ``coco``; a record without one (written before it) when its ``layer`` is a
    ``.json`` file."""
    if isinstance(data.get("format"), str):
        return data["format"].lower() == "coco"
    return str(data.get("layer") or "").lower().endswith(".json")


def read_review_digests(path: str | Path) -> dict[str, dict[str, Any]]:
    """Image stem (of ``source`` and of ``label``) -> record entry, for each entry that holds
    the exported mask or its digest (``mask_bits`` / ``mask_sha256``; records written before the
    digest have neither: empty dict). The entry's ``polygons`` counts the features written
    (absent in a COCO export's record, which counts ``annotations``).

    Raises:
        DataError: as :func:`read_review_set`.
    """
    out: dict[str, dict[str, Any]] = {}
    for e in _review_entries(path):
        if isinstance(e.get("mask_sha256"), str) or has_mask(e):
            out.update(dict.fromkeys(_entry_stems(e), e))
    return out


def read_review_set(path: str | Path) -> set[str]:
    """The image stems a review record lists (each entry's ``source`` and ``label`` stem).

    Raises:
        DataError: the file is missing, not JSON, or not a review record (naming the file and
            what to give instead).
    """
    return {stem for e in _review_entries(path) for stem in _entry_stems(e)}


def _review_entries(path: str | Path) -> list[dict[str, Any]]:
    """The entries (dicts) of a review record, after the checks of :func:`read_review_set`."""
    p = Path(path)
    if not p.is_file():
        raise DataError(
            "review set does not exist; give the <layer>_review.json (COCO: "
            "<stem>_coco_review.json) `elnet export` wrote",
            p,
        )
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise DataError(f"review set is not a JSON file ({err})", p) from None
    entries = data.get("images") if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("kind") != KIND or not isinstance(entries, list):
        raise DataError(
            "not a review set (`elnet export` writes <layer>_review.json next to a .gpkg / "
            ".shp / .geojson, <stem>_coco_review.json next to a COCO file); give that file",
            p,
        )
    return [e for e in entries if isinstance(e, dict)]


def _entry_stems(e: dict[str, Any]) -> list[str]:
    """The image stems an entry names: of its ``source`` and its ``label``."""
    return [
        Path(v.strip()).stem
        for v in (e.get("source"), e.get("label"))
        if isinstance(v, str) and v.strip()
    ]


def check_review_record(out: str | Path, fmt: str | None = None) -> None:
    """Refuse an export of format ``fmt`` (None: from the suffix) whose record
    (:func:`review_set_path`) would replace another's.

    Each format has a record name of its own, but a record there may still name another
    export (a GeoJSON ``x.geojson`` whose record an older version wrote as ``x_review.json``,
    now the name of ``x.gpkg``'s) or not be a record at all (a file of the user's); replacing it
    would lose which images went out for that export's import. Exporting the same file again
    (the record names it) is allowed.

    Raises:
        UserError: the record exists and names another export, or is not a review record,
            naming the file and what to do; nothing is written.
    """
    out = Path(out)
    rec = review_set_path(out, fmt)
    if not rec.exists():
        return
    layer = record_layer(rec)
    if layer == out.name:
        return
    what = f"the review record of {layer}" if layer else "a file that is not a review record"
    raise UserError(
        f"--out {out.name} would replace {what} ({rec.name}: which images went out, "
        "for `elnet import`); give --out another name, or another folder, or remove "
        f"{rec.name} when {layer or 'it'} is no longer reviewed",
        rec,
    )


def coco_records(export: str | Path, stems: list[str] | None = None) -> list[Path]:
    """The review records of COCO exports (recorded ``format`` ``coco``) in ``export``'s folder,
    sorted by name; a GeoJSON exported as ``x.json`` has a record there too, not counted.

    When one names ``export`` itself as its ``layer`` (the exported COCO file imported as it
    is), only that one. ``stems`` (the download's image stems): only records listing one of
    them (a record of another export's images is not this download's)."""
    p = Path(export)
    data = {r: _record_data(r) for r in sorted(p.parent.glob("*_review.json"))}
    coco = {r: d for r, d in data.items() if d is not None and _is_coco_record(d)}
    found = [r for r, d in coco.items() if str(d.get("layer") or "") == p.name] or list(coco)
    if stems is not None:
        found = [r for r in found if set(stems) & _listed(r)]
    return found


def _listed(record: Path) -> set[str]:
    """:func:`read_review_set`, empty for a record that cannot be read (a folder search)."""
    try:
        return read_review_set(record)
    except DataError:
        return set()


class ReviewCheck:
    """Which imported masks come back as exported: a partial review (one rule for every import).

    Args:
        record: The export's review record (None: nothing to compare with, every mask is kept).
        reviewed_only: ``--reviewed-only``: an unchanged mask is left out (not written).
        untouched: What "as exported" means in the import's tool, for the notes (``"no polygon
            moved, deleted or drawn, none marked status = 'accepted'"``).
        unlisted_empty: Leave out an image the record does not list whose mask is empty (a
            CVAT / COCO download holds every frame of the task, also those never sent for
            review: nothing drawn there is no review, and an all-background mask would replace
            its auto-label in training). An unlisted image with a shape drawn is kept.
    """

    def __init__(
        self,
        record: Path | None,
        reviewed_only: bool,
        untouched: str,
        *,
        unlisted_empty: bool = False,
    ) -> None:
        self.record = record
        self.digests = read_review_digests(record) if record is not None else {}
        data = _record_data(record) if record is not None else None
        self.model_file = data.get("model") if data is not None else None
        self.reviewed_only = reviewed_only
        self.untouched = untouched
        self.listed = read_review_set(record) if record is not None and unlisted_empty else None
        self.unchanged: list[str] = []
        self.exact_only: list[str] = []  # changed by the digest of an older record
        self.unlisted: list[str] = []  # not in the record, nothing drawn: no mask

    def model(self) -> Path | None:
        """The model file the record names (``model``), when it still exists; else None."""
        p = Path(str(self.model_file)) if isinstance(self.model_file, str) else None
        return p if p is not None and p.is_file() else None

    def exported_count(self, stem: str) -> int | None:
        """How many polygons the export wrote for image ``stem`` (the record's ``polygons``);
        None: not recorded (no record, no digest, or a COCO record, which counts
        ``annotations``)."""
        n = self.digests.get(stem, {}).get("polygons")
        return n if isinstance(n, int) else None

    def keep(self, stem: str, name: str, mask: np.ndarray) -> bool:
        """Whether to write the bool (H, W) ``mask`` of image ``name`` (stem ``stem``): False
        for an empty mask of an image the review record does not list when the check was made
        with ``unlisted_empty`` (a frame never sent for review, with nothing drawn: named in
        :attr:`unlisted`), and under ``reviewed_only`` for a mask that is the exported one
        (:func:`~sam2elnet.export.review_edits.unchanged`: equal but for the pixels a
        re-projection may flip); an unchanged one is counted either way."""
        e = self.digests.get(stem)
        if self.listed is not None and stem not in self.listed and not mask.any():
            self.unlisted.append(name)
            return False
        if e is None:
            return True
        if not unchanged(e, mask):
            if not has_mask(e):
                self.exact_only.append(name)
            return True
        self.unchanged.append(name)
        return not self.reviewed_only

    def notes(self, n_written: int, accept: str = "") -> list[str]:
        """The note naming the unchanged images (``accept``: how the tool marks a label accepted
        as it is, appended to the advice)."""
        from sam2elnet.utils.advice import name_sample, plural

        out = []
        if self.unlisted and self.record is not None:
            n = len(self.unlisted)
            one = n == 1
            out.append(
                f"{plural(n, 'image')} of the download {'is' if one else 'are'} not in the "
                f"review record ({self.record.name}) and nothing was drawn on "
                f"{'it' if one else 'them'}: not sent for review, no mask for "
                f"{'it' if one else 'them'} ({'its auto-label stays' if one else 'their auto-labels stay'}"
                f" as {'it is' if one else 'they are'}; draw on a frame to import it): "
                f"{name_sample(self.unlisted, 5)}"
            )
        if self.exact_only:
            counts, they = (
                ("counts", "it was") if len(self.exact_only) == 1 else ("count", "they were")
            )
            out.append(
                f"{plural(len(self.exact_only), 'image')} {counts} as edited by a review record "
                "that holds the exported masks' digests only (written by an older `elnet "
                f"export`), so {they} compared pixel for pixel: polygons re-projected or "
                "re-simplified since the "
                "export count as edited too; export again for a record that allows for that: "
                f"{name_sample(self.exact_only, 5)}"
            )
        if not self.unchanged:
            return out
        names = name_sample(self.unchanged, 5)
        one = len(self.unchanged) == 1
        if self.reviewed_only:
            comes, them = ("comes", "it") if one else ("come", "them")
            return [
                *out,
                f"{plural(len(self.unchanged), 'image')} {comes} back as exported "
                f"({self.untouched}): not reviewed, no mask for {them} (--reviewed-only): {names}",
            ]
        if n_written == 1:
            head = "the only mask is the exported label unchanged"
        else:
            are = "is the exported label" if one else "are the exported labels"
            head = f"{len(self.unchanged)} of {n_written} masks {are} unchanged"
        return [
            *out,
            f"{head} ({names}): imported as reviewed; after a partial review, --reviewed-only "
            f"leaves out the images you did not edit{accept}",
        ]

    def none_left(self) -> str:
        """Why no mask was written when every image came back unchanged or was not sent for
        review with nothing drawn (else "")."""
        if self.unlisted and not (self.reviewed_only and self.unchanged):
            return (
                f" (every image is outside the review record {self.record} with nothing drawn "
                "on it: give --review-set the record of the export that went into this task)"
            )
        if not (self.reviewed_only and self.unchanged):
            return ""
        return (
            f" (with --reviewed-only: every image comes back as exported, {self.untouched}; "
            "without it they are imported as they are)"
        )


DOWNLOAD_UNTOUCHED = "no shape drawn, changed or deleted"
"""What an unchanged image of a CVAT / COCO download means, for :class:`ReviewCheck`'s notes."""


def download_check(
    export: Path, given: str | Path | None, reviewed_only: bool, stems: list[str]
) -> tuple[ReviewCheck, list[str]]:
    """The :class:`ReviewCheck` of a CVAT / COCO download and a note saying which record it
    compares with, that several were found (named: give one), or that none was found.

    Args:
        export: The download imported.
        given: ``--review-set`` (None: looked for beside ``export``, :func:`coco_records`).
        reviewed_only: ``--reviewed-only``.
        stems: The download's image stems; a record found beside it that lists none of them
            belongs to another export and is not used.

    Raises:
        UserError: ``reviewed_only`` without a record or with several found, or ``given``
            listing none of ``stems``.
        DataError: ``given`` is not a review record.
    """
    if given is not None:
        rec: Path | None = Path(given)
        if not set(stems) & read_review_set(rec):  # DataError: not a review record
            from sam2elnet.utils.advice import name_sample, none_of

            names = f"({name_sample(stems, 3)})"
            head = none_of(
                len(stems),
                "image of the download",
                f"{names} is listed in the review record",
                f"{names} is not listed in the review record",
                "images of the download",
            )
            raise UserError(
                f"{head}; give the record of the export that went into this task",
                rec,
            )
    else:
        found = coco_records(export, stems)
        rec = found[0] if len(found) == 1 else None
        if len(found) > 1:
            several = (
                f"{len(found)} review records of COCO exports list the download's images, "
                f"beside it ({', '.join(r.name for r in found)}): give the one of the export "
                "that went into this task with --review-set FILE"
            )
            if reviewed_only:
                raise UserError(f"--reviewed-only needs one review record; {several}", export)
            return ReviewCheck(None, False, ""), [
                f"{several}; without it every image is imported as reviewed"
            ]
    if rec is None:
        if reviewed_only:
            raise UserError(
                "--reviewed-only needs the review record `elnet export --format coco` wrote "
                "(<stem>_coco_review.json beside the COCO file; none found beside the download): "
                "give it with --review-set FILE",
                export,
            )
        return ReviewCheck(None, False, ""), [
            "no review record of `elnet export --format coco` beside the download: every image "
            "is imported as reviewed, also one nobody opened; after a partial review give "
            "--review-set <stem>_coco_review.json --reviewed-only"
        ]
    note = [] if given is not None else [f"compared with the export's review record {rec}"]
    return ReviewCheck(rec, reviewed_only, DOWNLOAD_UNTOUCHED, unlisted_empty=True), note
