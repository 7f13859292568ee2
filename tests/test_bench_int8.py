"""benchmarks/int8_agreement.py and the ``int8-trunk`` lever of benchmarks/common.py: the trunk's
linears become int8, nothing else changes, and the labels of a trained micro model agree with the
float32 ones (64 px)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="module")
def bench(bench_import):  # noqa: ANN001, ANN201
    return bench_import("common"), bench_import("int8_agreement")


@pytest.fixture
def sos_like(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(micro model file, folder) - the test suite's shared trained micro model (bright ellipses,
    2 epochs) and six new 64 px pairs of its task in the SOS training layout (``e0N_sat.png``
    next to ``e0N_mask.png``)."""
    from helpers_data import make_dataset, trained_run

    model = trained_run(tmp_path_factory)["model"]
    gen = make_dataset(tmp_path / "gen", n=6, size=64, seed=5)
    data = tmp_path / "train" / "palsar"
    data.mkdir(parents=True)
    for i, f in enumerate(sorted((gen / "images").iterdir())):
        f.rename(data / f"e{i:02d}_sat.png")
        (gen / "masks" / f.name).rename(data / f"e{i:02d}_mask.png")
    return model, tmp_path / "train"


def test_int8_lever_quantises_only_the_trunk_and_is_inference_only(bench, monkeypatch) -> None:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    common, _ = bench
    lever = common.LEVERS["int8-trunk"]
    n_linear = sum(type(m) is torch.nn.Linear for m in common.build_ours("micro").trunk.modules())
    model = common.apply_lever(common.build_ours("micro").eval(), lever, train=False)
    trunk = list(model.trunk.modules())
    assert not any(type(m) is torch.nn.Linear for m in trunk)
    assert sum(type(m) is DynamicLinear for m in trunk) == n_linear > 0
    # outside the trunk nothing changed: float32 parameters, no quantised module
    others = [m for n, m in model.named_modules() if not n.startswith("trunk")]
    assert not any(type(m) is DynamicLinear for m in others)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert common.lever_precision(lever) == "32"
    # bench_infer's loop for the row runs (no autocast) and stays close to the float32 model
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad(), common.lever_autocast(lever):
        got = torch.sigmoid(model(common.lever_input(x, lever)).logits)
        want = torch.sigmoid(common.build_ours("micro").eval()(x).logits)
    assert 0.0 < float((got - want).abs().max()) < 0.1  # random weights: logits near 0
    with pytest.raises(ValueError, match="inference lever"):
        common.apply_lever(common.build_ours("micro"), lever, train=True)
    # shown by default only where ours runs float32; --levers always asks for it
    monkeypatch.setenv("SAM2ELNET_NATIVE_BF16", "0")
    assert "int8-trunk" in common.machine_levers(common.INFER_LEVERS)
    monkeypatch.setenv("SAM2ELNET_NATIVE_BF16", "1")
    assert "int8-trunk" not in common.machine_levers(common.INFER_LEVERS)


def test_int8_agreement_on_micro_model(sos_like, bench, capsys) -> None:
    model, root = sos_like
    _, script = bench
    out = root / "r.json"
    (root / "splits.json").write_text(json.dumps({"train": ["e01"], "val": ["e02"]}))
    argv = ["--model", str(model), "--images", str(root / "palsar"), "--masks", str(root)]
    rc = script.main([*argv, "--exclude-split", str(root / "splits.json"), "--limit", "3"])
    rc += script.main([*argv, "--rounds", "2", "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    # even spacing over the 4 images left (e00, e03, e04, e05): e00, e04 (round(1.5)), e05
    assert "3 images" in text and "agreement IoU int8 vs shipped" in text
    r = json.loads(out.read_text())
    assert r["images"] == 6 and r["rounds"] == 2
    # the int8 path really differs, but only a little: measured max 0.007, agreement >= 0.996
    assert 0.0 < r["max_abs_prob_diff"] < 0.03
    assert r["agreement_iou_min"] > 0.97 and r["equal_label_pixels"] > 0.995
    assert abs(r["iou_diff"]) < 0.01
    assert 0.5 < r["iou_shipped"] <= 1.0  # the model has learnt its task: a meaningful check
    assert set(r["wall_s"]) == set(r["cpu_s"]) == {"shipped", "int8"}


def test_int8_agreement_bad_input_is_one_error_line(sos_like, bench, capsys) -> None:
    model, root = sos_like
    _, script = bench
    argv = ["--model", str(model), "--images", str(root / "palsar"), "--masks", str(root)]
    rc = script.main([*argv, "--exclude-split", str(root / "missing.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and "missing.json" in err[0]
