"""Loading SAM2 encoder weights: official, Hugging Face and project formats; every error path."""

from __future__ import annotations

import os
import pickle
import random

import pytest
import torch
from conftest import write_official_checkpoint
from safetensors.torch import save_file

from sam2elnet.errors import CheckpointError
from sam2elnet.model import ModelConfig, build_model, load_encoder_weights, save_model
from sam2elnet.model.checkpoint_files import read_trunk_state
from sam2elnet.model.hiera import build_trunk, infer_size, trunk_from_state
from sam2elnet.model.weights_cache import find_cached_weights, official_filename


def features(trunk, x):
    with torch.no_grad():
        return trunk(x).intermediate_hidden_states


def test_official_checkpoint_loads_strictly_with_same_features(tmp_path) -> None:
    path = tmp_path / "ckpt.pt"
    state = write_official_checkpoint(path)
    trunk, size = load_encoder_weights(path)
    assert size == "micro"
    ref = build_trunk("micro")
    ref.load_state_dict(state)
    x = torch.randn(1, 3, 64, 64)
    for a, b in zip(features(trunk, x), features(ref, x), strict=True):
        assert torch.equal(a, b)


def test_trunk_from_state_holds_its_own_contiguous_trainable_copies(tmp_path) -> None:
    """The loaders build the trunk without random weights (meta device) and assign the file's
    tensors: each parameter must still be a CPU, contiguous, trainable copy in float32, as copying
    into an initialised trunk gave (a later change of the state leaves the trunk alone)."""
    state = write_official_checkpoint(tmp_path / "ckpt.pt")
    # half-precision weights, 2-D ones transposed in memory (same shape); float32 biases as given
    half = {k: v.half() if v.ndim != 2 else v.half().t().contiguous().t() for k, v in state.items()}
    half = {k: (v if k.endswith("weight") else state[k]) for k, v in half.items()}
    assert not all(v.is_contiguous() for v in half.values())
    trunk = trunk_from_state("micro", half)
    own = dict(trunk.named_parameters())
    assert sorted(own) == sorted(state)
    for k, p in own.items():
        assert p.device.type == "cpu" and p.dtype == torch.float32 and p.requires_grad, k
        assert p.is_contiguous() and torch.equal(p.detach(), half[k].float()), k
    nonzero = [k for k, v in half.items() if v.abs().sum() > 0]
    assert any(not k.endswith("weight") for k in nonzero)  # float32 tensors are checked too
    with torch.no_grad():
        for v in half.values():
            v.zero_()
    assert all(own[k].abs().sum() > 0 for k in nonzero)


def test_tiny_official_layout_has_documented_key_count(tmp_path) -> None:
    path = tmp_path / "sam2_hiera_tiny.pt"
    write_official_checkpoint(path, size="tiny")
    raw = torch.load(path, weights_only=True)["model"]
    trunk_keys = [k for k in raw if k.startswith("image_encoder.trunk.")]
    assert len(trunk_keys) == 154  # DESIGN.md: tiny has 154 trunk keys, 26.85 M parameters
    trunk, size = load_encoder_weights(path)
    assert size == "tiny"
    assert abs(sum(p.numel() for p in trunk.parameters()) / 1e6 - 26.85) < 0.01


def test_model_built_from_weights_uses_them(official_checkpoint) -> None:
    model = build_model(ModelConfig(size="micro", weights=str(official_checkpoint)))
    trunk, _ = load_encoder_weights(official_checkpoint)
    for a, b in zip(model.trunk.parameters(), trunk.parameters(), strict=True):
        assert torch.equal(a, b)


def test_huggingface_safetensors_file_and_folder(tmp_path) -> None:
    trunk = build_trunk("micro")
    with torch.no_grad():
        for p in trunk.parameters():
            p.normal_(0, 0.02)
    hf = {f"vision_encoder.backbone.{k}": v.contiguous() for k, v in trunk.state_dict().items()}
    hf["vision_encoder.neck.conv.weight"] = torch.zeros(2, 2)
    folder = tmp_path / "sam2.1-hiera-micro"
    folder.mkdir()
    save_file(hf, str(folder / "model.safetensors"))
    for src in (folder, folder / "model.safetensors"):
        loaded, size = load_encoder_weights(src)
        assert size == "micro"
        x = torch.randn(1, 3, 32, 32)
        for a, b in zip(features(loaded, x), features(trunk, x), strict=True):
            assert torch.equal(a, b)


def test_project_checkpoint_with_embedded_encoder(tmp_path) -> None:
    model = build_model(ModelConfig(size="micro"))
    path = save_model(model, tmp_path / "model.pt")
    trunk, size = load_encoder_weights(path)
    assert size == "micro"
    for a, b in zip(trunk.parameters(), model.trunk.parameters(), strict=True):
        assert torch.equal(a, b)


def test_wrong_size_is_refused(official_checkpoint) -> None:
    with pytest.raises(CheckpointError, match="Hiera-micro encoder but size 'tiny' was asked"):
        load_encoder_weights(official_checkpoint, size="tiny")


def test_missing_key_is_named(tmp_path) -> None:
    path = tmp_path / "ckpt.pt"
    write_official_checkpoint(path)
    raw = torch.load(path, weights_only=True)
    del raw["model"]["image_encoder.trunk.blocks.1.norm1.weight"]
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match=r"missing key 'blocks\.1\.layer_norm1\.weight'"):
        load_encoder_weights(path)


def test_mis_shaped_and_unexpected_keys_are_named(tmp_path) -> None:
    path = tmp_path / "ckpt.pt"
    write_official_checkpoint(path)
    raw = torch.load(path, weights_only=True)
    raw["model"]["image_encoder.trunk.blocks.0.attn.proj.bias"] = torch.zeros(5)
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match=r"'blocks\.0\.attn\.proj\.bias' has shape \(5,\)"):
        load_encoder_weights(path)
    raw = torch.load(path, weights_only=True)
    raw["model"]["image_encoder.trunk.blocks.0.attn.proj.bias"] = torch.zeros(16)
    raw["model"]["image_encoder.trunk.blocks.0.extra"] = torch.zeros(1)
    torch.save(raw, path)
    with pytest.raises(CheckpointError, match=r"unexpected key 'blocks\.0\.extra'"):
        load_encoder_weights(path)


def test_truncated_garbage_empty_and_missing_files(tmp_path, official_checkpoint) -> None:
    truncated = tmp_path / "truncated.pt"
    data = official_checkpoint.read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(random.Random(0).randbytes(2048))
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    # Seeded garbage that makes torch's unpickler raise UnpicklingError, IndexError, KeyError and
    # UnicodeDecodeError respectively (found by scanning seeds): each must be one clean error.
    odd = []
    for seed in (0, 2, 20, 195):
        odd.append(tmp_path / f"garbage{seed}.pt")
        odd[-1].write_bytes(random.Random(seed).randbytes(2048))
    for path, pattern in [
        *((p, "truncated or corrupt") for p in odd),
        (truncated, "truncated or corrupt"),
        (garbage, "truncated or corrupt"),
        (empty, "empty"),
        (tmp_path / "nope.pt", "not found"),
    ]:
        with pytest.raises(CheckpointError, match=pattern) as info:
            load_encoder_weights(path)
        assert str(path) in str(info.value)
        assert "\n" not in str(info.value)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_pickled_code_is_refused(tmp_path) -> None:
    path = tmp_path / "evil.pt"
    torch.save(
        {"model": {"image_encoder.trunk.x": _Evil()}}, path, pickle_protocol=pickle.DEFAULT_PROTOCOL
    )
    with pytest.raises(CheckpointError, match="refused: loading this file would execute code"):
        load_encoder_weights(path)
    # a raw pickle (not a torch zip archive) that calls os.system: same message, not "corrupt"
    raw = tmp_path / "evil.pkl"
    raw.write_bytes(pickle.dumps({"model": _Evil()}))
    with pytest.raises(CheckpointError, match="would execute code.*system") as info:
        load_encoder_weights(raw)
    assert str(raw) in str(info.value) and "corrupt" not in str(info.value)
    # a truncated raw pickle is damaged, not malicious
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(pickle.dumps({"model": _Evil()})[:20])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_encoder_weights(cut)


def test_missing_patch_embed_names_the_file(tmp_path) -> None:
    path = tmp_path / "nopatch.pt"
    torch.save({"model": {"image_encoder.trunk.blocks.0.norm1.weight": torch.zeros(4)}}, path)
    with pytest.raises(CheckpointError, match="patch_embed") as info:
        load_encoder_weights(path)
    assert str(path) in str(info.value)


def test_non_sam2_checkpoint_is_refused(tmp_path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"model": {"backbone.conv1.weight": torch.zeros(1)}}, path)
    with pytest.raises(CheckpointError, match="no 'image_encoder.trunk"):
        read_trunk_state(path)
    torch.save([1, 2, 3], path)
    with pytest.raises(CheckpointError, match="not a SAM2 checkpoint"):
        read_trunk_state(path)


def test_infer_size_rejects_unknown_shapes() -> None:
    state = build_trunk("micro").state_dict()
    state["blocks.9.attn.qkv.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="match no known Hiera size"):
        infer_size(state)


def test_cached_weights_lookup(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SAM2ELNET_HOME", str(tmp_path))
    assert find_cached_weights("tiny") is None
    (tmp_path / official_filename("tiny", "2")).write_bytes(b"x")
    assert find_cached_weights("tiny").name == "sam2_hiera_tiny.pt"
    (tmp_path / official_filename("tiny", "2.1")).write_bytes(b"x")
    assert find_cached_weights("tiny").name == "sam2.1_hiera_tiny.pt"


@pytest.mark.parametrize("size", ["micro", "tiny"])
def test_lean_attention_gives_the_library_features(size) -> None:
    """LeanAttention drops transformers' discarded score matrix; features stay the library's."""
    from transformers import Sam2HieraDetModel
    from transformers.models.sam2.modeling_sam2 import Sam2MultiScaleAttention

    from sam2elnet.model.hiera import LeanAttention, hiera_config

    torch.manual_seed(0)
    lib = Sam2HieraDetModel(hiera_config(size)).eval()
    ours = build_trunk(size).eval()
    ours.load_state_dict(lib.state_dict())
    kinds = {type(m) for m in ours.modules() if isinstance(m, Sam2MultiScaleAttention)}
    assert kinds == {LeanAttention}
    assert not any(type(m) is LeanAttention for m in lib.modules())
    x = torch.randn(2, 3, 64, 64)
    for a, b in zip(features(ours, x), features(lib, x), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_a_text_file_given_as_checkpoint_is_named_as_text(tmp_path) -> None:
    """`--model RUN/metrics.csv` said 'truncated or corrupt download?: pop from empty list';
    a text file is now named as text, with its first line."""
    from sam2elnet.model.checkpoint_files import safe_torch_load

    csv = tmp_path / "metrics.csv"
    csv.write_text("epoch,lr,train_loss\n1,0.001,2.5\n")
    with pytest.raises(CheckpointError, match="not a readable checkpoint: a text file") as info:
        safe_torch_load(csv)
    msg = str(info.value)
    assert "'epoch,lr,train_loss'" in msg and str(csv) in msg and "\n" not in msg
    assert "pop from empty list" not in msg and "corrupt" not in msg


def test_a_missing_weights_file_is_refused_in_the_apis_words(tmp_path, monkeypatch) -> None:
    """``ModelConfig(weights="none")`` (the command line's spelling, here a file name) told a
    Python user to "pass --weights none"; the API's words are ``weights=None``."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError) as info:
        build_model(ModelConfig(size="micro", weights="none"))
    msg = str(info.value)
    assert msg.startswith("none: weights file not found; run `elnet weights list`"), msg
    assert msg.endswith("or pass weights=None to train from random initialisation"), msg
    assert "--weights" not in msg
