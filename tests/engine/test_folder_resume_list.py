"""``--resume`` with another image list than the first run's: the record keeps every label."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from sam2elnet.engine.infer import annotate_folder
from sam2elnet.engine.predictor import Predictor


def _rows(out: Path) -> list[dict[str, str]]:
    with (out / "quality.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_resume_with_another_list_keeps_the_earlier_images_rows(
    run: dict[str, Path], pred: Predictor, tmp_path: Path
) -> None:
    """Run 1 on a,b,c, run 2 --resume on a,d: quality.csv kept only a,d while the labels of b
    and c stayed in labels/ (and summary.json said 2 images, 3 resumed)."""
    a, b, c, d = sorted((run["data"] / "images").glob("*.png"))[:4]
    out = tmp_path / "out"
    annotate_folder(run["model"], [a, b, c], out, progress=False, predictor=pred)
    first = {r["image"]: r for r in _rows(out)}
    res = annotate_folder(run["model"], [a, d], out, resume=True, progress=False, predictor=pred)
    rows = _rows(out)
    # this run's images in its input order, then the earlier run's others in their order
    assert [Path(r["image"]).name for r in rows] == [a.name, d.name, b.name, c.name]
    for img in (a, b, c):
        assert next(r for r in rows if r["image"] == str(img)) == first[str(img)]
    assert all((out / r["label"]).is_file() for r in rows)
    assert sorted(p.name for p in (out / "labels").iterdir()) == sorted(
        Path(r["label"]).name for r in rows
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_images"] == 4 and summary["n_resumed"] == 3
    assert summary["n_kept"] + summary["n_rejected"] == 4
    assert summary["unlisted_label_files"] == 0 and len(res.rows) == 4
