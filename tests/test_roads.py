"""Roads domain: detection, augmentation against domain shift, clDice and road measures in training."""

from __future__ import annotations

import csv
import os
from pathlib import Path

os.environ.setdefault("SAM2ELNET_THREADS", "1")

import numpy as np
import pytest
from helpers_data import make_dataset, small_cfg
from helpers_roads import gapped_predictions, make_road_dataset

from sam2elnet.data.augment import jitter as _jitter
from sam2elnet.data.datasets import Augmentation, Sample, SegmentationDataset
from sam2elnet.data.domain import detect_domain
from sam2elnet.engine.train_data import training_recipe


def _masks(root: Path) -> list[Path]:
    return sorted((root / "masks").glob("*.png"))


def test_domain_is_detected_from_the_shape_of_the_labels(tmp_path: Path) -> None:
    roads = make_road_dataset(tmp_path / "roads", n=8, size=48)
    blobs = make_dataset(tmp_path / "blobs", n=8)
    g = detect_domain(_masks(roads), layout="generic", modality="optical")
    assert g.domain == "roads" and "elongation" in g.reason
    assert detect_domain(_masks(blobs), layout="generic", modality="optical").domain == "other"
    # facts before shapes: SAR is never roads, a CHN6 layout or dataset.json task always is
    assert detect_domain(_masks(roads), modality="sar").domain == "other"
    assert detect_domain(_masks(blobs), layout="chn6").domain == "roads"
    assert detect_domain(_masks(blobs), meta={"task": "road"}).domain == "roads"
    assert detect_domain([], modality="optical").domain == "other"


def test_domain_on_real_roads_and_oil_spills(shared_data: Path) -> None:
    roads = shared_data / "roads-dev"
    sos = shared_data / "sos-dev"
    if not roads.is_dir() or not sos.is_dir():
        pytest.skip("roads-dev / sos-dev not available")
    assert detect_domain(_masks(roads), layout="generic", modality="optical").roads
    sos_masks = sorted(sos.glob("train/*/*_mask.png"))
    # even read as optical data, oil slicks are not line networks
    assert not detect_domain(sos_masks, layout="generic", modality="optical").roads


def test_recipe_for_roads_and_overrides(tmp_path: Path) -> None:
    data = tmp_path / "d"
    cfg = small_cfg(data, tmp_path / "o")
    road = detect_domain([], layout="chn6")
    weights, aug, line = training_recipe(cfg, road)
    # roads take the plain defaults since the 5-fold measurement (docs/training.md)
    assert weights.topology == 0.0 and aug == Augmentation() == Augmentation.for_domain("roads")
    assert "domain: roads" in line and "no topology loss (auto:" in line
    assert "topology_loss='cldice' (--topology-loss cldice) adds it" in line
    assert "photometric 1, per-band 0" in line
    assert "; domain='roads'|'other' (--domain roads|other) overrides)" in line
    weights, aug, line = training_recipe(cfg, detect_domain([], modality="sar"))
    assert weights.topology == 0.0 and aug == Augmentation()
    assert "no topology loss" in line
    cfg2 = small_cfg(
        data,
        tmp_path / "o",
        topology_loss="none",
        aug_scale="0.6,1.5",
        aug_photometric=0.0,
        aug_band_jitter=0.1,
    )
    weights, aug, _ = training_recipe(cfg2, road)
    assert weights.topology == 0.0
    assert aug == Augmentation(scale=(0.6, 1.5), photometric=0.0, band_jitter=0.1)
    weights, _, line = training_recipe(
        small_cfg(data, tmp_path / "o", topology_loss="cldice", topology_weight=1.5), None
    )
    assert (
        weights.topology == 1.5
        and (
            "(weight 1.5, topology_loss='cldice' (--topology-loss cldice); "
            "topology_loss='none' (--topology-loss none) turns it off)"
        )
        in line
    )


def test_bad_augmentation_options_are_refused(tmp_path: Path) -> None:
    from pydantic import ValidationError

    for bad in ("2,0.5", "0.5", "a,b", "0,2"):
        with pytest.raises(ValidationError):
            small_cfg(tmp_path, tmp_path / "o", aug_scale=bad)
    with pytest.raises(ValueError):
        Augmentation(scale=(2.0, 1.0))


def test_band_jitter_gives_each_band_its_own_gain() -> None:
    x = np.full((3, 16, 16), 0.5, np.float32)
    valid = np.ones((16, 16), bool)
    off = _jitter(x, valid, np.random.default_rng(0), Augmentation(photometric=0.0))
    assert np.array_equal(off, x)  # everything off: unchanged
    y = _jitter(x, valid, np.random.default_rng(0), Augmentation(photometric=0.0, band_jitter=0.1))
    means = y.reshape(3, -1).mean(1)
    assert np.ptp(means) > 0.01  # a colour cast: bands moved differently
    assert np.all(np.abs(means - 0.5) <= 0.3 + 1e-6)  # within gain 1 +- 0.2 and offset +- 0.1
    # nodata stays 0
    valid[:4] = False
    y = _jitter(x, valid, np.random.default_rng(1), Augmentation(photometric=2, band_jitter=0.1))
    assert np.all(y[:, :4] == 0)
    # a single-band (SAR) image gets no per-band draw: the random stream is unchanged
    r1, r2 = np.random.default_rng(5), np.random.default_rng(5)
    _jitter(x[:1], valid, r1, Augmentation(band_jitter=0.1))
    _jitter(x[:1], valid, r2, Augmentation())
    assert r1.random() == r2.random()


def test_scale_range_sets_the_window_seen_in_training(tmp_path: Path) -> None:
    import cv2

    data = make_road_dataset(tmp_path / "r", n=1, size=64)
    s = [Sample("r00", data / "images" / "r00.png", data / "masks" / "r00.png")]
    truth = cv2.imread(str(s[0].mask), cv2.IMREAD_GRAYSCALE) > 127

    def item(scale: float) -> dict:
        aug = Augmentation(scale=(scale, scale), photometric=0.0)
        return SegmentationDataset(s, size=32, train=True, coarse_prob=0.0, augmentation=aug)[0]

    # scale 2 at 32 px: a 64 px window, i.e. the whole image shrunk 2x (road share unchanged)
    zoomed_out = item(2.0)
    assert float(zoomed_out["mask"].mean()) == pytest.approx(float(truth.mean()), abs=0.03)
    # scale 0.5: a 16 px window enlarged 2x; it holds 1/16 of the image, never all of it
    zoomed_in = item(0.5)
    assert zoomed_in["image"].shape == (3, 32, 32)
    assert float(zoomed_in["mask"].sum()) != float(zoomed_out["mask"].sum())


def test_road_training_logs_road_measures_and_uses_cldice(tmp_path: Path) -> None:
    from sam2elnet.engine.train import ROAD_FIELDS, train

    data = make_road_dataset(tmp_path / "data", n=8, size=48)
    lines: list[str] = []
    res = train(
        small_cfg(data, tmp_path / "run", image_size=48, fit_quality=False), echo=lines.append
    )
    text = "\n".join(lines)
    assert "domain: roads" in text and "no topology loss (auto:" in text
    assert "road quality" in text
    rows = list(csv.DictReader((res.run_dir / "metrics.csv").open()))
    for key in ROAD_FIELDS:
        assert key in rows[0]
    for key in ("val_road_correctness", "val_road_completeness", "val_road_quality"):
        assert 0.0 <= float(rows[-1][key]) <= 1.0
    from sam2elnet.model import load_model

    _, extra = load_model(res.best_path)
    assert extra["train"]["domain"] == "roads" and extra["train"]["topology_loss"] == "none"


def test_fine_tuning_keeps_the_init_models_domain(tmp_path: Path) -> None:
    """The review loop: `elnet train --data reviewed --init-model roads.pt` on a few reviewed
    labels that do not look like a road network (elongation below 15) kept the roads model's
    normalisation and trunk but switched to the 'other' domain (no road measures);
    the --init-model's domain is kept now, and --domain still overrides it."""
    from sam2elnet.data.layouts import discover
    from sam2elnet.engine.train import train
    from sam2elnet.engine.train_data import training_domain

    roads = make_road_dataset(tmp_path / "roads", n=8, size=48)
    base = train(
        small_cfg(roads, tmp_path / "r0", image_size=48, fit_quality=False), echo=lambda _m: None
    )
    blobs = make_dataset(tmp_path / "reviewed", n=6)
    lines: list[str] = []
    cfg = small_cfg(blobs, tmp_path / "r1", init_model=base.best_path, fit_quality=False)
    res = train(cfg, echo=lines.append)
    text = "\n".join(lines)
    assert f"domain: roads (the init_model (--init-model)'s, {base.best_path}; domain=" in text
    assert "domain: roads" in text and "road measures in validation" in text
    from sam2elnet.model import load_model

    assert load_model(res.best_path)[1]["train"]["domain"] == "roads"
    index = discover(blobs)
    other = small_cfg(blobs, tmp_path / "r2", init_model=base.best_path, domain="other")
    assert training_domain(other, index, index.samples).domain == "other"
    fresh = small_cfg(blobs, tmp_path / "r3")  # without --init-model: the labels' shape decides
    assert training_domain(fresh, index, index.samples).domain == "other"


def test_non_road_training_keeps_its_columns(tmp_path: Path) -> None:
    from sam2elnet.engine.train import METRIC_FIELDS, train

    data = make_dataset(tmp_path / "data", n=6)
    res = train(small_cfg(data, tmp_path / "run", fit_quality=False), echo=lambda _m: None)
    header = (res.run_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    assert header == list(METRIC_FIELDS)


def test_cli_train_options_reach_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sam2elnet.cli import main
    from sam2elnet.config import TrainConfig

    data = make_road_dataset(tmp_path / "data", n=6, size=40)
    out = tmp_path / "run"
    rc = main(
        [
            "train", "--data", str(data), "--out", str(out), "--size", "micro", "--epochs", "1",
            "--image-size", "32", "--batch-size", "2", "--no-quality", "--no-progress",
            "--domain", "other", "--topology-loss", "cldice", "--topology-weight", "0.3",
            "--aug-scale", "0.5,2", "--aug-band-jitter", "0.02",
        ],
    )  # fmt: skip
    said = capsys.readouterr()
    output = said.out + said.err
    assert rc == 0, output
    assert "domain: other (given: --domain" in output and "weight 0.3" in output
    cfg = TrainConfig.load(out / "config.yaml")
    assert cfg.aug_scale == (0.5, 2.0) and cfg.topology_loss == "cldice"

    args = ["train", "--data", str(data), "--out", str(tmp_path / "x"), "--aug-scale", "3,1"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: invalid value for --aug-scale: '3,1'") and "0.5,2" in err
    assert "class" not in err


def test_evaluate_adds_road_measures_for_road_truth(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sam2elnet.cli import main
    from sam2elnet.engine.evaluate import evaluate_folders

    roads = make_road_dataset(tmp_path / "roads", n=6, size=48)
    pred = gapped_predictions(roads, tmp_path / "pred")
    res = evaluate_folders(pred, roads / "masks", roads="auto", progress=False)
    assert res.options["roads"] is True and "elongation" in res.options["roads_reason"]
    assert res.aggregate["road_correctness"] == pytest.approx(1.0, abs=0.05)
    assert res.aggregate["road_completeness"] < 0.9
    off = evaluate_folders(pred, roads / "masks", roads=False, progress=False)
    assert "road_quality" not in off.aggregate
    blobs = make_dataset(tmp_path / "blobs", n=6)
    res = evaluate_folders(blobs / "masks", blobs / "masks", roads="auto", progress=False)
    assert res.options["roads"] is False and "road_quality" not in res.aggregate
    assert main(["evaluate", "--pred", str(pred), "--truth", str(roads / "masks")]) == 0
    out = capsys.readouterr().out
    assert "road measures: on (auto: roads" in out and "road quality" in out
    assert (
        main(["evaluate", "--pred", str(pred), "--truth", str(roads / "masks"), "--no-roads"]) == 0
    )
    assert "road quality" not in capsys.readouterr().out


def test_evaluate_reads_each_truth_once_when_deciding_road_measures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--roads auto looks at a sample of the truths (here all 6) to decide: the pair loop counts
    those masks as read then (each truth file read once, 12 reads before), with the same scores
    as --roads (no decision)."""
    import cv2

    import sam2elnet.data.masks as masks_mod
    from sam2elnet.engine.evaluate import evaluate_folders

    roads = make_road_dataset(tmp_path / "roads", n=6, size=48)
    pred = tmp_path / "pred"
    pred.mkdir()
    for m in _masks(roads):
        a = cv2.imread(str(m), cv2.IMREAD_GRAYSCALE)
        a[:, 16:32] = 0
        cv2.imwrite(str(pred / m.name), a)
    reads: list[str] = []
    real = masks_mod.read_mask_valid

    def counted(path, *a, **kw):  # noqa: ANN001, ANN002, ANN003
        reads.append(Path(path).resolve().parent.name)
        return real(path, *a, **kw)

    with monkeypatch.context() as m:
        m.setattr(masks_mod, "read_mask_valid", counted)
        res = evaluate_folders(pred, roads / "masks", roads="auto", progress=False)
    assert res.options["roads"] is True and "over 6 labels" in res.options["roads_reason"]
    assert reads.count("masks") == 6 and reads.count("pred") == 6
    given = evaluate_folders(pred, roads / "masks", roads=True, progress=False)
    assert res.aggregate == given.aggregate
    assert [r.metrics for r in res.images] == [r.metrics for r in given.images]
    from sam2elnet.engine.eval_stream import KeptTruths

    first = _masks(roads)[0]
    none_kept = KeptTruths(max_bytes=0)  # past the budget: read, not kept (its pair reads it)
    assert none_kept.read(first).shape == (48, 48) and none_kept.take(first) is None
    kept = KeptTruths()
    t = kept.read(first)
    got = kept.take(first)
    assert got is not None and got[0] is t and kept.take(first) is None and kept.bytes == 0


def test_downstream_and_experiment_tables_carry_road_measures(tmp_path: Path) -> None:
    from sam2elnet.engine.downstream import DownstreamConfig, train_and_evaluate
    from sam2elnet.engine.metrics import ROAD_KEYS
    from sam2elnet.pipeline.experiment_markdown import _road_table
    from sam2elnet.pipeline.experiment_stats import table_row as _row

    data = make_road_dataset(tmp_path / "d", n=4, size=40)
    pairs = [(p, data / "masks" / p.name) for p in sorted((data / "images").glob("*.png"))]
    cfg = DownstreamConfig(
        steps=2, image_size=32, batch_size=2, progress=False, model_options={"width": 4, "depth": 2}
    )
    res = train_and_evaluate(pairs[:2], pairs[2:], cfg, roads=True)
    for k in ROAD_KEYS[:3]:
        assert 0.0 <= res.metrics[k] <= 1.0
    plain = train_and_evaluate(pairs[:2], pairs[2:], cfg)
    assert not set(ROAD_KEYS) & set(plain.metrics)
    row = _row("full", "(a) 100 % original labels", {"metrics": res.metrics}, 2, 2)
    table = "\n".join(_road_table([row]))
    assert "| (a) 100 % original labels | " in table and "road completeness" in table
    assert f"{res.metrics['road_quality']:.3f}" in table
    assert _road_table([_row("full", "(a)", {"metrics": plain.metrics}, 2, 2)]) == []


def test_cv_closing_lines_give_all_four_road_measures() -> None:
    """`elnet cv` prints the road measures cv.md has: connectivity was missing from the line."""
    from sam2elnet.cli.cv_cmd import summary_lines

    def ms(mean: float, std: float) -> dict[str, float]:
        return {"mean": mean, "std": std, "n": 2}

    road = {
        "iou": ms(0.139, 0.01),
        "f1": ms(0.244, 0.015),
        "road_correctness": ms(0.104, 0.001),
        "road_completeness": ms(0.175, 0.032),
        "road_quality": ms(0.070, 0.005),
        "road_connectivity": ms(0.185, 0.031),
    }
    assert summary_lines({"test": road}) == [
        "test: IoU 0.139 ± 0.010, F1 0.244 ± 0.015, road completeness 0.175 ± 0.032, "
        "correctness 0.104 ± 0.001, quality 0.070 ± 0.005, connectivity 0.185 ± 0.031"
    ]
    oil = {"iou": ms(0.6, 0.02), "f1": ms(0.75, 0.01)}
    gap = {"mean": 0.1, "std": None}
    assert summary_lines({"in_domain": oil, "iou_gap": gap}) == [
        "in-domain: IoU 0.600 ± 0.020, F1 0.750 ± 0.010",
        "in-domain minus cross-domain IoU: 0.100",
    ]
    rq = {"mean": 0.05, "std": 0.01}
    assert summary_lines({"in_domain": oil, "iou_gap": gap, "road_quality_gap": rq})[1:] == [
        "in-domain minus cross-domain IoU: 0.100",
        "in-domain minus cross-domain road quality: 0.050 ± 0.010",
    ]


def test_the_road_quality_gap_is_summarised_for_roads_only() -> None:
    from sam2elnet.pipeline.crossval_report import summarise

    def fold(iou_in, iou_x, rq_in, rq_x):
        return {"tests": {"in_domain": {"iou": iou_in, "road_quality": rq_in},
                          "cross_domain": {"iou": iou_x, "road_quality": rq_x}}}  # fmt: skip

    folds = [fold(0.3, 0.2, 0.20, 0.08), fold(0.4, 0.1, 0.25, None)]
    roads = summarise(folds, ["iou", "road_quality"])
    assert roads["iou_gap"]["mean"] == pytest.approx(0.2) and roads["iou_gap"]["n"] == 2
    # a direction without a cross-domain road quality (no road in its test set) is left out
    assert roads["road_quality_gap"] == {"mean": pytest.approx(0.12), "std": None, "n": 1}
    assert "road_quality_gap" not in summarise(folds, ["iou"])


def test_cv_md_says_how_road_measures_are_aggregated() -> None:
    """cv.md's per-fold heading said 'pixel-aggregated' over road measures, which sum
    centre-line lengths (and road pieces for connectivity), not pixels."""
    from sam2elnet.pipeline.crossval_report import render_markdown

    fold = {"fold": "fold-1", "tests": {"test": {"n_images": 2, "iou": 0.3, "road_quality": 0.2}}}
    r = {"keys": ["iou", "road_quality"], "mode": "kfold", "folds_total": 5, "folds_done": 1,
         "data": "roads-dev", "n_images": 60, "domain": "roads", "domain_reason": "r",
         "folds": [fold], "summary": {}, "train": {}, "seed": 0, "seconds_this_run": 1.0}  # fmt: skip
    md = render_markdown(r)
    assert "## Per fold (pixel-aggregated over each test set; road measures: centre-line " \
        "lengths and road pieces summed over it)" in md  # fmt: skip
    r["keys"] = ["iou"]
    fold["tests"]["test"].pop("road_quality")
    assert "## Per fold (pixel-aggregated over each test set)\n" in render_markdown(r)
