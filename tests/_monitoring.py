"""Real Prometheus (the Debian binary) on loopback, for tests of ``ops/`` against the
running system; Alertmanager and the webhook receiver come from coldchain.alerting."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from coldchain.alerting import (
    OPS,
    Webhook,
    alertmanager,
    ops_alertmanager_config,
    webhook_receiver,
)
from coldchain.embedded import free_port
from coldchain.services import running_service

__all__ = [
    "OPS",
    "Webhook",
    "alertmanager",
    "ops_alertmanager_config",
    "prometheus",
    "query",
    "webhook_receiver",
]


@contextmanager
def prometheus(
    directory: Path,
    targets: list[str],
    *,
    rule_files: list[Path] | None = None,
    alertmanager_url: str | None = None,
    interval: str = "1s",
) -> Iterator[str]:
    """Prometheus scraping ``targets`` (``host:port`` serving /metrics) every ``interval``,
    evaluating ``rule_files`` at the same interval; yields its base URL."""
    directory.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [{"job_name": "coldchain", "static_configs": [{"targets": targets}]}],
    }
    if rule_files:
        config["rule_files"] = [str(p) for p in rule_files]
    if alertmanager_url:
        host = alertmanager_url.removeprefix("http://")
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [host]}]}]}
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [
        "prometheus",
        f"--config.file={path}",
        f"--storage.tsdb.path={directory / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with running_service(args, directory / "prometheus.log", f"{url}/-/ready"):
        yield url


def query(prometheus_url: str, expr: str) -> list[dict[str, Any]]:
    """An instant query's result vector; raises on a query error."""
    response = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": expr}, timeout=10)
    body = response.json()
    if body.get("status") != "success":
        raise AssertionError(f"{expr!r}: {body.get('error', body)}")
    result: list[dict[str, Any]] = body["data"]["result"]
    return result
