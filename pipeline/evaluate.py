"""Running the rules for what a batch of events touched, with the store as the state.

Every evaluation reads the whole current history of what it evaluates from the
lineage store and runs the pure rules over it, so the outcome does not depend on
the order or number of times events arrived, and nothing is lost when a worker
(or the embedded broker) restarts: the store is the only state.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from connectors.metrics import ALERTS_CHANGED
from connectors.store import LineageStore
from pipeline.reach import descendants, last_positive, neighbours
from pipeline.rules.batch import Exposure, evaluate_batch, has_positive_test
from pipeline.rules.lifecycle import reconcile
from pipeline.rules.lineage import declaration_of
from pipeline.rules.trace import downstream
from pipeline.rules.zones import co_stored, mixed_storage
from schemas.alerts import Alert
from schemas.events import Event
from schemas.rules import RuleSet

log = logging.getLogger(__name__)

AlertSink = Callable[[Sequence[Alert]], Awaitable[None]]


class Evaluator:
    def __init__(
        self,
        store: LineageStore,
        rules: RuleSet,
        clock: Callable[[], datetime],
        publish: AlertSink,
    ) -> None:
        self._store = store
        self._rules = rules
        self._clock = clock
        self._publish = publish

    async def batches(self, trace_codes: Sequence[str]) -> set[str]:
        """Evaluate the per-batch rules for these codes; returns every site of theirs,
        whose zones then need evaluating too (a declaration may have changed)."""
        if not trace_codes:
            return set()
        histories = await self._store.events_of_many(trace_codes)
        previous: dict[str, list[Alert]] = {code: [] for code in trace_codes}
        for alert in await self._store.alerts_of(trace_codes):
            if alert.type != "mixed_storage":
                previous.setdefault(alert.trace_code, []).append(alert)
        now = self._clock()
        changes: list[Alert] = []
        sites: set[str] = set()
        for code, events in histories.items():
            exposure = await self._exposure(code, events) if has_positive_test(events) else None
            findings = evaluate_batch(code, events, self._rules, exposure)
            changes.extend(reconcile(previous[code], findings, now, self._rules.version))
            sites.update(e.site_id for e in events)
        await self._commit(changes, now)
        return sites

    async def sites(self, site_ids: Sequence[str]) -> None:
        """Evaluate the per-zone rules (mixed storage) of these sites."""
        now = self._clock()
        changes: list[Alert] = []
        for site_id in site_ids:
            codes = await self._store.codes_at_site(site_id)
            histories = await self._store.events_of_many(codes)
            origins = {
                code: (d.origin if (d := declaration_of(events)) else None)
                for code, events in histories.items()
            }
            findings = mixed_storage(site_id, histories, origins, self._rules)
            previous = [
                a
                for a in await self._store.alerts_of(codes)
                if a.type == "mixed_storage" and a.site_id == site_id
            ]
            changes.extend(reconcile(previous, findings, now, self._rules.version))
        await self._commit(changes, now)

    async def _exposure(self, code: str, events: Sequence[Event]) -> Exposure:
        """Downstream sites and co-stored batches of a batch with a positive test."""
        until = last_positive(events)
        assert until is not None  # only called for a batch with a positive test
        exposed: list[dict[str, object]] = []
        for site_id, beside in sorted((await neighbours(self._store, code, events, until)).items()):
            exposed.extend(co_stored(code, site_id, beside, until))
        histories = await descendants(self._store, code, events)
        return Exposure(downstream=downstream(code, histories), co_stored=exposed)

    async def _commit(self, changes: list[Alert], now: datetime) -> None:
        if not changes:
            return
        await self._store.insert_alerts(changes, now)
        await self._publish(changes)
        for alert in changes:
            ALERTS_CHANGED.labels(alert.type, alert.severity, alert.status).inc()
            log.info(
                "alert %s %s %s at %s (%s)",
                alert.status,
                alert.type,
                alert.trace_code,
                alert.site_id,
                alert.alert_id,
            )
