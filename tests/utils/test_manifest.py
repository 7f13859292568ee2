"""The JSON-lines manifest survives kills: truncated last lines are skipped, latest record wins."""

from __future__ import annotations

import json
from pathlib import Path

from sam2elnet.utils.manifest import Manifest


def test_done_failed_and_reload(tmp_path: Path):
    out = tmp_path / "a.tif"
    out.write_bytes(b"x")
    m = Manifest.load(tmp_path / "m.jsonl")
    assert m.records == {}
    m.mark_done("a", [out], windows=3)
    m.mark_failed("b", "corrupt file")
    again = Manifest.load(tmp_path / "m.jsonl")
    assert again.is_done("a") and not again.is_done("b")
    assert again.failed() == {"b": "corrupt file"}
    assert again.done() == ["a"]
    assert again.records["a"]["windows"] == 3


def test_truncated_last_line_is_ignored_and_appends_continue(tmp_path: Path):
    path = tmp_path / "m.jsonl"
    m = Manifest.load(path)
    m.mark_done("a")
    with open(path, "a") as fh:
        fh.write('{"item": "b", "sta')  # killed mid-write
    m2 = Manifest.load(path)
    assert m2.bad_lines == 1 and m2.done() == ["a"]
    m2.mark_done("b")  # starts on a fresh line despite the partial one
    m3 = Manifest.load(path)
    assert sorted(m3.done()) == ["a", "b"] and m3.bad_lines == 1
    good = [json.loads(x) for x in path.read_text().splitlines() if x.endswith("}")]
    assert [r["item"] for r in good] == ["a", "b"]


def test_latest_record_wins_and_missing_outputs_mean_not_done(tmp_path: Path):
    path = tmp_path / "m.jsonl"
    m = Manifest.load(path)
    m.mark_failed("a", "boom")
    m.mark_done("a", [tmp_path / "gone.tif"])
    m = Manifest.load(path)
    assert m.records["a"]["status"] == "done"
    assert not m.is_done("a")  # its output was deleted since
    assert m.is_done("a", check_outputs=False)


def test_garbage_lines_do_not_stop_loading(tmp_path: Path):
    path = tmp_path / "m.jsonl"
    path.write_text(
        'not json\n{"no_item": 1}\n\n{"item": "x", "status": "done", "outputs": []}\n[1, 2]\n'
    )
    m = Manifest.load(path)
    assert m.done() == ["x"] and m.bad_lines == 3


def test_a_moved_output_folder_checks_its_own_outputs(tmp_path: Path, monkeypatch):
    """Outputs are stored relative to the manifest's folder: after a move (the old folder gone)
    and from another working folder, a done scene is still done; an old line (outputs as given
    then, relative to the old working folder) is checked under the manifest's folder."""
    import shutil

    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.tif").write_bytes(b"x")
    m = Manifest.load(Path("out") / "manifest.jsonl")
    m.mark_done("a", [Path("out") / "a.tif"])
    assert json.loads((tmp_path / "out" / "manifest.jsonl").read_text())["outputs"] == ["a.tif"]
    with open(tmp_path / "out" / "manifest.jsonl", "a") as fh:  # a line of an older version
        fh.write(json.dumps({"item": "b", "status": "done", "outputs": ["out/a.tif"]}) + "\n")
    shutil.move(tmp_path / "out", tmp_path / "moved")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    again = Manifest.load(Path("../moved/manifest.jsonl"))
    assert again.is_done("a") and again.is_done("b")
    (tmp_path / "moved" / "a.tif").unlink()
    assert not again.is_done("a") and not again.is_done("b")
