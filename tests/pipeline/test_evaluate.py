"""StoreWriter and Evaluator over a real chdb store, without a broker."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from prometheus_client import REGISTRY

from coldchain.rulesets import load_rule_set
from connectors.store import AlertFilter, LineageStore
from pipeline.evaluate import Evaluator
from pipeline.store_writer import RawMessage, StoreWriter
from schemas.alerts import ALERT_TYPES, SEVERITY, Alert
from tests.factories import disinfection, intake
from tests.scenario import history

NOW = datetime(2026, 11, 25, tzinfo=UTC)


class Pipeline:
    def __init__(
        self,
        store: LineageStore,
        rules_file: Path | None = None,
        clock: Callable[[], datetime] = lambda: NOW,
    ) -> None:
        self.published: list[Alert] = []
        self.dead: list[object] = []

        async def publish(alerts: Sequence[Alert]) -> None:
            self.published.extend(alerts)

        async def dead_letter(record: object) -> None:
            self.dead.append(record)

        self.store = store
        self.writer = StoreWriter(store, dead_letter, clock)
        self.evaluator = Evaluator(store, load_rule_set(rules_file), clock, publish)
        self.offset = 0

    async def push(self, events: list[dict]) -> None:
        self.offset += 1
        message = RawMessage(orjson.dumps(events), NOW, "t", 0, self.offset)
        await self.evaluator.sites(
            await self.evaluator.batches(await self.writer.handle([message]))
        )

    async def firing(self) -> set[tuple[str, str]]:
        alerts = await self.store.list_alerts(AlertFilter(status="firing", limit=1000))
        return {(a.type, a.trace_code) for a in alerts}


async def test_the_scripted_history_raises_exactly_its_faults(store: LineageStore) -> None:
    events, expected = history()
    pipeline = Pipeline(store)
    await pipeline.push(events)
    assert await pipeline.firing() == expected
    assert not await store.alerts_of(["SCN-OK", "SCN-DOM"])
    mixed = next(a for a in await store.alerts_of(["SCN-MIXED"]) if a.type == "mixed_storage")
    assert mixed.details["domestic_trace_code"] == "SCN-DOM" and mixed.zone_id == "M1"
    assert {a.rule_set for a in pipeline.published} == {"contract-v1"}


async def test_any_arrival_order_and_duplicates_give_the_same_alerts(store: LineageStore) -> None:
    events, expected = history()
    pipeline = Pipeline(store)
    shuffled = list(reversed(events))
    for start in range(0, len(shuffled), 4):
        await pipeline.push(shuffled[start : start + 4] + shuffled[:2])
    assert await pipeline.firing() == expected


async def test_a_late_disinfection_resolves_the_alert(store: LineageStore) -> None:
    events, _ = history()
    pipeline = Pipeline(store)
    await pipeline.push(events)
    before = next(a for a in await store.alerts_of(["SCN-NODIS"]) if a.status == "firing")
    await pipeline.push([disinfection("SCN-NODIS", "PORT", 29)])
    after = {a.alert_id: a for a in await store.alerts_of(["SCN-NODIS"])}
    assert after[before.alert_id].status == "resolved"
    assert after[before.alert_id].resolved_at == NOW
    assert ("missing_disinfection", "SCN-NODIS") not in await pipeline.firing()
    # Found again later (nothing changed): no new alert, no change published.
    published = len(pipeline.published)
    await pipeline.push([disinfection("SCN-NODIS", "PORT", 29, event_id="again")])
    assert len(pipeline.published) == published


def changed(alert_type: str, severity: str, change: str) -> float:
    labels = {"type": alert_type, "severity": severity, "change": change}
    return REGISTRY.get_sample_value("coldchain_alerts_total", labels) or 0.0


class Counts:
    """coldchain_alerts_total since the last look (the counter is process-global)."""

    def __init__(self) -> None:
        self._last = self._now()

    def _now(self) -> dict[tuple[str, str], float]:
        return {
            (kind, change): changed(kind, SEVERITY[kind], change)
            for kind in ALERT_TYPES
            for change in ("raised", "updated", "resolved")
        }

    def delta(self) -> dict[tuple[str, str], float]:
        now = self._now()
        delta = {key: now[key] - self._last[key] for key in now if now[key] != self._last[key]}
        self._last = now
        return delta


async def test_alert_changes_are_counted_as_raised_updated_and_resolved(
    store: LineageStore,
) -> None:
    events, expected = history()
    # A clock that moves, as a real one does: a new alert is told from an updated one by
    # its detected_at being the evaluation's now.
    moments = iter(NOW + timedelta(minutes=i) for i in range(100))
    pipeline = Pipeline(store, clock=lambda: next(moments))
    counts = Counts()
    await pipeline.push(events)
    # Every alert of the history is new: raised, once each.
    assert counts.delta() == {
        (kind, "raised"): n for kind, n in Counter(kind for kind, _ in expected).items()
    }

    # The late disinfection resolves SCN-NODIS's alert: resolved, nothing raised.
    await pipeline.push([disinfection("SCN-NODIS", "PORT", 29)])
    assert counts.delta() == {("missing_disinfection", "resolved"): 1}

    # A batch beside SCN-POS in its zone changes the positive alert's facts: updated.
    neighbour = intake("SCN-NEIGHBOUR", "PORT", 0, zone_id="Z2")
    await pipeline.push([neighbour, disinfection("SCN-POS", "PORT", 41, event_id="poke")])
    assert counts.delta() == {("positive_nucleic_test", "updated"): 1}

    # Nothing new: nothing counted.
    await pipeline.push([disinfection("SCN-NODIS", "PORT", 29, event_id="again")])
    assert counts.delta() == {}


async def test_a_rule_set_without_nucleic_tests_runs_without_code_changes(
    store: LineageStore,
) -> None:
    events, expected = history()
    pipeline = Pipeline(store, Path("coldchain/rulesets/2023-no-nucleic-test.yaml"))
    await pipeline.push(events)
    assert await pipeline.firing() == {
        (kind, code)
        for kind, code in expected
        if kind not in ("missing_nucleic_test", "positive_nucleic_test")
    }
    assert {a.rule_set for a in pipeline.published} == {"2023-no-nucleic-test"}


async def test_positive_details_name_downstream_and_co_stored(store: LineageStore) -> None:
    events, _ = history()
    pipeline = Pipeline(store)
    await pipeline.push(events)
    positive = next(
        a for a in await store.alerts_of(["SCN-POS"]) if a.type == "positive_nucleic_test"
    )
    assert positive.details["downstream"][0]["site_id"] == "PORT"
    # SCN-POS sat alone in zone Z2 of the port.
    assert positive.details["co_stored"] == []
    await pipeline.push(
        [
            {
                **events[0],
                "event_id": "pos-neighbour",
                "trace_code": "SCN-NEIGHBOUR",
                "zone_id": "Z2",
            },
            disinfection("SCN-POS", "PORT", 41, event_id="poke"),
        ]
    )
    positive = next(
        a for a in await store.alerts_of(["SCN-POS"]) if a.type == "positive_nucleic_test"
    )
    assert [c["trace_code"] for c in positive.details["co_stored"]] == ["SCN-NEIGHBOUR"]
