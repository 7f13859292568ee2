"""An interrupt (Ctrl-C, SIGTERM as KeyboardInterrupt) at the moment a temporary file comes into
being leaves nothing behind: the name is chosen before the file exists, inside the cleanup.

Before, ``tempfile.mkstemp`` created the file and only then returned its name, so an interrupt in
between (a stopped ``elnet scene`` under load: 3 of 30 runs) left ``.<stem>.<random>.tmp.tif``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sam2elnet.errors import UserError
from sam2elnet.utils.atomic import atomic_path, write_text_atomic
from sam2elnet.utils.paths import check_output


def _interrupt_after_create(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``os.open`` creates the file as asked, then a KeyboardInterrupt arrives."""
    real_open = os.open
    created: list[str] = []

    def open_then_interrupt(path, flags, mode=0o777, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
        fd = real_open(path, flags, mode, *a, **kw)
        if flags & os.O_CREAT:
            created.append(os.fspath(path))
            os.close(fd)
            raise KeyboardInterrupt
        return fd

    monkeypatch.setattr(os, "open", open_then_interrupt)
    return created


def test_interrupt_as_the_temporary_file_is_created_leaves_nothing(tmp_path, monkeypatch):
    created = _interrupt_after_create(monkeypatch)
    with pytest.raises(KeyboardInterrupt), atomic_path(tmp_path / "k.tif"):
        pytest.fail("the body never runs: the interrupt came while the file was being created")
    monkeypatch.undo()
    assert created and all(Path(c).parent == tmp_path for c in created)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_interrupt_during_the_output_check_leaves_no_probe(tmp_path, monkeypatch):
    created = _interrupt_after_create(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        check_output(tmp_path / "out" / "k.tif", "file", "--out")
    monkeypatch.undo()
    assert created
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_folder_that_takes_no_file_fails_before_the_body(tmp_path, monkeypatch):
    from sam2elnet.utils import paths

    def refuse(path: Path) -> None:
        raise PermissionError(13, "Permission denied", str(path.parent))

    monkeypatch.setattr(paths, "create_new_file", refuse)
    with pytest.raises(PermissionError), atomic_path(tmp_path / "k.txt"):
        pytest.fail("the body never runs")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(UserError, match="permission denied; choose a folder you can write to"):
        check_output(tmp_path / "k.txt", "file", "--out")


def test_temporary_names_follow_the_stale_temps_pattern(tmp_path):
    seen: list[str] = []
    with atomic_path(tmp_path / "k.tif") as tmp:
        seen.append(tmp.name)
        tmp.write_bytes(b"x")
    name = seen[0]
    assert (
        name.startswith(".k.")
        and name.endswith(".tmp.tif")
        and len(name) == len(".k..tmp.tif") + 12
    )
    assert (tmp_path / "k.tif").read_bytes() == b"x"
    write_text_atomic(tmp_path / "a.json", "{}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "k.tif"]
