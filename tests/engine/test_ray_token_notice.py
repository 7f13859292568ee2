"""Ray's token-authentication notice: Ray >= 2.59 logs "Token authentication is enabled for this
Ray cluster ..." on every local ``ray.init()``. ``RayExecutor`` drops that one line for the
private cluster it starts itself, never for a cluster the user names. No Ray cluster starts here
(``ray.init`` is replaced); test_ray.py checks a real local run's output."""

from __future__ import annotations

import functools
import logging
import socket

import pytest

ray = pytest.importorskip("ray")

from sam2elnet.engine.distributed import (  # noqa: E402
    TOKEN_NOTICE,
    TOKEN_NOTICE_LOGGER,
    RayExecutor,
    quiet_token_notice,
)
from sam2elnet.engine.executors import SmoothingPredictor  # noqa: E402
from sam2elnet.errors import UserError  # noqa: E402

NOTICE = TOKEN_NOTICE + ". Set RAY_AUTH_MODE=disabled to opt out. For more information, see ..."


def _texts(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == TOKEN_NOTICE_LOGGER]


def test_quiet_token_notice_drops_that_line_only_and_only_inside(caplog) -> None:
    ray_log = logging.getLogger(TOKEN_NOTICE_LOGGER)
    with caplog.at_level(logging.INFO, logger=TOKEN_NOTICE_LOGGER):
        with quiet_token_notice():
            ray_log.warning(NOTICE)
            ray_log.warning("Token authentication is enabled but no token was found")
        ray_log.warning(NOTICE)
    assert _texts(caplog) == ["Token authentication is enabled but no token was found", NOTICE]
    assert not ray_log.filters


@pytest.mark.parametrize("own", [True, False])
def test_only_the_local_cluster_we_start_is_quiet(monkeypatch, caplog, own: bool) -> None:
    """While ``ray.init`` starts the private cluster the notice is dropped; joining a user's
    address (here a listening socket that is no Ray: ``ray.init`` is replaced and fails) keeps
    every line Ray logs."""

    def fake_init(**kw):
        logging.getLogger(TOKEN_NOTICE_LOGGER).warning(NOTICE)
        raise ConnectionError("no cluster (test)")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", fake_init)
    with socket.socket() as srv, caplog.at_level(logging.INFO, logger=TOKEN_NOTICE_LOGGER):
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        address = None if own else f"127.0.0.1:{srv.getsockname()[1]}"
        with pytest.raises(UserError, match="cannot connect to the Ray cluster"):
            RayExecutor(functools.partial(SmoothingPredictor), num_workers=1, address=address)
    assert _texts(caplog) == ([] if own else [NOTICE])
