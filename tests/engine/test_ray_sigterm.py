"""``ray.init`` puts ``sys.exit(15)`` in place of the process's SIGTERM handler; under ``elnet``
the handler that ends a command as Ctrl-C does (cli._term_as_interrupt: temporary files removed,
'error: interrupted; re-run with --resume to continue', exit 130) is put back. Found in review:
``kill`` of a ``--backend ray`` job ended it silently with exit 15. No Ray cluster is started:
``ray.init`` is replaced by one that does to the handler what Ray's does."""

from __future__ import annotations

import signal
import sys

import pytest

ray = pytest.importorskip("ray")


def _ray_like_init(**_kw: object) -> None:
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(signum))  # as ray.init does
    raise RuntimeError("no cluster here")


def test_ray_init_keeps_elnets_sigterm_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    from sam2elnet.cli import _term_as_interrupt
    from sam2elnet.engine.distributed import RayExecutor
    from sam2elnet.errors import UserError

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", _ray_like_init)
    # the handler before elnet's (SIG_DFL alone; a real ray.init of another test in this
    # pytest-xdist worker leaves Ray's own in place)
    before = signal.getsignal(signal.SIGTERM)
    with _term_as_interrupt():
        ours = signal.getsignal(signal.SIGTERM)
        assert callable(ours)
        with pytest.raises(UserError, match="cannot connect to the Ray cluster"):
            RayExecutor(lambda: None, num_workers=1)
        assert signal.getsignal(signal.SIGTERM) is ours
    assert signal.getsignal(signal.SIGTERM) is before


def test_without_a_handler_of_its_own_rays_stays(monkeypatch: pytest.MonkeyPatch) -> None:
    from sam2elnet.engine.distributed import RayExecutor
    from sam2elnet.errors import UserError

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", _ray_like_init)
    try:
        with pytest.raises(UserError):
            RayExecutor(lambda: None, num_workers=1)
        assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None)  # Ray's
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
