from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from pipeline.rules.compliance import compliance, week_of
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
