"""Images of another kind than a model's training images (data/input_kind.py): an optical scene
with an untagged zero margin, a dB SAR scene into an optical RGB model, an RGB photo into a SAR
model. Each was predicted without a word before (a roads model: road on 6.6 % of the margin,
52 % of a dB scene)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers_data import write_tif
from helpers_logs import message_blocks

from sam2elnet.data.input_kind import check_modality, check_zero_border, zero_border_share
from sam2elnet.data.norm_fit import fit_normalization

S = 64
BORDER = "are 0 in every band, along the image edge, without a nodata tag"
MODALITY = "a 1-band float image with negative values given to an optical (RGB) model"


def _rgb(seed: int) -> np.ndarray:
    """(3, S, S) uint8 colour image, values 20..230, each band different."""
    return np.random.default_rng(seed).integers(20, 230, (3, S, S)).astype(np.uint8)


def _margin() -> np.ndarray:
    """(S, S) bool: a slanted wedge along the left edge, about 19 % of the image."""
    r, c = np.mgrid[:S, :S]
    return c < 0.38 * (S - r)


def _save(net_bands: int, norm, path: Path) -> str:
    from sam2elnet.model import ModelConfig, build_model, save_model

    cfg = ModelConfig(size="micro", in_bands=net_bands, normalization=norm.model_dump())
    extra = {"normalization": norm.model_dump(mode="json")}
    return str(save_model(build_model(cfg), path, extra=extra))


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, str]:
    """A micro optical RGB model (uint8, percentile stretch, like a roads model) and a micro
    one-band SAR model (uint8)."""
    root = tmp_path_factory.mktemp("kind")
    rgb = [write_tif(root / "rgb" / f"t{i}.tif", _rgb(i)) for i in range(3)]
    sar = [write_tif(root / "sar" / f"t{i}.tif", _rgb(i)[:1]) for i in range(3)]
    opt_norm, sar_norm = fit_normalization(rgb, "optical"), fit_normalization(sar, "sar")
    assert (opt_norm.sar, sar_norm.sar) == (False, True)
    return {
        "optical": _save(3, opt_norm, root / "optical.pt"),
        "sar": _save(1, sar_norm, root / "sar.pt"),
    }


def _run(args: list[str], model: str, out: Path, capsys) -> tuple[int, str]:
    from sam2elnet.cli import main

    out = out / "l.tif" if args[0] == "scene" else out
    rc = main([*args, "--model", model, "--out", str(out), "--no-progress"])
    return rc, capsys.readouterr().err


CMDS = (["annotate", "--images"], ["scene", "--tile", "32", "--overlap", "8", "--image"])


def test_untagged_zero_margin_of_an_optical_image_warns(models, tmp_path, capsys):
    img = _rgb(7)
    img[:, _margin()] = 0
    share = float(_margin().mean())
    assert 0.17 < share < 0.21
    write_tif(tmp_path / "untagged" / "s.tif", img)
    write_tif(tmp_path / "tagged" / "s.tif", img, nodata=0)
    for cmd in CMDS:
        for kind in ("untagged", "tagged"):
            rc, err = _run([*cmd, str(tmp_path / kind / "s.tif")], models["optical"],
                           tmp_path / f"{cmd[0]}_{kind}", capsys)  # fmt: skip
            assert rc == 0, err
            warned = [ln for ln in message_blocks(err) if BORDER in ln]
            if kind == "tagged":
                assert warned == [], err
                continue
            assert len(warned) == 1 and warned[0].startswith("warning: "), err
            assert f"s.tif: {share:.1%} of the pixels" in warned[0]
            cmd_text = warned[0].replace(" \\ ", " ")  # a long command is broken at spaces
            assert f"gdal_edit.py -a_nodata 0 {tmp_path / kind / 's.tif'}" in cmd_text


def test_ordinary_dark_pixels_and_other_models_do_not_warn(models, tmp_path, capsys):
    from sam2elnet.data.normalize import NormalizationConfig

    opt = NormalizationConfig.for_modality("optical")
    dark = _rgb(8)
    dark[:, 20:26, 30:36] = 0  # a shadow that is 0 in every band, inside the image
    dark[:, 0, :5] = 0  # and a few black pixels on the edge
    dark[0, 40:, :20] = 0  # dark water: 0 in one band only
    assert check_zero_border(dark, None, opt) is None
    inland = _rgb(9)
    inland[:, 10:50, 10:50] = 0  # 39 % zeros, but not touching the edge
    assert zero_border_share(inland) == 0.0 and check_zero_border(inland, None, opt) is None
    edge = _rgb(9)
    edge[:, :, :8] = 0  # 12.5 %: a margin
    assert zero_border_share(edge) == pytest.approx(0.125)
    assert zero_border_share(edge, np.broadcast_to(np.arange(S) >= 8, (S, S))) == 0
    # the share, first: the caller (a CLI run, test above) puts the file name before it
    assert check_zero_border(edge, None, opt).startswith(f"12.5% of the pixels {BORDER}")
    # one band, SAR and dB-converting models: not this check's case
    assert check_zero_border(edge[:1], None, opt) is None
    assert check_zero_border(edge, None, NormalizationConfig.for_modality("sar")) is None
    write_tif(tmp_path / "dark" / "s.tif", dark)
    rc, err = _run(["annotate", "--images", str(tmp_path / "dark" / "s.tif")],
                   models["optical"], tmp_path / "a", capsys)  # fmt: skip
    assert rc == 0 and BORDER not in err and "warning" not in err, err


def test_db_sar_scene_into_an_optical_model_warns(models, tmp_path, capsys):
    rng = np.random.default_rng(4)
    db = rng.uniform(-25, 0, (1, S, S)).astype(np.float32)
    db[:, :4, :] = np.nan
    write_tif(tmp_path / "db" / "s.tif", db, nodata=float("nan"))
    for cmd in CMDS:
        rc, err = _run([*cmd, str(tmp_path / "db" / "s.tif")], models["optical"],
                       tmp_path / cmd[0], capsys)  # fmt: skip
        assert rc == 0, err
        warned = [ln for ln in message_blocks(err) if MODALITY in ln]
        assert len(warned) == 1 and "s.tif: " in warned[0], err
        assert "look like SAR backscatter in dB" in warned[0]
        assert "optical 3-band (uint8) images" in warned[0] and "--modality sar" in warned[0]
    # a grey uint8 photo, and float values >= 0, into the RGB model: no modality warning
    opt = fit_normalization([write_tif(tmp_path / "t.tif", _rgb(1))], "optical")
    assert check_modality(_rgb(1)[:1].reshape(1, -1), "uint8", opt, 3) is None
    assert check_modality(np.abs(db).reshape(1, -1), "float32", opt, 3) is None
    # a SAR model and a one-band optical model are not this case
    sar = opt.model_copy(update={"sar": True})
    assert check_modality(db.reshape(1, -1), "float32", sar, 1) is None
    said = check_modality(db.reshape(1, -1), "float32", opt, 3)
    fin = db[np.isfinite(db)]
    assert said.startswith(MODALITY) and "optical 3-band (uint8) images" in said, said
    assert f"Values {fin.min():.3g}..{fin.max():.3g} (float32, median " in said, said


def test_rgb_photo_into_a_sar_model_is_refused_and_sos_grey_is_not(models, tmp_path, capsys):
    photo = write_tif(tmp_path / "photo" / "s.tif", _rgb(5))
    grey = _rgb(6)[:1]
    sos = write_tif(tmp_path / "sos" / "s.tif", np.repeat(grey, 3, axis=0))  # SOS: 3 equal bands
    for cmd in CMDS:
        rc, err = _run([*cmd, str(photo)], models["sar"], tmp_path / f"p_{cmd[0]}", capsys)
        errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
        assert rc == 2 and len(errors) == 1 and "Traceback" not in err, err
        assert "s.tif" in errors[0] and "3 bands but the model was trained for 1" in errors[0]
        assert (
            "trained for 1 band of SAR backscatter; 3 different bands look like an optical"
            in errors[0]
        )
        rc, err = _run([*cmd, str(sos)], models["sar"], tmp_path / f"s_{cmd[0]}", capsys)
        assert rc == 0 and "error" not in err and MODALITY not in err and BORDER not in err, err


COLOUR = "a colour image given to a SAR model"
GREY = "a grey image (3 identical bands) given to a model of colour images"


def test_colour_photo_with_bands_into_a_sar_model_warns(models, tmp_path, capsys):
    """Was: --bands 1 let an RGB photo past the band-count rule into a one-band SAR model,
    labelled without a word. The file's own bands are judged (a bounded sample), not band 1."""
    photo = write_tif(tmp_path / "photo" / "s.tif", _rgb(5))
    sos = write_tif(tmp_path / "sos" / "g.tif", np.repeat(_rgb(6)[:1], 3, axis=0))
    for cmd in CMDS:
        for image, warns in ((photo, True), (sos, False)):
            rc, err = _run([*cmd, str(image), "--bands", "1"], models["sar"],
                           tmp_path / f"{cmd[0]}_{image.parent.name}", capsys)  # fmt: skip
            assert rc == 0, err
            warned = [ln for ln in message_blocks(err) if COLOUR in ln]
            if not warns:
                assert warned == [], err
                continue
            assert len(warned) == 1 and warned[0].startswith(f"warning: {photo}: {COLOUR}"), err
            assert "elnet train --modality optical" in warned[0]


def test_grey_sar_tile_into_an_optical_model_warns(models, tmp_path, capsys):
    """Was: a SOS-like tile (grey stored as 3 identical bands) given to an RGB model was
    stretched and labelled without a word."""
    photo = write_tif(tmp_path / "photo" / "s.tif", _rgb(5))
    sos = write_tif(tmp_path / "sos" / "g.tif", np.repeat(_rgb(6)[:1], 3, axis=0))
    for cmd in CMDS:
        for image, warns in ((sos, True), (photo, False)):
            rc, err = _run([*cmd, str(image)], models["optical"],
                           tmp_path / f"{cmd[0]}_{image.parent.name}", capsys)  # fmt: skip
            assert rc == 0, err
            warned = [ln for ln in message_blocks(err) if GREY in ln]
            if not warns:
                assert warned == [], err
                continue
            assert len(warned) == 1 and warned[0].startswith(f"warning: {sos}: {GREY}"), err
            assert "mean difference 0.00 grey levels" in warned[0]
            assert "elnet train --modality sar" in warned[0]


def test_band_difference_thresholds():
    """The rule's numbers (docs/data.md, measured on sos-dev / roads-dev): identical bands 0,
    bands that differ by 3 grey levels everywhere 3; fewer than 3 bands: no answer."""
    from sam2elnet.data.input_kind import (
        COLOUR_MIN_DIFFERENCE,
        GREY_MAX_DIFFERENCE,
        band_difference,
        check_grey_into_colour,
    )
    from sam2elnet.data.normalize import NormalizationConfig

    g = _rgb(1)[0].reshape(1, -1).astype(np.int16)
    assert band_difference(np.repeat(g, 3, axis=0)) == 0.0
    shifted = np.concatenate([g, g + 3, g + 6]).clip(0, 255).astype(np.uint8)
    assert band_difference(shifted) == pytest.approx((3 + 6 + 3) / 3, abs=0.05)
    assert band_difference(g[:1]) is None and band_difference(np.zeros((3, 0))) is None
    assert GREY_MAX_DIFFERENCE < COLOUR_MIN_DIFFERENCE < 5.24  # the least colourful roads tile
    opt = NormalizationConfig.for_modality("optical").model_copy(
        update={"data_low": [12.0, 20.0, 9.0], "data_high": [230.0, 241.0, 225.0]}
    )  # trained on colour images
    one_off = np.concatenate([g, g, g + 1]).clip(0, 255).astype(np.uint8)  # 0.67: not grey
    assert check_grey_into_colour(one_off, "uint8", opt, 3) is None
    assert check_grey_into_colour(np.repeat(g, 3, 0).astype(np.uint8), "uint8", opt, 3)
    # uint16 / float stacks and one-band models are not this rule's case
    assert check_grey_into_colour(np.repeat(g, 3, 0), "uint16", opt, 3) is None
    assert check_grey_into_colour(np.repeat(g, 3, 0).astype(np.uint8), "uint8", opt, 1) is None
    # a constant image (all black, saturated) is the constant-image rule's case, not grey
    flat = np.full((3, 50), 7, np.uint8)
    assert check_grey_into_colour(flat, "uint8", opt, 3) is None


def test_grey_tile_into_a_model_trained_on_grey_tiles_does_not_warn(tmp_path, capsys):
    """Was: a model trained with the default (optical) modality on SOS-like JPEGs (grey stored
    as 3 identical bands) warned 'a grey image ... given to a model of colour images' on every
    one of its own kind of image. Its recorded per-band training range is one range three
    times, so the rule knows it was trained on grey; an unrecorded range gives no guess."""
    from sam2elnet.data.input_kind import check_grey_into_colour, trained_on_colour
    from sam2elnet.data.normalize import NormalizationConfig

    g = _rgb(2)[0].reshape(1, -1).astype(np.uint8)
    grey = np.repeat(g, 3, axis=0)
    base = NormalizationConfig.for_modality("optical")
    on_grey = base.model_copy(update={"data_low": [8.0] * 3, "data_high": [201.0] * 3})
    on_colour = base.model_copy(update={"data_low": [8.0, 15.0, 4.0], "data_high": [201.0] * 3})
    assert not trained_on_colour(base) and not trained_on_colour(on_grey)
    assert trained_on_colour(on_colour)
    assert check_grey_into_colour(grey, "uint8", base, 3) is None
    assert check_grey_into_colour(grey, "uint8", on_grey, 3) is None
    assert GREY in check_grey_into_colour(grey, "uint8", on_colour, 3)
