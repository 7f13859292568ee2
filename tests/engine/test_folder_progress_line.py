"""The progress line of a folder job describes the images it counts (docs/geospatial.md).

A SAR trial: `elnet annotate --warp-to utm` on a folder of two GeoTIFF scenes (predicted window
by window, each with its own window bar) and one JPEG ended in `annotate: 1/1 img in 0.0 s
(3235.21 img/s), kept 2, skipped 1`: one image counted, two kept. The bar counts the images
predicted whole; its kept / skipped now count those images only (the closing `annotated N
images ...` line counts them all).
"""

from __future__ import annotations

from helpers_data import grey_rgb, micro_model_file, write_png

from sam2elnet.cli import main


def test_the_img_line_counts_only_its_own_images(tmp_path, capsys):
    images = tmp_path / "images"
    write_png(images / "big.png", grey_rgb(96, 1))  # window by window at --max-memory 2M
    (images / "bad.png").write_bytes(b"not a png")  # read with the whole images: skipped
    model = micro_model_file(tmp_path / "m.pt", bands=3)
    capsys.readouterr()
    rc = main(["annotate", "--model", str(model), "--images", str(images), "--out",
               str(tmp_path / "out"), "--max-memory", "2M", "--tile", "64", "--overlap", "16",
               "--no-progress"])  # fmt: skip
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert rc == 0, text
    line = [ln for ln in text.splitlines() if ln.startswith("annotate: ")]
    assert len(line) == 1, text
    assert line[0].startswith("annotate: 1/1 img in ") and line[0].endswith("kept 0, skipped 1")
    closing = [ln for ln in text.splitlines() if ln.startswith("annotated ")]
    assert "kept 1, rejected 0, skipped 1" in closing[0], text
