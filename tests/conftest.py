from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from coldchain.embedded import EmbeddedBroker
from connectors.store import LineageStore, open_store
from tests._clickhouse import CLICKHOUSE_SERVER, running_clickhouse_server


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[LineageStore]:
    """An embedded (chdb) lineage store of the test's own, migrated."""
    store = open_store(None, tmp_path)
    await store.migrate()
    yield store
    await store.close()


@pytest.fixture(scope="session")
def clickhouse_server() -> Iterator[str]:
    """A private clickhouse-server 18.16 for the run; yields its base URL (no database)."""
    if not CLICKHOUSE_SERVER.exists():
        pytest.fail(
            f"{CLICKHOUSE_SERVER} is missing: `make test` installs it "
            "(Debian package clickhouse-server)",
            pytrace=False,
        )
    with running_clickhouse_server() as url:
        yield url


@pytest.fixture
async def broker() -> AsyncIterator[str]:
    """Bootstrap (``127.0.0.1:PORT``) of a fresh embedded tansu broker, stopped afterwards."""
    embedded = EmbeddedBroker()
    bootstrap = await embedded.start()
    try:
        yield bootstrap
    finally:
        await embedded.stop()
