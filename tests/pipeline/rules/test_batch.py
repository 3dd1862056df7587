"""The per-batch rules (contract section 2), one condition and its edges at a time."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import pytest

from coldchain.rulesets import load_rule_set
from pipeline.rules.batch import Exposure, evaluate_batch
from schemas.alerts import ALERT_TYPES, Finding
from schemas.rules import RuleSet
from tests.factories import at, disinfection, intake, nucleic_test, outbound, parsed, sale

RULES = RuleSet(version="test")
POST_2023 = RuleSet(
    version="post-2023",
    enabled=frozenset(ALERT_TYPES) - {"missing_nucleic_test", "positive_nucleic_test"},
)


def evaluate(
    raws: Iterable[dict[str, Any]],
    rules: RuleSet = RULES,
    exposure: Exposure | None = None,
    code: str = "T1",
) -> list[Finding]:
    return evaluate_batch(code, [parsed(r) for r in raws], rules, exposure)


def of_type(findings: list[Finding], kind: str) -> list[Finding]:
    return [f for f in findings if f.type == kind]


def types(findings: list[Finding]) -> list[str]:
    return sorted(f.type for f in findings)


def certified(minutes: float = 1, site: str = "PORT") -> list[dict[str, Any]]:
    """A disinfection and a negative test: what an imported batch needs before it leaves."""
    return [disinfection(site=site, minutes=minutes), nucleic_test(site=site, minutes=minutes)]


def test_a_compliant_imported_chain_raises_nothing() -> None:
    raws = [
        intake(minutes=0, quantity_kg=1000),
        *certified(1),
        outbound(minutes=10, quantity_kg=600, to_site_id="CS-001"),
        intake(site="CS-001", minutes=20, quantity_kg=600, from_site_id="PORT"),
        sale(site="CS-001", minutes=30, quantity_kg=600),
        sale(site="PORT", minutes=40, quantity_kg=400),
    ]
    assert evaluate(raws) == []


# --- missing_disinfection -------------------------------------------------------------------


def test_missing_disinfection_when_there_is_none() -> None:
    release = outbound(minutes=10, to_site_id="CS-001", quantity_kg=1000)
    found = evaluate([intake(), nucleic_test(minutes=1), release])
    assert types(found) == ["missing_disinfection"]
    (finding,) = found
    assert finding.trace_code == "T1" and finding.site_id == "PORT"
    assert finding.event_ids == (release["event_id"],)
    assert finding.occurred_at.isoformat() == at(10)
    assert finding.details["release_type"] == "outbound"
    assert finding.details["to_site_id"] == "CS-001"


def test_every_uncovered_release_is_its_own_finding() -> None:
    first = sale(site="PORT", minutes=5, quantity_kg=10)
    second = sale(site="PORT", minutes=6, quantity_kg=10)
    found = of_type(
        evaluate([intake(), nucleic_test(minutes=1), first, second]), "missing_disinfection"
    )
    assert [f.event_ids for f in found] == [(first["event_id"],), (second["event_id"],)]
    assert len({f.identity for f in found}) == 2


def test_disinfection_at_another_site_counts() -> None:
    raws = [
        intake(minutes=0),
        *certified(1),
        outbound(minutes=10, to_site_id="CS-001"),
        intake(site="CS-001", minutes=20, from_site_id="PORT"),
        sale(site="CS-001", minutes=30, quantity_kg=1000),
    ]
    assert evaluate(raws) == []


def test_disinfection_at_a_site_that_never_received_still_counts() -> None:
    # The disinfection company's site is unknown for the code, yet the certificate holds.
    raws = [intake(), nucleic_test(minutes=1), disinfection(site="DIS-CO", minutes=2)]
    raws.append(outbound(minutes=10))
    found = evaluate(raws)
    assert types(found) == ["unknown_trace_code"]
    assert found[0].site_id == "DIS-CO"


def test_disinfection_at_the_same_instant_as_the_release_counts() -> None:
    # The event ids would sort the outbound first: the type order decides, not the id.
    raws = [
        intake(minutes=0),
        nucleic_test(minutes=1),
        outbound(minutes=10, event_id="a-outbound"),
        disinfection(minutes=10, event_id="z-disinfection"),
    ]
    assert evaluate(raws) == []


def test_disinfection_after_the_release_does_not_count() -> None:
    late = [intake(), nucleic_test(minutes=1), outbound(minutes=10), disinfection(minutes=10.001)]
    assert types(evaluate(late)) == ["missing_disinfection"]


def test_disinfection_covers_only_the_releases_after_it() -> None:
    early = sale(site="PORT", minutes=5, quantity_kg=1)
    late = sale(site="PORT", minutes=7, quantity_kg=1)
    raws = [intake(), nucleic_test(minutes=1), early, disinfection(minutes=6), late]
    found = of_type(evaluate(raws), "missing_disinfection")
    assert [f.event_ids for f in found] == [(early["event_id"],)]


def test_a_domestic_batch_never_needs_disinfection_or_tests() -> None:
    raws = [
        intake(origin="domestic"),
        outbound(minutes=10, to_site_id="CS-001"),
        intake(site="CS-001", minutes=20, origin="domestic", from_site_id="PORT"),
        sale(site="CS-001", minutes=30, quantity_kg=1000),
    ]
    assert evaluate(raws) == []


def test_the_declaration_decides_imported_not_a_later_intake() -> None:
    imported_first = [
        intake(minutes=0),
        outbound(minutes=10, to_site_id="CS-001"),
        intake(site="CS-001", minutes=20, origin="domestic", from_site_id="PORT"),
    ]
    found = evaluate(imported_first)
    assert len(of_type(found, "missing_disinfection")) == 1
    assert len(of_type(found, "missing_nucleic_test")) == 1
    domestic_first = [
        intake(minutes=0, origin="domestic"),
        outbound(minutes=10, to_site_id="CS-001"),
        intake(site="CS-001", minutes=20, origin="imported", from_site_id="PORT"),
        sale(site="CS-001", minutes=30, quantity_kg=1000),
    ]
    assert types(evaluate(domestic_first)) == ["info_mismatch"]


def test_a_code_with_no_intake_anywhere_has_no_origin() -> None:
    raws = [outbound(minutes=10), sale(site="MKT-01", minutes=20)]
    found = evaluate(raws)
    assert types(found) == ["unknown_trace_code", "unknown_trace_code"]


def test_a_release_at_a_site_that_never_received_raises_unknown_trace_code_alone() -> None:
    # Before any certificate and far more than anyone received: only unknown_trace_code there.
    stray = sale(site="SHOP-9", minutes=5, quantity_kg=5000)
    raws = [
        intake(minutes=0, quantity_kg=1000),
        stray,
        *certified(6),
        outbound(minutes=10, quantity_kg=1000, to_site_id="CS-001"),
    ]
    found = evaluate(raws)
    assert types(found) == ["unknown_trace_code"]
    assert found[0].site_id == "SHOP-9"
    assert found[0].event_ids == (stray["event_id"],)


# --- missing_nucleic_test -------------------------------------------------------------------


def test_missing_nucleic_test_when_there_is_none() -> None:
    release = outbound(minutes=10)
    found = evaluate([intake(), disinfection(minutes=1), release])
    assert types(found) == ["missing_nucleic_test"]
    assert found[0].event_ids == (release["event_id"],)
    assert found[0].details["tests_before_release"] == []


def test_only_pending_is_missing() -> None:
    pending = nucleic_test(minutes=2, result="pending", report_no="R-P")
    found = evaluate([intake(), disinfection(minutes=1), pending, outbound(minutes=10)])
    assert types(found) == ["missing_nucleic_test"]
    assert found[0].details["tests_before_release"] == [
        {"event_id": pending["event_id"], "result": "pending", "report_no": "R-P"}
    ]


def test_pending_then_negative_before_release_is_fine() -> None:
    raws = [
        intake(),
        disinfection(minutes=1),
        nucleic_test(minutes=2, result="pending"),
        nucleic_test(minutes=5, result="negative"),
        outbound(minutes=10),
    ]
    assert evaluate(raws) == []


def test_negative_at_the_same_instant_as_the_release_counts() -> None:
    raws = [
        intake(),
        disinfection(minutes=1),
        outbound(minutes=10, event_id="a-out"),
        nucleic_test(minutes=10, event_id="z-test"),
    ]
    assert evaluate(raws) == []


def test_negative_at_another_site_counts() -> None:
    raws = [
        intake(),
        disinfection(minutes=1),
        outbound(minutes=10, to_site_id="CS-001"),
        intake(site="CS-001", minutes=20, from_site_id="PORT"),
        nucleic_test(site="CS-001", minutes=25),
        sale(site="CS-001", minutes=30, quantity_kg=1000),
    ]
    found = of_type(evaluate(raws), "missing_nucleic_test")
    assert [(f.site_id, f.details["release_type"]) for f in found] == [("PORT", "outbound")]


def test_negative_after_release_does_not_count() -> None:
    raws = [intake(), disinfection(minutes=1), outbound(minutes=10), nucleic_test(minutes=11)]
    assert types(evaluate(raws)) == ["missing_nucleic_test"]


def test_positive_only_is_missing_a_negative() -> None:
    raws = [
        intake(),
        disinfection(minutes=1),
        nucleic_test(minutes=2, result="positive"),
        outbound(minutes=10),
    ]
    assert types(evaluate(raws)) == ["missing_nucleic_test", "positive_nucleic_test"]


# --- positive_nucleic_test ------------------------------------------------------------------


def test_positive_copies_the_exposure_it_is_given() -> None:
    test = nucleic_test(minutes=2, result="positive", report_no="R-9", lab="CDC-1")
    exposure = Exposure(
        downstream=[{"trace_code": "T1", "site_id": "CS-001", "hop": 1}],
        co_stored=[{"trace_code": "T7", "site_id": "PORT", "zone_id": "A1"}],
    )
    found = evaluate([intake(), disinfection(minutes=1), test], exposure=exposure)
    assert types(found) == ["positive_nucleic_test"]
    (finding,) = found
    assert finding.event_ids == (test["event_id"],)
    assert finding.site_id == "PORT" and finding.zone_id is None
    assert finding.occurred_at.isoformat() == at(2)
    assert finding.details["report_no"] == "R-9"
    assert finding.details["lab"] == "CDC-1"
    assert finding.details["sample_type"] == "packaging"
    assert finding.details["downstream"] == exposure.downstream
    assert finding.details["co_stored"] == exposure.co_stored


def test_positive_without_exposure_names_nothing() -> None:
    found = evaluate([intake(), nucleic_test(minutes=2, result="positive")])
    (finding,) = of_type(found, "positive_nucleic_test")
    assert finding.details["downstream"] == [] and finding.details["co_stored"] == []


def test_every_positive_fires_for_any_batch_even_domestic_and_after_a_negative() -> None:
    first = nucleic_test(minutes=2, result="positive")
    second = nucleic_test(site="CS-001", minutes=30, result="positive", sample_type="product")
    raws = [
        intake(origin="domestic"),
        nucleic_test(minutes=1, result="negative"),
        first,
        outbound(minutes=10, to_site_id="CS-001"),
        intake(site="CS-001", minutes=20, origin="domestic", from_site_id="PORT"),
        second,
    ]
    found = evaluate(raws)
    assert types(found) == ["positive_nucleic_test", "positive_nucleic_test"]
    assert [f.event_ids for f in found] == [(first["event_id"],), (second["event_id"],)]
    assert found[1].details["sample_type"] == "product"


# --- unknown_trace_code ---------------------------------------------------------------------


def test_unknown_before_the_first_intake_at_that_site() -> None:
    early = disinfection(site="CS-001", minutes=5)
    raws = [
        intake(minutes=0),
        *certified(1),
        early,
        outbound(minutes=8, to_site_id="CS-001"),
        intake(site="CS-001", minutes=10, from_site_id="PORT"),
        sale(site="CS-001", minutes=20, quantity_kg=1000),
    ]
    found = evaluate(raws)
    assert types(found) == ["unknown_trace_code"]
    (finding,) = found
    assert finding.site_id == "CS-001" and finding.zone_id is None
    assert finding.event_ids == (early["event_id"],)
    assert finding.occurred_at.isoformat() == at(5)
    assert finding.details["received_here"] is True


def test_an_intake_at_the_same_instant_counts_as_at_or_before() -> None:
    # The ids would read the sale first: the type order (intake first) decides.
    raws = [
        intake(minutes=0),
        *certified(1),
        outbound(minutes=8, to_site_id="CS-001"),
        sale(site="CS-001", minutes=10, quantity_kg=1000, event_id="a-sale"),
        intake(site="CS-001", minutes=10, from_site_id="PORT", event_id="z-intake"),
    ]
    assert evaluate(raws) == []


def test_an_intake_elsewhere_does_not_make_a_site_know_the_code() -> None:
    stray = nucleic_test(site="LAB", minutes=2)
    found = evaluate([intake(), disinfection(minutes=1), stray, outbound(minutes=10)])
    assert types(found) == ["unknown_trace_code"]
    assert found[0].site_id == "LAB"
    assert found[0].details["received_here"] is False


def test_one_unknown_alert_per_site_naming_every_offending_event() -> None:
    shop9 = [
        disinfection(site="SHOP-9", minutes=3),
        nucleic_test(site="SHOP-9", minutes=3),
        sale(site="SHOP-9", minutes=4, quantity_kg=1),
        sale(site="SHOP-9", minutes=50, quantity_kg=1),
    ]
    shop8 = [sale(site="SHOP-8", minutes=6, quantity_kg=1)]
    later_known = [
        sale(site="CS-001", minutes=7, quantity_kg=1),
        intake(site="CS-001", minutes=8, from_site_id="PORT"),
        sale(site="CS-001", minutes=9, quantity_kg=1),  # after its intake: fine
    ]
    raws = [intake(), *certified(1), outbound(minutes=2, to_site_id="CS-001")]
    found = of_type(evaluate(raws + shop8 + shop9 + later_known), "unknown_trace_code")
    by_site = {f.site_id: f for f in found}
    assert sorted(by_site) == ["CS-001", "SHOP-8", "SHOP-9"]
    assert by_site["SHOP-9"].event_ids == tuple(e["event_id"] for e in shop9)
    assert [e["event_type"] for e in by_site["SHOP-9"].details["events"]] == [
        "disinfection",
        "nucleic_test",
        "sale",
        "sale",
    ]
    assert by_site["SHOP-9"].occurred_at.isoformat() == at(3)
    assert by_site["SHOP-8"].event_ids == (shop8[0]["event_id"],)
    assert by_site["CS-001"].event_ids == (later_known[0]["event_id"],)
    assert len({f.identity for f in found}) == 3


# --- quantity_exceeded ----------------------------------------------------------------------


def quantity(raws: list[dict[str, Any]], rules: RuleSet = RULES) -> list[Finding]:
    return of_type(evaluate([*certified(0.5), *raws], rules), "quantity_exceeded")


def test_exactly_half_a_percent_over_is_allowed() -> None:
    raws = [
        intake(quantity_kg=1000),
        sale(site="PORT", minutes=5, quantity_kg=600),
        sale(site="PORT", minutes=6, quantity_kg=405),
    ]
    assert quantity(raws) == []


def test_a_gram_more_than_half_a_percent_over_fires() -> None:
    first = sale(site="PORT", minutes=5, quantity_kg=600)
    second = sale(site="PORT", minutes=6, quantity_kg="405.001")
    third = sale(site="PORT", minutes=7, quantity_kg="0.001")
    (finding,) = quantity([intake(quantity_kg=1000), first, second, third])
    assert finding.site_id == "PORT" and finding.zone_id is None
    assert finding.event_ids == (first["event_id"], second["event_id"], third["event_id"])
    # Its moment is the release that took the running total past the limit.
    assert finding.occurred_at.isoformat() == at(6)
    assert finding.details["received_kg"] == 1000
    assert finding.details["released_kg"] == 1005.002
    assert finding.details["tolerance"] == 0.005


def test_quantity_is_judged_per_site() -> None:
    raws = [
        intake(quantity_kg=1000),
        outbound(minutes=10, quantity_kg=500, to_site_id="CS-001"),
        intake(site="CS-001", minutes=20, quantity_kg=500, from_site_id="PORT"),
        # CS-001 releases more than it received, though less than the port received.
        sale(site="CS-001", minutes=30, quantity_kg="502.501"),
    ]
    found = quantity(raws)
    assert [(f.site_id, f.details["received_kg"]) for f in found] == [("CS-001", 500)]


def test_a_batch_that_left_a_zone_and_came_back_counts_all_it_received() -> None:
    def history(last: str) -> list[dict[str, Any]]:
        return [
            intake(quantity_kg=10, zone_id="A1", minutes=0),
            outbound(quantity_kg=10, zone_id="A1", minutes=1),
            intake(quantity_kg=4, zone_id="A1", minutes=2),
            outbound(quantity_kg=last, minutes=3),
        ]

    assert quantity(history("4.07")) == []  # 14.07 == 14 x 1.005
    (finding,) = quantity(history("4.071"))
    assert finding.details["received_kg"] == 14
    assert finding.details["released_kg"] == 14.071


def test_quantity_tolerance_of_the_rule_set_takes_effect() -> None:
    raws = [intake(quantity_kg=1000), sale(site="PORT", minutes=5, quantity_kg="1000.001")]
    assert quantity(raws) == []
    strict = RuleSet(version="strict", quantity_tolerance=Decimal(0))
    (finding,) = quantity(raws, strict)
    assert finding.details["tolerance"] == 0
    lax = RuleSet(version="lax", quantity_tolerance=Decimal("0.1"))
    assert quantity([intake(quantity_kg=1000), sale(site="PORT", quantity_kg=1100)], lax) == []
    over = [intake(quantity_kg=1000), sale(site="PORT", quantity_kg="1100.001")]
    assert len(quantity(over, lax)) == 1


# --- info_mismatch --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changed", "field", "declared", "recorded"),
    [
        (
            {"product": "冷冻猪肉 frozen pork"},
            "product",
            "冷冻牛肉 frozen beef",
            "冷冻猪肉 frozen pork",
        ),
        ({"country_of_origin": "AR"}, "country_of_origin", "BR", "AR"),
        ({"origin": "domestic"}, "origin", "imported", "domestic"),
    ],
)
def test_an_intake_differing_from_the_declaration(
    changed: dict[str, Any], field: str, declared: str, recorded: str
) -> None:
    first = intake(minutes=0, quantity_kg=1000)
    second = intake(
        site="CS-001", minutes=20, zone_id="C3", quantity_kg=1000, from_site_id="PORT", **changed
    )
    raws = [first, *certified(1), outbound(minutes=10, to_site_id="CS-001"), second]
    found = evaluate(raws)
    assert types(found) == ["info_mismatch"]
    (finding,) = found
    assert finding.site_id == "CS-001" and finding.zone_id == "C3"
    assert finding.event_ids == (second["event_id"], first["event_id"])
    assert finding.details["kind"] == "differs_from_declaration"
    assert finding.details["declaration"] == first["event_id"]
    assert finding.details["fields"][field] == {"declared": declared, "recorded": recorded}


def test_an_intake_like_the_declaration_is_no_mismatch_even_at_another_zone() -> None:
    raws = [intake(zone_id="A1"), intake(minutes=5, zone_id="B2", quantity_kg=1)]
    assert of_type(evaluate(raws), "info_mismatch") == []


def test_the_declaration_is_the_earliest_occurred_at_not_the_first_to_arrive() -> None:
    # The later intake arrives first and says pork; the declaration (earliest) says beef.
    arrived_first = intake(site="CS-001", minutes=20, product="pork")
    declaration = intake(minutes=0, product="beef")
    (finding,) = of_type(evaluate([arrived_first, declaration]), "info_mismatch")
    assert finding.event_ids == (arrived_first["event_id"], declaration["event_id"])
    assert finding.details["declaration"] == declaration["event_id"]
    assert finding.details["fields"] == {"product": {"declared": "beef", "recorded": "pork"}}


def received(raws: list[dict[str, Any]], rules: RuleSet = RULES) -> list[Finding]:
    found = of_type(
        evaluate([intake(quantity_kg=1000), *certified(1), *raws], rules), "info_mismatch"
    )
    return [f for f in found if f.details["kind"] == "received_more_than_sent"]


def test_received_exactly_half_a_percent_more_than_sent_is_allowed() -> None:
    raws = [
        outbound(minutes=10, quantity_kg=300, to_site_id="CS-001"),
        outbound(minutes=11, quantity_kg=200, to_site_id="CS-001"),
        intake(site="CS-001", minutes=20, quantity_kg=250, from_site_id="PORT"),
        intake(site="CS-001", minutes=21, quantity_kg="252.5", from_site_id="PORT"),
    ]
    assert received(raws) == []


def test_received_a_gram_more_fires() -> None:
    first = intake(site="CS-001", minutes=20, quantity_kg=250, from_site_id="PORT")
    second = intake(site="CS-001", minutes=21, quantity_kg="252.501", from_site_id="PORT")
    raws = [outbound(minutes=10, quantity_kg=500, to_site_id="CS-001"), first, second]
    (finding,) = received(raws)
    assert finding.site_id == "CS-001" and finding.zone_id is None
    assert finding.event_ids == (first["event_id"], second["event_id"])
    assert finding.occurred_at.isoformat() == at(21)
    assert finding.details["from_site_id"] == "PORT"
    assert finding.details["received_kg"] == 502.501
    assert finding.details["sent_kg"] == 500
    assert finding.details["tolerance"] == 0.005


def test_only_outbounds_to_this_site_count_as_sent() -> None:
    raws = [
        outbound(minutes=10, quantity_kg=500, to_site_id="CS-002"),
        intake(site="CS-001", minutes=20, quantity_kg=500, from_site_id="PORT"),
    ]
    (finding,) = received(raws)
    assert finding.details["sent_kg"] == 0


def test_a_sender_that_never_sent_is_a_mismatch() -> None:
    ghost = intake(site="CS-001", minutes=20, quantity_kg=1, from_site_id="CS-404")
    (finding,) = received([ghost])
    assert finding.details["from_site_id"] == "CS-404"
    assert finding.details["sent_kg"] == 0
    assert finding.identity == ("from_site", "CS-001", "CS-404")


def test_intakes_without_from_site_are_exempt() -> None:
    raws = [intake(site="CS-001", minutes=20, quantity_kg=5000)]
    assert of_type(evaluate([intake(), *raws]), "info_mismatch") == []


def test_received_is_judged_per_receiving_site_and_sender() -> None:
    raws = [
        outbound(minutes=10, quantity_kg=500, to_site_id="CS-001"),
        outbound(minutes=10, quantity_kg=500, to_site_id="CS-002"),
        intake(site="CS-001", minutes=20, quantity_kg=500, from_site_id="PORT"),
        intake(site="CS-002", minutes=20, quantity_kg=600, from_site_id="PORT"),
    ]
    (finding,) = received(raws)
    assert finding.site_id == "CS-002"


def test_info_tolerance_of_the_rule_set_takes_effect() -> None:
    raws = [
        outbound(minutes=10, quantity_kg=500, to_site_id="CS-001"),
        intake(site="CS-001", minutes=20, quantity_kg="500.001", from_site_id="PORT"),
    ]
    assert received(raws) == []
    assert len(received(raws, RuleSet(version="strict", info_tolerance=Decimal(0)))) == 1
    # The quantity tolerance is a different knob.
    assert received(raws, RuleSet(version="q", quantity_tolerance=Decimal(0))) == []


# --- rule sets ------------------------------------------------------------------------------


def faulty() -> list[dict[str, Any]]:
    """One of each per-batch fault (imported batch)."""
    return [
        intake(minutes=0, quantity_kg=1000),
        nucleic_test(minutes=1, result="positive"),
        outbound(minutes=10, quantity_kg=1000, to_site_id="CS-001"),  # no disinfection/negative
        intake(site="CS-001", minutes=20, quantity_kg=1100, from_site_id="PORT", product="pork"),
        sale(site="CS-001", minutes=30, quantity_kg=1200),
        sale(site="SHOP-9", minutes=40, quantity_kg=1),
    ]


PER_BATCH = sorted(set(ALERT_TYPES) - {"mixed_storage"})


def test_the_faulty_history_raises_every_per_batch_type() -> None:
    assert sorted(set(types(evaluate(faulty())))) == PER_BATCH


@pytest.mark.parametrize("disabled", PER_BATCH)
def test_a_disabled_rule_finds_nothing(disabled: str) -> None:
    rules = RuleSet(version="less", enabled=frozenset(ALERT_TYPES) - {disabled})
    assert sorted(set(types(evaluate(faulty(), rules)))) == [t for t in PER_BATCH if t != disabled]


def test_nothing_enabled_finds_nothing() -> None:
    assert evaluate(faulty(), RuleSet(version="none", enabled=frozenset())) == []


@pytest.mark.parametrize(
    "rules",
    [POST_2023, load_rule_set(None).model_copy(update={"enabled": POST_2023.enabled})],
    ids=["inline", "contract-v1-narrowed"],
)
def test_a_post_2023_rule_set_drops_the_nucleic_test_rules(rules: RuleSet) -> None:
    found = types(evaluate(faulty(), rules))
    assert "missing_nucleic_test" not in found and "positive_nucleic_test" not in found
    assert "missing_disinfection" in found


def test_the_shipped_2023_rule_set_drops_the_nucleic_test_rules() -> None:
    from importlib import resources

    path = resources.files("coldchain.rulesets") / "2023-no-nucleic-test.yaml"
    with resources.as_file(path) as file:
        rules = load_rule_set(file)
    assert sorted(set(types(evaluate(faulty(), rules)))) == [
        "info_mismatch",
        "missing_disinfection",
        "quantity_exceeded",
        "unknown_trace_code",
    ]


def test_imported_origins_widens_the_certificate_rules_to_domestic() -> None:
    raws = [intake(origin="domestic"), sale(site="PORT", minutes=5, quantity_kg=1)]
    assert evaluate(raws) == []
    both = RuleSet(version="all", imported_origins=frozenset({"imported", "domestic"}))
    assert types(evaluate(raws, both)) == ["missing_disinfection", "missing_nucleic_test"]


def test_imported_origins_without_imported_spares_imported_batches() -> None:
    raws = [intake(), sale(site="PORT", minutes=5, quantity_kg=1)]
    assert types(evaluate(raws)) == ["missing_disinfection", "missing_nucleic_test"]
    domestic_only = RuleSet(version="dom", imported_origins=frozenset({"domestic"}))
    assert evaluate(raws, domestic_only) == []


def test_the_input_order_and_duplicates_do_not_matter() -> None:
    raws = faulty()
    events = [parsed(r) for r in raws]
    expected = evaluate_batch("T1", events, RULES)
    again = [parsed(r) for r in reversed(raws)] + events[::2]
    assert evaluate_batch("T1", again, RULES) == expected
