"""Alertmanager (the Debian binary) on loopback and a webhook receiver, for measuring
what reaches the people on call (`coldchain bench --oncall`) and for the tests.

The routing is ops/alertmanager.yml's, with every receiver's webhook pointed at the
receiver here, so that what is measured is what production pages.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from coldchain.embedded import free_port
from coldchain.services import ServiceError, running_service

#: The repository's ops/ folder (the files operators deploy).
OPS = Path(__file__).resolve().parent.parent / "ops"
ALERTMANAGER = "prometheus-alertmanager"


class AlertingError(ServiceError):
    """Alertmanager is not installed, or its configuration is missing."""


@dataclass
class Webhook:
    """Collects what Alertmanager posts: one entry per notification (a group)."""

    url: str
    notifications: list[dict[str, Any]] = field(default_factory=list)
    received_at: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, body: dict[str, Any]) -> None:
        with self._lock:
            self.notifications.append(body)
            self.received_at.append(time.time())

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.notifications)

    def timed(self) -> list[tuple[float, dict[str, Any]]]:
        """(when received, epoch seconds; notification) pairs."""
        with self._lock:
            return list(zip(self.received_at, self.notifications, strict=True))


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that does not log every request to stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler], port: int | None = None) -> Iterator[int]:
    """``handler`` answering on 127.0.0.1 (a free port unless given) in a thread; yields
    the port."""
    server = ThreadingHTTPServer(("127.0.0.1", port or free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def webhook_receiver() -> Iterator[Webhook]:
    hook = Webhook(url="")

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            hook.record(json.loads(body))
            self.send_response(200)
            self.end_headers()

    with serving(Handler) as port:
        hook.url = f"http://127.0.0.1:{port}/hook"
        yield hook


@contextmanager
def alertmanager(directory: Path, config: dict[str, Any], port: int | None = None) -> Iterator[str]:
    """Alertmanager alone (no cluster) with ``config``; yields its base URL."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    if shutil.which(ALERTMANAGER) is None:
        raise AlertingError(
            f"{ALERTMANAGER} not found: `apt-get install prometheus-alertmanager` (Debian)"
        )
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    args = [
        ALERTMANAGER,
        f"--config.file={path}",
        f"--storage.path={directory / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    with running_service(args, directory / "alertmanager.log", f"{url}/-/ready"):
        yield url


def ops_alertmanager_config(
    webhook_url: str, path: Path = OPS / "alertmanager.yml"
) -> dict[str, Any]:
    """``ops/alertmanager.yml`` with every receiver's webhooks pointed at ``webhook_url``
    (the routing, grouping and timing stay as shipped)."""
    if not path.is_file():
        raise AlertingError(f"{path} not found: run from a checkout of the repository")
    config: dict[str, Any] = yaml.safe_load(path.read_text())
    for receiver in config.get("receivers", []):
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = f"{webhook_url}?receiver={receiver['name']}"
    return config
