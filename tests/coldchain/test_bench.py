"""`coldchain bench` runs end to end and reports every figure (speed is never asserted)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import orjson
import pytest

from tests._system import COLDCHAIN

pytestmark = pytest.mark.slow

THROUGHPUT_FIGURES = (
    "produce_seconds",
    "produce_events_per_s",
    "stored_seconds",
    "stored_events_per_s",
    "batch_rules_seconds",
    "batch_rules_events_per_s",
    "evaluated_seconds",
    "evaluated_events_per_s",
)
LATENCY_FIGURES = (
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "max_ms",
    "accept_p50_ms",
    "accept_p99_ms",
    "to_detected_p50_ms",
    "detected_to_arrival_p50_ms",
)
MACHINE_FIGURES = ("platform", "cpu", "cores", "python", "faust-streaming", "aiokafka", "chdb")


def test_bench_reports_every_figure_and_stores_every_event(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    result = subprocess.run(
        [
            *COLDCHAIN,
            "bench",
            "--events",
            "3000",
            "--latency-samples",
            "20",
            "--data-dir",
            str(data_dir),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "120"},
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = orjson.loads(result.stdout)

    throughput = report["throughput"]
    assert throughput["events"] == 3000
    assert throughput["stored_events"] == 3000
    assert throughput["unexpected_alerts"] == 0, throughput["unexpected_alert_types"]
    assert throughput["messages"] > 0 and throughput["batches"] > 0
    for name in THROUGHPUT_FIGURES:
        assert throughput[name] > 0, name
    # Each wait starts from the same first produce and waits for more than the last.
    assert (
        throughput["stored_seconds"]
        <= throughput["batch_rules_seconds"]
        <= throughput["evaluated_seconds"]
    )

    latency = report["latency"]
    assert latency["samples"] == latency["alerts_received"] == 20
    for name in LATENCY_FIGURES:
        assert latency[name] > 0, name
    assert latency["p50_ms"] <= latency["p90_ms"] <= latency["p99_ms"] <= latency["max_ms"]

    machine = report["machine"]
    for name in MACHINE_FIGURES:
        assert machine[name], name
    assert machine["cores"] > 0

    # The table went to stderr, beside the progress lines.
    assert "event→alert latency" in result.stderr
    assert "stopped in" in result.stderr


def test_bench_refuses_a_data_dir_that_holds_something(tmp_path: Path) -> None:
    (tmp_path / "left-over").write_text("x")
    result = subprocess.run(
        [*COLDCHAIN, "bench", "--events", "10", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert "not empty" in result.stderr


def test_trace_bench_walks_five_hops_and_reports_latency(tmp_path: Path) -> None:
    data_dir = tmp_path / "trace"
    result = subprocess.run(
        [
            *COLDCHAIN,
            "bench",
            "--trace",
            "--trace-events",
            "2000",
            "--trace-samples",
            "5",
            "--data-dir",
            str(data_dir),
            "--json",
        ],
        capture_output=True,
        timeout=300,
        env={**os.environ, "COLDCHAIN_LOG_LEVEL": "WARNING"},
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    report = orjson.loads(result.stdout)
    assert report["store_events"] >= 1980 and report["max_hops_seen"] == 5
    for name in ("trace_downstream", "lineage"):
        figures = report[name]
        assert 0 < figures["p50_ms"] <= figures["p90_ms"] <= figures["p99_ms"] <= figures["max_ms"]
    assert all(key in report["machine"] for key in MACHINE_FIGURES)


def test_oncall_bench_times_pages_through_a_real_alertmanager() -> None:
    result = subprocess.run(
        [*COLDCHAIN, "bench", "--oncall", "--oncall-samples", "5", "--json"],
        capture_output=True,
        timeout=300,
        env={**os.environ, "COLDCHAIN_LOG_LEVEL": "WARNING"},
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    report = orjson.loads(result.stdout)
    figures = report["oncall"]
    assert figures["samples"] == 5 and figures["group_wait"] == "1s"
    assert 0 < figures["p50_ms"] <= figures["p90_ms"] <= figures["p99_ms"] <= figures["max_ms"]
    assert all(key in report["machine"] for key in MACHINE_FIGURES)
