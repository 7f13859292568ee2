"""Dataset discovery, the training/eval Dataset and fraction splits."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from helpers_data import blob_mask, grey_rgb, make_chn6, make_generic, make_sos, shared, write_png

from sam2elnet.data.datasets import (
    SegmentationDataset,
    discover,
    mask_strata,
    split_fraction,
)
from sam2elnet.data.normalize import NormalizationConfig
from sam2elnet.data.pair_sizes import verify_pairs
from sam2elnet.errors import DataError


# ------------------------------------------------------------------ discovery
def test_discover_sos_train_and_test(tmp_path):
    root = make_sos(tmp_path / "sos")
    idx = discover(root)
    assert idx.layout == "sos" and idx.modality == "sar"
    assert idx.counts() == {
        ("test", "palsar"): 2,
        ("test", "sentinel"): 2,
        ("train", "palsar"): 3,
        ("train", "sentinel"): 3,
    }
    assert len(discover(root, split="test").samples) == 4
    only = discover(root, split="train", sensors=["palsar"])
    assert {s.sensor for s in only.samples} == {"palsar"} and len(only.samples) == 3
    assert discover(root / "train").counts() == {("train", "palsar"): 3, ("train", "sentinel"): 3}
    s = only.samples[0]
    assert s.id == "10000" and s.image.name == "10000_sat.jpg" and s.mask.name == "10000_mask.png"
    with pytest.raises(DataError, match="sensor"):
        discover(root, sensors=["landsat"])


def test_discover_chn6(tmp_path):
    idx = discover(make_chn6(tmp_path / "chn6"))
    assert idx.layout == "chn6" and idx.modality == "optical"
    assert idx.counts() == {("train", "-"): 3, ("val", "-"): 3}
    assert discover(tmp_path / "chn6", split="val").samples[0].id == "val0"
    assert discover(tmp_path / "chn6" / "train").layout == "chn6"


def test_discover_generic_labels_and_coarse(tmp_path):
    idx = discover(make_generic(tmp_path / "g", mask_dir="labels"))
    assert idx.layout == "generic" and len(idx.samples) == 4 and idx.samples[0].coarse is None
    idx = discover(make_generic(tmp_path / "gc", coarse=True))
    assert all(s.coarse is not None and s.coarse.parent.name == "coarse" for s in idx.samples)
    with pytest.raises(DataError, match="layout"):
        discover(tmp_path / "g", layout="nonsense")


def test_unmatched_are_reported(tmp_path, caplog):
    root = make_generic(tmp_path / "g", n=3)
    write_png(root / "images" / "lonely.png", grey_rgb(8))
    write_png(root / "masks" / "orphan.png", np.zeros((8, 8), np.uint8))
    with caplog.at_level(logging.INFO, logger="sam2elnet"):
        idx = discover(root)
    assert len(idx.samples) == 3
    assert sorted(p.name for p in idx.unmatched) == ["lonely.png", "orphan.png"]
    assert "2 files under" in caplog.text and "lonely.png" in caplog.text


def test_discover_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        discover(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty"):
        discover(tmp_path / "empty")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "readme.txt").write_text("hi")
    with pytest.raises(DataError, match="no recognisable dataset layout") as junk:
        discover(tmp_path / "junk")
    assert "(see docs/data.md); found no folders in it" in str(junk.value)
    # a folder name that is not recognised (mask/, not masks/): the error names what it found
    write_png(tmp_path / "singular" / "images" / "a.png", grey_rgb(8))
    write_png(tmp_path / "singular" / "mask" / "a.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(DataError) as singular:
        discover(tmp_path / "singular")
    assert "(see docs/data.md); found: images/, mask/" in str(singular.value)
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(DataError, match="file"):
        discover(tmp_path / "f.txt")
    nomatch = tmp_path / "nomatch"
    write_png(nomatch / "images" / "a.png", grey_rgb(8))
    write_png(nomatch / "masks" / "b.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(DataError, match="no image/label pairs"):
        discover(nomatch)


def test_labels_named_after_their_images_pair(tmp_path):
    """annotate / enhance / elnet import name a label after its image (``10791_sat.png`` for
    ``10791_sat.jpg``); such a folder (the review loop's ``reviewed/``) must pair, coarse too."""
    root = tmp_path / "reviewed"
    for i, sid in enumerate(("10791", "20855")):
        write_png(root / "images" / f"{sid}_sat.jpg", grey_rgb(16, i))
        write_png(root / "masks" / f"{sid}_sat.png", blob_mask(16, i).astype(np.uint8) * 255)
        write_png(root / "coarse" / f"{sid}_sat.png", np.full((16, 16), 255, np.uint8))
    idx = discover(root)
    assert [s.id for s in idx.samples] == ["10791", "20855"] and idx.unmatched == []
    assert [s.mask.name for s in idx.samples] == ["10791_sat.png", "20855_sat.png"]
    assert all(s.coarse is not None and s.coarse.name == s.mask.name for s in idx.samples)
    # the _mask tag still pairs, also after an image tag
    write_png(root / "masks" / "10791_sat.png", np.zeros((16, 16), np.uint8))
    (root / "masks" / "10791_sat.png").rename(root / "masks" / "10791_sat_mask.png")
    assert [s.mask.name for s in discover(root).samples][0] == "10791_sat_mask.png"


def test_no_pairs_error_names_example_files(tmp_path):
    write_png(tmp_path / "g" / "images" / "a.png", grey_rgb(8))
    write_png(tmp_path / "g" / "masks" / "b.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(DataError, match=r"2 unmatched files, e\.g\. a\.png, b\.png\)"):
        discover(tmp_path / "g")


def test_discover_synthetic_layout(tmp_path):
    from sam2elnet.data.synthetic import generate_dataset

    generate_dataset(tmp_path / "syn", "oil-spill", count=3, size=32, seed=0, progress=False)
    idx = discover(tmp_path / "syn")
    assert idx.layout == "generic" and idx.modality == "sar" and len(idx.samples) == 3
    assert all(s.coarse is not None for s in idx.samples)
    assert idx.meta["task"] == "oil-spill"


def test_real_data_discovery_counts():
    sos = discover(shared("sos-dev"))
    assert len(sos.samples) == 400 and sos.layout == "sos" and not sos.unmatched
    assert sos.counts() == {("train", "palsar"): 200, ("train", "sentinel"): 200}
    roads = discover(shared("roads-dev"))
    assert len(roads.samples) == 60 and roads.layout == "generic" and not roads.unmatched
    assert len(verify_pairs(sos.samples)) == 400  # every real mask (3-channel, noisy greys) reads
    strata = mask_strata(sos.samples)
    assert 0 < strata.count("empty") < 50  # the sample has some empty masks
    sel, rest = split_fraction(sos.ids, 0.3, seed=0, strata=strata)
    assert len(sel) == 120 and {strata[sos.ids.index(i)] for i in sel} == {"empty", "object"}


# ------------------------------------------------------------------ dataset
def _ds(tmp_path, **kw):
    idx = discover(make_generic(tmp_path / "g", n=3, size=40))
    defaults = {"norm_cfg": NormalizationConfig(method="fixed", sar=True), "size": 32, "seed": 3}
    defaults.update(kw)
    return SegmentationDataset(idx.samples, **defaults)


def test_item_contract(tmp_path):
    ds = _ds(tmp_path, coarse_prob=1.0)
    item = ds[0]
    assert isinstance(ds, torch.utils.data.Dataset) and len(ds) == 3
    assert item["image"].shape == (1, 32, 32) and item["image"].dtype == torch.float32
    for k in ("mask", "valid", "coarse"):
        assert item[k].shape == (1, 32, 32) and item[k].dtype == torch.float32
        assert set(torch.unique(item[k]).tolist()) <= {0.0, 1.0}
    assert item["has_coarse"].shape == () and float(item["has_coarse"]) == 1.0
    assert item["id"] == "img0"
    assert 0.0 <= float(item["image"].min()) and float(item["image"].max()) <= 1.0


def test_determinism_and_epochs(tmp_path):
    ds = _ds(tmp_path)
    a, b = ds[1], ds[1]
    for k in ("image", "mask", "coarse", "valid"):
        assert torch.equal(a[k], b[k])
    other = _ds(tmp_path, seed=3)
    assert torch.equal(other[1]["image"], a["image"])
    diffs = []
    for e in range(1, 4):
        ds.set_epoch(e)
        diffs.append(not torch.equal(ds[1]["image"], a["image"]))
    assert any(diffs)


def test_no_coarse_when_prob_zero(tmp_path):
    ds = _ds(tmp_path, coarse_prob=0.0)
    item = ds[0]
    assert float(item["has_coarse"]) == 0.0 and float(item["coarse"].sum()) == 0.0


def test_eval_mode_resize_and_pad(tmp_path):
    ds = _ds(tmp_path, train=False, coarse_prob=0.0)
    item = ds[0]
    assert item["image"].shape == (1, 32, 32) and float(item["valid"].min()) == 1.0
    assert torch.equal(ds[0]["image"], item["image"])
    pad = _ds(tmp_path, train=False, coarse_prob=0.0, size=64, eval_mode="pad")
    it = pad[0]
    assert it["image"].shape == (1, 64, 64)
    assert (
        float(it["valid"][0, :40, :40].min()) == 1.0 and float(it["valid"][0, 40:, :].max()) == 0.0
    )
    # without augmentation the mask equals the file
    m = blob_mask(40, 0)
    np.testing.assert_array_equal(it["mask"][0, :40, :40].numpy() > 0, m)


def test_coarse_file_is_used(tmp_path):
    idx = discover(make_generic(tmp_path / "gc", n=2, size=32, coarse=True))
    ds = SegmentationDataset(
        idx.samples,
        NormalizationConfig(method="fixed", sar=True),
        size=32,
        train=False,
        coarse_prob=1.0,
    )
    item = ds[0]
    assert (
        float(item["has_coarse"]) == 1.0 and float(item["coarse"].min()) == 1.0
    )  # all-ones coarse file


def test_band_mismatch_is_error(tmp_path):
    ds = _ds(tmp_path, norm_cfg=NormalizationConfig(method="fixed", sar=False), bands=4)
    with pytest.raises(DataError, match="band count"):
        ds[0]


def test_size_mismatch_in_dataset_names_both(tmp_path):
    root = make_generic(tmp_path / "g", n=1, size=32)
    write_png(root / "masks" / "img0.png", np.zeros((20, 20), np.uint8))
    ds = SegmentationDataset(discover(root).samples, NormalizationConfig(), size=16)
    with pytest.raises(DataError) as err:
        ds[0]
    assert "img0.png" in str(err.value) and "images" in str(err.value) and "masks" in str(err.value)


def test_real_sos_item():
    idx = discover(shared("sos-dev"), sensors="sentinel")
    ds = SegmentationDataset(
        idx.samples[:2], NormalizationConfig.for_modality("sar"), size=64, seed=0
    )
    item = ds[0]
    assert item["image"].shape == (1, 64, 64) and float(item["valid"].min()) == 1.0


# ------------------------------------------------------------------ splits
def test_split_fraction_reproducible_and_sorted():
    ids = [f"id{i:03d}" for i in range(100)]
    sel, rest = split_fraction(ids, 0.3, seed=1)
    assert len(sel) == 30 and len(rest) == 70 and sel == sorted(sel) and rest == sorted(rest)
    assert set(sel).isdisjoint(rest) and set(sel) | set(rest) == set(ids)
    assert split_fraction(list(reversed(ids)), 0.3, seed=1) == (sel, rest)
    assert split_fraction(ids, 0.3, seed=2)[0] != sel


def test_split_fraction_stratified():
    ids = [f"s{i}" for i in range(20)]
    strata = ["empty"] * 3 + ["oil"] * 17
    sel, rest = split_fraction(ids, 0.1, seed=0, strata=strata)
    empty = set(ids[:3])
    assert empty & set(sel) and empty & set(rest)
    assert len(sel) == 3  # 1 empty (at least one) + round(1.7) = 2 oil
    with pytest.raises(DataError):
        split_fraction(ids, 1.5)
    with pytest.raises(DataError):
        split_fraction(ids, 0.3, strata=["a"])
    assert split_fraction(ids, 0.0) == ([], sorted(ids))
    assert split_fraction(ids, 1.0) == (sorted(ids), [])


def test_mask_strata(tmp_path):
    root = make_generic(tmp_path / "g", n=2, size=16)
    write_png(root / "masks" / "img1.png", np.zeros((16, 16), np.uint8))
    assert mask_strata(discover(root).samples) == ["object", "empty"]


def test_mask_strata_without_a_bar_prints_a_stage_line(tmp_path, caplog):
    """``--no-progress`` (progress False): no bar, one ``strata: 2/2 masks in ... s`` line (the
    experiment's split stage scans every mask; it was silent, as a bare tqdm disabled)."""
    from sam2elnet.utils.progress import LOGGER_NAME

    root = make_generic(tmp_path / "g", n=2, size=16)
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        mask_strata(discover(root).samples, progress=False)
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER_NAME]
    assert len(lines) == 1 and lines[0].startswith("strata: 2/2 masks in ")


def test_two_labels_of_one_image_are_an_error_naming_both(tmp_path):
    """A reviewed mask ``elnet import`` wrote (``a.png``, named like its image) next to the label
    it corrects (``a_mask.png``) pairs with the same image: only the last one in name order was
    used (here the old label), and the other was neither paired nor counted as unmatched."""
    root = tmp_path / "d"
    write_png(root / "images" / "a.png", grey_rgb(16, 0))
    write_png(root / "images" / "b.png", grey_rgb(16, 1))
    write_png(root / "masks" / "a.png", np.full((16, 16), 255, np.uint8))  # the reviewed one
    write_png(root / "masks" / "a_mask.png", np.zeros((16, 16), np.uint8))
    write_png(root / "masks" / "b.png", np.zeros((16, 16), np.uint8))
    with pytest.raises(
        DataError, match=r"two labels of one image name 'a': a\.png and a_mask\.png"
    ):
        discover(root)
    (root / "masks" / "a_mask.png").unlink()
    assert [s.mask.name for s in discover(root).samples] == ["a.png", "b.png"]
    write_png(root / "images" / "b.jpg", grey_rgb(16, 2))  # two images of one name
    with pytest.raises(DataError, match=r"two images of one image name 'b': b\.jpg and b\.png"):
        discover(root)
    (root / "images" / "b.jpg").unlink()
    write_png(root / "coarse" / "a.png", np.zeros((16, 16), np.uint8))
    write_png(root / "coarse" / "a_sat.png", np.zeros((16, 16), np.uint8))
    with pytest.raises(DataError, match="two coarse labels of one image name 'a'"):
        discover(root)


def test_no_pairs_error_names_an_image_and_a_label_and_stands_alone(tmp_path, caplog):
    """Trial finding: images `<id>_sat.jpg` with masks `scene_N.png` gave a warning (`30 file(s)
    ... have no image/label partner ...`) and then the error, which named two images
    (`e.g. 10791_sat.jpg, 10806_sat.jpg`): the names that fail to pair were not side by side."""
    import logging

    for i in (1, 2, 3):
        write_png(tmp_path / "g" / "images" / f"{i}_sat.png", grey_rgb(8))
        write_png(tmp_path / "g" / "masks" / f"scene_{i}.png", np.zeros((8, 8), np.uint8))
    with caplog.at_level(logging.WARNING), pytest.raises(DataError) as err:
        discover(tmp_path / "g")
    assert "6 unmatched files, e.g. 1_sat.png, scene_1.png); check file names" in str(err.value)
    assert not [r for r in caplog.records if "no image/label partner" in r.getMessage()]


def test_unpaired_warning_says_review_only_where_an_import_was_made(tmp_path, caplog):
    """Trial finding: the warning ended with "(not reviewed yet: review, `elnet import`)" for a
    folder no import ever touched; the review step is now said only when a folder of the
    unpaired files or beside it holds an import record (.elnet-import.json)."""
    import logging

    root = tmp_path / "g"
    for i in (1, 2):
        write_png(root / "images" / f"{i}.png", grey_rgb(8))
        write_png(root / "masks" / f"{i}.png", np.zeros((8, 8), np.uint8))
    write_png(root / "images" / "3.png", grey_rgb(8))  # no label

    def warning() -> str:
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            discover(root)
        (msg,) = [
            r.getMessage() for r in caplog.records if "no image/label partner" in r.getMessage()
        ]
        return msg

    assert warning().endswith(
        "to use an image, give it a label named like it (<id>_sat / <id>_mask, or equal stems)"
    )
    (root / "masks" / ".elnet-import.json").write_text('{"source": "e.json", "masks": ["1.png"]}')
    assert warning().endswith(
        "(<id>_sat / <id>_mask, or equal stems; an image whose task was not reviewed yet has "
        "none: review it, then `elnet import` again)"
    )


def test_flat_folder_and_one_sos_sensor_folder_are_datasets(tmp_path):
    """A folder of images with their ``<id>_mask`` labels beside them, and one SOS sensor folder
    (``sos/train/palsar``, the same kind of folder), were 'no recognisable dataset layout' (a
    protocol trial: `elnet experiment --data sos/train/palsar`); now they are datasets."""
    flat = tmp_path / "flat"
    for i, (img, lab) in enumerate((("a.png", "a_mask.png"), ("b_sat.jpg", "b_gt.png"))):
        write_png(flat / img, grey_rgb(16, i))
        write_png(flat / lab, blob_mask(16, i).astype(np.uint8) * 255)
    write_png(flat / "lonely.png", grey_rgb(16, 3))
    idx = discover(flat)
    assert idx.layout == "flat" and [s.id for s in idx.samples] == ["a", "b"]
    assert [(s.image.name, s.mask.name) for s in idx.samples] == [
        ("a.png", "a_mask.png"),
        ("b_sat.jpg", "b_gt.png"),
    ]
    assert [p.name for p in idx.unmatched] == ["lonely.png"]
    sos = make_sos(tmp_path / "sos", n=3)
    one = discover(sos / "train" / "palsar")
    assert one.layout == "sos" and one.modality == "sar"
    assert [(s.id, s.split, s.sensor) for s in one.samples] == [
        (str(10000 + i), "train", "palsar") for i in range(3)
    ]
    test = discover(sos / "test" / "sentinel")
    assert [(s.id, s.split, s.sensor) for s in test.samples] == [
        ("20500", "test", "sentinel"),
        ("20501", "test", "sentinel"),
    ]
    # a folder of masks only is no dataset (coarse labels given to refine / enhance)
    masks_only = tmp_path / "coarse"
    write_png(masks_only / "a_mask.png", blob_mask(16, 0).astype(np.uint8) * 255)
    with pytest.raises(DataError, match="no recognisable dataset layout"):
        discover(masks_only)
