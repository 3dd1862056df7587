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
    coldchain.alerts   key: trace code; value: JSON array of alerts (only when a sink is set)
      └─ agent notify_alerts: Notifier -> Alertmanager, in order, retried until taken
         (and a timer posts the firing alerts of the partitions held again)

Timers measure the consumer lag of every partition held (coldchain_consumer_lag).
The agents only move data; what happens to a batch lives in StoreWriter and Evaluator,
and the lineage store is the only state, so a restarted worker loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faust
import orjson
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from connectors.metrics import CONSUMER_LAG, CONSUMER_MESSAGES
from pipeline.evaluate import Evaluator
from pipeline.notify import Notifier
from pipeline.store_writer import RawMessage, StoreWriter
from schemas.alerts import Alert

log = logging.getLogger(__name__)

#: Messages per batch taken from the stream (each may carry many events).
TAKE_MESSAGES = 500
TAKE_WITHIN_SECONDS = 0.05
#: How often the consumer lag is measured.
LAG_SECONDS = 5.0
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
    alerts_topic: str
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
        notifier: Notifier | None = None,
    ) -> None:
        _short_fetch_wait()
        self.ready = asyncio.Event()
        #: Next offset to process per partition, for the lag (what the agents finished).
        self._processed: dict[TP, int] = {}
        self._lag_shown: set[TP] = set()
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
        #: What the agents read (the alerts topic only when there is somewhere to send them).
        self.consumed_topics = [config.events_topic, config.sites_topic]

        @self.app.on_partitions_assigned.connect
        def _assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
            self.ready.set()

        @self.app.on_partitions_revoked.connect
        def _revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
            # Another worker moves these on meanwhile: what this one did says nothing then.
            for tp in args[0] if args else ():
                self._processed.pop(tp, None)

        @self.app.agent(events, name="store_events")
        async def store_events(stream: Any) -> None:
            async for batch in stream.take_events(TAKE_MESSAGES, within=TAKE_WITHIN_SECONDS):
                stored = await writer.handle([_raw(event.message) for event in batch])
                await notify_sites(await evaluator.batches(stored))
                self._done(config.events_topic, batch)

        @self.app.agent(sites, name="evaluate_sites")
        async def evaluate_sites(stream: Any) -> None:
            async for batch in stream.take_events(TAKE_MESSAGES, within=TAKE_WITHIN_SECONDS):
                touched: dict[str, set[str]] = {}
                for event in batch:
                    for notice in orjson.loads(event.message.value):
                        touched.setdefault(notice["site_id"], set()).update(notice["trace_codes"])
                await evaluator.sites(touched)
                self._done(config.sites_topic, batch)

        if notifier is not None:
            alerts = raw_topic(config.alerts_topic)
            self.consumed_topics.append(config.alerts_topic)

            @self.app.agent(alerts, name="notify_alerts")
            async def notify_alerts(stream: Any) -> None:
                async for batch in stream.take_events(TAKE_MESSAGES, within=TAKE_WITHIN_SECONDS):
                    changes = [
                        Alert.model_validate(item)
                        for event in batch
                        for item in orjson.loads(event.message.value)
                    ]
                    await notifier.changes(changes)
                    self._done(config.alerts_topic, batch)

            async def repost_firing() -> None:
                held = {tp.partition for tp in self._held() if tp.topic == config.alerts_topic}
                try:
                    await notifier.repost(held)
                except Exception:
                    log.exception("could not post the firing alerts again; next time")

            self.app.timer(notifier.repost_seconds)(repost_firing)

        self.app.timer(LAG_SECONDS)(self._measure_lag)

    def _done(self, topic: str, batch: Sequence[Any]) -> None:
        CONSUMER_MESSAGES.labels(topic).inc(len(batch))
        for event in batch:
            message = event.message
            tp = message.tp
            self._processed[tp] = max(self._processed.get(tp, 0), message.offset + 1)

    def _held(self) -> set[TP]:
        return set(self.app.consumer.assignment()) if self.app.started else set()

    async def _measure_lag(self) -> None:
        try:
            await self._measure_lag_once()
        except Exception:
            # During a rebalance the consumer may not answer: the next tick will.
            log.debug("could not measure the consumer lag", exc_info=True)

    async def _measure_lag_once(self) -> None:
        held = self._held()
        ends = await self.app.consumer.highwaters(*held) if held else {}
        for tp in held:
            done = self._processed.get(tp)
            if done is None:
                # Nothing processed here since this worker got the partition: where it
                # reads next (ahead of processing only by the batch in hand).
                done = await self.app.consumer.position(tp)
            if done is not None and tp in ends:
                CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, ends[tp] - done))
        for tp in set(self._lag_shown) - held:
            CONSUMER_LAG.remove(tp.topic, str(tp.partition))
        self._lag_shown = held

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
