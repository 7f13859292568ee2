"""The model file's SHA-256 (``model_id.json``, ``--resume`` checks, model versions) is read once
per process for an unchanged file, and read again whenever the file changes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from sam2elnet.data import run_model
from sam2elnet.data.run_model import model_identity, model_version


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_model, "_DIGESTS", {})


def _no_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Path, *a: object, **kw: object) -> object:
        raise AssertionError(f"{self} was read again")

    monkeypatch.setattr(Path, "open", refuse)


def test_unchanged_file_is_hashed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "model.pt"
    f.write_bytes(b"a" * 3000 + b"b")
    first = model_identity(f)
    assert first["sha256"] == _sha(b"a" * 3000 + b"b")
    _no_reads(monkeypatch)
    assert model_identity(f)["sha256"] == first["sha256"]
    assert model_version(f) == f"model.pt@{first['sha256'][:8]}"


def test_rewritten_file_same_size_and_mtime_is_hashed_again(tmp_path: Path) -> None:
    f = tmp_path / "model.pt"
    f.write_bytes(b"one version")
    st = f.stat()
    assert model_identity(f)["sha256"] == _sha(b"one version")
    f.write_bytes(b"two version")  # same size, in place
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # the old modification time back
    assert model_identity(f)["sha256"] == _sha(b"two version")


def test_replaced_file_is_hashed_again(tmp_path: Path) -> None:
    f, new = tmp_path / "model.pt", tmp_path / "new.pt"
    f.write_bytes(b"first")
    assert model_identity(f)["sha256"] == _sha(b"first")
    new.write_bytes(b"other")
    os.replace(new, f)
    assert model_identity(f)["sha256"] == _sha(b"other")


def test_cache_stays_small(tmp_path: Path) -> None:
    for i in range(run_model._DIGESTS_KEPT + 5):
        p = tmp_path / f"m{i}.pt"
        p.write_bytes(str(i).encode())
        assert model_identity(p)["sha256"] == _sha(str(i).encode())
    assert len(run_model._DIGESTS) == run_model._DIGESTS_KEPT


def test_missing_file_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        model_version(tmp_path / "gone.pt")
