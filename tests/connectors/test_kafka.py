from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner as AIOKafkaPartitioner
from kafka import KafkaProducer
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from coldchain.embedded import EmbeddedBroker
from connectors.kafka import (
    BrokerUnavailable,
    EventProducer,
    TopicError,
    ensure_topics,
    partition_for,
)
from schemas.events import canonical_json
from tests.factories import disinfection, intake, outbound, parsed

EVENTS, DEAD = "events", "dead-letter"

# org.apache.kafka.common.utils.UtilsTest.testMurmur2 (the Java client), signed.
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def _keys(n: int) -> list[bytes]:
    rng = random.Random(204)
    keys = [b"", "冷链-批次-0001".encode(), bytes(range(256))]
    keys += [rng.randbytes(rng.randrange(0, 70)) for _ in range(n)]
    keys += [f"TC-{i:06d}".encode() for i in range(n)]
    return keys


def test_partition_for_matches_the_java_client() -> None:
    for key, signed in JAVA_MURMUR2.items():
        # toPositive(h) % 2**31 is toPositive(h) itself: the hash shows through.
        assert partition_for(key, 2**31) == signed & 0x7FFFFFFF


@pytest.mark.parametrize("partitions", [1, 2, 3, 4, 7, 8, 12, 16, 100])
def test_partition_for_matches_kafka_python_and_aiokafka(partitions: int) -> None:
    aiokafka_default = AIOKafkaPartitioner()
    all_partitions = list(range(partitions))
    for key in _keys(1000):
        expected = partition_for(key, partitions)
        assert aiokafka_default(key, all_partitions, all_partitions) == expected
        assert (kafka_python_murmur2(key) & 0x7FFFFFFF) % partitions == expected


def test_partition_for_rejects_no_partitions() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        partition_for(b"T1", 0)


async def _partition_counts(bootstrap: str, topics: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(topics)}
    finally:
        await admin.close()


@pytest.mark.slow
async def test_keyed_clients_land_where_partition_for_says(broker: str) -> None:
    await ensure_topics(broker, {"keyed": 6})
    keys = [f"TC-{i:04d}".encode() for i in range(200)]

    producer = AIOKafkaProducer(bootstrap_servers=broker, enable_idempotence=False)
    await producer.start()
    try:
        sent = [await producer.send("keyed", b"{}", key=key) for key in keys]
        placed = [metadata.partition for metadata in await asyncio.gather(*sent)]
    finally:
        await producer.stop()
    assert placed == [partition_for(key, 6) for key in keys]

    def kafka_python_placement() -> list[int]:
        client = KafkaProducer(bootstrap_servers=broker, enable_idempotence=False)
        try:
            futures = [client.send("keyed", b"{}", key=key) for key in keys]
            return [future.get(timeout=30).partition for future in futures]
        finally:
            client.close()

    assert await asyncio.to_thread(kafka_python_placement) == placed


@pytest.mark.slow
async def test_ensure_topics_creates_once_and_tolerates_races(broker: str) -> None:
    wanted = {EVENTS: 4, DEAD: 1, "alerts": 2}
    await asyncio.gather(*(ensure_topics(broker, wanted) for _ in range(3)))
    await ensure_topics(broker, wanted)
    await ensure_topics(broker, {EVENTS: 2})  # more than asked is fine
    assert await _partition_counts(broker, list(wanted)) == wanted


@pytest.mark.slow
async def test_ensure_topics_refuses_fewer_partitions_than_asked(broker: str) -> None:
    await ensure_topics(broker, {EVENTS: 2})
    with pytest.raises(TopicError, match=r"'events' has 2 partitions but 8"):
        await ensure_topics(broker, {EVENTS: 8})


@pytest.mark.slow
async def test_ensure_topics_waits_for_the_broker_to_come_up() -> None:
    embedded = EmbeddedBroker()
    bootstrap = await embedded.start()
    await embedded.stop()
    port = int(bootstrap.rsplit(":", 1)[1])

    creating = asyncio.create_task(ensure_topics(bootstrap, {EVENTS: 3}, timeout=20))
    await asyncio.sleep(1.0)
    assert not creating.done()
    restarted = EmbeddedBroker(port=port)
    await restarted.start()
    try:
        await asyncio.wait_for(creating, 20)
        assert await _partition_counts(bootstrap, [EVENTS]) == {EVENTS: 3}
    finally:
        await restarted.stop()


@pytest.mark.slow
async def test_ensure_topics_gives_up_naming_the_broker() -> None:
    embedded = EmbeddedBroker()
    bootstrap = await embedded.start()
    await embedded.stop()
    with pytest.raises(BrokerUnavailable, match=rf"at {bootstrap} within 1 s"):
        await ensure_topics(bootstrap, {EVENTS: 1}, timeout=1.0)


def _events(batches: int) -> list[tuple[str, bytes]]:
    events = []
    for i in range(batches):
        code = f"BR-{i:03d}"
        for raw in (
            intake(code, minutes=i),
            disinfection(code, minutes=i + 1, certificate_no=f"消杀-{i}"),
            outbound(code, minutes=i + 2),
        ):
            events.append((code, canonical_json(parsed(raw))))
    return events


async def _consume(
    bootstrap: str, topic: str, partitions: int, expected: int
) -> list[ConsumerRecord]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, auto_offset_reset="earliest", fetch_max_wait_ms=50
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        records: list[ConsumerRecord] = []
        async with asyncio.timeout(20):
            while (
                sum(len(orjson.loads(r.value)) if topic == EVENTS else 1 for r in records)
                < expected
            ):
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    records.extend(batch)
        # Nothing more than expected arrives.
        assert not await consumer.getmany(timeout_ms=300)
        return records
    finally:
        await consumer.stop()


def _count(topic: str, records: list[ConsumerRecord[bytes, bytes]]) -> int:
    if topic != EVENTS:
        return len(records)
    return sum(len(orjson.loads(record.value)) for record in records)


@pytest.fixture
async def producer(broker: str) -> AsyncIterator[EventProducer]:
    await ensure_topics(broker, {EVENTS: 4, DEAD: 1})
    event_producer = EventProducer(broker, EVENTS, 4, DEAD)
    await event_producer.start()
    try:
        yield event_producer
    finally:
        await event_producer.stop()


@pytest.mark.slow
async def test_send_events_one_array_per_partition_each_event_once(
    broker: str, producer: EventProducer
) -> None:
    events = _events(40)
    await producer.send_events(events)

    records = await _consume(broker, EVENTS, 4, len(events))
    assert len(records) == len({partition_for(code.encode(), 4) for code, _ in events})
    received: Counter[bytes] = Counter()
    for record in records:
        array = orjson.loads(record.value)
        assert isinstance(array, list)
        codes = [event["trace_code"] for event in array]
        assert record.key == codes[0].encode()
        assert {partition_for(code.encode(), 4) for code in codes} == {record.partition}
        received.update(orjson.dumps(event) for event in array)
    assert received == Counter(orjson.dumps(orjson.loads(payload)) for _, payload in events)

    # Within a partition the events keep the order they were given in.
    for record in records:
        sent = [p for code, p in events if partition_for(code.encode(), 4) == record.partition]
        assert [orjson.dumps(e) for e in orjson.loads(record.value)] == [
            orjson.dumps(orjson.loads(p)) for p in sent
        ]


@pytest.mark.slow
async def test_send_events_splits_arrays_above_max_message_bytes(broker: str) -> None:
    await ensure_topics(broker, {EVENTS: 2, DEAD: 1})
    small = EventProducer(broker, EVENTS, 2, DEAD, max_message_bytes=2_000)
    await small.start()
    try:
        events = _events(30)
        await small.send_events(events)
        big = [(events[0][0], b'{"padding":"' + b"x" * 2_000 + b'"}')]
        with pytest.raises(ValueError, match="raise max_message_bytes"):
            await small.send_events(big)
    finally:
        await small.stop()

    records = await _consume(broker, EVENTS, 2, len(events))
    assert len(records) > 2
    assert all(len(record.value) <= 2_000 for record in records)
    by_partition: dict[int, list[bytes]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_partition.setdefault(record.partition, []).extend(
            orjson.dumps(e) for e in orjson.loads(record.value)
        )
    for partition, received in by_partition.items():
        sent = [p for code, p in events if partition_for(code.encode(), 2) == partition]
        assert received == [orjson.dumps(orjson.loads(p)) for p in sent]


@pytest.mark.slow
async def test_dead_letter_record_is_json(broker: str, producer: EventProducer) -> None:
    record = {"reason": "occurred_at: is required", "value": '{"trace_code": "T1"}'}
    await producer.send_dead_letter(record)
    [received] = await _consume(broker, DEAD, 1, 1)
    assert orjson.loads(received.value) == record


@pytest.mark.slow
async def test_start_refuses_a_partition_count_other_than_configured(broker: str) -> None:
    await ensure_topics(broker, {EVENTS: 4, DEAD: 1})
    with pytest.raises(TopicError, match="has 4 partitions but 3"):
        await EventProducer(broker, EVENTS, 3, DEAD).start()


@pytest.mark.slow
async def test_ping_and_send_fail_once_the_broker_is_gone() -> None:
    embedded = EmbeddedBroker()
    bootstrap = await embedded.start()
    try:
        await ensure_topics(bootstrap, {EVENTS: 2, DEAD: 1})
        event_producer = EventProducer(bootstrap, EVENTS, 2, DEAD, request_timeout_ms=1_500)
        await event_producer.start()
        await event_producer.ping()
    finally:
        # tansu waits 5 s for connected clients after SIGTERM; nothing to keep here.
        await embedded.stop(timeout=0.2)
    try:
        with pytest.raises(BrokerUnavailable):
            await event_producer.ping()
        with pytest.raises(Exception):  # noqa: B017 - any error means: answer 503
            await event_producer.send_events(_events(1))
    finally:
        await event_producer.stop()
