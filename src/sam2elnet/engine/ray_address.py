"""Ray cluster addresses for ``--backend ray --address``: checked before Ray is asked to join
one (:func:`check_address`: a malformed or unreachable address is one ``error:`` line at once,
not minutes of Ray retrying), and what a failed join adds to say what to do
(:func:`auth_hint`: Ray's token authentication; :func:`auto_hint`: ``--address auto`` only
where this machine has a cluster it would join). Part of :mod:`sam2elnet.engine.distributed`.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from sam2elnet.errors import UserError

__all__ = ["ADDRESS_HELP", "auth_hint", "auto_address", "auto_hint", "check_address"]

ADDRESS_HELP = (
    "give --address HOST:6379 (the head node of `ray start --head`), ray://HOST:10001 (Ray "
    "Client), auto (on a node of a running cluster), or leave it out for a private local Ray"
)


def auth_hint(address: str | None) -> str:
    """What to add to a failed join: at ``auto``, what it joins and that no ``--address`` starts
    a local Ray; at an explicit ``HOST:PORT``, Ray (>= 2.59) sends its token
    (``~/.ray/auth_token``) to an address given explicitly only when ``RAY_AUTH_MODE=token`` is
    set (``auto`` finds a local cluster and turns it on by itself), so joining a ``ray start
    --head`` cluster, which has token authentication on by default, fails without it."""
    if address == "auto":  # nothing running here: Ray's own text asks for an --address
        return (
            "; --address auto joins a Ray cluster already running on this machine (`ray start "
            "--head`, or a cluster node); without --address the command starts a private "
            "local Ray of --workers CPUs itself"
        )
    if address is None or str(address).startswith("ray://"):
        return ""
    if os.environ.get("RAY_AUTH_MODE"):
        return ""
    return (
        "; a cluster with Ray's token authentication (on by default since Ray 2.59) is joined at "
        "an explicit address only with RAY_AUTH_MODE=token in your environment (the token from "
        "~/.ray/auth_token or RAY_AUTH_TOKEN): export RAY_AUTH_MODE=token and re-run"
        + auto_hint(address, "or give")
    )


def auto_hint(address: str | None, lead: str = ";") -> str:
    """``; give --address auto to join the Ray cluster of this machine (HOST:PORT)`` after a failed
    join at another explicit ``address``, only when this machine has a cluster ``auto`` would
    join (:func:`auto_address`: ``RAY_ADDRESS``, or a ``ray start`` here); "" otherwise, where
    ``auto`` would fail too. ``lead``: the words before it (``or give`` continues a sentence)."""
    here = auto_address()
    if here is None or address in (None, "auto", here):
        return ""
    give = "; give" if lead == ";" else f", {lead}"
    return f"{give} --address auto to join the Ray cluster of this machine ({here})"


def auto_address() -> str | None:
    """What ``address="auto"`` resolves to: ``RAY_ADDRESS``, else the address a ``ray start`` on
    this machine recorded in ``/tmp/ray/ray_current_cluster`` (Ray's own convention); None when
    neither exists (Ray then reports that no cluster runs)."""
    env = os.environ.get("RAY_ADDRESS", "").strip()
    if env and env != "auto":
        return env
    rec = Path(os.environ.get("RAY_TMPDIR", "/tmp")) / "ray" / "ray_current_cluster"
    try:
        text = rec.read_text().strip()
    except OSError:
        return None
    return text or None


def check_address(address: str | None, timeout: float = 5.0) -> None:
    """Fail fast (UserError, one line) when a Ray cluster address is malformed or unreachable.

    ``ray.init`` waits minutes for a head node that is not there; this opens one TCP connection
    to ``HOST:PORT`` (``ray://HOST:PORT``, or what ``auto`` resolves to) with ``timeout`` seconds
    first. ``None`` (a private local Ray) is always fine.

    Raises:
        UserError: the address is not ``auto``, ``HOST:PORT`` or ``ray://HOST:PORT``, or nothing
            listens there.
    """
    if address is None or address == "local":
        return
    target = auto_address() if address == "auto" else address
    if target is None:
        return  # ray.init("auto") itself says that no cluster runs, at once
    hostport = target.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--address {address!r} is not a Ray cluster address; {ADDRESS_HELP}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as err:
        why = err.strerror or err.__class__.__name__
        if address == "auto":  # the address of a cluster started here that has stopped since
            todo = "start it (`ray start --head`), or leave --address out for a private local Ray"
        else:
            todo = (
                "check the address (`ray status` on the cluster's head node shows it), or leave "
                "--address out for a private local Ray" + auto_hint(address)
            )
        raise UserError(
            f"cannot reach the Ray cluster at {target} ({why}); is the cluster running? {todo}"
        ) from None
