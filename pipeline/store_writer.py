"""What the stream worker does with a batch of Kafka messages from the events topic.

Each message holds one event or a JSON array of events (contract section 4).
Every event is validated again (producers may write to the topic directly),
what fails goes to the dead-letter topic with the reason, and the rest is
written to the lineage store in one insert, once per ``event_id``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson

from connectors.metrics import (
    CONFLICTS,
    DUPLICATES,
    EVENTS_REJECTED,
    EVENTS_STORED,
    STORE_WRITE_SECONDS,
)
from connectors.store import ConflictRecord, EventRecord, LineageStore
from schemas.events import InvalidEvents, canonical_json, content_hash, validate_event

DeadLetterSink = Callable[[Mapping[str, object]], Awaitable[None]]


@dataclass(frozen=True)
class RawMessage:
    value: bytes | None
    timestamp: datetime  # the broker's timestamp: the "moment received" for the clock check
    topic: str
    partition: int
    offset: int


class StoreWriter:
    def __init__(
        self, store: LineageStore, dead_letter: DeadLetterSink, clock: Callable[[], datetime]
    ) -> None:
        self._store = store
        self._dead_letter = dead_letter
        self._clock = clock

    async def handle(self, messages: Sequence[RawMessage]) -> list[str]:
        """Store the batch; returns the trace codes that gained events (to evaluate)."""
        records: list[EventRecord] = []
        for message in messages:
            records.extend(await self._decode(message))
        if not records:
            return []
        stored = await self._store.existing_hashes(sorted({r.event.event_id for r in records}))
        fresh: dict[str, EventRecord] = {}
        conflicts: list[ConflictRecord] = []
        duplicates = 0
        for record in records:
            event_id = record.event.event_id
            standing = stored.get(event_id) or (
                fresh[event_id].content_hash if event_id in fresh else None
            )
            if standing is None:
                fresh[event_id] = record
            elif standing == record.content_hash:
                duplicates += 1
            else:
                conflicts.append(
                    ConflictRecord(
                        event_id=event_id,
                        stored_hash=standing,
                        conflicting_hash=record.content_hash,
                        conflicting_payload=canonical_json(record.event),
                        detected_at=self._clock(),
                    )
                )
        if fresh:
            started = time.perf_counter()
            await self._store.insert_events(list(fresh.values()))
            STORE_WRITE_SECONDS.observe(time.perf_counter() - started)
            for record in fresh.values():
                EVENTS_STORED.labels(record.event.event_type).inc()
        if conflicts:
            await self._store.insert_conflicts(conflicts)
            CONFLICTS.labels("worker").inc(len(conflicts))
        DUPLICATES.labels("worker").inc(duplicates)
        return sorted({record.event.trace_code for record in fresh.values()})

    async def _decode(self, message: RawMessage) -> list[EventRecord]:
        source = {"topic": message.topic, "partition": message.partition, "offset": message.offset}
        try:
            decoded = orjson.loads(message.value or b"")
        except orjson.JSONDecodeError as exc:
            await self._reject(source, "message value is not JSON", str(exc), message.value)
            return []
        items = decoded if isinstance(decoded, list) else [decoded]
        records = []
        for index, item in enumerate(items):
            try:
                event = validate_event(item, message.timestamp, index)
            except InvalidEvents as exc:
                errors = [e.model_dump() for e in exc.errors]
                await self._reject(source, "event failed validation", errors, item)
                continue
            records.append(EventRecord(event, content_hash(event), message.timestamp))
        return records

    async def _reject(
        self, source: dict[str, object], reason: str, errors: object, value: object
    ) -> None:
        if isinstance(value, bytes):
            value = value.decode("utf-8", errors="replace")
        await self._dead_letter(
            {
                "reason": reason,
                "errors": errors,
                "value": value,
                "source": source,
                "detected_at": self._clock().isoformat(),
            }
        )
        EVENTS_REJECTED.labels("dead_letter").inc()
