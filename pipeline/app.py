"""The stream topology, all of it in one place.

    coldchain.events   key: trace code; value: an event or a JSON array of events
      └─ agent store_events (partitioned by trace code), per batch of messages:
           StoreWriter: validate -> dead letters -> dedup by event_id -> one store insert
           Evaluator.batches: per-batch rules over each touched code's whole history
             ├─ alert changes -> lineage store + coldchain.alerts (key: trace code)
             └─ per site of those codes, the codes -> coldchain.sites (key: site id;
                value: JSON array of {"site_id", "trace_codes"})
    coldchain.sites
      └─ agent evaluate_sites (partitioned by site): per-zone rule (mixed storage) for
         the touched codes and the batches that may have shared a stay with them
           └─ alert changes -> lineage store + coldchain.alerts

The agents only move data; what happens to a batch lives in StoreWriter and Evaluator,
and the lineage store is the only state, so a restarted worker loses nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faust
import orjson
from faust.transport.drivers import aiokafka as faust_aiokafka

from pipeline.evaluate import Evaluator
from pipeline.store_writer import RawMessage, StoreWriter

#: Messages per batch taken from the stream (each may carry many events).
TAKE_MESSAGES = 500
TAKE_WITHIN_SECONDS = 0.05
#: faust hard-codes a 1500 ms fetch wait, and tansu holds every fetch for the whole
#: wait even when data is there: ~530 ms latency p50 instead of ~2 ms (PLATFORM.md).
FETCH_MAX_WAIT_MS = 100


def _short_fetch_wait() -> None:
    thread = faust_aiokafka.AIOKafkaConsumerThread
    original = thread._create_worker_consumer
    if getattr(original, "_coldchain_patched", False):
        return

    def create(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer

    create._coldchain_patched = True  # type: ignore[attr-defined]
    thread._create_worker_consumer = create  # type: ignore[method-assign]


@dataclass(frozen=True)
class WorkerConfig:
    bootstrap: str
    group_id: str
    events_topic: str
    sites_topic: str
    partitions: int
    datadir: Path


class Worker:
    """A faust app consuming the events topic into the lineage store."""

    def __init__(
        self,
        config: WorkerConfig,
        writer: StoreWriter,
        evaluator: Evaluator,
        notify_sites: Callable[[dict[str, set[str]]], Awaitable[None]],
    ) -> None:
        _short_fetch_wait()
        self.ready = asyncio.Event()
        self.app = faust.App(
            config.group_id,
            broker=f"kafka://{config.bootstrap}",
            web_enabled=False,
            datadir=str(config.datadir),
            store="memory://",
            topic_partitions=config.partitions,
            # coldchain creates its topics up front; production Kafka auto-creates none,
            # and the leader topic serves only on_leader timers, which nothing here uses.
            topic_allow_declare=False,
            topic_disable_leader=True,
            consumer_auto_offset_reset="earliest",
            broker_session_timeout=6.0,
            broker_heartbeat_interval=2.0,
            broker_rebalance_timeout=6.0,
            producer_acks=-1,
        )

        def raw_topic(name: str) -> Any:
            # Raw bytes: a value that is not JSON must reach the dead-letter topic, not
            # crash-loop the agent as faust's json serializer would (PLATFORM.md).
            return self.app.topic(
                name,
                key_type=bytes,
                value_type=bytes,
                key_serializer="raw",
                value_serializer="raw",
                partitions=config.partitions,
            )

        events = raw_topic(config.events_topic)
        sites = raw_topic(config.sites_topic)

        @self.app.on_partitions_assigned.connect
        def _assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
            self.ready.set()

        @self.app.agent(events, name="store_events")
        async def store_events(stream: Any) -> None:
            async for batch in stream.take_events(TAKE_MESSAGES, within=TAKE_WITHIN_SECONDS):
                stored = await writer.handle([_raw(event.message) for event in batch])
                await notify_sites(await evaluator.batches(stored))

        @self.app.agent(sites, name="evaluate_sites")
        async def evaluate_sites(stream: Any) -> None:
            async for batch in stream.take_events(TAKE_MESSAGES, within=TAKE_WITHIN_SECONDS):
                touched: dict[str, set[str]] = {}
                for event in batch:
                    for notice in orjson.loads(event.message.value):
                        touched.setdefault(notice["site_id"], set()).update(notice["trace_codes"])
                await evaluator.sites(touched)

    @property
    def healthy(self) -> bool:
        return self.ready.is_set() and self.app.started and not self.app.crashed


def _raw(message: Any) -> RawMessage:
    return RawMessage(
        value=message.value,
        timestamp=datetime.fromtimestamp(message.timestamp, UTC),
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
    )
