"""On-call end to end: `coldchain up`, a real Alertmanager routing with ops/alertmanager.yml
to a webhook of the test's own, and a real Prometheus scraping coldchain with the rules
of ops/prometheus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests._monitoring import (
    OPS,
    Webhook,
    alertmanager,
    ops_alertmanager_config,
    prometheus,
    query,
    webhook_receiver,
)
from tests._system import Tokens, free_port, running, wait_for
from tests.factories import disinfection, intake, nucleic_test, outbound, sale

pytestmark = pytest.mark.slow

CONSOLE = "https://trace.example.cn"


def _alerts(hook: Webhook, receiver: str, status: str | None = None) -> list[list[dict]]:
    """Per notification to ``receiver``, its alerts (with ``status`` if given)."""
    return [
        [a for a in n["alerts"] if status is None or a["status"] == status]
        for n in hook.snapshot()
        if n["receiver"] == receiver
    ]


def _notified(hook: Webhook, receiver: str, status: str, trace_code: str) -> list[dict]:
    return [
        alert
        for alerts in _alerts(hook, receiver, status)
        for alert in alerts
        if alert["labels"].get("trace_code") == trace_code
    ]


def _push(system: Any, token: str, events: list[dict[str, Any]]) -> None:
    response = system.client(token).post("/v1/events", json=events)
    assert response.status_code == 202, response.text


def missing_disinfection(code: str) -> list[dict[str, Any]]:
    """An imported batch tested negative and shipped, never disinfected (critical)."""
    return [
        intake(code, "PORT", 0),
        nucleic_test(code, "PORT", 10),
        outbound(code, "PORT", 30, to_site_id="CS-001", quantity_kg=1000),
    ]


def test_alerts_page_once_grouped_as_configured_and_resolve(tmp_path: Path) -> None:
    tokens = Tokens.write(tmp_path)
    with (
        webhook_receiver() as hook,
        alertmanager(tmp_path / "am", ops_alertmanager_config(hook.url)) as am_url,
        running(
            tmp_path / "data",
            tokens.file,
            {
                "COLDCHAIN_ALERTMANAGER_URL": am_url,
                "COLDCHAIN_PUBLIC_URL": CONSOLE,
                # Many re-posts while the test runs: none may page again.
                "COLDCHAIN_ALERTMANAGER_REPOST_SECONDS": "1",
            },
        ) as system,
        prometheus(
            tmp_path / "prom",
            [f"127.0.0.1:{system.port}"],
            rule_files=[OPS / "prometheus" / "rules" / "coldchain.yml"],
            alertmanager_url=am_url,
        ) as prom,
    ):
        # A critical alert, and two warnings at one site (domestic batches sold beyond
        # what came in: quantity_exceeded, no certificate rules for domestic goods).
        _push(system, tokens.port_site, missing_disinfection("OC-1"))
        _push(
            system,
            tokens.port_site,
            [
                intake("OW-1", "CS-001", 0, origin="domestic", quantity_kg=100),
                sale("OW-1", "CS-001", 60, quantity_kg=150),
                intake("OW-2", "CS-001", 0, origin="domestic", quantity_kg=100),
                sale("OW-2", "CS-001", 60, quantity_kg=150),
            ],
        )

        paged = wait_for(lambda: _notified(hook, "oncall", "firing", "OC-1"), timeout=30)
        assert len(paged) == 1
        alert = paged[0]
        assert alert["labels"] | {"alert_id": "-"} == {
            "alertname": "missing_disinfection",
            "type": "missing_disinfection",
            "severity": "critical",
            "trace_code": "OC-1",
            "site_id": "PORT",
            "alert_id": "-",
            "source": "coldchain",
        }
        assert alert["generatorURL"] == f"{CONSOLE}/ui?code=OC-1"
        assert alert["annotations"]["summary"].startswith("缺少消杀 / missing disinfection")

        # Warnings of one site come together, after the route's group_wait (30 s).
        warnings = wait_for(
            lambda: [a for a in _alerts(hook, "site-warnings", "firing") if a], timeout=60
        )
        assert len(warnings) == 1
        assert sorted(a["labels"]["trace_code"] for a in warnings[0]) == ["OW-1", "OW-2"]
        assert {a["labels"]["type"] for a in warnings[0]} == {"quantity_exceeded"}
        assert {a["labels"]["site_id"] for a in warnings[0]} == {"CS-001"}

        # Prometheus sees the same from coldchain's /metrics.
        firing = wait_for(
            lambda: query(
                prom, 'max by (site_id) (coldchain_alerts_firing{type="missing_disinfection"})'
            ),
            timeout=40,
        )
        assert firing[0]["metric"] == {"site_id": "PORT"} and firing[0]["value"][1] == "1"
        assert wait_for(lambda: query(prom, 'coldchain_alertmanager_posts_total{outcome="ok"} > 1'))

        # The repair: the disinfection was done before shipping, only recorded late.
        _push(system, tokens.port_site, [disinfection("OC-1", "PORT", 20)])
        resolved = wait_for(
            lambda: _notified(hook, "oncall", "resolved", "OC-1"), timeout=90, every=0.5
        )
        assert resolved[0]["labels"]["alert_id"] == alert["labels"]["alert_id"]
        assert resolved[0]["endsAt"] > alert["startsAt"]

        # Paged once for all the re-posts, and resolved once.
        assert len(_notified(hook, "oncall", "firing", "OC-1")) == 1
        assert len(_notified(hook, "oncall", "resolved", "OC-1")) == 1
        am_alerts = httpx.get(f"{am_url}/api/v2/alerts", params={"active": "true"}).json()
        assert not [a for a in am_alerts if a["labels"].get("trace_code") == "OC-1"]


def test_alerts_wait_for_alertmanager_and_are_not_lost(tmp_path: Path) -> None:
    """Alertmanager down when the alert is raised: coldchain retries until it is up."""
    tokens = Tokens.write(tmp_path)
    port = free_port()
    with (
        webhook_receiver() as hook,
        running(
            tmp_path / "data",
            tokens.file,
            {"COLDCHAIN_ALERTMANAGER_URL": f"http://127.0.0.1:{port}"},
        ) as system,
    ):
        _push(system, tokens.port_site, missing_disinfection("OD-1"))

        def undelivered() -> bool:
            metrics = httpx.get(f"{system.url}/metrics").text
            return "coldchain_alertmanager_undelivered 1.0" in metrics and (
                'coldchain_alertmanager_posts_total{outcome="error"} 0.0' not in metrics
            )

        wait_for(undelivered, timeout=30)
        with alertmanager(tmp_path / "am", ops_alertmanager_config(hook.url), port=port):
            paged = wait_for(lambda: _notified(hook, "oncall", "firing", "OD-1"), timeout=60)
        assert paged[0]["labels"]["type"] == "missing_disinfection"
        assert "coldchain_alertmanager_undelivered 0.0" in httpx.get(f"{system.url}/metrics").text
