"""Gauges read from the lineage store, refreshed in the background of the API process.

They describe the whole system rather than one process (which sites went silent,
which alerts fire, how many releases had their certificates), so they come from
the store, survive restarts, and mean the same whichever API replica is scraped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Final

from prometheus_client import Gauge

from connectors.metrics import (
    ALERTS_FIRING,
    SITE_COVERAGE,
    SITE_LAST_EVENT,
    SITE_RELEASED,
    SITE_REPORT_INTERVAL,
)
from connectors.store import LineageStore
from pipeline.rules.compliance import release_coverage
from schemas.rules import RuleSet

log = logging.getLogger(__name__)

REFRESH_SECONDS: Final = 15.0
#: The coverage read scans a week of events and their batches' histories on the store's
#: one thread (2.3 s on a 1M-event store with 19k events that week): rarely.
COVERAGE_REFRESH_SECONDS: Final = 300.0
COVERAGE_SPAN: Final = timedelta(days=7)

Labels = tuple[str, ...]


class StoreGauges:
    def __init__(self, store: LineageStore, rules: RuleSet, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._rules = rules
        self._clock = clock
        self._coverage_at: datetime | None = None
        self._coverage_sites: list[str] = []
        self._firing_seen: set[Labels] = set()
        self._coverage_seen: set[Labels] = set()

    async def run(self) -> None:
        """Refresh forever; a failed refresh is logged and tried again next time."""
        while True:
            try:
                await self.refresh()
            except Exception:
                log.exception("could not refresh the gauges read from the lineage store")
            await asyncio.sleep(REFRESH_SECONDS)

    async def refresh(self) -> None:
        now = self._clock()
        activity = await self._store.site_activity()
        for site_id, last in activity.items():
            SITE_LAST_EVENT.labels(site_id).set(last.timestamp())
            SITE_REPORT_INTERVAL.labels(site_id).set(
                self._rules.report_interval_of(site_id).total_seconds()
            )
        firing: dict[Labels, float] = {
            (kind, severity, site): float(n)
            for kind, severity, site, n in await self._store.firing_counts()
        }
        # A resolved label set drops to 0 rather than vanishing: graphs show it ending.
        self._firing_seen = _publish(ALERTS_FIRING, firing, self._firing_seen, keep=True)
        sites = sorted(activity)
        due = (
            self._coverage_at is None
            or now - self._coverage_at >= timedelta(seconds=COVERAGE_REFRESH_SECONDS)
            or sites != self._coverage_sites  # a new site (or the first data) shows at once
        )
        if due:
            await self._refresh_coverage(sites, now)
            self._coverage_at, self._coverage_sites = now, sites

    async def _refresh_coverage(self, sites: list[str], now: datetime) -> None:
        start = now - COVERAGE_SPAN
        in_range = await self._store.events_between(start, now, sites)
        histories = await self._store.events_of_many(sorted({e.trace_code for e in in_range}))
        rows = release_coverage(
            sites, start, now, in_range, histories, self._rules.imported_origins
        )
        coverage: dict[Labels, float] = {}
        for row in rows:
            site_id = str(row["site_id"])
            released = row["imported_batches_released"]
            assert isinstance(released, int)
            SITE_RELEASED.labels(site_id).set(released)
            for check, key in (
                ("disinfection", "share_disinfected_before_release"),
                ("nucleic_test", "share_tested_before_release"),
            ):
                share = row[key]
                if isinstance(share, float):
                    coverage[(site_id, check)] = share
        # No release, no share: the series goes away rather than claiming 0 % or 100 %.
        self._coverage_seen = _publish(SITE_COVERAGE, coverage, self._coverage_seen, keep=False)


def _publish(
    gauge: Gauge, values: Mapping[Labels, float], seen: set[Labels], *, keep: bool
) -> set[Labels]:
    for labels, value in values.items():
        gauge.labels(*labels).set(value)
    for labels in seen - values.keys():
        if keep:
            gauge.labels(*labels).set(0)
        else:
            gauge.remove(*labels)
    return (seen | values.keys()) if keep else set(values)
