"""`elnet --help/--version` and `elnet weights list|download`."""

from __future__ import annotations

import os
import urllib.error

import pytest

from sam2elnet import __version__
from sam2elnet.cli import main


def test_help_lists_commands(capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("weights",):
        assert name in out


def test_version(capsys) -> None:
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_weights_list_shows_local_presence(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("SAM2ELNET_HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    (tmp_path / "sam2.1_hiera_small.pt").write_bytes(b"x")
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "small" in line and "2.1" in line]
    assert lines and "yes" in lines[0]
    assert str(tmp_path) in out


def test_weights_list_gives_every_url_whole_in_a_narrow_terminal(
    tmp_path, monkeypatch, capsys
) -> None:
    # README: "No network? Download the file elsewhere (URLs in `elnet weights list` ...)";
    # before, the list had no URL at all (found in a docs walk)
    monkeypatch.setenv("SAM2ELNET_HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["weights", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    base = "https://dl.fbaipublicfiles.com/segment_anything_2/"
    urls = [line.strip() for line in lines if line.strip().startswith(base)]
    assert urls[0] == base + "092824/sam2.1_hiera_tiny.pt"
    assert urls[-1] == base + "072824/sam2_hiera_large.pt"
    assert len(urls) == 8 and len(set(urls)) == 8
    assert any("sam2.1_hiera_base_plus.pt" in line for line in lines if "│" in line)


def test_download_without_network_is_a_one_line_error(tmp_path, monkeypatch, capsys) -> None:
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    rc = main(["weights", "download", "--size", "tiny", "--dest", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: could not download")
    assert str(tmp_path / "sam2.1_hiera_tiny.pt") in err
    assert err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_download_verifies_before_moving_into_place(tmp_path, monkeypatch, capsys) -> None:
    import io

    class Resp(io.BytesIO):
        headers = {"Content-Length": "4"}

    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: Resp(b"junk"))
    rc = main(["weights", "download", "--size", "tiny", "--version", "2", "--dest", str(tmp_path)])
    assert rc == 2
    assert "not a readable checkpoint" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [], "a bad download must not be left under any name"


def test_download_success_path(tmp_path, monkeypatch, capsys) -> None:
    import io

    from conftest import write_official_checkpoint

    src = tmp_path / "src.pt"
    write_official_checkpoint(src, size="tiny")
    payload = src.read_bytes()

    class Resp(io.BytesIO):
        headers = {"Content-Length": str(len(payload))}

    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: Resp(payload))
    dest = tmp_path / "cache"
    assert main(["weights", "download", "--size", "tiny", "--dest", str(dest)]) == 0
    assert (dest / "sam2.1_hiera_tiny.pt").read_bytes() == payload


@pytest.mark.parametrize("args", [["--size", "huge"], ["--version", "3"]])
def test_download_bad_options(tmp_path, args, capsys) -> None:
    assert main(["weights", "download", "--dest", str(tmp_path), *args]) == 2
    assert capsys.readouterr().err.startswith("error: unknown")


def test_light_commands_import_no_torch(tmp_path) -> None:
    """`elnet --help`, `weights list` and `refine` (classical) need no network: torch and
    transformers (seconds to import) stay out of the process."""
    import subprocess
    import sys

    import numpy as np
    from helpers_data import write_png

    write_png(tmp_path / "img" / "a.png", np.full((16, 16, 3), 90, np.uint8))
    write_png(tmp_path / "coarse" / "a.png", np.pad(np.full((8, 8), 255, np.uint8), 4))
    script = (
        "import sys\n"
        "from sam2elnet.cli import main\n"
        "assert main(['--help']) == 0\n"
        "assert main(['weights', 'list']) == 0\n"
        f"assert main(['refine', '--method', 'morphological', '--images', {str(tmp_path / 'img')!r},"
        f" '--coarse', {str(tmp_path / 'coarse')!r}, '--out', {str(tmp_path / 'out')!r},"
        " '--no-progress']) == 0\n"
        "print('HEAVY', sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
    )
    env = {**os.environ, "SAM2ELNET_HOME": str(tmp_path / "home")}
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    assert "HEAVY []" in res.stdout, res.stdout[-300:]
    assert (tmp_path / "out" / "a.png").is_file()
