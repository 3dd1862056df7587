from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from coldchain.embedded import BrokerError, EmbeddedBroker, tansu_binary

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def _refuses_connections(bootstrap: str) -> bool:
    host, port = bootstrap.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def _gone(pid: int) -> bool:
    # Whoever adopts an orphan may not reap it promptly: a zombie is dead too.
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def test_tansu_binary_is_executable() -> None:
    binary = tansu_binary()
    assert binary.name == "tansu"
    assert os.access(binary, os.X_OK)


async def test_start_answers_kafka_and_stop_frees_the_port(tmp_path: Path) -> None:
    log_path = tmp_path / "logs" / "tansu.log"
    broker = EmbeddedBroker(log_path=log_path)
    bootstrap = await broker.start()
    assert bootstrap == broker.bootstrap
    assert bootstrap.startswith("127.0.0.1:")

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic("probe", 2, 1)])
        assert "probe" in await admin.list_topics()
    finally:
        await admin.close()
    assert "listening on" in log_path.read_text()

    await broker.stop()
    await broker.stop()  # idempotent
    assert broker.pid is None
    assert _refuses_connections(bootstrap)

    # The same port can be taken again at once: a restart of coldchain needs that.
    again = EmbeddedBroker(port=int(bootstrap.rsplit(":", 1)[1]))
    assert await again.start() == bootstrap
    await again.stop()


async def test_memory_only_a_restart_starts_empty(broker: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker)
    await admin.start()
    try:
        # Only the topic-free Metadata request of the readiness probe has run.
        assert await admin.list_topics() == []
    finally:
        await admin.close()


async def test_tansu_settings_in_our_environment_do_not_reach_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SCHEMA_REGISTRY", f"file://{tmp_path}/no-such-registry")
    monkeypatch.setenv("STORAGE_ENGINE", "postgres://nobody@127.0.0.1:1/none")
    log_path = tmp_path / "tansu.log"
    broker = EmbeddedBroker(log_path=log_path)
    await broker.start()
    await broker.stop()
    log = log_path.read_text()
    assert "storage: memory://tansu/" in log
    assert "\x1b[" not in log


async def test_taken_port_is_refused_with_what_to_do() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(BrokerError, match=rf"127\.0\.0\.1:{port} is already in use"):
            await EmbeddedBroker(port=port).start()


async def test_start_twice_is_refused(broker: str) -> None:
    embedded = EmbeddedBroker()
    await embedded.start()
    try:
        with pytest.raises(BrokerError, match="already running"):
            await embedded.start()
    finally:
        await embedded.stop()


def test_bootstrap_before_start_says_what_to_do() -> None:
    with pytest.raises(BrokerError, match="await start"):
        _ = EmbeddedBroker().bootstrap


_PARENT = """
import asyncio
from coldchain.embedded import EmbeddedBroker

async def main() -> None:
    broker = EmbeddedBroker()
    bootstrap = await broker.start()
    print(broker.pid, bootstrap, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def test_broker_dies_when_its_parent_is_sigkilled() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        pid_text, bootstrap = parent.stdout.readline().split()
        pid = int(pid_text)
        assert not _gone(pid)
        assert not _refuses_connections(bootstrap)

        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)

        # The group leader turns zombie before tansu's other threads have let go of the
        # listening socket, so wait for both.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if _gone(pid) and _refuses_connections(bootstrap):
                break
            time.sleep(0.05)
        assert _gone(pid), f"tansu {pid} outlived its SIGKILLed parent"
        assert _refuses_connections(bootstrap)
    finally:
        parent.kill()
        parent.wait()
