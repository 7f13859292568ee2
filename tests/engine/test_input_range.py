"""Images unlike a model's training data: one warning per run (annotate, enhance, scene), with a
closing count; same-range images: none; a band count the model cannot take: one error line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers_data import write_tif
from helpers_logs import message_blocks

from sam2elnet.data.input_range import check_input_range
from sam2elnet.data.norm_fit import fit_normalization
from sam2elnet.data.normalize import NormalizationConfig

S = 40
RANGE = "far from the model's training range"


def _scene(i: int, dtype: str) -> np.ndarray:
    """One band: 8-bit display values 20..230, or the same scene as uint16 DN (x 12)."""
    rng = np.random.default_rng(i)
    u8 = rng.integers(20, 230, (1, S, S)).astype(np.uint8)
    u8[:, 8:20, 10:30] = 15  # a dark slick
    return u8 if dtype == "uint8" else (u8.astype(np.uint16) * 12)


@pytest.fixture(scope="module")
def u8_model(tmp_path_factory) -> dict[str, Path]:
    """A micro model with the normalisation ``elnet train`` records for uint8 SAR images, a
    folder of uint8 images like its training set, one of uint16 images, and coarse labels
    without georeference."""
    from sam2elnet.model import ModelConfig, build_model, save_model

    root = tmp_path_factory.mktemp("inrange")
    train = [write_tif(root / "train" / f"t{i}.tif", _scene(10 + i, "uint8")) for i in range(3)]
    norm = fit_normalization(train, "sar")
    assert (norm.method, norm.data_dtype) == ("fixed", "uint8")
    net = build_model(ModelConfig(size="micro", in_bands=1, normalization=norm.model_dump()))
    model = save_model(net, root / "m.pt", extra={"normalization": norm.model_dump(mode="json")})
    for i in range(4):
        write_tif(root / "u8" / f"s{i}.tif", _scene(i, "uint8"))
        write_tif(root / "u16" / f"s{i}.tif", _scene(i, "uint16"))
        coarse = np.zeros((1, S, S), np.uint8)
        coarse[:, 8:20, 10:30] = 255
        write_tif(root / "coarse" / f"s{i}.tif", coarse, georef=False)
    return {"model": model, "root": root}


def _lines(err: str, text: str) -> list[str]:
    """The messages (each with its indented advice lines, as one line) that contain ``text``."""
    return [ln for ln in message_blocks(err) if text in ln]


def _flat(msg: str | None) -> str:
    return " ".join((msg or "").split())


def test_uint16_into_a_uint8_model_warns_once_per_run(u8_model, tmp_path, capsys):
    from sam2elnet.cli import main

    model, root = str(u8_model["model"]), u8_model["root"]
    assert main(["annotate", "--model", model, "--images", str(root / "u16"), "--out",
                 str(tmp_path / "a"), "--no-progress"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    warned = _lines(err, RANGE)
    assert len(warned) == 1 and warned[0].startswith("warning: ") and "s0.tif" in warned[0]
    assert "(uint16) vs" in warned[0] and "(uint8)" in warned[0]
    assert "scale the image to 0..255" in warned[0]  # what to do
    assert _lines(err, "applied to 4 images in all") == [
        "note: the warning above (pixel values unlike the model's training data) applied to 4 "
        "images in all; only the first was shown"
    ]
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert [(w["warning"], w["count"]) for w in summary["warnings"]] == [
        ("pixel values unlike the model's training data", 4)
    ]
    # enhance with coarse labels that have no georeference (the images have): each kind once
    assert main(["enhance", "--model", model, "--images", str(root / "u16"), "--labels",
                 str(root / "coarse"), "--out", str(tmp_path / "e"), "--no-progress"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert len(_lines(err, RANGE)) == 1
    assert len(_lines(err, "has no georeference, so the label is used by pixel index")) == 1
    assert len(_lines(err, "applied to 4 images in all")) == 2
    # a folder of scenes (window by window): once per run too
    assert main(["scene", "--model", model, "--image", str(root / "u16"), "--out",
                 str(tmp_path / "s"), "--tile", "32", "--overlap", "8", "--no-progress"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert len(_lines(err, RANGE)) == 1 and len(_lines(err, "applied to 4 scenes in all")) == 1
    assert _lines(err, RANGE) == warned  # the same words as annotate's (one function)


def test_same_range_images_give_no_warning(u8_model, tmp_path, capsys):
    from sam2elnet.cli import main

    model, root = str(u8_model["model"]), u8_model["root"]
    assert main(["annotate", "--model", model, "--images", str(root / "u8"), "--out",
                 str(tmp_path / "a"), "--no-progress"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert RANGE not in err and "training data" not in err and "applied to" not in err
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["warnings"] == []


def test_db_vs_linear_both_ways():
    """Linear sigma0 (0..0.6) lies inside the widened range of a dB model (-36..9 dB): the range
    rule alone missed it; a model trained on dB data says to convert to dB."""
    rng = np.random.default_rng(0)
    lin = rng.gamma(4.0, 0.02, (1, 4000)).astype(np.float32)  # linear sigma0, median ~0.07
    db = (10 * np.log10(lin)).astype(np.float32)
    db_model = NormalizationConfig(
        method="stats", sar=True, low=[-22.0], high=[-6.0], data_low=[-22.0], data_high=[-6.0],
        data_dtype="float32",
    )  # fmt: skip
    assert check_input_range(db, db.dtype, db_model) is None
    msg = _flat(check_input_range(lin, lin.dtype, db_model))
    assert "not in dB" in msg and "convert the image, in this order" in msg
    assert "convert to dB, sigma0_dB = 10*log10(sigma0)" in msg
    # the other way round: a model that converts linear values to dB itself, given dB
    lin_model = db_model.model_copy(update={"to_db": True})
    assert check_input_range(lin, lin.dtype, lin_model) is None
    assert "look like dB already" in (check_input_range(db, db.dtype, lin_model) or "")


def test_band_count_mismatch_is_one_error_line(u8_model, tmp_path, capsys):
    """Two different bands into a one-band model: annotate, enhance and scene stop with one
    error line naming the file and exit 2 (a warning would label garbage)."""
    from sam2elnet.cli import main

    model, root = str(u8_model["model"]), u8_model["root"]
    two = write_tif(
        tmp_path / "two" / "s0.tif", np.concatenate([_scene(0, "uint8"), _scene(1, "uint8")])
    )
    for args in (
        ["annotate", "--images", str(two)],
        ["enhance", "--images", str(two), "--labels", str(root / "coarse")],
        ["scene", "--image", str(two), "--tile", "32", "--overlap", "8"],
    ):
        out = tmp_path / f"out_{args[0]}"
        out = out / "l.tif" if args[0] == "scene" else out
        assert main([*args, "--model", model, "--out", str(out), "--no-progress"]) == 2, args
        err = capsys.readouterr().err
        errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and "Traceback" not in err, err
        assert "s0.tif" in errors[0] and "2 bands but the model was trained for 1" in errors[0]


def _rgbn(nir_scale: float = 1.0) -> np.ndarray:
    """4 bands x 4000 pixels of 8-bit-like values 20..230; the 4th band times ``nir_scale``."""
    rng = np.random.default_rng(3)
    x = rng.uniform(20, 230, (4, 4000))
    x[3] *= nir_scale
    return x


def test_one_far_band_of_four_is_named():
    """A multiband image whose 4th band is scaled unlike its training data (x 40) is far, and
    the warning names that band with its ranges: counted over all bands together, 75 % of the
    pixels were near and nothing was said. Band numbers are file bands (``band_select``)."""
    cfg = NormalizationConfig(
        method="fixed", low=[20.0] * 4, high=[230.0] * 4, data_dtype="uint16",
        data_low=[20.0] * 4, data_high=[230.0] * 4,
    )  # fmt: skip
    assert check_input_range(_rgbn(), "uint16", cfg) is None
    msg = _flat(check_input_range(_rgbn(40.0), "uint16", cfg))
    assert msg and "band 4 (of 4)" in msg and RANGE in msg, msg
    assert "band 4 1..99 % " in msg and "vs 20..230" in msg and "0% of its pixels near it" in msg
    picked = cfg.model_copy(update={"band_select": [4, 3, 2, 8]})
    assert "band 8 (of 4)" in (check_input_range(_rgbn(40.0), "uint16", picked) or "")


def test_db_checks_apply_to_every_model():
    """dB given to a model that converts to dB itself is caught without a recorded range (an
    older model file) and with a per-image percentile stretch; linear values given to a
    percentile model trained on dB too. The range rule itself stays off for percentile models."""
    rng = np.random.default_rng(0)
    lin = rng.gamma(4.0, 0.02, (1, 4000)).astype(np.float32)
    db = (10 * np.log10(lin)).astype(np.float32)
    old = NormalizationConfig(method="percentile", sar=True, to_db=True)  # nothing recorded
    assert "look like dB already" in (check_input_range(db, db.dtype, old) or "")
    assert check_input_range(lin, lin.dtype, old) is None
    db_pct = NormalizationConfig(
        method="percentile", sar=True, data_low=[-22.0], data_high=[-6.0], data_dtype="float32"
    )
    assert "not in dB" in (check_input_range(lin, lin.dtype, db_pct) or "")
    u8_pct = NormalizationConfig(method="percentile", data_low=[15.0], data_high=[227.0],
                                 data_dtype="uint8")  # fmt: skip
    u16 = _scene(0, "uint16").reshape(1, -1)
    assert check_input_range(u16, "uint16", u8_pct) is None  # the stretch adapts


def test_linear_sigma0_squeezed_into_an_8bit_range_warns(u8_model, tmp_path, capsys):
    """Float linear sigma0 (0.002..0.13) given to a model of 8-bit SAR images: every value lies
    'near' the widened training range 0..~330, so nothing was said, while the fixed 0..255 scaling
    turned the whole scene black (0..0.0005). A band squeezed into < RANGE_MIN_SPREAD of the
    training width is far; an 8-bit sea of low contrast and a constant image are not."""
    from sam2elnet.cli import main
    from sam2elnet.data.input_range import RANGE_MIN_SPREAD

    rng = np.random.default_rng(1)
    lin = rng.gamma(4.0, 0.01, (1, 4000)).astype(np.float32)  # linear sigma0, median ~0.04
    cfg = NormalizationConfig(method="fixed", sar=True, low=[0.0], high=[255.0],
                              data_low=[6.0], data_high=[247.0], data_dtype="uint8")  # fmt: skip
    msg = _flat(check_input_range(lin, lin.dtype, cfg))
    assert RANGE in msg and "span only 0.0" in msg, msg
    assert "(float32) vs 6..247 (uint8)" in msg
    calm = rng.integers(60, 90, (1, 4000)).astype(np.uint8)  # 30 grey levels: 12 % of 241
    assert (90 - 60) / 241 > RANGE_MIN_SPREAD and check_input_range(calm, calm.dtype, cfg) is None
    flat = np.full((1, 4000), 100, np.uint8)
    assert check_input_range(flat, flat.dtype, cfg) is None  # constant: the quality rule's
    # the same through elnet scene with the micro uint8 model: one warning line
    write_tif(tmp_path / "lin.tif", lin.reshape(1, 40, 100))
    assert main(["scene", "--model", str(u8_model["model"]), "--image", str(tmp_path / "lin.tif"),
                 "--out", str(tmp_path / "l.tif"), "--tile", "32", "--overlap", "8",
                 "--no-progress"]) == 0  # fmt: skip
    warned = _lines(capsys.readouterr().err, RANGE)
    assert len(warned) == 1 and "lin.tif" in warned[0] and "almost constant" in warned[0]


def _linear_scene(seed: int) -> np.ndarray:
    """(1, S, S) float32 linear sigma0 (median ~0.05) with a dark slick."""
    rng = np.random.default_rng(seed)
    lin = rng.gamma(4.0, 0.0125, (1, S, S)).astype(np.float32)
    lin[:, 8:20, 10:30] *= 0.08
    return lin


def test_zero_border_without_nodata_tag_warns_for_a_db_converting_model(tmp_path, capsys):
    """A Sentinel-1 GRD / SNAP export fills the swath's no-data border with 0 and no nodata tag.
    A model trained on linear sigma0 converts to dB, where 0 is the darkest sea: the border was
    labelled as oil without a word (a tiny model: 97 % of it). Now one warning per run says so
    and how to tag it (annotate and scene); tagged, the border is nodata (127) and nothing is
    said; a few zeros (< 1 %) inside the swath and models that do not convert say nothing."""
    from sam2elnet.cli import main
    from sam2elnet.data.zero_pixels import check_zero_pixels
    from sam2elnet.model import ModelConfig, build_model, save_model

    train = [write_tif(tmp_path / "train" / f"t{i}.tif", _linear_scene(20 + i)) for i in range(3)]
    norm = fit_normalization(train, "sar")
    assert norm.to_db
    net = build_model(ModelConfig(size="micro", in_bands=1, normalization=norm.model_dump()))
    model = str(save_model(net, tmp_path / "m.pt",
                           extra={"normalization": norm.model_dump(mode="json")}))  # fmt: skip
    scene = _linear_scene(0)
    scene[:, :, :6] = 0.0  # a 6 px no-data border, 15 % of the pixels
    write_tif(tmp_path / "untagged" / "s.tif", scene)
    write_tif(tmp_path / "tagged" / "s.tif", scene, nodata=0.0)
    few = _linear_scene(1)
    few[:, 0, :10] = 0.0  # 10 zeros of 1600: noise-floor zeros inside the swath
    assert check_zero_pixels(few.reshape(1, -1), norm) is None
    assert check_zero_pixels(scene.reshape(1, -1), norm.model_copy(update={"to_db": False})) is None
    said = "are 0 (or below) without a nodata tag"
    # a PNG holds no tag: a tagged GeoTIFF copy, named; no file known: the FILE placeholder
    png = check_zero_pixels(scene.reshape(1, -1), norm, "tiles/t 1.png")
    assert "gdal_translate -a_nodata 0 'tiles/t 1.png' 'tiles/t 1.tif'" in png
    assert "then use 'tiles/t 1.tif'" in png and "FILE" not in png
    assert "gdal_edit.py -a_nodata 0 FILE" in check_zero_pixels(scene.reshape(1, -1), norm)
    untagged = []  # the warning of annotate, then of scene: one function words both
    for cmd in (["annotate", "--images"], ["scene", "--tile", "32", "--overlap", "8", "--image"]):
        for kind in ("untagged", "tagged"):
            out = tmp_path / f"{cmd[0]}_{kind}"
            out = out / "s.tif" if cmd[0] == "scene" else out
            assert main([*cmd, str(tmp_path / kind / "s.tif"), "--model", model, "--out",
                         str(out), "--no-progress"]) == 0  # fmt: skip
            warned = _lines(capsys.readouterr().err, said)
            if kind == "untagged":
                assert len(warned) == 1 and "s.tif: 15.0% of the pixels" in warned[0], warned
                # the advice names the file (was the literal placeholder FILE)
                cmd_text = warned[0].replace(" \\ ", " ")  # a long command is broken at spaces
                assert f"gdal_edit.py -a_nodata 0 {tmp_path / kind / 's.tif'}" in cmd_text
                untagged.append(warned[0])
            else:
                assert warned == []
                import rasterio

                lab = out if cmd[0] == "scene" else out / "labels" / "s.tif"
                with rasterio.open(lab) as ds:
                    assert (ds.read(1)[:, :6] == 127).all()
    assert len(untagged) == 2 and untagged[0] == untagged[1], untagged


class _Untouchable:
    """Pixel values that must not be looked at (any array conversion fails the test)."""

    def __array__(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN204
        raise AssertionError("the pixels were read")


def test_range_check_reads_no_pixel_without_a_recorded_range_and_ints_equal_floats() -> None:
    """A model file without a training range (``data_low`` / ``data_high`` unset) and no dB rule
    to apply: None before any pixel is converted (was a float64 copy and a finite test of every
    pixel, ~0.6 ms per 256^2 image, for nothing). Integer pixels are sampled before they are
    widened: the same text as the same values given as float64 (the earlier path), for fitting,
    far and dB-trained models; NaN pixels of float images are still left out."""
    sar = NormalizationConfig.for_modality("sar")
    assert sar.data_low is None and not sar.to_db
    assert check_input_range(_Untouchable(), "uint8", sar) is None  # type: ignore[arg-type]
    rng = np.random.default_rng(5)
    u8 = rng.integers(20, 200, (1, 300_000), dtype=np.uint8)  # > RANGE_SAMPLE: sampled
    u16 = (u8.astype(np.uint16) * 40)[:, :5000]
    i16 = rng.integers(-3000, 3000, (2, 4000), dtype=np.int16)
    models = [
        sar.model_copy(update={"data_low": [0.0], "data_high": [255.0], "data_dtype": "uint8"}),
        sar.model_copy(update={"data_low": [1e4], "data_high": [5e4], "data_dtype": "uint16"}),
        sar.model_copy(update={"data_low": [-25.0], "data_high": [5.0], "data_dtype": "float32"}),
    ]
    texts = set()
    for cfg in models:
        for ints in (u8, u16, i16):
            got = check_input_range(ints, ints.dtype, cfg)
            assert got == check_input_range(ints.astype(np.float64), ints.dtype, cfg)
            texts.add(got)
    assert None in texts and any(t and RANGE in _flat(t) for t in texts)
    f = rng.random((1, 4000)).astype(np.float32) * 255
    with_nan = f.copy()
    with_nan[0, ::7] = np.nan
    for cfg in models:
        assert check_input_range(with_nan, "float32", cfg) == check_input_range(
            f[:, np.isfinite(with_nan[0])], "float32", cfg
        )


def test_a_db_image_given_to_a_db_converting_model_is_not_called_an_untagged_zero_border():
    """A Sentinel-1 sigma0 scene in dB (float32, every value below 0, NaN border tagged) given to
    a model trained on uint16 DN: besides the right warning (`pixel values look like dB
    already`) it got `100.0% of the pixels are 0 (or below) without a nodata tag` with the
    advice `gdal_edit.py -a_nodata 0`, which describes a file it is not and would change
    nothing. Negative dB values are no zero border: only the dB warning speaks now; a linear
    image with a zero border still gets the zero warning."""
    from sam2elnet.data.zero_pixels import check_zero_pixels

    norm = NormalizationConfig(
        method="stats", to_db=True, low=[19.1], high=[27.8], data_dtype="uint16",
        data_low=[90.0], data_high=[540.0],
    )  # fmt: skip
    rng = np.random.default_rng(0)
    db = (-20.0 + 2.0 * rng.standard_normal((1, 4000))).astype(np.float32)
    assert check_zero_pixels(db, norm) is None
    lin = (10 ** (db / 10)).astype(np.float32)
    lin[:, :800] = 0.0  # a 20 % zero border in linear units
    assert "are 0 (or below) without a nodata tag" in (check_zero_pixels(lin, norm) or "")
