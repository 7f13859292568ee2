"""os_error_message: permission denied on an input this user cannot read says so (let the user
read it), not the output advice (choose a folder you can write to)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from sam2elnet.utils import paths
from sam2elnet.utils.paths import os_error_message


def _denied(path: Path) -> PermissionError:
    return PermissionError(errno.EACCES, "Permission denied", str(path))


def test_an_unreadable_input_is_named_as_unreadable(tmp_path: Path, monkeypatch) -> None:
    img = tmp_path / "scene.tif"
    img.write_bytes(b"x")
    real = os.access
    monkeypatch.setattr(
        paths.os, "access", lambda p, mode: False if Path(p) == img else real(p, mode)
    )
    said = os_error_message(_denied(img))
    assert said == (
        f"{img}: permission denied: your user cannot read it; let your user read it "
        f"(chmod -R u+rX {img}) or copy it somewhere readable"
    )
    assert "write to" not in said


def test_a_readable_folder_keeps_the_output_advice(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    assert os_error_message(_denied(out)) == (
        f"{out}: permission denied; choose a folder you can write to or fix its permissions"
    )
    # a path that does not exist yet (a file the run was creating): the output advice too
    assert "choose a folder you can write to" in os_error_message(_denied(out / "new.png"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_a_real_unreadable_file(tmp_path: Path) -> None:
    img = tmp_path / "scene.tif"
    img.write_bytes(b"x")
    img.chmod(0)
    try:
        with pytest.raises(PermissionError) as info:
            img.open("rb")
        assert "your user cannot read it" in os_error_message(info.value)
    finally:
        img.chmod(0o644)


def test_an_unreadable_file_and_split_folder_get_the_same_advice(
    tmp_path: Path, monkeypatch
) -> None:
    from sam2elnet.data.layouts import _unreadable_split_text

    folder = tmp_path / "test"
    folder.mkdir()
    monkeypatch.setattr(paths.os, "access", lambda p, mode: False)
    advice = f"let your user read it (chmod -R u+rX {folder})"
    assert paths.read_access_advice(folder) == advice
    assert f"; {advice} or copy it somewhere readable" in os_error_message(_denied(folder))
    said = _unreadable_split_text(_denied(folder), folder, tmp_path)
    assert said.endswith(f"; {advice} or move it out of {tmp_path}")
