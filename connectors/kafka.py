"""Kafka plumbing shared by the API and the workers: topics, partitioning, producing.

Works against Apache Kafka and against the embedded tansu broker, whose limits shape
it: no idempotent producer (so acks=all and at-least-once, the store dedups by
event_id), no adding partitions later (so topics are created with their count), and
topics are auto-created with a default count by any Metadata request naming them (so
topics are created *before* anything looks them up).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

_TOPIC_ALREADY_EXISTS: Final = 36
# Broker answers that mean "not now": the controller moved or is still starting.
_RETRIABLE_CREATE_ERRORS: Final = frozenset({7, 41})  # REQUEST_TIMED_OUT, NOT_CONTROLLER
_RETRY_SECONDS: Final = 0.2
# Room beyond the payload for a record batch's header, the key and the record framing.
_BATCH_OVERHEAD_BYTES: Final = 64 * 1024


class TopicError(RuntimeError):
    """A topic could not be created, or has a partition count this system cannot use."""


class BrokerUnavailable(ConnectionError):
    """The Kafka broker did not answer in time."""


def partition_for(key: bytes, partitions: int) -> int:
    """Kafka's default partition for ``key``: ``toPositive(murmur2(key)) % partitions``.

    The same as the Java client and the kafka-python and aiokafka default
    partitioners, so events the API produces and events a client produces with the
    trace code as key land on the same partition.
    """
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, not {partitions}")
    return (_murmur2(key) & 0x7FFFFFFF) % partitions


def _murmur2(data: bytes) -> int:
    """MurmurHash2 as ``org.apache.kafka.common.utils.Utils.murmur2``, as unsigned 32 bits."""
    m = 0x5BD1E995
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    tail = length & ~3
    for i in range(0, tail, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    remaining = length - tail
    if remaining == 3:
        h ^= data[tail + 2] << 16
    if remaining >= 2:
        h ^= data[tail + 1] << 8
    if remaining >= 1:
        h ^= data[tail]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


async def ensure_topics(
    bootstrap: str,
    topics: Mapping[str, int],
    timeout: float = 30.0,  # noqa: ASYNC109 - retries within it, then names the broker
    replication_factor: int = 1,
) -> None:
    """Create the missing ``topics`` (name -> partition count); check the existing ones.

    Waits for the broker to come up within ``timeout``. Topics that already exist
    (also when created concurrently by another process) are fine if they have at least
    the asked number of partitions; fewer raises :class:`TopicError`.
    """
    if not topics:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last_error: BaseException | None = None
    while loop.time() < deadline:
        try:
            async with asyncio.timeout(max(deadline - loop.time(), 0.1)):
                await _create_and_check(bootstrap, topics, replication_factor)
            return
        except (KafkaError, OSError, _NotYet) as exc:
            last_error = exc
        except TimeoutError as exc:
            last_error = exc
            break
        await asyncio.sleep(_RETRY_SECONDS)
    raise BrokerUnavailable(
        f"could not create the Kafka topics {sorted(topics)} at {bootstrap} within "
        f"{timeout:g} s (last error: {last_error!r}); check that the broker is up and "
        "that COLDCHAIN_KAFKA_BOOTSTRAP names it"
    )


class _NotYet(Exception):
    """The broker answered but asked to try again."""


async def _create_and_check(
    bootstrap: str, topics: Mapping[str, int], replication_factor: int
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        await admin.start()
        # Create first, describe after: describing a missing topic would make tansu
        # auto-create it with its default partition count.
        response = await admin.create_topics(
            [NewTopic(name, count, replication_factor) for name, count in topics.items()]
        )
        for answer in response.to_object()["topic_errors"]:
            code = answer["error_code"]
            if code in (0, _TOPIC_ALREADY_EXISTS):
                continue
            if code in _RETRIABLE_CREATE_ERRORS:
                raise _NotYet(f"{answer['topic']}: error {code}")
            raise TopicError(
                f"Kafka refused to create topic {answer['topic']!r} with "
                f"{topics[answer['topic']]} partitions, replication factor "
                f"{replication_factor}: error {code} {answer['error_message'] or ''}".rstrip()
            )
        for described in await admin.describe_topics(list(topics)):
            name = described["topic"]
            have = len(described["partitions"])
            if described["error_code"] != 0 or have == 0:
                raise _NotYet(f"{name}: metadata error {described['error_code']}")
            if have < topics[name]:
                raise TopicError(
                    f"Kafka topic {name!r} has {have} partitions but {topics[name]} are "
                    f"configured; add partitions (kafka-topics.sh --alter --topic {name} "
                    f"--partitions {topics[name]}) or configure {have}"
                )
    finally:
        await admin.close()


class EventProducer:
    """Produces accepted events: one message per partition per call, a JSON array."""

    def __init__(
        self,
        bootstrap: str,
        events_topic: str,
        partitions: int,
        dead_letter_topic: str,
        *,
        max_message_bytes: int = 900_000,
        request_timeout_ms: int = 10_000,
    ) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be at least 1, not {partitions}")
        self._bootstrap = bootstrap
        self._events_topic = events_topic
        self._partitions = partitions
        self._dead_letter_topic = dead_letter_topic
        self._max_message_bytes = max_message_bytes
        self._request_timeout_s = request_timeout_ms / 1000
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            # tansu has no InitProducerId; duplicates are absorbed by the store instead.
            enable_idempotence=False,
            # Lets the messages of concurrent requests share a produce request.
            linger_ms=2,
            max_request_size=max_message_bytes + _BATCH_OVERHEAD_BYTES,
            request_timeout_ms=request_timeout_ms,
        )

    async def start(self) -> None:
        """Connect; the events topic must exist with exactly ``partitions`` partitions."""
        try:
            await self._producer.start()
            async with asyncio.timeout(self._request_timeout_s):
                have = len(await self._producer.partitions_for(self._events_topic))
        except (KafkaError, OSError, TimeoutError) as exc:
            await self._producer.stop()
            raise BrokerUnavailable(
                f"could not read the partitions of Kafka topic {self._events_topic!r} from "
                f"{self._bootstrap}: {exc!r}; check that the broker is up and that "
                "ensure_topics ran"
            ) from exc
        except BaseException:
            await self._producer.stop()
            raise
        if have != self._partitions:
            await self._producer.stop()
            # Any other count would put an API-produced event on another partition than
            # a Kafka client producing the same trace code, breaking per-batch order.
            raise TopicError(
                f"Kafka topic {self._events_topic!r} has {have} partitions but "
                f"{self._partitions} are configured; configure {have}"
            )

    async def stop(self) -> None:
        """Flush what is in flight and disconnect."""
        await self._producer.stop()

    async def send_events(self, events: Sequence[tuple[str, bytes]]) -> None:
        """Produce ``(trace_code, canonical event JSON)`` pairs; returns once all are acked.

        Events are grouped by the partition of their trace code; each group becomes
        one message holding a JSON array (several when it would exceed
        ``max_message_bytes``), keyed by its first event's trace code. Raises if any
        message is not acknowledged by all in-sync replicas.
        """
        await self.send_grouped(self._events_topic, self._partitions, events)

    async def send_grouped(
        self, topic: str, partitions: int, items: Sequence[tuple[str, bytes]]
    ) -> None:
        """Produce ``(key, JSON value)`` pairs to ``topic`` as JSON arrays, one message per
        partition of the keys (more when over ``max_message_bytes``); waits for every ack."""
        by_partition: dict[int, list[tuple[str, bytes]]] = {}
        for key, payload in items:
            partition = partition_for(key.encode(), partitions)
            by_partition.setdefault(partition, []).append((key, payload))
        deliveries = []
        for partition, group in by_partition.items():
            for chunk in _chunks(group, self._max_message_bytes):
                deliveries.append(
                    await self._producer.send(
                        topic,
                        value=b"[" + b",".join(payload for _, payload in chunk) + b"]",
                        key=chunk[0][0].encode(),
                        partition=partition,
                    )
                )
        await _all_acknowledged(deliveries)

    async def send_dead_letter(self, record: Mapping[str, object]) -> None:
        """Produce one JSON record to the dead-letter topic and wait for its ack."""
        await self._producer.send_and_wait(self._dead_letter_topic, orjson.dumps(dict(record)))

    async def ping(self) -> None:
        """Raise :class:`BrokerUnavailable` unless the broker answers a Metadata request."""
        try:
            async with asyncio.timeout(self._request_timeout_s):
                # All topics: naming one would make tansu auto-create it if it is missing.
                await self._producer.client.fetch_all_metadata()
        except (KafkaError, OSError, TimeoutError) as exc:
            raise BrokerUnavailable(f"the Kafka broker did not answer: {exc!r}") from exc


def _chunks(group: list[tuple[str, bytes]], limit: int) -> Iterator[list[tuple[str, bytes]]]:
    """Split a partition's values into JSON arrays of at most ``limit`` bytes each."""
    chunk: list[tuple[str, bytes]] = []
    size = 1  # "[" and "]", with no comma before the first event
    for trace_code, payload in group:
        added = len(payload) + 1  # the event and the "," or "]" after it
        if 1 + added > limit:
            raise ValueError(
                f"one value keyed {trace_code!r} is {len(payload)} bytes of JSON, "
                f"more than max_message_bytes={limit}; raise max_message_bytes (and the "
                "broker's message.max.bytes)"
            )
        if size + added > limit:
            yield chunk
            chunk, size = [], 1
        chunk.append((trace_code, payload))
        size += added
    if chunk:
        yield chunk


async def _all_acknowledged(deliveries: list[asyncio.Future[Any]]) -> None:
    # Wait for every message, not just until the first failure, so no delivery is left
    # unobserved; then report the first failure.
    results = await asyncio.gather(*deliveries, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
