"""Rules over one site's zones across batches: mixed storage and co-storage."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from pipeline.rules.lineage import declaration_of
from pipeline.rules.zones import co_stored, mixed_storage
from schemas.alerts import ALERT_TYPES, Finding
from schemas.events import Event
from schemas.rules import RuleSet
from tests.factories import T0, at, disinfection, intake, outbound, parsed, sale

RULES = RuleSet(version="test")


def by_code(raws: list[dict[str, Any]]) -> dict[str, list[Event]]:
    histories: dict[str, list[Event]] = defaultdict(list)
    for raw in raws:
        event = parsed(raw)
        histories[event.trace_code].append(event)
    return dict(histories)


def mixed(raws: list[dict[str, Any]], site: str = "PORT", rules: RuleSet = RULES) -> list[Finding]:
    """mixed_storage at ``site``, with origins taken from each code's declaration."""
    histories = by_code(raws)
    origins = {
        code: (d.origin if (d := declaration_of(events)) else None)
        for code, events in histories.items()
    }
    return mixed_storage(site, histories, origins, rules)


def imp(code: str = "I1", minutes: float = 0, **fields: Any) -> dict[str, Any]:
    return intake(code=code, minutes=minutes, **{"zone_id": "M1", **fields})


def dom(code: str = "D1", minutes: float = 0, **fields: Any) -> dict[str, Any]:
    return intake(code=code, minutes=minutes, **{"zone_id": "M1", "origin": "domestic", **fields})


def pairs(findings: list[Finding]) -> list[tuple[str, str | None, str, str]]:
    return [
        (f.site_id, f.zone_id, f.trace_code, f.details["domestic_trace_code"]) for f in findings
    ]


# --- mixed_storage --------------------------------------------------------------------------


def test_imported_and_domestic_together_in_one_zone() -> None:
    first = imp(minutes=0)
    second = dom(minutes=5)
    (finding,) = mixed([first, second])
    assert finding.type == "mixed_storage"
    assert pairs([finding]) == [("PORT", "M1", "I1", "D1")]
    assert finding.occurred_at.isoformat() == at(5)
    assert finding.event_ids == (first["event_id"], second["event_id"])
    assert finding.details == {
        "domestic_trace_code": "D1",
        "overlap_from": at(5),
        "overlap_until": None,
    }
    assert finding.identity == ("PORT", "M1", "D1")


def test_the_overlap_ends_when_one_leaves() -> None:
    raws = [dom(minutes=0), imp(minutes=5), outbound(code="D1", minutes=9, zone_id="M1")]
    (finding,) = mixed(raws)
    assert finding.details["overlap_from"] == at(5)
    assert finding.details["overlap_until"] == at(9)


def test_one_finding_per_site_zone_imported_and_domestic_code() -> None:
    raws = [imp("I1"), imp("I2", 1), dom("D1", 2), dom("D2", 3), dom("D3", 4, zone_id="M2")]
    found = mixed(raws)
    assert sorted(pairs(found)) == [
        ("PORT", "M1", "I1", "D1"),
        ("PORT", "M1", "I1", "D2"),
        ("PORT", "M1", "I2", "D1"),
        ("PORT", "M1", "I2", "D2"),
    ]
    assert len({(*f.identity, f.trace_code) for f in found}) == 4


def test_two_separate_overlaps_of_one_pair_are_one_finding_from_the_first() -> None:
    raws = [
        imp(minutes=0),
        dom(minutes=5, quantity_kg=10),
        sale(code="D1", site="PORT", minutes=6, quantity_kg=10, zone_id="M1"),
        dom(minutes=20, quantity_kg=10),
    ]
    (finding,) = mixed(raws)
    assert finding.details["overlap_from"] == at(5)
    assert finding.details["overlap_until"] == at(6)


def test_two_imported_or_two_domestic_batches_are_not_mixed() -> None:
    assert mixed([imp("I1"), imp("I2", 1)]) == []
    assert mixed([dom("D1"), dom("D2", 1)]) == []


def test_different_zones_are_not_mixed() -> None:
    assert mixed([imp(zone_id="M1"), dom(minutes=1, zone_id="M2")]) == []


def test_the_same_zone_name_at_different_sites_is_not_mixed() -> None:
    raws = [imp(), dom(minutes=1, site="CS-001")]
    assert mixed(raws, "PORT") == [] and mixed(raws, "CS-001") == []


def test_one_leaving_at_the_instant_the_other_arrives_is_not_mixed() -> None:
    imported_leaves = [
        imp(minutes=0),
        outbound(code="I1", minutes=10, zone_id="M1", quantity_kg=1000),
        dom(minutes=10),
    ]
    assert mixed(imported_leaves) == []
    domestic_leaves = [
        dom(minutes=0),
        sale(code="D1", site="PORT", minutes=10, quantity_kg=1000),
        imp(minutes=10),
    ]
    assert mixed(domestic_leaves) == []
    # A gram left behind keeps it there.
    stays = [dom(minutes=0), sale(code="D1", site="PORT", minutes=10, quantity_kg="999.999")]
    assert len(mixed([*stays, imp(minutes=10)])) == 1


def test_a_batch_gone_before_the_other_arrives_is_not_mixed() -> None:
    raws = [imp(minutes=0), outbound(code="I1", minutes=5), dom(minutes=6)]
    assert mixed(raws) == []


def test_the_declared_origin_decides_not_the_intake_at_this_site() -> None:
    # D1 is declared domestic at the farm; its intake here claims imported.
    relabelled_domestic = [
        dom("D1", 0, site="FARM"),
        outbound(code="D1", site="FARM", minutes=5, to_site_id="PORT"),
        imp("D1", 10, from_site_id="FARM"),
    ]
    found = mixed([*relabelled_domestic, imp("I1", 12)])
    assert pairs(found) == [("PORT", "M1", "I1", "D1")]
    # I2 is declared imported; its intake here claims domestic: it is still imported.
    relabelled_imported = [
        imp("I2", 0, site="CS-009"),
        outbound(code="I2", site="CS-009", minutes=5, to_site_id="PORT"),
        dom("I2", 10, from_site_id="CS-009"),
    ]
    assert pairs(mixed([*relabelled_imported, dom("D2", 12)])) == [("PORT", "M1", "I2", "D2")]
    assert mixed([*relabelled_imported, imp("I3", 12)]) == []


def test_a_code_with_no_declaration_is_neither_imported_nor_domestic() -> None:
    histories = by_code([imp(), dom(minutes=1)])
    assert mixed_storage("PORT", histories, {"I1": None, "D1": "domestic"}, RULES) == []
    assert mixed_storage("PORT", histories, {"D1": "domestic"}, RULES) == []


def test_a_zoneless_release_empties_the_earliest_receiving_zone_first() -> None:
    imported = [
        imp(minutes=0, zone_id="B2", quantity_kg=50),
        imp(minutes=1, zone_id="A1", quantity_kg=100),
        sale(code="I1", site="PORT", minutes=2, quantity_kg=50),  # empties B2, not A1
    ]
    assert mixed([*imported, dom(minutes=3, zone_id="B2")]) == []
    assert pairs(mixed([*imported, dom(minutes=3, zone_id="A1")])) == [("PORT", "A1", "I1", "D1")]
    # Had 40 kg left, B2 would still hold 10 kg.
    partly = [*imported[:2], sale(code="I1", site="PORT", minutes=2, quantity_kg=40)]
    assert pairs(mixed([*partly, dom(minutes=3, zone_id="B2")])) == [("PORT", "B2", "I1", "D1")]


def test_certificates_alone_hold_no_stock() -> None:
    raws = [disinfection(code="I1", site="PORT"), dom(minutes=1)]
    assert mixed(raws) == []


def test_mixed_storage_disabled_finds_nothing() -> None:
    rules = RuleSet(version="off", enabled=frozenset(ALERT_TYPES) - {"mixed_storage"})
    assert mixed([imp(), dom(minutes=1)], rules=rules) == []


def test_imported_origins_does_not_make_domestic_batches_the_imported_side() -> None:
    # imported_origins widens the certificate rules; mixed storage stays imported vs domestic.
    both = RuleSet(version="all", imported_origins=frozenset({"imported", "domestic"}))
    assert mixed([dom("D1"), dom("D2", 1)], rules=both) == []
    assert pairs(mixed([imp(), dom(minutes=1)], rules=both)) == [("PORT", "M1", "I1", "D1")]


def test_duplicates_and_order_do_not_change_mixed_storage() -> None:
    raws = [imp(minutes=0), dom(minutes=5), outbound(code="I1", minutes=8, quantity_kg=600)]
    expected = mixed(raws)
    assert mixed([*reversed(raws), *raws]) == expected


# --- co_stored ------------------------------------------------------------------------------


def until(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def costored(raws: list[dict[str, Any]], test_at: float, code: str = "P1") -> list[dict[str, Any]]:
    return co_stored(code, "PORT", by_code(raws), until(test_at))


def pos(minutes: float = 0, **fields: Any) -> dict[str, Any]:
    return intake(code="P1", minutes=minutes, **{"zone_id": "M1", **fields})


def test_a_batch_in_the_same_zone_before_the_test_is_co_stored() -> None:
    raws = [pos(0), imp("O1", 5), dom("O2", 6)]
    assert costored(raws, 10) == [
        {
            "trace_code": "O1",
            "site_id": "PORT",
            "zone_id": "M1",
            "overlap_from": at(5),
            "overlap_until": None,
        },
        {
            "trace_code": "O2",
            "site_id": "PORT",
            "zone_id": "M1",
            "overlap_from": at(6),
            "overlap_until": None,
        },
    ]


def test_co_storage_that_ended_before_the_test() -> None:
    raws = [pos(0), imp("O1", 5), outbound(code="O1", minutes=8, zone_id="M1")]
    (entry,) = costored(raws, 10)
    assert (entry["overlap_from"], entry["overlap_until"]) == (at(5), at(8))


def test_co_storage_counts_only_up_to_the_test() -> None:
    raws = [pos(0), imp("O1", 5), outbound(code="O1", minutes=20, zone_id="M1")]
    (entry,) = costored(raws, 10)
    assert (entry["overlap_from"], entry["overlap_until"]) == (at(5), at(10))


def test_batches_arriving_at_or_after_the_test_are_not_co_stored() -> None:
    assert costored([pos(0), imp("O1", 10)], 10) == []
    assert costored([pos(0), imp("O1", 15)], 10) == []
    assert [e["trace_code"] for e in costored([pos(0), imp("O1", 9.999)], 10)] == ["O1"]


def test_this_batch_arriving_after_the_test_is_not_co_stored_there() -> None:
    assert costored([imp("O1", 0), pos(20)], 10) == []


def test_co_stored_needs_the_same_zone_and_an_overlap() -> None:
    assert costored([pos(0), imp("O1", 5, zone_id="M2")], 10) == []
    gone = [imp("O1", 0), outbound(code="O1", minutes=3, zone_id="M1"), pos(3)]
    assert costored(gone, 10) == []
    assert costored([pos(0), imp("O1", 5, site="CS-001")], 10) == []


def test_co_stored_lists_each_zone_it_shared() -> None:
    raws = [
        pos(0, zone_id="M1", quantity_kg=10),
        pos(1, zone_id="M2", quantity_kg=10),
        imp("O1", 2, zone_id="M1"),
        imp("O1", 3, zone_id="M2"),
    ]
    assert [(e["trace_code"], e["zone_id"]) for e in costored(raws, 10)] == [
        ("O1", "M1"),
        ("O1", "M2"),
    ]
