"""Alerts as Alertmanager's v2 API takes them, and the sink that posts them, against a
real HTTP server of the test's own on loopback that answers as each test scripts it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from prometheus_client import REGISTRY

from coldchain.alerting import QuietHandler, serving
from coldchain.embedded import free_port
from connectors.alertmanager import CHUNK, AlertmanagerSink, to_alertmanager
from schemas.alerts import Alert
from tests.factories import T0

CONSOLE = "https://trace.example.cn/"


def alert(alert_id: str = "a-1", **fields: Any) -> Alert:
    values: dict[str, Any] = {
        "alert_id": alert_id,
        "type": "missing_disinfection",
        "severity": "critical",
        "trace_code": "CN-2026-000123",
        "site_id": "PORT",
        "zone_id": None,
        "occurred_at": T0,
        "detected_at": T0 + timedelta(minutes=5),
        "status": "firing",
        "event_ids": ["ev-1", "ev-2"],
        "details": {},
        "rule_set": "contract-v1",
        **fields,
    }
    return Alert(**values)


# -- to_alertmanager -----------------------------------------------------------------------


def test_a_firing_alert_has_no_end_and_carries_the_routing_labels() -> None:
    body = to_alertmanager(alert(), CONSOLE)
    assert "endsAt" not in body
    assert body["startsAt"] == (T0 + timedelta(minutes=5)).isoformat()
    assert body["labels"] == {
        "alertname": "missing_disinfection",
        "type": "missing_disinfection",
        "severity": "critical",
        "trace_code": "CN-2026-000123",
        "site_id": "PORT",
        "alert_id": "a-1",
        "source": "coldchain",
    }
    annotations = body["annotations"]
    assert isinstance(annotations, dict)
    # Chinese first, English beside.
    assert annotations["summary"] == ("缺少消杀 / missing disinfection: CN-2026-000123 @ PORT")
    assert annotations["description"].startswith("追溯码 CN-2026-000123 在 PORT 缺少消杀")
    assert annotations["occurred_at"] == T0.isoformat()
    assert annotations["event_ids"] == "ev-1,ev-2"
    assert annotations["rule_set"] == "contract-v1"
    assert body["generatorURL"] == annotations["console"]
    assert body["generatorURL"] == "https://trace.example.cn/ui?code=CN-2026-000123"


def test_the_zone_is_a_label_only_when_the_alert_has_one() -> None:
    body = to_alertmanager(
        alert(type="mixed_storage", severity="warning", site_id="CS-001", zone_id="M1"), CONSOLE
    )
    labels = body["labels"]
    assert isinstance(labels, dict)
    assert labels["zone_id"] == "M1"
    assert labels["alertname"] == labels["type"] == "mixed_storage"
    assert labels["severity"] == "warning"
    annotations = body["annotations"]
    assert isinstance(annotations, dict)
    assert annotations["summary"] == "进口与国产混存 / mixed storage: CN-2026-000123 @ CS-001 / M1"


def test_the_console_link_quotes_the_trace_code() -> None:
    body = to_alertmanager(alert(trace_code="CN 2026/#1&x=?"), "http://console:8080")
    assert body["generatorURL"] == "http://console:8080/ui?code=CN%202026%2F%231%26x%3D%3F"
    labels = body["labels"]
    assert isinstance(labels, dict)
    assert labels["trace_code"] == "CN 2026/#1&x=?"


def test_a_resolved_alert_ends_when_the_rules_resolved_it() -> None:
    resolved_at = T0 + timedelta(hours=2)
    body = to_alertmanager(alert(status="resolved", resolved_at=resolved_at), CONSOLE)
    assert body["endsAt"] == resolved_at.isoformat()
    assert body["startsAt"] == (T0 + timedelta(minutes=5)).isoformat()


# -- AlertmanagerSink against a real server -------------------------------------------------


@dataclass
class Request:
    path: str
    content_type: str
    alerts: list[dict[str, Any]]

    @property
    def ids(self) -> list[str]:
        return [a["labels"]["alert_id"] for a in self.alerts]


@dataclass
class FakeAlertmanager:
    """Answers each POST with ``answer(alerts)``, recording every request."""

    url: str
    answer: Callable[[list[dict[str, Any]]], int]
    requests: list[Request] = field(default_factory=list)


@contextmanager
def fake_alertmanager(
    answer: Callable[[list[dict[str, Any]]], int], port: int | None = None
) -> Iterator[FakeAlertmanager]:
    port = port or free_port()
    fake = FakeAlertmanager(f"http://127.0.0.1:{port}", answer)
    lock = threading.Lock()

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            with lock:
                fake.requests.append(Request(self.path, self.headers.get("Content-Type", ""), body))
                status = fake.answer(body)
            text = b"ok" if status < 300 else f"scripted {status}".encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

    with serving(Handler, port):
        yield fake


def posts(outcome: str) -> float:
    value = REGISTRY.get_sample_value("coldchain_alertmanager_posts_total", {"outcome": outcome})
    return value or 0.0


def undelivered() -> float:
    return REGISTRY.get_sample_value("coldchain_alertmanager_undelivered") or 0.0


class Sleeps:
    """A recording ``sleep``; notes how many alerts were undelivered meanwhile."""

    def __init__(self, then: Callable[[], None] | None = None) -> None:
        self.delays: list[float] = []
        self.undelivered: list[float] = []
        self._then = then

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self.undelivered.append(undelivered())
        if self._then is not None:
            self._then()


def scripted(*statuses: int) -> Callable[[list[dict[str, Any]]], int]:
    answers = iter(statuses)
    return lambda _: next(answers)


async def test_a_failing_alertmanager_is_retried_with_backoff_until_it_takes_them() -> None:
    before = {outcome: posts(outcome) for outcome in ("ok", "error", "refused")}
    waiting = undelivered()
    sleeps = Sleeps()
    with fake_alertmanager(scripted(503, 503, 200)) as am:
        sink = AlertmanagerSink(am.url + "/", CONSOLE, sleep=sleeps)
        try:
            await sink.post([alert("a-1"), alert("a-2", status="resolved", resolved_at=T0)])
        finally:
            await sink.close()
    assert sleeps.delays == [0.5, 1.0]
    # Both alerts were waiting while Alertmanager failed; none is once it took them.
    assert sleeps.undelivered == [waiting + 2, waiting + 2]
    assert undelivered() == waiting
    assert [r.ids for r in am.requests] == [["a-1", "a-2"]] * 3
    assert {r.path for r in am.requests} == {"/api/v2/alerts"}
    assert {r.content_type for r in am.requests} == {"application/json"}
    assert am.requests[-1].alerts[1]["endsAt"] == T0.isoformat()
    assert posts("error") - before["error"] == 2
    assert posts("ok") - before["ok"] == 1
    assert posts("refused") == before["refused"]


async def test_the_backoff_doubles_up_to_thirty_seconds() -> None:
    sleeps = Sleeps()
    with fake_alertmanager(scripted(*[500] * 9, 200)) as am:
        sink = AlertmanagerSink(am.url, CONSOLE, sleep=sleeps)
        try:
            await sink.post([alert()])
        finally:
            await sink.close()
    assert sleeps.delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert len(am.requests) == 10


async def test_an_unreachable_alertmanager_is_retried_until_it_comes_up() -> None:
    port = free_port()  # nothing listens there yet
    up: list[FakeAlertmanager] = []
    before_errors = posts("error")
    with ExitStack() as stack:

        def come_up() -> None:
            if not up:
                up.append(stack.enter_context(fake_alertmanager(lambda _: 200, port)))

        sleeps = Sleeps(then=come_up)
        sink = AlertmanagerSink(f"http://127.0.0.1:{port}", CONSOLE, sleep=sleeps)
        try:
            await sink.post([alert("a-1")])
        finally:
            await sink.close()
    assert sleeps.delays == [0.5]
    assert posts("error") - before_errors == 1
    assert [r.ids for r in up[0].requests] == [["a-1"]]


async def test_an_alert_alertmanager_refuses_does_not_hold_back_the_others() -> None:
    before = {outcome: posts(outcome) for outcome in ("ok", "error", "refused")}
    waiting = undelivered()

    def answer(alerts: list[dict[str, Any]]) -> int:
        return 400 if any(a["labels"]["alert_id"] == "bad" for a in alerts) else 200

    sleeps = Sleeps()
    with fake_alertmanager(answer) as am:
        sink = AlertmanagerSink(am.url, CONSOLE, sleep=sleeps)
        try:
            await sink.post([alert("a-1"), alert("bad"), alert("a-3")])
        finally:
            await sink.close()
    # The whole body, then one by one: the good ones are taken, the bad one is not retried.
    assert [r.ids for r in am.requests] == [["a-1", "bad", "a-3"], ["a-1"], ["bad"], ["a-3"]]
    assert sleeps.delays == []
    assert posts("refused") - before["refused"] == 1
    assert posts("ok") - before["ok"] == 2
    assert posts("error") == before["error"]
    assert undelivered() == waiting


async def test_many_alerts_are_posted_in_chunks() -> None:
    many = [alert(f"a-{i}") for i in range(2 * CHUNK + 1)]
    with fake_alertmanager(lambda _: 200) as am:
        sink = AlertmanagerSink(am.url, CONSOLE, sleep=Sleeps())
        try:
            await sink.post(many)
        finally:
            await sink.close()
    assert [len(r.alerts) for r in am.requests] == [CHUNK, CHUNK, 1]
    assert [i for r in am.requests for i in r.ids] == [a.alert_id for a in many]
