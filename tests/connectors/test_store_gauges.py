"""StoreGauges over a real chdb store: what the gauges read from the lineage store say."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from prometheus_client import REGISTRY

from connectors.store import EventRecord, LineageStore
from connectors.store_gauges import COVERAGE_REFRESH_SECONDS, StoreGauges
from schemas.alerts import Alert
from schemas.events import content_hash
from schemas.rules import RuleSet
from tests.factories import T0, disinfection, intake, nucleic_test, outbound, parsed, sale

# Sites of this module's own, so that no other test's gauges get in the way.
PORT, COLD, MARKET, SHOP = "G-PORT", "G-COLD", "G-MKT", "G-SHOP"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def insert(store: LineageStore, received_at: datetime, *raws: dict[str, Any]) -> None:
    events = [parsed(raw) for raw in raws]
    await store.insert_events([EventRecord(e, content_hash(e), received_at) for e in events])


def alert(alert_id: str, site_id: str, kind: str, severity: str, **fields: Any) -> Alert:
    values: dict[str, Any] = {
        "alert_id": alert_id,
        "type": kind,
        "severity": severity,
        "trace_code": f"CODE-{alert_id}",
        "site_id": site_id,
        "occurred_at": T0,
        "detected_at": T0 + timedelta(minutes=1),
        "status": "firing",
        "event_ids": ["ev-1"],
        "details": {},
        "rule_set": "contract-v1",
    }
    return Alert(**{**values, **fields})


RULES = RuleSet(
    version="gauges",
    report_interval=timedelta(hours=6),
    report_intervals={MARKET: timedelta(days=2)},
)


async def history(store: LineageStore) -> None:
    """At the port, two imported batches released: A disinfected and tested before, B only
    tested; a domestic batch C released too (not counted). The cold store only receives,
    the market only sells a domestic batch."""
    await insert(
        store,
        T0 + timedelta(hours=1),
        intake("G-A", PORT, 0),
        disinfection("G-A", PORT, 10),
        nucleic_test("G-A", PORT, 20),
        outbound("G-A", PORT, 30, to_site_id=COLD),
        intake("G-B", PORT, 0),
        nucleic_test("G-B", PORT, 20),
        outbound("G-B", PORT, 30, to_site_id=COLD),
        intake("G-C", PORT, 0, origin="domestic"),
        outbound("G-C", PORT, 30, to_site_id=MARKET),
    )
    await insert(
        store,
        T0 + timedelta(hours=3),
        intake("G-A", COLD, 90, from_site_id=PORT),
        intake("G-B", COLD, 95, from_site_id=PORT),
    )
    await insert(
        store,
        T0 + timedelta(hours=5),
        intake("G-C", MARKET, 120, origin="domestic", from_site_id=PORT),
        sale("G-C", MARKET, 150),
    )


async def test_sites_last_event_and_report_interval(store: LineageStore) -> None:
    await history(store)
    # Received last though it occurred early: receipt, not occurrence, is what counts.
    await insert(store, T0 + timedelta(hours=7), disinfection("G-B", PORT, 5))
    await StoreGauges(store, RULES, Clock(T0 + timedelta(days=1))).refresh()
    last = "coldchain_site_last_event_timestamp_seconds"
    assert gauge(last, site_id=PORT) == (T0 + timedelta(hours=7)).timestamp()
    assert gauge(last, site_id=COLD) == (T0 + timedelta(hours=3)).timestamp()
    assert gauge(last, site_id=MARKET) == (T0 + timedelta(hours=5)).timestamp()
    interval = "coldchain_site_report_interval_seconds"
    assert gauge(interval, site_id=PORT) == 6 * 3600
    assert gauge(interval, site_id=COLD) == 6 * 3600
    assert gauge(interval, site_id=MARKET) == 2 * 86400
    # A site that never reported has no series (nothing to say when it was last heard).
    assert gauge(last, site_id="G-NEVER") is None


async def test_firing_alerts_are_counted_and_a_resolved_label_set_drops_to_zero(
    store: LineageStore,
) -> None:
    await history(store)
    await store.insert_alerts(
        [
            alert("f1", PORT, "missing_disinfection", "critical"),
            alert("f2", PORT, "missing_disinfection", "critical"),
            alert(
                "f3", PORT, "missing_nucleic_test", "critical", status="resolved", resolved_at=T0
            ),
            alert("f4", COLD, "mixed_storage", "warning", zone_id="M1"),
        ],
        T0 + timedelta(hours=1),
    )
    clock = Clock(T0 + timedelta(days=1))
    gauges = StoreGauges(store, RULES, clock)
    await gauges.refresh()
    firing = "coldchain_alerts_firing"
    labels = {"type": "missing_disinfection", "severity": "critical", "site_id": PORT}
    mixed = {"type": "mixed_storage", "severity": "warning", "site_id": COLD}
    assert gauge(firing, **labels) == 2
    assert gauge(firing, **mixed) == 1
    # Only firing alerts count: a resolved one makes no series.
    assert gauge(firing, type="missing_nucleic_test", severity="critical", site_id=PORT) is None

    # The mixed storage resolves, one missing disinfection too.
    await store.insert_alerts(
        [
            alert("f4", COLD, "mixed_storage", "warning", zone_id="M1", status="resolved"),
            alert("f2", PORT, "missing_disinfection", "critical", status="resolved"),
        ],
        T0 + timedelta(hours=2),
    )
    clock.now += timedelta(seconds=15)
    await gauges.refresh()
    assert gauge(firing, **labels) == 1
    assert gauge(firing, **mixed) == 0  # still there, at 0: graphs show it ending
    await gauges.refresh()
    assert gauge(firing, **mixed) == 0


async def test_release_coverage_per_site(store: LineageStore) -> None:
    await history(store)
    clock = Clock(T0 + timedelta(days=1))
    gauges = StoreGauges(store, RULES, clock)
    await gauges.refresh()
    released = "coldchain_site_imported_batches_released"
    ratio = "coldchain_site_release_coverage_ratio"
    # The domestic batch C does not count; B was released without a disinfection.
    assert gauge(released, site_id=PORT) == 2
    assert gauge(ratio, site_id=PORT, check="disinfection") == 0.5
    assert gauge(ratio, site_id=PORT, check="nucleic_test") == 1.0
    # Sites that released no imported batch: 0 released and no share at all.
    for site in (COLD, MARKET):
        assert gauge(released, site_id=site) == 0
        assert gauge(ratio, site_id=site, check="disinfection") is None
        assert gauge(ratio, site_id=site, check="nucleic_test") is None

    # B's disinfection, recorded late but done before its release, counts once read again.
    await insert(store, T0 + timedelta(hours=8), disinfection("G-B", PORT, 25))
    clock.now += timedelta(seconds=COVERAGE_REFRESH_SECONDS)
    await gauges.refresh()
    assert gauge(ratio, site_id=PORT, check="disinfection") == 1.0

    # A week on, nothing was released in the last 7 days: the shares go away.
    clock.now += timedelta(days=7)
    await gauges.refresh()
    assert gauge(released, site_id=PORT) == 0
    assert gauge(ratio, site_id=PORT, check="disinfection") is None
    assert gauge(ratio, site_id=PORT, check="nucleic_test") is None


async def test_an_imported_batch_released_without_disinfection_has_ratio_zero(
    store: LineageStore,
) -> None:
    await insert(
        store,
        T0,
        intake("G-Z", SHOP, 0),
        nucleic_test("G-Z", SHOP, 10),
        sale("G-Z", SHOP, 20),
    )
    await StoreGauges(store, RULES, Clock(T0 + timedelta(hours=1))).refresh()
    ratio = "coldchain_site_release_coverage_ratio"
    assert gauge("coldchain_site_imported_batches_released", site_id=SHOP) == 1
    assert gauge(ratio, site_id=SHOP, check="disinfection") == 0.0
    assert gauge(ratio, site_id=SHOP, check="nucleic_test") == 1.0


async def test_a_new_site_is_covered_at_once_other_changes_within_a_minute(
    store: LineageStore,
) -> None:
    await history(store)
    clock = Clock(T0 + timedelta(days=1))
    gauges = StoreGauges(store, RULES, clock)
    await gauges.refresh()
    ratio = "coldchain_site_release_coverage_ratio"
    assert gauge(ratio, site_id=PORT, check="disinfection") == 0.5
    # Not yet a minute on, the same sites: the coverage is not read again...
    await insert(store, T0 + timedelta(hours=8), disinfection("G-B", PORT, 25))
    clock.now += timedelta(seconds=15)
    await gauges.refresh()
    assert gauge(ratio, site_id=PORT, check="disinfection") == 0.5
    # ...but a site's first event makes it read at once.
    await insert(store, T0 + timedelta(hours=9), intake("G-N", "G-NEW", 0))
    clock.now += timedelta(seconds=15)
    await gauges.refresh()
    assert gauge(ratio, site_id=PORT, check="disinfection") == 1.0
    assert gauge("coldchain_site_imported_batches_released", site_id="G-NEW") == 0
