"""What every route shares: the running system, who is asking, and what they may read."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from fastapi import Request
from starlette.exceptions import HTTPException

from connectors.auth import Principal, TokenRegistry
from connectors.ingest import Ingestor
from connectors.store import LineageStore
from schemas.events import Event
from schemas.rules import RuleSet

_TRACE_CODE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class Backend(Protocol):
    """What the API needs from the running system."""

    @property
    def store(self) -> LineageStore: ...

    @property
    def ingestor(self) -> Ingestor: ...

    @property
    def rules(self) -> RuleSet: ...

    async def health(self) -> dict[str, bool]: ...


def sites_of(events: Iterable[Event]) -> set[str]:
    """Every site a batch's events happened at, came from or went to."""
    sites: set[str] = set()
    for event in events:
        sites.add(event.site_id)
        for name in ("to_site_id", "from_site_id"):
            other = getattr(event, name, None)
            if other is not None:
                sites.add(other)
    return sites


@dataclass(frozen=True)
class Context:
    backend: Callable[[], Backend]
    tokens: TokenRegistry
    clock: Callable[[], datetime]

    @property
    def store(self) -> LineageStore:
        return self.backend().store

    def principal(self, request: Request) -> Principal:
        """Who sent the request; 401 without a known bearer token."""
        principal = self.tokens.authenticate(request.headers.get("authorization"))
        if principal is None:
            raise HTTPException(401, "missing or unknown bearer token")
        return principal

    async def readable_batch(self, principal: Principal, trace_code: str) -> list[Event]:
        """The batch's events; 404 when unknown or, for a site token, never at its sites.

        Both answers are the same, so a site token learns nothing about other batches.
        """
        events = await self.store.events_of(trace_code) if _TRACE_CODE.match(trace_code) else []
        if not events or not principal.may_read_sites(sites_of(events)):
            raise HTTPException(404, f"no batch with trace code {trace_code!r}")
        return events
