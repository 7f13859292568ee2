"""The modality of a dataset (sam2elnet.data.modality): stated facts first, then the pixels; grey
images do not tell (SAR vs panchromatic optical) and training says so and names --modality.

Review finding: SOS SAR JPEGs copied into a flat images/ + masks/ folder were read as optical
without a word (per-image stretch, 3 bands, category "foreground", the model recording optical)."""

from __future__ import annotations

import json
import os

os.environ.setdefault("SAM2ELNET_THREADS", "1")

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers_data import write_tif

from sam2elnet.data.layouts import discover
from sam2elnet.data.modality import decide_modality, image_evidence, with_modality


def _tif(path: Path, data: np.ndarray, names: tuple[str, ...] | None = None) -> Path:
    return write_tif(path, data, georef=False, descriptions=names)  # no georeference


def _speckle(rng: np.random.Generator, size: int = 32) -> np.ndarray:
    return (rng.gamma(4.0, 20.0, (size, size))).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    "case, expect",
    [
        ("grey_png", (None, "grey (1 band)")),
        ("grey_as_rgb_jpeg", (None, "grey stored as 3 identical bands")),
        ("rgb_png", ("optical", "3 differing bands (colour / multispectral)")),
        ("float_db_tif", ("sar", "float values in dB (negative median)")),
        ("float_linear_tif", (None, "grey (1 band)")),
        ("dual_pol_named_tif", ("sar", "radar band names (VV, VH)")),
        ("snap_sigma0_tif", ("sar", "radar band names (Sigma0_VV_db)")),
        ("dual_pol_unnamed_tif", (None, "2 bands")),
        ("uint16_4band_tif", ("optical", "4 differing bands (colour / multispectral)")),
    ],
)
def test_image_evidence(tmp_path: Path, case: str, expect: tuple[str | None, str]) -> None:
    rng = np.random.default_rng(0)
    g = _speckle(rng)
    p = tmp_path / case
    if case == "grey_png":
        cv2.imwrite(str(p := p.with_suffix(".png")), g)
    elif case == "grey_as_rgb_jpeg":  # as the SOS images: JPEG noise may differ by a grey level
        cv2.imwrite(str(p := p.with_suffix(".jpg")), np.dstack([g, g, g]))
    elif case == "rgb_png":
        cv2.imwrite(str(p := p.with_suffix(".png")), np.dstack([g, np.roll(g, 3, 0), g // 2]))
    elif case == "float_db_tif":
        _tif(p := p.with_suffix(".tif"), rng.normal(-18, 4, (1, 32, 32)).astype(np.float32))
    elif case == "float_linear_tif":
        _tif(p := p.with_suffix(".tif"), rng.gamma(1.0, 0.05, (1, 32, 32)).astype(np.float32))
    elif case == "dual_pol_named_tif":
        data = rng.integers(0, 3000, (2, 32, 32)).astype(np.uint16)
        _tif(p := p.with_suffix(".tif"), data, ("VV", "VH"))
    elif case == "snap_sigma0_tif":
        data = rng.normal(5, 1, (1, 32, 32)).astype(np.float32)  # positive: only the name tells
        _tif(p := p.with_suffix(".tif"), data, ("Sigma0_VV_db",))
    elif case == "dual_pol_unnamed_tif":
        _tif(p := p.with_suffix(".tif"), rng.integers(0, 3000, (2, 32, 32)).astype(np.uint16))
    elif case == "uint16_4band_tif":
        _tif(p := p.with_suffix(".tif"), rng.integers(0, 5000, (4, 32, 32)).astype(np.uint16))
    assert image_evidence(p) == expect


def test_band_names_that_merely_contain_hh_are_not_radar(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    data = rng.integers(0, 255, (1, 16, 16)).astype(np.uint8)
    p = _tif(tmp_path / "x.tif", data, ("Ahh-dark",))
    assert image_evidence(p) == (None, "grey (1 band)")


def _flat(root: Path, n: int, kind: str, meta: dict | None = None) -> Path:
    rng = np.random.default_rng(2)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        g = _speckle(rng)
        img = np.dstack([g, g, g]) if kind == "grey" else np.dstack([g, g // 2, np.roll(g, 2, 1)])
        cv2.imwrite(str(root / "images" / f"{i}.jpg"), img)
        m = np.zeros_like(g)
        m[8:20, 5:25] = 255
        cv2.imwrite(str(root / "masks" / f"{i}.png"), m)
    if meta is not None:
        (root / "dataset.json").write_text(json.dumps(meta), encoding="utf-8")
    return root


def test_grey_flat_folder_is_undecided_and_the_line_names_the_option(tmp_path: Path) -> None:
    d = decide_modality(discover(_flat(tmp_path / "d", 3, "grey")))
    assert (d.modality, d.source, d.undecided) == ("optical", "undecided", True)
    assert d.reason == "3 of 3 images looked at: grey stored as 3 identical bands"
    line = d.line()
    assert line.startswith("modality: optical assumed (3 of 3 images looked at")
    assert "--modality sar" in line and '{"modality": "sar"}' in line and "dataset.json" in line


def test_colour_flat_folder_is_optical_from_its_pixels(tmp_path: Path) -> None:
    index, d = with_modality(discover(_flat(tmp_path / "d", 3, "colour")))
    assert (index.modality, index.modality_source, d.undecided) == ("optical", "images", False)
    assert d.line() == (
        "modality: optical (3 of 3 images looked at: 3 differing bands (colour / multispectral); "
        "--modality sar|optical overrides)"
    )


@pytest.mark.parametrize(
    "meta, given, expect",
    [
        ({"modality": "sar"}, None, ("sar", "dataset.json", "dataset.json modality 'sar'")),
        (None, "sar", ("sar", "given", "given: --modality sar")),
        ({"modality": "sar"}, "optical", ("optical", "given", "given: --modality optical")),
    ],
)
def test_stated_modality_wins_over_the_pixels(
    tmp_path: Path, meta: dict | None, given: str | None, expect: tuple[str, str, str]
) -> None:
    kind = "colour" if given == "sar" else "grey"  # the pixels would say otherwise or nothing
    index = discover(_flat(tmp_path / "d", 2, kind, meta), modality=given)  # type: ignore[arg-type]
    d = decide_modality(index)
    assert (d.modality, d.source, d.reason) == expect
    assert not d.undecided


def test_unknown_modality_is_a_data_error(tmp_path: Path) -> None:
    from sam2elnet.errors import DataError

    with pytest.raises(DataError, match="unknown modality 'radar'; choose sar or optical"):
        discover(_flat(tmp_path / "d", 1, "grey"), modality="radar")  # type: ignore[arg-type]


def _sos_flat(shared_data: Path, dest: Path, n: int = 6) -> Path:
    """The first n sos-dev PALSAR pairs copied into images/<id>.jpg + masks/<id>.png."""
    src = shared_data / "sos-dev" / "train" / "palsar"
    if not src.is_dir():
        pytest.skip("sos-dev not present")
    (dest / "images").mkdir(parents=True)
    (dest / "masks").mkdir()
    for sat in sorted(src.glob("*_sat.jpg"))[:n]:
        key = sat.name[: -len("_sat.jpg")]
        shutil.copy(sat, dest / "images" / f"{key}.jpg")
        shutil.copy(src / f"{key}_mask.png", dest / "masks" / f"{key}.png")
    return dest


def _cfg(data: Path, out: Path, **kw: object):  # noqa: ANN202
    from sam2elnet.config import TrainConfig

    return TrainConfig(
        data=data, out=out, size="micro", epochs=1, batch_size=2, image_size=64,
        val_fraction=0.3, progress=False, seed=0, fit_quality=False, **kw,
    )  # fmt: skip


def test_sos_jpegs_in_a_flat_folder_warn_and_read_as_sar_when_told(
    shared_data: Path, tmp_path: Path
) -> None:
    from sam2elnet.engine.train_data import prepare_data

    flat = _sos_flat(shared_data, tmp_path / "flat")
    auto = prepare_data(_cfg(flat, tmp_path / "a"))
    assert auto.modality == "optical" and not auto.norm.sar and auto.in_bands == 3
    assert auto.warnings[0].startswith(
        "modality: optical assumed (6 of 6 images looked at: grey stored as 3 identical bands"
    )
    assert "--modality sar" in auto.warnings[0]
    told = prepare_data(_cfg(flat, tmp_path / "b", modality="sar"))
    assert told.modality == "sar" and told.norm.sar and told.norm.method == "fixed"
    assert told.in_bands == 1 and told.domain.reason == "SAR data"
    assert "modality: sar (given: --modality sar)" in told.notes and not told.warnings
    # the dataset's own layout reads the same files the same way
    sos = tmp_path / "sos" / "train" / "palsar"
    sos.mkdir(parents=True)
    for p in (flat / "images").iterdir():
        shutil.copy(p, sos / f"{p.stem}_sat.jpg")
        shutil.copy(flat / "masks" / f"{p.stem}.png", sos / f"{p.stem}_mask.png")
    own = prepare_data(_cfg(tmp_path / "sos", tmp_path / "c"))
    assert own.norm == told.norm and own.in_bands == 1
    assert "modality: sar (SOS layout; --modality sar|optical overrides)" in own.notes


def test_cli_train_modality_sar_records_oil_spill(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sam2elnet.cli import main
    from sam2elnet.model.io import read_model_file

    flat = _sos_flat(shared_data, tmp_path / "flat", n=4)
    run = tmp_path / "run"
    args = ["train", "--data", str(flat), "--out", str(run), "--size", "micro", "--epochs", "1",
            "--image-size", "64", "--batch-size", "2", "--no-quality", "--no-progress"]  # fmt: skip
    assert main([*args, "--modality", "radar"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("error: invalid value for --modality: 'radar'")
        and len(err.strip().splitlines()) == 1
    ), err
    assert not run.exists()
    assert main([*args, "--modality", "sar"]) == 0
    out = capsys.readouterr().out
    assert "modality: sar (given: --modality sar)" in out
    assert "domain: other (SAR data; --domain roads|other overrides)" in out
    train = read_model_file(run / "model.pt")["extra"]["train"]
    assert (train["modality"], train["domain"]) == ("sar", "other")
    ann = tmp_path / "ann"
    assert main(["annotate", "--model", str(run / "model.pt"), "--images", str(flat / "images"),
                 "--out", str(ann), "--no-progress"]) == 0  # fmt: skip
    summary = json.loads((ann / "summary.json").read_text(encoding="utf-8"))
    assert summary["domain"]["category"] == "oil spill"


def test_stated_modality_rules_have_one_public_home(tmp_path: Path) -> None:
    """data.dataset_meta.layout_modality / read_dataset_meta: the rules discover() and
    folder_modality() share (given, layout, dataset.json; else optical, "default")."""
    from sam2elnet.data.dataset_meta import layout_modality, read_dataset_meta
    from sam2elnet.errors import DataError

    assert layout_modality("sos", {}, None) == ("sar", "layout", "SOS layout")
    assert layout_modality("chn6", {"modality": "sar"}, "auto")[:2] == ("optical", "layout")
    assert layout_modality("sos", {}, "optical") == (
        "optical",
        "given",
        "given: --modality optical",
    )
    said = ("sar", "dataset.json", "dataset.json modality 'sar'")
    assert layout_modality("generic", {"modality": "sar"}, None) == said
    # a fold folder of elnet cv: the user gave no dataset.json ("dataset.json modality
    # 'optical'" in every fold's log of roads-dev made them look for one)
    cv = {"modality": "optical", "cv": {"data": "roads-dev", "domain": "roads"}}
    assert layout_modality("generic", cv, None) == (
        "optical",
        "dataset.json",
        "decided once by elnet cv for every fold",
    )
    assert layout_modality("generic", {}, None)[:2] == ("optical", "default")
    with pytest.raises(DataError, match="unknown modality 'radar'"):
        layout_modality("generic", {}, "radar")
    assert read_dataset_meta(tmp_path) == {}
    (tmp_path / "dataset.json").write_text('["not", "an", "object"]')
    assert read_dataset_meta(tmp_path) == {}
    (tmp_path / "dataset.json").write_text('{"modality": "sar", "layout": "generic"}')
    assert read_dataset_meta(tmp_path) == {"modality": "sar", "layout": "generic"}
    (tmp_path / "dataset.json").write_text("{broken")
    with pytest.raises(DataError, match="cannot parse dataset.json") as err:
        read_dataset_meta(tmp_path)
    assert "dataset.json" in str(err.value)


def test_a_dataset_json_that_is_not_utf8_is_a_data_error(tmp_path: Path) -> None:
    """A dataset.json saved as UTF-16 (a Windows editor): one DataError naming the file, not a
    UnicodeDecodeError traceback."""
    from sam2elnet.data.dataset_meta import read_dataset_meta
    from sam2elnet.errors import DataError

    (tmp_path / "dataset.json").write_text('{"modality": "sar"}', encoding="utf-16")
    with pytest.raises(DataError, match="cannot parse dataset.json") as err:
        read_dataset_meta(tmp_path)
    assert "dataset.json" in str(err.value)


def test_band_selection_reads_the_selected_bands_own_names(tmp_path: Path) -> None:
    """--bands picks names by file band number, also when some bands have no description: a
    file of an unnamed optical band and a 'VV' band, judged on band 1 only, is not radar by
    name (before, the unnamed band was dropped first, so band 1 was read as 'VV')."""
    rng = np.random.default_rng(3)
    p = _tif(tmp_path / "mixed.tif", rng.integers(0, 255, (2, 16, 16)).astype(np.uint8), ("", "VV"))
    assert image_evidence(p, bands=[1]) == (None, "grey (1 band)")
    assert image_evidence(p, bands=[2]) == ("sar", "radar band names (VV)")
