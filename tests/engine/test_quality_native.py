"""The quality evaluator's samples are made at the native scale ``annotate`` predicts, not at the
training crop size (engine.quality_items.quality_items), and a fit works with images of several
sizes."""

from __future__ import annotations

import os

os.environ.setdefault("SAM2ELNET_THREADS", "1")

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers_data import make_dataset, small_cfg

from sam2elnet.data.layouts import Sample
from sam2elnet.data.normalize import NormalizationConfig
from sam2elnet.engine.quality_fit import collect_quality_samples
from sam2elnet.engine.quality_items import QUALITY_MAX_SIDE, quality_items


def _pair(root: Path, name: str, h: int, w: int, seed: int, values=(0, 255)) -> Sample:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w), dtype=np.uint8)
    mask = np.zeros((h, w), np.uint8)
    mask[h // 4 : h // 2, w // 4 : w // 2] = values[1]
    if len(values) > 2:  # a class-index mask: a second class beside the first
        mask[h // 2 :, w // 2 :] = values[2]
    root.mkdir(parents=True, exist_ok=True)
    ip, mp = root / f"{name}.png", root / f"{name}_mask.png"
    cv2.imwrite(str(ip), img)
    cv2.imwrite(str(mp), mask)
    return Sample(id=name, image=ip, mask=mp)


def _norm() -> NormalizationConfig:
    return NormalizationConfig(method="fixed", low=[0.0], high=[255.0])


def test_items_keep_native_size_and_pixels(tmp_path: Path) -> None:
    s = _pair(tmp_path, "a", 40, 56, 0)
    (item,) = quality_items([s], _norm(), bands=1, seed=0)
    assert tuple(item["image"].shape) == (1, 40, 56)  # not resized to a training crop size
    raw = cv2.imread(str(s.image), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0
    assert np.allclose(item["image"][0].numpy(), raw, atol=1e-6)
    assert item["mask"].sum() == 10 * 14  # the label's own pixels, none lost to resizing
    assert item["has_coarse"] == 1.0 and tuple(item["coarse"].shape) == (1, 40, 56)
    assert QUALITY_MAX_SIDE == 1024  # one annotate tile (--tile default)


def test_longer_sides_give_the_centred_window_at_native_scale(tmp_path: Path) -> None:
    s = _pair(tmp_path, "b", 40, 56, 1)
    (item,) = quality_items([s], _norm(), bands=1, seed=0, max_side=32)
    assert tuple(item["image"].shape) == (1, 32, 32)
    raw = cv2.imread(str(s.image), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0
    assert np.allclose(item["image"][0].numpy(), raw[4:36, 12:44], atol=1e-6)


def test_class_index_masks_use_the_positive_values(tmp_path: Path) -> None:
    """As training reads them (--positive-values): without them such a mask is refused."""
    from sam2elnet.errors import DataError

    s = _pair(tmp_path, "c", 32, 32, 2, values=(0, 1, 2))
    (first,) = quality_items([s], _norm(), bands=1, seed=0, positive_values=(1.0,))
    (second,) = quality_items([s], _norm(), bands=1, seed=0, positive_values=(2.0,))
    assert int(first["mask"].sum()) == 8 * 8
    assert int(second["mask"].sum()) == 16 * 16
    with pytest.raises(DataError, match="positive-values"):
        quality_items([s], _norm(), bands=1, seed=0)[0]


def test_samples_of_several_sizes_are_batched_by_shape(tmp_path: Path) -> None:
    """Images of two sizes in one fit: every item gives one annotate and one enhance sample,
    each tagged with its own item index and the IoU of its own prediction."""
    from sam2elnet.model import build_model
    from sam2elnet.model.elnet import ModelConfig

    samples = [
        _pair(tmp_path, f"s{i}", *((32, 32) if i % 2 else (48, 40)), seed=i) for i in range(5)
    ]
    items = quality_items(samples, _norm(), bands=1, seed=0)
    assert {tuple(it["image"].shape) for it in items} == {(1, 32, 32), (1, 48, 40)}
    torch.manual_seed(0)
    model = build_model(ModelConfig(size="micro", in_bands=1)).eval()
    dev = torch.device("cpu")
    feats, embs, ious, modes, idx = collect_quality_samples(model, items, dev, "32", 1, 2)
    assert len(ious) == 10 and sorted(idx.tolist()) == sorted(2 * list(range(5)))
    assert sorted(zip(idx.tolist(), modes.tolist(), strict=True)) == [
        (i, m) for i in range(5) for m in (0, 1)
    ]
    for i in (0, 3):  # one item alone gives the same sample as inside the mixed batches
        one = collect_quality_samples(model, [items[i]], dev, "32", 1, 2)
        for mode in (0.0, 1.0):
            row = np.flatnonzero((idx == i) & (modes == mode))[0]
            j = np.flatnonzero(one[3] == mode)[0]
            assert np.isclose(ious[row], one[2][j], atol=1e-6)
            assert np.allclose(feats[row], one[0][j], atol=1e-4)


def test_training_fits_the_evaluator_at_native_scale(tmp_path: Path, monkeypatch) -> None:
    """`elnet train --image-size 32` on 40 px images: the evaluator's samples are 40 px."""
    import sam2elnet.engine.quality_fit as qf
    from sam2elnet.engine.train import train

    seen: list[tuple[int, ...]] = []
    real = qf.collect_quality_samples

    def spy(model, items, *a, **k):
        seen.extend(tuple(it["image"].shape[-2:]) for it in items)
        return real(model, items, *a, **k)

    monkeypatch.setattr(qf, "collect_quality_samples", spy)
    data = make_dataset(tmp_path / "d", n=6, size=40)
    res = train(small_cfg(data, tmp_path / "run", image_size=32))
    assert res.best_path.is_file()
    assert seen and set(seen) == {(40, 40)}


@pytest.mark.parametrize("mode", ["resize", "pad"])
def test_other_evaluation_modes_unchanged(tmp_path: Path, mode: str) -> None:
    from sam2elnet.data.datasets import SegmentationDataset

    s = _pair(tmp_path, "d", 40, 56, 3)
    ds = SegmentationDataset([s], _norm(), size=32, train=False, eval_mode=mode)
    assert tuple(ds[0]["image"].shape) == (1, 32, 32)


def test_training_on_class_index_masks_fits_the_evaluator(tmp_path: Path) -> None:
    """`elnet train --positive-values 2` on masks with classes 1 and 2: the evaluator's samples
    read the masks with the same values (they were read without, and refused, after training)."""
    from sam2elnet.engine.train import train
    from sam2elnet.model import load_model

    data = make_dataset(tmp_path / "d", n=6, size=32)
    for m in (data / "masks").iterdir():  # 255 -> class 2; a class-1 block beside it
        a = cv2.imread(str(m), cv2.IMREAD_GRAYSCALE)
        a = np.where(a > 127, 2, 0).astype(np.uint8)
        a[:4, :4] = 1
        cv2.imwrite(str(m), a)
    res = train(small_cfg(data, tmp_path / "run", positive_values=[2]))
    _, extra = load_model(res.best_path)
    assert extra["train"]["positive_values"] == [2]
    assert extra["quality_summary"]["n"] > 0


def test_items_are_decoded_one_batch_at_a_time(tmp_path: Path, monkeypatch) -> None:
    """Native-size items of hundreds of large images would not fit in memory together: the
    sequence decodes an item when indexed, the batches are grouped by header sizes, and each item
    is decoded exactly once by a fit's sample collection."""
    from sam2elnet.data.datasets import SegmentationDataset
    from sam2elnet.engine.quality_items import ChainedItems, QualityItems
    from sam2elnet.model import build_model
    from sam2elnet.model.elnet import ModelConfig

    samples = [
        _pair(tmp_path, f"s{i}", *((32, 32) if i % 2 else (48, 40)), seed=i) for i in range(5)
    ]
    decoded: list[str] = []
    real = SegmentationDataset.__getitem__

    def counting(self, i):  # noqa: ANN001, ANN202
        decoded.append(self.samples[i].id)
        return real(self, i)

    monkeypatch.setattr(SegmentationDataset, "__getitem__", counting)
    val = quality_items(samples[:2], _norm(), bands=1, seed=0)
    train = quality_items(samples[2:], _norm(), bands=1, seed=0)
    assert isinstance(val, QualityItems) and decoded == []  # nothing decoded yet
    both = ChainedItems(val, train)
    assert [both.hw(i) for i in range(5)] == [(48, 40), (32, 32), (48, 40), (32, 32), (48, 40)]
    assert decoded == []  # sizes from the headers
    torch.manual_seed(0)
    model = build_model(ModelConfig(size="micro", in_bands=1)).eval()
    collect_quality_samples(model, both, torch.device("cpu"), "32", 1, 2)
    assert sorted(decoded) == sorted(s.id for s in samples)  # each once
    # the chained parts keep their own item positions (and so their simulated coarse labels)
    assert torch.equal(both[2]["coarse"], train[0]["coarse"])
