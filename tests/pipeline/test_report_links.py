"""report.html's file links: relative inside the page's folder (they survive moving, zipping or
sharing a run folder), absolute ``file://`` URIs only for files outside it."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

from helpers_data import annotate_run_folder

from sam2elnet.pipeline.report import write_run_report
from sam2elnet.pipeline.report_rows import file_link


def _hrefs(text: str) -> list[str]:
    """The links of the per-image table and cards (the only <a href> to files on the page)."""
    return re.findall(r'<a href="([^"#][^"]*)" title=', text)


def _run(tmp_path: Path) -> tuple[Path, Path]:
    """An annotate-style run folder whose labels and probability maps lie inside it (one name
    with a space and a '#'), and whose input images lie outside it."""
    run, images = tmp_path / "run", tmp_path / "images"
    annotate_run_folder(run, images, ("a", "tile #1 b", "c"))
    return run, images


def test_links_inside_the_run_folder_resolve_after_moving_it(tmp_path: Path) -> None:
    run, images = _run(tmp_path)
    write_run_report(run)
    moved = tmp_path / "elsewhere" / "run copy"
    moved.parent.mkdir()
    shutil.move(str(run), str(moved))
    text = (moved / "report.html").read_text(encoding="utf-8")
    links = _hrefs(text)
    relative = [u for u in links if not u.startswith("file:")]
    absolute = [u for u in links if u.startswith("file:")]
    # per image: label + probability inside (relative), image outside (absolute); table + card
    assert len(relative) == 2 * 2 * 3 and len(absolute) == 2 * 3
    assert "labels/tile%20%231%20b.png" in relative and "rejected/c.png" in relative
    for u in relative:
        assert not u.startswith("/") and ".." not in u
        assert (moved / unquote(u)).is_file(), u  # resolves from the moved page
    for u in absolute:
        f = Path(unquote(urlparse(u).path))
        assert f.parent == images.resolve() and f.is_file(), u


def test_report_written_elsewhere_links_the_run_files_absolutely(tmp_path: Path) -> None:
    """A page outside the run folder (--report PATH): nothing of the run lies inside its folder,
    so every link is absolute and opens from where the page is."""
    run, _ = _run(tmp_path)
    (tmp_path / "pages").mkdir()
    page = write_run_report(run, path=tmp_path / "pages" / "r.html")
    links = _hrefs(page.read_text(encoding="utf-8"))
    assert links and all(u.startswith("file://") for u in links)
    assert (run / "labels" / "a.png").resolve().as_uri() in links


def test_file_link(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    f = tmp_path / "sub" / "x y%.png"
    assert file_link(f, tmp_path) == "sub/x%20y%25.png"
    assert file_link(f, tmp_path / "sub") == "x%20y%25.png"
    assert file_link(f, tmp_path / "other") == f.resolve().as_uri()
    assert file_link(f) == f.resolve().as_uri()
    # a page folder reached through a symbolic link still gets relative links
    (tmp_path / "link").symlink_to(tmp_path / "sub", target_is_directory=True)
    assert file_link(f, tmp_path / "link") == "x%20y%25.png"
