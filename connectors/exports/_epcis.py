"""GS1 EPCIS 2.0 JSON-LD: a batch's events as an ``EPCISDocument``.

Identifiers and vocabulary (the document is CBV-Compatible, not CBV-Compliant: CBV
has no disinfection step):

- the lot (``epcClass``): ``https://coldchain.example/id/lot/{trace_code}``
- a site (``readPoint``, ``bizLocation``, source and destination ``location``):
  ``https://coldchain.example/id/site/{site_id}``
- ``eventID``: ``urn:uuid:`` + a name-based UUID (v5, URL namespace) of
  ``https://coldchain.example/id/event/{event_id}`` (percent-encoded), so the same
  event gets the same ID in every export; the original id is ``cc:eventId``
- ``bizStep``: CBV ``receiving`` (intake), ``shipping`` (outbound), ``inspecting``
  (nucleic test), ``retail_selling`` (sale), and the project's own
  ``https://coldchain.example/voc/bizstep/disinfecting`` (disinfection)
- extension fields: prefix ``cc`` = ``https://coldchain.example/voc/``, declared in
  ``@context`` beside GS1's EPCIS 2.0 context.

Intakes that name ``parent_trace_codes`` become one ``TransformationEvent`` per
transformation (child codes made at one site and instant from the same parents):
``inputQuantityList`` = the parents (with the kilograms they released there by
``sale``, when recorded), ``outputQuantityList`` = the new codes.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final
from urllib.parse import quote

from connectors.exports import Histories, Transformation, transformations
from pipeline.rules.order import event_order_key
from schemas.events import Disinfection, Event, Intake, NucleicTest, Outbound, Sale

VOCAB_PREFIX: Final = "cc"
VOCAB: Final = "https://coldchain.example/voc/"
ID_BASE: Final = "https://coldchain.example/id/"
BIZSTEP_DISINFECTING: Final = VOCAB + "bizstep/disinfecting"
GS1_CONTEXT: Final = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
EPCIS_CONTEXT: Final = (GS1_CONTEXT, {VOCAB_PREFIX: VOCAB})

_BIZSTEPS: Final = {
    "intake": "receiving",
    "disinfection": BIZSTEP_DISINFECTING,
    "nucleic_test": "inspecting",
    "outbound": "shipping",
    "sale": "retail_selling",
}
#: CBV 2.0 dispositions after each step (none after a disinfection or a pending test).
_DISPOSITIONS: Final = {
    "intake": "in_progress",
    "outbound": "in_transit",
    "sale": "retail_sold",
    "negative": "conformant",
    "positive": "non_conformant",
}
_MAX_OFFSET: Final = timedelta(hours=14)


def lot_uri(trace_code: str) -> str:
    return f"{ID_BASE}lot/{trace_code}"


def site_uri(site_id: str) -> str:
    return f"{ID_BASE}site/{site_id}"


def event_uri(event_id: str) -> str:
    name = f"{ID_BASE}event/{quote(event_id, safe='')}"
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, name)}"


def _cc(name: str) -> str:
    return f"{VOCAB_PREFIX}:{name}"


def _time(moment: datetime) -> dict[str, str]:
    """``eventTime`` in the event's own offset, and that offset as EPCIS writes it.

    An offset EPCIS cannot write (beyond ±14:00, or with seconds) becomes UTC.
    """
    offset = moment.utcoffset() or timedelta(0)
    if abs(offset) > _MAX_OFFSET or offset.seconds % 60 or offset.microseconds:
        moment, offset = moment.astimezone(UTC), timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return {"eventTime": moment.isoformat(), "eventTimeZoneOffset": f"{sign}{hours:02d}:{rest:02d}"}


def _quantity(trace_code: str, kg: Decimal | None) -> dict[str, Any]:
    item: dict[str, Any] = {"epcClass": lot_uri(trace_code)}
    if kg is not None:
        item["quantity"] = float(kg)  # at most 3 decimals: the float is the exact decimal
        item["uom"] = "KGM"
    return item


def _present(**fields: str | None) -> dict[str, str]:
    return {_cc(name): value for name, value in fields.items() if value is not None}


def _location(kind: str, site_id: str) -> dict[str, str]:
    return {"type": "location", kind: site_uri(site_id)}


def _object_event(event: Event) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "ObjectEvent",
        **_time(event.occurred_at),
        "eventID": event_uri(event.event_id),
        "action": "OBSERVE",
        "bizStep": _BIZSTEPS[event.event_type],
    }
    disposition = _DISPOSITIONS.get(
        event.result if isinstance(event, NucleicTest) else event.event_type
    )
    if disposition:
        body["disposition"] = disposition
    body["readPoint"] = {"id": site_uri(event.site_id)}
    if not isinstance(event, Outbound | Sale):  # what left is no longer at the site
        body["bizLocation"] = {"id": site_uri(event.site_id)}
    kg = event.quantity_kg if isinstance(event, Intake | Outbound | Sale) else None
    body["quantityList"] = [_quantity(event.trace_code, kg)]
    if isinstance(event, Intake) and event.from_site_id:
        body["sourceList"] = [_location("source", event.from_site_id)]
        body["destinationList"] = [_location("destination", event.site_id)]
    if isinstance(event, Outbound):
        body["sourceList"] = [_location("source", event.site_id)]
        body["destinationList"] = [_location("destination", event.to_site_id)]
    body[_cc("eventId")] = event.event_id
    body.update(_present(zoneId=getattr(event, "zone_id", None)))
    if isinstance(event, Intake):
        body.update(
            _present(
                product=event.product,
                origin=event.origin,
                countryOfOrigin=event.country_of_origin,
                customsDeclarationNo=event.customs_declaration_no,
                quarantineCertNo=event.quarantine_cert_no,
            )
        )
    elif isinstance(event, Disinfection):
        body.update(
            _present(certificateNo=event.certificate_no, method=event.method, agent=event.agent)
        )
    elif isinstance(event, NucleicTest):
        body.update(
            _present(
                reportNo=event.report_no,
                result=event.result,
                sampleType=event.sample_type,
                lab=event.lab,
            )
        )
    elif isinstance(event, Outbound):
        body.update(_present(vehiclePlate=event.vehicle_plate))
    elif isinstance(event, Sale):
        body.update(_present(buyer=event.buyer))
    return body


def _transformation_event(transformation: Transformation) -> dict[str, Any]:
    site = site_uri(transformation.site_id)
    return {
        "type": "TransformationEvent",
        **_time(transformation.occurred_at),
        "eventID": event_uri("transformation:" + transformation.key),
        "inputQuantityList": [
            _quantity(i.trace_code, i.quantity_kg) for i in transformation.inputs
        ],
        "outputQuantityList": [
            _quantity(o.trace_code, o.quantity_kg) for o in transformation.outputs
        ],
        "readPoint": {"id": site},
        "bizLocation": {"id": site},
        _cc("eventIds"): [o.event_id for o in transformation.outputs],
        _cc("products"): [o.product for o in transformation.outputs],
    }


def _events(trace_code: str, histories: Histories) -> list[dict[str, Any]]:
    own: Sequence[Event] = sorted(histories.get(trace_code, ()), key=event_order_key)
    timed: list[tuple[datetime, int, int, dict[str, Any]]] = []
    for index, event in enumerate(own):
        # An intake that made this code is its transformation, unless it was also
        # received from another site.
        if isinstance(event, Intake) and event.parent_trace_codes and not event.from_site_id:
            continue
        timed.append((event.occurred_at, 0, index, _object_event(event)))
    for index, transformation in enumerate(transformations(trace_code, histories)):
        timed.append((transformation.occurred_at, 1, index, _transformation_event(transformation)))
    timed.sort(key=lambda item: item[:3])
    return [item[3] for item in timed]


def epcis_document(trace_code: str, histories: Histories, created: datetime) -> dict[str, Any]:
    """The batch's EPCIS 2.0 document: its own events and the transformations it was in."""
    return {
        "@context": [GS1_CONTEXT, {VOCAB_PREFIX: VOCAB}],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": created.isoformat(),
        _cc("traceCode"): trace_code,
        "epcisBody": {"eventList": _events(trace_code, histories)},
    }
