"""A batch's lineage as `GET /v1/batches/{trace_code}` serves it (contract section 3)."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

from schemas.alerts import Alert
from schemas.events import Disinfection, Event, NucleicTest, Quantity


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Declaration(_Frozen):
    """What the batch's first intake declared: the reference for accuracy checks."""

    event_id: str
    site_id: str
    zone_id: str
    occurred_at: AwareDatetime
    product: str
    origin: Literal["imported", "domestic"]
    country_of_origin: str | None
    quantity_kg: Quantity
    customs_declaration_no: str | None
    quarantine_cert_no: str | None


class SiteStock(_Frozen):
    """One site's zone: what came in, what left, what should still be there."""

    site_id: str
    zone_id: str | None
    received_kg: Quantity
    released_kg: Quantity
    on_hand_kg: Quantity
    first_seen: AwareDatetime
    last_seen: AwareDatetime


class DisinfectionStatus(_Frozen):
    status: Literal["disinfected", "missing"]
    records: list[Disinfection]


class NucleicTestStatus(_Frozen):
    #: The worst result on record: positive beats negative beats pending.
    status: Literal["positive", "negative", "pending", "missing"]
    records: list[NucleicTest]


class Certificates(_Frozen):
    disinfection: DisinfectionStatus
    nucleic_test: NucleicTestStatus


class BatchLineage(_Frozen):
    trace_code: str
    declared: Declaration | None
    events: list[Event]
    sites: list[SiteStock]
    certificates: Certificates
    parents: list[str]
    children: list[str]
    alerts: list[Alert]
