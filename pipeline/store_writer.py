"""What the stream worker does with a batch of Kafka messages from the events topic.

Each message holds one event or a JSON array of events (contract section 4).
Every event is validated again (producers may write to the topic directly),
what fails goes to the dead-letter topic with the reason, and the rest is
written to the lineage store in one insert, once per ``event_id``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson

from connectors.metrics import (
    CONFLICTS,
    DUPLICATES,
    EVENT_DELAY,
    EVENTS_STORED,
    PIPELINE_LATENCY,
    UNKNOWN,
    count_rejected,
    event_type_label,
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
        self,
        store: LineageStore,
        dead_letter: DeadLetterSink,
        clock: Callable[[], datetime],
        known_sites: Iterable[str] = (),
    ) -> None:
        self._store = store
        self._dead_letter = dead_letter
        self._clock = clock
        #: Sites with stored events: the only site labels a dead letter may carry.
        self._known_sites = set(known_sites)

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
            await self._store.insert_events(list(fresh.values()))
            now = self._clock()
            tally = Counter((r.event.site_id, r.event.event_type) for r in fresh.values())
            for (site_id, event_type), n in tally.items():
                EVENTS_STORED.labels(site_id, event_type).inc(n)
                self._known_sites.add(site_id)
            for record in fresh.values():
                EVENT_DELAY.observe((now - record.event.occurred_at).total_seconds())
                PIPELINE_LATENCY.observe((now - record.received_at).total_seconds())
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
            count_rejected("dead_letter", [(UNKNOWN, UNKNOWN)])
            return []
        items = decoded if isinstance(decoded, list) else [decoded]
        records = []
        for index, item in enumerate(items):
            try:
                event = validate_event(item, message.timestamp, index)
            except InvalidEvents as exc:
                errors = [e.model_dump() for e in exc.errors]
                await self._reject(source, "event failed validation", errors, item)
                count_rejected("dead_letter", [self._labels(item)])
                continue
            records.append(EventRecord(event, content_hash(event), message.timestamp))
        return records

    def _labels(self, item: object) -> tuple[str, str]:
        """(site_id, event_type) labels of a refused item: no token vouches for a site
        here, so only a site that already has stored events is one."""
        fields = item if isinstance(item, dict) else {}
        site = fields.get("site_id")
        known = site if isinstance(site, str) and site in self._known_sites else UNKNOWN
        return known, event_type_label(fields.get("event_type"))

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
