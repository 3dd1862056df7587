"""The whole topology through the real broker: `coldchain up` as a subprocess."""

from __future__ import annotations

import signal
from pathlib import Path

import orjson
import pytest

from tests._system import System, Tokens, running, wait_for
from tests.factories import disinfection
from tests.scenario import history

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Tokens:
    tokens = Tokens.write(tmp_path_factory.mktemp("tokens"))
    # The scripted history spans the port, two cold storages and a market.
    text = tokens.file.read_text().replace(
        '["PORT", "CS-001"]', '["PORT", "CS-001", "CS-002", "MKT-01"]'
    )
    tokens.file.write_text(text)
    return tokens


def firing(system: System, token: str, prefix: str) -> set[tuple[str, str]]:
    response = system.client(token).get("/v1/alerts", params={"status": "firing", "limit": 1000})
    assert response.status_code == 200, response.text
    return {
        (a["type"], a["trace_code"])
        for a in response.json()["alerts"]
        if a["trace_code"].startswith(prefix + "-")
    }


def settled(system: System, token: str, prefix: str, expected: set[tuple[str, str]]) -> None:
    wait_for(lambda: firing(system, token, prefix) == expected, timeout=60)


def test_one_of_each_fault_and_a_compliant_batch(tmp_path: Path, tokens: Tokens) -> None:
    from kafka import KafkaConsumer

    events, expected = history("E2E")
    with running(tmp_path / "data", tokens.file) as system:
        assert system.client(tokens.port_site).post("/v1/events", json=events).status_code == 202
        settled(system, tokens.regulator, "E2E", expected)
        compliant = system.batch(tokens.regulator, "E2E-OK", 8)
        assert compliant["alerts"] == []
        nodis = system.batch(tokens.regulator, "E2E-NODIS", 3)
        assert [a["type"] for a in nodis["alerts"]] == ["missing_disinfection"]

        # A disinfection from before the outbound arrives late: the alert resolves.
        late = disinfection("E2E-NODIS", "PORT", 25)
        assert system.client(tokens.port_site).post("/v1/events", json=late).status_code == 202
        settled(system, tokens.regulator, "E2E", expected - {("missing_disinfection", "E2E-NODIS")})
        resolved = system.client(tokens.regulator).get(
            "/v1/alerts", params={"trace_code": "E2E-NODIS", "status": "resolved"}
        )
        assert [a["type"] for a in resolved.json()["alerts"]] == ["missing_disinfection"]

        # Every change went to the alerts topic too, firing then resolved.
        bootstrap = (system.data_dir / "kafka-bootstrap").read_text().strip()
        consumer = KafkaConsumer(
            "coldchain.alerts",
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            consumer_timeout_ms=10_000,
        )
        seen = [
            (a["type"], a["trace_code"], a["status"])
            for message in consumer
            for a in orjson.loads(message.value)
        ]
        consumer.close()
        assert seen.count(("missing_disinfection", "E2E-NODIS", "firing")) == 1
        assert seen.count(("missing_disinfection", "E2E-NODIS", "resolved")) == 1
        assert {(kind, code) for kind, code, status in seen if status == "firing"} == expected


def test_filters_and_site_tokens_on_the_alert_list(tmp_path: Path, tokens: Tokens) -> None:
    events, expected = history("FLT")
    with running(tmp_path / "data", tokens.file) as system:
        system.client(tokens.port_site).post("/v1/events", json=events)
        settled(system, tokens.regulator, "FLT", expected)
        reader = system.client(tokens.regulator)
        only = reader.get("/v1/alerts", params={"type": "mixed_storage"}).json()["alerts"]
        assert {(a["trace_code"], a["site_id"], a["zone_id"]) for a in only} == {
            ("FLT-MIXED", "CS-001", "M1")
        }
        at_port = reader.get("/v1/alerts", params={"site_id": "PORT"}).json()["alerts"]
        assert {a["site_id"] for a in at_port} == {"PORT"}
        assert len(reader.get("/v1/alerts", params={"limit": 2}).json()["alerts"]) == 2
        assert (
            reader.get("/v1/alerts", params={"since": "2999-01-01T00:00:00Z"}).json()["alerts"]
            == []
        )
        assert reader.get("/v1/alerts", params={"status": "bogus"}).status_code == 422
        market = system.client(tokens.market).get("/v1/alerts").json()["alerts"]
        assert {a["site_id"] for a in market} == {"MKT-01"}
        assert (
            system.client(tokens.market).get("/v1/alerts", params={"site_id": "PORT"}).status_code
            == 403
        )
        times = [a["detected_at"] for a in reader.get("/v1/alerts").json()["alerts"]]
        assert times == sorted(times, reverse=True)


def test_a_worker_killed_mid_stream_ends_where_an_uninterrupted_run_does(
    tmp_path: Path, tokens: Tokens
) -> None:
    events, expected = history("KILL")
    data = tmp_path / "data"
    system = System(data, tokens.file)
    system.wait_healthy()
    client = system.client(tokens.port_site)
    for start in range(0, len(events) // 2, 3):
        assert client.post("/v1/events", json=events[start : start + 3]).status_code == 202
    system.stop(signal.SIGKILL)
    with running(data, tokens.file) as again:
        client = again.client(tokens.port_site)
        for start in range(len(events) // 2 - len(events) // 2 % 3, len(events), 3):
            assert client.post("/v1/events", json=events[start : start + 3]).status_code == 202
        settled(again, tokens.regulator, "KILL", expected)
        codes = sorted({e["trace_code"] for e in events})

        def stored() -> set[str]:
            reader = again.client(tokens.regulator)
            return {
                e["event_id"]
                for code in codes
                for e in reader.get(f"/v1/batches/{code}").json().get("events", [])
            }

        wait_for(lambda: stored() == {e["event_id"] for e in events})
