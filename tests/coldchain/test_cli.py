"""The other commands, each run for real as a subprocess."""

from __future__ import annotations

import csv
import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import yaml

from connectors.auth import TokenRegistry
from tests._system import COLDCHAIN, System, Tokens, running, wait_for
from tests.factories import disinfection, intake, outbound

pytestmark = pytest.mark.slow


def coldchain(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [*COLDCHAIN, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def test_token_new_prints_the_token_once_and_only_its_digest_for_the_file(tmp_path: Path) -> None:
    result = coldchain("token", "new", "--role", "site", "--site", "CS-001", "--site", "CS-002")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    token = lines[1].strip()
    entry = "\n".join(lines[3:])
    assert token.startswith("cc_") and token not in entry
    assert hashlib.sha256(token.encode()).hexdigest() in entry
    path = tmp_path / "tokens.yaml"
    path.write_text("tokens:\n" + entry + "\n")
    assert yaml.safe_load(path.read_text())["tokens"][0]["sites"] == ["CS-001", "CS-002"]
    who = TokenRegistry.load(path).authenticate(f"Bearer {token}")
    assert who is not None and who.may_push("CS-002")

    assert coldchain("token", "new", "--role", "site").returncode == 2
    assert coldchain("token", "new", "--role", "regulator", "--site", "X").returncode == 2


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Tokens:
    return Tokens.write(tmp_path_factory.mktemp("tokens"))


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory, tokens: Tokens) -> Iterator[System]:
    with running(tmp_path_factory.mktemp("cli") / "data", tokens.file) as system:
        yield system


def test_import_jsonl_sends_the_valid_lines_and_reports_the_rest(
    system: System, tokens: Tokens, tmp_path: Path
) -> None:
    good = [
        intake("IMP-JSONL"),
        disinfection("IMP-JSONL", minutes=5),
        outbound("IMP-JSONL", minutes=9),
    ]
    lines = [orjson.dumps(e) for e in good]
    lines.insert(1, b"{not json")
    lines.append(orjson.dumps(intake("IMP-JSONL-2", quantity_kg=-1)))
    lines.append(orjson.dumps(intake("IMP-JSONL-3", site="MKT-01")))  # not this token's site
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")

    result = coldchain("import", str(path), "--url", system.url, "--token", tokens.port_site)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "accepted 3" in result.stdout
    rejected = [
        orjson.loads(line)
        for line in (tmp_path / "export.jsonl.rejected.jsonl").read_bytes().splitlines()
    ]
    assert {(r["line"], r["field"]) for r in rejected} == {
        (2, "(line)"),
        (5, "quantity_kg"),
        (6, "site_id"),
    }
    body = system.batch(tokens.regulator, "IMP-JSONL", 3)
    assert len(body["events"]) == 3

    again = coldchain("import", str(path), "--url", system.url, "--token", tokens.port_site)
    assert "duplicates 3" in again.stdout


def test_import_csv_with_the_contract_field_names(
    system: System, tokens: Tokens, tmp_path: Path
) -> None:
    path = tmp_path / "export.csv"
    fields = [
        "event_id",
        "event_type",
        "trace_code",
        "site_id",
        "occurred_at",
        "zone_id",
        "origin",
        "product",
        "country_of_origin",
        "quantity_kg",
        "parent_trace_codes",
        "certificate_no",
    ]
    rows = [
        {**intake("IMP-CSV-P1"), "parent_trace_codes": ""},
        {
            **intake("IMP-CSV", parent_trace_codes=["IMP-CSV-P1", "IMP-CSV-P2"]),
            "parent_trace_codes": "IMP-CSV-P1;IMP-CSV-P2",
        },
        {**disinfection("IMP-CSV", minutes=3)},
        {**intake("IMP-CSV-BAD"), "country_of_origin": ""},
    ]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    result = coldchain("import", str(path), "--url", system.url, "--token", tokens.port_site)
    assert result.returncode == 1
    assert "line 5" in result.stdout and "country_of_origin" in result.stdout
    body = system.batch(tokens.regulator, "IMP-CSV", 2)
    assert body["parents"] == ["IMP-CSV-P1", "IMP-CSV-P2"]
    assert system.batch(tokens.regulator, "IMP-CSV-P1", 1)["children"] == ["IMP-CSV"]


def test_import_refused_token_fails_with_a_clear_message(system: System, tmp_path: Path) -> None:
    path = tmp_path / "one.jsonl"
    path.write_bytes(orjson.dumps(intake("IMP-NOAUTH")) + b"\n")
    result = coldchain("import", str(path), "--url", system.url, "--token", "cc_wrong")
    assert result.returncode == 2
    assert "401" in result.stderr


def test_up_demo_makes_a_token_loads_the_demo_and_says_where_to_look(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running(data, None, extra_args=["--demo"]) as system:
        output = wait_for(lambda: "batches worth a look" in system.output() and system.output())
        token = (data / "demo-token").read_text().strip()
        assert token in output and system.url in output
        assert f"{system.url}/metrics" in output
        assert token not in (data / "tokens.yaml").read_text()
        codes = [
            line.split()[0] for line in output.split("batches worth a look:")[1].splitlines()[1:4]
        ]
        assert len(codes) == 3
        for code in codes:
            assert system.batch(token, code, 1)["declared"] is not None
    # Loading the demo again sends the same events: nothing new, nothing conflicting.
    with running(data, None, extra_args=["--demo"]) as again:
        output = wait_for(lambda: "batches worth a look" in again.output() and again.output())
        assert "0 new events" in output and token in output


def test_api_and_worker_run_apart_on_external_kafka_and_clickhouse(
    tmp_path: Path, clickhouse_server: str, tokens: Tokens
) -> None:
    import os

    from coldchain.embedded import tansu_binary
    from tests._clickhouse import create_database
    from tests._system import free_port

    kafka_port = free_port()

    tansu = subprocess.Popen(
        [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            f"tcp://127.0.0.1:{kafka_port}",
            "--advertised-listener-url",
            f"tcp://127.0.0.1:{kafka_port}",
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {
        **os.environ,
        "COLDCHAIN_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka_port}",
        "COLDCHAIN_CLICKHOUSE_URL": create_database(clickhouse_server),
        "COLDCHAIN_TOKENS_FILE": str(tokens.file),
    }
    api_port, worker_ports = free_port(), [free_port(), free_port()]
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = [
        subprocess.Popen(
            [*COLDCHAIN, "api", "--host", "127.0.0.1", "--port", str(api_port)],
            env=env,
            stdout=(logs / "api.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
    ] + [
        subprocess.Popen(
            [*COLDCHAIN, "worker", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=(logs / f"worker-{port}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        for port in worker_ports
    ]
    try:
        import httpx

        def healthy(port: int) -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(lambda: all(healthy(p) for p in [api_port, *worker_ports]), timeout=120)
        assert "worker" not in httpx.get(f"http://127.0.0.1:{api_port}/healthz").json()["checks"]
        assert httpx.get(f"http://127.0.0.1:{worker_ports[0]}/metrics").status_code == 200
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{api_port}",
            headers={"Authorization": f"Bearer {tokens.port_site}"},
        )
        codes = [f"PROD-{i}" for i in range(40)]
        assert client.post("/v1/events", json=[intake(c) for c in codes]).status_code == 202
        reader = httpx.Client(
            base_url=f"http://127.0.0.1:{api_port}",
            headers={"Authorization": f"Bearer {tokens.regulator}"},
        )
        wait_for(
            lambda: all(reader.get(f"/v1/batches/{c}").status_code == 200 for c in codes),
            timeout=60,
        )
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        tansu.kill()
        tansu.wait()
    # Both workers took part: the group split the partitions between them.
    assert all(
        "coldchain worker started" in (logs / f"worker-{p}.log").read_text() for p in worker_ports
    )


def test_api_alone_without_external_services_refuses(tmp_path: Path, tokens: Tokens) -> None:
    result = coldchain(
        "api", "--tokens-file", str(tokens.file), env={"COLDCHAIN_KAFKA_BOOTSTRAP": ""}
    )
    assert result.returncode == 2
    assert "COLDCHAIN_KAFKA_BOOTSTRAP" in result.stderr
