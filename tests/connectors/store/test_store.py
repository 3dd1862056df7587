"""The lineage store against real backends: chdb in a temp dir and clickhouse-server 18.16."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connectors.store import (
    ConflictRecord,
    EventRecord,
    LineageStore,
    StoreError,
    open_store,
)
from schemas.events import Event, canonical_json, content_hash, validate_event
from tests._clickhouse import create_database

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
RECEIVED = datetime(2024, 3, 2, 9, 0, tzinfo=UTC)
BOTH = pytest.mark.parametrize("backend", ["chdb", "clickhouse"])

OpenStore = Callable[[], LineageStore]


def event(event_type: str, event_id: str, trace_code: str = "C1", **fields: Any) -> Event:
    base: dict[str, Any] = {
        "event_id": event_id,
        "event_type": event_type,
        "trace_code": trace_code,
        "site_id": "SH-01",
        "occurred_at": "2024-03-01T08:30:00.123456+08:00",
    }
    defaults: dict[str, dict[str, Any]] = {
        "intake": {
            "zone_id": "Z-7",
            "origin": "imported",
            "product": "frozen beef",
            "country_of_origin": "BR",
            "quantity_kg": "1000.005",
        },
        "disinfection": {"certificate_no": "D-1"},
        "nucleic_test": {"result": "negative", "report_no": "N-1"},
        "outbound": {"quantity_kg": "0.001", "to_site_id": "BJ-02"},
        "sale": {"quantity_kg": "999999999.999"},
    }
    return validate_event({**base, **defaults[event_type], **fields}, None)


def record(ev: Event, received_at: datetime = RECEIVED) -> EventRecord:
    return EventRecord(event=ev, content_hash=content_hash(ev), received_at=received_at)


@pytest.fixture
def opener(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> OpenStore:
    """Opens a store at the same place each time: one chdb dir, or one server database."""
    if backend == "chdb":
        return lambda: open_store(None, tmp_path)
    url = create_database(request.getfixturevalue("clickhouse_server"))
    return lambda: open_store(url, tmp_path)


@pytest.fixture
async def store(opener: OpenStore) -> AsyncIterator[LineageStore]:
    opened = opener()
    try:
        await opened.migrate()
        yield opened
    finally:
        await opened.close()


async def backend_rows(store: LineageStore, sql: str) -> list[dict[str, Any]]:
    # What the interface does not read back (the columns, conflicts), asked of the backend.
    rows: list[dict[str, Any]] = await store._run(store._query, sql)  # type: ignore[attr-defined]
    return rows


@BOTH
async def test_migrations_apply_once_and_survive_reopening(opener: OpenStore) -> None:
    first = opener()
    try:
        assert first.backend in ("chdb", "clickhouse")
        assert await first.migrate() == [
            "0001_events",
            "0002_conflicts",
            "0003_alerts",
            "0004_site_events",
        ]
        assert await first.migrate() == []
        await first.insert_events([record(event("sale", "e1"))])
    finally:
        await first.close()

    again = opener()
    try:
        assert await again.migrate() == []
        assert [e.event_id for e in await again.events_of("C1")] == ["e1"]
    finally:
        await again.close()


@BOTH
async def test_every_event_type_round_trips_exactly(store: LineageStore) -> None:
    events = [
        event("intake", "in-1", parent_trace_codes=["P1", "P2"], from_site_id="GZ-9"),
        event("disinfection", "dis-1", method="spray", agent="chlorine dioxide"),
        event("nucleic_test", "nt-1", result="pending", sample_type="product", lab="CDC 上海"),
        event("outbound", "out-1", zone_id="Z-7", vehicle_plate="沪A12345"),
        event("sale", "sale-1", buyer="Market 3"),
        event("intake", "in-0", occurred_at="2024-03-01T00:30:00.123456Z"),
        event("sale", "sale-2", occurred_at="2024-03-01T01:30:00.000001-03:00"),
    ]
    # Inserted in reverse so the order read back comes from the store, not the insert.
    await store.insert_events([record(e) for e in reversed(events)])

    got = await store.events_of("C1")

    # By occurred_at (in-0 is the others' instant written in UTC, sale-2 is later), then
    # intake < disinfection < nucleic_test < outbound < sale, then event_id.
    assert [e.event_id for e in got] == [
        "in-0",
        "in-1",
        "dis-1",
        "nt-1",
        "out-1",
        "sale-1",
        "sale-2",
    ]
    by_id = {e.event_id: e for e in events}
    for back in got:
        sent = by_id[back.event_id]
        assert back == sent
        assert canonical_json(back) == canonical_json(sent)
        assert back.occurred_at.utcoffset() == sent.occurred_at.utcoffset()
    quantities = {e.event_id: str(e.quantity_kg) for e in got if hasattr(e, "quantity_kg")}
    assert quantities == {
        "in-0": "1000.005",
        "in-1": "1000.005",
        "out-1": "0.001",
        "sale-1": "999999999.999",
        "sale-2": "999999999.999",
    }
    assert await store.events_of("C2") == []
    columns = await backend_rows(
        store,
        "SELECT event_id, toString(quantity_kg) AS kg, occurred_at_us FROM events "
        "WHERE event_id IN ('in-1', 'out-1', 'sale-1', 'sale-2') ORDER BY event_id",
    )
    assert [(r["event_id"], Decimal(r["kg"]), r["occurred_at_us"]) for r in columns] == [
        ("in-1", Decimal("1000.005"), 1_709_253_000_123_456),
        ("out-1", Decimal("0.001"), 1_709_253_000_123_456),
        ("sale-1", Decimal("999999999.999"), 1_709_253_000_123_456),
        ("sale-2", Decimal("999999999.999"), 1_709_267_400_000_001),
    ]


@BOTH
async def test_same_event_inserted_twice_comes_back_once(store: LineageStore) -> None:
    intake = event("intake", "in-1", trace_code="C2", parent_trace_codes=["P1"])
    await store.insert_events([record(intake)])
    await store.insert_events([record(intake, RECEIVED + timedelta(seconds=5))])

    assert await store.events_of("C2") == [intake]
    assert await store.existing_hashes(["in-1"]) == {"in-1": content_hash(intake)}
    assert await store.children_of("P1") == ["C2"]


@BOTH
async def test_later_conflicting_version_does_not_replace_the_first(store: LineageStore) -> None:
    first = event("intake", "in-1", quantity_kg="10.5", parent_trace_codes=["P1"])
    changed = event("intake", "in-1", quantity_kg="11.5", parent_trace_codes=["P1"])
    moved = event("intake", "in-1", trace_code="C9", parent_trace_codes=["P2"])
    await store.insert_events([record(first)])
    await store.insert_events([record(changed, RECEIVED + timedelta(minutes=1))])
    await store.insert_events([record(moved, RECEIVED + timedelta(minutes=2))])

    assert await store.events_of("C1") == [first]
    assert await store.events_of("C9") == []
    assert await store.existing_hashes(["in-1"]) == {"in-1": content_hash(first)}
    assert await store.children_of("P1") == ["C1"]
    assert await store.children_of("P2") == []


@BOTH
async def test_first_received_stands_even_when_inserted_last(store: LineageStore) -> None:
    # Two workers may write versions out of order: receipt time decides, not insert order.
    early = event("sale", "s-1", quantity_kg="1.000")
    late = event("sale", "s-1", quantity_kg="2.000")
    await store.insert_events([record(late, RECEIVED + timedelta(seconds=1))])
    await store.insert_events([record(early, RECEIVED)])

    assert await store.events_of("C1") == [early]
    assert await store.existing_hashes(["s-1"]) == {"s-1": content_hash(early)}


@BOTH
async def test_existing_hashes_knows_only_stored_ids(store: LineageStore) -> None:
    # Ids long enough that one query could not hold them all (max_query_size 256 KiB).
    events = [event("disinfection", f"{i:04d}-" + "x" * 120) for i in range(2500)]
    await store.insert_events([record(e) for e in events])

    asked = [e.event_id for e in events] + ["unknown", events[0].event_id]
    found = await store.existing_hashes(asked)

    assert found == {e.event_id: content_hash(e) for e in events}
    assert await store.existing_hashes([]) == {}


@BOTH
async def test_children_of_lists_each_child_once(store: LineageStore) -> None:
    await store.insert_events(
        [
            record(event("intake", "a", trace_code="C3", parent_trace_codes=["C1", "C2"])),
            record(event("intake", "b", trace_code="C4", parent_trace_codes=["C1"])),
            record(event("intake", "c", trace_code="C4", parent_trace_codes=["C1"])),
            record(event("intake", "d", trace_code="C1")),
        ]
    )

    assert await store.children_of("C1") == ["C3", "C4"]
    assert await store.children_of("C2") == ["C3"]
    assert await store.children_of("C3") == []


@BOTH
async def test_conflicts_are_recorded_once(store: LineageStore) -> None:
    rejected = event("sale", "s-1", quantity_kg="2.5")
    conflict = ConflictRecord(
        event_id="s-1",
        stored_hash="a" * 64,
        conflicting_hash=content_hash(rejected),
        conflicting_payload=canonical_json(rejected),
        detected_at=RECEIVED,
    )
    await store.insert_conflicts([conflict])
    # Redelivery detects the same conflict again later; the first detection stands.
    await store.insert_conflicts([replace(conflict, detected_at=RECEIVED + timedelta(hours=1))])

    rows = await backend_rows(store, "SELECT * FROM conflicts FINAL")

    assert len(rows) == 1
    assert rows[0]["event_id"] == "s-1"
    assert rows[0]["stored_hash"] == "a" * 64
    assert rows[0]["conflicting_hash"] == content_hash(rejected)
    assert rows[0]["conflicting_payload"].encode() == canonical_json(rejected)
    assert rows[0]["detected_at_us"] == int(RECEIVED.timestamp()) * 1_000_000


@BOTH
async def test_concurrent_calls_share_the_store_safely(store: LineageStore) -> None:
    # Callers on one loop overlap freely; the store runs them one at a time on its thread.
    writes = [
        store.insert_events([record(event("sale", f"s-{i}", trace_code=f"C{i % 3}"))])
        for i in range(30)
    ]
    reads = [store.events_of(f"C{i % 3}") for i in range(30)]
    await asyncio.gather(*writes, *reads)

    for code in ("C0", "C1", "C2"):
        got = await store.events_of(code)
        assert len(got) == 10 and {e.trace_code for e in got} == {code}


@BOTH
async def test_ping_answers_until_closed(opener: OpenStore) -> None:
    opened = opener()
    await opened.ping()
    await opened.close()
    with pytest.raises(StoreError, match="closed"):
        await opened.ping()
    await opened.close()  # closing twice is harmless


async def test_ping_fails_when_no_server_answers(tmp_path: Path) -> None:
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    dead = open_store("clickhouse://default:@127.0.0.1:1/coldchain", tmp_path)
    try:
        with pytest.raises(StoreError, match=r"127\.0\.0\.1:1/coldchain.*server runs"):
            await dead.ping()
    finally:
        await dead.close()


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9000/db", "clickhouse:///db", "clickhouse://h:9000/bad-name"],
)
def test_bad_clickhouse_url_is_refused(url: str, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="ClickHouse URL"):
        open_store(url, tmp_path)


async def test_second_process_on_the_same_chdb_dir_gets_store_error(tmp_path: Path) -> None:
    holder = textwrap.dedent(
        f"""
        import asyncio, sys
        from pathlib import Path
        from connectors.store import open_store

        async def main():
            store = open_store(None, Path({str(tmp_path)!r}))
            await store.migrate()
            print("holding", flush=True)
            sys.stdin.read()
            await store.close()

        asyncio.run(main())
        """
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", holder, cwd=REPO, stdin=PIPE, stdout=PIPE
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        assert await asyncio.wait_for(process.stdout.readline(), 60) == b"holding\n"
        with pytest.raises(StoreError, match="another coldchain process"):
            open_store(None, tmp_path)
    finally:
        process.stdin.close()
        assert await asyncio.wait_for(process.wait(), 60) == 0

    # Once the holder has gone the dir opens: the refused attempt left nothing behind.
    reopened = open_store(None, tmp_path)
    try:
        assert await reopened.migrate() == []
    finally:
        await reopened.close()


async def test_a_second_chdb_dir_in_one_process_gets_store_error(tmp_path: Path) -> None:
    first = open_store(None, tmp_path / "a")
    try:
        with pytest.raises(StoreError, match="one per process"):
            open_store(None, tmp_path / "b")
    finally:
        await first.close()
    # Closing the first frees the process for another dir.
    second = open_store(None, tmp_path / "b")
    await second.close()


@BOTH
async def test_codes_beside_finds_every_batch_that_could_share_a_stay(store: LineageStore) -> None:
    from tests.factories import T0, intake, outbound, parsed

    def at(minutes: int) -> datetime:
        return T0 + timedelta(minutes=minutes)

    events = [
        intake("LEFT-BEFORE", "S", 0, zone_id="Z"),
        outbound("LEFT-BEFORE", "S", 10, zone_id="Z"),
        intake("STILL-THERE", "S", 0, zone_id="Z"),
        intake("OVERLAPS", "S", 30, zone_id="Z"),
        outbound("OVERLAPS", "S", 90, zone_id="Z"),
        intake("CAME-AFTER", "S", 200, zone_id="Z"),
        intake("OTHER-ZONE", "S", 30, zone_id="Y"),
        intake("OTHER-SITE", "T", 30, zone_id="Z"),
    ]
    await store.insert_events([record(parsed(e)) for e in events])
    assert await store.codes_beside("S", {"Z": (at(20), at(100))}) == ["OVERLAPS", "STILL-THERE"]
    assert await store.codes_beside("S", {"Z": (at(20), None)}) == [
        "CAME-AFTER",
        "OVERLAPS",
        "STILL-THERE",
    ]
    assert await store.codes_beside("S", {"Z": (at(20), at(100)), "Y": (at(0), None)}) == [
        "OTHER-ZONE",
        "OVERLAPS",
        "STILL-THERE",
    ]
    assert await store.codes_beside("S", {}) == []
