"""What the benchmark scripts time, on tiny settings (micro model, 64 px; never a real run):
``bench_train``'s step of ours is one pass of the product's training loop, and ``bench_infer``'s
matmul ceiling brackets the timed rounds."""

from __future__ import annotations

import math
import platform
import sys
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="module")
def bench(bench_import):  # noqa: ANN001, ANN201
    return bench_import("common"), bench_import("bench_train")


@pytest.mark.parametrize("lever_name", ["default", "channels-first"])
def test_our_train_step_is_one_pass_of_the_engine(bench, monkeypatch, lever_name: str) -> None:
    import sam2elnet.engine.train_epoch as engine_pass
    from sam2elnet.config import TrainConfig

    common, bench_train = bench
    seen = []
    real = engine_pass.train_epoch

    def spy(model, loader, optimizer, scheduler, *args, **kwargs):  # noqa: ANN001, ANN202
        sums = real(model, loader, optimizer, scheduler, *args, **kwargs)
        seen.append((kwargs, sums, scheduler.last_epoch))
        return sums

    monkeypatch.setattr(engine_pass, "train_epoch", spy)
    lever = common.LEVERS[lever_name]
    torch.manual_seed(0)
    model = common.apply_lever(common.build_ours("micro"), lever, train=True)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    step = bench_train.our_step(model, lever, 2, 64)
    step()
    step()
    # one engine pass per timed step, and the per-step LR schedule advanced with it
    assert [s[2] for s in seen] == [1, 2]
    kwargs, sums, _ = seen[-1]
    assert sums.n_img == 2 and math.isfinite(sums.loss_sum) and sums.loss_sum > 0
    assert kwargs["precision"] == common.lever_precision(lever)
    assert kwargs["channels_last"] is (lever_name == "default")
    assert kwargs["grad_clip"] == TrainConfig.model_fields["grad_clip"].default
    # the step trained the trainable weights and left the frozen trunk alone
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= trainable


def test_bench_train_smoke_times_reference_and_ours(bench, tmp_path: Path, capsys) -> None:
    import json

    _, bench_train = bench
    out = tmp_path / "train.json"
    assert (
        bench_train.main(
            ["--smoke", "--levers", "default", "--no-reference-lib", "--json", str(out)]
        )
        == 0
    )
    got = json.loads(out.read_text())
    (row,) = got["results"]
    assert set(row["step_s"]) == {"reference", "default"}
    assert all(s > 0 for s in row["step_s"].values())
    assert [g["name"] for g in got["goals"]] == ["training 64 px: ours as shipped / reference"]
    assert "GOAL training 64 px" in capsys.readouterr().out


def test_bench_infer_ceiling_brackets_the_timed_rounds(
    bench_import, tmp_path: Path, monkeypatch, capsys
) -> None:
    """The matmul ceiling is measured before and after the timed rounds, both printed, and the
    forward's share divides by the higher one (fake ceilings: 100 then 150 GFLOP/s)."""
    import json

    bench_infer = bench_import("bench_infer")
    monkeypatch.setenv("SAM2ELNET_NATIVE_BF16", "0")  # ours ships float32: the fp32 ceiling
    calls = []
    fake = iter([100.0, 150.0])

    def matmul_ceiling(dtype: torch.dtype, n: int = 2048, reps: int = 5) -> float:
        calls.append((dtype, n))
        return next(fake)

    monkeypatch.setattr(bench_infer, "matmul_ceiling", matmul_ceiling)
    out = tmp_path / "infer.json"
    argv = ["--smoke", "--levers", "default", "--no-reference-lib", "--json", str(out)]
    assert bench_infer.main(argv) == 0
    assert calls == [(torch.float32, 256)] * 2  # one size: before and after; --smoke: 256^2
    printed = capsys.readouterr().out
    assert "fp32 matmul ceiling: 100 GFLOP/s before the timed rounds, 150 after" in printed
    got = json.loads(out.read_text())
    assert got["ceiling_gflops"] == {"fp32": [100.0, 150.0], "bf16": []}
    (row,) = got["results"]
    assert row["ceiling_gflops"] == {"before": 100.0, "after": 150.0}
    share = next(g["value"] for g in got["goals"] if "matmul ceiling" in g["name"])
    want = row["gflop_ours"] * row["n"] / row["seconds"]["default"] / 150.0
    assert share == pytest.approx(want, rel=1e-9)
    # annotate end to end / bare forward: the median of the paired rounds' ratios
    ratios = row["e2e_pair_ratios"]
    assert len(ratios) == 3 and ratios == sorted(ratios)
    e2e = next(g["value"] for g in got["goals"] if "end to end / bare forward" in g["name"])
    assert e2e == ratios[1]
    assert f"median {ratios[1]:.3f}, range {ratios[0]:.3f}-{ratios[2]:.3f} over 3 paired" in printed


def test_bench_downstream_smoke_times_both_layouts(bench_import, capsys) -> None:
    """bench_downstream times the product's downstream training in both memory layouts and
    leaves the layout switch as it found it (unset)."""
    import os

    bench_downstream = bench_import("bench_downstream")
    assert bench_downstream.main(["--smoke"]) == 0
    out = capsys.readouterr().out
    assert "demo     nchw" in out and "demo     channels-last" in out
    assert "GOAL downstream demo: channels-last / nchw" in out
    assert "SAM2ELNET_CHANNELS_LAST" not in os.environ


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="the heap policy is glibc's mallopt",
)
def test_bench_heap_smoke_alternates_the_policy_off_and_on(bench_import, tmp_path, capsys) -> None:
    """bench_heap's children run with glibc's defaults and with the policy, in turn, and report
    what the table prints; two goal lines per row."""
    import json

    bench_heap = bench_import("bench_heap")
    out = tmp_path / "heap.json"
    assert bench_heap.main(["--smoke", "--json", str(out)]) == 0
    got = json.loads(out.read_text())
    (row,) = got["results"]
    assert [r["heap_mib"] for r in row["runs"]["glibc defaults"]] == [0]
    assert [r["heap_mib"] for r in row["runs"]["as shipped"]] == [1024]
    # the fault counts themselves are not compared: --smoke's 64 px blocks are small enough that
    # glibc's own dynamic threshold keeps them too, and a few faults either way are noise (the
    # policy's effect on large blocks: tests/utils/test_heap.py)
    keys = {"img_s", "faults_per_img", "kernel_share", "peak_mb"}
    assert all(keys <= set(r) for runs in row["runs"].values() for r in runs)
    names = [g["name"] for g in got["goals"]]
    assert names == [
        "heap policy, forward 64 px: images/s vs glibc defaults",
        "heap policy, forward 64 px: peak memory vs glibc",
    ]
    assert "as shipped / glibc defaults:" in capsys.readouterr().out


def test_bench_heap_children_ignore_the_shells_allocator_settings(bench_import) -> None:
    """Was: a shell with LD_PRELOAD or MALLOC_TRIM_THRESHOLD_ set ran the "as shipped" child with
    the policy off (it steps aside for them): defaults compared with defaults."""
    bench_heap = bench_import("bench_heap")
    shell = {
        "PATH": "/usr/bin",
        "SAM2ELNET_HEAP_MB": "64",
        "GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0",
        "MALLOC_TRIM_THRESHOLD_": "0",
        "LD_PRELOAD": "/usr/lib/libjemalloc.so.2",
        "MALLOC_ARENA_MAX": "2",
    }
    assert bench_heap.child_env(shell, {}) == {"PATH": "/usr/bin"}
    assert bench_heap.child_env(shell, {"SAM2ELNET_HEAP_MB": "0"}) == {
        "PATH": "/usr/bin",
        "SAM2ELNET_HEAP_MB": "0",
    }


def test_alternate_rounds_warms_up_then_takes_turns(bench) -> None:
    """One warm-up call each, then a, b, a, b, ...; every round's seconds on the given clock
    (here a counter that ticks once per read), and alternate is their median."""
    common, _ = bench
    calls: list[str] = []
    ticks = iter(range(1000))
    fns = {("read", "a"): lambda: calls.append("a"), ("read", "b"): lambda: calls.append("b")}
    times = common.alternate_rounds(fns, 3, lambda: float(next(ticks)))
    assert calls == ["a", "b"] * 4
    assert times == {("read", "a"): [1.0] * 3, ("read", "b"): [1.0] * 3}
    assert common.alternate(fns, 2, lambda: float(next(ticks))) == {
        ("read", "a"): 1.0,
        ("read", "b"): 1.0,
    }


@pytest.mark.parametrize("parts", [False, True])
def test_ab_annotate_cpu_smoke_finds_the_same_labels(
    bench_import, tmp_path: Path, monkeypatch, capsys, parts: bool
) -> None:
    """ab_annotate_cpu with this tree as the 'earlier revision' (Hiera-tiny, 2 images of 64 px,
    one round): every variant gives new's labels bit for bit, and its work folder is removed
    (--parts left it behind)."""
    import tempfile

    ab = bench_import("ab_annotate_cpu")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    src = Path(__file__).resolve().parents[1] / "src"
    args = ["--size", "64", "--n", "2", "--rounds", "1", "--old-src", str(src), "--variants"]
    args += ["features+inputrange+nomask", "new"] if parts else ["bare", "nomask", "new"]
    assert ab.main([*args, "--parts"] if parts else args) == 0
    out = capsys.readouterr().out
    if parts:
        assert (
            "features+inputrange+nomask: probabilities and features equal bit for bit True" in out
        )
        assert "  predict  features+inputrange+nomask " in out and "  read     new " in out
    else:
        assert "nomask: labels byte-identical True, quality.csv identical True" in out
        assert "  min    bare " in out and "  median new " in out
    assert list(tmp_path.glob("ab_annotate_*")) == []


def test_ab_annotate_cpu_matches_quality_rows_by_image_name_not_absolute_path(
    bench_import, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two jobs' ``quality.csv`` over copies of the same images in two folders (two revisions
    run on different work folders): annotate records absolute image paths, so the tables'
    text differs (the comparison said 'quality.csv identical False' for the same rows); their
    rows, keyed by the image's name under each job's images folder, are equal. A changed
    score, or another image, still differs; an older relative record reads alike."""
    import csv

    ab = bench_import("ab_annotate_cpu")

    def table(run: Path, images: Path, rows: list[tuple[str, str]]) -> Path:
        run.mkdir(parents=True)
        with (run / "quality.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["image", "label", "predicted_iou", "kept"])
            for name, q in rows:
                w.writerow([images / name, f"labels/{Path(name).stem}.png", q, "True"])
        return run / "quality.csv"

    a_img, b_img = tmp_path / "a" / "img", tmp_path / "b" / "img"
    rows = [("x.png", "0.71"), ("sub/y.png", "0.52")]
    qa = table(tmp_path / "a" / "out", a_img, rows)
    qb = table(tmp_path / "b" / "out", b_img, rows)
    assert qa.read_text() != qb.read_text()  # the absolute paths: what the text compared
    got = ab.quality_rows(qa, a_img)
    assert sorted(got) == ["sub/y.png", "x.png"] and got["x.png"]["image"] == "x.png"
    assert got == ab.quality_rows(qb, b_img)
    qc = table(tmp_path / "c" / "out", b_img, [("x.png", "0.70"), ("sub/y.png", "0.52")])
    assert ab.quality_rows(qc, b_img) != got  # another score
    qd = table(tmp_path / "d" / "out", b_img, [("z.png", "0.71"), ("sub/y.png", "0.52")])
    assert ab.quality_rows(qd, b_img) != got  # another image
    older = qa.read_text().replace(f"{a_img}/", "img/")  # relative to the working folder
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "quality.csv").write_text(older)
    monkeypatch.chdir(tmp_path / "b")
    assert ab.quality_rows(tmp_path / "e" / "quality.csv", b_img) == got
    assert sorted(ab.quality_rows(qa, b_img)) == ["x.png", "y.png"]  # elsewhere: file names


def test_scene_window_quality_true_iou_is_the_products(bench_import) -> None:
    """A window's true IoU: probability >= 0.5 (0.5 itself is foreground) against its truth
    over its valid pixels; 1.0 when both are empty."""
    import numpy as np

    swq = bench_import("scene_window_quality")
    prob = np.array([[0.5, 0.9, 0.1, 0.49], [0.0, 0.0, 0.0, 0.0]], np.float32)
    truth = np.array([[1, 0, 0, 1], [0, 0, 0, 0]], bool)
    valid = np.array([[1, 1, 1, 1], [1, 1, 1, 0]], bool)
    # foreground 0.5, 0.9; truth at columns 0 and 3: 1 shared of 3 pixels
    assert swq._true_ious([prob], [truth], [valid]) == [pytest.approx(1 / 3)]
    valid[0, 0] = False  # the shared pixel is nodata: 0 of 2
    empty = np.zeros_like(truth)
    assert swq._true_ious([prob, prob * 0], [truth, empty], [valid, valid]) == [0.0, 1.0]


def test_scene_window_quality_smoke_reads_the_scene_once_per_case(
    bench_import, tmp_path: Path, monkeypatch, capsys
) -> None:
    """A 128 px scene of 64 px tiles (micro model, random weights): a line per case with its
    window count; the seam-free cases reuse the aligned tiles (the scene was read a fifth
    time for them)."""
    import numpy as np
    import rasterio
    from helpers_data import make_scene

    common, swq = bench_import("common"), bench_import("scene_window_quality")
    scene = make_scene(tmp_path / "s.tif", 128, 128, nodata_box=None)
    with rasterio.open(scene) as src:
        profile, img = src.profile, src.read(1)
    with rasterio.open(tmp_path / "t.tif", "w", **{**profile, "nodata": None}) as dst:
        dst.write(np.where(img > 127, 255, 0).astype(np.uint8), 1)
    model = common.save_ours(common.build_ours("micro"), tmp_path / "model.pt")
    opened = []
    real = swq.SceneInputs

    def counting(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        opened.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(swq, "SceneInputs", counting)
    swq.main(["--model", str(model), "--image", str(scene), "--truth", str(tmp_path / "t.tif"),
              "--tile-px", "64"])  # fmt: skip
    out = capsys.readouterr().out
    assert len(opened) == 4
    for case in ("64 px aligned with the tiles: n 4 ", "64 px shifted by 32 (across seams): n 1 ",
                 "128 px aligned (2x2 tiles): n 1 ", "32 px aligned (quarter tiles): n 16 ",
                 "tile alone: n 2 ", "tile mirrored to 128 px (seam-free): n 2 ",
                 "tile upscaled 2x: n 2 ", "tile vs mirrored: "):  # fmt: skip
        assert case in out, out
