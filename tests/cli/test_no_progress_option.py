"""--no-progress is one option (cli.shared_options.NO_PROGRESS, one help text) on every command
that draws a progress bar; with it a command draws no bar and prints one line per stage
(``<stage>: n/N unit in t s (rate)``, utils.progress.ProgressLines) on stdout instead.

``cv``, ``experiment`` and ``demo`` run training and inference many times over; they are run with
--no-progress in tests/pipeline/test_crossval.py, test_experiment.py and tests/test_demo.py.
"""

from __future__ import annotations

import os

os.environ.setdefault("SAM2ELNET_THREADS", "1")

import re

import numpy as np
import tqdm.std
from helpers_cli import cli_commands
from helpers_data import write_tif

from sam2elnet.cli import main
from sam2elnet.cli.shared_options import NO_PROGRESS_HELP

#: every command that draws a progress bar (a new one belongs here and gets NO_PROGRESS)
BARS = {
    "annotate", "cv", "degrade", "demo", "enhance", "evaluate", "experiment", "export", "import",
    "refine", "scene", "stats", "synth", "train", "weights download",
}  # fmt: skip
#: a stage's closing line: its name, the count done (of the total) and unit, the time
STAGE = re.compile(r"^(.+): \d+(/\d+)? \S+ in \d+\.\d s \(")


def test_every_command_with_a_bar_takes_the_one_no_progress_option() -> None:
    found = {}
    for name, cmd in cli_commands(leaves=True).items():
        for param in cmd.params:
            if "--no-progress" in param.opts:
                found[name] = param
    assert set(found) == BARS
    for name, param in found.items():
        assert param.help == NO_PROGRESS_HELP, name
        assert param.default is False, name


def _stages(argv: list[str], capsys, monkeypatch) -> list[str]:  # noqa: ANN001
    """Run ``elnet ARGV --no-progress``; check that it drew no bar and printed each stage's line
    once; return the stage names in order."""
    drawn: list[object] = []
    real = tqdm.std.tqdm.__init__

    def spy(self, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
        real(self, *a, **kw)
        if not self.disable:
            drawn.append(getattr(self, "desc", "?"))

    monkeypatch.setattr(tqdm.std.tqdm, "__init__", spy)
    capsys.readouterr()
    rc = main([str(a) for a in argv] + ["--no-progress"])
    out, err = capsys.readouterr()
    monkeypatch.setattr(tqdm.std.tqdm, "__init__", real)
    assert rc == 0, err
    assert drawn == [], f"{argv[0]} drew bars {drawn}"
    assert "\r" not in err, err
    stages = [m[1] for m in map(STAGE.match, out.splitlines()) if m]
    assert stages and len(stages) == len(set(stages)), out
    return stages


def test_commands_print_a_line_per_stage_instead_of_a_bar(run, tmp_path, capsys, monkeypatch):
    data, model, t = run["data"], run["model"], tmp_path
    syn = t / "syn"
    assert _stages(["synth", "--task", "oil-spill", "--count", "2", "--size", "32", "--out",
                    syn, "--seed", "0"], capsys, monkeypatch) == ["synth oil-spill"]  # fmt: skip
    assert _stages(["stats", "--data", data], capsys, monkeypatch) == ["stats"]
    assert _stages(["degrade", "--masks", data / "masks", "--out", t / "deg", "--seed", "0"],
                   capsys, monkeypatch) == ["degrade"]  # fmt: skip
    assert "check data" in _stages(
        ["train", "--data", syn, "--out", t / "r", "--size", "micro", "--epochs", "1",
         "--image-size", "32", "--weights", "none", "--val-fraction", "0.5"], capsys, monkeypatch
    )  # fmt: skip
    assert _stages(["annotate", "--model", model, "--images", data / "images", "--out", t / "a"],
                   capsys, monkeypatch) == ["annotate"]  # fmt: skip
    assert _stages(["enhance", "--model", model, "--images", data / "images", "--labels",
                    t / "deg", "--out", t / "e"], capsys, monkeypatch) == ["enhance"]  # fmt: skip
    scene = write_tif(t / "scene.tif", np.random.default_rng(0).integers(0, 255, (3, 96, 96)))
    assert _stages(["scene", "--model", model, "--image", scene, "--out", t / "s.tif", "--tile",
                    "64", "--overlap", "16"], capsys, monkeypatch) == ["scene.tif"]  # fmt: skip
    assert _stages(["evaluate", "--pred", t / "a", "--truth", data / "masks"], capsys,
                   monkeypatch) == ["evaluate"]  # fmt: skip
    assert _stages(["export", "--labels", t / "a" / "labels", "--out", t / "p.gpkg"], capsys,
                   monkeypatch) == ["polygonise"]  # fmt: skip
    assert _stages(["export", "--labels", data / "masks", "--out", t / "c.json", "--format",
                    "coco"], capsys, monkeypatch) == ["coco"]  # fmt: skip
    assert _stages(["import", t / "c.json", "--from", "coco", "--out", t / "m"], capsys,
                   monkeypatch) == ["import"]  # fmt: skip
    assert _stages(["refine", "--method", "morphological", "--images", data / "images",
                    "--coarse", t / "deg", "--out", t / "ref"], capsys, monkeypatch) == [
        "stats", "refine (morphological)"  # the images' normalisation, then the labels
    ]  # fmt: skip


def test_weights_download_prints_one_line(tmp_path, capsys, monkeypatch):
    """weights download (a bar of bytes): one line at the end, no bar (no network: a local file
    stands in for the download, and loading it is not checked here)."""
    import io

    from sam2elnet.model import download, hiera

    body = b"x" * 3_000_000

    class _Resp(io.BytesIO):
        headers = {"Content-Length": str(len(body))}

    monkeypatch.setattr(download.urllib.request, "urlopen", lambda url, timeout: _Resp(body))
    monkeypatch.setattr(hiera, "load_encoder_weights", lambda path, size: None)
    stages = _stages(["weights", "download", "--size", "tiny", "--dest", tmp_path], capsys,
                     monkeypatch)  # fmt: skip
    assert stages == ["sam2.1_hiera_tiny.pt"]
    assert (tmp_path / "sam2.1_hiera_tiny.pt").read_bytes() == body
