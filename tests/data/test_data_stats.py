"""data.stats: the library behind ``elnet stats`` (pairs, train-split rule, statistics, payload)."""

from __future__ import annotations

import json

import numpy as np
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
