"""What a folder job reads before it predicts: its images, their label names, its coarse labels
and, on ``--resume``, the rows a previous run already finished.

* :func:`split_samples`: the images of ``elnet annotate`` / ``elnet enhance`` in one split of a
  dataset root (a folder, a file or a list: :func:`sam2elnet.data.naming.list_images`, here too).
* :func:`unique_names`: the label file name of each image (``.tif`` for GeoTIFF inputs, ``.png``
  otherwise; numbered when two images of a file list share a stem).
* :func:`label_index`: enhancement's coarse labels by image key (raster masks and vector files in
  a folder, or one vector file for all images).
* :func:`read_done`: the resume state, the finished rows of ``OUT/quality.csv``;
  :func:`check_resume_model`: ``--resume`` continues with the model that made them.
* :func:`check_job_out`: the output folder would not replace or mix with the inputs;
  :func:`check_run_out`: the same for the run folders of ``elnet cv`` / ``elnet experiment``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sam2elnet.data.naming import GEO_SUFFIXES, IMAGE_SUFFIXES, list_images, mask_key
from sam2elnet.data.runfolder import (
    QUALITY_CSV,
    REPORT_HTML,
    SCENE_MANIFEST,
    SKIPPED_CSV,
    SUMMARY_JSON,
    parse_score,
    read_csv_rows,
    row_kept,
    run_row_paths,
)
from sam2elnet.errors import DataError, UserError
from sam2elnet.option_checks import api_option
from sam2elnet.utils.advice import plural

log = logging.getLogger(__name__)

__all__ = [
    "list_images",
    "split_samples",
    "unique_names",
    "read_done",
    "check_resume_model",
    "LabelIndex",
    "label_index",
    "check_job_out",
    "check_run_out",
    "dataset_neighbours",
    "DATASET_NEIGHBOURS",
]

DATASET_NEIGHBOURS = ("masks", "labels", "gt", "coarse")
"""Folders next to a dataset's ``images/`` folder that hold its masks and coarse labels (the
generic and CHN6-CUG layouts, :mod:`sam2elnet.data.layouts`)."""


def split_samples(root: Any, split: str | Sequence[str], purpose: str) -> list[Any]:
    """Samples (image, mask, coarse) of one split of a dataset root: the one place annotate and
    enhance pick a split (:func:`sam2elnet.data.datasets.select_split`; DataError naming the
    splits found when one is absent)."""
    from sam2elnet.data.splits import select_split

    if not isinstance(root, (str, Path)):
        raise UserError(
            f"{api_option('split')} needs {api_option('images')} to be a dataset folder"
        )
    choice = select_split(root, split, purpose=purpose)
    log.info(choice.describe(purpose))
    return list(choice.index.samples)


def _out_name(path: Path) -> str:
    return path.stem + (".tif" if path.suffix.lower() in GEO_SUFFIXES else ".png")


def unique_names(files: Sequence[Path]) -> dict[Path, str]:
    names: dict[Path, str] = {}
    seen: dict[str, int] = defaultdict(int)
    for f in files:
        name = _out_name(f)
        seen[name] += 1
        if seen[name] > 1:  # same stem in different folders (file lists)
            name = f"{Path(name).stem}_{seen[name]}{Path(name).suffix}"
        names[f] = name
    return names


def check_resume_model(
    out: str | Path,
    model: str | Path | None,
    resume: bool,
    bands: Sequence[int] | None = None,
    *,
    model_name: str = "model",
    out_name: str = "out",
) -> dict[str, Any] | None:
    """The identity of ``model`` that the job records in ``OUT/model_id.json``
    (:func:`~sam2elnet.data.run_model.model_identity` of a model file,
    :func:`~sam2elnet.data.run_model.builtin_identity` of ``builtin:smoothing``, plus ``bands``:
    the 1-based file bands given with ``--bands``, None for the model's default; None when
    ``model`` is neither: a predictor passed to the API), after checking that ``--resume``
    continues with the model and the bands that made the folder's labels.

    One rule for model files and built-in models
    (:func:`~sam2elnet.data.run_model.same_model`): the same bytes (SHA-256) as the recorded
    model file resume as before, wherever the file lies now; ``builtin:smoothing`` resumes a
    folder it made; any other pair (two files, a file and ``builtin:smoothing``, either way) is
    refused. A folder with a ``quality.csv`` (annotate / enhance) or a ``manifest.jsonl``
    (``elnet scene`` folders of scenes) but no record (made before the record existed) resumes
    with one warning that its model cannot be checked; a record without ``bands`` (made before
    bands were recorded) is not checked for them.

    ``model_name`` / ``out_name``: the caller's names of ``model`` / ``out`` in messages from the
    API (:func:`~sam2elnet.option_checks.api_option`; annotate_folder: model_path, out_dir).

    Raises:
        UserError: ``resume`` and the folder records another model, or other ``--bands``: one
            line naming the folder, both models (band lists) and what to do (a new ``--out``,
            the recorded ones, no ``--resume``), before the model loads or anything is written.
    """
    from sam2elnet.data.run_model import (
        builtin_identity,
        model_identity,
        read_model_identity,
        same_model,
    )

    root = Path(out)
    ident = builtin_identity(model)
    try:
        if ident is None and model is not None and Path(model).is_file():
            ident = model_identity(model)
    except OSError:
        ident = None
    if ident is not None:
        ident = {**ident, "bands": list(bands) if bands is not None else None}
    if not resume:
        return ident
    m, o, r = api_option(model_name, "--model"), api_option(out_name, "--out"), api_option("resume")
    rec = read_model_identity(root)
    if rec is None:
        made = (root / QUALITY_CSV).is_file() or (root / SCENE_MANIFEST).is_file()
        if ident is not None and made:
            log.warning(
                "%s: made before output folders recorded their model (model_id.json): %s "
                "cannot check that its labels come from %s %s",
                root,
                r,
                m,
                model,
            )
        return ident
    if ident is not None and not same_model(rec, ident):
        raise UserError(
            f"its labels were made by model {_model_text(rec)}; {m} {model} is another "
            f"model{_version_text(ident)}, and {r} would mix the two: give a new {o} for "
            f"this model, resume with {m} {rec.get('model')}, or drop {r} to start over",
            root,
        )
    if ident is not None and "bands" in rec and rec["bands"] != ident["bands"]:
        raise UserError(
            f"its labels were read from bands {_bands_text(rec['bands'])}; this run's "
            f"{api_option('bands')} is {_bands_text(ident['bands'])}, and {r} would mix the two: "
            f"resume with the same {api_option('bands')}, give a new {o} for these bands, or "
            f"drop {r} to start over",
            root,
        )
    return ident


def _version_text(ident: dict[str, Any]) -> str:
    """`` (NAME@HASH)`` of a model file's identity; empty for a built-in model, whose version is
    its name."""
    version = ident.get("model_version")
    return f" ({version})" if version and version != ident.get("model") else ""


def _model_text(ident: dict[str, Any]) -> str:
    """``/abs/model.pt (model.pt@1a2b3c4d)``, or ``builtin:smoothing``: a recorded model in the
    resume error."""
    return f"{ident.get('model')}{_version_text(ident)}"


def _bands_text(bands: Any) -> str:
    """``4,3,2`` as typed with ``--bands``; for None ``the model's default (no --bands)``."""
    if not bands:
        return f"the model's default (no {api_option('bands')})"
    return ",".join(str(b) for b in bands)


def read_done(out: Path, fields: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Rows of a previous run's quality.csv whose label file exists, is non-empty and decodes,
    and whose ``predicted_iou`` is a number in [0, 1] or blank/``nan`` (for resume; anything else,
    e.g. an edited ``inf`` or ``1.5``, is redone), keyed by the image's absolute path
    (:func:`~sam2elnet.data.runfolder.run_image_path`), their image and coarse label absolute
    (:func:`~sam2elnet.data.runfolder.run_row_paths`; an older relative entry: of the working
    folder). A quality.csv that is not text raises a DataError."""
    from sam2elnet.data.writers import verify_written

    path = out / QUALITY_CSV
    if not path.is_file():
        return {}
    done = {}
    try:
        rows = read_csv_rows(path)
    except DataError as err:
        raise DataError(
            f"{str(err).removeprefix(f'{path}: ')}; not a quality.csv written by elnet: delete "
            f"it to redo every image, or drop {api_option('resume')}",
            path,
        ) from None
    redo = 0
    unusable: list[str] = []
    for row in rows:
        label = out / (row.get("label") or "")
        if not row.get("label") or not row.get("image") or not label.is_file():
            continue
        if parse_score((row.get("predicted_iou") or "").strip())[1]:  # 1.5, inf, text: not ours
            unusable.append(str(row.get("predicted_iou")))
            continue
        try:
            ok = label.stat().st_size > 0 and verify_written(label)
        except Exception:  # noqa: BLE001  (any failure to re-read: redo the image)
            ok = False
        if not ok:
            redo += 1
            label.unlink(missing_ok=True)
            continue
        row["kept"] = row_kept(row)
        row = run_row_paths(row)  # image and coarse; a relative one: of the working folder
        done[row["image"]] = row
    if redo:
        log.warning("%s in %s will be redone", plural(redo, "empty or unreadable label"), out)
    if unusable:
        log.warning(
            "%s of %s %s a predicted_iou that is not a number in [0, 1] (e.g. %r); "
            "%s will be redone",
            plural(len(unusable), "row"),
            path,
            "has" if len(unusable) == 1 else "have",
            unusable[0],
            "that image" if len(unusable) == 1 else "those images",
        )
    return done


class LabelIndex(dict):
    """Coarse label per image key; a single vector file serves every image (``default``)."""

    default: Path | None = None

    def __missing__(self, key: str) -> Path:
        if self.default is None:
            raise KeyError(key)
        return self.default

    def __contains__(self, key: object) -> bool:
        return self.default is not None or dict.__contains__(self, key)


def label_index(labels: str | Path, n_images: int | None = None) -> LabelIndex:
    """Coarse labels by image key: raster masks and/or vector files (GeoJSON, GeoPackage, ...) in a
    folder, matched by name, one vector file covering all images, one georeferenced raster
    (CRS + transform, or GCPs: a regional label, placed on each image by map position) covering
    all images, or (``n_images`` == 1) one raster mask file for the one image, whatever its name.

    Raises:
        UserError: ``labels`` does not exist, is a file of another kind, or is a raster mask file
            without georeference while ``n_images`` is not 1 (one mask cannot serve several
            images by pixel index: give a folder).
    """
    from sam2elnet.data.georef import georeferenced
    from sam2elnet.data.vector import is_vector_path

    root = Path(labels)
    idx = LabelIndex()
    if root.is_file() and is_vector_path(root):
        idx.default = root
        return idx
    if root.is_file() and root.suffix.lower() in IMAGE_SUFFIXES:
        if n_images == 1 or georeferenced(root):  # several: a regional label, by map position
            idx.default = root
            return idx
        raise UserError(
            f"has no georeference, so it is the label of one image, but {api_option('images')} "
            f"holds {plural(n_images or 0, 'image')}; give a folder of labels named like the "
            "images, or one georeferenced GeoTIFF or GeoJSON/GPKG/SHP for all, as "
            f"{api_option('labels')}",
            root,
        )
    if not root.exists():
        raise UserError(f"label path does not exist; check {api_option('labels')}", root)
    if not root.is_dir():
        raise UserError(
            "label path is neither a folder, a mask file (.png/.jpg/.tif) nor a vector file "
            f"(.geojson/.gpkg/.shp); check {api_option('labels')}",
            root,
        )
    for f in sorted(root.iterdir()):  # not naming.image_files: a vector file is a label too
        vector = is_vector_path(f)
        if f.is_file() and (vector or f.suffix.lower() in IMAGE_SUFFIXES) and f.name[0] != ".":
            idx.setdefault(mask_key(f.stem if vector else f.name), f)  # x.gpkg pairs with x.png
    return idx


LABELS_EXPECTED = (
    "--labels expects coarse labels: masks (one band, or bands that agree: 0/255, 0/1 or class "
    "values) or vector files (GeoJSON/GPKG/SHP) named like the images, or one vector file"
)
"""What ``--labels`` takes, in words, for the messages of :func:`check_labels_not_images`."""


def check_labels_not_images(label_map: dict[Path, Path], labels: str | Path) -> None:
    """Refuse a ``--labels`` folder that holds images instead of coarse labels, before the model
    loads: enhancing images "guided" by themselves gives nonsense labels, silently.

    Checked on raster labels only (vector files are labels by kind), on up to three matched pairs
    (one file looked at, on a bounded sample whatever its size): the labels are the image files
    themselves (``--labels`` is the ``--images`` folder) or byte-identical copies of them; or
    the first label is an image by its values (:func:`sam2elnet.data.masks.image_like_label`: a band of continuous values, any
    dtype - a grey or SAR image, a photo, uint16 DNs, float dB - where a mask's pixels, even
    JPEG-noisy or anti-aliased ones, sit at its background and object values; palette PNGs, 0/1,
    0/255, class-id, 16-bit and GeoTIFF masks with nodata are labels).

    Args:
        label_map: Image file -> its label file, as matched by name.
        labels: The ``--labels`` path (named in the message).

    Raises:
        UserError: one of the above, naming the folder and what ``--labels`` expects.
    """
    import filecmp

    from sam2elnet.data.masks import image_like_label
    from sam2elnet.data.vector import is_vector_path

    root = Path(labels)
    if not root.is_dir():
        return
    pairs = [(i, lab) for i, lab in label_map.items() if not is_vector_path(lab)][:3]
    if not pairs:
        return
    if all(i.resolve() == lab.resolve() for i, lab in pairs):
        raise UserError(
            f"is the --images folder: each image would be its own coarse label; {LABELS_EXPECTED}",
            root,
        )
    if all(filecmp.cmp(i, lab, shallow=False) for i, lab in pairs):
        raise UserError(
            f"holds copies of the --images files, not coarse labels ({pairs[0][1].name} is "
            f"byte-identical to {pairs[0][0]}); {LABELS_EXPECTED}",
            root,
        )
    first = pairs[0][1]
    kind = image_like_label(first)
    if kind:
        raise UserError(
            f"holds images, not coarse labels ({first.name}: {kind}); {LABELS_EXPECTED}", root
        )


def dataset_neighbours(files: Sequence[Path], option: str) -> list[tuple[str, Path]]:
    """The mask / coarse folders (:data:`DATASET_NEIGHBOURS`) next to every ``images/`` folder
    that ``files`` are read from, as ``(description, folder)`` for
    :func:`~sam2elnet.utils.paths.check_out_folder`: ground truth an output must not land in."""
    out: list[tuple[str, Path]] = []
    for folder in sorted({f.parent for f in files if f.parent.name == "images"}):
        for name in DATASET_NEIGHBOURS:
            d = folder.parent / name
            if d.is_dir():
                out.append((f"the dataset's {name} next to {option} {folder}", d))
    return out


def check_job_out(
    out: str | Path,
    command: str,
    files: Sequence[Path],
    *,
    model: str | Path | None = None,
    labels: str | Path | None = None,
    coarse: Sequence[Path | None] = (),
    masks: Sequence[Path | None] = (),
    save_prob: bool = False,
    save_changes: bool = False,
) -> None:
    """Refuse an annotate/enhance output folder whose files would replace or mix with the inputs,
    before the model loads or anything is written.

    Refused (one :class:`~sam2elnet.errors.UserError` line naming the file and saying to choose
    another ``--out``): ``OUT/labels/``, ``OUT/rejected/``, ``OUT/tiles/``, and ``OUT/prob/``
    (``save_prob``) / ``OUT/changes/`` (``save_changes``) being the folder of an image read,
    of a coarse label (``coarse``), of a split's mask (``masks``), or a dataset's mask / coarse
    folder next to the images' ``images/`` folder (:func:`dataset_neighbours`; not checked when
    ``OUT/quality.csv`` shows that ``OUT`` is an earlier run folder, so resuming is allowed); and
    ``OUT/quality.csv`` / ``skipped.csv`` / ``summary.json`` / ``report.html`` being the
    ``model`` or ``labels`` file. An output folder next to the inputs, or the images folder
    itself (labels go to its sub-folders, which are not read), is fine.
    """
    from sam2elnet.data.run_model import MODEL_ID_JSON
    from sam2elnet.utils.paths import check_not_input, check_out_folder

    root = Path(out)
    writes = [("labels", "its labels"), ("rejected", "its rejected labels"),
              ("tiles", "per-window quality")]  # fmt: skip
    if save_prob:
        writes.append(("prob", "probability maps"))
    if save_changes:
        writes.append(("changes", "change maps"))
    reads: list[tuple[str, Path | None]] = [("an image read with --images", f) for f in files]
    given = "read with --labels" if labels is not None else "of the split"
    reads += [(f"a coarse label {given}", c) for c in coarse]
    reads += [("a mask of the split", m) for m in masks]
    beside = [] if (root / QUALITY_CSV).is_file() else dataset_neighbours(files, "--images")
    check_out_folder(root, writes, reads, command, folders=beside)
    singles = [model, labels if labels is not None and Path(labels).is_file() else None]
    for name in (QUALITY_CSV, SKIPPED_CSV, SUMMARY_JSON, MODEL_ID_JSON, REPORT_HTML):
        check_not_input(root / name, singles, what=f"--out {root}: its {name} {root / name}")


def check_run_out(
    out: str | Path,
    command: str,
    data: str | Path,
    writes: Sequence[tuple[str, str]],
    weights: str | Path | None = None,
) -> None:
    """Refuse a cross-validation / experiment folder that would replace or mix with its inputs,
    before anything is read, trained or written.

    ``writes`` are the folder's parts (``("", "its tables")`` is ``out`` itself;
    ``("labelled", "its labelled subset")``, ...: sub-folders it writes, and may clear when a stage
    is re-run). The dataset's folders are ``data`` and, below it, the images / masks / coarse
    folders its layout reads (:func:`~sam2elnet.data.layout_places.read_folders`, layout
    ``auto``; a few ``stat`` calls, no file listed) and the split folders on the way to them
    (``train/``, ``test/``, SOS sensor folders). Only an existing ``out`` lists the dataset's
    files (:func:`~sam2elnet.data.layouts.discover`), to name the input file a part holds.
    Refused (``os.path.realpath``; symlinks followed):

    * ``out`` being ``data``, or being or lying inside one of the other dataset folders (new or
      not);
    * an existing part being the folder of an input file
      (:func:`~sam2elnet.utils.paths.check_out_folder`);
    * ``data``, a dataset folder or the ``weights`` file lying in a written sub-folder
      (``--data RUN/folds/0/train --out RUN``; :func:`~sam2elnet.utils.paths.check_out_overlap`).

    A new folder, one next to the dataset or inside ``data`` but outside its split / image / mask
    folders (``data/runs``), ``data`` inside ``out`` but outside its written sub-folders, a
    checkpoint in ``out`` itself (files there have fixed names), or an earlier run being resumed
    passes; a folder in no layout :func:`~sam2elnet.data.layouts.discover` knows is left for the
    run to report (only ``data`` itself is protected then).

    Raises:
        UserError: one line naming ``out``, the part written and the input found there, and
            saying to choose another ``--out`` folder.
    """
    from sam2elnet.utils.paths import check_out_folder, check_out_overlap

    root, base = Path(out), Path(data)
    dataset = [("the dataset read with --data", base)]
    given = [("the --weights file", Path(weights))] if weights and Path(weights).is_file() else []
    if root.is_dir():  # an existing part that is an input file's folder (the precise message)
        from sam2elnet.data.layouts import discover

        try:  # lists the dataset: only for an existing --out (a new one holds no part yet)
            samples = discover(base, report_unmatched=False).samples
        except DataError:
            samples = []
        reads: list[tuple[str, Path | None]] = []
        for s in samples:
            reads += [("an image read with --data", s.image), ("a mask read with --data", s.mask),
                      ("a coarse label read with --data", s.coarse)]  # fmt: skip
        check_out_folder(root, writes, reads, command, folders=dataset)
        subs = [(sub, what) for sub, what in writes if sub]
        check_out_folder(root, subs, given, command)
    check_out_overlap(root, writes, command, folders=_dataset_folders(base),
                      roots=dataset + given)  # fmt: skip


def _dataset_folders(data: Path) -> list[tuple[str, Path]]:
    """The folders below ``data`` that :func:`check_run_out` protects, with words for messages:
    the images, masks and coarse-label folders the layout reads
    (:func:`~sam2elnet.data.layout_places.read_folders`: no file is listed), and the split /
    sensor folders between them and ``data``."""
    from sam2elnet.data.layout_places import read_folders

    found: dict[Path, str] = {}
    for kind, folder in read_folders(data):
        if folder == data:
            continue
        found.setdefault(folder, f"the folder of the dataset's {kind} read with --data")
        for up in folder.parents:
            if up == data or data not in up.parents:
                break
            found.setdefault(up, "a split folder of the dataset read with --data")
    return [(desc, folder) for folder, desc in found.items()]
