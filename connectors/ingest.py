"""Accepting events: the one path the API, the importer and the demo share.

An event is *accepted* (202) only once it is safe: acknowledged by the broker
with acks=all and, when the broker keeps data only in memory, appended to the
on-disk spool first. The spool is replayed into the broker on start-up and
trimmed once the store holds every event of a segment.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import orjson

from connectors.kafka import EventProducer
from connectors.metrics import DUPLICATES, EVENTS_ACCEPTED
from connectors.spool import Spool
from connectors.store import LineageStore
from schemas.events import Event, canonical_json, content_hash

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Conflict:
    index: int
    event_id: str


class ConflictingEvents(Exception):
    """Some event_ids are already taken by different content; nothing was accepted."""

    def __init__(self, conflicts: list[Conflict]) -> None:
        self.conflicts = conflicts
        super().__init__(f"{len(conflicts)} event_id(s) already stand with different content")


@dataclass(frozen=True)
class Accepted:
    accepted: int
    duplicates: int


class Ingestor:
    """Checks duplicates and conflicts, makes events durable, hands them to the broker."""

    def __init__(
        self,
        store: LineageStore,
        producer: EventProducer,
        spool: Spool | None,
        *,
        recent_limit: int = 1_000_000,
    ) -> None:
        self._store = store
        self._producer = producer
        self._spool = spool
        self._spool_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool")
        # Accepted events the store may not hold yet: lets the API answer 409 at once
        # for a conflict that is still in flight. Bounded; the store covers the rest.
        self._recent: OrderedDict[str, str] = OrderedDict()
        self._recent_limit = recent_limit

    async def accept(self, events: Sequence[Event]) -> Accepted:
        hashes = [content_hash(e) for e in events]
        stored = await self._store.existing_hashes(sorted({e.event_id for e in events}))
        # From here to the reservation below there is no await: check and reserve are atomic.
        known: dict[str, str] = {}
        fresh: list[tuple[Event, str]] = []
        conflicts: list[Conflict] = []
        duplicates = 0
        for index, (event, digest) in enumerate(zip(events, hashes, strict=True)):
            standing = (
                known.get(event.event_id)
                or stored.get(event.event_id)
                or self._recent.get(event.event_id)
            )
            if standing is None:
                known[event.event_id] = digest
                fresh.append((event, digest))
            elif standing == digest:
                duplicates += 1
            else:
                conflicts.append(Conflict(index, event.event_id))
        if conflicts:
            raise ConflictingEvents(conflicts)
        self._reserve(fresh)
        payloads = [(event.trace_code, canonical_json(event)) for event, _ in fresh]
        try:
            if self._spool is not None and payloads:
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(
                    self._spool_thread, self._spool.append, [p for _, p in payloads]
                )
        except BaseException:
            self._release(fresh)
            raise
        # Once spooled, the events will reach the store after a restart even if the
        # broker fails now, so their reservation stands whatever happens next.
        if payloads:
            await self._producer.send_events(payloads)
        for event, _ in fresh:
            EVENTS_ACCEPTED.labels(event.site_id, event.event_type).inc()
        DUPLICATES.labels("api").inc(duplicates)
        return Accepted(accepted=len(events), duplicates=duplicates)

    def _reserve(self, fresh: list[tuple[Event, str]]) -> None:
        for event, digest in fresh:
            self._recent[event.event_id] = digest
        while len(self._recent) > self._recent_limit:
            self._recent.popitem(last=False)

    def _release(self, fresh: list[tuple[Event, str]]) -> None:
        for event, _ in fresh:
            self._recent.pop(event.event_id, None)

    async def replay_spool(self) -> int:
        """Send every spooled event to the broker again; returns how many."""
        if self._spool is None:
            return 0
        self._spool.seal()
        replayed = 0
        for segment in self._spool.sealed():
            for record in self._spool.read(segment):
                await self._producer.send_events([(_trace_code(p), p) for p in record])
                replayed += len(record)
        if replayed:
            log.info("replayed %d spooled events into the broker", replayed)
        return replayed

    async def trim_spool(self) -> int:
        """Drop spool segments whose events the store holds; returns how many are left."""
        if self._spool is None:
            return 0
        if self._spool.seal() is None and not self._spool.sealed():
            return 0
        for segment in self._spool.sealed():
            ids = sorted({_event_id(p) for record in self._spool.read(segment) for p in record})
            if not ids or len(await self._store.existing_hashes(ids)) == len(ids):
                self._spool.drop(segment)
        return len(self._spool.sealed())

    def close(self) -> None:
        self._spool_thread.shutdown(wait=True)


def _trace_code(payload: bytes) -> str:
    return str(orjson.loads(payload)["trace_code"])


def _event_id(payload: bytes) -> str:
    return str(orjson.loads(payload)["event_id"])
