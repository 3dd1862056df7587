"""The server backend: clickhouse-driver over the native protocol (port 9000)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from clickhouse_driver import Client
from clickhouse_driver.errors import Error as DriverError

from connectors.store._base import SqlStore, StoreError

_URL_FORM = "clickhouse://user:password@host:9000/database"
_DATABASE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# A ping must fail within seconds when the server hangs, not after the driver's
# default five minutes; a 5,000-event insert takes well under a second.
_CONNECT_TIMEOUT_S = 5
_SEND_RECEIVE_TIMEOUT_S = 60

# What the driver raises when the server is down, drops the connection or refuses SQL.
_FAILURES = (DriverError, OSError, EOFError)


@dataclass(frozen=True)
class ServerAddress:
    """Where the server is and which database holds the lineage."""

    host: str
    port: int
    user: str
    password: str
    database: str

    @classmethod
    def parse(cls, url: str) -> ServerAddress:
        try:
            parts = urlsplit(url)
            port = parts.port or 9000
        except ValueError as exc:
            raise StoreError(f"bad ClickHouse URL {url!r} ({exc}); expected {_URL_FORM}") from exc
        if parts.scheme != "clickhouse" or not parts.hostname:
            raise StoreError(f"bad ClickHouse URL {url!r}; expected {_URL_FORM}")
        database = unquote(parts.path.lstrip("/")) or "default"
        if not _DATABASE_NAME.match(database):
            raise StoreError(
                f"bad database name {database!r} in the ClickHouse URL: use letters, digits "
                "and underscores, not starting with a digit"
            )
        return cls(
            host=parts.hostname,
            port=port,
            user=unquote(parts.username or "default"),
            password=unquote(parts.password or ""),
            database=database,
        )

    def client(self, database: str) -> Client:
        return Client(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=database,
            connect_timeout=_CONNECT_TIMEOUT_S,
            send_receive_timeout=_SEND_RECEIVE_TIMEOUT_S,
        )

    def __str__(self) -> str:
        return f"{self.host}:{self.port}/{self.database}"


class DriverStore(SqlStore):
    """Lineage store in one database of a ClickHouse server (created when missing)."""

    backend = "clickhouse"

    def __init__(self, url: str) -> None:
        self._address = ServerAddress.parse(url)
        super().__init__()
        self._client: Client | None = None

    def _connected(self) -> Client:
        # Connecting waits for the first call (on the store's thread), so a server that
        # is still starting does not fail open_store.
        if self._client is None:
            admin = self._address.client("default")
            try:
                admin.execute(f"CREATE DATABASE IF NOT EXISTS {self._address.database}")
            finally:
                admin.disconnect()
            self._client = self._address.client(self._address.database)
        return self._client

    def _failure(self, exc: BaseException) -> StoreError:
        return StoreError(
            f"ClickHouse at {self._address} failed: {exc}. Check that the server runs and "
            "that the ClickHouse URL is right."
        )

    def _query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        try:
            rows, columns = self._connected().execute(sql, params, with_column_types=True)
        except _FAILURES as exc:
            raise self._failure(exc) from exc
        names = [name for name, _type in columns]
        return [dict(zip(names, row, strict=True)) for row in rows]

    def _execute(self, sql: str) -> None:
        try:
            self._connected().execute(sql)
        except _FAILURES as exc:
            raise self._failure(exc) from exc

    def _insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        # Rows go as data after "VALUES": inline VALUES (...) hangs on 18.16.
        try:
            self._connected().execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES", rows)
        except _FAILURES as exc:
            raise self._failure(exc) from exc

    def _disconnect(self) -> None:
        # An open connection keeps clickhouse-server 18.16 from shutting down on SIGTERM.
        if self._client is not None:
            self._client.disconnect()
            self._client = None
