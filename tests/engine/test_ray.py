"""The Ray backend gives exactly the local backend's outputs, with bounded in-flight work.

One local Ray cluster (2 CPUs) serves the whole module: scene windows (:class:`RayExecutor`), and
the folder jobs ``annotate`` / ``enhance`` / ``scene`` with ``--backend ray``, each compared byte
for byte with ``--backend local``; resume, a corrupt image and bad ``--address`` values.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

ray = pytest.importorskip("ray")

from sam2elnet.engine.distributed import RayExecutor  # noqa: E402
from sam2elnet.engine.executors import SmoothingPredictor  # noqa: E402
from sam2elnet.engine.scene import predict_scene  # noqa: E402

# A hang guard, not a speed check. pytest-timeout counts a test's fixture setup too, and the first
# test of a module-scoped fixture pays for it: starting the local cluster, training the shared
# micro model (helpers_data.trained_run), two annotate runs, and Ray workers that each import torch
# and load the model. On a 2-core machine at load average 1.5-5.7 (nice 10, SAM2ELNET_THREADS=1)
# the slowest item took 40 s (its setup) and the module 123 s (pytest --durations); a machine
# busier than that is several times slower. So every test here gets the same generous bound, far
# above any healthy run; SAM2ELNET_RAY_TEST_TIMEOUT (seconds) changes it.
RAY_TIMEOUT = int(os.environ.get("SAM2ELNET_RAY_TEST_TIMEOUT", "900"))
pytestmark = pytest.mark.timeout(RAY_TIMEOUT)


def _scene(path: Path, h: int = 300, w: int = 400) -> Path:
    rng = np.random.default_rng(1)
    img = 10 + rng.random((h, w)) * 60
    yy, xx = np.mgrid[:h, :w]
    img[((yy - 150) ** 2 + (xx - 200) ** 2) < 70**2] += 150
    img = img.astype(np.uint8)
    img[:30, :50] = 0
    prof = dict(
        driver="GTiff",
        height=h,
        width=w,
        count=1,
        dtype="uint8",
        nodata=0,
        crs="EPSG:32633",
        transform=from_origin(500000, 4000000, 10, 10),
    )
    with rasterio.open(path, "w", **prof) as d:
        d.write(img, 1)
    return path


@pytest.fixture(scope="module")
def local_ray() -> Iterator[str]:
    """One local Ray for the module (2 CPUs, no dashboard); executors reuse it. Yields the
    cluster's address (what ``--address`` takes). Skipped, saying why, only when Ray itself
    cannot start here; a runtime left up in this process by another test is an error."""
    assert not ray.is_initialized(), "a Ray runtime is already up in this process"
    try:
        ray.init(
            address="local",  # a private cluster, never one another job started here
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    except Exception as err:  # noqa: BLE001  (any reason Ray cannot start here)
        pytest.skip(
            f"a local Ray cluster cannot start on this machine ({type(err).__name__}: {err}); "
            "the Ray backend is not tested here"
        )
    yield ray.get_runtime_context().gcs_address
    from sam2elnet.engine.distributed import release_workers

    release_workers()
    ray.shutdown()


def test_ray_backend_matches_local_backend(tmp_path: Path, local_ray):
    scene = _scene(tmp_path / "s.tif")
    kw = dict(tile=96, overlap=24, batch_size=2, progress=False)
    local = predict_scene(
        scene,
        tmp_path / "local.tif",
        SmoothingPredictor(score=True),
        prob_path=tmp_path / "local_p.tif",
        quality_gpkg=tmp_path / "local.gpkg",
        **kw,
    )
    factory = functools.partial(SmoothingPredictor, score=True)
    with RayExecutor(factory, num_workers=2, max_in_flight=3) as ex:
        assert ex.has_scorer
        dist = predict_scene(
            scene,
            tmp_path / "ray.tif",
            SmoothingPredictor(score=True),
            executor=ex,
            prob_path=tmp_path / "ray_p.tif",
            quality_gpkg=tmp_path / "ray.gpkg",
            **kw,
        )
        assert 1 <= ex.peak_in_flight <= 3
        assert len(ex.actors) == 2  # many windows: every worker started
    assert ray.is_initialized()  # not started by the executor, so not shut down by it
    assert dist.n_predicted == local.n_predicted
    for a, b in (("local.tif", "ray.tif"), ("local_p.tif", "ray_p.tif")):
        with rasterio.open(tmp_path / a) as x, rasterio.open(tmp_path / b) as y:
            np.testing.assert_array_equal(x.read(), y.read())
            assert x.crs == y.crs and x.transform == y.transform
    import geopandas as gpd

    ql = gpd.read_file(tmp_path / "local.gpkg", layer="tiles")
    qr = gpd.read_file(tmp_path / "ray.gpkg", layer="tiles")
    np.testing.assert_allclose(ql["predicted_iou"], qr["predicted_iou"])

    # the CLI path (elnet scene --backend ray) is compared in the scene-folder test below
    from sam2elnet.cli import main

    base = ["scene", "--model", "builtin:smoothing", "--image", str(scene), "--tile", "96",
            "--overlap", "24", "--no-progress"]  # fmt: skip
    assert main([*base, "--out", str(tmp_path / "x.tif"), "--backend", "spark"]) == 2


def test_actors_start_as_work_needs_them(local_ray: str) -> None:
    """One item starts one actor (each costs a process importing torch and loading the model);
    items arriving while it is busy start the others, up to num_workers; results stay in order."""
    from sam2elnet.engine.executors import run_batch

    factory = functools.partial(SmoothingPredictor, score=False)  # not the pooled actors'
    rng = np.random.default_rng(0)
    batches = [(rng.random((1, 1, 16, 16)).astype(np.float32), None, None) for _ in range(5)]
    want = [run_batch(factory(), b, c)[0] for b, c, _v in batches]
    with RayExecutor(factory, num_workers=2) as ex:
        assert len(ex.actors) == 1
        (one,) = ex.map_batches(batches[:1])
        assert len(ex.actors) == 1 and ex.n_submitted == 1
        np.testing.assert_array_equal(one[0], want[0])
        got = [p for p, _q in ex.map_batches(batches)]
        assert len(ex.actors) == 2
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


def test_pairs_still_pass_with_a_deprecation_warning(local_ray: str) -> None:
    """(windows, coarse) 2-tuples, the form before WindowBatch (docs/changes.md): one
    DeprecationWarning naming the 3-tuple and the release that removes them, the same results."""
    rng = np.random.default_rng(2)
    coarse = (rng.random((1, 16, 16)) > 0.5).astype(np.float32)
    pairs = [(rng.random((1, 1, 16, 16)).astype(np.float32), c) for c in (coarse, None)]
    with RayExecutor(functools.partial(SmoothingPredictor, score=True), num_workers=1) as ex:
        want = list(ex.map_batches([(b, c, None) for b, c in pairs]))
        with pytest.warns(DeprecationWarning, match=r"pass \(windows, coarse, valid\).*0\.2\.0"):
            got = list(ex.map_batches(pairs))
    assert len(got) == len(want) == 2
    for (probs, iou), (want_probs, want_iou) in zip(got, want, strict=True):
        np.testing.assert_array_equal(probs, want_probs)
        np.testing.assert_array_equal(iou, want_iou)


def test_a_worker_killed_midway_comes_back_and_its_item_runs_again(
    local_ray: str, tmp_path: Path
) -> None:
    """``kill -9`` of a worker (the OOM killer, a lost node) while it holds an item: Ray restarts
    the worker and runs the item again; the job goes on, results complete and in order. Found in
    a cluster user trial: killing one actor of ``elnet annotate --backend ray`` ended the whole
    job in an ``ActorDiedError`` traceback (exit 1)."""
    from sam2elnet.engine.distributed import release_workers

    marker = str(tmp_path / "killed")

    def work(predictor: object, i: int) -> int:  # pickled by value to the worker
        import os
        import signal

        if i == 2 and not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)  # the worker process dies mid-item
        return i * 10

    factory = functools.partial(SmoothingPredictor, score=True)
    with RayExecutor(factory, num_workers=1) as ex:
        got = list(ex.map_calls(work, [(i,) for i in range(5)]))
    release_workers()
    assert os.path.exists(marker)  # the worker was killed once
    assert got == [0, 10, 20, 30, 40]


def test_a_worker_that_keeps_dying_ends_the_job_in_one_error(local_ray: str) -> None:
    """A worker killed on every try: after Ray's restarts, one ``UserError`` (the CLI's one
    ``error:`` line, exit 2) that says to resume, not a Ray traceback."""
    from sam2elnet.engine.distributed import WORKER_RESTARTS, release_workers
    from sam2elnet.errors import UserError

    def work(predictor: object, i: int) -> int:
        import os
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
        return i

    factory = functools.partial(SmoothingPredictor, score=True)
    with pytest.raises(UserError) as err, RayExecutor(factory, num_workers=1) as ex:
        list(ex.map_calls(work, [(0,)]))
    release_workers()
    msg = str(err.value)
    assert msg.startswith(f"a Ray worker process died {WORKER_RESTARTS + 1} times"), msg
    assert "\n" not in msg
    assert msg.endswith(  # the Python API: the arguments and the flags
        "re-run with resume (--resume) to continue (check the worker's memory: max_memory "
        "(--max-memory), fewer workers (--workers) per node)"
    )


def test_a_worker_that_cannot_build_its_predictor_is_one_error_line(local_ray: str) -> None:
    """Before: ``a Ray worker could not load the predictor: The actor died because of an error
    raised in its creation task, \\x1b[36mray::_PredictorActor...`` and Ray's traceback, ten
    lines with terminal colour codes: Ray (2.5x) gives the constructor's error as the first
    argument of an ``ActorDiedError``, which ``_actor_cause`` did not look at."""
    from sam2elnet.errors import UserError

    # a factory the worker can import (not this test module) that raises a two-line error
    breaks = functools.partial(exec, "raise RuntimeError('cannot build the predictor\\nmore')")
    with pytest.raises(UserError) as err:
        RayExecutor(breaks, num_workers=1)
    assert str(err.value) == (
        "a Ray worker could not load the predictor: RuntimeError: cannot build the predictor; "
        "run the command without --backend ray to see the whole error"
    )


# --------------------------------------------------------------------------------------------
# folder jobs: annotate, enhance and scene over a folder with --backend ray


def _cli(args: list[str]) -> tuple[int, str]:
    """Run ``elnet ARGS`` in this process (the Ray cluster is the module's); (exit code, stdout)."""
    import contextlib
    import io

    from sam2elnet.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(args)
    return code, buf.getvalue()


def _files(root: Path) -> dict[str, bytes]:
    """Every output file below ``root`` except those that record time or place of the run
    (summary.json, the per-window GeoPackages: compared by content instead)."""
    skip = {"summary.json", "manifest.jsonl"}
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in skip and p.suffix != ".gpkg" and p.name != ".lock"
    }


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """5 PNG images + one corrupt PNG + one 96 px GeoTIFF (windowed under the memory budget),
    coarse labels for enhance, and the module's micro model."""
    import cv2
    from helpers_data import trained_run

    run = trained_run(tmp_path_factory)
    root = tmp_path_factory.mktemp("rayfolder")
    imgs, labels = root / "images", root / "labels"
    imgs.mkdir()
    labels.mkdir()
    for p in sorted((run["data"] / "images").glob("*.png"))[:5]:
        (imgs / p.name).write_bytes(p.read_bytes())
        m = cv2.imread(str(run["data"] / "masks" / p.name), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(str(labels / p.name), np.roll(m, 3, axis=1))  # a shifted (coarse) label
    (imgs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    src = cv2.imread(str(run["data"] / "images" / "s00.png"))[:, :, ::-1]
    big = np.ascontiguousarray(np.tile(np.moveaxis(src, 2, 0), (1, 3, 3))[:, :96, :96])
    prof = dict(driver="GTiff", height=96, width=96, count=3, dtype="uint8",
                crs="EPSG:32633", transform=from_origin(500000, 4000000, 10, 10))  # fmt: skip
    with rasterio.open(imgs / "zscene.tif", "w", **prof) as d:
        d.write(big)
    from sam2elnet.engine.predictor import Predictor

    budget = Predictor.from_file(run["model"], batch_size=2).whole_bytes(64 * 64)
    return {"model": run["model"], "images": imgs, "labels": labels, "root": root, "budget": budget}


def _annotate_args(folder: dict[str, Path], out: Path) -> list[str]:
    budget = folder["budget"]
    return ["annotate", "--model", str(folder["model"]), "--images", str(folder["images"]),
            "--out", str(out), "--batch-size", "2", "--save-prob", "--target-precision", "0.5",
            "--tau", "0.3", "--max-memory", str(budget), "--tile", "64", "--overlap", "16",
            "--no-progress"]  # fmt: skip


@pytest.fixture(scope="module")
def annotated(local_ray: str, folder: dict[str, Path]) -> dict[str, object]:
    """``elnet annotate`` over the folder, locally and on the module's cluster (--address)."""
    root = folder["root"]
    local = _cli(_annotate_args(folder, root / "a_local"))
    dist = _cli([*_annotate_args(folder, root / "a_ray"), "--backend", "ray", "--address",
                 local_ray, "--workers", "2"])  # fmt: skip
    return {"local": local, "ray": dist, "out_local": root / "a_local", "out_ray": root / "a_ray"}


def test_annotate_on_ray_matches_local_byte_for_byte(annotated: dict) -> None:
    import json

    assert annotated["local"][0] == 0 and annotated["ray"][0] == 0
    a, b = _files(annotated["out_local"]), _files(annotated["out_ray"])
    assert sorted(a) == sorted(b)
    assert "quality.csv" in a and "skipped.csv" in a
    assert any(k.startswith("labels/") for k in a) and any(k.startswith("prob/") for k in a)
    assert "labels/zscene.tif" in a or "rejected/zscene.tif" in a  # the windowed image
    for name in a:
        assert a[name] == b[name], f"{name} differs between the local and the Ray backend"
    sl = json.loads((annotated["out_local"] / "summary.json").read_text())
    sr = json.loads((annotated["out_ray"] / "summary.json").read_text())
    assert sl["filter"] == sr["filter"] and sl["threshold"] == sr["threshold"]
    assert sr["backend"]["name"] == "ray" and sr["backend"]["workers"] == 2
    assert sl["backend"] == {"name": "local"}
    import geopandas as gpd

    gl = gpd.read_file(annotated["out_local"] / "tiles" / "zscene.gpkg", layer="tiles")
    gr = gpd.read_file(annotated["out_ray"] / "tiles" / "zscene.gpkg", layer="tiles")
    assert len(gl) > 1 and gl.equals(gr)


def test_corrupt_image_is_skipped_and_listed_on_ray(annotated: dict) -> None:
    import csv

    code, out = annotated["ray"]
    assert code == 0  # some images skipped: the batch still succeeds (utils/batch.py policy)
    skipped = list(csv.DictReader((annotated["out_ray"] / "skipped.csv").open()))
    assert [Path(r["image"]).name for r in skipped] == ["broken.png"] and skipped[0]["reason"]
    rows = list(csv.DictReader((annotated["out_ray"] / "quality.csv").open()))
    assert len(rows) == 6 and "broken.png" not in {Path(r["image"]).name for r in rows}
    assert "1 of 7 skipped" in out and "annotated 6 images" in out


def test_resume_on_ray_redoes_only_unfinished_images(
    annotated: dict, folder: dict[str, Path], local_ray: str, tmp_path: Path
) -> None:
    """A run killed after some labels were written: --resume on Ray predicts only the rest and
    ends with the uninterrupted run's files."""
    import csv
    import shutil

    out = tmp_path / "resumed"
    shutil.copytree(annotated["out_ray"], out)
    lines = (out / "quality.csv").read_text().splitlines(keepends=True)
    rows = list(csv.DictReader(lines))
    lost = [r["label"] for r in rows[3:]]
    (out / "quality.csv").write_text("".join(lines[:4]))  # the last flush saw 3 images
    for rel in lost[:2]:  # and two of the later labels were not written yet
        (out / rel).unlink()
    (out / "labels" / ".s04.png.tmp123").write_bytes(b"half")  # a write cut short
    kept = {r["label"]: (out / r["label"]).stat().st_mtime_ns for r in rows[:3]}
    code, text = _cli([*_annotate_args(folder, out), "--resume", "--backend", "ray",
                       "--address", local_ray])  # fmt: skip
    assert code == 0, text
    for rel, mtime in kept.items():  # finished images were not redone
        assert (out / rel).stat().st_mtime_ns == mtime, rel
    a, b = _files(annotated["out_local"]), _files(out)
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name] == b[name], f"{name} differs after resuming"


def test_enhance_on_ray_matches_local_byte_for_byte(
    local_ray: str, folder: dict[str, Path], tmp_path: Path
) -> None:
    from sam2elnet.pipeline import enhance_folder

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for p in sorted(folder["images"].glob("s0*.png")):
        (imgs / p.name).write_bytes(p.read_bytes())
    # the annotate run's predictor options: its Ray workers are reused (model loaded once)
    kw = dict(progress=False, batch_size=2, save_prob=True, min_quality=0.3,
              max_memory=folder["budget"], tile=64, overlap=16)  # fmt: skip
    loc = enhance_folder(folder["model"], imgs, folder["labels"], tmp_path / "loc", **kw)
    dist = enhance_folder(
        folder["model"], imgs, folder["labels"], tmp_path / "ray", backend="ray", workers=2, **kw
    )
    assert len(loc.rows) == len(dist.rows) == 5
    a, b = _files(tmp_path / "loc"), _files(tmp_path / "ray")
    assert sorted(a) == sorted(b) and len([k for k in a if k.startswith("changes/")]) == 5
    for name in a:
        assert a[name] == b[name], f"{name} differs between the local and the Ray backend"


def test_scene_folder_on_ray_matches_local_byte_for_byte(
    local_ray: str, folder: dict[str, Path], tmp_path: Path
) -> None:
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    for i, size in enumerate((64, 80)):
        with rasterio.open(folder["images"] / "zscene.tif") as src:
            arr = src.read(window=((i, i + size), (0, size)))
            prof = {**src.profile, "height": size, "width": size}
        with rasterio.open(scenes / f"scene{i}.tif", "w", **prof) as d:
            d.write(arr)
    (scenes / "bad.tif").write_bytes(b"II*\x00 truncated")
    base = ["scene", "--model", str(folder["model"]), "--image", str(scenes), "--tile", "32",
            "--overlap", "8", "--prob", "--no-progress"]  # fmt: skip
    loc = _cli([*base, "--out", str(tmp_path / "loc")])
    dist = _cli([*base, "--out", str(tmp_path / "ray"), "--backend", "ray", "--workers", "2"])
    assert loc[0] == dist[0] == 0
    assert "1 of 3 skipped" in dist[1]
    a, b = _files(tmp_path / "loc"), _files(tmp_path / "ray")
    assert sorted(a) == sorted(b) == [  # model_id.json: the same model, the same record
        "model_id.json", "scene0.tif", "scene0_prob.tif", "scene1.tif", "scene1_prob.tif",
        "skipped.csv",
    ]  # fmt: skip
    for name in a:
        assert a[name] == b[name], f"{name} differs between the local and the Ray backend"


@pytest.mark.parametrize(
    ("address", "says"),
    [
        ("127.0.0.1:1", "cannot reach the Ray cluster at 127.0.0.1:1"),
        ("not-an-address", "is not a Ray cluster address"),
    ],
)
def test_bad_address_is_one_error_line(
    folder: dict[str, Path],
    tmp_path: Path,
    address: str,
    says: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from sam2elnet.cli import main

    out = tmp_path / "never"
    args = ["annotate", "--model", str(folder["model"]), "--images", str(folder["images"]),
            "--out", str(out), "--no-progress", "--backend", "ray", "--address", address]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and says in err[0], err
    assert "--address" in err[0] and not out.exists()
    # --address without --backend ray is a mistake too, said before anything runs
    assert main(args[:-4] + ["--address", "auto"]) == 2
    assert "add --backend ray" in capsys.readouterr().err


_LOCAL_RUN = """
import functools, json, os
import numpy as np
from sam2elnet.engine.distributed import RayExecutor
from sam2elnet.engine.executors import SmoothingPredictor, run_batch
x = np.random.default_rng(0).random((1, 1, 32, 32), dtype=np.float32)
with RayExecutor(functools.partial(SmoothingPredictor), num_workers=1) as ex:
    (out,) = list(ex.map_batches([(x, None, None)]))
    during = os.environ.get("RAY_AUTH_MODE")  # what Ray's default set
want = run_batch(SmoothingPredictor(), x, None)[0]
print(json.dumps({"same": bool(np.array_equal(out[0], want)), "env_during": during}))
"""


def test_private_local_cluster_starts_without_ray_token_notice() -> None:
    """``--backend ray`` without ``--address`` starts a private Ray, in which Ray >= 2.59 turns
    token authentication on by default and logs a line saying so on every run; the executor
    drops that line (and only for its own cluster), the authentication stays on. A process of
    its own: the module's cluster is up in this one."""
    import json
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_MODE", "RAY_ADDRESS")}
    r = subprocess.run(
        [sys.executable, "-c", _LOCAL_RUN],
        capture_output=True,
        text=True,
        timeout=RAY_TIMEOUT,
        env=env,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Token authentication is" not in r.stderr + r.stdout, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["same"]  # the actor computed the batch
    version = tuple(int(p) for p in ray.__version__.split(".")[:2])
    if version >= (2, 59):  # Ray's default token authentication is on, not disabled
        assert got["env_during"] == "token"
