"""data.stats: the library behind ``elnet stats`` (pairs, train-split rule, statistics, payload)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers_data import make_generic, make_sos

from sam2elnet.cli import main
from sam2elnet.data.layouts import discover
from sam2elnet.data.stats import dataset_stats, evenly_spaced, stats_samples


def test_statistics_come_from_the_train_split_only(tmp_path):
    root = make_sos(tmp_path / "sos", n=3)
    st = dataset_stats(root, progress=False)
    assert st.train_only
    assert {s.split for s in st.samples} == {"train"} and len(st.samples) == 6
    # asking for a split turns the rule off
    test_only = dataset_stats(root, split=["test"], progress=False)
    assert not test_only.train_only and {s.split for s in test_only.samples} == {"test"}


def test_payload_is_what_the_cli_writes(tmp_path, capsys):
    root = make_sos(tmp_path / "sos", n=3)
    out = tmp_path / "stats.json"
    assert main(["stats", "--data", str(root), "--no-progress", "--max-images", "4",
                 "--out", str(out)]) == 0  # fmt: skip
    written = json.loads(out.read_text())
    payload = dataset_stats(root, max_images=4, progress=False).payload()
    assert written == json.loads(json.dumps(payload))
    assert payload["images_used"] == 4 and payload["pairs"]["train/palsar"] == 3
    assert payload["layout"] == "sos" and payload["modality"] == "sar"


def test_flat_layout_uses_every_pair_and_evenly_spaced_subsets(tmp_path):
    root = make_generic(tmp_path / "g", n=5)
    index = discover(root)
    samples, train_only = stats_samples(index, None)
    assert not train_only and len(samples) == 5
    picked = evenly_spaced(samples, 2)
    assert [s.id for s in picked] == [samples[0].id, samples[2].id]  # step 2.5 -> 0, 2
    assert evenly_spaced(samples, 0) == samples
    st = dataset_stats(root, p_low=2, p_high=98, progress=False)
    assert st.config.p_low == 2 and st.config.p_high == 98
    assert np.all(np.asarray(st.config.high) >= np.asarray(st.config.low))


def test_check_skips_a_truncated_mask_and_records_it(tmp_path):
    """check=True: the pair whose mask is cut short is skipped and listed in the payload; the
    statistics come from the other pairs (the same as without that pair)."""
    from helpers_data import write_png

    from sam2elnet.errors import DataError

    root = make_generic(tmp_path / "g", n=3)
    bad = root / "masks" / "img1.png"
    bad.write_bytes(bad.read_bytes()[:40])
    st = dataset_stats(root, check=True, progress=False)
    assert [s.id for s in st.samples] == ["img0", "img2"]
    assert [s["file"] for s in st.payload()["skipped"]] == [str(bad)]
    assert st.payload()["n_skipped"] == 1 and "cannot decode" in st.skipped[0]["reason"]
    (root / "images" / "img1.png").unlink()
    bad.unlink()
    assert st.config == dataset_stats(root, progress=False).config
    for i in (0, 2):  # nothing usable left: one error naming the dataset folder
        write_png(root / "masks" / f"img{i}.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(DataError) as err:
        dataset_stats(root, check=True, progress=False)
    assert str(err.value).startswith(f"{root}: nothing produced: all 2 files could not be used")


def test_all_nodata_images_are_refused_in_the_flag_rules_words(tmp_path):
    """compute_stats over images without a valid pixel said "every image is entirely nodata"
    while elnet scene / annotate say "all nodata (no valid pixel: ...)": one wording now
    (data.validity.NO_VALID_PIXEL, which model.input_flags.unusable_text uses too)."""
    import rasterio

    from sam2elnet.data.norm_fit import compute_stats
    from sam2elnet.data.validity import ALL_NODATA_FLAG, NO_VALID_PIXEL
    from sam2elnet.errors import DataError
    from sam2elnet.model.input_flags import unusable_text

    paths = []
    for i in range(2):
        p = tmp_path / f"nd{i}.tif"
        with rasterio.open(p, "w", driver="GTiff", height=32, width=32, count=1,
                           dtype="uint8", nodata=0) as d:  # fmt: skip
            d.write(np.zeros((1, 32, 32), np.uint8))
        paths.append(p)
    with pytest.raises(DataError) as err:
        compute_stats(paths, progress=False)
    words = f"{ALL_NODATA_FLAG} ({NO_VALID_PIXEL})"
    assert words == (
        "all nodata (no valid pixel: every pixel is the file's nodata value, NaN, +-inf or masked)"
    )
    assert f"every image is {words}; check the nodata value or mask" in str(err.value)
    assert f"no label written: {words}; check" in unusable_text(ALL_NODATA_FLAG)
