"""Alertmanager configuration (ops/alertmanager.yml).

Offline, with the Debian amtool: the config checks, and `amtool config routes test` sends
critical alerts to `oncall` and everything else to `site-warnings` (every Prometheus rule's
severity included). Static: grouping and timing as the on-call design says, plain webhooks
that report resolution. Live: real Alertmanager with the shipped config, alerts posted as the
app and Prometheus post them: each critical batch is paged on its own, a warning goes to the
site's channel, and the Prometheus backstop is inhibited while the app's own alert fires.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests._monitoring import Webhook, alertmanager, ops_alertmanager_config, webhook_receiver
from tests._system import wait_for

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "ops" / "alertmanager.yml"
RULES = REPO / "ops" / "prometheus" / "rules" / "coldchain.yml"

#: Labels of a compliance alert as the app posts it (connectors/alertmanager.py).
APP_ALERT = {
    "alertname": "missing_disinfection",
    "type": "missing_disinfection",
    "severity": "critical",
    "trace_code": "CN-2024-000123",
    "site_id": "CS-001",
    "alert_id": "a-000123",
    "source": "coldchain",
}


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("amtool") is None:
        pytest.fail("amtool is missing: `make test` installs it (prometheus-alertmanager)")
    return subprocess.run(
        ["amtool", *args], capture_output=True, text=True, timeout=60, check=False
    )


def route(labels: dict[str, str]) -> str:
    """The receiver(s) `amtool config routes test` picks for ``labels``."""
    result = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={CONFIG}",
        *(f"{k}={v}" for k, v in labels.items()),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().splitlines()[-1]


def load() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    return config


# --------------------------------------------------------------------------- amtool


def test_config_checks() -> None:
    result = amtool("check-config", str(CONFIG))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "SUCCESS" in output and "2 receivers" in output, output


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (APP_ALERT, "oncall"),
        (
            {
                **APP_ALERT,
                "alertname": "positive_nucleic_test",
                "type": "positive_nucleic_test",
                "zone_id": "COLD-1",
            },
            "oncall",
        ),
        (
            {
                **APP_ALERT,
                "alertname": "mixed_storage",
                "type": "mixed_storage",
                "severity": "warning",
                "zone_id": "COLD-2",
            },
            "site-warnings",
        ),
        (
            {"alertname": "ColdchainSiteSilent", "severity": "warning", "site_id": "X"},
            "site-warnings",
        ),
        ({"alertname": "ColdchainTargetDown", "severity": "critical", "job": "api"}, "oncall"),
        ({"alertname": "SomethingElse"}, "site-warnings"),
    ],
    ids=["app-critical", "app-critical-zone", "app-warning", "silent", "down", "no-severity"],
)
def test_routes(labels: dict[str, str], receiver: str) -> None:
    assert route(labels) == receiver


def test_every_prometheus_rule_routes_by_its_severity() -> None:
    rules = [
        rule
        for group in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]
    assert rules
    for rule in rules:
        labels = {"alertname": rule["alert"], "site_id": "CS-001", **rule["labels"]}
        expected = "oncall" if rule["labels"]["severity"] == "critical" else "site-warnings"
        assert route(labels) == expected, rule["alert"]


# --------------------------------------------------------------------------- static


def test_grouping_and_timing() -> None:
    config = load()
    assert config["global"]["resolve_timeout"] == "5m"
    top = config["route"]
    assert top["receiver"] == "site-warnings"
    assert top["group_by"] == ["site_id"]
    assert (top["group_wait"], top["group_interval"], top["repeat_interval"]) == (
        "30s",
        "5m",
        "4h",
    )
    (critical,) = top["routes"]
    assert critical["receiver"] == "oncall"
    assert critical["matchers"] == ['severity="critical"']
    assert not critical.get("continue"), "a page must not also go to the warnings channel"
    # Each critical batch (trace code) is a group, hence a notification, of its own.
    assert critical["group_by"] == ["alertname", "site_id", "trace_code"]
    assert critical["group_wait"] == "1s"
    assert critical["repeat_interval"] == "1h"


def test_receivers_are_webhooks_that_report_resolution() -> None:
    receivers = {r["name"]: r for r in load()["receivers"]}
    assert set(receivers) == {"oncall", "site-warnings"}
    for name, receiver in receivers.items():
        assert set(receiver) == {"name", "webhook_configs"}, name
        (hook,) = receiver["webhook_configs"]
        assert hook["url"].startswith("http://"), name
        assert hook["send_resolved"] is True, name
    # Placeholders the operator replaces: the file says so.
    assert "PLACEHOLDER" in CONFIG.read_text(encoding="utf-8")


def test_the_harness_points_every_receiver_at_the_test_webhook() -> None:
    config = ops_alertmanager_config("http://127.0.0.1:1/hook")
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            assert hook["url"] == f"http://127.0.0.1:1/hook?receiver={receiver['name']}"


# --------------------------------------------------------------------------- live


def firing(hook: Webhook) -> list[tuple[str, dict[str, str]]]:
    """(receiver, labels) of every firing alert in every notification, in order."""
    return [
        (body["receiver"], alert["labels"])
        for body in hook.snapshot()
        for alert in body["alerts"]
        if alert["status"] == "firing"
    ]


@pytest.mark.slow
def test_pages_per_batch_warnings_per_site_and_the_backstop_is_inhibited(
    tmp_path: Path,
) -> None:
    batch_2 = {**APP_ALERT, "trace_code": "CN-2024-000456", "alert_id": "a-000456"}
    warning = {
        **APP_ALERT,
        "alertname": "mixed_storage",
        "type": "mixed_storage",
        "severity": "warning",
        "trace_code": "CN-2024-000789",
        "alert_id": "a-000789",
        "zone_id": "COLD-2",
    }
    backstop = {
        "alertname": "ColdchainCriticalComplianceAlerts",
        "severity": "critical",
        "source": "prometheus",
        "site_id": "CS-001",
        "type": "missing_disinfection",
    }
    # No app alert of this site and type reached Alertmanager: the backstop must page.
    lone_backstop = {**backstop, "site_id": "MKT-01", "type": "positive_nucleic_test"}
    posted = [APP_ALERT, batch_2, warning, backstop, lone_backstop]

    with webhook_receiver() as hook:
        config = ops_alertmanager_config(hook.url)
        # The shipped 30 s wait that batches a site's warnings is checked statically above.
        config["route"]["group_wait"] = "1s"
        with alertmanager(tmp_path / "alertmanager", config) as url:
            response = httpx.post(
                f"{url}/api/v2/alerts",
                json=[{"labels": labels, "annotations": {"summary": "test"}} for labels in posted],
                timeout=10,
            )
            assert response.status_code == 200, response.text
            wait_for(lambda: len(hook.snapshot()) >= 4, timeout=15)
            time.sleep(2)  # anything else would have been sent by now (group_wait 1 s)
            alerts = httpx.get(f"{url}/api/v2/alerts", timeout=10).json()

    state = {
        (a["labels"]["alertname"], a["labels"]["site_id"], a["labels"].get("trace_code")): a[
            "status"
        ]
        for a in alerts
    }
    inhibited = state[("ColdchainCriticalComplianceAlerts", "CS-001", None)]
    assert inhibited["state"] == "suppressed" and inhibited["inhibitedBy"], inhibited
    assert state[("ColdchainCriticalComplianceAlerts", "MKT-01", None)]["state"] == "active"

    notifications = hook.snapshot()
    assert len(notifications) == 4, notifications
    # One notification per page: each batch, and the backstop that was not inhibited.
    pages = [body for body in notifications if body["receiver"] == "oncall"]
    assert sorted(
        (a["labels"]["alertname"], a["labels"].get("trace_code", ""))
        for b in pages
        for a in b["alerts"]
    ) == [
        ("ColdchainCriticalComplianceAlerts", ""),
        ("missing_disinfection", "CN-2024-000123"),
        ("missing_disinfection", "CN-2024-000456"),
    ]
    assert all(len(body["alerts"]) == 1 for body in pages), pages
    assert ("oncall", lone_backstop) in firing(hook)
    assert ("oncall", backstop) not in firing(hook)
    assert [labels for receiver, labels in firing(hook) if receiver == "site-warnings"] == [warning]
