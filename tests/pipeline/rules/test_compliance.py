from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from pipeline.rules.compliance import compliance, release_coverage, week_of
from schemas.alerts import ALERT_TYPES
from schemas.events import Event
from tests.factories import T0, disinfection, intake, nucleic_test, outbound, parsed


def report(raws, sites, weeks=2):
    events = [parsed(r) for r in raws]
    histories: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        histories[event.trace_code].append(event)
    start = T0 - timedelta(days=1)
    return compliance(
        sites, start, start + timedelta(weeks=weeks), events, histories, [], frozenset({"imported"})
    )


def test_shares_count_batches_released_with_certificates_before() -> None:
    rows = report(
        [
            intake("A", "PORT", 0),
            disinfection("A", "PORT", 1),
            nucleic_test("A", "PORT", 2),
            outbound("A", "PORT", 3),
            intake("B", "PORT", 0),
            nucleic_test("B", "PORT", 2),
            outbound("B", "PORT", 3),
            intake("C", "PORT", 0, origin="domestic"),
            outbound("C", "PORT", 3),
        ],
        ["PORT", "SILENT"],
    )
    week = week_of(T0).isoformat()
    port = next(r for r in rows if r["site_id"] == "PORT" and r["week_start"] == week)
    assert port["imported_batches_received"] == 2
    assert port["imported_batches_released"] == 2
    assert port["share_disinfected_before_release"] == 0.5
    assert port["share_tested_before_release"] == 1.0
    silent = [r for r in rows if r["site_id"] == "SILENT"]
    assert silent and all(not r["reported"] for r in silent)
    assert all(r["share_disinfected_before_release"] is None for r in silent)


def test_a_disinfection_after_the_release_does_not_count() -> None:
    rows = report(
        [intake("A", "PORT", 0), outbound("A", "PORT", 3), disinfection("A", "PORT", 5)], ["PORT"]
    )
    port = next(r for r in rows if r["reported"])
    assert port["share_disinfected_before_release"] == 0.0


def coverage(
    raws: list[dict[str, Any]], sites: list[str], start: datetime, end: datetime
) -> list[dict[str, object]]:
    events = [parsed(r) for r in raws]
    histories: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        histories[event.trace_code].append(event)
    return release_coverage(sites, start, end, events, histories, frozenset({"imported"}))


def test_release_coverage_is_one_row_per_site_over_the_whole_span() -> None:
    start = T0 - timedelta(days=6)  # the span crosses a week boundary
    rows = coverage(
        [
            # Released in the span's first week and in its second: both count.
            intake("A", "PORT", 0),
            disinfection("A", "PORT", 1),
            nucleic_test("A", "PORT", 2),
            outbound("A", "PORT", 3),
            intake("B", "PORT", 0),
            nucleic_test("B", "PORT", 2),
            outbound("B", "PORT", 60 * 10),
            # Disinfected only after its release.
            intake("C", "PORT", 0),
            nucleic_test("C", "PORT", 2, result="pending"),
            outbound("C", "PORT", 3),
            disinfection("C", "PORT", 10),
            # Domestic: not counted.
            intake("D", "PORT", 0, origin="domestic"),
            outbound("D", "PORT", 3),
            # Released before the span: not counted.
            intake("E", "PORT", -60 * 24 * 7),
            outbound("E", "PORT", -60 * 24 * 7 + 1),
        ],
        ["PORT", "SILENT"],
        start,
        start + timedelta(days=7),
    )
    assert [r["site_id"] for r in rows] == ["PORT", "SILENT"]
    port, silent = rows
    assert week_of(start) != week_of(T0 + timedelta(hours=10))
    assert port["week_start"] == "2026-10-26"  # the span's first day, China time
    assert port["imported_batches_released"] == 3
    assert port["share_disinfected_before_release"] == round(1 / 3, 4)
    assert port["share_tested_before_release"] == round(2 / 3, 4)
    assert port["alerts"] == dict.fromkeys(ALERT_TYPES, 0)  # alerts are not read here
    assert silent["reported"] is False and silent["imported_batches_released"] == 0
    assert silent["share_disinfected_before_release"] is None
    assert silent["share_tested_before_release"] is None
