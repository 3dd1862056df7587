"""`GET /v1/batches/{code}/export` over HTTP through the real pipeline (`coldchain up`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.auth import new_token, tokens_file_entry
from connectors.exports import COMBINED_COLUMNS, fda_headers
from tests._system import System, running
from tests.connectors.exports import split_history

pytestmark = pytest.mark.slow

HISTORY = split_history()


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("tokens")
    tokens = {name: new_token() for name in ("pusher", "regulator", "processor", "far")}
    Path(directory / "tokens.yaml").write_text(
        "tokens:\n"
        + tokens_file_entry(tokens["pusher"], "site", ["PORT", "CS-001", "PROC", "MKT-01"])
        + tokens_file_entry(tokens["regulator"], "regulator", [])
        + tokens_file_entry(tokens["processor"], "site", ["PROC"])
        + tokens_file_entry(tokens["far"], "site", ["MKT-99"])
    )
    tokens["file"] = str(directory / "tokens.yaml")
    return tokens


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory, tokens: dict[str, str]) -> Iterator[System]:
    with running(tmp_path_factory.mktemp("exports") / "data", Path(tokens["file"])) as system:
        response = system.client(tokens["pusher"]).post("/v1/events", json=HISTORY)
        assert response.status_code == 202, response.text
        for code in ("BEEF", "BEEF-01", "BEEF-02"):
            system.batch(tokens["regulator"], code, sum(e["trace_code"] == code for e in HISTORY))
        yield system


def export(system: System, token: str, code: str, **params: str):  # type: ignore[no-untyped-def]
    return system.client(token).get(f"/v1/batches/{code}/export", params=params)


def test_fsma204_csv_over_http(system: System, tokens: dict[str, str]) -> None:
    response = export(system, tokens["regulator"], "BEEF", format="fsma204")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="BEEF-fsma204.csv"'
    rows = list(csv.reader(io.StringIO(response.text)))
    assert tuple(rows[0]) == COMBINED_COLUMNS
    assert [r[0] for r in rows[1:]] == [
        "Receiving",
        "Shipping",
        "Receiving",
        "Shipping",
        "Receiving",
        "Transformation",
        "Transformation",
    ]
    assert rows[1][COMBINED_COLUMNS.index("Date you Received the Food (mm/dd/yyyy)")] == (
        "11/01/2026"
    )

    tab = export(system, tokens["processor"], "BEEF", format="fsma204", event="transformation")
    assert tab.status_code == 200, tab.text
    assert "BEEF-fsma204-transformation.csv" in tab.headers["content-disposition"]
    header, *body = list(csv.reader(io.StringIO(tab.text)))
    assert tuple(header) == fda_headers("transformation")
    assert [(r[0], r[9], r[7]) for r in body] == [
        ("BEEF", "BEEF-01", "1000"),
        ("BEEF", "BEEF-02", "1000"),
    ]


def test_epcis_over_http(system: System, tokens: dict[str, str]) -> None:
    response = export(system, tokens["regulator"], "BEEF-01", format="epcis")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/ld+json"
    body = response.json()
    assert body["type"] == "EPCISDocument" and body["schemaVersion"] == "2.0"
    events = body["epcisBody"]["eventList"]
    transformation = events[0]
    assert transformation["type"] == "TransformationEvent"
    assert transformation["eventTime"] == "2026-11-02T14:00:00+08:00"  # the offset survived
    assert transformation["inputQuantityList"] == [
        {"epcClass": "https://coldchain.example/id/lot/BEEF", "quantity": 1000, "uom": "KGM"}
    ]
    assert [e["bizStep"] for e in events[1:]] == [
        "https://coldchain.example/voc/bizstep/disinfecting",
        "inspecting",
        "shipping",
        "receiving",
        "retail_selling",
    ]
    assert {e["eventTimeZoneOffset"] for e in events} == {"+08:00"}


def test_who_may_export(system: System, tokens: dict[str, str]) -> None:
    for fmt in ("fsma204", "epcis"):
        assert export(system, tokens["processor"], "BEEF-02", format=fmt).status_code == 200
        far = export(system, tokens["far"], "BEEF", format=fmt)
        unknown = export(system, tokens["far"], "NEVER-SEEN", format=fmt)
        assert far.status_code == unknown.status_code == 404
        assert far.json()["error"].replace("BEEF", "X") == unknown.json()["error"].replace(
            "NEVER-SEEN", "X"
        )
        assert export(system, tokens["regulator"], "NEVER-SEEN", format=fmt).status_code == 404
        assert system.client(None).get("/v1/batches/BEEF/export").status_code == 401


def test_bad_parameters_are_422_naming_them(system: System, tokens: dict[str, str]) -> None:
    for params in ({"format": "xlsx"}, {}):
        response = export(system, tokens["regulator"], "BEEF", **params)
        assert response.status_code == 422
        assert response.json()["parameter"] == "format" and "format" in response.json()["error"]
    for params in (
        {"format": "fsma204", "event": "selling"},
        {"format": "epcis", "event": "receiving"},
    ):
        response = export(system, tokens["regulator"], "BEEF", **params)
        assert response.status_code == 422
        assert response.json()["parameter"] == "event"
