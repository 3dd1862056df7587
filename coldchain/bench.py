"""`coldchain bench`: throughput and event-to-alert latency of the embedded stack, measured.

Everything runs in this one process exactly as ``coldchain up`` runs it (through
:class:`coldchain.runtime.Runtime`: tansu, chdb and one faust worker), on a fresh data
dir, in two phases:

1. **Throughput.** N generated events of realistic shape (imported batches of 5-8
   events: intake at a port, disinfection, a negative nucleic test, outbound, intake at
   a cold storage, sales; deterministic for a seed) are produced straight to the events
   topic with :meth:`EventProducer.send_events` (the API's message shape: one JSON array
   per partition) as fast as the producer goes. Measured from the first produce until
   the store holds every event, until the per-batch rules have caught up (a sentinel
   batch behind the data on every events partition raises ``missing_disinfection``),
   and until the per-zone rules have caught up (then a sentinel on every partition of
   the sites topic raises ``mixed_storage``).
2. **Latency.** With the system idle, M single-batch scenarios (an imported intake and
   an outbound with no disinfection) go through ``runtime.ingestor.accept`` (the API's
   path to its 202) at a steady pace; each is timed from just before ``accept()`` until
   its ``missing_disinfection`` alert arrives on the alerts topic.

Speed is measured here and never asserted in tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging
import math
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any, Final

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from rich.console import Console
from rich.table import Table

from coldchain.config import Settings
from coldchain.runtime import Runtime
from connectors.kafka import EventProducer, partition_for
from connectors.store import LineageStore
from connectors.store._base import SqlStore
from schemas.events import Event, canonical_json, validate_event

DEFAULT_EVENTS: Final = 200_000
DEFAULT_BATCH_SIZE: Final = 500
DEFAULT_LATENCY_SAMPLES: Final = 300
DEFAULT_TIMEOUT_SECONDS: Final = 900.0
SEED: Final = 20_201_104

#: Pace of the latency phase: one scenario every this many seconds.
LATENCY_INTERVAL_SECONDS: Final = 0.03
#: How long the latency phase waits for the last alerts after the last accept().
LATENCY_GRACE_SECONDS: Final = 60.0
#: How often the throughput phase looks at the store (a point lookup of <= partitions ids).
POLL_SECONDS: Final = 0.1
#: The bench's own alerts consumer; tansu holds a fetch for its whole wait even when data
#: is there (PLATFORM.md), so this bounds the resolution of the latency figures.
ALERTS_FETCH_WAIT_MS: Final = 10

#: Generated batches occur between these moments: well in the past, so they pass the
#: contract's 10-minute future check whenever the bench runs, and the same every run.
HISTORY_START: Final = datetime(2025, 3, 1, tzinfo=UTC)
HISTORY_DAYS: Final = 60

DATA_PREFIX: Final = "BX"
PORTS: Final = tuple(f"PORT-{i:02d}" for i in range(1, 7))
COLD_STORAGES: Final = tuple(f"CS-{i:03d}" for i in range(1, 45))
PRODUCTS: Final = (
    ("冷冻牛肉 frozen beef", "BR"),
    ("冷冻牛肉 frozen beef", "AR"),
    ("冷冻猪肉 frozen pork", "ES"),
    ("冷冻猪肉 frozen pork", "DK"),
    ("冷冻鸡翅 frozen chicken wings", "US"),
    ("冷冻白虾 frozen white shrimp", "EC"),
    ("冷冻三文鱼 frozen salmon", "NO"),
    ("冷冻带鱼 frozen hairtail", "IN"),
    ("冷冻羊肉 frozen mutton", "NZ"),
    ("冷冻鳕鱼 frozen cod", "RU"),
)

LOGGERS: Final = ("faust", "mode", "aiokafka", "kafka", "coldchain", "connectors", "pipeline")

log = logging.getLogger(__name__)


class BenchError(RuntimeError):
    """The benchmark could not run to the end; the message says where it stopped."""


class Progress:
    """Progress lines on stderr, each with the seconds since the run began."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._start = time.perf_counter()

    def __call__(self, message: str) -> None:
        elapsed = time.perf_counter() - self._start
        self._console.print(f"[{elapsed:6.1f} s] {message}", markup=False, highlight=False)


# --------------------------------------------------------------------------- workload


@dataclass
class Workload:
    """Generated events, grouped for producing, with what the waits look for."""

    chunks: list[list[tuple[str, bytes]]]  # one send_events call each
    events: int
    batches: int
    #: Kafka messages send_events makes of the chunks (one per partition per call)
    messages: int
    #: events partition -> the last event id produced to it
    last_ids: dict[int, str]
    generate_seconds: float


def _quantity(rng: random.Random, low: int, high: int) -> float:
    return rng.randint(low, high) + rng.choice((0, 0, 0.5, 0.25, 0.125))


def _batch(rng: random.Random, code: str) -> list[dict[str, Any]]:
    """One imported batch's history (5-8 raw events), in occurred_at order."""
    port = rng.choice(PORTS)
    store = rng.choice(COLD_STORAGES)
    product, country = rng.choice(PRODUCTS)
    quantity = _quantity(rng, 2_000, 24_000)
    t = HISTORY_START + timedelta(seconds=rng.randrange(HISTORY_DAYS * 86_400))
    ids = count(1)

    def event(kind: str, site: str, after_minutes: int, **fields: Any) -> dict[str, Any]:
        nonlocal t
        t += timedelta(minutes=after_minutes)
        return {
            "event_id": f"{code}-{next(ids)}",
            "event_type": kind,
            "trace_code": code,
            "site_id": site,
            "occurred_at": t.isoformat(),
            **fields,
        }

    port_zone = f"A{rng.randint(1, 4)}"
    store_zone = f"F{rng.randint(1, 6)}"
    history = [
        event(
            "intake",
            port,
            0,
            zone_id=port_zone,
            origin="imported",
            product=product,
            country_of_origin=country,
            quantity_kg=quantity,
            customs_declaration_no=f"2205{rng.randrange(10**14):014d}",
            quarantine_cert_no=f"QC{rng.randrange(10**10):010d}",
        ),
        event(
            "disinfection",
            port,
            rng.randint(30, 240),
            certificate_no=f"XD-{rng.randrange(10**8):08d}",
            method="spray",
            agent="过氧乙酸 peracetic acid",
        ),
        event(
            "nucleic_test",
            port,
            rng.randint(30, 360),
            result="negative",
            report_no=f"HS-{rng.randrange(10**8):08d}",
            sample_type=rng.choice(("packaging", "product")),
            lab="海关技术中心 customs lab",
        ),
    ]
    extras = rng.randint(0, 2)
    if extras == 2:
        history.append(
            event(
                "nucleic_test",
                port,
                rng.randint(60, 600),
                result="negative",
                report_no=f"HS-{rng.randrange(10**8):08d}",
                sample_type="product",
            )
        )
    history.append(
        event(
            "outbound",
            port,
            rng.randint(600, 2_880),
            quantity_kg=quantity,
            to_site_id=store,
            zone_id=port_zone,
            vehicle_plate=f"沪A{rng.randrange(10**5):05d}",
        )
    )
    history.append(
        event(
            "intake",
            store,
            rng.randint(60, 480),
            zone_id=store_zone,
            origin="imported",
            product=product,
            country_of_origin=country,
            quantity_kg=quantity,
            from_site_id=port,
        )
    )
    sales = 1 if extras == 0 else 2
    for _ in range(sales):
        history.append(
            event(
                "sale",
                store,
                rng.randint(600, 7_200),
                quantity_kg=_quantity(rng, 100, int(quantity // 3)),
                zone_id=store_zone,
                buyer=f"客户 buyer {rng.randint(1, 500)}",
            )
        )
    return history


def generate(events: int, batch_size: int, partitions: int, seed: int = SEED) -> Workload:
    """``events`` valid events of imported batches, chunked so that each send_events call
    makes messages of about ``batch_size`` events; a batch never spans two calls."""
    started = time.perf_counter()
    rng = random.Random(seed)  # noqa: S311 - a reproducible workload, not secrets
    per_call = batch_size * partitions
    chunks: list[list[tuple[str, bytes]]] = []
    chunk: list[tuple[str, bytes]] = []
    last_ids: dict[int, str] = {}
    touched: set[int] = set()  # partitions of the current chunk
    messages = 0
    produced = 0
    batches = 0
    while produced < events:
        code = f"{DATA_PREFIX}{seed % 1000:03d}-{batches:07d}"
        # A prefix of a history is a clean history too: the last batch may be cut short.
        history = _batch(rng, code)[: events - produced]
        batches += 1
        if chunk and len(chunk) + len(history) > per_call:
            chunks.append(chunk)
            messages += len(touched)
            chunk, touched = [], set()
        for raw in history:
            chunk.append((code, canonical_json(validate_event(raw, None))))
        partition = partition_for(code.encode(), partitions)
        touched.add(partition)
        last_ids[partition] = history[-1]["event_id"]
        produced += len(history)
    if chunk:
        chunks.append(chunk)
        messages += len(touched)
    return Workload(chunks, produced, batches, messages, last_ids, time.perf_counter() - started)


def _keys_by_partition(prefix: str, partitions: int) -> list[str]:
    """One key per partition (index = partition), as the default partitioner places it."""
    found: dict[int, str] = {}
    for i in count():
        key = f"{prefix}{i}"
        found.setdefault(partition_for(key.encode(), partitions), key)
        if len(found) == partitions:
            return [found[p] for p in range(partitions)]
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Sentinels:
    """Batches behind the data on every partition, each raising a known alert."""

    imported: list[str]  # events partition p -> an imported code hashing to p
    domestic: list[str]
    sites: list[str]  # sites partition p -> a site hashing to p
    at: datetime

    @classmethod
    def make(cls, partitions: int) -> Sentinels:
        return cls(
            imported=_keys_by_partition("SENTINEL-IMP-", partitions),
            domestic=_keys_by_partition("SENTINEL-DOM-", partitions),
            sites=_keys_by_partition("SENTINEL-SITE-", partitions),
            at=HISTORY_START + timedelta(days=HISTORY_DAYS + 10),
        )

    def batch_rule_events(self) -> list[tuple[str, bytes]]:
        """Per events partition: an imported intake and an outbound with no disinfection."""
        payloads = []
        for code, site in zip(self.imported, self.sites, strict=True):
            for raw in (
                _raw_intake(code, site, self.at, "imported", 100),
                _raw_outbound(code, site, self.at + timedelta(hours=2), 10),
            ):
                payloads.append((code, canonical_json(validate_event(raw, None))))
        return payloads

    def zone_rule_events(self) -> list[tuple[str, bytes]]:
        """Per sites partition: a domestic batch beside the imported one, in its zone."""
        return [
            (
                code,
                canonical_json(
                    validate_event(
                        _raw_intake(code, site, self.at + timedelta(hours=1), "domestic", 50),
                        None,
                    )
                ),
            )
            for code, site in zip(self.domestic, self.sites, strict=True)
        ]


def _raw_intake(code: str, site: str, at: datetime, origin: str, quantity: float) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "event_id": f"{code}-intake",
        "event_type": "intake",
        "trace_code": code,
        "site_id": site,
        "occurred_at": at.isoformat(),
        "zone_id": "Z1",
        "origin": origin,
        "product": "冷冻牛肉 frozen beef",
        "quantity_kg": quantity,
    }
    if origin == "imported":
        raw["country_of_origin"] = "BR"
    return raw


def _raw_outbound(code: str, site: str, at: datetime, quantity: float) -> dict[str, Any]:
    return {
        "event_id": f"{code}-outbound",
        "event_type": "outbound",
        "trace_code": code,
        "site_id": site,
        "occurred_at": at.isoformat(),
        "quantity_kg": quantity,
        "to_site_id": COLD_STORAGES[0],
    }


# --------------------------------------------------------------------------- alerts


@dataclass
class Arrival:
    perf: float  # time.perf_counter() when the bench's consumer got it
    wall: float  # time.time() then
    detected_at: float  # the alert's detected_at (the worker's wall clock), epoch seconds


@dataclass
class AlertWatch:
    """Reads the alerts topic from the start; remembers the first firing of each
    (trace code, type) and counts the alerts nobody asked for."""

    bootstrap: str
    topic: str
    partitions: int
    expected_prefixes: tuple[str, ...]
    seen: dict[tuple[str, str], Arrival] = field(default_factory=dict)
    unexpected: dict[str, int] = field(default_factory=dict)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _consumer: AIOKafkaConsumer | None = None
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=ALERTS_FETCH_WAIT_MS,
        )
        await consumer.start()
        # Assigned, not subscribed: no group join to wait for; from the start of the topic,
        # which is fresh (no ListOffsets(latest), which tansu gets wrong).
        consumer.assign([TopicPartition(self.topic, p) for p in range(self.partitions)])
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(consumer), name="bench-alerts")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        async for message in consumer:
            perf, wall = time.perf_counter(), time.time()
            for alert in orjson.loads(message.value or b"[]"):
                if alert.get("status") != "firing":
                    continue
                code, kind = alert["trace_code"], alert["type"]
                if not code.startswith(self.expected_prefixes):
                    self.unexpected[kind] = self.unexpected.get(kind, 0) + 1
                    continue
                detected = datetime.fromisoformat(alert["detected_at"]).timestamp()
                self.seen.setdefault((code, kind), Arrival(perf, wall, detected))
            self._changed.set()

    async def wait_for(self, keys: Iterable[tuple[str, str]], deadline: float) -> float:
        """Wait (until ``deadline``, a perf_counter time) until every key has arrived;
        returns the perf_counter time of the last arrival."""
        wanted = list(keys)
        while True:
            missing = [k for k in wanted if k not in self.seen]
            if not missing:
                return max(self.seen[k].perf for k in wanted)
            if self._task is not None and self._task.done():
                raise BenchError(f"the alerts consumer stopped: {self._task.exception()!r}")
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise BenchError(
                    f"{len(missing)} of {len(wanted)} expected alerts never arrived "
                    f"(first missing: {missing[0]})"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 1.0))


# --------------------------------------------------------------------------- phases


async def _count_stored(store: LineageStore, prefix: str) -> int:
    """Distinct event_ids under ``prefix`` in the store: one SQL count, once."""
    if not isinstance(store, SqlStore):
        raise BenchError(f"cannot count the events of a {type(store).__name__}")
    rows = await store._run(
        store._query,
        "SELECT count() AS n FROM event_ids FINAL WHERE startsWith(event_id, %(prefix)s)",
        {"prefix": prefix},
    )
    return int(rows[0]["n"])


async def _wait_stored(store: LineageStore, ids: Sequence[str], deadline: float) -> float:
    """Poll until the store holds every one of ``ids``; returns when it first did."""
    while True:
        found = await store.existing_hashes(ids)
        now = time.perf_counter()
        if len(found) == len(ids):
            return now
        if now > deadline:
            raise BenchError(
                f"the store held {len(found)} of the last {len(ids)} produced event ids "
                "when the time ran out"
            )
        await asyncio.sleep(POLL_SECONDS)


async def _throughput(
    runtime: Runtime,
    producer: EventProducer,
    watch: AlertWatch,
    workload: Workload,
    sentinels: Sentinels,
    timeout: float,  # noqa: ASYNC109 - one budget for several waits
    say: Progress,
) -> dict[str, Any]:
    say(f"producing {workload.events:,} events in {len(workload.chunks)} send_events calls …")
    t0 = time.perf_counter()
    for chunk in workload.chunks:
        await producer.send_events(chunk)
    t_produced = time.perf_counter()
    # Right behind the data on every events partition: evaluated only once the data is.
    await producer.send_events(sentinels.batch_rule_events())
    deadline = t0 + timeout
    say(f"produced in {t_produced - t0:.1f} s; waiting for the store …")
    t_stored = await _wait_stored(runtime.store, list(workload.last_ids.values()), deadline)
    say(f"stored in {t_stored - t0:.1f} s; waiting for the per-batch rules …")
    t_batches = await watch.wait_for(
        [(code, "missing_disinfection") for code in sentinels.imported], deadline
    )
    # Every site notification the data caused is on the sites topic now; these go behind it.
    await producer.send_events(sentinels.zone_rule_events())
    say(f"per-batch rules in {t_batches - t0:.1f} s; waiting for the per-zone rules …")
    t_zones = await watch.wait_for(
        [(code, "mixed_storage") for code in sentinels.imported], deadline
    )
    say(f"per-zone rules in {t_zones - t0:.1f} s")
    stored = await _count_stored(runtime.store, DATA_PREFIX)
    n = workload.events
    return {
        "events": n,
        "batches": workload.batches,
        "messages": workload.messages,
        "events_per_message": round(n / workload.messages, 1),
        "stored_events": stored,
        "unexpected_alerts": sum(watch.unexpected.values()),
        "unexpected_alert_types": dict(watch.unexpected),
        "produce_seconds": round(t_produced - t0, 3),
        "produce_events_per_s": round(n / (t_produced - t0)),
        "stored_seconds": round(t_stored - t0, 3),
        "stored_events_per_s": round(n / (t_stored - t0)),
        "batch_rules_seconds": round(t_batches - t0, 3),
        "batch_rules_events_per_s": round(n / (t_batches - t0)),
        "evaluated_seconds": round(t_zones - t0, 3),
        "evaluated_events_per_s": round(n / (t_zones - t0)),
    }


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def latency_scenario(i: int, now: datetime) -> tuple[str, list[Event]]:
    code = f"LAT-{i:05d}"
    site = PORTS[i % len(PORTS)]
    at = now - timedelta(hours=1)
    raws = [
        _raw_intake(code, site, at, "imported", 500),
        _raw_outbound(code, site, at + timedelta(minutes=30), 100),
    ]
    return code, [validate_event(raw, now) for raw in raws]


async def _latency(
    runtime: Runtime,
    watch: AlertWatch,
    samples: int,
    timeout: float,  # noqa: ASYNC109 - one budget for several waits
    say: Progress,
) -> dict[str, Any]:
    now = datetime.now(UTC)
    scenarios = [latency_scenario(i, now) for i in range(samples)]
    say(f"latency: {samples} scenarios, one every {LATENCY_INTERVAL_SECONDS * 1000:.0f} ms …")
    sent: dict[str, tuple[float, float]] = {}  # code -> (perf, wall) just before accept()
    accept_ms: list[float] = []
    start = time.perf_counter()
    for i, (code, events) in enumerate(scenarios):
        await asyncio.sleep(max(0.0, start + i * LATENCY_INTERVAL_SECONDS - time.perf_counter()))
        before, wall = time.perf_counter(), time.time()
        await runtime.ingestor.accept(events)
        accept_ms.append((time.perf_counter() - before) * 1000)
        sent[code] = (before, wall)
    deadline = time.perf_counter() + min(timeout, LATENCY_GRACE_SECONDS)
    # accept() is awaited before the next is sent (as one client would): when it takes
    # longer than the interval, the pace falls behind; the report shows the pace achieved.
    sending = time.perf_counter() - start
    say(f"sent in {sending:.1f} s; waiting for their alerts …")
    await watch.wait_for([(code, "missing_disinfection") for code in sent], deadline)
    say(f"every alert arrived {time.perf_counter() - start:.1f} s after the first accept()")
    total: list[float] = []
    to_detected: list[float] = []
    to_arrival: list[float] = []
    for code, (before, wall) in sent.items():
        arrival = watch.seen[(code, "missing_disinfection")]
        total.append((arrival.perf - before) * 1000)
        to_detected.append((arrival.detected_at - wall) * 1000)
        to_arrival.append((arrival.wall - arrival.detected_at) * 1000)

    def ms(value: float) -> float:
        return round(value, 1)

    return {
        "samples": samples,
        "alerts_received": len(total),
        "interval_ms": LATENCY_INTERVAL_SECONDS * 1000,
        "achieved_interval_ms": ms(sending / samples * 1000),
        "p50_ms": ms(percentile(total, 0.50)),
        "p90_ms": ms(percentile(total, 0.90)),
        "p99_ms": ms(percentile(total, 0.99)),
        "max_ms": ms(max(total)),
        "accept_p50_ms": ms(percentile(accept_ms, 0.50)),
        "accept_p99_ms": ms(percentile(accept_ms, 0.99)),
        "to_detected_p50_ms": ms(percentile(to_detected, 0.50)),
        "to_detected_p99_ms": ms(percentile(to_detected, 0.99)),
        "detected_to_arrival_p50_ms": ms(percentile(to_arrival, 0.50)),
        "detected_to_arrival_p99_ms": ms(percentile(to_arrival, 0.99)),
    }


# --------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, Any]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "python": sys.version.split()[0],
        "faust-streaming": _version("faust-streaming"),
        "aiokafka": _version("aiokafka"),
        "chdb": _version("chdb"),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


# --------------------------------------------------------------------------- running


@dataclass(frozen=True)
class BenchOptions:
    events: int = DEFAULT_EVENTS
    batch_size: int = DEFAULT_BATCH_SIZE
    latency_samples: int = DEFAULT_LATENCY_SAMPLES
    data_dir: Path | None = None
    timeout: float = DEFAULT_TIMEOUT_SECONDS


async def run_bench(options: BenchOptions, data_dir: Path, say: Progress) -> dict[str, Any]:
    """Both phases on a runtime in ``data_dir`` (which must be empty); the report."""
    settings = Settings.from_env(env={}, data_dir=data_dir)
    topics = settings.topics
    report: dict[str, Any] = {"machine": machine()}
    say(f"generating {options.events:,} events …")
    workload = generate(options.events, options.batch_size, topics.partitions)
    sentinels = Sentinels.make(topics.partitions)
    report["config"] = {
        "events": options.events,
        "batch_size": options.batch_size,
        "latency_samples": options.latency_samples,
        "partitions": topics.partitions,
        "seed": SEED,
        "generate_seconds": round(workload.generate_seconds, 2),
    }
    runtime = Runtime(settings, "up")
    say("starting the embedded stack (tansu, chdb, faust worker) …")
    started = time.perf_counter()
    await runtime.start()
    report["config"]["start_seconds"] = round(time.perf_counter() - started, 2)
    assert runtime.bootstrap is not None  # set by start()
    producer = EventProducer(
        runtime.bootstrap, topics.events, topics.partitions, topics.dead_letter
    )
    watch = AlertWatch(runtime.bootstrap, topics.alerts, topics.partitions, ("SENTINEL-", "LAT-"))
    try:
        await producer.start()
        await watch.start()
        report["throughput"] = await _throughput(
            runtime, producer, watch, workload, sentinels, options.timeout, say
        )
        if options.latency_samples > 0:
            report["latency"] = await _latency(
                runtime, watch, options.latency_samples, options.timeout, say
            )
    finally:
        say("stopping …")
        stopping = time.perf_counter()
        await watch.stop()
        await producer.stop()
        await runtime.stop()
        report["config"]["stop_seconds"] = round(time.perf_counter() - stopping, 2)
        say(f"stopped in {report['config']['stop_seconds']} s")
    return report


def _table(report: dict[str, Any]) -> Table:
    table = Table(title="coldchain bench", show_header=True, header_style="bold")
    table.add_column("figure", overflow="fold")
    table.add_column("value", justify="right", overflow="fold")
    config = report["config"]
    throughput = report["throughput"]
    rows: list[tuple[str, str]] = [
        ("events (batches)", f"{throughput['events']:,} ({throughput['batches']:,})"),
        (
            "messages produced (events each)",
            f"{throughput['messages']:,} ({throughput['events_per_message']})",
        ),
        ("partitions", str(config["partitions"])),
        ("produce", _rate(throughput, "produce")),
        ("stored", _rate(throughput, "stored")),
        ("stored + per-batch rules", _rate(throughput, "batch_rules")),
        ("stored + evaluated (all rules)", _rate(throughput, "evaluated")),
        ("events in the store", f"{throughput['stored_events']:,}"),
        ("alerts from the generated data", str(throughput["unexpected_alerts"])),
    ]
    latency = report.get("latency")
    if latency is not None:
        rows += [
            (
                "event→alert latency p50 / p90 / p99 / max",
                f"{latency['p50_ms']} / {latency['p90_ms']} / {latency['p99_ms']} / "
                f"{latency['max_ms']} ms",
            ),
            (
                "  samples (one every: planned, achieved)",
                f"{latency['alerts_received']}/{latency['samples']} "
                f"({latency['interval_ms']:.0f} ms, {latency['achieved_interval_ms']:.0f} ms)",
            ),
            (
                "  accept() p50 / p99",
                f"{latency['accept_p50_ms']} / {latency['accept_p99_ms']} ms",
            ),
            (
                "  accept→detected p50 / p99",
                f"{latency['to_detected_p50_ms']} / {latency['to_detected_p99_ms']} ms",
            ),
            (
                "  detected→on alerts topic p50 / p99",
                f"{latency['detected_to_arrival_p50_ms']} / "
                f"{latency['detected_to_arrival_p99_ms']} ms",
            ),
        ]
    m = report["machine"]
    rows += [
        ("platform", m["platform"]),
        ("cpu", f"{m['cpu']} × {m['cores']} (usable {m['usable_cores']})"),
        ("python", m["python"]),
        (
            "faust-streaming / aiokafka / chdb",
            f"{m['faust-streaming']} / {m['aiokafka']} / {m['chdb']}",
        ),
        ("load average at start", " ".join(str(x) for x in m["load_average_at_start"])),
        ("generate / start-up", f"{config['generate_seconds']} s / {config['start_seconds']} s"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def _rate(throughput: dict[str, Any], name: str) -> str:
    return f"{throughput[f'{name}_events_per_s']:,} events/s ({throughput[f'{name}_seconds']} s)"


def quiet_logging() -> None:
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def main(options: BenchOptions, as_json: bool) -> int:
    """Run the benchmark and print it; returns the exit code."""
    quiet_logging()
    # With --json, stdout holds the JSON alone; the table and progress go to stderr.
    out = Console(stderr=as_json, soft_wrap=True)
    console = Console(stderr=True, soft_wrap=True, style="dim")
    say = Progress(console)
    if options.data_dir is not None:
        data_dir = options.data_dir
        if data_dir.exists() and any(data_dir.iterdir()):
            console.print(f"coldchain bench: {data_dir} is not empty; give an empty or new dir")
            return 2
        cleanup = None
    else:
        cleanup = tempfile.mkdtemp(prefix="coldchain-bench-")
        data_dir = Path(cleanup) / "data"
    try:
        report = asyncio.run(run_bench(options, data_dir, say))
    except BenchError as exc:
        console.print(f"coldchain bench: {exc}", style="bold red", markup=False)
        return 1
    finally:
        if cleanup is not None:
            shutil.rmtree(cleanup, ignore_errors=True)
    out.print(_table(report))
    if as_json:
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0
