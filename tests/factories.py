"""Raw event dicts as a cold storage system sends them, with sensible defaults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from schemas.events import Event, validate_event

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
_ids = count(1)


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def _base(
    event_type: str, trace_code: str, site_id: str, minutes: float, **fields: Any
) -> dict[str, Any]:
    return {
        "event_id": fields.pop("event_id", f"ev-{next(_ids)}"),
        "event_type": event_type,
        "trace_code": trace_code,
        "site_id": site_id,
        "occurred_at": at(minutes),
        **fields,
    }


def intake(
    code: str = "T1", site: str = "PORT", minutes: float = 0, **fields: Any
) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "zone_id": "A1",
        "origin": "imported",
        "product": "冷冻牛肉 frozen beef",
        "country_of_origin": "BR",
        "quantity_kg": 1000,
    }
    if fields.get("origin") == "domestic":
        defaults.pop("country_of_origin")
    return _base("intake", code, site, minutes, **{**defaults, **fields})


def disinfection(
    code: str = "T1", site: str = "PORT", minutes: float = 0, **fields: Any
) -> dict[str, Any]:
    return _base("disinfection", code, site, minutes, **{"certificate_no": "D-1", **fields})


def nucleic_test(
    code: str = "T1", site: str = "PORT", minutes: float = 0, **fields: Any
) -> dict[str, Any]:
    return _base(
        "nucleic_test", code, site, minutes, **{"result": "negative", "report_no": "R-1", **fields}
    )


def outbound(
    code: str = "T1", site: str = "PORT", minutes: float = 0, **fields: Any
) -> dict[str, Any]:
    return _base(
        "outbound", code, site, minutes, **{"quantity_kg": 1000, "to_site_id": "CS-001", **fields}
    )


def sale(
    code: str = "T1", site: str = "MKT-01", minutes: float = 0, **fields: Any
) -> dict[str, Any]:
    return _base("sale", code, site, minutes, **{"quantity_kg": 10, **fields})


def parsed(raw: dict[str, Any]) -> Event:
    return validate_event(raw, None)
