"""Prometheus configuration and alert rules (ops/prometheus).

Offline, with the Debian promtool: the production config and the rules check, and the rule
unit tests (ops/prometheus/tests/coldchain_test.yml) pass. Static: the rules follow the
conventions (severity, Chinese-first annotations, catalog metric names) and every rule has
unit-test cases where it fires and where it must not. Live: real Prometheus evaluating the
repository's rules over a static /metrics page sends ColdchainSiteSilent through real
Alertmanager, configured with ops/alertmanager.yml, to the `site-warnings` receiver.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from coldchain.alerting import QuietHandler, serving
from schemas.alerts import ALERT_TITLES, SEVERITY
from tests._monitoring import (
    Webhook,
    alertmanager,
    ops_alertmanager_config,
    prometheus,
    query,
    webhook_receiver,
)
from tests._system import wait_for

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "ops" / "prometheus"
CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULES_DIR = PROMETHEUS_DIR / "rules"
RULE_FILES = sorted(RULES_DIR.glob("*.yml"))
RULE_TESTS = PROMETHEUS_DIR / "tests" / "coldchain_test.yml"
CATALOG = REPO / "docs" / "monitoring.md"
#: Where docker-compose.yml mounts ops/prometheus/rules.
MOUNTED_RULES = "/etc/prometheus/rules"

_CJK = re.compile(r"[\u4e00-\u9fff]")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("promtool") is None:
        pytest.fail("promtool is missing: `make test` installs it (Debian package prometheus)")
    return subprocess.run(
        ["promtool", *args], capture_output=True, text=True, timeout=120, check=False
    )


def alert_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            rules += [r for r in group["rules"] if "alert" in r]
    return rules


def catalog_metrics() -> set[str]:
    """Metric names in the tables of docs/monitoring.md."""
    text = CATALOG.read_text(encoding="utf-8")
    return set(re.findall(r"^\| `(coldchain_\w+)` \|", text, flags=re.MULTILINE))


# --------------------------------------------------------------------------- promtool


def test_production_config_checks(tmp_path: Path) -> None:
    """promtool check config, on a copy whose rule_files point at the repository's rules
    (in production they are mounted at /etc/prometheus/rules)."""
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    assert config["rule_files"] == [f"{MOUNTED_RULES}/*.yml"]
    config["rule_files"] = [f"{RULES_DIR}/*.yml"]
    copy = tmp_path / "prometheus.yml"
    copy.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    result = promtool("check", "config", str(copy))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in output, output
    for path in RULE_FILES:
        assert str(path) in output, output


def test_rules_check() -> None:
    assert RULE_FILES == [RULES_DIR / "coldchain.yml"]
    result = promtool("check", "rules", *map(str, RULE_FILES))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"SUCCESS: {len(alert_rules())} rules found" in output, output


def test_rule_unit_tests_pass() -> None:
    result = promtool("test", "rules", str(RULE_TESTS))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "SUCCESS" in output and "FAILED" not in output, output


# --------------------------------------------------------------------------- static


def test_production_config() -> None:
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    assert config["global"]["scrape_interval"] == "15s"
    assert config["global"]["evaluation_interval"] == "15s"
    (manager,) = config["alerting"]["alertmanagers"]
    assert manager["static_configs"] == [{"targets": ["alertmanager:9093"]}]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"coldchain-api", "coldchain-worker"}
    assert jobs["coldchain-api"]["static_configs"] == [{"targets": ["api:8080"]}]
    # Workers are replicas without fixed names: every A record of the service name.
    (dns,) = jobs["coldchain-worker"]["dns_sd_configs"]
    assert dns["names"] == ["worker"] and dns["type"] == "A" and dns["port"] == 8081
    assert "static_configs" not in jobs["coldchain-worker"]


def test_rules_follow_the_conventions() -> None:
    rules = alert_rules()
    names = [r["alert"] for r in rules]
    assert len(set(names)) == len(names), names
    expected = {
        "ColdchainPipelineStalled": "critical",
        "ColdchainLagGrowing": "warning",
        "ColdchainTargetDown": "critical",
        "ColdchainWorkersMissing": "critical",
        "ColdchainIngestRejectionsHigh": "warning",
        "ColdchainIngestUnauthorized": "warning",
        "ColdchainSiteSilent": "warning",
        "ColdchainCriticalComplianceAlerts": "critical",
    }
    assert {r["alert"]: r["labels"]["severity"] for r in rules} == expected
    for rule in rules:
        name = rule["alert"]
        assert set(rule["annotations"]) == {"summary", "description"}, name
        for key, text in rule["annotations"].items():
            chinese, sep, english = text.partition(" / ")
            assert sep, f"{name} {key}: no ' / ' between Chinese and English: {text!r}"
            assert _CJK.search(chinese), f"{name} {key}: not Chinese first: {text!r}"
            assert re.search(r"[A-Za-z]{3}", english), f"{name} {key}: no English: {text!r}"
            assert not _CJK.search(english), f"{name} {key}: Chinese after the English: {text!r}"
    backstop = next(r for r in rules if r["alert"] == "ColdchainCriticalComplianceAlerts")
    assert backstop["labels"]["source"] == "prometheus"


def test_the_backstop_names_critical_types_as_the_console_does() -> None:
    backstop = next(r for r in alert_rules() if r["alert"] == "ColdchainCriticalComplianceAlerts")
    critical = [t for t, severity in SEVERITY.items() if severity == "critical"]
    assert critical
    for alert_type in critical:
        zh = ALERT_TITLES[alert_type][0]
        assert (
            f'eq $labels.type "{alert_type}" }}}}{zh}{{{{' in backstop["annotations"]["description"]
        )


def test_rules_use_catalog_metrics_only() -> None:
    known = catalog_metrics()
    assert "coldchain_consumer_lag" in known and "coldchain_alerts_firing" in known
    for rule in alert_rules():
        used = set(re.findall(r"\bcoldchain_\w+", rule["expr"]))
        assert used or re.match(r"(absent\()?up\{", rule["expr"]), rule["alert"]
        assert used <= known, f"{rule['alert']}: not in docs/monitoring.md: {used - known}"
    tests = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))
    for case in tests["tests"]:
        for series in case["input_series"]:
            name = series["series"].split("{")[0]
            assert name == "up" or name in known, f"{case['name']}: {name}"


def test_every_rule_has_a_firing_and_a_quiet_unit_test() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))
    assert tests["rule_files"] == ["../rules/coldchain.yml"]
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            if check.get("exp_alerts"):
                fires.add(check["alertname"])
                for alert in check["exp_alerts"]:
                    # Exact: every label and both annotations are spelled out.
                    assert "severity" in alert["exp_labels"], (case["name"], alert)
                    assert set(alert["exp_annotations"]) == {"summary", "description"}
            else:
                quiet.add(check["alertname"])
    names = {r["alert"] for r in alert_rules()}
    assert names - fires == set(), "rules never seen firing"
    assert names - quiet == set(), "rules never seen staying quiet"


# --------------------------------------------------------------------------- live


@contextmanager
def static_metrics(text: str) -> Iterator[str]:
    """A /metrics page of the test's own; yields ``host:port``."""
    body = text.encode()

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/metrics" else 404)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with serving(Handler) as port:
        yield f"127.0.0.1:{port}"


def rules_without_for(directory: Path) -> Path:
    """The repository's rules with every `for:` removed.

    The shipped `for:` durations (minutes) are there so that production does not page on
    one bad scrape; a live test cannot wait them out. They are tested with promtool's
    simulated time (ops/prometheus/tests); what this copy tests is the rest: that real
    Prometheus loads the expressions and what they fire reaches Alertmanager's routing.
    """
    directory.mkdir(parents=True, exist_ok=True)
    doc = yaml.safe_load((RULES_DIR / "coldchain.yml").read_text(encoding="utf-8"))
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule.pop("for", None)
    path = directory / "coldchain.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def notified(hook: Webhook, alertname: str) -> list[tuple[str, dict[str, Any]]]:
    """(receiver, alert) for each firing ``alertname`` alert the webhook received."""
    return [
        (body["receiver"], alert)
        for body in hook.snapshot()
        for alert in body["alerts"]
        if alert["labels"].get("alertname") == alertname and alert["status"] == "firing"
    ]


@pytest.mark.slow
def test_site_silent_reaches_the_site_warnings_receiver(tmp_path: Path) -> None:
    now = time.time()
    # As the API exports them from the lineage store: CS-001 last reported two hours ago and
    # is expected every 30 minutes; MKT-01 reported a minute ago and is expected every 15.
    page = (
        "# TYPE coldchain_site_last_event_timestamp_seconds gauge\n"
        f'coldchain_site_last_event_timestamp_seconds{{site_id="CS-001"}} {now - 7200:.3f}\n'
        f'coldchain_site_last_event_timestamp_seconds{{site_id="MKT-01"}} {now - 60:.3f}\n'
        "# TYPE coldchain_site_report_interval_seconds gauge\n"
        'coldchain_site_report_interval_seconds{site_id="CS-001"} 1800\n'
        'coldchain_site_report_interval_seconds{site_id="MKT-01"} 900\n'
    )
    with webhook_receiver() as hook:
        config = ops_alertmanager_config(hook.url)
        # The shipped top route waits 30 s to batch a site's warnings; that wait is checked
        # statically (tests/ops/test_alertmanager.py). Routing and grouping stay as shipped.
        config["route"]["group_wait"] = "1s"
        with (
            static_metrics(page) as target,
            alertmanager(tmp_path / "alertmanager", config) as am_url,
            prometheus(
                tmp_path / "prometheus",
                [target],
                rule_files=[rules_without_for(tmp_path / "rules")],
                alertmanager_url=am_url,
                interval="1s",
            ) as prom_url,
        ):
            wait_for(lambda: notified(hook, "ColdchainSiteSilent"), timeout=25)
            firing = query(prom_url, 'ALERTS{alertname="ColdchainSiteSilent",alertstate="firing"}')

    assert [a["metric"]["site_id"] for a in firing] == ["CS-001"]
    ((receiver, alert),) = notified(hook, "ColdchainSiteSilent")
    assert receiver == "site-warnings"
    assert alert["labels"]["site_id"] == "CS-001"
    assert alert["labels"]["severity"] == "warning"
    assert alert["annotations"]["summary"] == "站点 CS-001 未按时上报 / site silent"
    assert "超过其应上报间隔 30m 0s" in alert["annotations"]["description"]
