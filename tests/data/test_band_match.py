"""The band-count rule (data.band_match): one band into a model of several different bands (a
Sentinel-1 VV+VH model) was repeated silently, so the model saw VV as VH; now it is an error
naming the file, the model's bands and --bands, on every path, and --bands 1,1 says it knowingly.
A grey image into a 3-band optical (RGB) model is still repeated to R, G, B."""

from __future__ import annotations

import os

os.environ.setdefault("SAM2ELNET_THREADS", "1")

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from helpers_data import write_tif

from sam2elnet.data.band_match import band_descriptions, band_layout
from sam2elnet.errors import BandCountError

S = 32


def _vvvh(path: Path, seed: int, names=("VV", "VH")) -> Path:
    """(2, S, S) uint16 DNs with band descriptions (VH darker than VV, as over the sea)."""
    rng = np.random.default_rng(seed)
    vv = rng.gamma(4.0, 40.0, (S, S))
    data = np.stack([vv, vv * 0.3]).astype(np.uint16)[: len(names)]
    write_tif(path, data)
    with rasterio.open(path, "r+") as ds:
        for i, n in enumerate(names, 1):
            ds.set_band_description(i, n)
    return path


def test_rule_repeats_grey_only_into_an_optical_colour_model():
    never = lambda: pytest.fail("identical() must not be asked")  # noqa: E731
    assert band_layout(1, 3, never, "g.png") == "repeat"  # grey into an RGB road model
    assert band_layout(3, 3, never, "x", sar=True) == "keep"
    assert band_layout(3, 1, lambda: True, "rgb.png", sar=True) == "first"  # grey as RGB
    for bands, sar in ((2, True), (2, False), (4, False), (3, True)):
        with pytest.raises(BandCountError) as info:
            band_layout(1, bands, never, "vv.tif", sar=sar)
        msg = str(info.value)
        assert msg.startswith("vv.tif: unsupported band count: image has 1 band but the model")
        assert f"--bands {','.join(['1'] * bands)}" in msg and "gdalbuildvrt -separate" in msg
    with pytest.raises(BandCountError, match=r"trained on 2 bands \(VV, VH\); repeating"):
        band_layout(1, 2, never, "vv.tif", sar=True, names=["VV", "VH"])
    with pytest.raises(BandCountError, match=r"trained for 3 \(file bands 4,3,2\); choose 3"):
        band_layout(4, 3, never, "s2.tif", select=[4, 3, 2])
    with pytest.raises(BandCountError, match="image has 2 bands but the model was trained for 1"):
        band_layout(2, 1, lambda: False, "two.tif")
    # bands chosen with --bands (new-user GIS trial: "image has 2 bands" of a 6-band image)
    with pytest.raises(BandCountError) as info:
        band_layout(2, 3, never, "six.tif", chosen=[1, 2], file_bands=6)
    assert str(info.value) == (
        "six.tif: unsupported band count: 2 bands chosen with --bands 1,2 but the model was "
        "trained for 3; give 3 band numbers of the file's 6 to --bands (e.g. --bands 1,2,3)"
    )
    # was: "e.g. --bands 1,2,3" of a 2-band file (no band 3); the example names its bands only
    with pytest.raises(BandCountError) as info:
        band_layout(1, 3, never, "two.tif", chosen=[2], file_bands=2, sar=True)
    assert "--bands 2,2,2" in str(info.value)  # one band: the repeat advice, as before
    with pytest.raises(BandCountError) as info:
        band_layout(2, 4, never, "two.tif", chosen=[2, 1], file_bands=2)
    assert str(info.value).endswith(
        "give 4 band numbers of the file's 2 to --bands (e.g. --bands 1,2,2,2)"
    ), info.value
    with pytest.raises(BandCountError) as info:  # the file's band count not known: no example
        band_layout(2, 4, never, "two.tif", chosen=[2, 1])
    assert str(info.value).endswith("give 4 band numbers of the file's bands to --bands")
    with pytest.raises(BandCountError) as info:
        band_layout(1, 2, never, "s1.tif", sar=True, names=["VV", "VH"], chosen=[2])
    msg = str(info.value)
    assert msg.startswith("s1.tif: unsupported band count: 1 band chosen with --bands 2 but the "
                          "model was trained on 2 bands (VV, VH); repeating"), msg  # fmt: skip
    assert msg.endswith("repeat band 2 knowingly with --bands 2,2"), msg


def test_sar_stack_is_not_called_optical_and_the_example_names_existing_bands():
    """Was: any 3-band stack into a 2-band SAR model (VV, VH, ratio; 3 dates of VV) was "an
    optical (colour) image", and a 2-band image into a 3-band model was told "--bands 1,2,3"
    (no band 3). Now only an 8-bit RGB is called optical, and the example uses bands 1..count."""
    never = lambda: pytest.fail("identical() must not be asked")  # noqa: E731
    with pytest.raises(BandCountError) as info:
        band_layout(3, 2, never, "vv_vh_ratio.tif", sar=True, names=["VV", "VH"])
    assert str(info.value) == (
        "vv_vh_ratio.tif: unsupported band count: image has 3 bands but the model was trained "
        "for 2 (VV, VH); choose 2 bands with --bands (e.g. --bands 1,2) or train a model on "
        "this kind of image"
    )
    with pytest.raises(BandCountError, match="3 different bands look like an optical"):
        band_layout(3, 2, never, "photo.tif", sar=True, colour=True)
    with pytest.raises(BandCountError) as info:
        band_layout(2, 3, never, "vvvh.tif")
    assert str(info.value).endswith("(e.g. --bands 1,2,2) or train a model on this kind of image")


def test_training_records_band_names(tmp_path):
    """prepare_data stores the training images' band descriptions (VV, VH) in the model's
    normalisation, so the band-count error can name them; files without descriptions give None."""
    from sam2elnet.config import TrainConfig
    from sam2elnet.engine.train_data import prepare_data

    for names, want in ((("VV", "VH"), ["VV", "VH"]), (("", ""), None)):
        root = tmp_path / f"d{len(names[0])}"
        (root / "images").mkdir(parents=True)
        (root / "dataset.json").write_text(json.dumps({"modality": "sar"}))
        for i in range(3):
            _vvvh(root / "images" / f"s{i}.tif", i, names)
            mask = np.zeros((1, S, S), np.uint8)
            mask[:, 8:20, 10:30] = 255
            write_tif(root / "masks" / f"s{i}.tif", mask)
        cfg = TrainConfig(data=root, out=tmp_path / "run", size="micro", epochs=1,
                          val_fraction=0.0, progress=False)  # fmt: skip
        data = prepare_data(cfg)
        assert data.in_bands == 2 and data.norm.band_names == want
    assert band_descriptions(root / "images" / "s0.tif") == []
    assert band_descriptions(tmp_path / "d2" / "images" / "s0.tif", [2]) == ["VH"]


@pytest.fixture(scope="module")
def vvvh_model(tmp_path_factory) -> Path:
    """A micro VV+VH model with the normalisation `elnet train` records (band names included)."""
    from sam2elnet.data.norm_fit import fit_normalization
    from sam2elnet.model import ModelConfig, build_model, save_model

    root = tmp_path_factory.mktemp("vvvh")
    train = [_vvvh(root / "t" / f"t{i}.tif", 10 + i) for i in range(3)]
    norm = fit_normalization(train, "sar").model_copy(update={"band_names": ["VV", "VH"]})
    net = build_model(ModelConfig(size="micro", in_bands=2, normalization=norm.model_dump()))
    return save_model(net, root / "m.pt", extra={"normalization": norm.model_dump(mode="json")})


def test_python_api_refuses_one_band_and_bands_1_1_repeats(vvvh_model, tmp_path):
    """Predictor.read (the API under annotate / enhance / serve) and the scene path give the
    same error for a VV-only file; set_bands([1, 1]) feeds band 1 to both model bands."""
    from sam2elnet.engine.predictor import Predictor
    from sam2elnet.engine.scene_norm import make_scene_normalizer

    vv = _vvvh(tmp_path / "vv.tif", 5, names=("VV",))
    pred = Predictor.from_file(vvvh_model, precision="32")
    with pytest.raises(BandCountError) as whole:
        pred.read(vv)
    msg = str(whole.value)
    assert msg.startswith(f"{vv}: unsupported band count: image has 1 band")
    assert "trained on 2 bands (VV, VH)" in msg and "--bands 1,1" in msg
    with rasterio.open(vv) as src, pytest.raises(BandCountError) as scene:
        make_scene_normalizer(src, pred)
    assert str(scene.value).split(": ", 1)[1] == msg.split(": ", 1)[1]
    img, x, _ = pred.set_bands([1, 1]).read(vv)  # each copy scaled by that band's statistics
    assert x.shape == (2, S, S) and np.array_equal(img.data[0], img.data[1])
    with rasterio.open(vv) as src:
        norm = make_scene_normalizer(src, pred)
        assert norm.bands == [1, 1] and norm.repeat == 0


def test_cli_enhance_one_band_into_vvvh_model(vvvh_model, tmp_path, capsys):
    """`elnet enhance` of a VV-only image with a VV+VH model: one error line (file, the model's
    bands, --bands), exit 2, nothing written; with --bands 1,1 it runs."""
    from sam2elnet.cli import main

    vv = _vvvh(tmp_path / "img" / "vv.tif", 6, names=("VV",))
    coarse = np.zeros((1, S, S), np.uint8)
    coarse[:, 8:20, 10:30] = 255
    lab = write_tif(tmp_path / "coarse" / "vv.tif", coarse)
    args = ["enhance", "--model", str(vvvh_model), "--images", str(vv), "--labels", str(lab),
            "--out", str(tmp_path / "out"), "--no-progress"]  # fmt: skip
    assert main(args) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error")]
    assert len(err) == 1 and err[0].startswith(f"error: {vv}: unsupported band count")
    assert "(VV, VH)" in err[0] and "--bands 1,1" in err[0]
    assert not (tmp_path / "out").exists()
    assert main([*args, "--bands", "1,1"]) == 0
    assert (tmp_path / "out" / "labels" / "vv.tif").is_file()
