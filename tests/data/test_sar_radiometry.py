"""SAR radiometry: uint8, uint16 DN, float32 linear sigma0 and float32 dB versions of one scene reach
the model alike; the scaling is chosen from the training data, stored in the model file, applied
identically at inference, and an input far from the training range gives a warning."""

from __future__ import annotations

import os

os.environ.setdefault("SAM2ELNET_THREADS", "1")

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_data import write_tif

from sam2elnet.data.input_range import check_input_range
from sam2elnet.data.norm_fit import fit_normalization, load_norm_stats, looks_like_db
from sam2elnet.data.normalize import NormalizationConfig, normalize, to_db
from sam2elnet.data.raster import read_image
from sam2elnet.errors import DataError

S = 48
LO_DB, HI_DB = -27.0, -2.0


def db_scene(i: int) -> tuple[np.ndarray, np.ndarray]:
    """sigma0 in dB (-27..-2 like Sentinel-1 VV over sea) with a dark slick; and its mask."""
    rng = np.random.default_rng(i)
    db = rng.uniform(-14.0, -6.0, (S, S))
    m = np.zeros((S, S), bool)
    m[8 + i : 24 + i, 6:40] = True
    db[m] -= 12.0
    db[0, 0], db[0, 1] = LO_DB, HI_DB  # same extremes in every scene
    return db.astype(np.float32), m


def encode(db: np.ndarray, kind: str) -> np.ndarray:
    """The same scene in four encodings, each a monotone function of dB."""
    if kind == "db":
        return db
    lin = np.power(10.0, db / 10.0)
    if kind == "linear":
        return lin.astype(np.float32)
    if kind == "dn":  # amplitude DN, as in Sentinel-1 GRD
        return np.round(np.sqrt(lin) * 2550.0).astype(np.uint16)
    # uint8: the display stretch of dB to 0..255 (as in the SOS JPEGs)
    return np.round((db - LO_DB) / (HI_DB - LO_DB) * 255.0).clip(0, 255).astype(np.uint8)


def write_set(root: Path, kind: str, n: int = 4) -> list[Path]:
    return [
        write_tif(root / kind / f"s{i}.tif", encode(db_scene(i)[0], kind)[None]) for i in range(n)
    ]


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("sar")
    return {k: write_set(root, k) for k in ("u8", "dn", "linear", "db")}


def test_dn_range_matches_the_issue(sets):
    dn = read_image(sets["dn"][0], sar=True).data
    # 114..2026: the dtype-range scaling would give the model at most 0.031 (the reported bug)
    assert dn.dtype == np.uint16 and dn.min() == 114 and dn.max() == 2026
    assert normalize(dn, NormalizationConfig.for_modality("sar")).max() < 0.032


def test_fit_normalization_chooses_by_data(sets):
    u8 = fit_normalization(sets["u8"], "sar")
    assert (u8.method, u8.to_db, u8.data_dtype) == ("fixed", False, "uint8")
    dn = fit_normalization(sets["dn"], "sar")
    assert (dn.method, dn.to_db, dn.data_dtype) == ("stats", True, "uint16")
    lin = fit_normalization(sets["linear"], "sar")
    assert (lin.method, lin.to_db, lin.data_dtype) == ("stats", True, "float32")
    db = fit_normalization(sets["db"], "sar")
    assert (db.method, db.to_db, db.data_dtype) == ("stats", False, "float32")
    # robust 1..99 % range of the dB training data, in dB
    assert -27.0 <= db.low[0] < -18.0 and -8.0 < db.high[0] <= -2.0
    # linear power -> dB: exactly the dB statistics (10*log10 of 10**(dB/10))
    assert lin.low[0] == pytest.approx(db.low[0], abs=1e-3)
    assert lin.high[0] == pytest.approx(db.high[0], abs=1e-3)
    # amplitude DN -> 10*log10(DN) = dB/2 + const: the same range up to that affine map
    assert (dn.high[0] - dn.low[0]) == pytest.approx((db.high[0] - db.low[0]) / 2, abs=0.05)
    assert looks_like_db(read_image(sets["db"][0]).data) and not looks_like_db(
        read_image(sets["linear"][0]).data
    )


def test_four_encodings_give_the_same_model_input_and_prediction(sets):
    from sam2elnet.model import ModelConfig, build_model

    xs = {}
    for kind, paths in sets.items():
        cfg = fit_normalization(paths, "sar")
        x = normalize(read_image(paths[1], sar=True), cfg)
        assert x.dtype == np.float32 and x.shape == (1, S, S)
        xs[kind] = x
    # useful dynamic range for every encoding (was <= 0.031 for DN and 0 for dB)
    for kind, x in xs.items():
        assert x.max() > 0.95 and x.std() > 0.1, kind
    # the uint8 encoding is the stretch from the absolute range -27..-2 dB, the others from the
    # data's 1..99 % range: map uint8 to the same scale (a monotone, affine map) before comparing
    ref = xs["db"]
    assert np.abs(xs["linear"] - ref).max() < 1e-4
    assert np.abs(xs["dn"] - ref).max() < 0.02  # DN rounding
    cfg_db = fit_normalization(sets["db"], "sar")
    lo, hi = cfg_db.low[0], cfg_db.high[0]
    u8_db = xs["u8"] * (HI_DB - LO_DB) + LO_DB
    u8_as_db = np.clip((u8_db - lo) / (hi - lo), 0, 1)
    assert np.abs(u8_as_db - ref).max() < 0.05  # 8-bit quantisation: 25 dB / 255 steps
    torch.manual_seed(0)
    model = build_model(ModelConfig(size="micro", in_bands=1)).eval()
    with torch.no_grad():
        probs = {
            k: torch.sigmoid(model(torch.from_numpy(v[None])).logits)[0, 0].numpy()
            for k, v in {"db": ref, "linear": xs["linear"], "dn": xs["dn"], "u8": u8_as_db}.items()
        }
    for k in ("linear", "dn", "u8"):
        assert np.abs(probs[k] - probs["db"]).max() < 0.02, k


def test_range_check(sets):
    dn_cfg = fit_normalization(sets["dn"], "sar")
    u8_cfg = fit_normalization(sets["u8"], "sar")
    db_img = read_image(sets["db"][0]).data
    dn_img = read_image(sets["dn"][0]).data
    assert check_input_range(dn_img.reshape(1, -1), dn_img.dtype, dn_cfg) is None
    msg = check_input_range(db_img.reshape(1, -1), db_img.dtype, dn_cfg)
    assert msg is not None and "look like dB already" in msg
    msg = check_input_range(dn_img.reshape(1, -1), dn_img.dtype, u8_cfg)
    assert msg is not None and "far from the model's training range" in msg and "uint8" in msg
    # float dB (-27..-2) into a model of 8-bit display images (fixed 0..255): the widened range
    # reached below 0 (-120 for 9..251) and took every dB value as near; now it is far
    sos_like = NormalizationConfig.for_modality("sar").model_copy(
        update={"data_low": [9.0], "data_high": [251.0], "data_dtype": "uint8"}
    )
    msg = check_input_range(db_img.reshape(1, -1), db_img.dtype, sos_like)
    assert msg is not None and "far from the model's training range" in msg
    assert "(float32) vs 9..251 (uint8); only 0% of the pixels" in msg
    u8_img = (np.clip(db_img, -27, -2) + 27) * 10
    assert check_input_range(u8_img.reshape(1, -1), np.uint8, sos_like) is None
    # per-image percentile models adapt to any range: no warning
    opt = NormalizationConfig.for_modality("optical").model_copy(
        update={"data_low": [0.0], "data_high": [1.0]}
    )
    assert check_input_range(dn_img.reshape(1, -1), dn_img.dtype, opt) is None


def test_to_db_formula():
    assert to_db(np.array([1.0, 0.1, 0.01, 0.0]), 1e-6).tolist() == pytest.approx(
        [0.0, -10.0, -20.0, -60.0]
    )


def _train_cli(data: Path, out: Path, *extra: str) -> int:
    from sam2elnet.cli import main

    return main(
        [
            "train", "--data", str(data), "--out", str(out), "--weights", "none", "--size", "micro",
            "--epochs", "1", "--image-size", "32", "--batch-size", "2", "--no-progress",
            "--no-quality", *extra,
        ]
    )  # fmt: skip


def _sar_dataset(root: Path, kind: str, n: int = 4) -> Path:
    for i in range(n):
        db, m = db_scene(i)
        write_tif(root / "images" / f"s{i}.tif", encode(db, kind)[None])
        write_tif(root / "masks" / f"s{i}.tif", (m * 255).astype(np.uint8)[None])
    (root / "dataset.json").write_text(json.dumps({"modality": "sar"}))
    return root


def test_train_records_normalisation_and_inference_applies_it(tmp_path, capsys, caplog):
    from sam2elnet.engine.predictor import Predictor
    from sam2elnet.model import load_model

    data = _sar_dataset(tmp_path / "dn", "dn")
    assert _train_cli(data, tmp_path / "run") == 0
    out = capsys.readouterr().out
    assert "normalisation: uint16 SAR, linear -> dB (10*log10), dataset p1..p99 range" in out
    _, extra = load_model(tmp_path / "run" / "model.pt")
    norm = NormalizationConfig.model_validate(extra["normalization"])
    assert (norm.method, norm.to_db, norm.data_dtype) == ("stats", True, "uint16")
    pred = Predictor.from_file(tmp_path / "run" / "model.pt")
    img, x, _valid = pred.read(data / "images" / "s1.tif")
    assert np.array_equal(x, normalize(img, norm))  # identical to training
    assert x.max() > 0.95
    # a dB image given to the DN model: one clear warning naming the file
    dbf = write_tif(tmp_path / "as_db.tif", encode(db_scene(1)[0], "db")[None])
    with caplog.at_level("WARNING"):
        pred.read(dbf)
    assert "as_db.tif" in caplog.text and "look like dB already" in caplog.text


def test_norm_stats_from_elnet_stats(tmp_path, capsys):
    from sam2elnet.cli import main
    from sam2elnet.model import load_model

    data = _sar_dataset(tmp_path / "lin", "linear")
    assert (
        main(["stats", "--data", str(data), "--no-progress", "--out", str(tmp_path / "s.json")])
        == 0
    )
    out = capsys.readouterr().out
    assert "linear -> dB (10*log10)" in out
    stats = load_norm_stats(tmp_path / "s.json")
    assert stats.to_db and stats.method == "stats"
    assert _train_cli(data, tmp_path / "run", "--norm-stats", str(tmp_path / "s.json")) == 0
    _, extra = load_model(tmp_path / "run" / "model.pt")
    assert NormalizationConfig.model_validate(extra["normalization"]) == stats
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(DataError, match="not a normalisation config"):
        load_norm_stats(tmp_path / "bad.json")
    assert _train_cli(data, tmp_path / "run2", "--norm-stats", str(tmp_path / "bad.json")) == 2
    assert "bad.json" in capsys.readouterr().err


def test_stats_says_what_train_will_use_when_it_is_not_the_statistics(tmp_path, capsys):
    """Trial finding: on sos-dev `elnet stats` printed `normalisation: uint8 SAR, dataset p1..p99
    range 5..250 -> 0..1` while `elnet train` uses a fixed 0..255 scale for 8-bit SAR (docs/data.md
    calls `elnet stats` "what training will do"). The line now says which one train uses; data
    whose training normalisation is these statistics (linear SAR -> dB) get no such line."""
    from sam2elnet.cli import main

    said = "elnet train will use "
    for kind, line in (
        ("u8", "elnet train will use uint8 SAR, fixed 0..255 -> 0..1 (chosen from the data, "
               "docs/data.md); the statistics above are what --out writes for `elnet train "
               "--norm-stats FILE`"),
        ("linear", None),
    ):  # fmt: skip
        data = _sar_dataset(tmp_path / kind, kind)
        assert main(["stats", "--data", str(data), "--no-progress"]) == 0
        out = capsys.readouterr().out.splitlines()
        assert [ln for ln in out if ln.startswith(said)] == ([line] if line else []), out
        assert any(ln.startswith("normalisation: ") and "dataset p1..p99" in ln for ln in out)
