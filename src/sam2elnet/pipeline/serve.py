"""``elnet serve``: a Label Studio ML backend (pre-annotations on demand, fine-tuning on reviews).

Label Studio talks to an ML backend over HTTP/JSON (the protocol of its ``ml`` app):

* ``GET /health`` (and ``GET /``) -> ``{"status": "UP", "model_class", "model_version"}``;
* ``POST /setup`` ``{project, schema, hostname, access_token, ...}`` when a project connects ->
  ``{"model_version"}``; the host name and token are kept to download images Label Studio serves;
* ``POST /predict`` ``{tasks: [...], project, label_config, params}`` ->
  ``{"results": [{"result": [...], "score", "model_version"}, ...]}``, one per task, the mask as a
  ``brushlabels`` region (:func:`sam2elnet.export.labelstudio.mask_result`) and the evaluator's
  predicted IoU as the score;
* ``POST /webhook`` ``{action, annotation, task, project}``: ``ANNOTATION_CREATED`` /
  ``ANNOTATION_UPDATED`` store the reviewed mask with its image under ``WORKDIR/data/`` (the
  ``images/`` + ``masks/`` layout ``elnet train`` reads); once ``train_after`` new reviews are in
  (or on ``START_TRAINING``), a fine-tuning run starts in the background from the current model
  (:class:`sam2elnet.config.TrainConfig` ``init_model``); when it finishes the new model serves
  the following predictions under a new ``model_version``;
* ``POST /train`` (older Label Studio versions) ``{annotations: [tasks with annotations]}``: the
  same, for every task given.

Images are found, in order, as ``data.source`` (a local path, as ``elnet export --format
label-studio`` writes it), a ``/data/local-files/?d=`` URL under ``document_root``, a local path,
or a download (``Authorization: Token`` only to the Label Studio host; give ``ls_url``/``ls_token``
when the ``/setup`` values are not usable). The image's data key, the control and label names of
the answers come from the project's labelling config (:mod:`sam2elnet.pipeline.serve_protocol`).

Errors: a body of the wrong shape is answered ``400`` with one sentence; a task whose image cannot
be read gets no prediction (``[]`` in its place, the reason logged), and a request none of whose
images can be read is answered ``422`` with the reasons.

State: ``WORKDIR/state.json`` keeps the served model, the jobs and the reviews not yet trained on.
A restart with the same ``--model`` serves the latest fine-tuned model again (under its
``model_version``), and a fine-tuning run the restart interrupted runs again.

This module holds the backend's state and actions (:class:`MLBackend`) and the front door
(:func:`serve`); each part of the work has a module of its own:

* :mod:`~sam2elnet.pipeline.serve_http`: routes, JSON bodies, status codes (:func:`make_server`);
* :mod:`~sam2elnet.pipeline.serve_protocol`: request checks and the project's labelling config;
* :mod:`~sam2elnet.pipeline.serve_config`: the settings (:class:`BackendConfig`);
* :mod:`~sam2elnet.pipeline.serve_images`: a task's image as a local file (or a download);
* :mod:`~sam2elnet.pipeline.serve_model`: the served model, one image's mask and score;
* :mod:`~sam2elnet.pipeline.serve_reviews`: reviewed annotations into ``WORKDIR/data``;
* :mod:`~sam2elnet.pipeline.serve_training`: the fine-tuning runs;
* :mod:`~sam2elnet.pipeline.serve_state`: ``state.json`` and model versions.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from sam2elnet.data.run_model import model_version
from sam2elnet.errors import DataError
from sam2elnet.export.labelstudio import mask_result
from sam2elnet.option_checks import check_options
from sam2elnet.pipeline.serve_config import BackendConfig
from sam2elnet.pipeline.serve_http import make_server
from sam2elnet.pipeline.serve_images import task_image
from sam2elnet.pipeline.serve_model import (
    load_predictor,
    model_category,
    predict_mask,
    trained_size,
)
from sam2elnet.pipeline.serve_protocol import (
    LabelTarget,
    Unprocessable,
    annotations_of,
    label_target,
    object_of,
    tasks_of,
)
from sam2elnet.pipeline.serve_reviews import count_reviews, review_folder, store_review
from sam2elnet.pipeline.serve_state import read_state, write_state

log = logging.getLogger(__name__)

__all__ = ["BackendConfig", "MLBackend", "Unprocessable", "make_server", "serve"]

_TRAIN_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_CREATED")


class MLBackend:
    """The backend's state and actions, independent of HTTP (used by the handler and tests).

    State: the served model (:attr:`predictor`, :attr:`model_path`, :attr:`model_version`), the
    project's names (:attr:`target`), the Label Studio host and token, the fine-tuning jobs, the
    reviews not yet trained on and the running fine-tuning thread (:attr:`training`); changed
    under :attr:`lock`, saved in ``state.json``.
    """

    # the names these had as methods, for callers of the time
    _version = staticmethod(model_version)
    _category = staticmethod(model_category)

    def __init__(self, cfg: BackendConfig) -> None:
        # checked when the config is made; again here for callers that changed fields since
        check_options(BackendConfig, **cfg.model_dump())
        self.cfg = cfg
        self.lock = threading.Lock()
        self.base_version = model_version(Path(cfg.model))
        self.model_path = Path(cfg.model).resolve()
        self.pending = 0
        self.jobs: list[dict[str, Any]] = []
        self.state_path = cfg.workdir / "state.json"
        redo = self._restore()
        self.predictor = load_predictor(self.model_path, Path(cfg.model), cfg.device)
        self.model_version = model_version(self.model_path)
        self.category = cfg.category or model_category(self.predictor)
        self.image_size = cfg.image_size or trained_size(self.predictor)
        self.hostname = cfg.ls_url
        self.token = cfg.ls_token
        self.target = LabelTarget(label=self.category)
        self.training: threading.Thread | None = None
        self.data = review_folder(cfg.workdir)
        if redo:
            log.warning("fine-tuning run %s was interrupted; running it again", redo)
            self.maybe_train(force=True)

    def _restore(self) -> str | None:
        """Take the model, jobs and pending reviews of ``state.json`` when it was made from the
        same ``--model``; the name of a job a restart interrupted, else None."""
        saved = read_state(self.state_path, self.base_version)
        if saved is None:
            return None
        if saved.model is not None:
            self.model_path = saved.model
        self.jobs, self.pending = saved.jobs, saved.pending
        return saved.interrupted

    def _save(self) -> None:
        """Write ``state.json`` (atomically); call with :attr:`lock` held."""
        write_state(
            self.state_path,
            base_model=Path(self.cfg.model),
            base_version=self.base_version,
            model=self.model_path,
            version=self.model_version,
            pending=self.pending,
            jobs=self.jobs,
        )

    # ------------------------------------------------------------------ protocol
    def health(self) -> dict[str, Any]:
        return {
            "status": "UP",
            "model_class": "SAM2-ELNet",
            "model_version": self.model_version,
            "training": self.training is not None and self.training.is_alive(),
            "jobs": self.jobs,
        }

    def setup(self, payload: dict[str, Any]) -> dict[str, Any]:
        self._target(payload.get("schema"))
        if not self.cfg.ls_url and payload.get("hostname"):
            self.hostname = str(payload["hostname"]).rstrip("/")
        if not self.cfg.ls_token and payload.get("access_token"):
            self.token = str(payload["access_token"])
        return {"model_version": self.model_version}

    def _target(self, config: Any) -> LabelTarget:
        with self.lock:
            self.target = label_target(config, self.category, self.target)
            return self.target

    def predict(self, payload: dict[str, Any]) -> dict[str, Any]:
        """One answer per task: a prediction, or ``[]`` (none) when its image cannot be read; a
        warning of a kind (an image unlike the model's training data, ...) is logged once per
        request, not per task, and requests answered at once keep theirs apart
        (:mod:`sam2elnet.utils.run_warnings` scopes belong to the thread that opened them).

        Raises:
            BadRequest: a body of the wrong shape.
            Unprocessable: no task's image could be read (HTTP 422, the reasons).
        """
        from sam2elnet.utils.run_warnings import RunWarnings

        with RunWarnings("task"):
            return self._predict(payload)

    def _predict(self, payload: dict[str, Any]) -> dict[str, Any]:
        tasks = tasks_of(payload)
        target = self._target(payload.get("label_config"))
        results: list[Any] = []
        failed = []
        for task in tasks:
            try:
                mask, score = self.predict_image(self.image_path(task, target.data_key))
            except (DataError, OSError) as err:
                log.warning("task %s: %s", task.get("id"), err)
                failed.append(f"task {task.get('id')}: {err}")
                results.append([])  # no prediction rather than an empty one that looks real
                continue
            r: dict[str, Any] = {
                "result": target.apply(mask_result(mask, target.label, target.polygons)),
                "model_version": self.model_version,
            }
            if score is not None:
                r["score"] = score
            results.append(r)
        if tasks and len(failed) == len(tasks):
            raise Unprocessable("no task image could be read: " + "; ".join(failed[:3]))
        return {"results": results, "model_version": self.model_version}

    def predict_image(self, path: Path) -> tuple[np.ndarray, float | None]:
        """Bool (H, W) mask (probability > threshold) and predicted IoU (None without evaluator)
        of the model served now (:func:`~sam2elnet.pipeline.serve_model.predict_mask`)."""
        with self.lock:
            pred = self.predictor
        return predict_mask(pred, path, self.cfg.threshold)

    def webhook(self, payload: dict[str, Any]) -> dict[str, Any]:
        action = payload.get("action")
        if action in _TRAIN_ACTIONS:
            task = object_of(payload.get("task"), "'task'")
            object_of(task.get("data"), "'task.data'")
            stored = sum(self.store(task, a) for a in annotations_of(payload))
            return {"status": "ok", "stored": stored, **self.maybe_train(force=False)}
        if action == "START_TRAINING":
            return {"status": "ok", **self.maybe_train(force=True)}
        return {"status": "ignored", "action": action}

    def train_legacy(self, payload: dict[str, Any]) -> dict[str, Any]:
        stored = 0
        for task in tasks_of(payload, "annotations"):
            ann = annotations_of(task)
            ann = [a for a in ann if not a.get("was_cancelled")]
            if ann:
                stored += self.store(task, ann[-1])
        return {"status": "ok", "stored": stored, **self.maybe_train(force=True)}

    # ------------------------------------------------------------------ reviews -> training data
    def image_path(self, task: dict[str, Any], key: str | None = None) -> Path:
        """Local file of a task's image (:func:`~sam2elnet.pipeline.serve_images.task_image`);
        ``key`` is the data key of the image URL (default: the labelling config's)."""
        return task_image(
            task,
            key or self.target.data_key,
            document_root=self.cfg.document_root,
            cache=self.cfg.workdir / "cache",
            hostname=self.hostname,
            token=self.token,
        )

    def store(self, task: dict[str, Any], annotation: dict[str, Any]) -> int:
        """Save a reviewed annotation as ``data/masks/<stem>.tif`` (GeoTIFF image: its
        georeference) or ``.png`` + its image; 1 if stored
        (:func:`~sam2elnet.pipeline.serve_reviews.store_review`)."""
        stored = store_review(self.data, task, annotation, self.image_path)
        if stored:
            with self.lock:
                self.pending += 1
                self._save()
        return stored

    def maybe_train(self, force: bool) -> dict[str, Any]:
        """Start a background fine-tuning run when enough new reviews are in (or ``force``)."""
        with self.lock:
            busy = self.training is not None and self.training.is_alive()
            n = count_reviews(self.data)
            if (
                not self.cfg.train
                or busy
                or n == 0
                or (not force and self.pending < self.cfg.train_after)
            ):
                return {"training": busy}
            self.pending = 0
            job = {
                "job": f"ft-{len(self.jobs) + 1}",
                "state": "running",
                "samples": n,
                "image_size": self.image_size,
            }
            self.jobs.append(job)
            self._save()
            self.training = threading.Thread(target=self._train, args=(job,), daemon=True)
            self.training.start()
        return {"training": True, "job": job["job"]}

    def _train(self, job: dict[str, Any]) -> None:
        """Run ``job`` (:func:`~sam2elnet.pipeline.serve_training.fine_tune`) and serve its model;
        a failure is recorded in the job (``/health``) and the old model keeps serving."""
        from sam2elnet.pipeline.serve_training import fine_tune

        t0 = time.monotonic()
        try:
            new, path = fine_tune(self.cfg, job, self.model_path, self.image_size, self.predictor)
            with self.lock:
                self.predictor = new
                self.model_path = path
                self.model_version = model_version(self.model_path)
                job.update(state="done", model=str(self.model_path))
                job["model_version"] = self.model_version
        except Exception as err:  # reported on /health; the backend keeps serving the old model
            log.exception("fine-tuning failed")
            job.update(state="failed", error=f"{err.__class__.__name__}: {err}")
        job["seconds"] = round(time.monotonic() - t0, 1)
        with self.lock:
            self._save()


def serve(cfg: BackendConfig, host: str = "127.0.0.1", port: int = 9090) -> None:
    """Run the ML backend until interrupted.

    Announces its address on stderr (``sam2elnet ML backend at http://HOST:PORT (model ...)``;
    with ``port=0``, the port the OS gave), like every command's notes; stdout stays empty.
    """
    backend = MLBackend(cfg)
    srv = make_server(backend, host, port)
    tune = f"fine-tunes on {backend.image_size} px crops" if cfg.train else "no fine-tuning"
    print(
        f"sam2elnet ML backend at http://{srv.server_address[0]}:{srv.server_address[1]} "
        f"(model {backend.model_version}, {tune}); connect it in Label Studio: project "
        "Settings > Model",
        file=sys.stderr,
        flush=True,
    )
    try:
        srv.serve_forever()
    finally:
        srv.server_close()
