"""Grafana dashboards and provisioning (ops/grafana).

Static: each dashboard loads with grafana-foundation-sdk and every panel is complete (type,
title, datasource, queries). Live: every panel's PromQL, template variables substituted as
Grafana would with the default ("All") values, runs against a real Prometheus scraping
`coldchain up` over the demo data (and a little traffic of the test's own) and returns data.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from grafana_foundation_sdk.cog import plugins
from grafana_foundation_sdk.models import dashboard as sdk
from grafana_foundation_sdk.models import prometheus as sdk_prometheus
from prometheus_client.parser import text_string_to_metric_families

from tests._monitoring import prometheus, query
from tests._system import System, Tokens, wait_for
from tests.factories import disinfection, intake

GRAFANA = Path(__file__).resolve().parents[2] / "ops" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
#: Panel types that carry no query.
NO_QUERY = {"row", "text", "news", "dashlist", "annolist"}
#: Grafana's own variables, with what they would be in a short time range.
BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "5m"}


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those nested in (collapsed) rows included."""
    found: list[dict[str, Any]] = []
    for panel in dashboard.get("panels", []):
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}


def default_value(variable: dict[str, Any]) -> str:
    """What a variable stands for in a query with its default value (All, if it has one)."""
    if variable["type"] == "datasource":
        return "prometheus"
    if variable.get("includeAll"):
        return str(variable["allValue"])
    current = variable.get("current", {}).get("value")
    return str(current[0] if isinstance(current, list) else current)


_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)(?::\w+)?\]\]")


def substitute(expr: str, dashboard: dict[str, Any], panel: dict[str, Any] | None = None) -> str:
    values = {name: default_value(v) for name, v in variables(dashboard).items()}
    values.update(BUILTINS)
    if panel and panel.get("interval"):  # the panel's minimum interval
        values["__interval"] = panel["interval"]

    def replace(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        if name not in values:
            raise AssertionError(f"{expr!r} uses ${name}, which is not defined")
        return values[name]

    return _VARIABLE.sub(replace, expr)


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title and refId, PromQL with the variables substituted) for every target."""
    return [
        (f"{panel['title']} [{target['refId']}]", substitute(target["expr"], dashboard, panel))
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
        if not target.get("hide")
    ]


# --------------------------------------------------------------------------- static


def test_there_are_the_two_dashboards() -> None:
    assert {p.name for p in DASHBOARDS} == {"pipeline-health.json", "compliance.json"}
    titles = {load(p)["title"] for p in DASHBOARDS}
    assert titles == {"管道健康 / Pipeline health", "合规 / Compliance"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_the_sdk_loads_the_dashboard_with_prometheus_queries(path: Path) -> None:
    plugins.register_default_plugins()
    data = load(path)
    model = sdk.Dashboard.from_json(data)
    assert model.uid == data["uid"] and model.title == data["title"]
    assert model.panels
    loaded: list[sdk.Panel] = []
    for panel in model.panels:
        if isinstance(panel, sdk.RowPanel):
            loaded.extend(p for p in panel.panels or [] if isinstance(p, sdk.Panel))
        else:
            loaded.append(panel)
    assert len(loaded) == len([p for p in panels(data) if p["type"] != "row"])
    for panel in loaded:
        assert panel.datasource is not None and panel.datasource.uid == "${datasource}"
        for target in panel.targets or []:
            assert isinstance(target, sdk_prometheus.Dataquery), (panel.title, target)
            assert target.expr.strip(), panel.title


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_panel_is_complete(path: Path) -> None:
    data = load(path)
    problems: list[str] = []
    ids = [p.get("id") for p in panels(data)]
    if None in ids or len(set(ids)) != len(ids):
        problems.append(f"panel ids missing or repeated: {ids}")
    for panel in panels(data):
        name = f"panel {panel.get('id')} {panel.get('title')!r}"
        if not panel.get("type") or not panel.get("title"):
            problems.append(f"{name}: no type or no title")
        if "gridPos" not in panel:
            problems.append(f"{name}: no gridPos")
        if panel.get("type") in NO_QUERY:
            continue
        if panel.get("datasource") != DATASOURCE:
            problems.append(f"{name}: datasource {panel.get('datasource')}")
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{name}: no targets")
        ref_ids = [t.get("refId") for t in targets]
        if None in ref_ids or len(set(ref_ids)) != len(ref_ids):
            problems.append(f"{name}: refIds missing or repeated: {ref_ids}")
        for target in targets:
            if not str(target.get("expr", "")).strip():
                problems.append(f"{name} [{target.get('refId')}]: empty expr")
            if target.get("datasource") != DATASOURCE:
                problems.append(f"{name} [{target.get('refId')}]: datasource {target}")
    assert not problems, "\n".join(problems)


def test_uids_are_set_and_distinct() -> None:
    uids = [str(load(p).get("uid") or "") for p in DASHBOARDS]
    assert len(set(uids)) == len(uids), uids
    assert all(re.fullmatch(r"[a-z0-9-]{1,40}", u) for u in uids), uids


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_template_variables_are_defined_and_have_an_all_value(path: Path) -> None:
    data = load(path)
    defined = variables(data)
    assert defined["datasource"]["type"] == "datasource"
    assert defined["datasource"]["query"] == "prometheus"
    for variable in defined.values():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE
            assert variable.get("includeAll") and variable.get("allValue") == ".*"
            assert variable["current"]["value"] in ("$__all", ["$__all"])
    for _, expr in queries(data):  # substitute() fails on an undefined variable
        assert "$" not in expr, expr


def test_compliance_queries_follow_the_site_variable() -> None:
    data = load(GRAFANA / "dashboards" / "compliance.json")
    assert "label_values(" in variables(data)["site_id"]["definition"]
    for panel in panels(data):
        for target in panel.get("targets", []):
            if "site_id" in target["expr"] and "coldchain_alerts_total" not in target["expr"]:
                assert '"$site_id"' in target["expr"], (panel["title"], target["expr"])


def test_the_datasource_is_provisioned_with_the_uid_the_dashboards_default_to() -> None:
    config = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    assert config["apiVersion"] == 1
    (source,) = config["datasources"]
    assert source["type"] == "prometheus"
    assert source["uid"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert source["isDefault"] is True
    for path in DASHBOARDS:
        assert variables(load(path))["datasource"]["current"]["value"] == source["uid"]


def test_the_dashboards_are_provisioned_from_the_mounted_folder() -> None:
    config = yaml.safe_load((GRAFANA / "provisioning/dashboards/coldchain.yml").read_text())
    assert config["apiVersion"] == 1
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


# --------------------------------------------------------------------------- live


def _now_minus(minutes: float) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat()


def _traffic(system: System, tokens: Tokens, round_: int) -> None:
    """Good events, and one of each kind of refusal the API counts."""
    site = system.client(tokens.port_site)  # holds CS-001, a demo site
    code = f"GRAFANA-{round_}-{uuid.uuid4().hex[:8]}"
    first = intake(code, "CS-001", occurred_at=_now_minus(5), event_id=f"{code}-1")
    good = [first, disinfection(code, "CS-001", occurred_at=_now_minus(4), event_id=f"{code}-2")]
    assert site.post("/v1/events", json=good).status_code == 202
    system.batch(tokens.regulator, code, 2)
    assert site.post("/v1/events", json=first).json()["duplicates"] == 1
    conflict = site.post("/v1/events", json={**first, "quantity_kg": 1})
    assert conflict.status_code == 409
    invalid = site.post("/v1/events", json=[{**first, "event_id": f"{code}-x", "zone_id": 7}])
    assert invalid.status_code == 422
    assert system.client(None).post("/v1/events", json=first).status_code == 401
    assert system.client(tokens.market).post("/v1/events", json=first).status_code == 403


def _stored(system: System) -> float:
    text = httpx.get(f"{system.url}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "coldchain_events_stored"
        for sample in family.samples
        if sample.name == "coldchain_events_stored_total"
    )


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Prometheus (1 s scrapes) on `coldchain up --demo` once the demo is stored, after two
    rounds of traffic."""
    root = tmp_path_factory.mktemp("grafana")
    tokens = Tokens.write(root)
    system = System(root / "data", tokens.file, extra_args=["--demo"])
    try:
        system.wait_healthy()
        found = wait_for(lambda: re.search(r"demo: (\d+) new events", system.output()))
        new = int(found.group(1))
        wait_for(lambda: _stored(system) >= new, timeout=60)
        with prometheus(root / "prometheus", [f"127.0.0.1:{system.port}"]) as url:
            wait_for(lambda: [s for s in query(url, "up") if s["value"][1] == "1"], timeout=15)
            # Two rounds a few scrapes apart, so that label sets first seen in the first
            # round have increased by the second (rate() ignores a series' first value).
            for round_ in (1, 2):
                _traffic(system, tokens, round_)
                time.sleep(3)
            yield url
    finally:
        system.stop()


def _all_queries() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for path in DASHBOARDS:
        found += [(f"{path.stem}: {title}", expr) for title, expr in queries(load(path))]
    return found


@pytest.mark.slow
def test_every_panel_query_returns_data(live: str) -> None:
    pending = dict(_all_queries())
    assert pending
    results: dict[str, list[dict[str, Any]]] = {}
    deadline = time.monotonic() + 30
    while True:
        for name, expr in list(pending.items()):
            results[name] = query(live, expr)  # raises on a query error
            if results[name]:
                del pending[name]
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(1)
    empty = "\n".join(f"{name}: {expr}" for name, expr in pending.items())
    assert not pending, f"panels with no data:\n{empty}"


@pytest.mark.slow
def test_the_site_variable_lists_the_demo_sites(live: str) -> None:
    response = httpx.get(
        f"{live}/api/v1/label/site_id/values",
        params={"match[]": "coldchain_site_last_event_timestamp_seconds"},
        timeout=10,
    )
    sites = set(response.json()["data"])
    assert {"PORT-01", "CS-001", "MKT-01"} <= sites, sites


def _panel_query(stem: str, title: str, ref_id: str = "A") -> str:
    """The PromQL (variables substituted) of the panel whose title starts with ``title``."""
    data = load(GRAFANA / "dashboards" / f"{stem}.json")
    for panel in panels(data):
        if panel["title"].startswith(title):
            for target in panel.get("targets", []):
                if target["refId"] == ref_id:
                    return substitute(target["expr"], data, panel)
    raise AssertionError(f"{stem}: no panel {title!r} with a target {ref_id}")


@pytest.mark.slow
def test_the_panels_show_the_traffic(live: str) -> None:
    """Not just series at zero: what the test pushed shows on the panels meant for it."""

    def positive(stem: str, title: str, ref_id: str = "A") -> dict[str, float]:
        found = {}
        for series in query(live, _panel_query(stem, title, ref_id)):
            value = float(series["value"][1])
            if value > 0 and not math.isnan(value):
                found[",".join(f"{k}={v}" for k, v in sorted(series["metric"].items()))] = value
        return found

    reasons = set(positive("pipeline-health", "拒收原因"))
    expected = {"reason=invalid", "reason=unauthorized", "reason=forbidden", "reason=conflict"}
    assert expected <= reasons, reasons
    for title, ref_id in [("吞吐量", "A"), ("吞吐量", "B"), ("吞吐量", "C"), ("管道延迟", "B")]:
        assert positive("pipeline-health", title, ref_id), (title, ref_id)
    assert "where=api" in positive("pipeline-health", "冲突与重复", "A")
    assert "where=api" in positive("pipeline-health", "冲突与重复", "B")
    assert "site_id=CS-001" in positive("compliance", "按场所接收")
    by_site = set(positive("compliance", "按场所拒收"))
    assert {"reason=invalid,site_id=CS-001", "reason=conflict,site_id=CS-001"} <= by_site, by_site
    assert "reason=unauthorized,site_id=unknown" in by_site, by_site
