from __future__ import annotations

from pipeline.rules.lineage import build_lineage
from tests.factories import disinfection, intake, nucleic_test, outbound, parsed


def test_declaration_is_the_earliest_intake_whatever_the_order_given() -> None:
    later = parsed(intake(site="CS-001", minutes=60, from_site_id="PORT", product="other"))
    first = parsed(intake(minutes=0))
    lineage = build_lineage("T1", [later, first], [], [])
    assert lineage.declared is not None
    assert lineage.declared.event_id == first.event_id
    assert [e.event_id for e in lineage.events] == [first.event_id, later.event_id]


def test_no_intake_means_no_declaration() -> None:
    lineage = build_lineage("T1", [parsed(outbound())], [], [])
    assert lineage.declared is None


def test_same_instant_reads_intake_then_disinfection_then_test_then_outbound() -> None:
    raws = [
        outbound(minutes=5),
        nucleic_test(minutes=5),
        disinfection(minutes=5),
        intake(minutes=5),
    ]
    lineage = build_lineage("T1", [parsed(r) for r in raws], [], [])
    assert [e.event_type for e in lineage.events] == [
        "intake",
        "disinfection",
        "nucleic_test",
        "outbound",
    ]


def test_certificate_status_reports_the_worst_test() -> None:
    events = [parsed(intake()), parsed(nucleic_test(result="pending", minutes=1))]
    assert build_lineage("T1", events, [], []).certificates.nucleic_test.status == "pending"
    events.append(parsed(nucleic_test(result="negative", minutes=2)))
    lineage = build_lineage("T1", events, [], [])
    assert lineage.certificates.nucleic_test.status == "negative"
    assert lineage.certificates.disinfection.status == "missing"
    events.append(parsed(nucleic_test(result="positive", minutes=3)))
    assert build_lineage("T1", events, [], []).certificates.nucleic_test.status == "positive"


def test_parents_and_children() -> None:
    child = parsed(intake(code="C1", site="PROC", parent_trace_codes=["P1", "P2"]))
    lineage = build_lineage("C1", [child], ["C1-b", "C1-a"], [])
    assert lineage.parents == ["P1", "P2"]
    assert lineage.children == ["C1-a", "C1-b"]


def test_json_quantities_are_numbers() -> None:
    lineage = build_lineage("T1", [parsed(intake(quantity_kg=12.5))], [], [])
    assert '"received_kg":12.5' in lineage.model_dump_json()
