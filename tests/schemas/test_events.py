from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.events import (
    InvalidEvents,
    canonical_json,
    content_hash,
    load_stored,
    validate_event,
    validate_events,
)
from schemas.export import SCHEMA_FILE, rendered
from tests.factories import T0, disinfection, intake, nucleic_test, outbound, sale


def errors_of(raw: object, received_at: datetime | None = None) -> dict[str, str]:
    with pytest.raises(InvalidEvents) as caught:
        validate_event(raw, received_at)
    return {e.field: e.message for e in caught.value.errors}


@pytest.mark.parametrize("make", [intake, disinfection, nucleic_test, outbound, sale])
def test_every_type_round_trips_through_its_canonical_form(make) -> None:
    event = validate_event(make(), None)
    assert load_stored(canonical_json(event)) == event


def test_required_fields_by_type_are_named() -> None:
    raw = intake()
    for name in ("zone_id", "origin", "product", "quantity_kg"):
        raw.pop(name)
    assert set(errors_of(raw)) >= {"zone_id", "origin", "product", "quantity_kg"}
    assert "to_site_id" in errors_of({k: v for k, v in outbound().items() if k != "to_site_id"})
    assert "result" in errors_of({k: v for k, v in nucleic_test().items() if k != "result"})
    assert "certificate_no" in errors_of(
        {k: v for k, v in disinfection().items() if k != "certificate_no"}
    )


def test_imported_needs_a_country_domestic_does_not() -> None:
    raw = intake()
    raw.pop("country_of_origin")
    assert errors_of(raw) == {"country_of_origin": "is required when origin is imported"}
    validate_event(intake(origin="domestic"), None)


def test_country_must_be_an_assigned_iso_code() -> None:
    assert "country_of_origin" in errors_of(intake(country_of_origin="XX"))
    assert "country_of_origin" in errors_of(intake(country_of_origin="br"))


@pytest.mark.parametrize(
    "value",
    ["2026-11-01T08:00:00", "2026-11-01", "yesterday", 1700000000, "2026-11-01T08:00:00+0800"],
)
def test_occurred_at_needs_rfc3339_with_offset(value: object) -> None:
    assert "occurred_at" in errors_of(intake(occurred_at=value))


def test_offset_is_kept() -> None:
    event = validate_event(intake(occurred_at="2026-11-01T08:00:00+08:00"), None)
    assert event.occurred_at.utcoffset() == timedelta(hours=8)
    assert b'"2026-11-01T08:00:00+08:00"' in canonical_json(event)


def test_no_more_than_ten_minutes_in_the_future() -> None:
    received = T0
    validate_event(intake(occurred_at=(T0 + timedelta(minutes=10)).isoformat()), received)
    late = intake(occurred_at=(T0 + timedelta(minutes=10, seconds=1)).isoformat())
    assert "occurred_at" in errors_of(late, received)


@pytest.mark.parametrize("value", ["T 1", "", "x" * 65, "码"])
def test_codes_follow_the_pattern(value: str) -> None:
    assert "trace_code" in errors_of(intake(code=value))
    assert "site_id" in errors_of(intake(site=value))
    assert "to_site_id" in errors_of(outbound(to_site_id=value))
    assert "parent_trace_codes.1" in errors_of(intake(parent_trace_codes=["OK", value]))


def test_quantities_are_positive_with_at_most_three_decimals() -> None:
    assert "quantity_kg" in errors_of(intake(quantity_kg=0))
    assert "quantity_kg" in errors_of(sale(quantity_kg=-1))
    assert "quantity_kg" in errors_of(outbound(quantity_kg=1.2345))
    assert validate_event(outbound(quantity_kg=0.001), None).quantity_kg == Decimal("0.001")


@given(grams=st.integers(min_value=1, max_value=10**12 - 1))
def test_quantities_stay_exact_through_json(grams: int) -> None:
    kilograms = Decimal(grams) / 1000
    event = validate_event(json.loads(json.dumps(intake(quantity_kg=float(kilograms)))), None)
    assert event.quantity_kg == kilograms
    assert load_stored(canonical_json(event)).quantity_kg == kilograms


def test_unknown_fields_are_rejected_by_name() -> None:
    assert errors_of(intake(colour="red"))["colour"].startswith("is not a field")


def test_unknown_event_type_names_event_type() -> None:
    assert "event_type" in errors_of({**intake(), "event_type": "delivery"})
    assert "event_type" in errors_of({k: v for k, v in intake().items() if k != "event_type"})


def test_many_events_report_every_problem_and_keep_the_valid() -> None:
    good = intake()
    valid, errors = validate_events(
        [good, intake(quantity_kg=0), 7, sale(zone_id="bad zone")], None
    )
    assert [e.event_id for e in valid] == [good["event_id"]]
    assert [(e.index, e.field) for e in errors] == [
        (1, "quantity_kg"),
        (2, "(event)"),
        (3, "zone_id"),
    ]


def test_same_content_same_hash_whatever_the_spelling() -> None:
    a = validate_event(intake(event_id="x", quantity_kg=1.5), None)
    b = validate_event(
        {**intake(event_id="x", quantity_kg="1.500"), "occurred_at": a.occurred_at.isoformat()},
        None,
    )
    assert content_hash(a) == content_hash(b)
    c = validate_event(
        {**intake(event_id="x", quantity_kg=1.6), "occurred_at": a.occurred_at.isoformat()}, None
    )
    assert content_hash(a) != content_hash(c)


def test_published_json_schema_is_current() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == rendered(), "run `make schema`"


def test_json_schema_rejects_what_the_models_reject() -> None:
    import jsonschema

    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.validate(json.loads(json.dumps(intake())), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**intake(), "colour": 1}, schema)


def test_received_at_none_skips_only_the_clock_check() -> None:
    far = (datetime.now(UTC) + timedelta(days=400)).isoformat()
    validate_event(intake(occurred_at=far), None)
