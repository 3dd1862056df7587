"""The embedded backend: a persistent chdb session in the data dir."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from chdb.session import Session  # chdb ships no annotations: calls into it are untyped
from clickhouse_driver.util.escape import escape_params

from connectors.store._base import SqlStore, StoreError

_DATABASE = "coldchain"


def _json_default(value: object) -> str:
    if isinstance(value, Decimal):
        # As decimal text, which ClickHouse reads straight into Decimal64: no float between.
        return format(value, "f")
    raise TypeError(f"cannot store {type(value).__name__} values in chdb: {value!r}")


def _open_failure(path: Path, exc: RuntimeError) -> StoreError:
    if "already initialized with path" in str(exc):
        return StoreError(
            f"cannot open the embedded store at {path}: this process already has another "
            f"chdb data dir open, and chdb allows one per process ({exc}). Close that store "
            "first, or use the same data dir."
        )
    return StoreError(
        f"cannot open the embedded store at {path}: another coldchain process most likely "
        f"holds this data dir (chdb lets one process use it at a time). Stop that process, "
        f"or give this one another data dir. ({exc})"
    )


class ChdbStore(SqlStore):
    """Lineage store in ``data_dir/lineage``, held by this process alone while open."""

    backend = "chdb"

    def __init__(self, data_dir: Path) -> None:
        super().__init__()
        self._path = data_dir / "lineage"
        self._session: Session | None = None
        # Opened now and on the store's thread, so a held data dir fails open_store
        # itself rather than the first query, and the session never changes threads.
        try:
            self._executor.submit(self._open).result()
        except BaseException:
            self._executor.submit(self._disconnect).result()
            self._executor.shutdown()
            raise

    def _open(self) -> None:
        self._path.mkdir(parents=True, exist_ok=True)
        try:
            session = Session(str(self._path))  # type: ignore[no-untyped-call]
        except RuntimeError as exc:
            raise _open_failure(self._path, exc) from exc
        self._session = session
        self._execute(f"CREATE DATABASE IF NOT EXISTS {_DATABASE}")
        self._execute(f"USE {_DATABASE}")
        # The server backend returns 64-bit integers as ints; make chdb's JSON agree
        # whatever default this chdb version has.
        self._execute("SET output_format_json_quote_64bit_integers = 0")

    def _live_session(self) -> Session:
        if self._session is None:
            raise StoreError(f"the embedded store at {self._path} is closed; open a new one")
        return self._session

    def _run_sql(self, sql: str, fmt: str = "CSV") -> bytes:
        try:
            result = self._live_session().query(sql, fmt)  # type: ignore[no-untyped-call]
        except RuntimeError as exc:  # chdb's ChdbError is a RuntimeError
            raise StoreError(f"the embedded store at {self._path} failed: {exc}") from exc
        data: bytes = result.bytes()
        return data

    def _query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        if params is not None:
            # Rendered exactly as clickhouse-driver renders them for the server backend.
            sql = sql % escape_params(params, None)
        output = self._run_sql(sql, "JSONEachRow")
        return [orjson.loads(line) for line in output.splitlines() if line]

    def _execute(self, sql: str) -> None:
        self._run_sql(sql)

    def _insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        # One JSON array in one orjson call: 4x faster than encoding row by row.
        body = orjson.dumps(
            [dict(zip(columns, row, strict=True)) for row in rows], default=_json_default
        )
        self._run_sql(f"INSERT INTO {table} FORMAT JSONEachRow\n{body.decode()}")

    def _disconnect(self) -> None:
        if self._session is not None:
            self._session.close()  # type: ignore[no-untyped-call]
            self._session = None
