"""``elnet serve``'s HTTP side: routes, JSON bodies and status codes.

Part of :mod:`sam2elnet.pipeline.serve`. :func:`make_server` puts a backend (anything with the
:class:`Backend` methods: :class:`sam2elnet.pipeline.serve.MLBackend`) behind a threading HTTP
server: ``GET /`` and ``GET /health``; ``POST /setup``, ``/predict``, ``/webhook`` and ``/train``
with a JSON object as body. Answers are JSON: ``200`` with the backend's answer; ``400`` for a
body that is not a JSON object or of the wrong shape
(:class:`~sam2elnet.pipeline.serve_protocol.BadRequest`), ``422`` for a request that cannot be
answered (:class:`~sam2elnet.pipeline.serve_protocol.Unprocessable`), ``404`` for another path,
``500`` with the exception's name and message for anything else (logged with its traceback);
each error body is ``{"error": sentence}``.
"""

from __future__ import annotations

import json
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import urlparse

from sam2elnet.errors import UserError
from sam2elnet.pipeline.serve_protocol import BadRequest, Unprocessable, object_of
from sam2elnet.utils.atomic import json_text

log = logging.getLogger(__name__)

__all__ = ["Backend", "make_server"]


class Backend(Protocol):
    """What the server asks of a backend: one method per endpoint, a JSON object in and out."""

    def health(self) -> dict[str, Any]: ...
    def setup(self, payload: dict[str, Any]) -> dict[str, Any]: ...
    def predict(self, payload: dict[str, Any]) -> dict[str, Any]: ...
    def webhook(self, payload: dict[str, Any]) -> dict[str, Any]: ...
    def train_legacy(self, payload: dict[str, Any]) -> dict[str, Any]: ...


def _handler(backend: Backend) -> type[BaseHTTPRequestHandler]:
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


def make_server(backend: Backend, host: str = "127.0.0.1", port: int = 9090) -> ThreadingHTTPServer:
    """An HTTP server for ``backend`` bound to ``host:port`` (port 0: any free port); call its
    ``serve_forever()`` to answer requests, each in its own thread.

    Raises:
        UserError: the address cannot be bound (port in use, no such interface), naming it.
    """
    try:
        return ThreadingHTTPServer((host, port), _handler(backend))
    except OSError as err:
        raise UserError(
            f"cannot listen on {host}:{port} ({err.strerror}); choose another --port"
        ) from None
