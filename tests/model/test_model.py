"""The SAM2-ELNet network: shapes, frozen trunk, adapters, conditioning, save/load."""

from __future__ import annotations

import pytest
import torch

from sam2elnet.errors import CheckpointError
from sam2elnet.model import ModelConfig, SAM2ELNet, build_model, load_model, save_model
from sam2elnet.model.adapters import BottleneckAdapter
from sam2elnet.model.stem import IMAGENET_MEAN, IMAGENET_STD, InputStem


def micro(**kw) -> SAM2ELNet:
    return build_model(ModelConfig(size="micro", **kw))


@pytest.mark.parametrize("bands", [1, 3, 4])
@pytest.mark.parametrize("hw", [(45, 70), (64, 64), (33, 97)])
def test_output_shapes_equal_input_shapes(bands: int, hw: tuple[int, int]) -> None:
    model = micro(in_bands=bands).eval()
    x = torch.rand(2, bands, *hw)
    with torch.no_grad():
        out = model(x)
        out_c = model(x, coarse=(torch.rand(2, 1, *hw) > 0.5).float())
    assert out.logits.shape == (2, 1, *hw)
    assert out.edge_logits.shape == (2, 1, *hw)
    assert out_c.logits.shape == (2, 1, *hw)
    assert [s.shape[-2:] for s in out.side_logits] == [
        (-(-hw[0] // s), -(-hw[1] // s)) for s in (32, 16, 8, 4)
    ]
    assert out.embedding.shape == (2, model.embedding_dim)


def test_wrong_band_count_is_refused() -> None:
    with pytest.raises(ValueError, match="expected images of shape"):
        micro(in_bands=1)(torch.rand(1, 3, 32, 32))


def test_unknown_size_is_the_documented_checkpoint_error() -> None:
    """An unvalidated config with a size that is no Hiera size: the CheckpointError listing the
    sizes that SAM2ELNet's docstring names (a KeyError before)."""
    with pytest.raises(CheckpointError, match="unknown encoder size 'huge'; choose one of micro"):
        SAM2ELNet(ModelConfig.model_construct(size="huge"))


def test_frozen_trunk_gets_no_gradient_and_trainable_parts_do() -> None:
    model = micro(in_bands=1).train()
    assert not model.trunk.training, "frozen trunk must stay in eval mode"
    # Give zero-initialised layers a nudge so gradients reach everything upstream of them.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, BottleneckAdapter):
                m.up.weight.normal_(0, 0.01)
        for p in model.mask_encoder.proj.parameters():
            p.normal_(0, 0.01)
        model.mask_encoder.to_trunk.weight.normal_(0, 0.01)
    x = torch.rand(2, 1, 64, 64)
    out = model(x, coarse=(torch.rand(2, 1, 64, 64) > 0.5).float())
    (out.logits.mean() + sum(s.mean() for s in out.side_logits) + out.edge_logits.mean()).backward()
    for name, p in model.trunk.named_parameters():
        assert not p.requires_grad and p.grad is None, name
    for part in (model.adapters, model.stem, model.mask_encoder, model.decoder):
        grads = [p.grad for p in part.parameters()]
        assert all(g is not None for g in grads)
        assert any(float(g.abs().sum()) > 0 for g in grads)
    trainable = {id(p) for p in model.trainable_parameters()}
    assert not trainable & {id(p) for p in model.trunk.parameters()}


@pytest.mark.parametrize("mode,expect_all", [("last", False), ("all", True)])
def test_trunk_can_be_trained_when_asked(mode: str, expect_all: bool) -> None:
    model = micro(trunk_trainable=mode)
    flags = [p.requires_grad for p in model.trunk.parameters()]
    assert any(flags)
    assert all(flags) is expect_all
    assert model.train().trunk.training


def test_fresh_adapters_reproduce_bare_trunk_features_exactly() -> None:
    model = micro(in_bands=3, mask_into_trunk=False).eval()
    pixels = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        ours = model.encode(pixels)
        ref = model.trunk(pixels).intermediate_hidden_states
    assert len(ours) == 4
    for a, b in zip(ours, ref, strict=True):
        assert torch.equal(a, b.permute(0, 3, 1, 2))


def test_adapters_change_features_once_trained() -> None:
    model = micro(mask_into_trunk=False).eval()
    pixels = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        before = model.encode(pixels)[0].clone()
        model.adapters[0].up.weight.normal_(0, 0.1)
        after = model.encode(pixels)[0]
    assert not torch.allclose(before, after)


def test_adapter_width_is_configurable_and_zero_disables() -> None:
    assert micro(adapter_dim=8).adapters[0].down.out_features == 8
    assert micro(adapter_dim=0).adapters is None


@pytest.mark.parametrize("bands", [1, 2, 3, 5])
def test_stem_initialisation_keeps_pretrained_behaviour(bands: int) -> None:
    stem = InputStem(bands)
    x = torch.rand(1, bands, 8, 8)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    rgb = stem(x) * std + mean
    if bands == 1:
        expected = x.expand(1, 3, 8, 8)
    elif bands == 2:
        expected = x.mean(dim=1, keepdim=True).expand(1, 3, 8, 8)
    else:
        expected = x[:, :3]
    assert torch.allclose(rgb, expected, atol=1e-6)


def test_coarse_label_changes_the_prediction_once_trained() -> None:
    model = micro(in_bands=1).eval()
    with torch.no_grad():
        for p in model.mask_encoder.proj.parameters():
            p.normal_(0, 0.5)
    x = torch.rand(1, 1, 64, 64)
    coarse = torch.zeros(1, 1, 64, 64)
    coarse[..., 16:48, 16:48] = 1
    with torch.no_grad():
        a = model(x).logits
        b = model(x, coarse=coarse).logits
        # A coarse tensor flagged as absent is the same as no coarse label at all.
        c = model(x, coarse=coarse, has_coarse=torch.zeros(1)).logits
    assert not torch.allclose(a, b)
    assert torch.allclose(a, c, atol=1e-6)


def test_save_load_roundtrip_is_exact(tmp_path) -> None:
    model = micro(in_bands=1, normalization={"mode": "sar-db"}).eval()
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.add_(0.01)
    path = save_model(model, tmp_path / "model.pt", extra={"quality": {"threshold": 0.5}})
    loaded, extra = load_model(path)
    assert extra == {"quality": {"threshold": 0.5}}
    assert loaded.config == model.config
    x = torch.rand(1, 1, 40, 40)
    with torch.no_grad():
        assert torch.equal(model(x).logits, loaded(x).logits)
    assert not list(tmp_path.glob(".*tmp*")), "no temporary file left behind"


def test_model_file_referencing_encoder_weights(tmp_path, official_checkpoint) -> None:
    model = build_model(ModelConfig(size="micro", weights=str(official_checkpoint))).eval()
    path = save_model(model, tmp_path / "m.pt")
    size_with_ref = path.stat().st_size
    loaded, _ = load_model(path)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x).logits, loaded(x).logits)
    embedded = save_model(model, tmp_path / "e.pt", embed_encoder=True)
    assert embedded.stat().st_size > size_with_ref
    official_checkpoint.rename(tmp_path / "moved.pt")
    with pytest.raises(CheckpointError, match="are not found"):
        load_model(path)
    loaded, _ = load_model(path, encoder_weights=tmp_path / "moved.pt")


def test_model_file_errors(tmp_path) -> None:
    model = micro()
    good = save_model(model, tmp_path / "good.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_model(truncated)
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "missing.pt")
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a sam2elnet model file"):
        load_model(foreign)
    payload = torch.load(good, weights_only=True)
    payload["format_version"] = 99
    newer = tmp_path / "newer.pt"
    torch.save(payload, newer)
    with pytest.raises(CheckpointError, match="newer sam2elnet"):
        load_model(newer)
    payload["format_version"] = 1
    payload["config"]["size"] = "gigantic"
    torch.save(payload, newer)
    with pytest.raises(CheckpointError, match="incompatible version"):
        load_model(newer)


def test_coarse_prior_shifts_logits_towards_the_coarse_label() -> None:
    """Enhancement predicts a correction to the coarse label: logits move by +-p inside/outside it,
    and nothing changes when no coarse label is given."""
    with_prior = micro(in_bands=1, coarse_prior=2.0).eval()
    without = SAM2ELNet(
        with_prior.config.model_copy(update={"coarse_prior": 0.0}), with_prior.trunk
    )
    without.load_state_dict(with_prior.state_dict())
    x = torch.rand(1, 1, 48, 40)
    coarse = torch.zeros(1, 1, 48, 40)
    coarse[..., 8:30, 5:25] = 1
    with torch.no_grad():
        diff = with_prior(x, coarse).logits - without(x, coarse).logits
        assert torch.allclose(diff, 2.0 * (2 * coarse - 1), atol=1e-5)
        assert torch.equal(with_prior(x).logits, without(x).logits)


@pytest.mark.parametrize("hw", [(64, 64), (45, 70), (33, 97)])
def test_half_resolution_trunk_keeps_every_output_shape(hw: tuple[int, int]) -> None:
    model = micro(in_bands=1, trunk_scale=2).eval()
    x = torch.rand(2, 1, *hw)
    with torch.no_grad():
        out = model(x, coarse=(torch.rand(2, 1, *hw) > 0.5).float())
    assert out.logits.shape == out.edge_logits.shape == (2, 1, *hw)
    assert [s.shape[-2:] for s in out.side_logits] == [
        (-(-hw[0] // s), -(-hw[1] // s)) for s in (32, 16, 8, 4)
    ]


def test_half_resolution_trunk_runs_the_trunk_on_the_pooled_image() -> None:
    """trunk_scale 2 = the trunk's features of the 2x2 mean-pooled stem output, upsampled x2."""
    torch.manual_seed(0)
    full = micro(in_bands=1).eval()
    half = micro(in_bands=1, trunk_scale=2).eval()
    half.load_state_dict(full.state_dict())
    pixels = torch.rand(1, 3, 128, 192)
    with torch.no_grad():
        got = half._trunk_features(pixels, None)
        small = full.encode(torch.nn.functional.avg_pool2d(pixels, 2))
        same_scale = full._trunk_features(pixels, None)
    assert [tuple(f.shape[-2:]) for f in got] == [tuple(f.shape[-2:]) for f in same_scale]
    assert tuple(small[0].shape[-2:]) == (16, 24)  # stride 4 of the 64 x 96 pooled image
    up = torch.nn.functional.interpolate(small[0], scale_factor=2, mode="bilinear")
    torch.testing.assert_close(got[0], up, rtol=0, atol=0)
    assert not torch.allclose(got[0], same_scale[0])


def test_trunk_scale_is_saved_with_the_model(tmp_path) -> None:
    model = micro(in_bands=1, trunk_scale=2)
    save_model(model, tmp_path / "m.pt")
    loaded, _ = load_model(tmp_path / "m.pt")
    assert loaded.config.trunk_scale == 2
    with pytest.raises(ValueError):
        ModelConfig(size="micro", trunk_scale=3)


@pytest.mark.parametrize("mode", ["none", "all"])
def test_random_trunk_warning_advises_trunk_training_only_when_off(mode: str, caplog) -> None:
    """The no-weights warning names the trunk mode; it advises --trunk all only when it is off."""
    with caplog.at_level("WARNING", logger="sam2elnet.model.elnet"):
        build_model(ModelConfig(size="tiny", trunk_trainable=mode))
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "randomly initialised" in text
    assert ("train the trunk too with --trunk all" in text) == (mode == "none")
    assert ("(trained with --trunk all)" in text) == (mode == "all")


def test_random_trunk_warning_names_the_cached_weights(tmp_path, monkeypatch, caplog) -> None:
    """With the official checkpoint in the weights cache, the no-weights warning names it for
    --weights (``elnet train`` does not take it by itself); it said to download what was
    already there. Without one it says to download, then give --weights."""
    monkeypatch.setenv("SAM2ELNET_HOME", str(tmp_path))
    with caplog.at_level("WARNING", logger="sam2elnet.model.elnet"):
        build_model(ModelConfig(size="tiny"))
    assert "`elnet weights download --size tiny`, then give --weights FILE" in caplog.text
    from sam2elnet.model.weights_cache import find_cached_weights, official_filename, weights_home

    cached = weights_home() / official_filename("tiny", "2.1")
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(b"not read by the warning")
    assert find_cached_weights("tiny") == cached
    caplog.clear()
    with caplog.at_level("WARNING", logger="sam2elnet.model.elnet"):
        build_model(ModelConfig(size="tiny"))
    assert f"SAM2 Hiera-tiny weights are cached: give --weights {cached}" in caplog.text
    assert "weights download" not in caplog.text
