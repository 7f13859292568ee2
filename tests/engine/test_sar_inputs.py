"""SAR and multiband GeoTIFFs users bring that gave no or misleading answers: uint16 DNs inside an
8-bit model's range, band counts hidden behind per-band statistics, incomplete dB / nodata
advice, untagged zero borders in training (docs/data.md, "Input range check")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers_data import write_tif

from sam2elnet.data.images import read_image
from sam2elnet.data.input_range import check_input_range
from sam2elnet.data.norm_fit import fit_normalization
from sam2elnet.data.normalize import NormalizationConfig, normalize

S = 40


def _u8(seed: int) -> np.ndarray:
    """(1, S, S) 8-bit display values 20..230 with a dark slick."""
    u8 = np.random.default_rng(seed).integers(20, 230, (1, S, S)).astype(np.uint8)
    u8[:, 8:20, 10:30] = 15
    return u8


def _dn(seed: int, bands: int = 1) -> np.ndarray:
    """(bands, S, S) uint16 DNs of a calm sea, 1..99 % about 30..290: inside a widened 8-bit
    range (0..~330), yet DNs."""
    return (np.random.default_rng(seed).gamma(4.0, 1.0, (bands, S, S)) * 30).astype(np.uint16)


def _model(root: Path, train: list[Path], in_bands: int) -> str:
    from sam2elnet.model import ModelConfig, build_model, save_model

    norm = fit_normalization(train, "sar")
    net = build_model(ModelConfig(size="micro", in_bands=in_bands, normalization=norm.model_dump()))
    return str(
        save_model(net, root / "m.pt", extra={"normalization": norm.model_dump(mode="json")})
    )


@pytest.fixture(scope="module")
def u8_model(tmp_path_factory) -> str:
    """A micro model with the normalisation `elnet train` records for uint8 SAR images."""
    root = tmp_path_factory.mktemp("sar_u8")
    return _model(root, [write_tif(root / "t" / f"t{i}.tif", _u8(10 + i)) for i in range(3)], 1)


def _err(capsys) -> list[str]:
    return [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]


def test_uint16_dns_within_an_8bit_range_warn_and_are_not_blacked_out(u8_model, tmp_path, capsys):
    """uint16 DNs of 30..290 given to a model of 8-bit images: nothing was said (the values are
    'near' the training range) and the fixed scaling divided by 65535 (model input <= 0.006).
    Now the dtype kind is compared too (one warning with the SAR steps), and the fixed scaling
    follows the training dtype: 8-bit values stored as uint16 or float32 normalise exactly like
    the uint8 file."""
    from sam2elnet.cli import main
    from sam2elnet.model.io import read_model_file

    cfg = NormalizationConfig.model_validate(read_model_file(u8_model)["extra"]["normalization"])
    dn = _dn(0)
    assert np.percentile(dn, 99) < 330
    msg = " ".join((check_input_range(dn.reshape(1, -1), dn.dtype, cfg) or "").split())
    assert "the image is uint16 but the model was trained on uint8" in msg
    assert "usually holds DNs, not the display-scaled 8-bit values" in msg
    assert "store it as Byte: gdal_translate -ot Byte" in msg  # 8-bit values in a wide container
    assert "sigma0 = DN^2/A_sigma^2" in msg and "10*log10(sigma0)" in msg
    assert "gdal_edit.py -a_nodata 0" in msg
    u8 = _u8(3)
    assert check_input_range(u8.reshape(1, -1), u8.dtype, cfg) is None
    ref = normalize(u8, cfg)
    for dtype in ("uint16", "float32"):
        np.testing.assert_allclose(normalize(u8.astype(dtype), cfg), ref, atol=1e-6)
    p = write_tif(tmp_path / "u16" / "dn.tif", dn)
    assert normalize(read_image(p, sar=True), cfg).max() > 0.5  # not 0..0.006
    assert main(["annotate", "--model", u8_model, "--images", str(p), "--out",
                 str(tmp_path / "a"), "--no-progress"]) == 0  # fmt: skip
    warned = [ln for ln in _err(capsys) if "the image is uint16" in ln]
    assert len(warned) == 1 and warned[0].startswith(f"warning: {p}: "), warned


def test_far_uint16_advice_names_db_and_nodata_steps():
    """The advice of a far uint16 GRD into an 8-bit SAR model said only 'scale to 0..255'; a
    linear image into a dB model only '10*log10'. Both now name the nodata tag, and DNs the
    calibration (ESA-EOPG-CSCOP-TN-0002: sigma0 = DN^2 / A_sigma^2)."""
    cfg = NormalizationConfig(method="fixed", sar=True, data_dtype="uint8", data_low=[15.0],
                              data_high=[227.0])  # fmt: skip
    far = (_dn(1) * 10).reshape(1, -1)
    msg = check_input_range(far, far.dtype, cfg) or ""
    assert "far from the model's training range" in msg
    for step in ("gdal_edit.py -a_nodata 0", "sigma0 = DN^2/A_sigma^2", "10*log10(sigma0)",
                 "gdal_translate -ot Byte -scale DBMIN DBMAX 1 255 -a_nodata 0"):  # fmt: skip
        assert step in msg, step
    optical = cfg.model_copy(update={"sar": False})
    assert "sigma0" not in (check_input_range(far, far.dtype, optical) or "sigma0")
    db = NormalizationConfig(method="stats", sar=True, low=[-22.0], high=[-6.0],
                             data_low=[-22.0], data_high=[-6.0], data_dtype="float32")  # fmt: skip
    lin = np.random.default_rng(0).gamma(4.0, 0.02, (1, 4000)).astype(np.float32)
    msg = check_input_range(lin, lin.dtype, db) or ""
    assert "gdal_edit.py -a_nodata 0" in msg and "10*log10(sigma0)" in msg
    assert "DN^2" not in msg  # float linear sigma0 is calibrated already


def test_band_count_errors_are_not_hidden(u8_model, tmp_path, capsys):
    """A 2-band (VV, VH) image into a one-band model: `annotate` of the file printed a
    'skipping' warning before the error, `scene` a range warning telling to scale to 0..255.
    Now each prints only one error line (file, both band counts, --bands). A two-band model
    (per-band dB statistics) said 'normalisation has 2 low values ... recompute statistics with
    elnet stats' for a 3-band image; now the band-count error. A single band into the two-band
    model was repeated (VV fed as VH, silently); now it is the band-count error too, and
    --bands 1,1 repeats it knowingly on both paths."""
    from sam2elnet.cli import main

    two = write_tif(tmp_path / "two" / "vvvh.tif", _dn(5, bands=2) * 5)
    for args in (["annotate", "--images", str(two)],
                 ["scene", "--image", str(two), "--tile", "32", "--overlap", "8"]):  # fmt: skip
        out = tmp_path / args[0] / ("l.tif" if args[0] == "scene" else "")
        assert main([*args, "--model", u8_model, "--out", str(out), "--no-progress"]) == 2
        assert not (tmp_path / args[0]).exists()  # nothing half-written
        err = [ln for ln in _err(capsys) if ln.startswith(("warning", "error"))]
        err = [ln for ln in err if "quality evaluator is not fitted" not in ln]  # the model's
        assert len(err) == 1, err
        assert err[0].startswith(f"error: {two}: unsupported band count: image has 2 bands but "
                                 "the model was trained for 1; choose 1 band with --bands")  # fmt: skip
    root = tmp_path / "m2"
    m2 = _model(root, [write_tif(root / "t" / f"t{i}.tif", _dn(20 + i, 2)) for i in range(3)], 2)
    three = write_tif(tmp_path / "three" / "s.tif", _dn(6, bands=3))
    one = write_tif(tmp_path / "one" / "s.tif", _dn(7))
    for args in (["annotate", "--images"], ["scene", "--tile", "32", "--overlap", "8", "--image"]):
        out = tmp_path / f"{args[0]}3" / ("l.tif" if args[0] == "scene" else "")
        assert main([*args, str(three), "--model", m2, "--out", str(out), "--no-progress"]) == 2
        err = [ln for ln in _err(capsys) if ln.startswith("error")]
        assert len(err) == 1 and "image has 3 bands but the model was trained for 2" in err[0]
        assert "normalisation has" not in err[0]
        # one band into the VV+VH model: repeating it fed VV as VH without a sign; now the
        # band-count error naming --bands, and --bands 1,1 repeats it knowingly
        out = tmp_path / f"{args[0]}1" / ("l.tif" if args[0] == "scene" else "")
        assert main([*args, str(one), "--model", m2, "--out", str(out), "--no-progress"]) == 2
        err = [ln for ln in _err(capsys) if ln.startswith("error")]
        assert len(err) == 1 and f"{one}: unsupported band count: image has 1 band" in err[0]
        assert "trained on 2 bands" in err[0] and "--bands 1,1" in err[0]
        assert not out.exists()
        rc = main([*args, str(one), "--model", m2, "--out", str(out), "--no-progress",
                   "--bands", "1,1"])  # fmt: skip
        assert rc == 0 and out.exists()
        capsys.readouterr()


def test_band_count_error_when_scaling_makes_the_bands_alike(u8_model, tmp_path, capsys):
    """A VV/VH stack in dB (two different float bands, all below 0) into a one-band 8-bit
    model: the fixed 0..255 scaling clips both bands to 0, so they looked like one grey band
    stored twice; `scene` and `annotate` then predicted it and ended in a range warning and
    'unusable: constant after scaling', hiding the band count (a SAR trial: fixing the range as
    advised only led to the band-count error). Now the band-count error comes first, as for any
    other two-band image; bands alike in the file (a blank grey tile stored twice) still pass."""
    from sam2elnet.cli import main

    rng = np.random.default_rng(3)
    vv = rng.uniform(-25.0, -5.0, (1, S, S)).astype(np.float32)
    db = write_tif(tmp_path / "db" / "vvvh.tif", np.concatenate([vv, vv - 7.0]))
    for args in (["annotate", "--images", str(db)],
                 ["scene", "--image", str(db), "--tile", "32", "--overlap", "8"]):  # fmt: skip
        out = tmp_path / args[0] / ("l.tif" if args[0] == "scene" else "")
        assert main([*args, "--model", u8_model, "--out", str(out), "--no-progress"]) == 2
        assert not (tmp_path / args[0]).exists()
        err = [ln for ln in _err(capsys) if ln.startswith(("warning", "error"))]
        err = [ln for ln in err if "quality evaluator is not fitted" not in ln]
        assert len(err) == 1, err
        assert err[0].startswith(f"error: {db}: unsupported band count: image has 2 bands but "
                                 "the model was trained for 1")  # fmt: skip
    from sam2elnet.data.band_match import identical_bands

    raw = np.stack([np.full((4, 4), 7.0), np.full((4, 4), 7.0)])
    assert identical_bands(np.zeros((2, 4, 4)), raw)  # a constant grey tile stored twice
    assert not identical_bands(np.zeros((2, 4, 4)), np.stack([raw[0], raw[0] - 7]))
    grey = rng.uniform(0, 1, (1, 4, 4))
    assert identical_bands(np.concatenate([grey, grey]), np.concatenate([grey, grey]) * 255)


def test_a_band_of_another_polarisation_warns(tmp_path, capsys):
    """A model trained on VV (its training images' band descriptions, e.g. SNAP's Sigma0_VV_db)
    given a VH image ran without a word: VH lies 6-10 dB below VV, inside the widened dB range,
    so no range warning either (a SAR trial: `--bands 2` of a VV/VH stack). Now one warning
    names the image's band, both polarisations and the fix (--bands with the file's VV band
    when it has one); a VV image, and models without polarisation names, say nothing."""
    from sam2elnet.cli import main
    from sam2elnet.model import ModelConfig, build_model, save_model

    rng = np.random.default_rng(4)
    vv = rng.uniform(-22.0, -8.0, (1, S, S)).astype(np.float32)
    train = [write_tif(tmp_path / "t" / f"t{i}.tif", vv + i, descriptions=("Sigma0_VV_db",))
             for i in range(3)]  # fmt: skip
    norm = fit_normalization(train, "sar").model_copy(update={"band_names": ["Sigma0_VV_db"]})
    net = build_model(ModelConfig(size="micro", in_bands=1, normalization=norm.model_dump()))
    model = str(save_model(net, tmp_path / "vv.pt",
                           extra={"normalization": norm.model_dump(mode="json")}))  # fmt: skip
    vh = write_tif(tmp_path / "vh" / "s1_vh.tif", vv - 7.0, descriptions=("Sigma0_VH_db",))
    stack = write_tif(tmp_path / "st" / "s1.tif", np.concatenate([vv, vv - 7.0]),
                      descriptions=("Sigma0_VV_db", "Sigma0_VH_db"))  # fmt: skip
    same = write_tif(tmp_path / "vv" / "s1_vv.tif", vv, descriptions=("Amplitude_VV",))
    runs = [
        (["annotate", "--images", str(vh)], f"{vh}: band 1 is VH", "a VV image"),
        (["scene", "--image", str(vh), "--tile", "32", "--overlap", "8"], f"{vh}: band 1 is VH",
         "a VV image"),
        (["annotate", "--images", str(stack), "--bands", "2"], f"{stack}: band 2 is VH",
         "--bands 1"),
        (["scene", "--image", str(stack), "--bands", "2", "--tile", "32", "--overlap", "8"],
         f"{stack}: band 2 is VH", "--bands 1"),
    ]  # fmt: skip
    for k, (args, head, fix) in enumerate(runs):
        out = tmp_path / f"o{k}" / ("l.tif" if args[0] == "scene" else "")
        assert main([*args, "--model", model, "--out", str(out), "--no-progress"]) == 0
        err = " ".join(" ".join(_err(capsys)).split())
        assert f"warning: {head} ('Sigma0_VH_db') but the model was trained on VV" in err, err
        assert fix in err
    for args in (["annotate", "--images", str(same)], ["annotate", "--images", str(vh)]):
        m = model if args[-1] == str(same) else _model(tmp_path / "plain", train, 1)
        assert main([*args, "--model", m, "--out", str(tmp_path / "q"), "--no-progress"]) == 0
        assert "polarisation" not in capsys.readouterr().err


def _linear(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lin = rng.gamma(4.0, 0.0125, (1, S, S)).astype(np.float32)
    lin[:, 8:20, 10:30] *= 0.08
    return lin


def test_training_warns_once_about_untagged_zero_borders(tmp_path):
    """Training on linear sigma0 scenes whose no-data border is 0 without a nodata tag took the
    border as the darkest sea, silently (prediction warned). Now the run has one warning naming
    the images (by the prediction side's rule, check_zero_pixels' threshold); tagged borders,
    and models that do not convert to dB, give none."""
    import json

    from sam2elnet.config import TrainConfig
    from sam2elnet.engine.train_data import prepare_data

    def dataset(name: str, nodata: float | None) -> Path:
        root = tmp_path / name
        (root / "images").mkdir(parents=True)
        (root / "dataset.json").write_text(json.dumps({"modality": "sar"}))
        for i in range(4):
            img = _linear(30 + i)
            if i < 3:
                img[:, :, : 4 + i] = 0.0  # a no-data border of 10..15 %
            write_tif(root / "images" / f"s{i}.tif", img, nodata=nodata)
            mask = np.zeros((1, S, S), np.uint8)
            mask[:, 8:20, 10:30] = 255
            write_tif(root / "masks" / f"s{i}.tif", mask)
        return root

    def warnings(root: Path) -> list[str]:
        cfg = TrainConfig(data=root, out=tmp_path / "run", size="micro", epochs=1,
                          val_fraction=0.25, progress=False)  # fmt: skip
        return [w for w in prepare_data(cfg).warnings if "without a nodata tag" in w]

    warned = warnings(dataset("untagged", None))
    assert len(warned) == 1, warned
    assert warned[0].startswith("3 of 4 training and validation images have untagged pixels of 0")
    img = tmp_path / "untagged" / "images"
    assert (
        f"{img / 's2.tif'} (15.0%), {img / 's1.tif'} (12.5%), {img / 's0.tif'} (10.0%)"
        in " ".join(warned[0].split())
    )
    assert "gdal_edit.py -a_nodata 0" in warned[0]
    assert warnings(dataset("tagged", 0.0)) == []
    from sam2elnet.data.zero_pixels import check_zero_training

    u8 = NormalizationConfig(method="fixed", sar=True, data_dtype="uint8")
    assert check_zero_training({"a.tif": 0.5}, u8) is None
    assert check_zero_training({"a.tif": 0.005}, u8.model_copy(update={"to_db": True})) is None


def test_stats_warns_about_untagged_zero_borders_as_training_does(tmp_path, capsys):
    """`elnet stats --data s1_set --modality sar` (docs/data.md: "what training will do") said
    nothing about a linear sigma0 set's untagged zero no-data border, which `elnet train` then
    warned about (and learned as sea). Now stats gives the same warning, naming the images with
    their share of such pixels; a tagged border (nodata 0) and dB data give none."""
    import json

    from sam2elnet.cli import main

    def dataset(name: str, nodata: float | None, db: bool = False) -> Path:
        root = tmp_path / name
        (root / "images").mkdir(parents=True)
        (root / "dataset.json").write_text(json.dumps({"modality": "sar"}))
        for i in range(3):
            img = _linear(40 + i)
            if db:
                img = (10 * np.log10(img)).astype(np.float32)
            if i < 2:
                img[:, :, : 4 + 2 * i] = 0.0  # a no-data border of 10 % and 15 %
            write_tif(root / "images" / f"s{i}.tif", img, nodata=nodata)
            write_tif(root / "masks" / f"s{i}.tif", np.zeros((1, S, S), np.uint8))
        return root

    root = dataset("untagged", None)
    assert main(["stats", "--data", str(root), "--no-progress"]) == 0
    err = " ".join(" ".join(_err(capsys)).split())
    img = root / "images"
    assert "warning: 2 of 3 images have untagged pixels of 0" in err
    assert f"{img / 's1.tif'} (15.0%), {img / 's0.tif'} (10.0%)" in err
    assert "gdal_edit.py -a_nodata 0 FILE" in err
    for quiet in (dataset("tagged", 0.0), dataset("db", None, db=True)):
        assert main(["stats", "--data", str(quiet), "--no-progress"]) == 0
        assert "untagged pixels of 0" not in capsys.readouterr().err


def test_sar_advice_fits_80_columns_with_numbered_steps(u8_model, tmp_path, capsys):
    """The SAR advice was one line of about 900 characters. Now a short first line (the
    problem; the file before it), then lines of at most 80 columns: numbered steps, each with
    its command on a line of its own, every fact kept (nodata tag, calibration with the LUT,
    10*log10 with its ESA source, the 1..255 scaling with nodata 0). The command line prints
    it so; summary.json keeps the same text."""
    import json

    from sam2elnet.cli import main

    cfg = NormalizationConfig(method="fixed", sar=True, data_dtype="uint8", data_low=[15.0],
                              data_high=[227.0])  # fmt: skip
    db = NormalizationConfig(method="stats", sar=True, low=[-22.0], high=[-6.0],
                             data_low=[-22.0], data_high=[-6.0], data_dtype="float32")  # fmt: skip
    far = (_dn(1) * 10).reshape(1, -1)
    lin = np.random.default_rng(0).gamma(4.0, 0.02, (1, 4000)).astype(np.float32)
    for values, model, head in (
        (far, cfg, "pixel values are far from the model's training range"),
        (_dn(0).reshape(1, -1), cfg, "the image is uint16 but the model was trained on uint8 images"),
        (lin, db, "pixel values are not in dB, unlike the model's training data"),
    ):  # fmt: skip
        lines = (check_input_range(values, values.dtype, model) or "").splitlines()
        assert lines[0] == head and len(f"warning: s0.tif: {head}") <= 80
        assert all(len(ln) <= 80 for ln in lines), max(lines, key=len)
        steps = [ln.strip() for ln in lines]
        dn = values.dtype == np.uint16  # DNs: calibrate first (the LUT is in the product)
        tag = "2." if dn else "1."
        assert any(
            s.startswith(f"{tag} tag an untagged zero no-data border as nodata") for s in steps
        )
        # the border is tagged on the linear image the logarithm reads
        assert f"gdal_edit.py -a_nodata 0 {'S0.tif' if dn else 'IN.tif'}" in steps
        text = " ".join(" ".join(lines).split())
        assert "convert to dB, sigma0_dB = 10*log10(sigma0) (ESA-EOPG-CSCOP-TN-0002)" in text
        if values.dtype == np.uint16:  # DNs: calibrate, then 8 bits for this model
            assert "1. calibrate the DNs to sigma0, sigma0 = DN^2/A_sigma^2 with the product's "\
                "calibration LUT" in text  # fmt: skip
            assert "gpt Calibration -PoutputSigmaBand=true -f GeoTIFF -t S0.tif \\" in steps
            assert "PRODUCT.SAFE/manifest.safe" in steps
            assert (
                'gdal_calc.py -A S0.tif --calc "10*log10(A)" --type Float32 --outfile DB.tif'
                in steps
            )
            assert "4. scale the dB range to 1..255 with nodata 0" in text
            assert (
                "gdal_translate -ot Byte -scale DBMIN DBMAX 1 255 -a_nodata 0 DB.tif OUT.tif"
                in steps
            )
        else:  # float linear sigma0 is calibrated already
            assert "DN^2" not in text and "2. convert to dB" in text
            assert (
                'gdal_calc.py -A IN.tif --calc "10*log10(A)" --type Float32 --outfile DB.tif'
                in steps
            )
    p = write_tif(tmp_path / "u16" / "s0.tif", _dn(0))
    assert main(["annotate", "--model", u8_model, "--images", str(tmp_path / "u16"), "--out",
                 str(tmp_path / "a"), "--no-progress"]) == 0  # fmt: skip
    err = capsys.readouterr().err.splitlines()
    at = next(i for i, ln in enumerate(err) if "the image is uint16" in ln)
    assert err[at] == f"warning: {p}: the image is uint16 but the model was trained on uint8 images"
    block = []
    for ln in err[at + 1 :]:  # the indented lines of the warning
        if not ln[:1].isspace():
            break
        block.append(ln)
    assert len(block) > 10 and all(len(ln) <= 80 for ln in block)
    assert "gdal_edit.py -a_nodata 0 S0.tif" in [ln.strip() for ln in block]
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    first = next(w["first"] for w in summary["warnings"] if "uint16" in w["first"])
    assert first.splitlines() == [err[at].removeprefix("warning: "), *block]
