"""Messages a new user reads, line by line: ``elnet scene`` on a folder with bad scenes, outputs
that would replace an input, ``elnet export`` of one bad file, ``elnet experiment-summary --out``
checks, and the ``--help`` texts (every option has one; one-sentence command descriptions)."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer.main
from helpers_data import make_scene

from sam2elnet.cli import app, main

SMOOTH = ["--model", "builtin:smoothing", "--tile", "64", "--overlap", "16", "--no-progress"]


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, list[str], list[str]]:
    rc = main(argv)
    cap = capsys.readouterr()
    return rc, cap.out.splitlines(), cap.err.splitlines()


@pytest.fixture
def scenes(tmp_path: Path) -> Path:
    """A folder: one good scene, one truncated, one empty (0 bytes)."""
    folder = tmp_path / "scenes"
    folder.mkdir()
    good = make_scene(folder / "good.tif", h=100, w=100)
    data = good.read_bytes()
    (folder / "trunc.tif").write_bytes(data[: len(data) // 3])
    (folder / "z_zero.tif").write_bytes(b"")
    return folder


def test_scene_folder_with_bad_scenes_names_each_once_and_counts_consistently(
    scenes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "o"
    rc, lines, err = _run(capsys, ["scene", "--image", str(scenes), "--out", str(out), *SMOOTH])
    assert rc == 0, err
    trunc, zero = scenes / "trunc.tif", scenes / "z_zero.tif"
    assert err[0].startswith(f"warning: skipping {trunc}: cannot read scene (trunc.tif, ")
    assert err[1] == (
        f"warning: skipping {zero}: scene file is empty (0 bytes); re-export it or remove it"
    )
    assert len(err) == 2
    summary = "1 scene predicted, 0 already done, 2 skipped"
    lines = lines[lines.index(f"{summary} (reasons: the warnings above and the manifest)") :]
    assert lines[1:] == [  # the reasons are not repeated: the warnings said them once
        f"manifest: {out / 'manifest.jsonl'}",
        f"2 of 3 skipped, see {out / 'skipped.csv'}",
    ]


def test_scene_empty_file_says_what_to_do(
    scenes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zero = scenes / "z_zero.tif"
    rc, _, err = _run(capsys, ["scene", "--image", str(zero), "--out", str(tmp_path / "z.tif"),
                               *SMOOTH])  # fmt: skip
    assert rc == 2
    assert err == [f"error: {zero}: scene file is empty (0 bytes); re-export it or remove it"]


def test_scene_without_crs_says_it_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The no-CRS remark came twice, as 'warning:' while running and as 'note:' at the end."""
    img = make_scene(tmp_path / "nocrs.tif", h=64, w=64, crs=None)
    rc, _, err = _run(capsys, ["scene", "--image", str(img), "--out", str(tmp_path / "o.tif"),
                               "--quality-gpkg", *SMOOTH])  # fmt: skip
    assert rc == 0
    said = [line for line in err if "has no CRS" in line]
    assert len(said) == 1 and "y = -row" in said[0], err
    assert not [line for line in err if "crs' was not provided" in line], err


@pytest.mark.parametrize(
    ("flag", "suffix", "what"),
    [("--prob", "_prob.tif", "probability map"),
     ("--quality-gpkg", "_tiles.gpkg", "per-window quality layer")],
)  # fmt: skip
def test_scene_companion_output_onto_the_input_names_the_users_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, suffix: str, what: str
) -> None:
    image = make_scene(tmp_path / f"s{suffix}", h=64, w=64)
    out = tmp_path / "s.tif"
    before = image.read_bytes()
    rc, _, err = _run(capsys, ["scene", "--image", str(image), "--out", str(out), flag, *SMOOTH])
    assert rc == 2
    assert err == [
        f"error: --out {out}: its {what} {image}: is the input file {image}; writing it would "
        "replace the input. Choose another --out path"
    ]
    assert image.read_bytes() == before


def test_scene_out_folder_equal_to_image_folder_is_refused_before_the_model_loads(
    scenes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model.pt"
    model.write_bytes(b"not a model")  # loading it would be a different error
    rc, _, err = _run(capsys, ["scene", "--model", str(model), "--image", str(scenes),
                               "--out", str(scenes), "--no-progress"])  # fmt: skip
    assert rc == 2
    assert err == [
        f"error: --out {scenes}: is the --image folder; the labels (<scene>.tif) would be written "
        "among the input scenes and could replace them. Choose another --out folder"
    ]


def test_export_of_one_bad_file_is_one_error_line(
    scenes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trunc = scenes / "trunc.tif"
    rc, _, err = _run(capsys, ["export", "--labels", str(trunc), "--out",
                               str(tmp_path / "t.gpkg"), "--no-progress"])  # fmt: skip
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith(f"error: {trunc}: cannot read label raster (trunc.tif, ")
    assert err[0].endswith("re-export it as GeoTIFF/PNG or remove it")
    # a folder whose only label is bad: skipped with a warning, and the error says "it"
    one = tmp_path / "one"
    one.mkdir()
    (one / "trunc.tif").write_bytes(trunc.read_bytes())
    rc, _, err = _run(capsys, ["export", "--labels", str(one), "--out", str(tmp_path / "t.gpkg"),
                               "--no-progress"])  # fmt: skip
    assert rc == 2 and err[0].startswith(f"warning: skipping {one / 'trunc.tif'}: ")
    assert err[1].startswith(f"error: {one}: nothing produced: the only label could not be used")
    assert err[1].endswith("; fix or remove it and re-run")


@pytest.fixture
def runs(tmp_path: Path) -> list[Path]:
    out = []
    for seed in (0, 1):
        r = tmp_path / f"seed{seed}"
        r.mkdir()
        (r / "results.json").write_text('{"table1": []}')
        (r / "results.md").write_text("# seed results\n")
        out.append(r)
    return out


def test_experiment_summary_refuses_a_file_of_a_run_folder(
    runs: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    target = runs[0] / "results.md"
    rc, _, err = _run(capsys, ["experiment-summary", *map(str, runs), "--out", str(target)])
    assert rc == 2
    assert err == [
        f"error: --out {target}: is inside the experiment folder {runs[0]}, whose files "
        "(results.md, report.html, ...) the experiment writes; choose a path outside the run "
        "folders"
    ]
    assert target.read_text() == "# seed results\n"


def test_experiment_summary_refuses_a_non_markdown_file(
    runs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "seeds.json"
    rc, _, err = _run(capsys, ["experiment-summary", *map(str, runs), "--out", str(target)])
    assert rc == 2
    assert err == [
        f"error: --out {target}: the summary is a Markdown file; give a .md file name "
        "(e.g. seeds.md)"
    ]
    assert not target.exists()


def _commands() -> list[tuple[str, object]]:
    root = typer.main.get_command(app)
    found = []
    for name, cmd in root.commands.items():  # type: ignore[attr-defined]
        subs = getattr(cmd, "commands", None)
        found += [(f"{name} {n}", c) for n, c in subs.items()] if subs else [(name, cmd)]
    return found


def test_every_option_has_help_and_every_command_a_one_sentence_description() -> None:
    missing = [
        f"{name} {p.opts[0]}"
        for name, cmd in _commands()
        for p in cmd.params  # type: ignore[attr-defined]
        if p.param_type_name == "option" and not (p.help or "").strip()
    ]
    assert missing == []
    for name, cmd in _commands():
        first = (cmd.help or "").strip().split("\n\n")[0]  # type: ignore[attr-defined]
        assert "\n" not in first and first.endswith("."), (name, first)


def test_cv_and_train_share_the_training_option_texts() -> None:
    from sam2elnet.cli.shared_options import TRAIN_HELP

    cmds = dict(_commands())
    for flag, key in (("--epochs", "epochs"), ("--lr", "lr"), ("--aug-band-jitter",
                                                                "aug_band_jitter")):  # fmt: skip
        for name in ("train", "cv"):
            opt = next(p for p in cmds[name].params if flag in p.opts)  # type: ignore[attr-defined]
            assert opt.help == TRAIN_HELP[key]
    assert TRAIN_HELP["epochs"] == (
        "Passes over the training images: a number (at least 1), or auto (default): enough for "
        "about 1,200 optimiser updates, 10-300 epochs, said in the log before training."
    )


def _option(cmd: object, flag: str) -> object:
    return next(p for p in cmd.params if flag in p.opts)  # type: ignore[attr-defined]


def test_line_width_options_read_the_same_in_evaluate_enhance_and_scene() -> None:
    """One declaration (cli.shared_options): the same help, default and range everywhere."""
    from sam2elnet.options import EvaluateOptions, FolderJobOptions, SceneOptions

    cmds = dict(_commands())
    for flag in ("--line-width", "--line-width-px"):
        helps = {name: _option(cmds[name], flag).help for name in ("evaluate", "enhance", "scene")}
        assert len(set(helps.values())) == 1, helps
    assert "(0 < W <= 100000)" in _option(cmds["scene"], "--line-width").help
    limits = {
        m.__name__: [str(x) for x in m.model_fields["line_width"].metadata]
        for m in (EvaluateOptions, FolderJobOptions, SceneOptions)
    }
    assert len({tuple(v) for v in limits.values()}) == 1, limits


def test_a_bad_value_of_an_option_with_an_auto_choice_names_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`elnet demo --size huge` (a size or ``auto``: a union of two Literals) named pydantic's
    union member as the flag: ``invalid value for --literal['micro','tiny',...]: 'huge' (input
    should be ...)`` without ``auto``; now the flag and every choice, nothing written."""
    out = tmp_path / "d"
    rc, _, err = _run(capsys, ["demo", "--size", "huge", "--out", str(out), "--no-progress"])
    assert rc == 2
    assert err == [
        "error: invalid value for --size: 'huge' "
        "(choose micro | tiny | small | base_plus | large | auto)"
    ], err
    assert not out.exists()
