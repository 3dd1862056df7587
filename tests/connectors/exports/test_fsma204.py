"""FSMA 204 sortable spreadsheet: FDA's headers, dates, every event type, transformations."""

from __future__ import annotations

import csv
import hashlib
import io
from importlib import resources

import pytest

from connectors.exports import COMBINED_COLUMNS, fda_headers, fsma204_csv, fsma204_rows
from tests.connectors.exports import histories, split_history
from tests.factories import disinfection, intake, nucleic_test, sale

#: The packaged copies of FDA's header rows (June 2024 template), byte for byte.
FDA_FILES = {
    "receiving": "0337f16b526ec937ff3121746b7ec0b0f661c8e26d89b453af7da6baa8604b58",
    "shipping": "8b50d24380d3438bb6762c71815e25394ffcd3fd82605d038ebe787061a83de8",
    "transformation": "5c3363ad716ddbb4e0be84a2eab7ab56e0f8b6388c0b8d6f4229020bee4d906e",
}
RECEIVED = "Location Description for where the Food was Received - Business Name"
PREVIOUS = (
    "Location Description for the Immediate Previous Source (other than a transporter)"
    " - Business Name"
)
RECIPIENT = (
    "Location Description for the Immediate Subsequent Recipient (other than a transporter)"
    " - Business Name"
)
SHIPPED_FROM = (
    "Location Description for the Location from which you Shipped the Food - Business Name"
)
TLC_SOURCE = "Location Description for the Traceability Lot Code Source - Business Name"
INPUT_TLC = "Traceability Lot Code for the FTL Food used in Transformation (if applicable)"
INPUT_QUANTITY = (
    "Quantity of the food from this traceability lot that was used in the transformation"
    " (if applicable)"
)
OUTPUT_TLC = "New Traceability Lot Code you assigned to the Food Produced Through Transformation"
TRANSFORMED_AT = (
    "Location Description for where you Transformed the Food (i.e., the Traceability Lot Code"
    " Source) - Business Name"
)


def parse(text: str) -> tuple[list[str], list[dict[str, str]]]:
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    assert all(len(row) == len(header) for row in body)
    return header, [dict(zip(header, row, strict=True)) for row in body]


@pytest.mark.parametrize("tab", sorted(FDA_FILES))
def test_the_packaged_headers_are_fdas_files_unchanged(tab: str) -> None:
    data = (
        resources.files("connectors.exports")
        .joinpath(f"fsma204/fda-sortable-{tab}-headers.csv")
        .read_bytes()
    )
    assert hashlib.sha256(data).hexdigest() == FDA_FILES[tab]


def test_fda_headers_count_and_order() -> None:
    receiving, shipping, transformation = (
        fda_headers(tab)  # type: ignore[arg-type]
        for tab in ("receiving", "shipping", "transformation")
    )
    assert (len(receiving), len(shipping), len(transformation)) == (36, 36, 31)
    assert receiving[:3] == ("Traceability Lot Code", "Quantity", "Unit of Measure")
    assert receiving[23] == "Date you Received the Food (mm/dd/yyyy)"
    assert shipping[23] == "Shipping Date (mm/dd/yyyy)"
    assert transformation[0] == INPUT_TLC
    assert transformation[10] == TRANSFORMED_AT  # a header with commas, quoted by FDA
    assert transformation[-1] == receiving[-1] == "Reference Document Number2"


@pytest.mark.parametrize("tab", ["receiving", "shipping", "transformation"])
def test_one_tab_has_exactly_fdas_headers(tab: str) -> None:
    header, rows = parse(fsma204_csv("BEEF", histories(split_history()), tab))  # type: ignore[arg-type]
    assert tuple(header) == fda_headers(tab)  # type: ignore[arg-type]
    assert rows


def test_the_combined_csv_has_event_type_first_then_the_union_in_order() -> None:
    receiving = fda_headers("receiving")
    shipping_only = [c for c in fda_headers("shipping") if c not in receiving]
    transformation_only = [
        c for c in fda_headers("transformation") if c not in receiving and c not in shipping_only
    ]
    assert len(shipping_only) == 15 and len(transformation_only) == 27
    expected = ("Event Type", *receiving, *shipping_only, *transformation_only)
    assert expected == COMBINED_COLUMNS and len(expected) == 79
    header, rows = parse(fsma204_csv("BEEF", histories(split_history())))
    assert tuple(header) == expected
    assert [r["Event Type"] for r in rows] == [
        "Receiving",
        "Shipping",
        "Receiving",
        "Shipping",
        "Receiving",
        "Transformation",
        "Transformation",
    ]


def test_receiving_and_shipping_rows() -> None:
    tabs = fsma204_rows("BEEF", histories(split_history()))
    port, cold_storage, processor = tabs["receiving"]
    assert port["Traceability Lot Code"] == "BEEF"
    assert (port["Quantity"], port["Unit of Measure"]) == ("1200.5", "kg")
    assert port["Product Description - Product Name"] == "冷冻牛肉 frozen beef"
    assert port[RECEIVED] == "PORT" and PREVIOUS not in port  # port of entry: no previous site
    assert port["Date you Received the Food (mm/dd/yyyy)"] == "11/01/2026"  # local, not UTC
    assert port[TLC_SOURCE] == "PORT"
    assert [port[f"Reference Document {k}"] for k in ("Type", "Number", "Type2", "Number2")] == [
        "Customs declaration",
        "CD-2026-001",
        "Quarantine certificate",
        "QC-77",
    ]
    assert (cold_storage[PREVIOUS], cold_storage[RECEIVED]) == ("PORT", "CS-001")
    assert (processor[PREVIOUS], processor[RECEIVED]) == ("CS-001", "PROC")
    assert processor["Date you Received the Food (mm/dd/yyyy)"] == "11/02/2026"
    assert cold_storage["Reference Document Type"] == "coldchain event_id"

    first, second = tabs["shipping"]
    assert (first[SHIPPED_FROM], first[RECIPIENT]) == ("PORT", "CS-001")
    assert (second[SHIPPED_FROM], second[RECIPIENT]) == ("CS-001", "PROC")
    assert first["Shipping Date (mm/dd/yyyy)"] == "11/01/2026"
    assert (first["Quantity"], first["Unit of Measure"]) == ("1000", "kg")
    assert first["Reference Document Type2"] == "Vehicle plate"
    assert first["Reference Document Number2"] == "沪A12345"
    assert first[TLC_SOURCE] == "PORT"


def test_dates_are_mm_dd_yyyy_in_the_events_own_offset() -> None:
    late = intake("LATE", "PORT", occurred_at="2026-12-31T23:59:00-05:00")
    rows = fsma204_rows("LATE", histories([late]))["receiving"]
    assert rows[0]["Date you Received the Food (mm/dd/yyyy)"] == "12/31/2026"  # UTC: 01/01/2027


def test_transformation_rows_from_the_parents_side() -> None:
    rows = fsma204_rows("BEEF", histories(split_history()))["transformation"]
    assert [(r[INPUT_TLC], r[OUTPUT_TLC]) for r in rows] == [
        ("BEEF", "BEEF-01"),
        ("BEEF", "BEEF-02"),
    ]
    brisket = rows[0]
    assert brisket[TRANSFORMED_AT] == "PROC"
    assert brisket["Transformation Completion Date (mm/dd/yyyy)"] == "11/02/2026"
    assert brisket[INPUT_QUANTITY] == "1000"  # what BEEF released into processing there
    assert brisket[
        "Product Description for the Incoming FTL Food used in Transformation (if applicable)"
        " - Product Name"
    ] == ("冷冻牛肉 frozen beef")
    assert (
        brisket["Product Description for the Food Produced through Transformation - Product Name"]
        == "牛腩 brisket"
    )
    assert brisket["Quantity of the Food Produced through Transformation"] == "550.25"
    assert brisket["Unit of Measure for the Food Produced through Transformation"] == "kg"
    assert rows[1]["Quantity of the Food Produced through Transformation"] == "400.125"


def test_a_child_lists_only_its_own_transformation_row_and_its_own_tlc_source() -> None:
    tabs = fsma204_rows("BEEF-01", histories(split_history()))
    assert [(r[INPUT_TLC], r[OUTPUT_TLC]) for r in tabs["transformation"]] == [("BEEF", "BEEF-01")]
    (market,) = tabs["receiving"]  # the intake that made it is a transformation, not receiving
    assert (market[PREVIOUS], market[RECEIVED], market[TLC_SOURCE]) == ("PROC", "MKT-01", "PROC")
    (shipped,) = tabs["shipping"]
    assert shipped["Product Description - Product Name"] == "牛腩 brisket"


def test_without_the_parents_events_the_input_quantity_is_blank() -> None:
    own = [e for e in split_history() if e["trace_code"] == "BEEF-02"]
    (row,) = fsma204_rows("BEEF-02", histories(own))["transformation"]
    assert row[INPUT_TLC] == "BEEF" and row[OUTPUT_TLC] == "BEEF-02"
    assert row[INPUT_QUANTITY] == ""
    assert row["Quantity of the Food Produced through Transformation"] == "400.125"


def test_only_critical_tracking_events_become_rows() -> None:
    events = [
        intake("ONLY", "PORT", 0),
        disinfection("ONLY", "PORT", 1),
        nucleic_test("ONLY", "PORT", 2),
        sale("ONLY", "PORT", 3, quantity_kg=0.001),
    ]
    tabs = fsma204_rows("ONLY", histories(events))
    assert [len(tabs[t]) for t in ("receiving", "shipping", "transformation")] == [1, 0, 0]
    _header, rows = parse(fsma204_csv("ONLY", histories(events)))
    assert len(rows) == 1


def test_a_shipping_tab_without_shipments_is_just_fdas_header() -> None:
    text = fsma204_csv("ONLY", histories([intake("ONLY")]), "shipping")
    assert list(csv.reader(io.StringIO(text))) == [list(fda_headers("shipping"))]
