"""FDA FSMA 204 electronic sortable spreadsheet, as CSV.

FDA's template (June 2024) has a tab per critical tracking event; the headers of the
three tabs used here ship verbatim with the package (``fsma204/*.csv``). Mapping:

- Receiving: every intake that names no parents, and an intake that names parents
  *and* a ``from_site_id``. Immediate previous source = ``from_site_id`` (blank at
  the port of entry); where received = ``site_id``.
- Shipping: every outbound. Immediate subsequent recipient = ``to_site_id``; where
  shipped from = ``site_id``.
- Transformation: one row per (input lot, output lot) of each transformation, i.e.
  of the intakes that name ``parent_trace_codes`` (inputs = parents, output = the new
  code), where the batch is the input or the output. The input quantity is what the
  parent released by ``sale`` at that site for the transformation (blank when none is
  recorded), repeated on each output's row.

Disinfection, nucleic tests and sales to end buyers are not FSMA 204 critical
tracking events: they are in the EPCIS export only. Dates are the event's own local
date (its UTC offset), ``mm/dd/yyyy``; quantities are exact kilograms, unit ``kg``;
the traceability lot code is the trace code; location business names are site ids
(the other location columns stay blank: coldchain knows sites by id only); the
traceability lot code source is the site of the lot's declaration (its first
intake), for a transformed lot the site where it was made.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Final, Literal

from connectors.exports import Histories, kilograms, transformations
from pipeline.rules.lineage import declaration_of
from pipeline.rules.order import event_order_key
from schemas.events import Intake, Outbound

FsmaEvent = Literal["receiving", "shipping", "transformation"]
FSMA204_EVENTS: Final[tuple[FsmaEvent, ...]] = ("receiving", "shipping", "transformation")

#: The ``Event Type`` values of the combined CSV: FDA's tab names.
TAB_NAMES: Final[dict[FsmaEvent, str]] = {
    "receiving": "Receiving",
    "shipping": "Shipping",
    "transformation": "Transformation",
}
UNIT: Final = "kg"

Row = dict[str, str]


@cache
def fda_headers(event: FsmaEvent) -> tuple[str, ...]:
    """FDA's column headers of one tab, verbatim and in FDA's order."""
    text = (
        resources.files("connectors.exports")
        .joinpath(f"fsma204/fda-sortable-{event}-headers.csv")
        .read_text(encoding="utf-8")
    )
    return tuple(next(csv.reader(io.StringIO(text))))


def _combined_columns() -> tuple[str, ...]:
    columns: dict[str, None] = {"Event Type": None}
    for event in FSMA204_EVENTS:
        columns.update(dict.fromkeys(fda_headers(event)))
    return tuple(columns)


#: ``Event Type``, then Receiving's 36 columns in FDA's order, then the Shipping
#: columns Receiving lacks, then the Transformation columns neither has (each in FDA's
#: order; a header string that two tabs share appears once).
COMBINED_COLUMNS: Final = _combined_columns()


def _date(moment: datetime) -> str:
    return moment.strftime("%m/%d/%Y")


def _references(*pairs: tuple[str, str | None]) -> Row:
    present = [(kind, number) for kind, number in pairs if number]
    row: Row = {}
    for (kind, number), suffix in zip(present, ("", "2"), strict=False):
        row[f"Reference Document Type{suffix}"] = kind
        row[f"Reference Document Number{suffix}"] = number
    return row


def _source(prefix: str, site: str | None) -> Row:
    return {f"{prefix} - Business Name": site} if site else {}


_PREVIOUS = "Location Description for the Immediate Previous Source (other than a transporter)"
_RECEIVED = "Location Description for where the Food was Received"
_RECIPIENT = (
    "Location Description for the Immediate Subsequent Recipient (other than a transporter)"
)
_SHIPPED = "Location Description for the Location from which you Shipped the Food"
_TLC_SOURCE = "Location Description for the Traceability Lot Code Source"
_TRANSFORMED = (
    "Location Description for where you Transformed the Food (i.e., the Traceability Lot "
    "Code Source)"
)
_INCOMING = "Product Description for the Incoming FTL Food used in Transformation (if applicable)"
_PRODUCED = "Product Description for the Food Produced through Transformation"


def _check(event: FsmaEvent, row: Row) -> Row:
    unknown = set(row) - set(fda_headers(event))
    assert not unknown, f"not FDA {event} columns: {sorted(unknown)}"
    return row


def fsma204_rows(trace_code: str, histories: Histories) -> dict[FsmaEvent, list[Row]]:
    """Each tab's rows (column -> text; absent columns are blank), in time order."""
    return {
        kind: [row for _, row in rows] for kind, rows in _timed_rows(trace_code, histories).items()
    }


def _timed_rows(
    trace_code: str, histories: Histories
) -> dict[FsmaEvent, list[tuple[datetime, Row]]]:
    own = sorted(histories.get(trace_code, ()), key=event_order_key)
    declared = declaration_of(own)
    product = declared.product if declared else ""
    lot_source = _source(_TLC_SOURCE, declared.site_id if declared else None)
    tabs: dict[FsmaEvent, list[tuple[datetime, Row]]] = {kind: [] for kind in FSMA204_EVENTS}
    for event in own:
        if isinstance(event, Intake) and (event.from_site_id or not event.parent_trace_codes):
            row = {
                "Traceability Lot Code": trace_code,
                "Quantity": kilograms(event.quantity_kg),
                "Unit of Measure": UNIT,
                "Product Description - Product Name": event.product,
                **_source(_PREVIOUS, event.from_site_id),
                **_source(_RECEIVED, event.site_id),
                "Date you Received the Food (mm/dd/yyyy)": _date(event.occurred_at),
                **lot_source,
                **_references(
                    ("Customs declaration", event.customs_declaration_no),
                    ("Quarantine certificate", event.quarantine_cert_no),
                    ("coldchain event_id", event.event_id),
                ),
            }
            tabs["receiving"].append((event.occurred_at, _check("receiving", row)))
        elif isinstance(event, Outbound):
            row = {
                "Traceability Lot Code": trace_code,
                "Quantity": kilograms(event.quantity_kg),
                "Unit of Measure": UNIT,
                "Product Description - Product Name": product,
                **_source(_RECIPIENT, event.to_site_id),
                **_source(_SHIPPED, event.site_id),
                "Shipping Date (mm/dd/yyyy)": _date(event.occurred_at),
                **lot_source,
                **_references(
                    ("coldchain event_id", event.event_id),
                    ("Vehicle plate", event.vehicle_plate),
                ),
            }
            tabs["shipping"].append((event.occurred_at, _check("shipping", row)))
    for transformation in transformations(trace_code, histories):
        for output in transformation.outputs:
            for used in transformation.inputs:
                if trace_code not in (used.trace_code, output.trace_code):
                    continue  # a sibling made in the same transformation: its own export
                quantity = None if used.quantity_kg is None else kilograms(used.quantity_kg)
                row = {
                    "Traceability Lot Code for the FTL Food used in Transformation "
                    "(if applicable)": used.trace_code,
                    f"{_INCOMING} - Product Name": used.product or "",
                    "Quantity of the food from this traceability lot that was used in the "
                    "transformation (if applicable)": quantity or "",
                    "Unit of measure for the food from this traceability lot that was used "
                    "in the transformation (if applicable)": UNIT if quantity else "",
                    "New Traceability Lot Code you assigned to the Food Produced Through "
                    "Transformation": output.trace_code,
                    **_source(_TRANSFORMED, output.site_id),
                    "Transformation Completion Date (mm/dd/yyyy)": _date(output.occurred_at),
                    f"{_PRODUCED} - Product Name": output.product,
                    "Quantity of the Food Produced through Transformation": kilograms(
                        output.quantity_kg
                    ),
                    "Unit of Measure for the Food Produced through Transformation": UNIT,
                    **_references(("coldchain event_id", output.event_id)),
                }
                tabs["transformation"].append((output.occurred_at, _check("transformation", row)))
    return tabs


def _write(columns: Sequence[str], rows: Sequence[Row]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(column, "") for column in columns])
    return out.getvalue()


def fsma204_csv(trace_code: str, histories: Histories, event: FsmaEvent | None = None) -> str:
    """One tab with exactly FDA's headers, or (``event=None``) every tab in one CSV.

    The combined CSV has :data:`COMBINED_COLUMNS`; its rows are Receiving, Shipping
    and Transformation rows in time order (at the same instant: that tab order).
    """
    if event is not None:
        return _write(fda_headers(event), fsma204_rows(trace_code, histories)[event])
    tabs = _timed_rows(trace_code, histories)
    combined = [
        (moment, rank, index, {"Event Type": TAB_NAMES[kind], **row})
        for rank, kind in enumerate(FSMA204_EVENTS)
        for index, (moment, row) in enumerate(tabs[kind])
    ]
    combined.sort(key=lambda item: item[:3])
    return _write(COMBINED_COLUMNS, [item[3] for item in combined])
