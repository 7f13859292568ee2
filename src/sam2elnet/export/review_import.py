"""``elnet import`` as one library call: reviewed annotations to masks, and the next training set.

:func:`import_labels` picks the importer by what the export is (``--from``:
:mod:`~sam2elnet.export.labelstudio_import`, :mod:`~sam2elnet.export.coco_import`,
:mod:`~sam2elnet.export.cvat_import`, :mod:`~sam2elnet.export.vector_import`) and, with
``with_labels`` (``--with-labels RUN/labels``), builds the next training folder
(:mod:`~sam2elnet.export.train_set`): its inputs are checked before anything is imported, every
reviewed mask is checked to pair with an image before ``out`` changes (the importer's
:class:`~sam2elnet.export.mask_folder.MaskFolder` check), and each reviewed mask goes into the
training folder with the image its import read.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sam2elnet.errors import UserError
from sam2elnet.export.import_result import ImportResult
from sam2elnet.option_checks import check_options, option_default
from sam2elnet.option_values import (
    DEFAULT_LINE_WIDTH_UNIT,
    IMPORT_SOURCE_ALIASES,
    IMPORT_SOURCES,
    LineWidthUnit,
)
from sam2elnet.options import ImportOptions

__all__ = ["import_labels", "import_source"]


def import_source(name: str) -> str:
    """The :data:`~sam2elnet.option_values.ImportSource` ``name`` stands for (any case;
    ``qgis`` / ``gpkg``: ``vector``).

    Raises:
        UserError: an unknown name (the message lists the names).
    """
    kind = IMPORT_SOURCE_ALIASES.get(name.lower(), name.lower())
    if kind not in IMPORT_SOURCES:
        raise UserError(f"unknown --from {name!r}; use {', '.join(IMPORT_SOURCES)}")
    return kind


def import_labels(
    source: str,
    export: str | Path,
    out: str | Path,
    *,
    images: str | Path | None = None,
    document_root: str | Path | None = None,
    category: str | None = None,
    review_set: str | Path | None = None,
    all_images: bool = option_default(ImportOptions, "all_images"),
    reviewed_only: bool = option_default(ImportOptions, "reviewed_only"),
    layer: str | Sequence[str] | None = None,
    line_width: float | None = None,
    line_width_unit: LineWidthUnit = DEFAULT_LINE_WIDTH_UNIT,
    with_labels: str | Path | None = None,
    train_set: str | Path | None = None,
    progress: bool = True,
) -> ImportResult:
    """Write the masks of a reviewed export into ``out`` (``elnet import``), and with
    ``with_labels`` the next training folder.

    Args:
        source: What ``export`` is: ``label-studio``, ``coco``, ``cvat`` or ``vector``
            (:func:`import_source`).
        export: The export file (Label Studio JSON, COCO JSON, CVAT zip / XML, vector layer).
        out: The masks folder (afterwards it holds exactly this import's masks).
        images: The source images (folder or file), as the importer takes them.
        document_root: Label Studio: the folder the image URLs are relative to.
        category: Only regions of this label / category (None: all).
        review_set: vector, cvat, coco: the export's review record (None: the default one).
        all_images: vector: a mask for every image of ``images``.
        reviewed_only: vector, cvat, coco: masks only for the images whose mask changed.
        layer: vector: the layer of a file with several, or several layers burnt into the same
            masks (only with ``source`` vector; :func:`~sam2elnet.export.vector_import.import_vector`).
        line_width: vector: the width lines are drawn with (None: the layer's rule).
        line_width_unit: Unit of ``line_width``.
        with_labels: The kept auto-labels (``RUN/labels``): also build the training folder.
        train_set: The training folder (only with ``with_labels``; None:
            ``out/``:data:`~sam2elnet.export.train_set.TRAIN_SET_DIR`).
        progress: Show a progress bar.

    Returns:
        The import's :class:`~sam2elnet.export.import_result.ImportResult`; with
        ``with_labels`` its ``train_set`` is the :class:`~sam2elnet.export.train_set.TrainSet`
        written.

    Raises:
        UserError: an unknown ``source``, an option its ``source`` does not take (``layer``,
            ``line_width``, ``line_width_unit`` "px", ``all_images``: vector only;
            ``review_set``, ``reviewed_only``: not label-studio), ``all_images`` with
            ``reviewed_only`` (:class:`~sam2elnet.options.ImportOptions`), ``train_set``
            without ``with_labels``, a training folder that cannot be built (checked before
            anything is written; a reviewed mask without an image: before ``out`` changes), or
            as the importer raises.
    """
    kind = import_source(source)
    opts = check_options(ImportOptions, source=kind, line_width=line_width,
                         line_width_unit=line_width_unit, layer=layer, review_set=review_set,
                         all_images=all_images, reviewed_only=reviewed_only)  # fmt: skip
    if train_set is not None and with_labels is None:
        raise UserError("--train-set names the folder --with-labels builds; give --with-labels")
    out = Path(out)
    plan = None
    if with_labels is not None:  # checked before anything is imported
        from sam2elnet.export.train_set import TRAIN_SET_DIR, plan_train_set

        plan = plan_train_set(
            with_labels,
            train_set if train_set is not None else out / TRAIN_SET_DIR,
            images=images,
            keep_clear=(out, Path(document_root) if document_root is not None else None),
        )
    # --with-labels: every reviewed mask must pair with an image, checked before out changes
    check = plan.check_reviewed if plan is not None else None
    shared = {"images": images, "category": category, "progress": progress, "commit_check": check}
    if kind == "label-studio":
        from sam2elnet.export.labelstudio_import import import_label_studio

        res = import_label_studio(
            export, out, document_root=document_root, with_labels=plan is not None, **shared
        )
    elif kind == "vector":
        from sam2elnet.export.vector_import import import_vector

        res = import_vector(
            export, out, layer=opts.layer, review_set=review_set, all_images=all_images,
            reviewed_only=reviewed_only, line_width=opts.line_width,
            line_width_unit=opts.line_width_unit, **shared,
        )  # fmt: skip
    else:
        from sam2elnet.export.coco_import import import_coco
        from sam2elnet.export.cvat_import import import_cvat

        run = import_coco if kind == "coco" else import_cvat
        res = run(export, out, review_set=review_set, reviewed_only=reviewed_only, **shared)
    if plan is not None:
        res.train_set = plan.build(out, res.images)
    return res
