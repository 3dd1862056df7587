"""The lineage store: every accepted event, queryable by trace code.

Two backends run the same SQL: chdb embedded in this process (the default, data in
``data_dir``) and a ClickHouse server reached with clickhouse-driver. Where an event_id
was received more than once, the first received version stands, in every read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

from connectors.store._base import (
    AlertFilter,
    ConflictRecord,
    EventRecord,
    StoreError,
)
from schemas.alerts import Alert
from schemas.events import Event

__all__ = [
    "AlertFilter",
    "ConflictRecord",
    "EventRecord",
    "LineageStore",
    "StoreError",
    "open_store",
]


class LineageStore(Protocol):
    """Where events and conflicts are kept; every method runs on the store's own thread."""

    backend: str  # "chdb" or "clickhouse"

    async def migrate(self) -> list[str]:
        """Apply pending schema migrations; returns the names applied by this call."""
        ...

    async def ping(self) -> None:
        """Raise :class:`StoreError` if the store does not answer."""
        ...

    async def insert_events(self, records: Sequence[EventRecord]) -> None:
        """Store a batch of events with one insert."""
        ...

    async def existing_hashes(self, event_ids: Sequence[str]) -> dict[str, str]:
        """event_id -> content hash of the stored (first received) version, for known ids."""
        ...

    async def insert_conflicts(self, conflicts: Sequence[ConflictRecord]) -> None:
        """Record rejected versions of events with one insert."""
        ...

    async def events_of(self, trace_code: str) -> list[Event]:
        """All events of the trace code, each event_id once (its first received version),
        ordered by occurred_at, then intake < disinfection < nucleic_test < outbound < sale,
        then event_id."""
        ...

    async def children_of(self, trace_code: str) -> list[str]:
        """Distinct trace codes whose intake lists ``trace_code`` in parent_trace_codes."""
        ...

    async def events_of_many(self, trace_codes: Sequence[str]) -> dict[str, list[Event]]:
        """Each trace code's events, as :meth:`events_of` gives them, read together."""
        ...

    async def insert_alerts(self, alerts: Sequence[Alert], updated_at: datetime) -> None:
        """Store alert changes with one insert; the latest ``updated_at`` of an id stands."""
        ...

    async def alerts_of(self, trace_codes: Sequence[str]) -> list[Alert]:
        """Every alert, firing or resolved, of these trace codes."""
        ...

    async def list_alerts(self, query: AlertFilter) -> list[Alert]:
        """Alerts matching the filter, most recently detected first."""
        ...

    async def codes_beside(
        self, site_id: str, stays: Mapping[str, tuple[datetime, datetime | None]]
    ) -> list[str]:
        """Codes that may have had stock at the site in these zones during these times."""
        ...

    async def site_activity(self) -> dict[str, datetime]:
        """Every site that ever had an event -> when its newest event was received."""
        ...

    async def firing_counts(self) -> list[tuple[str, str, str, int]]:
        """(type, severity, site_id, number) of the alerts firing now."""
        ...

    async def sites(self) -> list[str]:
        """Every site that ever had an event."""
        ...

    async def events_between(
        self, start: datetime, end: datetime, site_ids: Sequence[str]
    ) -> list[Event]:
        """Events at these sites that occurred in [start, end)."""
        ...

    async def alerts_between(
        self, start: datetime, end: datetime, site_ids: Sequence[str]
    ) -> list[Alert]:
        """Alerts at these sites whose event occurred in [start, end)."""
        ...

    async def close(self) -> None:
        """Release the backend; the store cannot be used afterwards."""
        ...


def open_store(clickhouse_url: str | None, data_dir: Path) -> LineageStore:
    """The ClickHouse server at ``clickhouse_url``, or chdb in ``data_dir`` when it is None.

    Call :meth:`LineageStore.migrate` before use. Opening chdb takes the data dir's lock
    (blocking for ~0.1 s); the server is first contacted by the first call.
    """
    # Imported here so that the server backend never loads chdb's 500 MB engine.
    if clickhouse_url is None:
        from connectors.store._chdb import ChdbStore

        return ChdbStore(data_dir)
    from connectors.store._driver import DriverStore

    return DriverStore(clickhouse_url)
