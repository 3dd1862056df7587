"""The demo data set: valid, deterministic, and faulty exactly where it says it is.

``_raised_for`` below re-reads contract section 2 in the plainest way possible (one pass in
the contract's event order, no streaming, no lateness), independently of the rules engine,
so that :func:`coldchain.demo.expected_faults` can be trusted as ground truth by its tests.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coldchain.demo import CST, DEMO_SITES, build_demo, expected_faults
from schemas.alerts import ALERT_TYPES
from schemas.events import (
    Disinfection,
    Event,
    Intake,
    NucleicTest,
    Outbound,
    Sale,
    validate_events,
)

ANCHOR = datetime(2026, 11, 26, 9, 41, 17, 250_000, tzinfo=CST)
TOLERANCE = Decimal("1.005")
SAME_INSTANT = {"intake": 0, "disinfection": 1, "nucleic_test": 2, "outbound": 3, "sale": 4}


def _parsed(events: Sequence[dict[str, object]], anchor: datetime) -> list[Event]:
    valid, errors = validate_events(events, anchor)
    assert errors == []
    return sorted(valid, key=lambda e: (e.occurred_at, SAME_INSTANT[e.event_type], e.event_id))


Stock = dict[tuple[str, str], dict[str, Decimal]]  # (site, zone) -> code -> kg


def _release(stock: Stock, event: Outbound | Sale, zones: list[str]) -> None:
    """Take a release off its zone, or off the ``zones`` in the order they received the batch."""
    code, site = event.trace_code, event.site_id
    if event.zone_id is not None:
        stock[site, event.zone_id][code] -= event.quantity_kg
        return
    quantity = event.quantity_kg
    for zone in zones:
        taken = min(max(stock[site, zone][code], Decimal(0)), quantity)
        stock[site, zone][code] -= taken
        quantity -= taken


def _raised_for(events: list[Event]) -> dict[str, set[str]]:
    """Alert type -> trace codes an alert of that type is about, per contract section 2."""
    declaration: dict[str, Intake] = {}
    for event in events:
        if isinstance(event, Intake):
            declaration.setdefault(event.trace_code, event)
    receivers = {(e.trace_code, e.site_id) for e in events if isinstance(e, Intake)}

    raised: dict[str, set[str]] = {alert: set() for alert in ALERT_TYPES}
    received_here: set[tuple[str, str]] = set()
    received: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    released: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    sent: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)  # code, from, to
    came: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)  # code, from, to
    disinfected: set[str] = set()
    cleared: set[str] = set()
    stock: Stock = defaultdict(lambda: defaultdict(Decimal))
    zones_of: dict[tuple[str, str], list[str]] = defaultdict(list)

    for event in events:
        code, site = event.trace_code, event.site_id
        if isinstance(event, Intake):
            declared = declaration[code]
            if (event.product, event.origin, event.country_of_origin) != (
                declared.product,
                declared.origin,
                declared.country_of_origin,
            ):
                raised["info_mismatch"].add(code)
            received_here.add((code, site))
            received[code, site] += event.quantity_kg
            if event.from_site_id is not None:
                came[code, event.from_site_id, site] += event.quantity_kg
            if event.zone_id not in zones_of[code, site]:
                zones_of[code, site].append(event.zone_id)
            zone = stock[site, event.zone_id]
            zone[code] += event.quantity_kg
            for other, quantity in zone.items():
                origins = {declared.origin, declaration[other].origin}
                if quantity > 0 and origins == {"imported", "domestic"}:
                    raised["mixed_storage"].add(code if declared.origin == "imported" else other)
            continue
        if (code, site) not in received_here:
            raised["unknown_trace_code"].add(code)
            if (code, site) not in receivers:
                continue  # a site that never received the code raises nothing else for it
        if isinstance(event, Disinfection):
            disinfected.add(code)
        elif isinstance(event, NucleicTest):
            if event.result == "negative":
                cleared.add(code)
            elif event.result == "positive":
                raised["positive_nucleic_test"].add(code)
        else:
            assert isinstance(event, Outbound | Sale)
            released[code, site] += event.quantity_kg
            if code in declaration and declaration[code].origin == "imported":
                if code not in disinfected:
                    raised["missing_disinfection"].add(code)
                if code not in cleared:
                    raised["missing_nucleic_test"].add(code)
            if isinstance(event, Outbound):
                sent[code, site, event.to_site_id] += event.quantity_kg
            _release(stock, event, zones_of[code, site])

    for (code, site), out in released.items():
        if (code, site) in received and out > received[code, site] * TOLERANCE:
            raised["quantity_exceeded"].add(code)
    for (code, sender, site), quantity in came.items():
        if quantity > sent[code, sender, site] * TOLERANCE:
            raised["info_mismatch"].add(code)
    return raised


def test_every_event_passes_contract_validation_as_posted() -> None:
    demo = build_demo(ANCHOR)
    valid, errors = validate_events(json.loads(json.dumps(demo.events)), ANCHOR)
    assert errors == []
    assert len(valid) == len(demo.events)


def test_events_look_like_what_a_site_system_sends() -> None:
    demo = build_demo(ANCHOR)
    assert 1000 <= len(demo.events) <= 3000
    for event in demo.events:
        assert str(event["occurred_at"]).endswith("+08:00")
        if "quantity_kg" in event:
            assert isinstance(event["quantity_kg"], float)
            kilograms = Decimal(repr(event["quantity_kg"]))
            assert kilograms == kilograms.quantize(Decimal("0.001"))
    sites = {site.site_id for site in DEMO_SITES}
    assert {str(event["site_id"]) for event in demo.events} <= sites
    assert {str(e["to_site_id"]) for e in demo.events if "to_site_id" in e} <= sites
    assert demo.sites == DEMO_SITES
    assert {site.kind for site in DEMO_SITES} == {
        "port_warehouse",
        "cold_storage",
        "processor",
        "market",
        "shop",
    }
    declared = {e["trace_code"]: e for e in reversed(demo.events) if e["event_type"] == "intake"}
    assert 40 <= len(declared) <= 90
    assert {e["origin"] for e in declared.values()} == {"imported", "domestic"}
    assert any(e.get("parent_trace_codes") for e in declared.values())
    for event in declared.values():
        if event["origin"] == "imported" and "parent_trace_codes" not in event:
            assert event["customs_declaration_no"] and event["quarantine_cert_no"]


def test_same_anchor_gives_the_same_demo() -> None:
    assert build_demo(ANCHOR) == build_demo(ANCHOR)
    assert build_demo(ANCHOR).events == build_demo(ANCHOR.astimezone(UTC)).events
    assert build_demo(ANCHOR).events != build_demo(ANCHOR + timedelta(days=1)).events


def test_event_ids_are_unique() -> None:
    ids = [event["event_id"] for event in build_demo(ANCHOR).events]
    assert len(ids) == len(set(ids))


def test_nothing_happens_after_the_anchor() -> None:
    demo = build_demo(ANCHOR)
    assert max(datetime.fromisoformat(str(e["occurred_at"])) for e in demo.events) <= ANCHOR


def test_a_naive_anchor_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build_demo(datetime(2026, 11, 26, 9, 0))


def test_every_alert_type_has_constructed_faults() -> None:
    faults = expected_faults(build_demo(ANCHOR))
    assert set(faults) == set(ALERT_TYPES)
    assert all(len(codes) >= 2 for codes in faults.values())


def test_each_constructed_fault_really_holds() -> None:
    demo = build_demo(ANCHOR)
    raised = _raised_for(_parsed(demo.events, ANCHOR))
    for alert, codes in expected_faults(demo).items():
        assert codes <= raised[alert], alert


def test_compliant_batches_raise_nothing() -> None:
    demo = build_demo(ANCHOR)
    faulty = set().union(*expected_faults(demo).values())
    compliant = {str(event["trace_code"]) for event in demo.events} - faulty
    raised = _raised_for(_parsed(demo.events, ANCHOR))
    assert {alert: codes & compliant for alert, codes in raised.items()} == {
        alert: set() for alert in ALERT_TYPES
    }


def test_a_pending_result_is_among_the_missing_tests() -> None:
    demo = build_demo(ANCHOR)
    missing = expected_faults(demo)["missing_nucleic_test"]
    pending = {
        e["trace_code"]
        for e in demo.events
        if e["event_type"] == "nucleic_test" and e["result"] == "pending"
    }
    assert pending & missing


def test_the_positive_batch_reached_downstream_and_was_co_stored() -> None:
    demo = build_demo(ANCHOR)
    assert len(demo.highlights) == 3
    positive = demo.highlights[0].trace_code
    assert positive in expected_faults(demo)["positive_nucleic_test"]
    events = _parsed(demo.events, ANCHOR)
    (found,) = [
        e
        for e in events
        if isinstance(e, NucleicTest) and e.trace_code == positive and e.result == "positive"
    ]
    reached = {e.site_id for e in events if isinstance(e, Intake) and e.trace_code == positive}
    assert len(reached) >= 4  # port, cold storage, processor, market
    children = {
        e.trace_code for e in events if isinstance(e, Intake) and positive in e.parent_trace_codes
    }
    assert children

    # The positive batch's own releases all name their zone, so only named zones matter here.
    stock: Stock = defaultdict(lambda: defaultdict(Decimal))
    co_stored: set[str] = set()
    for event in events:
        if event.occurred_at > found.occurred_at:
            break
        if isinstance(event, Intake):
            stock[event.site_id, event.zone_id][event.trace_code] += event.quantity_kg
        elif isinstance(event, Outbound | Sale) and event.zone_id is not None:
            _release(stock, event, [])
        for zone in stock.values():
            if zone[positive] > 0:
                co_stored |= {code for code, kg in zone.items() if kg > 0 and code != positive}
    assert co_stored


def test_highlights_are_faulty_batches_with_reasons_in_both_languages() -> None:
    demo = build_demo(ANCHOR)
    faulty = set().union(*expected_faults(demo).values())
    for highlight in demo.highlights:
        assert highlight.trace_code in faulty
        assert highlight.why_zh and highlight.why_en


@settings(max_examples=25, deadline=None)
@given(
    anchor=st.datetimes(
        min_value=datetime(2001, 1, 1),
        max_value=datetime(2098, 12, 31),
        timezones=st.sampled_from([UTC, CST, timezone(timedelta(hours=-7, minutes=-30))]),
    )
)
def test_any_anchor_gives_a_valid_demo_faulty_exactly_where_it_says(anchor: datetime) -> None:
    demo = build_demo(anchor)
    events = _parsed(demo.events, anchor)
    assert 1000 <= len(events) <= 3000
    assert len({event.event_id for event in events}) == len(events)
    assert all(event.occurred_at <= anchor for event in events)
    assert _raised_for(events) == expected_faults(demo)
