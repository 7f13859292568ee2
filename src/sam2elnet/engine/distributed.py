"""Scale-out on a Ray cluster (local by default): scene windows and folder-job chunks on Ray actors.

Why this shape: reading windows and blending is cheap and I/O bound, the model is the expensive
part. So the driver keeps reading, normalising and blending (exactly the code of the local run),
and only the ``predict_arrays`` calls go to Ray *actors*, each of which loads the model **once**
(from a picklable factory, e.g. the model path) and keeps it. Batches are submitted round-robin
with at most ``max_in_flight`` outstanding; the driver waits (``ray.wait``) on the oldest before
submitting more. That bounds memory (only ``max_in_flight`` batches exist at any time, wherever
they are) and returns results in submission order, which is what makes the output *identical* to
the local backend (same floating-point sums in the same order).

Folder jobs (``elnet annotate`` / ``elnet enhance --backend ray``) use the same actors through
:meth:`RayExecutor.map_calls`: each actor runs the folder job's own per-chunk function with its
predictor (reading the images, predicting, writing the labels), so images are spread over the
cluster while the driver only schedules, collects the ``quality.csv`` rows in submission order and
writes the run-folder tables. That needs the images and the output folder on a file system every
node sees under the same path (a local cluster always does).

Use::

    from sam2elnet.engine.distributed import RayExecutor
    with RayExecutor(factory, num_workers=4, address="auto") as ex:
        predict_scene(src, dst, predictor, executor=ex)

``factory`` is any picklable zero-argument callable returning a :class:`WindowPredictor`, e.g.
``functools.partial(load_scene_predictor, "model.pt")`` (:mod:`sam2elnet.pipeline.scenes`).
"""

from __future__ import annotations

import logging
import pickle
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.engine.executors import WindowBatch, run_batch, window_batches
from sam2elnet.engine.ray_address import auth_hint, check_address
from sam2elnet.errors import UserError
from sam2elnet.option_checks import api_option

__all__ = [
    "TOKEN_NOTICE",
    "RayExecutor",
    "check_address",
    "quiet_token_notice",
    "ray_available",
    "release_workers",
]

RAY_INSTALL = "pip install 'sam2elnet[ray]' (or ray>=2.9)"


TOKEN_NOTICE = "Token authentication is enabled for this Ray cluster"
"""Start of the line Ray >= 2.59 logs (logger :data:`TOKEN_NOTICE_LOGGER`) whenever a local
``ray.init()`` turns on its default token authentication ("... Set RAY_AUTH_MODE=disabled to opt
out"). :class:`RayExecutor` drops it for the private cluster it starts itself (``address`` None),
never for a cluster the user names; the protection stays as Ray sets it (a token in
``~/.ray/auth_token``). Ray's documented switch, ``RAY_AUTH_MODE`` (token | disabled,
https://docs.ray.io/en/latest/ray-security/token-auth.html), is read when ``ray`` is imported, so
a process cannot set it for one cluster: set after the import, ``ray.init`` fails
(``InvalidAuthToken``, Ray 2.60); ``disabled`` would open the cluster to anyone who can reach its
ports. A ``RAY_AUTH_MODE`` the user sets is left to Ray (it then logs nothing either)."""
TOKEN_NOTICE_LOGGER = "ray._private.authentication.authentication_token_setup"


class _DropTokenNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(TOKEN_NOTICE)


@contextmanager
def _keep_sigterm() -> Iterator[None]:
    """Keep the process's own SIGTERM handler across ``ray.init``, which puts ``sys.exit(15)``
    in its place: under ``elnet`` (cli._term_as_interrupt) a ``kill`` / SLURM stop of a
    ``--backend ray`` job then ends as Ctrl-C does ('error: interrupted; re-run with --resume
    ...', exit 130), not silently with exit 15. Without a handler of its own (SIG_DFL: a
    notebook, a script) Ray's stays. Main thread only (signals are set there)."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        if callable(before):
            signal.signal(signal.SIGTERM, before)


@contextmanager
def quiet_token_notice() -> Iterator[None]:
    """Drop Ray's :data:`TOKEN_NOTICE` line while the private local cluster starts; every other
    line of that logger, and everything after the block, passes."""
    logger, drop = logging.getLogger(TOKEN_NOTICE_LOGGER), _DropTokenNotice()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def ray_available() -> bool:
    """True when ``ray`` can be imported (it is an optional dependency: ``pip install sam2elnet[ray]``)."""
    try:
        import ray  # noqa: F401
    except Exception:
        return False
    return True


#: times Ray restarts a worker (actor) process that died (killed, out of memory, its node lost);
#: the items it held run again on the restarted worker, which loads the model again
WORKER_RESTARTS = 3


class _PredictorActor:
    """Holds one predictor for the actor's lifetime (the model is loaded once per worker)."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self.predictor = factory()

    def run(
        self, batch: np.ndarray, coarse: np.ndarray | None, valid: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        return run_batch(self.predictor, batch, coarse, valid)

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(self.predictor, *args)

    def has_scorer(self) -> bool:
        return callable(getattr(self.predictor, "score_arrays", None))


class RayExecutor:
    """Batch and call executor on Ray actors (:class:`~sam2elnet.engine.executors.BatchExecutor`,
    :class:`~sam2elnet.engine.executors.CallExecutor`).

    ``address`` None starts a private local Ray (``num_workers`` CPUs, no dashboard, Ray's
    default token authentication without its notice line: :data:`TOKEN_NOTICE`); ``"auto"``,
    ``"HOST:6379"`` or ``"ray://host:10001"`` joins an existing cluster (checked first with
    :func:`check_address`). ``num_cpus_per_worker`` is the CPU reservation of each actor (give it
    the torch thread count); ``num_gpus_per_worker`` > 0 places actors on GPU nodes.
    ``max_in_flight`` (default ``2 * num_workers``: each worker has one item running and one
    queued, so none idles while the driver collects) bounds the outstanding work; the driver waits
    (``ray.wait``) on the oldest item before submitting more, and results come back in submission
    order. Each item goes to the actor with the fewest outstanding items. Actors start as work
    needs them: one when the executor is made (it loads the model, so a bad model fails here),
    another each time an item arrives while every started actor is busy, up to ``num_workers``;
    a job of one chunk starts one actor (each costs a Python process importing torch and loading
    the model: ~10 s CPU with a micro model).

    Raises:
        UserError: Ray is not installed, ``num_workers`` < 1, the cluster cannot be reached, or a
            worker cannot build its predictor (e.g. a bad model path: the factory's own error).
    """

    def __init__(
        self,
        factory: Callable[[], Any],
        *,
        num_workers: int = 2,
        address: str | None = None,
        max_in_flight: int | None = None,
        num_cpus_per_worker: float = 1.0,
        num_gpus_per_worker: float = 0.0,
        init_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if not ray_available():
            raise UserError(f"the ray backend needs Ray: {RAY_INSTALL}")
        import ray

        if num_workers < 1:
            raise UserError(f"--workers must be >= 1, got {num_workers}")
        self._own = False
        self.actors: list[Any] = []
        self.num_workers, self._factory, self.address = num_workers, factory, address
        self._actor_cls = ray.remote(
            num_cpus=num_cpus_per_worker,
            num_gpus=num_gpus_per_worker,
            max_restarts=WORKER_RESTARTS,  # a worker killed midway (OOM, a node lost) comes back
            max_task_retries=WORKER_RESTARTS,  # and its items in flight run again (atomic writes)
        )(_PredictorActor)
        if address is not None:
            check_address(address)
        if not ray.is_initialized():
            kw: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "configure_logging": False,
            }
            if address is None:  # "local": never join a cluster someone started on this machine
                kw["address"] = "local"
                kw["num_cpus"] = max(num_workers, int(np.ceil(num_workers * num_cpus_per_worker)))
            else:
                kw["address"] = address
            kw.update(init_kwargs or {})
            try:
                with _keep_sigterm(), quiet_token_notice() if address is None else nullcontext():
                    ray.init(**kw)
            except (ConnectionError, ValueError, RuntimeError) as err:
                msg = str(err).splitlines()[0] if str(err) else err.__class__.__name__
                if "ray[client]" in msg:
                    msg = "ray:// addresses need the Ray Client: pip install 'ray[client]'"
                raise UserError(
                    f"cannot connect to the Ray cluster at {address!r}: {msg}{auth_hint(address)}"
                ) from None
            self._own = True
        self._key = None if self._own else _pool_key(factory, num_workers, num_cpus_per_worker,
                                                       num_gpus_per_worker)  # fmt: skip
        kept = _POOLS.pop(self._key, None) if self._key is not None else None
        if kept is not None and all(_alive(a) for a in kept):
            self.actors = kept  # same predictor factory in the same Ray session: no reload
        else:
            # idle actors of other jobs hold CPUs/GPUs the new ones may need: free them first
            release_workers()
            for a in kept or []:
                _kill(a)
            # one actor now (a factory error surfaces here); the others as work queues up
            self.actors = [self._new_actor()]
        self._load = [0] * len(self.actors)
        self.max_in_flight = max(1, max_in_flight or 2 * num_workers)
        # surfaces factory errors (e.g. a bad model path) now, not in the middle of a job
        try:
            # no retries: a worker that cannot load the model fails the same way every time
            probe = [a.has_scorer.options(max_task_retries=0).remote() for a in self.actors]
            scorer = ray.get(probe)
        except ray.exceptions.RayActorError as err:
            self.close()
            cause = _actor_cause(err)
            if isinstance(cause, UserError):
                raise cause from None
            raise UserError(
                f"a Ray worker could not load the predictor: {_first_line(cause or err)}; run "
                "the command without --backend ray to see the whole error"
            ) from None
        except ray.exceptions.RayTaskError as err:
            self.close()
            cause = getattr(err, "cause", None)
            if isinstance(cause, UserError):
                raise cause from None
            raise
        self.has_scorer = all(scorer)
        self.peak_in_flight = 0
        self.n_submitted = 0

    def _new_actor(self) -> Any:
        return self._actor_cls.remote(self._factory)

    # ------------------------------------------------------------------ scheduling
    def _map(self, submit: Callable[[Any, Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        """``submit(actor, item) -> ObjectRef`` for each item, bounded, results in order."""
        pending: deque[tuple[Any, int]] = deque()
        for item in items:
            if len(pending) >= self.max_in_flight:
                yield self._take(pending)
            k = min(range(len(self.actors)), key=lambda i: self._load[i])
            if self._load[k] > 0 and len(self.actors) < self.num_workers:
                self.actors.append(self._new_actor())  # every actor busy: start another
                self._load.append(0)
                k = len(self.actors) - 1
            self._load[k] += 1
            pending.append((submit(self.actors[k], item), k))
            self.n_submitted += 1
            self.peak_in_flight = max(self.peak_in_flight, len(pending))
        while pending:
            yield self._take(pending)

    def map_batches(
        self, items: Iterable[WindowBatch]
    ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """Window batches through the actors' predictors (:func:`run_batch`); yields in order.

        Raises:
            UserError: a worker process died more often than Ray restarts it (the items
                finished so far are kept; the message says to re-run with ``--resume``).
        """
        # 2-tuples (windows, coarse): deprecated, executors.window_batches
        return self._map(lambda actor, it: actor.run.remote(*it), window_batches(items))

    def map_calls(self, fn: Callable[..., Any], items: Iterable[tuple[Any, ...]]) -> Iterator[Any]:
        """``fn(actor's predictor, *args)`` on the actors for each ``args``; yields in order.

        ``fn`` must be importable on the workers (a module-level function of an installed
        package); its exceptions are re-raised here as themselves (a ``UserError`` stays one).

        Raises:
            UserError: a worker process died more often than Ray restarts it (the items
                finished so far are kept; the message says to re-run with ``--resume``), or
                ``fn`` raised one.
        """
        return self._map(lambda actor, args: actor.call.remote(fn, *args), items)

    def _take(self, pending: deque[tuple[Any, int]]) -> Any:
        import ray

        oldest, k = pending.popleft()
        self._load[k] -= 1
        ray.wait([oldest], num_returns=1)
        try:
            return ray.get(oldest)
        except ray.exceptions.RayTaskError as err:
            cause = getattr(err, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None
            raise
        except ray.exceptions.RayActorError as err:
            why = next((ln.strip() for ln in str(err).splitlines() if ln.strip()), "")
            raise UserError(
                f"a Ray worker process died {WORKER_RESTARTS + 1} times (Ray restarts it "
                f"{WORKER_RESTARTS} times; last: {why[:200]}); the items finished so far are "
                f"kept: re-run with {api_option('resume')} to continue (check the worker's "
                f"memory: {api_option('max_memory')}, fewer {api_option('workers')} per node)"
            ) from None

    def record(self) -> dict[str, Any]:
        """Where the work ran, for a job's ``summary.json`` ``backend``: ``{"name": "ray",
        "workers": N, "address": ADDRESS or "local"}`` (``"local"``: a private Ray)."""
        return {"name": "ray", "workers": self.num_workers, "address": self.address or "local"}

    def close(self) -> None:
        """Shut Ray down if this executor started it (its actors go with it). In a Ray session
        started by someone else (``ray.init`` in a notebook, a test) the actors are kept for the
        next executor with the same factory and resources, so a series of jobs loads the model
        once per worker (one idle set at a time: an executor needing other actors kills them
        first, as they hold the CPUs); :func:`release_workers` kills them."""
        import ray

        key = getattr(self, "_key", None)
        if key is not None and self.actors and ray.is_initialized():
            old = _POOLS.pop(key, None)
            _POOLS[key] = self.actors
            self.actors = []
            for a in old or []:
                _kill(a)
            return
        for a in getattr(self, "actors", []):
            try:
                ray.kill(a)
            except Exception:  # already gone
                pass
        self.actors = []
        if self._own and ray.is_initialized():
            ray.shutdown()

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_POOLS: dict[Any, list[Any]] = {}
"""Idle actors of finished executors by :func:`_pool_key` (only in Ray sessions that no executor
started), reused by the next executor asking for the same."""


def _pool_key(factory: Any, workers: int, cpus: float, gpus: float) -> Any:
    """What makes two executors' actors interchangeable: the pickled factory (a partial of a
    module-level function and its arguments), the modification time and size of every file
    argument (a model file rewritten since is loaded afresh), workers and resources; None when
    the factory cannot be pickled by value (never reused)."""
    try:
        blob = pickle.dumps(factory)
    except Exception:  # noqa: BLE001  (lambdas, closures: not reused)
        return None
    stats = []
    for arg in [*getattr(factory, "args", ()), *getattr(factory, "keywords", {}).values()]:
        if isinstance(arg, (str, Path)) and len(str(arg)) < 4096:
            try:
                st = Path(arg).stat()
            except (OSError, ValueError):
                continue
            stats.append((str(arg), st.st_mtime_ns, st.st_size))
    import ray

    session = ray.get_runtime_context().get_job_id()
    return (blob, tuple(stats), workers, cpus, gpus, session)


def _alive(actor: Any) -> bool:
    import ray

    try:
        ray.get(actor.has_scorer.remote(), timeout=30)
    except Exception:  # noqa: BLE001  (dead or unreachable: start a new one)
        return False
    return True


def _kill(actor: Any) -> None:
    import ray

    try:
        ray.kill(actor)
    except Exception:  # noqa: BLE001  (already gone)
        pass


def release_workers() -> None:
    """Kill the idle actors kept for reuse (:meth:`RayExecutor.close`)."""
    while _POOLS:
        for a in _POOLS.popitem()[1]:
            _kill(a)


def _first_line(err: BaseException) -> str:
    """One line for an exception a Ray worker raised: ``RuntimeError: its first line``, without
    the terminal colour codes and traceback Ray's own text carries."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip()
    first = text.splitlines()[0].strip() if text else ""
    name = err.__class__.__name__
    if err.__class__.__module__.startswith("ray."):
        return first or name
    return f"{name}: {first}" if first else name


def _actor_cause(err: BaseException) -> BaseException | None:
    """The exception an actor's constructor raised, when Ray kept it: the ``cause`` of the
    ``RayTaskError`` that Ray gives as the error's ``cause`` or (Ray 2.5x ``ActorDiedError``)
    first argument."""
    cause = getattr(err, "cause", None)
    if cause is None and err.args and isinstance(err.args[0], BaseException):
        cause = err.args[0]
    inner = getattr(cause, "cause", None)
    return inner if isinstance(inner, BaseException) else cause
