"""Trace and exposure over HTTP through the real pipeline (`coldchain up`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.auth import new_token, tokens_file_entry
from tests._system import System, running
from tests.factories import disinfection, intake, nucleic_test, outbound, sale

pytestmark = pytest.mark.slow

MARKETS = [f"MKT-0{i}" for i in range(1, 6)]
CHILDREN = ["SPLIT-A", "SPLIT-B", "SPLIT-C"]


def split_history() -> list[dict]:
    """Port -> two cold storages -> a processor that splits the batch in three -> five markets."""
    code = "SPLIT"
    events = [
        intake(code, "PORT", 0, zone_id="Z1", quantity_kg=900),
        disinfection(code, "PORT", 5),
        nucleic_test(code, "PORT", 10),
        outbound(code, "PORT", 20, quantity_kg=900, to_site_id="CS-001"),
        intake(code, "CS-001", 60, zone_id="A1", quantity_kg=900, from_site_id="PORT"),
        outbound(code, "CS-001", 120, quantity_kg=900, to_site_id="CS-002"),
        intake(code, "CS-002", 180, zone_id="B1", quantity_kg=900, from_site_id="CS-001"),
        outbound(code, "CS-002", 240, quantity_kg=900, to_site_id="PROC"),
        intake(code, "PROC", 300, zone_id="P1", quantity_kg=900, from_site_id="CS-002"),
        sale(code, "PROC", 310, quantity_kg=900, buyer="cutting line"),
        # A neighbour that shares the first cold storage's zone for a while.
        intake("NEIGHBOUR", "CS-001", 90, zone_id="A1", quantity_kg=50),
        outbound("NEIGHBOUR", "CS-001", 400, quantity_kg=20, to_site_id="MKT-09"),
        intake("NEIGHBOUR", "MKT-09", 420, zone_id="S1", quantity_kg=20, from_site_id="CS-001"),
    ]
    for index, child in enumerate(CHILDREN):
        events += [
            intake(child, "PROC", 320, zone_id="P2", quantity_kg=300, parent_trace_codes=["SPLIT"]),
            disinfection(child, "PROC", 325),
            nucleic_test(child, "PROC", 330),
        ]
        for market in MARKETS[index * 2 : index * 2 + 2] or MARKETS[-1:]:
            events += [
                outbound(child, "PROC", 400, quantity_kg=100, to_site_id=market),
                intake(child, market, 460, zone_id="S1", quantity_kg=100, from_site_id="PROC"),
                sale(child, market, 500, quantity_kg=40),
            ]
    return events


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    directory = tmp_path_factory.mktemp("tokens")
    tokens = {
        "regulator": new_token(),
        "pusher": new_token(),
        "cs1": new_token(),
        "far": new_token(),
    }
    every_site = ["PORT", "CS-001", "CS-002", "PROC", "MKT-09", *MARKETS]
    (directory / "tokens.yaml").write_text(
        "tokens:\n"
        + tokens_file_entry(tokens["regulator"], "regulator", [])
        + tokens_file_entry(tokens["pusher"], "site", every_site)
        + tokens_file_entry(tokens["cs1"], "site", ["CS-001"])
        + tokens_file_entry(tokens["far"], "site", ["ELSEWHERE"])
    )
    tokens["file"] = str(directory / "tokens.yaml")
    return tokens


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory, tokens: dict[str, str]) -> Iterator[System]:
    from pathlib import Path

    with running(tmp_path_factory.mktemp("trace") / "data", Path(tokens["file"])) as system:
        events = split_history()
        assert system.client(tokens["pusher"]).post("/v1/events", json=events).status_code == 202
        for code in ["SPLIT", *CHILDREN, "NEIGHBOUR"]:
            count = sum(1 for e in events if e["trace_code"] == code)
            system.batch(tokens["regulator"], code, count)
        yield system


def get(system: System, token: str, path: str, **params: object) -> dict:
    response = system.client(token).get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_downstream_reaches_every_market_through_the_split(system: System, tokens: dict) -> None:
    body = get(system, tokens["regulator"], "/v1/batches/SPLIT/trace", direction="downstream")
    hops = {(n["trace_code"], n["site_id"]): n["hop"] for n in body["sites"]}
    assert hops[("SPLIT", "PORT")] == 0
    assert hops[("SPLIT", "CS-001")] == 1
    assert hops[("SPLIT", "CS-002")] == 2
    assert hops[("SPLIT", "PROC")] == 3
    assert {hops[(child, "PROC")] for child in CHILDREN} == {4}
    markets = {site for (code, site) in hops if code in CHILDREN and site != "PROC"}
    assert markets == set(MARKETS)
    assert all(hops[(c, s)] == 5 for (c, s) in hops if s in MARKETS)
    assert {c["trace_code"] for c in body["trace_codes"]} == {"SPLIT", *CHILDREN}
    link = next(n for n in body["sites"] if n["site_id"] == "CS-001")
    assert len(link["via"]) == 2  # the outbound and the intake it delivered
    assert [(c["trace_code"], c["site_id"], c["zone_id"]) for c in body["co_stored"]] == [
        ("NEIGHBOUR", "CS-001", "A1")
    ]


def test_max_hops_cuts_the_walk(system: System, tokens: dict) -> None:
    body = get(system, tokens["regulator"], "/v1/batches/SPLIT/trace", max_hops=2)
    assert {n["site_id"] for n in body["sites"]} == {"PORT", "CS-001", "CS-002"}
    assert max(n["hop"] for n in body["sites"]) == 2


def test_upstream_from_a_child_finds_the_parent_and_its_sites(system: System, tokens: dict) -> None:
    body = get(system, tokens["regulator"], "/v1/batches/SPLIT-B/trace", direction="upstream")
    codes = {n["trace_code"]: n["hop"] for n in body["sites"]}
    assert codes == {"SPLIT-B": 0, "SPLIT": 1}
    parent_sites = {n["site_id"] for n in body["sites"] if n["trace_code"] == "SPLIT"}
    assert parent_sites == {"PORT", "CS-001", "CS-002", "PROC"}


def test_exposure_lists_what_to_freeze_with_stock_on_hand(system: System, tokens: dict) -> None:
    body = get(system, tokens["regulator"], "/v1/batches/SPLIT/exposure")
    freeze = {(f["trace_code"], f["site_id"]): f["on_hand_kg"] for f in body["freeze"]}
    for child in CHILDREN:
        assert freeze[(child, "PROC")] > 0
    assert freeze[("SPLIT-A", "MKT-01")] == 60
    assert ("SPLIT", "PORT") not in freeze  # nothing left there
    # The neighbour and where it went since, with what is still there.
    assert freeze[("NEIGHBOUR", "CS-001")] == 30
    assert freeze[("NEIGHBOUR", "MKT-09")] == 20
    assert {row["from_trace_code"] for row in body["co_stored_downstream"]} == {"NEIGHBOUR"}


def test_site_tokens_read_only_batches_that_passed_their_sites(
    system: System, tokens: dict
) -> None:
    for path in ["/v1/batches/SPLIT/trace", "/v1/batches/SPLIT/exposure"]:
        assert system.client(tokens["cs1"]).get(path).status_code == 200
        far = system.client(tokens["far"]).get(path)
        assert far.status_code == 404 and far.json()["error"]
        assert system.client(None).get(path).status_code == 401
    assert system.client(tokens["cs1"]).get("/v1/batches/SPLIT-A/trace").status_code == 404
    assert (
        system.client(tokens["regulator"])
        .get("/v1/batches/SPLIT/trace", params={"direction": "sideways"})
        .status_code
        == 422
    )


def test_unknown_codes_are_404(system: System, tokens: dict) -> None:
    for path in ["/v1/batches/NOPE/trace", "/v1/batches/NOPE/exposure"]:
        assert system.client(tokens["regulator"]).get(path).status_code == 404


def test_weekly_compliance_report_names_silent_sites(system: System, tokens: dict) -> None:
    body = get(
        system,
        tokens["regulator"],
        "/v1/reports/compliance",
        **{"from": "2026-10-26", "to": "2026-11-09"},
    )
    rows = {(r["site_id"], r["week_start"]): r for r in body["rows"]}
    port = rows[("PORT", "2026-10-26")]
    assert port["reported"] and port["imported_batches_received"] == 1
    assert port["share_disinfected_before_release"] == 1.0
    assert ("PORT", "2026-11-02") in {(s["site_id"], s["week_start"]) for s in body["silent"]}
    csv_text = (
        system.client(tokens["regulator"])
        .get(
            "/v1/reports/compliance",
            params={"from": "2026-10-26", "to": "2026-11-09", "format": "csv"},
        )
        .text
    )
    assert csv_text.splitlines()[0].startswith("site_id,week_start,reported,")
    assert len(csv_text.splitlines()) == len(body["rows"]) + 1


def test_site_tokens_see_only_their_sites_in_the_report(system: System, tokens: dict) -> None:
    body = get(
        system,
        tokens["cs1"],
        "/v1/reports/compliance",
        **{"from": "2026-10-26", "to": "2026-11-09"},
    )
    assert {r["site_id"] for r in body["rows"]} == {"CS-001"}
    refused = system.client(tokens["cs1"]).get("/v1/reports/compliance", params={"site_id": "PORT"})
    assert refused.status_code == 403
    assert (
        system.client(tokens["regulator"])
        .get("/v1/reports/compliance", params={"from": "x"})
        .status_code
        == 422
    )


def test_lineage_and_exports_of_the_split_batch(system: System, tokens: dict) -> None:
    parent = get(system, tokens["regulator"], "/v1/batches/SPLIT")
    assert parent["children"] == CHILDREN and parent["parents"] == []
    assert {(s["site_id"], s["on_hand_kg"]) for s in parent["sites"]} == {
        ("PORT", 0),
        ("CS-001", 0),
        ("CS-002", 0),
        ("PROC", 0),
    }
    child = get(system, tokens["regulator"], "/v1/batches/SPLIT-A")
    assert child["parents"] == ["SPLIT"] and child["declared"]["site_id"] == "PROC"
    reader = system.client(tokens["regulator"])
    fsma = reader.get("/v1/batches/SPLIT/export", params={"format": "fsma204"})
    assert fsma.status_code == 200 and fsma.headers["content-type"].startswith("text/csv")
    kinds = [line.split(",")[0] for line in fsma.text.splitlines()[1:]]
    assert {"Receiving", "Shipping", "Transformation"} <= set(kinds)
    epcis = reader.get("/v1/batches/SPLIT/export", params={"format": "epcis"})
    assert epcis.status_code == 200 and epcis.json()["type"] == "EPCISDocument"
    for path in ["/v1/batches/SPLIT", "/v1/batches/SPLIT/export?format=epcis"]:
        assert system.client(tokens["far"]).get(path).status_code == 404
        assert system.client(tokens["cs1"]).get(path).status_code == 200
