"""A scripted history: one of each fault of contract section 2 and one compliant batch."""

from __future__ import annotations

from typing import Any

from tests.factories import disinfection, intake, nucleic_test, outbound, sale

COMPLIANT = "SCN-OK"


def history(prefix: str = "SCN") -> tuple[list[dict[str, Any]], set[tuple[str, str]]]:
    """The events, and the (alert type, trace code) pairs that must fire — no others."""
    ok, nodis, notest, pos = f"{prefix}-OK", f"{prefix}-NODIS", f"{prefix}-NOTEST", f"{prefix}-POS"
    mixed, dom, unknown = f"{prefix}-MIXED", f"{prefix}-DOM", f"{prefix}-UNKNOWN"
    over, mismatch = f"{prefix}-OVER", f"{prefix}-MISMATCH"
    events = [
        # Compliant: disinfected and tested before every release, quantities add up.
        intake(ok, "PORT", 0, zone_id="Z1", quantity_kg=100),
        disinfection(ok, "PORT", 10),
        nucleic_test(ok, "PORT", 20),
        outbound(ok, "PORT", 30, quantity_kg=100, to_site_id="CS-001"),
        intake(ok, "CS-001", 60, zone_id="B1", quantity_kg=100, from_site_id="PORT"),
        outbound(ok, "CS-001", 90, quantity_kg=60, to_site_id="MKT-01"),
        intake(ok, "MKT-01", 120, zone_id="S1", quantity_kg=60, from_site_id="CS-001"),
        sale(ok, "MKT-01", 150, quantity_kg=60),
        # Released with a negative test but never disinfected.
        intake(nodis, "PORT", 0, zone_id="Z1", quantity_kg=50),
        nucleic_test(nodis, "PORT", 10),
        outbound(nodis, "PORT", 30, quantity_kg=50, to_site_id="CS-002"),
        # Released while the test was still pending.
        intake(notest, "PORT", 0, zone_id="Z1", quantity_kg=50),
        disinfection(notest, "PORT", 5),
        nucleic_test(notest, "PORT", 10, result="pending"),
        outbound(notest, "PORT", 30, quantity_kg=50, to_site_id="CS-002"),
        # A positive result; held at the port.
        intake(pos, "PORT", 0, zone_id="Z2", quantity_kg=80),
        disinfection(pos, "PORT", 5),
        nucleic_test(pos, "PORT", 40, result="positive"),
        # Imported beside domestic in one cold storage zone.
        intake(mixed, "CS-001", 0, zone_id="M1", quantity_kg=40, country_of_origin="AR"),
        intake(
            dom,
            "CS-001",
            30,
            zone_id="M1",
            quantity_kg=40,
            origin="domestic",
            product="冷冻猪肉 pork",
        ),
        # Sold at a market that never received the code.
        sale(unknown, "MKT-01", 10, quantity_kg=5),
        # 101 kg left where 100 came in: over the 0.5 % tolerance.
        intake(over, "PORT", 0, zone_id="Z1", quantity_kg=100),
        disinfection(over, "PORT", 5),
        nucleic_test(over, "PORT", 10),
        outbound(over, "PORT", 30, quantity_kg=101, to_site_id="CS-002"),
        # The cold storage recorded another country than the port's declaration.
        intake(mismatch, "PORT", 0, zone_id="Z1", quantity_kg=70),
        disinfection(mismatch, "PORT", 5),
        nucleic_test(mismatch, "PORT", 10),
        outbound(mismatch, "PORT", 30, quantity_kg=70, to_site_id="CS-001"),
        intake(
            mismatch,
            "CS-001",
            60,
            zone_id="B1",
            quantity_kg=70,
            from_site_id="PORT",
            country_of_origin="AR",
        ),
    ]
    expected = {
        ("missing_disinfection", nodis),
        ("missing_nucleic_test", notest),
        ("positive_nucleic_test", pos),
        ("mixed_storage", mixed),
        ("unknown_trace_code", unknown),
        ("quantity_exceeded", over),
        ("info_mismatch", mismatch),
    }
    return events, expected
