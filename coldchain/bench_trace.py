"""`coldchain bench --trace`: trace latency on a large lineage store, over real HTTP.

Builds a chdb store of N events (straight into the store: the stream path is measured
by the throughput benchmark), each chain a 5-hop journey — port, two cold storages, a
processor that splits the batch in two, markets — spread over a year, then starts
`coldchain up` on it and times `GET /v1/batches/{code}/trace` and the lineage.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from coldchain.bench import machine, percentile
from coldchain.embedded import free_port
from coldchain.services import running_service
from connectors.auth import new_token, tokens_file_entry
from connectors.store import EventRecord, open_store
from schemas.events import content_hash, validate_event

EVENTS_PER_CHAIN = 18
PORTS, COLD_STORAGES, PROCESSORS, MARKETS, ZONES = 5, 40, 10, 60, 8
START = datetime(2025, 11, 1, tzinfo=UTC)
INSERT_CHUNK = 50_000


def _chain(rng: random.Random, n: int) -> list[dict[str, Any]]:
    code = f"BT-{n:07d}"
    t = START + timedelta(minutes=rng.randrange(365 * 24 * 60))
    port = f"PORT-{rng.randrange(PORTS)}"
    cs_a, cs_b = (f"CS-{i}" for i in rng.sample(range(COLD_STORAGES), 2))
    proc = f"PROC-{rng.randrange(PROCESSORS)}"
    kg = rng.randrange(500, 5000)
    events: list[dict[str, Any]] = []

    def add(kind: str, trace: str, site: str, hours: float, **fields: Any) -> None:
        events.append(
            {
                "event_id": f"{trace}-{len(events)}",
                "event_type": kind,
                "trace_code": trace,
                "site_id": site,
                "occurred_at": (t + timedelta(hours=hours)).isoformat(),
                **fields,
            }
        )

    def zone() -> str:
        return f"Z{rng.randrange(ZONES)}"

    imported = {"origin": "imported", "product": "frozen beef", "country_of_origin": "BR"}
    add("intake", code, port, 0, zone_id=zone(), quantity_kg=kg, **imported)
    add("disinfection", code, port, 2, certificate_no=f"D-{n}")
    add("nucleic_test", code, port, 4, result="negative", report_no=f"R-{n}")
    add("outbound", code, port, 24, quantity_kg=kg, to_site_id=cs_a)
    add("intake", code, cs_a, 30, zone_id=zone(), quantity_kg=kg, from_site_id=port, **imported)
    add("outbound", code, cs_a, 96, quantity_kg=kg, to_site_id=cs_b)
    add("intake", code, cs_b, 100, zone_id=zone(), quantity_kg=kg, from_site_id=cs_a, **imported)
    add("outbound", code, cs_b, 170, quantity_kg=kg, to_site_id=proc)
    add("intake", code, proc, 175, zone_id=zone(), quantity_kg=kg, from_site_id=cs_b, **imported)
    add("sale", code, proc, 180, quantity_kg=kg, buyer="cutting line")
    for part in (1, 2):
        child = f"{code}-{part}"
        market = f"MKT-{rng.randrange(MARKETS)}"
        half = kg // 2
        add(
            "intake",
            child,
            proc,
            181,
            zone_id=zone(),
            quantity_kg=half,
            parent_trace_codes=[code],
            **imported,
        )
        add("outbound", child, proc, 200, quantity_kg=half, to_site_id=market)
        add(
            "intake",
            child,
            market,
            204,
            zone_id=zone(),
            quantity_kg=half,
            from_site_id=proc,
            **imported,
        )
        add("sale", child, market, 230, quantity_kg=half)
    return events


def _records(chains: int, seed: int) -> Iterator[EventRecord]:
    rng = random.Random(seed)  # noqa: S311 - reproducible synthetic data, not secrets
    received = datetime.now(UTC)
    for n in range(chains):
        for raw in _chain(rng, n):
            event = validate_event(raw, None)
            yield EventRecord(event, content_hash(event), received)


async def build_store(data_dir: Path, events: int, seed: int = 7) -> int:
    """Fill a chdb store under ``data_dir`` with about ``events`` events; returns chains."""
    chains = max(1, events // EVENTS_PER_CHAIN)
    store = open_store(None, data_dir)
    await store.migrate()
    chunk: list[EventRecord] = []
    for record in _records(chains, seed):
        chunk.append(record)
        if len(chunk) >= INSERT_CHUNK:
            await store.insert_events(chunk)
            chunk = []
    await store.insert_events(chunk)
    await store.close()
    return chains


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(values, 0.5), 2),
        "p90_ms": round(percentile(values, 0.9), 2),
        "p99_ms": round(percentile(values, 0.99), 2),
        "max_ms": round(max(values), 2),
    }


def main(data_dir: Path | None, events: int, samples: int, as_json: bool) -> None:
    """`coldchain bench --trace`: run, then print a table (or JSON on stdout)."""
    import json
    import shutil
    import tempfile

    from rich.console import Console
    from rich.table import Table

    own = data_dir is None
    directory = Path(tempfile.mkdtemp(prefix="coldchain-bench-trace-")) if own else data_dir
    assert directory is not None
    try:
        report = run(directory, events, samples)
    finally:
        if own:
            shutil.rmtree(directory, ignore_errors=True)
    if as_json:
        print(json.dumps(report))
        return
    table = Table(title="coldchain bench --trace")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("events in the store", f"{report['store_events']:,}")
    table.add_row("store built in", f"{report['store_build_seconds']} s")
    table.add_row("samples (max hops seen)", f"{report['samples']} ({report['max_hops_seen']})")
    for name in ("trace_downstream", "lineage"):
        figures = report[name]
        table.add_row(
            f"GET {name.replace('_', ' ')} p50 / p90 / p99 / max",
            " / ".join(f"{figures[k]} ms" for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")),
        )
    for key, value in report["machine"].items():
        table.add_row(key, str(value))
    Console().print(table)


def run(data_dir: Path, events: int, samples: int) -> dict[str, Any]:
    """Build the store, serve it with `coldchain up`, time traces over HTTP."""
    started = time.perf_counter()
    chains = asyncio.run(build_store(data_dir, events))
    built = time.perf_counter() - started
    token = new_token()
    tokens = data_dir / "bench-tokens.yaml"
    tokens.write_text("tokens:\n" + tokens_file_entry(token, "regulator", []))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    up = [sys.executable, "-m", "coldchain", "up", "--port", str(port)]
    up += ["--data-dir", str(data_dir), "--tokens-file", str(tokens)]
    with running_service(
        up,
        data_dir / "bench-up.log",
        f"{url}/healthz",
        timeout=180,
        env={**os.environ, "COLDCHAIN_LOG_LEVEL": "WARNING"},
        stop=signal.SIGINT,  # drains, then stops
        grace=60,
    ):
        client = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        rng = random.Random(11)  # noqa: S311 - reproducible sample, not secrets
        codes = [f"BT-{rng.randrange(chains):07d}" for _ in range(samples)]
        trace, lineage, hops = [], [], []
        for code in codes:
            t0 = time.perf_counter()
            response = client.get(f"/v1/batches/{code}/trace", params={"direction": "downstream"})
            trace.append((time.perf_counter() - t0) * 1000)
            response.raise_for_status()
            hops.append(max(node["hop"] for node in response.json()["sites"]))
            t0 = time.perf_counter()
            client.get(f"/v1/batches/{code}").raise_for_status()
            lineage.append((time.perf_counter() - t0) * 1000)
    return {
        "machine": machine(),
        "store_events": chains * EVENTS_PER_CHAIN,
        "store_build_seconds": round(built, 1),
        "samples": samples,
        "max_hops_seen": max(hops),
        "trace_downstream": _summary(trace),
        "lineage": _summary(lineage),
    }
