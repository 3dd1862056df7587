"""A batch's lineage, built from its events alone."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.rules.order import event_order_key, in_rule_order
from pipeline.rules.stock import zone_stocks
from schemas.alerts import Alert
from schemas.events import Disinfection, Event, Intake, NucleicTest
from schemas.lineage import (
    BatchLineage,
    Certificates,
    Declaration,
    DisinfectionStatus,
    NucleicTestStatus,
    SiteStock,
)

_WORST_FIRST = ("positive", "negative", "pending")


def declaration_of(events: Sequence[Event]) -> Intake | None:
    """The intake with the earliest ``occurred_at`` (ties broken by rule order)."""
    intakes = [e for e in events if isinstance(e, Intake)]
    return min(intakes, key=event_order_key) if intakes else None


def build_lineage(
    trace_code: str,
    events: Sequence[Event],
    children: Sequence[str],
    alerts: Sequence[Alert],
) -> BatchLineage:
    ordered = in_rule_order(events)
    first = declaration_of(ordered)
    declared = (
        None
        if first is None
        else Declaration(
            event_id=first.event_id,
            site_id=first.site_id,
            zone_id=first.zone_id,
            occurred_at=first.occurred_at,
            product=first.product,
            origin=first.origin,
            country_of_origin=first.country_of_origin,
            quantity_kg=first.quantity_kg,
            customs_declaration_no=first.customs_declaration_no,
            quarantine_cert_no=first.quarantine_cert_no,
        )
    )
    disinfections = [e for e in ordered if isinstance(e, Disinfection)]
    tests = [e for e in ordered if isinstance(e, NucleicTest)]
    results = {t.result for t in tests}
    test_status = next((r for r in _WORST_FIRST if r in results), "missing")
    parents: list[str] = []
    for event in ordered:
        if isinstance(event, Intake):
            parents.extend(p for p in event.parent_trace_codes if p not in parents)
    return BatchLineage(
        trace_code=trace_code,
        declared=declared,
        events=ordered,
        sites=[
            SiteStock(
                site_id=s.site_id,
                zone_id=s.zone_id,
                received_kg=s.received,
                released_kg=s.released,
                on_hand_kg=s.on_hand,
                first_seen=s.first_seen,
                last_seen=s.last_seen,
            )
            for s in zone_stocks(ordered)
        ],
        certificates=Certificates(
            disinfection=DisinfectionStatus(
                status="disinfected" if disinfections else "missing", records=disinfections
            ),
            nucleic_test=NucleicTestStatus(status=test_status, records=tests),
        ),
        parents=parents,
        children=sorted(children),
        alerts=list(alerts),
    )
