"""``elnet serve`` (the Label Studio ML backend) in tests: a model that answers with scores
(:func:`scored_model`), an HTTP call (:func:`call`) and a backend served on a free port
(:func:`serving`; the ``serve_backend`` fixture of ``tests/conftest.py``)."""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from review_helpers import make_run

from sam2elnet.pipeline.serve import BackendConfig, MLBackend, make_server


def scored_model(path: Path, image_size: int = 32) -> Path:
    """An untrained micro model (seed 0) that predicts part of each image as foreground (its
    mask head's bias lowered by 1: about 5-25 % of a ``make_run`` image, which one depends on
    the image), with a fitted quality evaluator (so answers carry a score) and a training record
    of ``image_size`` px; built in a second, no training."""
    import torch

    from sam2elnet.model import ModelConfig, build_model
    from sam2elnet.model.io import save_model
    from sam2elnet.model.quality import FEATURE_NAMES, QualityEvaluator

    torch.manual_seed(0)
    model = build_model(ModelConfig(size="micro", in_bands=3))
    with torch.no_grad():
        model.decoder.head.bias.sub_(1.0)
    rng = np.random.default_rng(0)
    iou = rng.uniform(0, 1, 60)
    feats = rng.uniform(0, 1, (60, len(FEATURE_NAMES)))
    feats[:, FEATURE_NAMES.index("fg_frac")] = iou + rng.normal(0, 0.05, 60)
    ev = QualityEvaluator().fit(feats, None, iou, seed=0)
    assert ev.fitted
    extra = {"quality": ev.state_dict(), "image_size": image_size}
    return save_model(model, path, extra=extra)


def call(url: str, payload: dict | None = None) -> tuple[int, dict]:
    """POST ``payload`` as JSON (GET when None) to ``url``: (HTTP status, the JSON answer)."""
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@contextlib.contextmanager
def serving(root: Path) -> Iterator[tuple[MLBackend, str, Path]]:
    """A run folder under ``root`` (``make_run``: images a, b) and a backend of a
    :func:`scored_model` fine-tuning for 1 epoch, served on a free port: ``(backend, base URL,
    root)``; the server is shut down and a fine-tuning run waited for afterwards."""
    make_run(root, {"a": 0.2, "b": 0.8})
    # no image_size: the fine-tuning runs take the model's training size (32 px)
    cfg = BackendConfig(model=scored_model(root / "model.pt"), workdir=root / "serve", epochs=1)
    be = MLBackend(cfg)
    srv = make_server(be, port=0)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        yield be, f"http://127.0.0.1:{srv.server_address[1]}", root
    finally:
        srv.shutdown()
        srv.server_close()
        if be.training is not None:
            be.training.join(timeout=120)
