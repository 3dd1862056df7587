"""A small multi-site history with a split, shared by the export tests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from schemas.events import Event
from tests.factories import disinfection, intake, nucleic_test, outbound, parsed, sale

SHANGHAI = "+08:00"


def local(day: int, hour: int, minute: int = 0, offset: str = SHANGHAI) -> str:
    return f"2026-11-{day:02d}T{hour:02d}:{minute:02d}:00{offset}"


def split_history() -> list[dict[str, Any]]:
    """Port -> cold storage -> processor, which splits BEEF into two cuts -> a market.

    Times are Shanghai local; the port's intake is just after midnight, so its local
    date (11/01) differs from its UTC date (10/31).
    """
    return [
        intake(
            "BEEF",
            "PORT",
            occurred_at=local(1, 0, 30),
            zone_id="Z1",
            quantity_kg=1200.5,
            customs_declaration_no="CD-2026-001",
            quarantine_cert_no="QC-77",
        ),
        disinfection("BEEF", "PORT", occurred_at=local(1, 1), certificate_no="DIS-1", agent="ClO2"),
        nucleic_test("BEEF", "PORT", occurred_at=local(1, 2), report_no="NT-1", lab="Lab A"),
        outbound(
            "BEEF",
            "PORT",
            occurred_at=local(1, 9),
            quantity_kg=1000,
            to_site_id="CS-001",
            vehicle_plate="沪A12345",
        ),
        intake(
            "BEEF",
            "CS-001",
            occurred_at=local(1, 15),
            zone_id="B2",
            quantity_kg=1000,
            from_site_id="PORT",
        ),
        outbound("BEEF", "CS-001", occurred_at=local(2, 8), quantity_kg=1000, to_site_id="PROC"),
        intake(
            "BEEF",
            "PROC",
            occurred_at=local(2, 10),
            zone_id="P1",
            quantity_kg=1000,
            from_site_id="CS-001",
        ),
        sale("BEEF", "PROC", occurred_at=local(2, 11), quantity_kg=1000, buyer="processing input"),
        intake(
            "BEEF-01",
            "PROC",
            occurred_at=local(2, 14),
            zone_id="P2",
            quantity_kg=550.25,
            product="牛腩 brisket",
            parent_trace_codes=["BEEF"],
        ),
        intake(
            "BEEF-02",
            "PROC",
            occurred_at=local(2, 14),
            zone_id="P2",
            quantity_kg=400.125,
            product="牛腱 shank",
            parent_trace_codes=["BEEF"],
        ),
        disinfection("BEEF-01", "PROC", occurred_at=local(2, 15), certificate_no="DIS-2"),
        nucleic_test("BEEF-01", "PROC", occurred_at=local(2, 16), result="pending"),
        outbound(
            "BEEF-01", "PROC", occurred_at=local(3, 9), quantity_kg=550.25, to_site_id="MKT-01"
        ),
        intake(
            "BEEF-01",
            "MKT-01",
            occurred_at=local(3, 12),
            zone_id="S1",
            quantity_kg=550.25,
            product="牛腩 brisket",
            from_site_id="PROC",
        ),
        sale("BEEF-01", "MKT-01", occurred_at=local(3, 18), quantity_kg=0.5, buyer="张三"),
    ]


def histories(raw: Iterable[dict[str, Any]]) -> dict[str, list[Event]]:
    """Events by trace code, as the API loads them for an export."""
    found: dict[str, list[Event]] = {}
    for event in raw:
        parsed_event = parsed(event)
        found.setdefault(parsed_event.trace_code, []).append(parsed_event)
    return found
