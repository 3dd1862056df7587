"""Running the rules for what a batch of events touched, with the store as the state.

Every evaluation reads the whole current history of what it evaluates from the
lineage store and runs the pure rules over it, so the outcome does not depend on
the order or number of times events arrived, and nothing is lost when a worker
(or the embedded broker) restarts: the store is the only state.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime

from connectors.metrics import ALERTS_CHANGED
from connectors.store import LineageStore
from pipeline.reach import descendants, neighbours
from pipeline.rules.batch import Exposure, evaluate_batch, last_positive_test
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

    async def batches(self, trace_codes: Sequence[str]) -> dict[str, set[str]]:
        """Evaluate the per-batch rules for these codes; returns, per site of theirs, the
        codes whose zones there need evaluating too (a declaration may have changed)."""
        if not trace_codes:
            return {}
        histories = await self._store.events_of_many(trace_codes)
        previous: dict[str, list[Alert]] = {code: [] for code in trace_codes}
        for alert in await self._store.alerts_of(trace_codes):
            if alert.type != "mixed_storage":
                previous.setdefault(alert.trace_code, []).append(alert)
        now = self._clock()
        changes: list[Alert] = []
        sites: dict[str, set[str]] = {}
        for code, events in histories.items():
            until = last_positive_test(events)
            exposure = None if until is None else await self._exposure(code, events, until)
            findings = evaluate_batch(code, events, self._rules, exposure)
            changes.extend(reconcile(previous[code], findings, now, self._rules.version))
            for event in events:
                sites.setdefault(event.site_id, set()).add(code)
        await self._commit(changes, now)
        return sites

    async def sites(self, touched: Mapping[str, Iterable[str]]) -> None:
        """Evaluate the per-zone rule (mixed storage) at each site for the codes touched
        there: only pairs with a touched code can have changed, and only the batches
        that may have shared a stay with one are read."""
        now = self._clock()
        changes: list[Alert] = []
        for site_id, codes in sorted(touched.items()):
            changed = set(codes)
            touched_histories = await self._store.events_of_many(sorted(changed))
            beside = await neighbours(self._store, touched_histories, sites=[site_id])
            histories = beside.get(site_id, touched_histories)
            origins = {
                code: (d.origin if (d := declaration_of(events)) else None)
                for code, events in histories.items()
            }
            findings = [
                f
                for f in mixed_storage(site_id, histories, origins, self._rules)
                if f.trace_code in changed or f.details["domestic_trace_code"] in changed
            ]
            previous = [
                a
                for a in await self._store.alerts_of(sorted(histories))
                if a.type == "mixed_storage"
                and a.site_id == site_id
                and (a.trace_code in changed or a.details.get("domestic_trace_code") in changed)
            ]
            changes.extend(reconcile(previous, findings, now, self._rules.version))
        await self._commit(changes, now)

    async def _exposure(self, code: str, events: Sequence[Event], until: datetime) -> Exposure:
        """Downstream sites and co-stored batches of a batch with a positive test."""
        exposed: list[dict[str, object]] = []
        for site_id, beside in sorted(
            (await neighbours(self._store, {code: events}, until)).items()
        ):
            exposed.extend(co_stored(code, site_id, beside, until))
        histories = await descendants(self._store, code, events)
        return Exposure(downstream=downstream(code, histories), co_stored=exposed)

    async def _commit(self, changes: list[Alert], now: datetime) -> None:
        if not changes:
            return
        await self._store.insert_alerts(changes, now)
        await self._publish(changes)
        for alert in changes:
            ALERTS_CHANGED.labels(alert.type, alert.severity, _change(alert, now)).inc()
            log.info(
                "alert %s %s %s at %s (%s)",
                alert.status,
                alert.type,
                alert.trace_code,
                alert.site_id,
                alert.alert_id,
            )


def _change(alert: Alert, now: datetime) -> str:
    # reconcile keeps a still-firing alert's detected_at, so a new one carries `now`.
    if alert.status == "resolved":
        return "resolved"
    return "raised" if alert.detected_at == now else "updated"
