"""`coldchain bench --oncall`: from accept() to the on-call webhook.

The embedded stack runs with COLDCHAIN_ALERTMANAGER_URL pointing at a real
Alertmanager (the Debian binary) configured with ops/alertmanager.yml, every
receiver's webhook pointed at a receiver in this process. One scenario at a time
(an imported batch shipped with no certificate: missing_disinfection, critical)
is accepted at a steady pace; the figure is the time from just before accept() to
the webhook receiving the page. It includes the critical route's group_wait, which
is Alertmanager waiting on purpose; the report shows it beside the figures.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from coldchain.alerting import (
    Webhook,
    alertmanager,
    ops_alertmanager_config,
    webhook_receiver,
)
from coldchain.bench import (
    BenchError,
    Progress,
    latency_scenario,
    machine,
    percentile,
    quiet_logging,
)
from coldchain.config import Settings
from coldchain.runtime import Runtime
from coldchain.services import ServiceError

ALERT_TYPE = "missing_disinfection"
RECEIVER = "oncall"
INTERVAL_SECONDS = 0.2
GRACE_SECONDS = 60.0


def _first_pages(hook: Webhook) -> dict[str, float]:
    """trace code -> when the on-call receiver first got its firing alert (epoch s)."""
    pages: dict[str, float] = {}
    for at, body in hook.timed():
        if body.get("receiver") != RECEIVER:
            continue
        for alert in body["alerts"]:
            labels = alert["labels"]
            if alert["status"] == "firing" and labels.get("type") == ALERT_TYPE:
                pages.setdefault(labels["trace_code"], at)
    return pages


async def _measure(
    data_dir: Path, am_url: str, hook: Webhook, samples: int, say: Progress
) -> dict[str, Any]:
    settings = Settings.from_env(env={}, data_dir=data_dir, alertmanager_url=am_url)
    runtime = Runtime(settings, "up")
    say("starting the embedded stack with Alertmanager …")
    await runtime.start()
    sent: dict[str, float] = {}
    try:
        now = datetime.now(UTC)
        start = time.perf_counter()
        for i in range(samples):
            code, events = latency_scenario(i, now)
            await asyncio.sleep(max(0.0, start + i * INTERVAL_SECONDS - time.perf_counter()))
            sent[code] = time.time()
            await runtime.ingestor.accept(events)
        say(f"sent {samples} scenarios; waiting for the pages …")
        deadline = time.monotonic() + GRACE_SECONDS
        while len(pages := _first_pages(hook)) < samples:
            if time.monotonic() > deadline:
                raise BenchError(f"{samples - len(pages)} of {samples} pages never arrived")
            await asyncio.sleep(0.1)
    finally:
        await runtime.stop()
    latencies = [(pages[code] - at) * 1000 for code, at in sent.items()]
    return {
        "samples": samples,
        "interval_ms": INTERVAL_SECONDS * 1000,
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p90_ms": round(percentile(latencies, 0.90), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "max_ms": round(max(latencies), 1),
    }


def main(data_dir: Path | None, samples: int, as_json: bool) -> int:
    quiet_logging()
    out = Console(stderr=as_json, soft_wrap=True)
    say = Progress(Console(stderr=True, soft_wrap=True, style="dim"))
    scratch = Path(tempfile.mkdtemp(prefix="coldchain-bench-oncall-"))
    try:
        with webhook_receiver() as hook:
            config = ops_alertmanager_config(hook.url)
            critical = next(
                r for r in config["route"].get("routes", []) if r.get("receiver") == RECEIVER
            )
            with alertmanager(scratch / "alertmanager", config) as am_url:
                result = asyncio.run(
                    _measure(data_dir or scratch / "data", am_url, hook, samples, say)
                )
    except (ServiceError, BenchError) as exc:
        Console(stderr=True).print(f"coldchain bench --oncall: {exc}", style="bold red")
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report = {
        "machine": machine(),
        "oncall": {**result, "group_wait": critical.get("group_wait", "(default)")},
    }
    table = Table(title="coldchain bench --oncall", header_style="bold")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row(
        "accept() → on-call webhook p50 / p90 / p99 / max",
        f"{result['p50_ms']} / {result['p90_ms']} / {result['p99_ms']} / {result['max_ms']} ms",
    )
    table.add_row("  samples (one every)", f"{result['samples']} ({result['interval_ms']:.0f} ms)")
    table.add_row("  of which Alertmanager's group_wait", str(report["oncall"]["group_wait"]))
    m = report["machine"]
    table.add_row("cpu", f"{m['cpu']} × {m['cores']}")
    out.print(table)
    if as_json:
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    return 0
