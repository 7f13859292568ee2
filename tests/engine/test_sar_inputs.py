"""SAR and multiband GeoTIFFs users bring that gave no or misleading answers: uint16 DNs inside an
8-bit model's range, band counts hidden behind per-band statistics, incomplete dB / nodata
advice, untagged zero borders in training (docs/data.md, "Input range check")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers_data import write_tif

from sam2elnet.data.normalize import fit_normalization

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


def test_band_count_errors_are_not_hidden(u8_model, tmp_path, capsys):
    """A 2-band (VV, VH) image into a one-band model: `annotate` of the file printed a
    'skipping' warning before the error, `scene` a range warning telling to scale to 0..255.
    Now each prints only one error line (file, both band counts, --bands). A two-band model
    (per-band dB statistics) said 'normalisation has 2 low values ... recompute statistics with
    elnet stats' for a 3-band image; now the band-count error, and a single band is repeated
    to its two bands as the band rule says (it failed before)."""
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
                                 "the model was trained for 1; choose 1 band(s) with --bands")  # fmt: skip
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
        out = tmp_path / f"{args[0]}1" / ("l.tif" if args[0] == "scene" else "")
        assert main([*args, str(one), "--model", m2, "--out", str(out), "--no-progress"]) == 0
        capsys.readouterr()
