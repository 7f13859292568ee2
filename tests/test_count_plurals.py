"""Messages that count what they name agree with the count: ``1 image has`` / ``2 images have``
(they read ``1 image(s) have``, ``1 model(s) of table 1 are``), through
:func:`sam2elnet.utils.advice.plural`. Each message is built by its own function, for one and
for two."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS

from sam2elnet.errors import DataError


def test_degenerate_models_of_table_1_are_counted() -> None:
    from sam2elnet.pipeline.experiment_markdown import degenerate_note

    rows = [{"title": "(a) 100 % original labels"}, {"title": "(b) labelled fraction only"}]
    one = degenerate_note(rows, [None, "no foreground"])
    two = degenerate_note(rows, ["no foreground", "no foreground"])
    assert one is not None and one.startswith(
        "1 model of table 1 is degenerate: (b) found no foreground (recall 0). "
    )
    assert two is not None and two.startswith(
        "2 models of table 1 are degenerate: (a), (b) found no foreground (recall 0). "
    )


def test_labels_an_experiment_stage_did_not_produce_are_counted(tmp_path: Path) -> None:
    from sam2elnet.pipeline.experiment_engine import rows_to_labels

    result = SimpleNamespace(
        rows=[{"image": "a.png", "label": "labels/a.png", "predicted_iou": 0.5}], out_dir=tmp_path
    )
    with pytest.raises(DataError) as one:
        rows_to_labels(result, ["a", "b"])
    with pytest.raises(DataError) as two:
        rows_to_labels(result, ["a", "b", "c"])
    assert "1 label was not produced (e.g. b; see skipped.csv)" in str(one.value)
    assert "2 labels were not produced (e.g. b; see skipped.csv)" in str(two.value)


def test_prediction_pixels_outside_a_resampled_truth_are_counted() -> None:
    from sam2elnet.engine.eval_stream import Resampled

    def note(outside: int) -> str:
        return Resampled("64x64 px", outside).note(Path("t.tif"), Path("p.tif"))

    assert note(1).endswith("; 1 prediction pixel outside its footprint not counted")
    assert note(2).endswith("; 2 prediction pixels outside its footprint not counted")


def _png(path: Path) -> None:
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(path)


def test_images_without_a_coarse_label_to_refine_are_counted(tmp_path: Path) -> None:
    from sam2elnet.pipeline.refine import refine_folder

    images, coarse = tmp_path / "images", tmp_path / "coarse"
    images.mkdir()
    coarse.mkdir()
    _png(coarse / "a.png")
    _png(images / "a.png")
    _png(images / "b.png")
    with pytest.raises(DataError) as one:
        refine_folder(images, coarse, tmp_path / "out1", "morphological", progress=False)
    _png(images / "c.png")
    with pytest.raises(DataError) as two:
        refine_folder(images, coarse, tmp_path / "out2", "morphological", progress=False)
    assert f"1 image has no coarse label in {coarse}: b.png;" in str(one.value)
    assert f"2 images have no coarse label in {coarse}: b.png, c.png;" in str(two.value)


def test_the_closing_line_of_a_folder_job_counts_its_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sam2elnet.cli.job_summary import print_folder

    def closing(n: int) -> str:
        summary = {"n_images": n, "n_kept": n, "n_rejected": 0, "n_skipped": 0}
        summary.update(seconds=1.0, mean_predicted_iou=0.5)
        print_folder(SimpleNamespace(summary=summary, rows=[], out_dir=tmp_path), "annotated")
        return capsys.readouterr().out.splitlines()[0]

    assert closing(1).startswith("annotated 1 image in 1.0 s: kept 1, rejected 0")
    assert closing(2).startswith("annotated 2 images in 1.0 s: kept 2, rejected 0")


def test_the_masks_an_import_wrote_and_removed_are_counted(tmp_path: Path) -> None:
    """``elnet import --from vector`` of a one-image layer said "reviewed3/masks: 1 masks
    written"."""
    from sam2elnet.export.import_result import ImportResult
    from sam2elnet.export.mask_folder import removed_note

    def line(n: int) -> str:
        masks = [tmp_path / f"m{i}.png" for i in range(n)]
        names = [p.name for p in masks]
        return ImportResult(tmp_path, masks, [], removed=names).summary().splitlines()[0]

    assert line(1) == f"{tmp_path}: 1 mask written; 1 stale mask of the earlier import removed"
    assert line(2) == f"{tmp_path}: 2 masks written; 2 stale masks of the earlier import removed"
    assert removed_note(tmp_path, ["a.png"])[0].startswith("removed 1 mask an earlier import ")
    assert removed_note(tmp_path, ["a.png", "b.png"])[0].startswith("removed 2 masks an earlier ")


def test_too_few_ground_control_points_to_warp_are_counted(tmp_path: Path) -> None:
    from sam2elnet.data.warp import check_warpable

    def error(n: int) -> str:
        path = tmp_path / f"gcps{n}.tif"
        gcps = [GroundControlPoint(0, 8 * i, 28.0 + 0.1 * i, 43.0) for i in range(n)]
        with rasterio.open(
            path, "w", driver="GTiff", height=16, width=16, count=1, dtype="uint8",
            gcps=gcps, crs=CRS.from_epsg(4326),
        ) as dst:  # fmt: skip
            dst.write(np.zeros((1, 16, 16), np.uint8))
        with pytest.raises(DataError) as info:
            check_warpable(path, "EPSG:3857")
        return str(info.value)

    assert "has 1 ground control point; warping needs at least 3" in error(1)
    assert "has 2 ground control points; warping needs at least 3" in error(2)


def test_band_counts_in_the_band_advice_are_counted() -> None:
    from sam2elnet.data.band_match import band_layout
    from sam2elnet.data.images import select_bands
    from sam2elnet.errors import BandCountError

    def never() -> bool:
        raise AssertionError("identical() must not be asked")

    def error(*args: object, **kw: object) -> str:
        with pytest.raises(BandCountError) as info:
            band_layout(*args, **kw)  # type: ignore[arg-type]
        return str(info.value)

    assert "trained for 1; choose 1 band with --bands (e.g. --bands 1)" in error(
        2, 1, lambda: False, "two.tif"
    )
    assert "trained for 2; choose 2 bands with --bands (e.g. --bands 1,2)" in error(
        3, 2, never, "three.tif"
    )
    assert error(2, 1, lambda: False, "six.tif", chosen=[1, 2], file_bands=6).endswith(
        "give 1 band number of the file's 6 to --bands (e.g. --bands 1)"
    )
    assert error(3, 2, never, "six.tif", chosen=[1, 2, 3], file_bands=6).endswith(
        "give 2 band numbers of the file's 6 to --bands (e.g. --bands 1,2)"
    )
    with pytest.raises(DataError) as one:
        select_bands(np.zeros((1, 4, 4), np.uint8), [2], Path("grey.tif"))
    with pytest.raises(DataError) as two:
        select_bands(np.zeros((2, 4, 4), np.uint8), [3], Path("vv_vh.tif"))
    assert "asks for band 2 but the image has 1 band (alpha excluded)" in str(one.value)
    assert "asks for band 3 but the image has 2 bands (alpha excluded)" in str(two.value)


def test_more_bands_of_another_polarisation_are_counted(tmp_path: Path) -> None:
    from sam2elnet.data.band_match import check_polarisation

    def warning(n: int) -> str | None:
        path = tmp_path / f"vh{n}.tif"
        with rasterio.open(
            path, "w", driver="GTiff", height=4, width=4, count=n, dtype="float32"
        ) as dst:
            dst.write(np.zeros((n, 4, 4), np.float32))
            for b in range(1, n + 1):
                dst.set_band_description(b, "VH")
        return check_polarisation(path, ["VV"] * n)

    two, three = warning(2), warning(3)
    assert two is not None and "('VV') (and 1 more band), a different" in two
    assert three is not None and "('VV') (and 2 more bands), a different" in three


def test_unpaired_files_of_a_dataset_are_counted(tmp_path: Path, caplog) -> None:
    import logging

    from sam2elnet.data.layouts import discover

    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
        _png(tmp_path / sub / "a.png")
    _png(tmp_path / "images" / "b.png")
    with caplog.at_level(logging.WARNING, logger="sam2elnet"):
        discover(tmp_path)
    assert f"1 file under {tmp_path} has no image/label partner and is left out" in caplog.text
    caplog.clear()
    _png(tmp_path / "masks" / "c.png")
    with caplog.at_level(logging.WARNING, logger="sam2elnet"):
        discover(tmp_path)
    assert f"2 files under {tmp_path} have no image/label partner and are left out" in caplog.text


def test_skipped_pairs_of_an_evaluation_report_are_counted() -> None:
    from sam2elnet.pipeline.report import _skipped_table

    skipped = [{"file": "a.png", "reason": "a.png: cannot read"}]
    assert _skipped_table(skipped, 0)[1] == [
        "1 of 1 pair skipped: they could not be scored and are not in the numbers "
        "(table 'skipped pairs')"
    ]
    assert _skipped_table(skipped, 1, unit="image", outcome="no label was made")[1] == [
        "1 of 2 images skipped: no label was made (table 'skipped images')"
    ]


def _quality_csv(out: Path, rows: list[tuple[str, str]]) -> None:
    """A previous run's quality.csv: one row per (label file name, predicted_iou); each label
    file is written empty."""
    lines = ["image,label,predicted_iou"]
    for name, score in rows:
        (out / name).write_bytes(b"")
        lines.append(f"{name},{name},{score}")
    (out / "quality.csv").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("n", "said"),
    [(1, "1 empty or unreadable label in"), (2, "2 empty or unreadable labels in")],
)
def test_labels_a_resumed_folder_job_redoes_are_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, n: int, said: str
) -> None:
    from sam2elnet.engine.folder_inputs import read_done

    _quality_csv(tmp_path, [(f"{i}.png", "0.5") for i in range(n)])
    with caplog.at_level("WARNING", logger="sam2elnet"):
        assert read_done(tmp_path, ["image", "label", "predicted_iou"]) == {}
    assert f"{said} {tmp_path} will be redone" in caplog.text


@pytest.mark.parametrize(
    ("n", "said"),
    [(1, ("1 row of", "has a", "that image will")), (2, ("2 rows of", "have a", "those images"))],
)
def test_rows_with_an_unusable_predicted_iou_are_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, n: int, said: tuple[str, ...]
) -> None:
    from sam2elnet.engine.folder_inputs import read_done

    _quality_csv(tmp_path, [(f"{i}.png", "inf") for i in range(n)])
    with caplog.at_level("WARNING", logger="sam2elnet"):
        read_done(tmp_path, ["image", "label", "predicted_iou"])
    for words in said:
        assert words in caplog.text


@pytest.mark.parametrize(
    ("scores", "said"),
    [
        (
            ["1.5"],
            "1 row has a predicted_iou that is not a number in [0, 1] (e.g. '1.5' for "
            "a.png on line 2); it is treated",
        ),
        (
            ["1.5", "inf"],
            "2 rows have a predicted_iou that is not a number in [0, 1] (e.g. '1.5' "
            "for a.png on line 2); they are treated",
        ),
    ],
)
def test_rows_of_a_quality_table_without_a_usable_score_are_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, scores: list[str], said: str
) -> None:
    from sam2elnet.data.runfolder import read_quality_table

    q = tmp_path / "quality.csv"
    rows = [f"{chr(97 + i)}.png,{s}" for i, s in enumerate(scores)]
    q.write_text("image,predicted_iou\n" + "\n".join(rows) + "\n")
    with caplog.at_level("WARNING", logger="sam2elnet"):
        read_quality_table(q)
    assert f"{q}: {said} as having no score" in caplog.text


@pytest.mark.parametrize(("n", "said"), [(1, "only 1 label"), (2, "only 2 labels")])
def test_labels_too_few_to_judge_the_shape_are_counted(tmp_path: Path, n: int, said: str) -> None:
    from sam2elnet.data.domain import UNJUDGED, detect_domain

    paths = []
    for i in range(n):
        mask = np.zeros((32, 32), np.uint8)
        mask[8:20, 8:20] = 255
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(mask).save(paths[-1])
    assert detect_domain(paths).reason == f"{said} {UNJUDGED}"


@pytest.mark.parametrize(("n_extra", "said"), [(1, "1 prediction and 0 ground-truth masks have"),
                                               (2, "2 predictions and 0 ground-truth masks have")])  # fmt: skip
def test_predictions_without_a_truth_mask_are_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, n_extra: int, said: str
) -> None:
    """evaluate's unmatched-files warning (it read '1 prediction(s) and 0 ground-truth mask(s)')."""
    from sam2elnet.engine.evaluate import evaluate_folders

    pred, truth = tmp_path / "pred", tmp_path / "truth"
    pred.mkdir()
    truth.mkdir()
    mask = np.zeros((32, 32), np.uint8)
    mask[8:20, 8:20] = 255
    Image.fromarray(mask).save(truth / "a.png")
    for name in ["a", *(f"extra{i}" for i in range(n_extra))]:
        Image.fromarray(mask).save(pred / f"{name}.png")
    with caplog.at_level("WARNING", logger="sam2elnet"):
        evaluate_folders(pred, truth)
    assert f"{said} no partner (first: " in caplog.text


@pytest.mark.parametrize(("n_other", "said"), [(1, "; 1 other: "), (2, "; 2 others: ")])
def test_the_modality_vote_counts_the_other_images(tmp_path: Path, n_other: int, said: str) -> None:
    """The modality reason's minority count (it read '1 other(s)')."""
    from sam2elnet.data.modality import _from_images

    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):  # float dB, one band: SAR
        p = tmp_path / f"sar{i}.tif"
        db = (-15 + rng.normal(0, 2, (1, 32, 32))).astype(np.float32)
        with rasterio.open(p, "w", driver="GTiff", width=32, height=32, count=1,
                           dtype="float32") as dst:  # fmt: skip
            dst.write(db)
        paths.append(p)
    for i in range(n_other):  # differing colour bands: optical
        p = tmp_path / f"rgb{i}.png"
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    decision = _from_images(paths, None)
    assert decision.modality == "sar"
    assert said in decision.reason


@pytest.mark.parametrize(
    ("n", "said"),
    [
        (1, "1 label file in {} is from an earlier run and not in quality.csv (e.g. 0.png); "
            "delete it or"),
        (2, "2 label files in {} are from an earlier run and not in quality.csv (e.g. 0.png); "
            "delete them or"),
    ],
)  # fmt: skip
def test_label_files_a_folder_job_does_not_list_are_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, n: int, said: str
) -> None:
    """The folder job's closing check (it read '1 label file(s) in OUT are from')."""
    from sam2elnet.engine.folder_job import FolderJob

    (tmp_path / "labels").mkdir()
    for i in range(n):
        _png(tmp_path / "labels" / f"{i}.png")
    job = SimpleNamespace(rows=[], order={}, out=tmp_path)
    with caplog.at_level("WARNING", logger="sam2elnet"):
        FolderJob.on_disk(job)  # type: ignore[arg-type]
    assert said.format(tmp_path) in caplog.text


@pytest.mark.parametrize(("n", "said"), [(1, "erased the only polygon of this label"),
                                         (2, "erased all 2 polygons of this label")])  # fmt: skip
def test_polygons_a_tolerance_erases_are_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, n: int, said: str
) -> None:
    """The export's erased-label warning (it read 'erased all 1 polygon(s)')."""
    from rasterio.transform import from_origin

    from sam2elnet.export.labels import LabelRaster
    from sam2elnet.export.polygonize import iter_polygons

    m = np.zeros((1000, 1000), np.uint8)
    m[500, 500 : 500 + 100 * n : 100] = 255  # one-pixel specks a smoothing of 900 px erases
    path = tmp_path / "speck.tif"
    with rasterio.open(path, "w", driver="GTiff", width=1000, height=1000, count=1, dtype="uint8",
                       crs="EPSG:32633", transform=from_origin(0, 1000, 1, 1)) as ds:  # fmt: skip
        ds.write(m, 1)
    lab = LabelRaster(path)
    try:
        with caplog.at_level("WARNING"):
            assert list(iter_polygons(lab, smooth=900)) == []
    finally:
        lab.close()
    assert said in caplog.text


@pytest.mark.parametrize(("n", "said"), [(2, "a.tif (and 1 more raster like it): far"),
                                         (3, "a.tif (and 2 more rasters like it): far")])  # fmt: skip
def test_rasters_of_a_varying_pixel_size_are_counted(
    caplog: pytest.LogCaptureFixture, n: int, said: str
) -> None:
    """The scale-spread warning (it read '(and 1 more raster(s) like it)')."""
    from sam2elnet.data.georef import warn_scale_spread

    wide = SimpleNamespace(spread_note=lambda: "far")
    with caplog.at_level("WARNING"):
        warn_scale_spread({f"{chr(97 + i)}.tif": wide for i in range(n)})  # type: ignore[misc]
    assert said in caplog.text


@pytest.mark.parametrize(
    ("n", "said"),
    [
        (1, "1 label replaced by the reviewed mask `elnet import` wrote"),
        (2, "2 labels replaced by the reviewed masks `elnet import` wrote"),
    ],
)
def test_labels_replaced_by_reviewed_masks_are_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, n: int, said: str
) -> None:
    """Pairing a dataset folder with reviewed masks (it read '1 labels replaced by ...')."""
    import json

    from sam2elnet.data.layouts import _pair
    from sam2elnet.data.naming import IMPORT_RECORD

    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for k in "ab":
        _png(images / f"{k}.png")
        _png(masks / f"{k}.png")
        _png(masks / f"{k}_mask.png")
    reviewed = [f"{k}_mask.png" for k in "ab"[:n]]
    (masks / IMPORT_RECORD).write_text(json.dumps({"masks": [*reviewed, "b_mask.png"][:2]}))
    if n == 1:
        (masks / "b_mask.png").unlink()
    with caplog.at_level("WARNING", logger="sam2elnet"):
        _pair(sorted(images.iterdir()), sorted(masks.glob("*.png")), None, None)
    assert said in caplog.text
    assert f"move the old {'label' if n == 1 else 'labels'} out of the folder" in caplog.text


def test_held_out_empty_labels_of_a_quality_flag_are_counted() -> None:
    """An empty label's quality_flag (it read '1 of 1 held-out empty labels like it were')."""
    from sam2elnet.model.quality_empty import empty_flag

    assert empty_flag("k", {"k": [1.0, 1.0]}).endswith(
        ": 1 of 1 held-out empty label like it was right"
    )
    assert empty_flag("k", {"k": [2.0, 2.0]}).endswith(
        ": 2 of 2 held-out empty labels like it were right"
    )


@pytest.mark.parametrize(
    ("n", "said"),
    [
        (1, "the only ground-truth mask in t has no georeference (CRS + transform, or GCPs), "
            "so the polygons of one file cannot be placed on it; do X"),
        (2, "none of the 2 ground-truth masks in t has a georeference (CRS + transform, or "
            "GCPs), so the polygons of one file cannot be placed on them; do X"),
    ],
)  # fmt: skip
def test_rasters_without_georeference_for_one_polygon_file_are_counted(
    tmp_path: Path, n: int, said: str
) -> None:
    """Evaluate's refusal of one polygon file (it read 'none of the 1 ground-truth mask(s)')."""
    from sam2elnet.engine.eval_vector import need_georeference
    from sam2elnet.errors import UserError

    files = [tmp_path / f"{i}.png" for i in range(n)]
    for f in files:
        _png(f)
    with pytest.raises(UserError) as info:
        need_georeference(files, "ground-truth mask", "do X", tmp_path / "p.gpkg", "in t")
    assert str(info.value).endswith(said)


@pytest.mark.parametrize(("n", "said"), [
    (1, ("the only prediction has no georeference", "which cannot be placed on it;")),
    (2, ("none of the 2 predictions has a georeference", "which cannot be placed on them;")),
])  # fmt: skip
def test_rasters_a_shared_vector_file_cannot_be_placed_on_are_counted(
    n: int, said: tuple[str, str]
) -> None:
    """The refusal of one vector file for a folder (it read 'none of the 1 prediction(s)')."""
    from sam2elnet.data.vector_names import unplaceable_message

    plain = [Path(f"{i}.png") for i in range(n)]
    msg = unplaceable_message("t.gpkg", "", plain, n, "EPSG:32633", "evaluate")
    assert msg.startswith(said[0]) and said[1] in msg


@pytest.mark.parametrize(
    ("n", "said"),
    [
        (1, "l.gpkg: 1 of 2 predictions has no baseline polygon in its footprint: its baseline "),
        (2, "l.gpkg: 2 of 3 predictions have no baseline polygon in their footprint: their "),
    ],
)
def test_pairs_a_polygon_file_does_not_reach_are_counted(
    caplog: pytest.LogCaptureFixture, n: int, said: str
) -> None:
    """The shared polygon file's per-pair warning (it read '1 of 2 prediction(s) have')."""
    from sam2elnet.engine.eval_vector import layer_check
    from sam2elnet.engine.metrics import Confusion

    with caplog.at_level("WARNING"):
        layer_check(Path("l.gpkg"), [Confusion(tp=4), *[Confusion(tn=4)] * n], "baseline")
    assert said in caplog.text


@pytest.mark.parametrize(("n", "said"), [(1, "of the 1 evaluated prediction;"),
                                         (2, "of the 2 evaluated predictions;")])  # fmt: skip
def test_predictions_a_polygon_file_covers_none_of_are_counted(n: int, said: str) -> None:
    """The shared polygon file's error (it read 'of the 1 evaluated prediction(s)')."""
    from sam2elnet.engine.eval_vector import layer_check
    from sam2elnet.engine.metrics import Confusion

    with pytest.raises(DataError) as info:
        layer_check(Path("l.gpkg"), [Confusion(tn=4)] * n)
    assert said in str(info.value)


@pytest.mark.parametrize(("epochs", "lr", "said"), [(8, None, "drop the option, or"),
                                                    (8, 0.5, "drop the options, or")])  # fmt: skip
def test_options_a_resumed_training_refuses_are_counted(
    tmp_path: Path, epochs: int, lr: float | None, said: str
) -> None:
    """--resume with changed options (it read 'drop the option(s)')."""
    from sam2elnet.config import TrainConfig
    from sam2elnet.engine.train_setup import resumed_config
    from sam2elnet.errors import UserError

    saved = TrainConfig(data=tmp_path / "d", out=tmp_path / "r", epochs=6)
    given = TrainConfig(data=tmp_path / "d", out=tmp_path / "r", epochs=epochs, resume=True,
                        **({"lr": lr} if lr is not None else {}))  # fmt: skip
    with pytest.raises(UserError) as info:
        resumed_config(saved, given, tmp_path / "r" / "config.yaml")
    assert said in str(info.value)


@pytest.mark.parametrize(("bad", "said"), [(["nope"], "unknown refiner ['nope'];"),
                                           (["no", "pe"], "unknown refiners ['no', 'pe'];")])  # fmt: skip
def test_unknown_refiners_are_counted(bad: list[str], said: str) -> None:
    """The experiment's refiner check (it read 'unknown refiner(s)')."""
    from pydantic import ValidationError

    from sam2elnet.pipeline.experiment_config import ExperimentConfig

    with pytest.raises(ValidationError) as info:
        ExperimentConfig(data="d", out="o", refiners=tuple(bad))
    assert said in str(info.value)


@pytest.mark.parametrize(("bad", "said"), [(["x"], "unknown sensor ['x'];"),
                                           (["x", "y"], "unknown sensors ['x', 'y'];")])  # fmt: skip
def test_unknown_sensors_are_counted(tmp_path: Path, bad: list[str], said: str) -> None:
    """discover's sensor check (it read 'unknown sensor(s)')."""
    from sam2elnet.data.layouts import discover

    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
        _png(tmp_path / sub / "a.png")
    with pytest.raises(DataError) as info:
        discover(tmp_path, sensors=bad)
    assert said in str(info.value)


def test_class_index_values_of_the_experiment_note_are_counted() -> None:
    """results.md's class-index note (it read 'value(s) 2 read as object')."""
    from sam2elnet.pipeline.experiment_split import class_index_note

    assert "class-index masks: value 2 read as object" in class_index_note([2.0])
    assert "class-index masks: values 2, 3 read as object" in class_index_note([2.0, 3.0])


def test_degenerate_models_of_table_1_are_referred_to_in_number() -> None:
    """degenerate_note's second sentence (it read 'Their scores ... they were trained on' for
    one model)."""
    from sam2elnet.pipeline.experiment_markdown import degenerate_note

    rows = [{"title": "(a) 100 % original labels"}, {"title": "(b) labelled fraction only"}]
    one = degenerate_note(rows, [None, "no foreground"])
    two = degenerate_note(rows, ["no foreground", "no foreground"])
    assert one is not None and "(recall 0). Its scores, and a verdict that uses them, say " \
        "nothing about the labels it was trained on: " in one  # fmt: skip
    assert two is not None and "(recall 0). Their scores, and a verdict that uses them, say " \
        "nothing about the labels they were trained on: " in two  # fmt: skip


@pytest.mark.parametrize(
    ("n", "said"),
    [
        (1, "1 downstream model is degenerate (highlighted row): it predicted almost every "
            "pixel as foreground, or none; its scores say"),
        (2, "2 downstream models are degenerate (highlighted rows): they predicted almost every "
            "pixel as foreground, or none; their scores say"),
    ],
)  # fmt: skip
def test_degenerate_downstream_models_of_the_report_are_counted(
    tmp_path: Path, n: int, said: str
) -> None:
    """report.html's degenerate warning (it read 'they ... their scores' for one model)."""
    from sam2elnet.pipeline.report_protocol import write_protocol_report

    fine = {"title": "y", "iou": 0.6, "miou": 0.78, "precision": 0.7, "recall": 0.8, "f1": 0.7}
    bad = {"title": "x", "iou": 0.05, "miou": 0.025, "precision": 0.05, "recall": 1.0, "f1": 0.1}
    rows = [dict(fine), *(dict(bad) for _ in range(n))]
    results = {
        "table1": [dict(r, hand_labels=9, train_images=9) for r in rows],
        "table2": [],
        "autolabels": {"n": 0, "threshold": None},
        "split": {"labelled": 3},
    }
    text = write_protocol_report(tmp_path / "p.html", results, [], title="protocol").read_text()
    assert said in text


@pytest.mark.parametrize(
    ("ids", "said"),
    [
        ({"x"}, "the only listed id names no prediction; check --ids"),
        ({"x", "y"}, "none of the 2 listed ids names a prediction; check --ids"),
    ],
)
def test_listed_ids_naming_no_prediction_are_counted(
    tmp_path: Path, ids: set[str], said: str
) -> None:
    """evaluate --ids naming no prediction (it read 'none of the 1 listed ids names')."""
    from sam2elnet.engine.evaluate import evaluate_folders

    for sub in ("p", "t"):
        (tmp_path / sub).mkdir()
        _png(tmp_path / sub / "a.png")
    with pytest.raises(DataError) as info:
        evaluate_folders(tmp_path / "p", tmp_path / "t", ids=ids)
    assert said in str(info.value)


@pytest.mark.parametrize(
    ("ids", "said"),
    [
        ({"x"}, "the only listed id names no mask in this folder; check --ids"),
        ({"x", "y"}, "none of the 2 listed ids names a mask in this folder; check --ids"),
    ],
)
def test_listed_ids_naming_no_mask_to_degrade_are_counted(
    tmp_path: Path, ids: set[str], said: str
) -> None:
    """The coarse-label job's --ids (it read 'none of the 1 listed ids names a mask')."""
    from sam2elnet.data.coarse import degrade_folder

    (tmp_path / "m").mkdir()
    _png(tmp_path / "m" / "a.png")
    with pytest.raises(DataError) as info:
        degrade_folder(tmp_path / "m", tmp_path / "out", progress=False, ids=ids)
    assert said in str(info.value)


@pytest.mark.parametrize(
    ("n", "said"),
    [
        (1, "the only label feature does not overlap the image: image extent "),
        (2, "none of the 2 label features overlaps the image: image extent "),
    ],
)
def test_label_features_off_the_image_are_counted(n: int, said: str) -> None:
    """The no-overlap refusal of a label layer (it read 'none of the 1 label features')."""
    from sam2elnet.data.vector_grid import no_overlap_message

    box = (0.0, 0.0, 8.0, 8.0)
    msg = no_overlap_message(n, box, (20.0, 20.0, 30.0, 30.0), "EPSG:32633", None, box)
    assert msg.startswith(said)


@pytest.mark.parametrize(
    ("n", "said"),
    [
        (1, "the only image of the COCO file was not found: looked in --images {d} for a.png; "),
        (2, "none of the 2 images of the COCO file was found: looked in --images {d} for a.png, "),
    ],
)
def test_export_images_not_under_images_are_counted(tmp_path: Path, n: int, said: str) -> None:
    """An --images folder holding none of an export's images (it read 'holds none of the 1
    images')."""
    from sam2elnet.errors import UserError
    from sam2elnet.export.image_lookup import ExportImage, find_images

    _png(tmp_path / "other.png")
    entries = [ExportImage(name, (8, 8), lambda h, w: "") for name in ("a.png", "b.png")[:n]]
    with pytest.raises(UserError) as info:
        find_images(entries, tmp_path, "the COCO file", "rename one", tmp_path / "c.json")
    assert said.format(d=tmp_path) in str(info.value)


@pytest.mark.parametrize(
    ("n", "said"),
    [
        (
            1,
            "the only image of annotations.xml was not found: looked in the zip's images/ for a.png; ",
        ),
        (
            2,
            "none of the 2 images of annotations.xml was found: looked in the zip's images/ for a.png, ",
        ),
    ],
)
def test_cvat_images_not_in_the_zip_are_counted(tmp_path: Path, n: int, said: str) -> None:
    """A CVAT zip whose images/ holds none of its images (it read 'holds none of the 1
    images')."""
    import zipfile

    from sam2elnet.export.cvat_import import import_cvat

    images = "".join(
        f'<image id="{i}" name="{name}" width="8" height="8"></image>'
        for i, name in enumerate(("a.png", "b.png")[:n])
    )
    xml = (
        '<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version><meta><task>'
        "<labels><label><name>oil spill</name></label></labels></task></meta>"
        f"{images}</annotations>"
    )
    z = tmp_path / "task.zip"
    _png(tmp_path / "other.png")
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("annotations.xml", xml)
        zf.write(tmp_path / "other.png", "images/other.png")
    with pytest.raises(DataError) as info:
        import_cvat(z, tmp_path / "m", progress=False)
    assert said in str(info.value)


@pytest.mark.parametrize(
    ("stems", "said"),
    [
        (["a"], "the only image of the download (a) is not listed in the review record; give "),
        (["a", "b"], "none of the 2 images of the download (a, b) is listed in the review record"),
    ],
)
def test_download_images_a_review_record_does_not_list_are_counted(
    tmp_path: Path, stems: list[str], said: str
) -> None:
    """--review-set listing none of a download's images (it read 'lists none of the 1
    images')."""
    from sam2elnet.errors import UserError
    from sam2elnet.export.review_set import download_check, write_review_set

    rec = write_review_set(tmp_path / "x.gpkg", [{"source": "o.png", "label": "o.tif"}])
    with pytest.raises(UserError) as info:
        download_check(tmp_path / "task.zip", rec, False, stems)
    assert said in str(info.value)


@pytest.mark.parametrize(
    ("n", "said"),
    [
        (1, "by their predicted IoU, and the only label has none in {q}: give"),
        (2, "by their predicted IoU, and none of the 2 labels has one in {q}: give"),
    ],
)
def test_labels_a_quality_table_does_not_score_are_counted(
    tmp_path: Path, n: int, said: str
) -> None:
    """--review-count with labels the quality table does not score (it read 'none of the 1
    labels')."""
    from sam2elnet.errors import UserError
    from sam2elnet.export.review_pick import pick_for_review

    _quality_csv(tmp_path, [("other.png", "0.5")])
    files = [tmp_path / f"{i}.png" for i in range(n)]
    with pytest.raises(UserError) as info:
        pick_for_review(files, tmp_path / "quality.csv", review_count=1)
    assert said.format(q=tmp_path / "quality.csv") in str(info.value)


@pytest.mark.parametrize(
    ("n", "said"),
    [
        (1, "1 of 2 images with empty ground truth got a non-empty label: a false alarm. Its IoU "
            "is 0 by definition (nothing to overlap), which pulls mean IoUs down; it is marked "
            "'false alarm' in the table and as an orange cross in the scatter plot."),
        (2, "2 of 3 images with empty ground truth got a non-empty label: false alarms. Their "
            "IoU is 0 by definition (nothing to overlap), which pulls mean IoUs down; they are "
            "marked 'false alarm' in the table and as orange crosses in the scatter plot."),
    ],
)  # fmt: skip
def test_false_alarms_of_the_report_are_counted(tmp_path: Path, n: int, said: str) -> None:
    """The report's false-alarm note (it read '1 of 2 images ...: false alarms. Their IoU')."""
    import html

    from sam2elnet.pipeline.report import ReportItem, write_report

    empty = np.zeros((16, 16), bool)
    blob = empty.copy()
    blob[4:8, 4:8] = True
    items = [ReportItem(f"alarm{i}", output=blob, truth=empty) for i in range(n)]
    items.append(ReportItem("quiet", output=empty, truth=empty))
    text = write_report(tmp_path / "r.html", items, title="t").read_text(encoding="utf-8")
    assert said in html.unescape(text)


@pytest.mark.parametrize(
    ("n", "said"),
    [
        (1, "1 of the 3 evaluated images has no baseline label (e.g. a); the baseline must"),
        (2, "2 of the 3 evaluated images have no baseline label (e.g. a, b); the baseline must"),
    ],
)
def test_evaluated_images_without_a_baseline_label_are_counted(
    tmp_path: Path, n: int, said: str
) -> None:
    """evaluate --baseline missing labels: the verb agrees with the first count (already right;
    kept so)."""
    from sam2elnet.engine.evaluate import evaluate_folders

    for sub in ("p", "t", "b"):
        (tmp_path / sub).mkdir()
    for stem in "abc":
        _png(tmp_path / "p" / f"{stem}.png")
        _png(tmp_path / "t" / f"{stem}.png")
    for stem in "abc"[n:]:
        _png(tmp_path / "b" / f"{stem}.png")
    with pytest.raises(DataError) as info:
        evaluate_folders(tmp_path / "p", tmp_path / "t", baseline_dir=tmp_path / "b")
    assert said in str(info.value)


@pytest.mark.parametrize(
    ("n", "said"),
    [
        (1, "the 1 image in the zip's images/ was not used (--images wins"),
        (2, "the 2 images in the zip's images/ were not used (--images wins"),
    ],
)
def test_zip_images_that_images_overrides_are_counted(tmp_path: Path, n: int, said: str) -> None:
    """A CVAT zip's images left for --images (it read 'the 1 images ... were not used')."""
    import zipfile

    from sam2elnet.export.cvat_import import import_cvat

    xml = (
        '<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version><meta><task>'
        "<labels><label><name>oil spill</name></label></labels></task></meta>"
        '<image id="0" name="a.png" width="8" height="8"></image></annotations>'
    )
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    _png(imgs / "a.png")
    z = tmp_path / "task.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("annotations.xml", xml)
        for name in ("a.png", "b.png")[:n]:
            zf.write(imgs / "a.png", f"images/{name}")
    res = import_cvat(z, tmp_path / "m", images=imgs, progress=False)
    assert res.notes[0] == f"images from --images {imgs}; {said}: it keeps a GeoTIFF's " \
        "georeference)"  # fmt: skip


@pytest.mark.parametrize(
    ("missing", "said"),
    [
        (["c.png"], "1 of 3 images of the COCO file is not in {d} (c.png): its mask is a PNG of "
            "the size the file gives, without georeference or nodata; give --images the folder "
            "it came from to keep those"),
        (["b.png", "c.png"], "2 of 3 images of the COCO file are not in {d} (b.png, c.png): "
            "their masks are PNGs of the size the file gives, without georeference or nodata; "
            "give --images the folder they came from to keep those"),
    ],
)  # fmt: skip
def test_export_images_not_found_under_images_are_counted(
    tmp_path: Path, missing: list[str], said: str
) -> None:
    """An import's not-found note (it read '1 of 3 images ... are not in ...: their masks')."""
    from sam2elnet.export.image_lookup import missing_note

    assert missing_note(missing, 3, "the COCO file", tmp_path) == [said.format(d=tmp_path)]


@pytest.mark.parametrize(
    ("n", "said"),
    [
        (1, "1 of 2 label features lies outside the image; skipped"),
        (2, "2 of 3 label features lie outside the image; skipped"),
    ],
)
def test_label_features_outside_their_image_are_counted(tmp_path: Path, n: int, said: str) -> None:
    """A label layer's features off the image (it read '1 of 2 label features lie outside')."""
    import geopandas as gpd
    from rasterio.transform import from_origin
    from shapely.geometry import box

    from sam2elnet.data.vector import VectorLabels

    path = tmp_path / "l.gpkg"
    far = [box(600000 + 200 * i, 3000000, 600100 + 200 * i, 3000100) for i in range(n)]
    inside = box(500100, 3999800, 500200, 3999900)
    gpd.GeoDataFrame(geometry=[inside, *far], crs="EPSG:32633").to_file(path)
    vl = VectorLabels.from_file(
        path, crs="EPSG:32633", transform=from_origin(500000, 4000000, 10, 10), height=30, width=40
    )
    assert any(n.endswith(said) for n in vl.notes), vl.notes


def _exported_layer(tmp_path: Path, n_extra: int, empty: int = 0, block: bool = True) -> Path:
    """Label a.png (a block; without ``block``: none) and ``empty`` all-background labels e0.png
    ... of their images plus ``n_extra`` images never exported, exported to review.gpkg (its
    review record beside it)."""
    from sam2elnet.export.api import export_labels

    (tmp_path / "labels").mkdir()
    (tmp_path / "images").mkdir()
    a = np.zeros((30, 40), np.uint8)
    a[2:10, 3:12] = 255
    if block:
        Image.fromarray(a).save(tmp_path / "labels" / "a.png")
    for i in range(empty):
        Image.fromarray(np.zeros((30, 40), np.uint8)).save(tmp_path / "labels" / f"e{i}.png")
    names = (["a"] if block else []) + [f"e{i}" for i in range(empty)]
    for name in [*names, *(f"extra{i}" for i in range(n_extra))]:
        _png(tmp_path / "images" / f"{name}.png")
    gp = tmp_path / "review.gpkg"
    export_labels(tmp_path / "labels", gp, progress=False, pixel_coords="qgis")
    return gp


@pytest.mark.parametrize(
    ("n", "said"),
    [
        (1, "1 image of {d} is not in the review set (review_review.json): no mask for it "
            "(--all-images makes one for every image)"),
        (2, "2 images of {d} are not in the review set (review_review.json): no mask for them "
            "(--all-images makes one for every image)"),
    ],
)  # fmt: skip
def test_images_outside_the_review_set_are_counted(tmp_path: Path, n: int, said: str) -> None:
    """--from vector with images the review set does not list (it read '1 images of ... are
    not in the review set ...: no mask for them')."""
    from sam2elnet.export.vector_import import import_vector

    gp = _exported_layer(tmp_path, n)
    res = import_vector(gp, tmp_path / "m", images=tmp_path / "images", progress=False)
    assert said.format(d=tmp_path / "images") in res.notes, res.notes


@pytest.mark.parametrize(
    ("n", "said"),
    [
        (1, "1 image of {d} has no feature in the layer and no review set (moved_review.json) "
            "lists it: no mask for it (--review-set names the export's record; --all-images "
            "makes an all-background mask for it)"),
        (2, "2 images of {d} have no feature in the layer and no review set (moved_review.json) "
            "lists them: no mask for them (--review-set names the export's record; --all-images "
            "makes an all-background mask for each)"),
    ],
)  # fmt: skip
def test_images_without_a_feature_and_a_review_set_are_counted(
    tmp_path: Path, n: int, said: str
) -> None:
    """--from vector without a review record, images no feature names (it read '1 images of
    ... have no feature in the layer ... lists them: no mask for them')."""
    import shutil

    from sam2elnet.export.vector_import import import_vector

    moved = shutil.copy(_exported_layer(tmp_path, n), tmp_path / "moved.gpkg")
    res = import_vector(moved, tmp_path / "m", images=tmp_path / "images", progress=False)
    assert said.format(d=tmp_path / "images") in res.notes, res.notes


def _review_notes(unchanged: list[str], n_written: int, reviewed_only: bool) -> list[str]:
    from sam2elnet.export.review_set import ReviewCheck

    check = ReviewCheck(None, reviewed_only, "no shape drawn, changed or deleted")
    check.unchanged = list(unchanged)
    return check.notes(n_written)


@pytest.mark.parametrize(
    ("names", "said"),
    [
        (["a.tif"], "1 image comes back as exported (no shape drawn, changed or deleted): not "
            "reviewed, no mask for it (--reviewed-only): a.tif"),
        (["a.tif", "b.tif"], "2 images come back as exported (no shape drawn, changed or "
            "deleted): not reviewed, no mask for them (--reviewed-only): a.tif, b.tif"),
    ],
)  # fmt: skip
def test_images_that_come_back_as_exported_are_counted(names: list[str], said: str) -> None:
    """--reviewed-only's unchanged note (it read '1 images come back ...: no mask for them')."""
    assert _review_notes(names, 3, reviewed_only=True) == [said]


@pytest.mark.parametrize(
    ("names", "n_written", "said"),
    [
        (["a.tif"], 1, "the only mask is the exported label unchanged (a.tif): imported as "),
        (["a.tif"], 2, "1 of 2 masks is the exported label unchanged (a.tif): imported as "),
        (["a.tif", "b.tif"], 2, "2 of 2 masks are the exported labels unchanged (a.tif, b.tif): "),
    ],
)
def test_masks_that_are_the_exported_labels_are_counted(
    names: list[str], n_written: int, said: str
) -> None:
    """An import's unchanged note (it read '1 of 2 masks are the exported labels unchanged',
    '1 of 1 masks')."""
    (note,) = _review_notes(names, n_written, reviewed_only=False)
    assert note.startswith(said), note


@pytest.mark.parametrize(
    ("names", "said"),
    [
        (["a.tif"], "1 image counts as edited by a review record that holds the exported masks' "
            "digests only (written by an older `elnet export`), so it was compared pixel for "),
        (["a.tif", "b.tif"], "2 images count as edited by a review record that holds the "
            "exported masks' digests only (written by an older `elnet export`), so they were "
            "compared pixel for "),
    ],
)  # fmt: skip
def test_images_compared_by_an_old_record_are_counted(names: list[str], said: str) -> None:
    """The note on a digest-only review record (it read '1 images count as edited ..., so they
    were compared')."""
    from sam2elnet.export.review_set import ReviewCheck

    check = ReviewCheck(None, False, "no shape drawn, changed or deleted")
    check.exact_only = list(names)
    (note,) = check.notes(3)
    assert note.startswith(said), note


@pytest.mark.parametrize(
    ("ids", "said"),
    [
        (["nope"], "the only requested training id is not a labelled image of this data folder"),
        (["s01", "nope"], "1 of the 2 requested training ids is not a labelled image of this "),
        (["no", "nope"], "2 of the 2 requested training ids are not labelled images of this "),
    ],
)
def test_requested_training_ids_that_are_not_labelled_are_counted(
    tmp_path: Path, ids: list[str], said: str
) -> None:
    """train's explicit id list (it read '1 of the 2 requested training ids are not labelled
    images')."""
    from helpers_data import make_dataset, small_cfg

    from sam2elnet.engine.train_data import prepare_data
    from sam2elnet.errors import UserError

    data = make_dataset(tmp_path / "d", n=3, size=32)
    with pytest.raises(UserError) as info:
        prepare_data(small_cfg(data, tmp_path / "r", train_ids=ids))
    assert said in str(info.value)


@pytest.mark.parametrize(
    ("empty", "block", "said"),
    [
        (1, False, "the only mask is all background (no feature there)"),
        (1, True, "1 of 2 masks is all background (no feature there)"),
        (2, True, "2 of 3 masks are all background (no feature there)"),
    ],
)
def test_all_background_masks_of_a_vector_import_are_counted(
    tmp_path: Path, empty: int, block: bool, said: str
) -> None:
    """--from vector's empty-mask note (it read '1 of 2 masks are all background', '1 of 1
    masks')."""
    from sam2elnet.export.vector_import import import_vector

    gp = _exported_layer(tmp_path, 0, empty, block)
    res = import_vector(gp, tmp_path / "m", images=tmp_path / "images", progress=False)
    assert said in res.notes, res.notes


@pytest.mark.parametrize(
    ("n", "said"),
    [
        (1, "its 1 polygon lies outside the image; check the layer's CRS"),
        (2, "its 2 polygons lie outside the image; check the layer's CRS"),
    ],
)
def test_polygons_of_an_image_outside_it_are_counted(tmp_path: Path, n: int, said: str) -> None:
    """--from vector skipping an image whose own polygons all miss it (it read 'its 1 polygons
    lie outside')."""
    import geopandas as gpd

    from sam2elnet.export.vector_import import import_vector

    gp = _exported_layer(tmp_path, 0, 1)
    g = gpd.read_file(gp, layer="labels")
    far = g[g["source"] == "a.png"]
    far = far.set_geometry(far.geometry.translate(1000, 1000))
    moved = gpd.pd.concat([g[g["source"] != "a.png"], *[far] * n], ignore_index=True)
    gpd.GeoDataFrame(moved, geometry="geometry").to_file(gp, layer="labels")
    res = import_vector(gp, tmp_path / "m", images=tmp_path / "images", progress=False)
    assert any(s == "a" and why.startswith(said) for s, why in res.skipped), res.skipped


def test_scene_summary_counts_one_window_in_the_singular() -> None:
    from sam2elnet.engine.scene import SceneResult

    one = SceneResult(Path("o.tif"), None, None, 64, 64, 1, 1, 0, 0.25, 0.5)
    assert "1/1 window predicted (0 all-nodata skipped)" in one.summary()
    many = SceneResult(Path("o.tif"), None, None, 64, 64, 4, 3, 1, 0.25, 0.5)
    assert "3/4 windows predicted (1 all-nodata skipped)" in many.summary()
