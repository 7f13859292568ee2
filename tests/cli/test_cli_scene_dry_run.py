"""``elnet scene`` through the CLI: ``--dry-run``, a folder of scenes (batch, resume) and error
lines."""

from __future__ import annotations

from pathlib import Path

from sam2elnet.cli import main


def _scene(image: Path, out: Path, *extra: str, model: str = "builtin:smoothing") -> int:
    """``elnet scene --model MODEL --image IMAGE --out OUT EXTRA...``: its exit code."""
    return main(["scene", "--model", model, "--image", str(image), "--out", str(out), *extra])


def test_cli_scene_dry_run_batch_and_errors(tmp_path: Path, capsys):
    from helpers_data import make_scene

    scene = make_scene(tmp_path / "s.tif")
    out = tmp_path / "o.tif"
    opts = ["--tile", "128", "--overlap", "32", "--prob", "--quality-gpkg", "--no-progress"]
    assert _scene(scene, out, *opts) == 0
    assert (
        out.exists() and (tmp_path / "o_prob.tif").exists() and (tmp_path / "o_tiles.gpkg").exists()
    )
    capsys.readouterr()
    empty = make_scene(tmp_path / "void.tif", all_nodata=True)
    assert _scene(empty, tmp_path / "v.tif", "--no-progress") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1  # one line naming the file
    assert f"{empty}: unusable scene, no label written: all nodata (" in err
    assert "check the file's nodata value or mask" in err
    assert _scene(scene, tmp_path / "v.tif", model=str(tmp_path / "nomodel.pt")) == 2
    assert _scene(scene, tmp_path / "v.tif", "--bands", "x") == 2
    # a folder with one good and one all-nodata scene: the bad one is skipped with its reason
    folder = tmp_path / "many"
    folder.mkdir()
    make_scene(folder / "a.tif", h=120, w=130)
    make_scene(folder / "b.tif", h=60, w=60, all_nodata=True)
    capsys.readouterr()
    batch = ["--tile", "64", "--overlap", "16", "--no-progress"]
    assert _scene(folder, tmp_path / "many_out", *batch) == 0
    cap = capsys.readouterr()
    assert "1 scene predicted" in cap.out and "1 skipped" in cap.out
    assert f"skipping {folder / 'b.tif'}: " in cap.err  # the reason: once, in the warning
    assert "b.tif," in (tmp_path / "many_out" / "skipped.csv").read_text()
    assert _scene(folder, tmp_path / "many_out", *batch, "--resume") == 0
    assert "1 already done" in capsys.readouterr().out
