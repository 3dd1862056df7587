"""The events cold storage systems push (contract section 1).

Every rule of the contract lives here, so that the API, the importer and the
stream workers reject exactly the same things with the same messages.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from schemas._countries import ISO_3166_ALPHA2

#: Also the order in which events at the same instant are read (contract section 2).
EVENT_TYPES: Final = ("intake", "disinfection", "nucleic_test", "outbound", "sale")

#: How far past the moment of receipt an ``occurred_at`` may lie (clock skew of senders).
MAX_FUTURE_SKEW: Final = timedelta(minutes=10)

#: Validation context key holding the receiving clock's time (API clock or Kafka timestamp).
RECEIVED_AT: Final = "received_at"

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)


def _rfc3339_with_offset(value: object) -> object:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError(
            "must be an RFC 3339 date-time with an offset, e.g. 2024-03-01T08:30:00+08:00"
        )
    return value


def _country(value: str) -> str:
    if value not in ISO_3166_ALPHA2:
        raise ValueError(
            f"{value!r} is not an ISO 3166-1 alpha-2 country code (two capital letters, e.g. BR)"
        )
    return value


def _kilograms_to_json(value: Decimal) -> float:
    # At most 3 decimals and under 1e9 kg: the shortest float repr is the exact decimal.
    return float(value)


Code = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
#: An exact kilogram amount that JSON shows as a plain number.
Quantity = Annotated[
    Decimal, PlainSerializer(_kilograms_to_json, return_type=float, when_used="json")
]
Kilograms = Annotated[Quantity, Field(gt=0, le=Decimal(1_000_000_000), decimal_places=3)]
OccurredAt = Annotated[AwareDatetime, BeforeValidator(_rfc3339_with_offset)]
Country = Annotated[str, StringConstraints(min_length=2, max_length=2), AfterValidator(_country)]


class _EventBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    trace_code: Code
    site_id: Code
    occurred_at: OccurredAt

    @field_validator("occurred_at")
    @classmethod
    def _not_in_future(cls, value: datetime, info: ValidationInfo) -> datetime:
        received_at = (info.context or {}).get(RECEIVED_AT)
        if isinstance(received_at, datetime) and value > received_at + MAX_FUTURE_SKEW:
            raise ValueError(
                f"lies more than 10 minutes after it was received ({received_at.isoformat()}); "
                "check the sending system's clock"
            )
        return value


class Intake(_EventBase):
    """入库: goods received into a storage zone."""

    event_type: Literal["intake"]
    zone_id: Code
    origin: Literal["imported", "domestic"]
    product: Text
    country_of_origin: Country | None = Field(default=None, validate_default=True)
    quantity_kg: Kilograms
    from_site_id: Code | None = None
    parent_trace_codes: list[Code] = Field(default_factory=list, max_length=1000)
    customs_declaration_no: Text | None = None
    quarantine_cert_no: Text | None = None

    @field_validator("country_of_origin")
    @classmethod
    def _imported_names_country(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("origin") == "imported":
            raise ValueError("is required when origin is imported")
        return value


class Disinfection(_EventBase):
    """消杀 of the batch's outer packaging."""

    event_type: Literal["disinfection"]
    certificate_no: Text
    method: Text | None = None
    agent: Text | None = None


class NucleicTest(_EventBase):
    """核酸检测 of product or packaging samples."""

    event_type: Literal["nucleic_test"]
    result: Literal["negative", "positive", "pending"]
    report_no: Text
    sample_type: Literal["product", "packaging"] = "packaging"
    lab: Text | None = None


class Outbound(_EventBase):
    """出库 to another site."""

    event_type: Literal["outbound"]
    quantity_kg: Kilograms
    to_site_id: Code
    zone_id: Code | None = None
    vehicle_plate: Text | None = None


class Sale(_EventBase):
    """Sold to an end buyer: the quantity leaves the chain."""

    event_type: Literal["sale"]
    quantity_kg: Kilograms
    zone_id: Code | None = None
    buyer: Text | None = None


Event = Annotated[
    Intake | Disinfection | NucleicTest | Outbound | Sale, Field(discriminator="event_type")
]
Release = Outbound | Sale

EVENT_ADAPTER: Final[TypeAdapter[Event]] = TypeAdapter(Event)


class FieldError(BaseModel):
    """One problem with one submitted event, as the API's 422 lists it."""

    model_config = ConfigDict(frozen=True)

    index: int | None
    event_id: str | None
    field: str
    message: str


def canonical_json(event: Event) -> bytes:
    """The event's content in one fixed form: equal content gives equal bytes."""
    return event.__pydantic_serializer__.to_json(event)


def content_hash(event: Event) -> str:
    """What decides whether a resent ``event_id`` is a duplicate or a conflict."""
    return hashlib.sha256(canonical_json(event)).hexdigest()


def _field_name(kind: str, loc: tuple[int | str, ...]) -> str:
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        return "event_type"
    # A discriminated union puts the tag first: ('intake', 'zone_id') -> 'zone_id'.
    parts = list(loc)
    if parts and parts[0] in EVENT_TYPES:
        parts = parts[1:]
    return ".".join(str(p) for p in parts) or "(event)"


def _message(error: Any) -> str:
    kind = error["type"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a field of this event type (unknown fields are rejected)"
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        return "must be one of " + ", ".join(EVENT_TYPES)
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _errors_of(exc: ValidationError, index: int | None, raw: object) -> list[FieldError]:
    event_id = raw.get("event_id") if isinstance(raw, dict) else None
    event_id = event_id if isinstance(event_id, str) else None
    errors = []
    for error in exc.errors():
        errors.append(
            FieldError(
                index=index,
                event_id=event_id,
                field=_field_name(error["type"], error["loc"]),
                message=_message(error),
            )
        )
    return errors


def validate_event(raw: object, received_at: datetime | None, index: int | None = None) -> Event:
    """Validate one decoded event; raises :class:`InvalidEvents` naming every bad field."""
    try:
        return EVENT_ADAPTER.validate_python(raw, context={RECEIVED_AT: received_at})
    except ValidationError as exc:
        raise InvalidEvents(_errors_of(exc, index, raw)) from None


def validate_events(
    items: Iterable[object], received_at: datetime | None
) -> tuple[list[Event], list[FieldError]]:
    """Validate many events; returns the valid ones and every problem of the others."""
    valid: list[Event] = []
    errors: list[FieldError] = []
    for index, raw in enumerate(items):
        try:
            valid.append(validate_event(raw, received_at, index))
        except InvalidEvents as exc:
            errors.extend(exc.errors)
    return valid, errors


def load_stored(payload: bytes | str) -> Event:
    """Parse an event the system itself wrote (no clock check: it was checked on entry)."""
    return EVENT_ADAPTER.validate_json(payload)


class InvalidEvents(ValueError):
    """Events failed validation; ``errors`` names each field and what is wrong with it."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))


def events_json_schema() -> dict[str, Any]:
    """The JSON Schema published as ``schemas/events.schema.json``."""
    schema = EVENT_ADAPTER.json_schema(mode="validation")
    schema["title"] = "coldchain event"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
