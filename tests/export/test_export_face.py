"""The review loop's importers are on the ``sam2elnet.export`` face, as docs/architecture.md lists.

A Python user who exported a GeoPackage with ``export_labels`` found no importer for it there:
``import_vector`` (QGIS edits) and ``import_labels`` (``elnet import`` as one call) were only in
their modules. Found in a user trial of the API on sos-dev.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from helpers_data import write_png
from PIL import Image

import sam2elnet.export as face
from sam2elnet.export.import_result import ImportResult
from sam2elnet.export.review_import import import_labels
from sam2elnet.export.vector_import import import_vector


def test_importers_on_the_face() -> None:
    assert face.import_vector is import_vector
    assert face.import_labels is import_labels
    assert face.ImportResult is ImportResult
    assert {"import_vector", "import_labels", "ImportResult"} <= set(face.__all__)


def test_gpkg_round_trip_through_the_face(tmp_path: Path) -> None:
    img = np.random.default_rng(0).integers(20, 230, (32, 40)).astype(np.uint8)
    write_png(tmp_path / "imgs" / "a.png", img)
    lab = np.zeros((32, 40), np.uint8)
    lab[4:20, 6:30] = 255
    write_png(tmp_path / "labels" / "a.png", lab)
    out = tmp_path / "review" / "labels.gpkg"
    res = face.export_labels(tmp_path / "labels", out, progress=False)
    assert res.n_features == 1
    back = face.import_labels("vector", out, tmp_path / "back", images=tmp_path / "imgs",
                              progress=False)  # fmt: skip
    assert isinstance(back, face.ImportResult)
    assert [p.name for p in back.written] == ["a.png"]
    assert np.array_equal(np.asarray(Image.open(back.written[0])), lab)
