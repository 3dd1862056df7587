"""Child processes that serve HTTP: started, waited for until ready, stopped.

The benchmarks run `coldchain up` and Alertmanager this way, and the tests Prometheus.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx


class ServiceError(RuntimeError):
    """A child process exited or did not become ready; the message says where its log is."""


@contextmanager
def running_service(
    args: list[str],
    log: Path,
    ready_url: str,
    *,
    timeout: float = 60,
    env: Mapping[str, str] | None = None,
    stop: signal.Signals = signal.SIGTERM,
    grace: float = 15,
) -> Iterator[None]:
    """Run ``args`` (output to ``log``) until ``ready_url`` answers 200; on leaving, send
    ``stop`` and wait ``grace`` seconds before killing it."""
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            args, stdout=handle, stderr=subprocess.STDOUT, env=dict(env) if env else None
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise ServiceError(
                        f"{args[0]} exited {proc.returncode}:\n{log.read_text(errors='replace')}"
                    )
                try:
                    if httpx.get(ready_url, timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise ServiceError(f"{args[0]} not ready after {timeout} s; see {log}")
                time.sleep(0.2)
            yield
        finally:
            proc.send_signal(stop)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
