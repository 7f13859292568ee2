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
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np

from sam2elnet.errors import DataError, UserError
from sam2elnet.export.labelstudio import mask_result
from sam2elnet.export.labelstudio_import import result_mask
from sam2elnet.options import check_options
from sam2elnet.pipeline.serve_config import BackendConfig
from sam2elnet.pipeline.serve_protocol import (
    BadRequest,
    LabelTarget,
    annotations_of,
    label_target,
    object_of,
    tasks_of,
)
from sam2elnet.utils.atomic import json_text, write_json_atomic

log = logging.getLogger(__name__)

__all__ = ["BackendConfig", "MLBackend", "make_server", "serve"]

_TRAIN_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_CREATED")


class MLBackend:
    """The backend's state and actions, independent of HTTP (used by the handler and tests)."""

    def __init__(self, cfg: BackendConfig) -> None:
        from sam2elnet.engine.infer import Predictor

        # checked when the config is made; again here for callers that changed fields since
        check_options(BackendConfig, **cfg.model_dump())
        self.cfg = cfg
        self.lock = threading.Lock()
        self.base_version = self._version(Path(cfg.model))
        self.model_path = Path(cfg.model).resolve()
        self.pending = 0
        self.jobs: list[dict[str, Any]] = []
        self.state_path = cfg.workdir / "state.json"
        redo = self._restore()
        self.predictor = Predictor.from_file(self.model_path, device=cfg.device)
        if self.model_path != Path(cfg.model).resolve():
            base = Predictor.from_file(cfg.model, device=cfg.device)
            if base.evaluator.fitted and not self.predictor.evaluator.fitted:
                self.predictor.evaluator = base.evaluator  # as before the restart (_train)
        self.model_version = self._version(self.model_path)
        self.category = cfg.category or self._category(self.predictor)
        self.image_size = cfg.image_size or self._trained_size(self.predictor)
        self.hostname = cfg.ls_url
        self.token = cfg.ls_token
        self.target = LabelTarget(label=self.category)
        self.training: threading.Thread | None = None
        (cfg.workdir / "data" / "images").mkdir(parents=True, exist_ok=True)
        (cfg.workdir / "data" / "masks").mkdir(parents=True, exist_ok=True)
        if redo:
            log.warning("fine-tuning run %s was interrupted; running it again", redo)
            self.maybe_train(force=True)

    def _restore(self) -> str | None:
        """Take the model, jobs and pending reviews of ``state.json`` when it was made from the
        same ``--model``; the name of a job a restart interrupted, else None."""
        try:
            state = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:
            log.warning("%s unreadable (%s); starting from --model", self.state_path, err)
            return None
        if state.get("base_version") != self.base_version:
            log.warning(
                "%s was made from %s; starting again from --model %s",
                self.state_path,
                state.get("base_version"),
                self.base_version,
            )
            return None
        current = Path(str(state.get("model") or ""))
        if current.is_file():
            self.model_path = current
            log.info("serving %s, the latest fine-tuned model in %s", current, self.state_path)
        self.jobs = list(state.get("jobs") or [])
        self.pending = int(state.get("pending") or 0)
        interrupted = [j for j in self.jobs if j.get("state") == "running"]
        for j in interrupted:
            j["state"] = "interrupted"
        return interrupted[-1]["job"] if interrupted else None

    def _save(self) -> None:
        """Write ``state.json`` (atomically); call with :attr:`lock` held."""
        write_json_atomic(
            self.state_path,
            {
                "base_model": str(Path(self.cfg.model).resolve()),
                "base_version": self.base_version,
                "model": str(self.model_path),
                "model_version": self.model_version,
                "pending": self.pending,
                "jobs": self.jobs,
            },
        )

    @staticmethod
    def _category(predictor: Any) -> str:
        """The label name of the model's domain (``elnet export``'s default for its runs)."""
        from sam2elnet.data.domain import category_name

        train = (getattr(predictor, "extra", None) or {}).get("train") or {}
        return category_name(train.get("domain"), train.get("modality")) or "foreground"

    @staticmethod
    def _trained_size(predictor: Any) -> int:
        """The crop size (px) the model was trained at (its training record; the fine-tuning
        runs' default, so a model trained on 64 px tiles is fine-tuned on 64 px crops), else
        ``elnet train``'s default ``--image-size`` (256) for a model file without one."""
        from sam2elnet.config import TrainConfig

        extra = getattr(predictor, "extra", None) or {}
        for size in (extra.get("image_size"), (extra.get("train") or {}).get("image_size")):
            if isinstance(size, int) and size >= 32:
                return size
        return int(TrainConfig.model_fields["image_size"].default)

    @staticmethod
    def _version(path: Path) -> str:
        import hashlib

        return f"{path.name}@{hashlib.sha256(path.read_bytes()).hexdigest()[:8]}"

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
        """Bool (H, W) mask (probability > threshold) and predicted IoU (None without evaluator)."""
        with self.lock:
            pred = self.predictor
        _img, x, valid = pred.read(path)
        probs, quality = pred.predict([x], valid=[valid])
        score = None
        if pred.evaluator.fitted:
            score = float(quality.predicted_iou[0])
        return (probs[0] > self.cfg.threshold) & valid, score

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
        """Local file of a task's image (see the module docstring for the order); ``key`` is the
        data key of the image URL (default: the labelling config's)."""
        key = key or self.target.data_key
        data = task.get("data") or {}
        src = data.get("source")
        if isinstance(src, str) and src and Path(src).is_file():
            return Path(src)
        url = str(data.get(key) or "")
        if not url:
            raise DataError(f"task has no data.{key} (the image of the labelling config)")
        if url.startswith("/data/local-files") and self.cfg.document_root is not None:
            rel = parse_qs(urlparse(url).query).get("d", [""])[0]
            p = (self.cfg.document_root / rel).resolve()
            if p.is_file() and p.is_relative_to(self.cfg.document_root.resolve()):
                return p
        if Path(url).is_file():
            return Path(url)
        return self._download(url, task)

    def _download(self, url: str, task: dict[str, Any]) -> Path:
        if url.startswith("/"):
            if not self.hostname:
                raise DataError(f"cannot fetch {url}: Label Studio host unknown (give --ls-url)")
            url = self.hostname + url
        cache = self.cfg.workdir / "cache"
        cache.mkdir(parents=True, exist_ok=True)
        name = Path(urlparse(url).path).name or "image"
        if "d" in parse_qs(urlparse(url).query):
            name = Path(parse_qs(urlparse(url).query)["d"][0]).name
        dst = cache / f"{task.get('id', 'x')}_{name}"
        req = urllib.request.Request(url)
        if self.token and self.hostname and _same_host(url, self.hostname):
            req.add_header("Authorization", f"Token {self.token}")  # never to other hosts
        try:
            with urllib.request.urlopen(req, timeout=60) as r, open(dst, "wb") as fh:
                shutil.copyfileobj(r, fh)
        except OSError as err:
            raise DataError(f"cannot download {url} ({err})") from None
        return dst

    def store(self, task: dict[str, Any], annotation: dict[str, Any]) -> int:
        """Save a reviewed annotation as ``data/masks/<stem>.png`` + its image; 1 if stored."""
        from sam2elnet.data.layouts import image_size
        from sam2elnet.data.writers import write_mask

        if annotation.get("was_cancelled"):
            return 0
        try:
            src = self.image_path(task)
            h, w = image_size(src)
            mask = result_mask(annotation.get("result") or [], h, w)
        except (DataError, OSError) as err:
            log.warning("annotation of task %s not stored: %s", task.get("id"), err)
            return 0
        except (AttributeError, KeyError, TypeError, ValueError) as err:
            raise BadRequest(
                f"annotation of task {task.get('id')}: a result region that is not a Label "
                f"Studio brush or polygon region ({err.__class__.__name__}: {err})"
            ) from None
        stem = str((task.get("data") or {}).get("name") or f"task{task.get('id')}_{src.stem}")
        stem = Path(stem).name or f"task{task.get('id')}"  # a name, never a path out of data/
        data = self.cfg.workdir / "data"
        for old in (data / "images").glob(f"{stem}.*"):
            old.unlink()
        shutil.copyfile(src, data / "images" / f"{stem}{src.suffix.lower()}")
        write_mask(data / "masks" / f"{stem}.png", mask)
        with self.lock:
            self.pending += 1
            self._save()
        return 1

    def maybe_train(self, force: bool) -> dict[str, Any]:
        """Start a background fine-tuning run when enough new reviews are in (or ``force``)."""
        with self.lock:
            busy = self.training is not None and self.training.is_alive()
            n = len(list((self.cfg.workdir / "data" / "masks").glob("*.png")))
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
        from sam2elnet.config import TrainConfig
        from sam2elnet.engine.infer import Predictor
        from sam2elnet.engine.train import train

        out = self.cfg.workdir / "runs" / f"{job['job']}-{int(time.time())}"
        t0 = time.monotonic()
        try:
            n = job["samples"]
            cfg = TrainConfig(
                data=self.cfg.workdir / "data",
                out=out,
                init_model=self.model_path,
                epochs=self.cfg.epochs,
                batch_size=min(self.cfg.batch_size, n),
                image_size=self.image_size,
                val_fraction=0.0 if n < 4 else 0.25,
                fit_quality=n >= 4,
                device=self.cfg.device,
                progress=False,
                **self.cfg.extra_train,
            )
            res = train(cfg)
            new = Predictor.from_file(res.best_path, device=self.cfg.device)
            if not new.evaluator.fitted and self.predictor.evaluator.fitted:
                new.evaluator = self.predictor.evaluator  # keep scoring until enough reviews
            with self.lock:
                self.predictor = new
                self.model_path = Path(res.best_path).resolve()
                self.model_version = self._version(self.model_path)
                job.update(state="done", model=str(self.model_path))
                job["model_version"] = self.model_version
        except Exception as err:  # reported on /health; the backend keeps serving the old model
            log.exception("fine-tuning failed")
            job.update(state="failed", error=f"{err.__class__.__name__}: {err}")
        job["seconds"] = round(time.monotonic() - t0, 1)
        with self.lock:
            self._save()


class Unprocessable(ValueError):
    """A well-formed request that cannot be answered (HTTP 422 with this message)."""


def _same_host(url: str, host: str) -> bool:
    """True when ``url`` points at the Label Studio ``host`` (scheme and network location)."""
    a, b = urlparse(url), urlparse(host)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


def _handler(backend: MLBackend) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "sam2elnet-ml-backend"

        def log_message(self, fmt: str, *args: Any) -> None:
            log.info("%s %s", self.address_string(), fmt % args)

        def _send(self, code: int, obj: dict[str, Any]) -> None:
            body = json_text(obj, indent=None).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 (http.server naming)
            if urlparse(self.path).path.rstrip("/") in ("", "/health"):
                self._send(200, backend.health())
            else:
                self._send(404, {"error": f"no such endpoint {self.path}"})

        def do_POST(self) -> None:  # noqa: N802
            route = urlparse(self.path).path.rstrip("/")
            n = int(self.headers.get("Content-Length") or 0)
            try:
                payload = object_of(json.loads(self.rfile.read(n) or b"{}"), "the request body")
            except BadRequest as err:
                self._send(400, {"error": str(err)})
                return
            except ValueError:
                self._send(400, {"error": "request body is not JSON"})
                return
            actions = {
                "/setup": backend.setup,
                "/predict": backend.predict,
                "/webhook": backend.webhook,
                "/train": backend.train_legacy,
            }
            if route not in actions:
                self._send(404, {"error": f"no such endpoint {self.path}"})
                return
            try:
                self._send(200, actions[route](payload))
            except BadRequest as err:
                log.warning("%s: bad request: %s", route, err)
                self._send(400, {"error": str(err)})
            except Unprocessable as err:
                log.warning("%s: %s", route, err)
                self._send(422, {"error": str(err)})
            except Exception as err:
                log.exception("%s failed", route)
                self._send(500, {"error": f"{err.__class__.__name__}: {err}"})

    return Handler


def make_server(
    backend: MLBackend, host: str = "127.0.0.1", port: int = 9090
) -> ThreadingHTTPServer:
    """An HTTP server for ``backend`` bound to ``host:port`` (port 0: any free port)."""
    try:
        return ThreadingHTTPServer((host, port), _handler(backend))
    except OSError as err:
        raise UserError(
            f"cannot listen on {host}:{port} ({err.strerror}); choose another --port"
        ) from None


def serve(cfg: BackendConfig, host: str = "127.0.0.1", port: int = 9090) -> None:
    """Run the ML backend until interrupted."""
    backend = MLBackend(cfg)
    srv = make_server(backend, host, port)
    tune = f"fine-tunes on {backend.image_size} px crops" if cfg.train else "no fine-tuning"
    print(
        f"sam2elnet ML backend at http://{srv.server_address[0]}:{srv.server_address[1]} "
        f"(model {backend.model_version}, {tune}); connect it in Label Studio: project "
        "Settings > Model",
        flush=True,
    )
    try:
        srv.serve_forever()
    finally:
        srv.server_close()
