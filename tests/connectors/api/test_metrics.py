"""The API's own share of the metrics: what exists before any request."""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import REGISTRY

from connectors.api import create_api
from connectors.auth import TokenRegistry, new_token, tokens_file_entry


def test_a_token_site_the_store_never_saw_has_its_counters_at_zero(tmp_path: Path) -> None:
    # rules take increase() of these: a series born with its first increment hides it.
    path = tmp_path / "tokens.yaml"
    path.write_text("tokens:\n" + tokens_file_entry(new_token(), "site", ["NEW-SITE-7"]))

    @asynccontextmanager
    async def lifespan(app: object):  # type: ignore[no-untyped-def]
        yield

    def backend():  # type: ignore[no-untyped-def]
        raise AssertionError("no request is made")

    create_api(
        backend,
        tokens=TokenRegistry.load(path),
        clock=lambda: datetime.now(UTC),
        lifespan=lifespan,
    )
    labels = {"site_id": "NEW-SITE-7", "event_type": "intake"}
    assert REGISTRY.get_sample_value("coldchain_events_accepted_total", labels) == 0
    assert REGISTRY.get_sample_value("coldchain_events_stored_total", labels) == 0
    rejected = {**labels, "reason": "invalid"}
    assert REGISTRY.get_sample_value("coldchain_events_rejected_total", rejected) == 0
