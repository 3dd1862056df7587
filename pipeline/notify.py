"""Alert changes to the people on call (through an alert sink such as Alertmanager).

Changes come from the alerts topic in order per trace code and are posted as they
come; the sink retries until it is taken, and the topic keeps what is not posted
yet, so no change is lost when the sink or the worker is down. Alertmanager forgets
a firing alert it has not heard of for a while, so every worker posts again, every
``repost_seconds``, the firing alerts of the alerts-topic partitions it holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from typing import Protocol

from connectors.kafka import partition_for
from connectors.store import AlertFilter, LineageStore
from schemas.alerts import Alert


class AlertSink(Protocol):
    async def post(self, alerts: Sequence[Alert]) -> None:
        """Return once the sink has taken every alert (retrying as long as it takes)."""
        ...


class Notifier:
    def __init__(
        self, store: LineageStore, sink: AlertSink, partitions: int, repost_seconds: float
    ) -> None:
        self.repost_seconds = repost_seconds
        self._store = store
        self._sink = sink
        self._partitions = partitions
        # A repost reads the store and posts; a change posted in between must not be
        # overtaken by the older state the repost read.
        self._lock = asyncio.Lock()

    async def changes(self, alerts: Sequence[Alert]) -> None:
        async with self._lock:
            await self._sink.post(alerts)

    async def repost(self, partitions_held: Collection[int]) -> int:
        """Post again the firing alerts whose trace codes are in these partitions."""
        if not partitions_held:
            return 0
        async with self._lock:
            firing = [
                alert
                for alert in await self._store.list_alerts(AlertFilter(status="firing", limit=None))
                if partition_for(alert.trace_code.encode(), self._partitions) in partitions_held
            ]
            await self._sink.post(firing)
        return len(firing)
