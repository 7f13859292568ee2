"""FolderJob.flush: quality.csv is rewritten when its rows change, not when it already holds them."""

from __future__ import annotations

from pathlib import Path

import pytest

import sam2elnet.engine.folder_job as folder_job
from sam2elnet.data.runfolder import QUALITY_CSV
from sam2elnet.engine.folder_chunk import ChunkSpec
from sam2elnet.engine.folder_job import FolderJob


def test_flush_writes_only_changed_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[str] = []
    real = folder_job.write_text_atomic

    def counted(path: Path, text: str) -> Path:
        writes.append(text)
        return real(path, text)

    monkeypatch.setattr(folder_job, "write_text_atomic", counted)
    out = tmp_path / "out"
    job = FolderJob(object(), ChunkSpec("annotate", out, None), ["image", "predicted_iou"])  # type: ignore[arg-type]
    with job:
        job.flush(final=True)  # no rows yet: nothing written (a job may produce nothing)
        assert not (out / QUALITY_CSV).exists() and writes == []
        job.flush(final=True, always=True)  # finish(): the header
        job.flush(final=True, always=True)  # the same text: not written again
        assert (out / QUALITY_CSV).read_text() == "image,predicted_iou\n"
        job.rows.append({"image": "a.png", "predicted_iou": 0.25, "kept": True})
        job.flush(final=True)
        job.flush(final=True)
        job.rows.sort(key=lambda r: r["image"])  # finish() reorders: same rows, same text
        job.flush(final=True)
        job.rows[0] = {**job.rows[0], "predicted_iou": 0.5}
        job.flush(final=True)
    assert len(writes) == 3
    assert (out / QUALITY_CSV).read_text() == "image,predicted_iou\na.png,0.500000\n"
