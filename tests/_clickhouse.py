"""A real clickhouse-server 18.16 for tests: private ports, data in a temp dir, stopped after.

The Debian package starts no service and ships no client, so tests run the binary
themselves with a config written here and talk to it through clickhouse-driver.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from xml.sax.saxutils import escape

from clickhouse_driver import Client
from clickhouse_driver.errors import Error as DriverError

CLICKHOUSE_SERVER = Path("/usr/sbin/clickhouse-server")

_STARTUP_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 5.0
_PORT_ATTEMPTS = 3

_USERS_XML = """<?xml version="1.0"?>
<yandex>
    <profiles><default/></profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
"""


class ClickHouseServerError(RuntimeError):
    """The test server is missing, did not start, or did not stop."""


def _config_xml(root: Path, tcp_port: int, http_port: int) -> str:
    def under(name: str) -> str:
        return escape(f"{root / name}/")

    return f"""<?xml version="1.0"?>
<yandex>
    <logger>
        <level>warning</level>
        <log>{escape(str(root / "log" / "server.log"))}</log>
        <errorlog>{escape(str(root / "log" / "server.err.log"))}</errorlog>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>{tcp_port}</tcp_port>
    <http_port>{http_port}</http_port>
    <path>{under("data")}</path>
    <tmp_path>{under("tmp")}</tmp_path>
    <user_files_path>{under("user_files")}</user_files_path>
    <format_schema_path>{under("format_schemas")}</format_schema_path>
    <users_config>users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <mark_cache_size>268435456</mark_cache_size>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
</yandex>
"""


def _free_ports(count: int) -> list[int]:
    # Bind all at once so the kernel hands out distinct ports; a race with another
    # process remains possible, which is why start-up is retried on fresh ports.
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _log_tail(root: Path, limit: int = 3000) -> str:
    parts = []
    for name in ("stderr.log", "log/server.err.log"):
        path = root / name
        if path.exists():
            parts.append(f"--- {name} ---\n{path.read_text(errors='replace')[-limit:]}")
    return "\n".join(parts) or "(no server log written)"


def _answers(port: int) -> bool:
    # A plain connect first: the driver logs a traceback for every refused connection.
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    client = Client(host="127.0.0.1", port=port, connect_timeout=1, send_receive_timeout=5)
    try:
        return bool(client.execute("SELECT 1") == [(1,)])
    except (DriverError, OSError, EOFError):
        return False
    finally:
        client.disconnect()


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=_STOP_TIMEOUT_S)


def _start(root: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start the server in ``root``; returns it and its native-protocol port once it answers."""
    tcp_port, http_port = _free_ports(2)
    (root / "config.xml").write_text(_config_xml(root, tcp_port, http_port))
    (root / "users.xml").write_text(_USERS_XML)
    with open(root / "stderr.log", "wb") as stderr:
        process = subprocess.Popen(
            [str(CLICKHOUSE_SERVER), f"--config-file={root / 'config.xml'}"],
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C meant for pytest must not kill it mid-test
        )
    deadline = time.monotonic() + _STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ClickHouseServerError(
                f"clickhouse-server exited with {process.returncode} during start-up "
                f"(ports {tcp_port}/{http_port}):\n{_log_tail(root)}"
            )
        if _answers(tcp_port):
            return process, tcp_port
        time.sleep(0.05)
    _stop(process)
    raise ClickHouseServerError(
        f"clickhouse-server did not answer on 127.0.0.1:{tcp_port} within "
        f"{_STARTUP_TIMEOUT_S:.0f} s:\n{_log_tail(root)}"
    )


@contextmanager
def running_clickhouse_server() -> Iterator[str]:
    """Run a private clickhouse-server; yields ``clickhouse://default:@127.0.0.1:PORT``.

    Data lives in tmpfs when there is one (much faster than ext4 for many small parts).
    """
    if not CLICKHOUSE_SERVER.exists():
        raise ClickHouseServerError(
            f"{CLICKHOUSE_SERVER} is missing: run `make test`, which installs the Debian "
            "package clickhouse-server (or `apt-get install -y clickhouse-server`)"
        )
    shm = Path("/dev/shm")
    parent = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="coldchain-clickhouse-", dir=parent) as tmp:
        root = Path(tmp)
        last_error: ClickHouseServerError | None = None
        for _ in range(_PORT_ATTEMPTS):
            try:
                process, port = _start(root)
                break
            except ClickHouseServerError as exc:
                last_error = exc
        else:
            assert last_error is not None
            raise last_error
        try:
            yield f"clickhouse://default:@127.0.0.1:{port}"
        finally:
            _stop(process)


def create_database(server_url: str, prefix: str = "test") -> str:
    """Create a new, empty database on the server; returns the URL that names it.

    18.16 has no ``DROP TABLE ... SYNC``, so a fresh database per test is the clean slate.
    """
    name = f"{prefix}_{secrets.token_hex(6)}"
    client = Client.from_url(server_url)
    try:
        client.execute(f"CREATE DATABASE {name}")
    finally:
        client.disconnect()
    return f"{server_url}/{name}"
