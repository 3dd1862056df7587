"""`coldchain up` as a real subprocess on free loopback ports, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from coldchain.embedded import free_port
from connectors.auth import new_token, tokens_file_entry

COLDCHAIN = [sys.executable, "-m", "coldchain"]


@dataclass
class Tokens:
    regulator: str
    port_site: str  # holds PORT and CS-001
    market: str  # holds MKT-01
    file: Path

    @classmethod
    def write(cls, directory: Path) -> Tokens:
        tokens = cls(new_token(), new_token(), new_token(), directory / "tokens.yaml")
        tokens.file.write_text(
            "tokens:\n"
            + tokens_file_entry(tokens.regulator, "regulator", [])
            + tokens_file_entry(tokens.port_site, "site", ["PORT", "CS-001"])
            + tokens_file_entry(tokens.market, "site", ["MKT-01"])
        )
        return tokens


class System:
    def __init__(
        self,
        data_dir: Path,
        tokens_file: Path | None,
        env: dict[str, str] | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / f"{data_dir.name}-{self.port}.log"
        args = [*COLDCHAIN, "up", "--port", str(self.port), "--data-dir", str(data_dir)]
        if tokens_file is not None:
            args += ["--tokens-file", str(tokens_file)]
        self._handle = self.log.open("wb")
        self.proc = subprocess.Popen(
            args + (extra_args or []),
            stdout=self._handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, "COLDCHAIN_LOG_LEVEL": "INFO", **(env or {})},
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_healthy(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"coldchain up exited {self.proc.returncode}:\n{self.output()}"
                )
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise AssertionError(f"coldchain up not healthy after {timeout} s:\n{self.output()}")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(
                    f"coldchain up ignored signal {sig}:\n{self.output()}"
                ) from None
        self._handle.close()
        return self.proc.returncode

    def client(self, token: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def batch(self, token: str, code: str, events: int) -> dict[str, Any]:
        """The batch's lineage once the worker has stored at least ``events`` of its events."""

        def ready() -> dict[str, Any] | None:
            response = self.client(token).get(f"/v1/batches/{code}")
            if response.status_code == 200 and len(response.json()["events"]) >= events:
                return dict(response.json())
            return None

        return wait_for(ready)  # type: ignore[no-any-return]


@contextmanager
def running(
    data_dir: Path,
    tokens_file: Path | None,
    env: dict[str, str] | None = None,
    extra_args: list[str] | None = None,
) -> Iterator[System]:
    system = System(data_dir, tokens_file, env, extra_args)
    try:
        system.wait_healthy()
        yield system
    finally:
        system.stop()


def wait_for(predicate, timeout: float = 30, every: float = 0.2):  # type: ignore[no-untyped-def]
    """Poll until ``predicate()`` returns something truthy; return it."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last: {value!r})")
        time.sleep(every)
