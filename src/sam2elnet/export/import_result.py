"""What an ``elnet import`` wrote (:class:`ImportResult`), shared by every importer (Label
Studio, COCO / CVAT, QGIS polygons), and the ``next:`` line that says how to train on it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sam2elnet.utils.advice import plural

__all__ = ["ImportResult"]


@dataclass
class ImportResult:
    """What :func:`import_label_studio` (or the COCO / vector import) wrote: the masks, the
    tasks / images skipped with the reason, notes, and the stale masks of an earlier import into
    the same folder that were removed (:class:`~sam2elnet.export.mask_folder.MaskFolder`)."""

    out: Path
    written: list[Path]
    skipped: list[tuple[str, str]]
    notes: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    #: the model that made the exported labels (the export's review record; for Label Studio
    #: the run folder of the tasks' labels), if it exists
    model: Path | None = None
    train_set: Any = None  #: :class:`~sam2elnet.export.train_set.TrainSet` (``--with-labels``)
    #: mask name -> the image file the import made it for (images read from a zip: absent)
    images: dict[str, Path] = field(default_factory=dict)

    def summary(self) -> str:
        """What was written, the training set (:attr:`train_set`), then the next step
        (:meth:`next_step`), one line each."""
        s = f"{self.out}: {plural(len(self.written), 'mask')} written"
        if self.skipped:
            s += f"; {len(self.skipped)} skipped"
        if self.removed:
            s += f"; {plural(len(self.removed), 'stale mask')} of the earlier import removed"
        if self.train_set is not None:
            s += f"\n{self.train_set.line()}"
        return f"{s}\n{self.next_step()}"

    def next_step(self) -> str:
        """The command that trains on these masks, as docs/review.md gives it: ``elnet train
        --data`` the folder above ``out`` when ``out`` is its ``masks/`` (the generic layout,
        images in ``images/`` beside it, paired by name), else where to put the masks; with a
        :attr:`train_set`, ``--data`` that folder and ``--init-model`` the model that made the
        labels (the export's record, else the run's) when one is known."""
        import shlex

        if (ts := self.train_set) is not None:
            model, q = self.model or ts.model, shlex.quote
            tail = "" if model else " (MODEL.pt: the model that made the labels)"
            return f"next: elnet train --data {q(str(ts.folder))} --out RUN --init-model {q(str(model or 'MODEL.pt'))}{tail}"
        if self.model is not None:  # recorded by the export: the model that made the labels
            train = "elnet train --data {} --out RUN --init-model " + shlex.quote(str(self.model))
            tail = " (the model that made the labels, from the export's record of them)"
        else:
            train = "elnet train --data {} --out RUN --init-model MODEL.pt"
            tail = (
                " (MODEL.pt: the model that made the labels; with the first labels too: "
                "docs/review.md)"
            )
        if self.out.name != "masks":
            return (
                "next: put these masks in DATA/masks and their images in DATA/images (they pair "
                f"by name), then {train.format('DATA')}{tail}"
            )
        data, images = self.out.parent, self.out.parent / "images"
        copy = "" if images.is_dir() else f"copy the images to {images} (paired by name), then "
        return f"next: {copy}{train.format(shlex.quote(str(data)))}{tail}"
