"""utils.run_warnings: the first warning of a kind is logged, later ones counted, once per run."""

from __future__ import annotations

import logging

from sam2elnet.utils.run_warnings import RunWarnings, repeated_notes, warn_once

log = logging.getLogger("sam2elnet.test_run_warnings")


def _texts(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == log.name]


def test_outside_a_run_every_warning_is_logged(caplog):
    with caplog.at_level(logging.WARNING):
        assert warn_once(log, "k", "a.tif: bad")
        assert warn_once(log, "k", "b.tif: bad")
    assert _texts(caplog) == ["a.tif: bad", "b.tif: bad"]


def test_first_of_each_kind_logged_rest_counted(caplog):
    with caplog.at_level(logging.WARNING), RunWarnings("image") as run:
        for name in ("a", "b", "c"):
            warn_once(log, "range", f"{name}.tif: far")
        warn_once(log, "georef", "a.tif: no georeference")
    assert _texts(caplog) == ["a.tif: far", "a.tif: no georeference"]
    assert run.counts() == {"range": 3, "georef": 1}
    assert run.record()[0] == {"warning": "range", "count": 3, "first": "a.tif: far"}
    assert run.notes() == [
        "the warning above (range) applied to 3 images in all; only the first was shown"
    ]
    # the scope is closed: every warning is logged again
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        warn_once(log, "range", "d.tif: far")
    assert _texts(caplog) == ["d.tif: far"]


def test_collected_warnings_replay_into_the_run_in_order(caplog):
    """A folder job's chunks collect (in this process or on a Ray worker); the job replays."""
    with caplog.at_level(logging.WARNING), RunWarnings("image") as run:
        for chunk in (["a", "b"], ["c"]):
            with RunWarnings(collect=True) as found:
                for name in chunk:
                    warn_once(log, "range", f"{name}.tif: far")
            assert _texts(caplog) == ([] if chunk == ["a", "b"] else ["a.tif: far"])
            run.replay(found.pending)
    assert _texts(caplog) == ["a.tif: far"] and run.counts() == {"range": 3}


def test_repeated_notes_from_a_summary_record():
    rec = [{"warning": "x", "count": 1, "first": "t"}, {"warning": "y", "count": 4, "first": "u"}]
    assert repeated_notes(rec, "scene") == [
        "the warning above (y) applied to 4 scenes in all; only the first was shown"
    ]
    assert repeated_notes([]) == []


def test_scopes_of_concurrent_threads_are_their_own(caplog):
    """Two runs at once in two threads (two ``elnet serve`` requests): each logs its own first
    warning and counts only its own; a thread that opened no scope logs every warning."""
    import threading

    both_open = threading.Barrier(3, timeout=30)
    runs: dict[str, RunWarnings] = {}

    def request(name: str) -> None:
        with RunWarnings("task") as run:
            runs[name] = run
            both_open.wait()  # both scopes are open before either warns
            warn_once(log, "range", f"{name}1.tif: far")
            both_open.wait()
            warn_once(log, "range", f"{name}2.tif: far")
            both_open.wait()  # ... and stay open until the bystander has warned

    def bystander() -> None:
        both_open.wait()
        both_open.wait()
        warn_once(log, "range", "z.tif: far")
        warn_once(log, "range", "z2.tif: far")
        both_open.wait()

    threads = [
        threading.Thread(target=f, args=a) for f, a in ((request, ("a",)), (request, ("b",)))
    ]
    threads.append(threading.Thread(target=bystander))
    with caplog.at_level(logging.WARNING):
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert sorted(_texts(caplog)) == ["a1.tif: far", "b1.tif: far", "z.tif: far", "z2.tif: far"]
    assert runs["a"].counts() == {"range": 2} and runs["b"].counts() == {"range": 2}
    assert runs["a"].record()[0]["first"] == "a1.tif: far"


def test_a_copied_context_warns_into_the_callers_scope(caplog):
    """Work handed to another thread in a copy of the caller's context counts in its scope."""
    import contextvars
    import threading

    with caplog.at_level(logging.WARNING), RunWarnings("image") as run:
        warn_once(log, "range", "a.tif: far")
        ctx = contextvars.copy_context()
        t = threading.Thread(target=ctx.run, args=(warn_once, log, "range", "b.tif: far"))
        t.start()
        t.join(timeout=30)
    assert _texts(caplog) == ["a.tif: far"] and run.counts() == {"range": 2}


def test_a_keyed_warning_counts_once_per_key(caplog):
    """Several steps of a run meet one thing (a scene's GCPs at open, at label placement, at
    the warp): one warning and one count per key; a collecting scope drops repeats too."""
    import uuid

    with caplog.at_level(logging.WARNING), RunWarnings("scene") as run:
        assert warn_once(log, "gcps", "a.tif: GCP 3 off", key="set-a")
        assert not warn_once(log, "gcps", "a_label.tif: GCP 3 off", key="set-a")  # dropped
        assert not warn_once(log, "gcps", "b.tif: GCP 9 off", key="set-b")  # counted
        with RunWarnings(collect=True) as chunk:
            warn_once(log, "gcps", "c.tif: GCP 1 off", key="set-c")
            warn_once(log, "gcps", "c.tif: GCP 1 off", key="set-c")
        assert len(chunk.pending) == 1
        run.replay(chunk.pending)
    assert _texts(caplog) == ["a.tif: GCP 3 off"]
    assert run.counts() == {"gcps": 3}
    # outside any scope a keyed warning is logged once per process, an unkeyed one every time
    caplog.clear()
    key = uuid.uuid4().hex
    with caplog.at_level(logging.WARNING):
        assert warn_once(log, "gcps", "d.tif: GCP 2 off", key=key)
        assert not warn_once(log, "gcps", "d.tif: GCP 2 off", key=key)
        assert warn_once(log, "gcps", "e.tif: GCP 2 off")
    assert _texts(caplog) == ["d.tif: GCP 2 off", "e.tif: GCP 2 off"]


def test_a_keyed_warning_replayed_from_several_chunks_counts_once(caplog):
    """One vector file serves the images of every chunk of a folder job: each chunk's collecting
    scope keeps its keyed warning, and the replay dropped the key, so the job counted it once per
    chunk (`applied to 2 images in all` for one file). The key now travels with it."""
    with caplog.at_level(logging.WARNING), RunWarnings("image") as run:
        for _ in range(2):
            with RunWarnings(collect=True) as chunk:
                warn_once(log, "no crs", "s.gpkg: labels have no CRS", key="s.gpkg")
            run.replay(chunk.pending)
        run.replay([(log.name, "range", "a.tif: far")])  # a 3-tuple (no key) is still taken
    assert _texts(caplog) == ["s.gpkg: labels have no CRS", "a.tif: far"]
    assert run.counts() == {"no crs": 1, "range": 1}


def test_the_closing_note_names_a_sample_of_the_items(caplog):
    """A warning given an ``item`` (the shared coarse-label file's images it misses): the closing
    note names the first three and counts the rest, in this process and replayed from chunks
    (was: only the first, in the warning itself, and a bare count)."""
    with caplog.at_level(logging.WARNING), RunWarnings("image") as run:
        for chunk in (["a", "b"], ["c", "d", "e"]):
            with RunWarnings(collect=True) as found:
                for name in chunk:
                    warn_once(log, "empty", f"{name}.tif: missed", item=f"{name}.tif")
            run.replay(found.pending)
        warn_once(log, "plain", "x.tif: no item")
        warn_once(log, "plain", "y.tif: no item")
    assert _texts(caplog) == ["a.tif: missed", "x.tif: no item"]
    assert run.record()[0] == {
        "warning": "empty", "count": 5, "first": "a.tif: missed",
        "sample": ["a.tif", "b.tif", "c.tif"],
    }  # fmt: skip
    assert "sample" not in run.record()[1]
    assert run.notes() == [
        "the warning above (empty) applied to 5 images in all (a.tif, b.tif, c.tif (+2)); only "
        "the first was shown",
        "the warning above (plain) applied to 2 images in all; only the first was shown",
    ]
    two = [{"warning": "empty", "count": 2, "first": "t", "sample": ["a.tif", "c.tif"]}]
    assert repeated_notes(two, "scene") == [
        "the warning above (empty) applied to 2 scenes in all (a.tif, c.tif); only the first "
        "was shown"
    ]
