"""The running system: starts what a role needs, in order, and stops it cleanly.

Roles: ``up`` (everything in one process, embedded services unless external ones
are named), ``api`` (HTTP only) and ``worker`` (stream worker only); the last
two are for production with external Kafka and ClickHouse.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from typing import Literal

import orjson
from fastapi import FastAPI
from faust.contrib.asgi import faust_app_running

from coldchain.config import Settings
from coldchain.embedded import EmbeddedBroker
from coldchain.rulesets import RuleSetError, load_rule_set
from connectors.alertmanager import AlertmanagerSink
from connectors.ingest import Ingestor
from connectors.kafka import EventProducer, ensure_topics
from connectors.metrics import initialise as initialise_metrics
from connectors.spool import Spool
from connectors.store import LineageStore, open_store
from connectors.store_gauges import StoreGauges
from pipeline.app import Worker, WorkerConfig
from pipeline.evaluate import Evaluator
from pipeline.notify import Notifier
from pipeline.store_writer import StoreWriter
from schemas.alerts import Alert

log = logging.getLogger(__name__)

Role = Literal["up", "api", "worker"]

#: How often accepted events are checked against the store to trim the spool.
SPOOL_TRIM_SECONDS = 2.0
#: How long a stop waits for accepted events to reach the store.
DRAIN_SECONDS = 20.0


def utc_now() -> datetime:
    return datetime.now(UTC)


class ConfigurationError(RuntimeError):
    """The settings cannot run this role; the message says what to set."""


class Runtime:
    def __init__(
        self, settings: Settings, role: Role, clock: Callable[[], datetime] = utc_now
    ) -> None:
        if role != "up" and (settings.kafka_bootstrap is None or settings.clickhouse_url is None):
            raise ConfigurationError(
                f"`coldchain {role}` runs beside other processes and needs external services: "
                "set COLDCHAIN_KAFKA_BOOTSTRAP and COLDCHAIN_CLICKHOUSE_URL "
                "(or run everything in one process with `coldchain up`)"
            )
        self.settings = settings
        self.role = role
        try:
            self.rules = load_rule_set(settings.rules_file)
        except RuleSetError as exc:
            raise ConfigurationError(str(exc)) from None
        self.clock = clock
        self._stack = AsyncExitStack()
        self._store: LineageStore | None = None
        self._ingestor: Ingestor | None = None
        self._producer: EventProducer | None = None
        self._worker: Worker | None = None
        self._trimmer: asyncio.Task[None] | None = None
        self._gauges: asyncio.Task[None] | None = None
        self.bootstrap: str | None = settings.kafka_bootstrap

    @property
    def store(self) -> LineageStore:
        if self._store is None:
            raise RuntimeError("the runtime is not started")
        return self._store

    @property
    def ingestor(self) -> Ingestor:
        if self._ingestor is None:
            raise RuntimeError("the runtime is not started")
        return self._ingestor

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise

    async def _start(self) -> None:
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        bootstrap = settings.kafka_bootstrap
        if bootstrap is None:
            broker = EmbeddedBroker(log_path=settings.data_dir / "tansu.log")
            bootstrap = await broker.start()
            self._stack.push_async_callback(broker.stop)
            # Systems that produce straight to the topic find the embedded broker here.
            (settings.data_dir / "kafka-bootstrap").write_text(bootstrap + "\n")
            log.info("embedded broker (tansu) on %s", bootstrap)
        self.bootstrap = bootstrap
        await ensure_topics(bootstrap, settings.topics.all())

        store = open_store(settings.clickhouse_url, settings.data_dir)
        self._stack.push_async_callback(store.close)
        applied = await store.migrate()
        if applied:
            log.info("lineage store (%s): applied migrations %s", store.backend, applied)
        self._store = store

        producer = EventProducer(
            bootstrap,
            settings.topics.events,
            settings.topics.partitions,
            settings.topics.dead_letter,
        )
        await producer.start()
        self._stack.push_async_callback(producer.stop)
        self._producer = producer

        # A memory-only broker loses everything on restart: the spool keeps accepted events.
        spool = Spool(settings.data_dir / "spool") if settings.embedded_broker else None
        if spool is not None:
            self._stack.callback(spool.close)
        ingestor = Ingestor(store, producer, spool)
        self._stack.callback(ingestor.close)
        self._ingestor = ingestor

        sites = await store.sites()
        if self.role in ("up", "worker"):
            topics = settings.topics

            async def publish(alerts: Sequence[Alert]) -> None:
                await producer.send_grouped(
                    topics.alerts,
                    topics.partitions,
                    [(a.trace_code, a.model_dump_json().encode()) for a in alerts],
                )

            async def notify_sites(sites: dict[str, set[str]]) -> None:
                notices = [
                    (site, orjson.dumps({"site_id": site, "trace_codes": sorted(codes)}))
                    for site, codes in sorted(sites.items())
                ]
                await producer.send_grouped(topics.sites, topics.partitions, notices)

            notifier = None
            if settings.alertmanager_url:
                sink = AlertmanagerSink(settings.alertmanager_url, settings.console_url)
                self._stack.push_async_callback(sink.close)
                notifier = Notifier(
                    store, sink, topics.partitions, settings.alertmanager_repost_seconds
                )
                log.info("alerts go to Alertmanager at %s", settings.alertmanager_url)
                if self.role == "worker" and settings.public_url is None:
                    log.warning(
                        "COLDCHAIN_PUBLIC_URL is not set: the console links in pages point at "
                        "this worker (%s); set it to where people open the API",
                        settings.console_url,
                    )

            worker = Worker(
                WorkerConfig(
                    bootstrap=bootstrap,
                    group_id=settings.group_id,
                    events_topic=topics.events,
                    sites_topic=topics.sites,
                    alerts_topic=topics.alerts,
                    partitions=topics.partitions,
                    datadir=settings.data_dir / "faust",
                ),
                StoreWriter(store, producer.send_dead_letter, self.clock, sites),
                Evaluator(store, self.rules, self.clock, publish),
                notify_sites,
                notifier,
            )
            await self._stack.enter_async_context(faust_app_running(worker.app, stop_timeout=10))
            self._worker = worker

        await ingestor.replay_spool()
        if spool is not None:
            self._trimmer = asyncio.create_task(self._trim_forever(), name="spool-trim")
        initialise_metrics(sites, self._worker.consumed_topics if self._worker else ())
        if self.role in ("up", "api"):
            # A ClickHouse server takes a second connection, on a thread of its own, so
            # that the gauges' long reads do not hold up the API's; chdb has one session.
            gauges_store = store
            if settings.clickhouse_url is not None:
                gauges_store = open_store(settings.clickhouse_url, settings.data_dir)
                self._stack.push_async_callback(gauges_store.close)
            gauges = StoreGauges(gauges_store, self.rules, self.clock)
            self._gauges = asyncio.create_task(gauges.run(), name="store-gauges")
        if self._worker is not None:
            await asyncio.wait_for(self._worker.ready.wait(), timeout=60)
        log.info("coldchain %s started in %.1f s", self.role, time.monotonic() - started)

    async def stop(self) -> None:
        for task in (self._trimmer, self._gauges):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._ingestor is not None and self._worker is not None:
            await self._drain()
        await self._stack.aclose()

    async def _drain(self) -> None:
        """Wait until every accepted event is in the store (bounded), then let go."""
        deadline = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < deadline:
            if await self.ingestor.trim_spool() == 0:
                return
            await asyncio.sleep(0.2)
        log.warning(
            "stopped before the store held every accepted event; the next start replays them"
        )

    async def _trim_forever(self) -> None:
        while True:
            await asyncio.sleep(SPOOL_TRIM_SECONDS)
            try:
                await self.ingestor.trim_spool()
            except Exception:
                log.exception("could not trim the spool; will try again")

    async def health(self) -> dict[str, bool]:
        checks: dict[str, bool] = {}
        checks["broker"] = await _answers(self._producer.ping if self._producer else None)
        checks["store"] = await _answers(self._store.ping if self._store else None)
        if self.role in ("up", "worker"):
            checks["worker"] = self._worker is not None and self._worker.healthy
        return checks

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()


async def _answers(check: Callable[[], Awaitable[None]] | None) -> bool:
    if check is None:
        return False
    try:
        await asyncio.wait_for(check(), timeout=3)
    except Exception:
        return False
    return True
