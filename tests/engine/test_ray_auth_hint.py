"""Joining a ``ray start --head`` cluster at an explicit ``HOST:PORT``: Ray (>= 2.59) turns token
authentication on for such a cluster by default, but sends the token to an explicit address only
when ``RAY_AUTH_MODE=token`` is set. Found in a cluster user trial (Ray 2.60): ``elnet annotate
--backend ray --address 127.0.0.1:6391`` retried for 25 s (``InvalidAuthToken`` every second) and
ended in ``cannot connect ... Failed to connect to Ray cluster``, which said nothing of the token.
``ray.init`` is replaced here: the real refusal needs a cluster of its own.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

ray = pytest.importorskip("ray")

from sam2elnet.engine.distributed import RayExecutor  # noqa: E402
from sam2elnet.engine.executors import SmoothingPredictor  # noqa: E402
from sam2elnet.errors import UserError  # noqa: E402


@pytest.fixture
def listening() -> Iterator[str]:
    """A local port that accepts TCP connections (the executor probes the address first)."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        yield f"127.0.0.1:{srv.getsockname()[1]}"


def _refused(**kw: object) -> None:
    raise ConnectionError(f"Failed to connect to Ray cluster at {kw['address']}")


def _join(address: str) -> str:
    with pytest.raises(UserError) as err:
        RayExecutor(SmoothingPredictor, num_workers=1, address=address)
    return str(err.value)


def test_a_failed_join_at_an_explicit_address_names_ray_auth_mode(
    listening: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not ray.is_initialized()
    monkeypatch.setattr(ray, "init", _refused)
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    msg = _join(listening)
    assert msg.startswith(
        f"cannot connect to the Ray cluster at '{listening}': Failed to connect to Ray cluster at "
    ), msg
    assert msg.endswith("export RAY_AUTH_MODE=token and re-run"), msg  # no cluster here
    # RAY_AUTH_MODE already chosen: the hint would be wrong, so it is left out
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    assert "RAY_AUTH_MODE" not in _join(listening)


def test_a_failed_join_at_auto_says_what_auto_joins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Found in a docs walk (README: `elnet scene ... --backend ray --address auto`): with no
    cluster running, the line was Ray's 'Please specify the one to connect to by setting
    `--address` flag', to a user who had given --address."""

    def none_running(**kw: object) -> None:
        raise ConnectionError(
            "Could not find any running Ray instance. Please specify the one to connect to by "
            "setting `--address` flag or `RAY_ADDRESS` environment variable."
        )

    assert not ray.is_initialized()
    monkeypatch.setattr(ray, "init", none_running)
    msg = _join("auto")
    assert msg.startswith("cannot connect to the Ray cluster at 'auto': Could not find any "), msg
    assert msg.endswith(
        "; --address auto joins a Ray cluster already running on this machine (`ray start "
        "--head`, or a cluster node); without --address the command starts a private local Ray "
        "of --workers CPUs itself"
    ), msg
    assert "RAY_AUTH_MODE" not in msg


def test_auto_is_offered_only_where_a_cluster_of_this_machine_would_take_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before: every failed join at an explicit address offered ``--address auto`` (``give
    --address HOST:6379 ..., auto (on a node of a running cluster), ...``, ``or give --address
    auto on a cluster node``), also on a machine where auto finds no cluster and fails too. Now
    the unreachable address gets what to check, and auto only when this machine has a cluster
    (``RAY_ADDRESS``, or a ``ray start`` here), named with its address."""
    from sam2elnet.engine import ray_address

    with socket.socket() as srv:  # a port nothing listens on
        srv.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{srv.getsockname()[1]}"
    monkeypatch.setattr(ray_address, "auto_address", lambda: None)
    with pytest.raises(UserError) as err:
        ray_address.check_address(dead, timeout=1.0)
    msg = str(err.value)
    assert msg.startswith(f"cannot reach the Ray cluster at {dead} ("), msg
    assert msg.endswith(
        "; is the cluster running? check the address (`ray status` on the cluster's head node "
        "shows it), or leave --address out for a private local Ray"
    ), msg
    assert "auto" not in msg and "\n" not in msg
    monkeypatch.setattr(ray_address, "auto_address", lambda: "10.0.0.5:6379")
    with pytest.raises(UserError) as err:
        ray_address.check_address(dead, timeout=1.0)
    assert str(err.value).endswith(
        "private local Ray; give --address auto to join the Ray cluster of this machine "
        "(10.0.0.5:6379)"
    ), err.value
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    assert ray_address.auth_hint("10.0.0.9:6379").endswith(
        "export RAY_AUTH_MODE=token and re-run, or give --address auto to join the Ray cluster "
        "of this machine (10.0.0.5:6379)"
    )
