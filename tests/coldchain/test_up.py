"""`coldchain up` end to end: real broker (tansu), real store, real HTTP over a socket."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from coldchain.config import DEFAULT_PARTITIONS
from tests._clickhouse import create_database
from tests._system import System, Tokens, running, wait_for
from tests.factories import disinfection, intake, nucleic_test, outbound

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Tokens:
    return Tokens.write(tmp_path_factory.mktemp("tokens"))


@pytest.fixture(scope="module", params=["chdb", "clickhouse-server"])
def system(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tokens: Tokens
) -> Iterator[System]:
    """The same flow on the embedded store and, through the driver, on a real server."""
    env = {}
    if request.param == "clickhouse-server":
        env["COLDCHAIN_CLICKHOUSE_URL"] = create_database(
            request.getfixturevalue("clickhouse_server")
        )
    with running(tmp_path_factory.mktemp("up") / "data", tokens.file, env) as system:
        yield system


def history(code: str) -> list[dict]:
    return [
        intake(code, "PORT", 0, quantity_kg=1200.5, zone_id="A1"),
        disinfection(code, "PORT", 10),
        nucleic_test(code, "PORT", 20),
        outbound(code, "PORT", 30, quantity_kg=1000, to_site_id="CS-001"),
        intake(code, "CS-001", 90, quantity_kg=1000, zone_id="B2", from_site_id="PORT"),
    ]


def test_pushed_events_come_back_as_the_batch_lineage(system: System, tokens: Tokens) -> None:
    events = history("E2E-1")
    response = system.client(tokens.port_site).post("/v1/events", json=events)
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 5, "duplicates": 0}
    body = system.batch(tokens.regulator, "E2E-1", 5)
    assert [e["event_id"] for e in body["events"]] == [e["event_id"] for e in events]
    assert body["declared"]["quantity_kg"] == 1200.5
    assert body["declared"]["site_id"] == "PORT"
    sites = {(s["site_id"], s["zone_id"]): s for s in body["sites"]}
    assert sites[("PORT", "A1")]["on_hand_kg"] == 200.5
    assert sites[("CS-001", "B2")]["received_kg"] == 1000
    assert body["certificates"]["disinfection"]["status"] == "disinfected"
    assert body["certificates"]["nucleic_test"]["status"] == "negative"
    assert body["alerts"] == [] and body["parents"] == [] and body["children"] == []


def test_one_event_and_ndjson_are_accepted_too(system: System, tokens: Tokens) -> None:
    client = system.client(tokens.port_site)
    assert client.post("/v1/events", json=intake("E2E-2")).status_code == 202
    ndjson = b"\n".join(orjson.dumps(e) for e in history("E2E-3")) + b"\n"
    response = client.post(
        "/v1/events", content=ndjson, headers={"Content-Type": "application/x-ndjson"}
    )
    assert response.status_code == 202, response.text
    system.batch(tokens.regulator, "E2E-2", 1)
    system.batch(tokens.regulator, "E2E-3", 5)


def test_a_duplicate_event_id_is_counted_once(system: System, tokens: Tokens) -> None:
    client = system.client(tokens.port_site)
    event = intake("E2E-DUP")
    assert client.post("/v1/events", json=[event, event]).json() == {"accepted": 2, "duplicates": 1}
    system.batch(tokens.regulator, "E2E-DUP", 1)
    assert client.post("/v1/events", json=event).json() == {"accepted": 1, "duplicates": 1}
    second = disinfection("E2E-DUP", minutes=5)
    assert client.post("/v1/events", json=[second, event]).status_code == 202
    body = system.batch(tokens.regulator, "E2E-DUP", 2)
    assert sorted(e["event_id"] for e in body["events"]) == sorted(
        [event["event_id"], second["event_id"]]
    )


def test_a_conflicting_event_id_is_refused_and_the_first_stands(
    system: System, tokens: Tokens
) -> None:
    client = system.client(tokens.port_site)
    event = intake("E2E-CONFLICT", quantity_kg=10)
    assert client.post("/v1/events", json=event).status_code == 202
    changed = {**event, "quantity_kg": 11}
    response = client.post("/v1/events", json=[disinfection("E2E-CONFLICT"), changed])
    assert response.status_code == 409
    assert response.json()["conflicts"] == [{"index": 1, "event_id": event["event_id"]}]
    body = system.batch(tokens.regulator, "E2E-CONFLICT", 1)
    assert [e["quantity_kg"] for e in body["events"]] == [10]


def test_an_invalid_batch_is_refused_whole_with_every_problem(
    system: System, tokens: Tokens
) -> None:
    good = intake("E2E-INVALID")
    bad_quantity = outbound("E2E-INVALID", quantity_kg=-3)
    no_zone = {k: v for k, v in intake("E2E-INVALID").items() if k != "zone_id"}
    response = system.client(tokens.port_site).post(
        "/v1/events", json=[good, bad_quantity, no_zone, {**good, "event_id": "x", "extra": 1}]
    )
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert {(e["index"], e["field"]) for e in errors} == {
        (1, "quantity_kg"),
        (2, "zone_id"),
        (3, "extra"),
    }
    assert all(e["message"] for e in errors) and errors[0]["event_id"] == bad_quantity["event_id"]
    response = system.client(tokens.regulator).get("/v1/batches/E2E-INVALID")
    assert response.status_code == 404


def test_bad_json_is_422_naming_the_line(system: System, tokens: Tokens) -> None:
    client = system.client(tokens.port_site)
    response = client.post(
        "/v1/events",
        content=orjson.dumps(intake("E2E-ND")) + b"\n{oops\n",
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["index"] == 1
    assert client.post("/v1/events", content=b"[1,").status_code == 422


def test_tokens_decide_who_may_push(system: System, tokens: Tokens) -> None:
    event = intake("E2E-AUTH")
    assert system.client(None).post("/v1/events", json=event).status_code == 401
    assert system.client("cc_unknown").post("/v1/events", json=event).status_code == 401
    forbidden = system.client(tokens.market).post("/v1/events", json=[event])
    assert forbidden.status_code == 403
    assert forbidden.json()["events"] == [
        {"index": 0, "event_id": event["event_id"], "site_id": "PORT"}
    ]
    assert system.client(tokens.regulator).post("/v1/events", json=event).status_code == 403
    assert system.client(None).get("/v1/batches/E2E-1").status_code == 401


def test_checks_come_in_the_contract_order(system: System, tokens: Tokens) -> None:
    invalid_and_foreign = [intake("E2E-ORDER", site="ELSEWHERE", quantity_kg=0)]
    assert system.client(None).post("/v1/events", json=invalid_and_foreign).status_code == 401
    assert (
        system.client(tokens.market).post("/v1/events", json=invalid_and_foreign).status_code == 422
    )
    too_many = [intake(f"E2E-BIG-{i}", site="ELSEWHERE") for i in range(10_001)]
    assert system.client(tokens.market).post("/v1/events", json=too_many).status_code == 413
    big = b'{"pad": "' + b"x" * (16 * 1024 * 1024) + b'"}'
    assert system.client(tokens.market).post("/v1/events", content=big).status_code == 413
    assert system.client(None).post("/v1/events", content=big).status_code == 401


def test_site_tokens_read_only_batches_that_passed_their_sites(
    system: System, tokens: Tokens
) -> None:
    assert (
        system.client(tokens.port_site).post("/v1/events", json=history("E2E-READ")).status_code
        == 202
    )
    system.batch(tokens.regulator, "E2E-READ", 5)
    assert system.client(tokens.port_site).get("/v1/batches/E2E-READ").status_code == 200
    hidden = system.client(tokens.market).get("/v1/batches/E2E-READ")
    unknown = system.client(tokens.market).get("/v1/batches/NEVER-SEEN")
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json()["error"].replace("E2E-READ", "X") == unknown.json()["error"].replace(
        "NEVER-SEEN", "X"
    )
    assert system.client(tokens.regulator).get("/v1/batches/NEVER-SEEN").status_code == 404
    assert system.client(tokens.regulator).get("/v1/batches/bad%20code").status_code == 404


def test_health_metrics_and_docs_need_no_token(system: System) -> None:
    health = httpx.get(system.url + "/healthz")
    assert health.status_code == 200
    assert health.json()["checks"] == {"broker": True, "store": True, "worker": True}
    metrics = httpx.get(system.url + "/metrics").text
    assert "coldchain_events_accepted_total" in metrics
    assert httpx.get(system.url + "/openapi.json").status_code == 200
    assert httpx.get(system.url + "/docs").status_code == 200


Sample = tuple[str, frozenset[tuple[str, str]]]


def scrape(system: System) -> dict[Sample, float]:
    """Every sample of the system's /metrics, read over HTTP."""
    text = httpx.get(system.url + "/metrics", timeout=30).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def rejected(samples: dict[Sample, float], site: str, event_type: str, reason: str) -> float:
    labels = {"site_id": site, "event_type": event_type, "reason": reason}
    return samples.get(("coldchain_events_rejected_total", frozenset(labels.items())), 0.0)


def test_refused_events_are_counted_by_site_and_type_only_where_trusted(
    system: System, tokens: Tokens
) -> None:
    """The labels of coldchain_events_rejected_total: the site only when the token may push
    it, every item of a refused request once, lines that did not parse as unknown."""
    before = scrape(system)
    ndjson = b"\n".join(
        [
            orjson.dumps(intake("E2E-REJ", "PORT")),
            orjson.dumps(outbound("E2E-REJ", "PORT", quantity_kg=-3)),
            orjson.dumps(intake("E2E-REJ", "ELSEWHERE")),  # not the token's: no site label
            b"{oops",
        ]
    )
    response = system.client(tokens.port_site).post(
        "/v1/events", content=ndjson, headers={"Content-Type": "application/x-ndjson"}
    )
    assert response.status_code == 422
    forbidden = system.client(tokens.market).post(
        "/v1/events", json=[intake("E2E-REJ-2", "MKT-01"), intake("E2E-REJ-2", "PORT")]
    )
    assert forbidden.status_code == 403
    after = scrape(system)

    def delta(site: str, event_type: str, reason: str) -> float:
        return rejected(after, site, event_type, reason) - rejected(
            before, site, event_type, reason
        )

    # Two items of the port, one of a site the token does not hold, one line unparsed.
    assert delta("PORT", "intake", "invalid") == 1
    assert delta("PORT", "outbound", "invalid") == 1
    assert delta("unknown", "intake", "invalid") == 1
    assert delta("unknown", "unknown", "invalid") == 1
    # A site the token may not push never becomes a label (no unbounded series).
    assert not any(dict(labels).get("site_id") == "ELSEWHERE" for _, labels in after)
    # The market's own event carries its site; the port's, which it may not push, does not.
    assert delta("MKT-01", "intake", "forbidden") == 1
    assert delta("unknown", "intake", "forbidden") == 1
    assert delta("PORT", "intake", "forbidden") == 0


def test_the_worker_metrics_carry_partitions_and_sites(system: System, tokens: Tokens) -> None:
    stored = (
        "coldchain_events_stored_total",
        frozenset({"site_id": "CS-001", "event_type": "intake"}.items()),
    )
    before = scrape(system).get(stored, 0.0)
    event = intake("E2E-METRICS", "CS-001", from_site_id="PORT")
    assert system.client(tokens.port_site).post("/v1/events", json=event).status_code == 202
    wait_for(lambda: scrape(system).get(stored, 0.0) == before + 1)

    def lag_partitions() -> set[str]:
        return {
            dict(labels)["partition"]
            for name, labels in scrape(system)
            if name == "coldchain_consumer_lag" and dict(labels)["topic"] == "coldchain.events"
        }

    # The one worker of `coldchain up` holds every partition of the events topic.
    wait_for(lambda: lag_partitions() == {str(p) for p in range(DEFAULT_PARTITIONS)})


def test_the_store_gauges_read_what_the_store_holds(system: System, tokens: Tokens) -> None:
    # On clickhouse-server the gauges read through a connection of their own.
    sent = time.time()
    event = intake("E2E-GAUGES", "CS-001", from_site_id="PORT")
    assert system.client(tokens.port_site).post("/v1/events", json=event).status_code == 202
    last = ("coldchain_site_last_event_timestamp_seconds", frozenset({("site_id", "CS-001")}))
    interval = ("coldchain_site_report_interval_seconds", frozenset({("site_id", "CS-001")}))
    # Refreshed every 15 s.
    wait_for(lambda: scrape(system).get(last, 0.0) >= sent - 1, timeout=40, every=1)
    assert scrape(system)[interval] == 86400


def test_straight_to_the_topic_with_any_kafka_client(system: System, tokens: Tokens) -> None:
    from kafka import KafkaConsumer, KafkaProducer

    bootstrap = (system.data_dir / "kafka-bootstrap").read_text().strip()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    one, *rest = history("E2E-KAFKA")
    invalid = intake("E2E-KAFKA", quantity_kg=0)
    producer.send("coldchain.events", key=b"E2E-KAFKA", value=orjson.dumps(one))
    producer.send("coldchain.events", key=b"E2E-KAFKA", value=orjson.dumps([*rest, invalid]))
    producer.send("coldchain.events", key=b"E2E-KAFKA", value=b"not json")
    producer.flush()
    producer.close()
    body = system.batch(tokens.regulator, "E2E-KAFKA", 5)
    assert invalid["event_id"] not in {e["event_id"] for e in body["events"]}

    consumer = KafkaConsumer(
        "coldchain.events.deadletter",
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=15_000,
    )
    letters = []
    for message in consumer:
        letters.append(orjson.loads(message.value))
        if len(letters) >= 2:
            break
    consumer.close()
    reasons = {letter["reason"] for letter in letters}
    assert reasons == {"event failed validation", "message value is not JSON"}
    invalid_letter = next(x for x in letters if x["reason"] == "event failed validation")
    assert invalid_letter["errors"][0]["field"] == "quantity_kg"
    assert invalid_letter["value"]["event_id"] == invalid["event_id"]


def test_sigkill_right_after_202_loses_nothing(tmp_path: Path, tokens: Tokens) -> None:
    data = tmp_path / "data"
    system = System(data, tokens.file)
    system.wait_healthy()
    sent = [intake(f"E2E-KILL-{i}", quantity_kg=i + 1) for i in range(300)]
    for start in range(0, len(sent), 100):
        response = system.client(tokens.port_site).post(
            "/v1/events", json=sent[start : start + 100]
        )
        assert response.status_code == 202
    system.stop(signal.SIGKILL)
    with running(data, tokens.file) as again:
        for i in (0, 150, 299):
            body = again.batch(tokens.regulator, f"E2E-KILL-{i}", 1)
            assert body["events"][0]["quantity_kg"] == i + 1

        # Every one of the 300, once.
        def all_there() -> bool:
            return all(
                again.client(tokens.regulator).get(f"/v1/batches/E2E-KILL-{i}").status_code == 200
                for i in range(0, 300, 7)
            )

        wait_for(all_there)


def test_ctrl_c_drains_then_stops_and_a_restart_keeps_everything(
    tmp_path: Path, tokens: Tokens
) -> None:
    data = tmp_path / "data"
    system = System(data, tokens.file)
    system.wait_healthy()
    sent = history("E2E-DRAIN")
    assert system.client(tokens.port_site).post("/v1/events", json=sent).status_code == 202
    assert system.stop(signal.SIGINT) == 0
    # Drained: the store holds every accepted event, so the spool kept no segment.
    assert [p.name for p in (data / "spool").iterdir() if p.name != "lock"] == []
    with running(data, tokens.file) as again:
        body = again.batch(tokens.regulator, "E2E-DRAIN", 5)
        assert len(body["events"]) == 5


def test_up_without_tokens_refuses_and_says_how(tmp_path: Path) -> None:
    import subprocess

    from tests._system import COLDCHAIN

    result = subprocess.run(
        [*COLDCHAIN, "up", "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "coldchain token new" in result.stderr
