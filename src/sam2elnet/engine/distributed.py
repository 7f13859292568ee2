"""Scale-out of scene prediction on a Ray cluster (local by default).

Why this shape: reading windows and blending is cheap and I/O bound, the model is the expensive
part. So the driver keeps reading, normalising and blending (exactly the code of the local run),
and only the ``predict_arrays`` calls go to Ray *actors*, each of which loads the model **once**
(from a picklable factory, e.g. the model path) and keeps it. Batches are submitted round-robin
with at most ``max_in_flight`` outstanding; the driver waits (``ray.wait``) on the oldest before
submitting more. That bounds memory (only ``max_in_flight`` batches exist at any time, wherever
they are) and returns results in submission order, which is what makes the output *identical* to
the local backend (same floating-point sums in the same order).

Use::

    from sam2elnet.engine.distributed import RayExecutor
    with RayExecutor(factory, num_workers=4, address="auto") as ex:
        predict_scene(src, dst, predictor, executor=ex)

``factory`` is any picklable zero-argument callable returning a :class:`WindowPredictor`, e.g.
``functools.partial(load_scene_predictor, "model.pt")`` (:mod:`sam2elnet.pipeline.scenes`).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from sam2elnet.engine.executors import run_batch
from sam2elnet.errors import UserError

log = logging.getLogger(__name__)

__all__ = ["RayExecutor", "ray_available"]


def ray_available() -> bool:
    """True when ``ray`` can be imported (it is an optional dependency: ``pip install sam2elnet[ray]``)."""
    try:
        import ray  # noqa: F401
    except Exception:
        return False
    return True


class _PredictorActor:
    """Holds one predictor for the actor's lifetime (the model is loaded once per worker)."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self.predictor = factory()

    def run(
        self, batch: np.ndarray, coarse: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        return run_batch(self.predictor, batch, coarse)

    def has_scorer(self) -> bool:
        return callable(getattr(self.predictor, "score_arrays", None))


class RayExecutor:
    """A :class:`~sam2elnet.engine.executors.BatchExecutor` running batches on Ray actors.

    ``address`` None starts a private local Ray (``num_workers`` CPUs, no dashboard); ``"auto"``
    or ``"ray://host:10001"`` joins an existing cluster. ``num_cpus_per_worker`` is the CPU
    reservation of each actor (give it the torch thread count); ``num_gpus_per_worker`` > 0 places
    actors on GPU nodes. ``max_in_flight`` defaults to ``2 * num_workers`` (each worker has one
    batch running and one queued, so none idles while the driver blends).
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
            raise UserError("the ray backend needs Ray: pip install 'sam2elnet[ray]' (or ray>=2.9)")
        import ray

        if num_workers < 1:
            raise UserError(f"--workers must be >= 1, got {num_workers}")
        self._own = False
        if not ray.is_initialized():
            kw: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "configure_logging": False,
            }
            if address is None:
                kw["num_cpus"] = max(num_workers, int(np.ceil(num_workers * num_cpus_per_worker)))
            else:
                kw["address"] = address
            kw.update(init_kwargs or {})
            try:
                ray.init(**kw)
            except ConnectionError as err:
                raise UserError(
                    f"cannot connect to the Ray cluster at {address!r} ({err})"
                ) from None
            self._own = True
        actor_cls = ray.remote(num_cpus=num_cpus_per_worker, num_gpus=num_gpus_per_worker)(
            _PredictorActor
        )
        self.actors = [actor_cls.remote(factory) for _ in range(num_workers)]
        self.max_in_flight = max(1, max_in_flight or 2 * num_workers)
        # surfaces factory errors (e.g. a bad model path) now, not in the middle of a scene
        try:
            scorer = ray.get([a.has_scorer.remote() for a in self.actors])
        except ray.exceptions.RayActorError as err:
            self.close()
            raise UserError(f"a Ray worker could not load the predictor: {err}") from None
        except ray.exceptions.RayTaskError as err:
            self.close()
            cause = err.cause if hasattr(err, "cause") else err
            if isinstance(cause, UserError):
                raise cause from None
            raise
        self.has_scorer = all(scorer)
        self.peak_in_flight = 0

    def map_batches(
        self, items: Iterable[tuple[np.ndarray, np.ndarray | None]]
    ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """Submit batches round-robin, at most ``max_in_flight`` outstanding; yield in order."""
        pending: deque[Any] = deque()
        k = 0
        for batch, coarse in items:
            if len(pending) >= self.max_in_flight:
                yield self._take(pending)
            actor = self.actors[k % len(self.actors)]
            k += 1
            pending.append(actor.run.remote(batch, coarse))
            self.peak_in_flight = max(self.peak_in_flight, len(pending))
        while pending:
            yield self._take(pending)

    @staticmethod
    def _take(pending: deque[Any]) -> tuple[np.ndarray, np.ndarray | None]:
        import ray

        oldest = pending.popleft()
        ray.wait([oldest], num_returns=1)
        try:
            return ray.get(oldest)
        except ray.exceptions.RayTaskError as err:
            cause = getattr(err, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None
            raise

    def close(self) -> None:
        """Kill the actors; shut Ray down if this executor started it."""
        import ray

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
