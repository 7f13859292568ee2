"""The progress line of a folder job describes the images it counts (docs/geospatial.md).

A SAR trial: `elnet annotate --warp-to utm` on a folder of two GeoTIFF scenes (predicted window
by window, each with its own window bar) and one JPEG ended in `annotate: 1/1 img in 0.0 s
(3235.21 img/s), kept 2, skipped 1`: one image counted, two kept. The bar counted the images
predicted whole and kept / skipped those only (`1/1 img ..., kept 0, skipped 1` here); it now
counts every image the run predicts, whole or window by window, and their kept / skipped (with
bars on and every image window by window it had total 0 before).
"""

from __future__ import annotations

from helpers_data import grey_rgb, micro_model_file, write_png

from sam2elnet.cli import main


def test_the_img_line_counts_every_image_whole_or_windowed(tmp_path, capsys):
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
    # the windowed big.png counted too (before: "1/1 img ..., kept 0, skipped 1")
    assert line[0].startswith("annotate: 2/2 img in ") and line[0].endswith("kept 1, skipped 1")
    closing = [ln for ln in text.splitlines() if ln.startswith("annotated ")]
    assert "kept 1, rejected 0, skipped 1" in closing[0], text
