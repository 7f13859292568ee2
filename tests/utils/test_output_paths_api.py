"""Output paths that cannot be used, given to the Python API (not the CLI).

The CLI checks ``--out`` itself (:func:`sam2elnet.utils.paths.check_output`) before calling the
library, so ``elnet annotate --out FILE`` says ``error: --out FILE: is a file, expected a
folder``; the library functions did not, and a Python user got a bare ``FileExistsError`` from
``Path.mkdir`` in ``utils/lock.py`` (annotate_folder, enhance_folder, train, degrade_folder,
refine, cv, scene folders), ``NotADirectoryError`` (an import's ``out`` under a file), or
``IsADirectoryError`` from ``os.replace`` after the whole file had been written (an export or
``EvaluationResult.write_json`` into a folder). Found in a user trial of the API on sos-dev.
Now each raises :class:`~sam2elnet.errors.UserError` naming the path, before anything is written.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers_data import write_png

from sam2elnet.data.coarse import degrade_folder
from sam2elnet.errors import UserError
from sam2elnet.export import export_labels, import_coco
from sam2elnet.utils.atomic import write_text_atomic
from sam2elnet.utils.lock import output_lock


@pytest.fixture()
def a_file(tmp_path: Path) -> Path:
    f = tmp_path / "afile"
    f.write_text("x")
    return f


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_output_lock_on_a_file_is_a_user_error_naming_it(a_file: Path) -> None:
    with pytest.raises(UserError, match="afile: is a file, expected a folder") as err:
        with output_lock(a_file):
            pass
    assert str(a_file) in str(err.value)
    assert a_file.read_text() == "x"


def test_output_lock_under_a_file_is_a_user_error_naming_the_file(a_file: Path) -> None:
    with pytest.raises(UserError, match=f"{a_file} is a file, so nothing can be created under"):
        with output_lock(a_file / "sub"):
            pass


def test_degrade_folder_into_a_file(tmp_path: Path, a_file: Path) -> None:
    masks = tmp_path / "masks"
    m = np.zeros((32, 32), np.uint8)
    m[8:20, 8:20] = 255
    write_png(masks / "1_mask.png", m)
    with pytest.raises(UserError, match="is a file, expected a folder"):
        degrade_folder(masks, a_file, progress=False)
    assert _listing(tmp_path) == ["afile", "masks"]


def test_atomic_write_onto_a_folder_refused_before_writing(tmp_path: Path) -> None:
    d = tmp_path / "adir"
    d.mkdir()
    with pytest.raises(UserError, match="adir: is a folder, expected a file name"):
        write_text_atomic(d, "{}")
    assert _listing(tmp_path) == ["adir"] and _listing(d) == []  # no temporary left


def test_atomic_write_under_a_file(tmp_path: Path, a_file: Path) -> None:
    with pytest.raises(UserError, match=f"{a_file} is a file, so nothing can be created under"):
        write_text_atomic(a_file / "e.json", "{}")
    assert a_file.read_text() == "x"


def _labels(tmp_path: Path) -> Path:
    lab = tmp_path / "labels"
    m = np.zeros((32, 32), np.uint8)
    m[4:20, 6:18] = 255
    write_png(lab / "1.png", m)
    return lab


def test_export_into_a_folder_or_under_a_file(tmp_path: Path, a_file: Path) -> None:
    lab = _labels(tmp_path)
    d = tmp_path / "adir"
    d.mkdir()
    with pytest.raises(UserError, match="adir: is a folder, expected a file name"):
        export_labels(lab, d, fmt="gpkg", progress=False)
    assert _listing(d) == []
    with pytest.raises(UserError, match=f"{a_file} is a file, so nothing can be created under"):
        export_labels(lab, a_file / "x.gpkg", progress=False)
    with pytest.raises(UserError, match=f"{a_file} is a file, so nothing can be created under"):
        export_labels(lab, a_file / "t.json", fmt="label-studio", progress=False)
    assert _listing(tmp_path) == ["adir", "afile", "labels"]


def test_import_under_a_file(tmp_path: Path, a_file: Path) -> None:
    coco = {
        "images": [{"id": 1, "file_name": "1.png", "height": 32, "width": 32}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
                         "segmentation": [], "area": 64, "bbox": [4, 4, 8, 8]}],
        "categories": [{"id": 1, "name": "oil spill"}],
    }  # fmt: skip
    p = tmp_path / "coco.json"
    p.write_text(json.dumps(coco))
    with pytest.raises(UserError, match=f"{a_file} is a file, so nothing can be created under"):
        import_coco(p, a_file / "masks", progress=False)
