"""Reading from the store what a walk over batches needs: descendants, ancestors, neighbours.

Shared by the evaluator (a positive batch's exposure) and the regulators' API.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from connectors.store import LineageStore
from schemas.events import Event, Intake, NucleicTest

#: A walk stops after this many generations of codes (cycles are safe anyway).
MAX_GENERATIONS = 64


async def descendants(
    store: LineageStore, start: str, events: Sequence[Event]
) -> dict[str, list[Event]]:
    """Histories of ``start`` and every code made from it, any depth."""
    histories = {start: list(events)}
    frontier = [start]
    for _ in range(MAX_GENERATIONS):
        children = [c for parent in frontier for c in await store.children_of(parent)]
        frontier = [c for c in dict.fromkeys(children) if c not in histories]
        if not frontier:
            break
        histories.update(await store.events_of_many(frontier))
    return histories


async def ancestors(
    store: LineageStore, start: str, events: Sequence[Event]
) -> dict[str, list[Event]]:
    """Histories of ``start`` and every code it was made from, any depth."""
    histories = {start: list(events)}
    frontier = [start]
    for _ in range(MAX_GENERATIONS):
        parents = [
            p
            for code in frontier
            for e in histories[code]
            if isinstance(e, Intake)
            for p in e.parent_trace_codes
        ]
        frontier = [p for p in dict.fromkeys(parents) if p not in histories]
        if not frontier:
            break
        histories.update(await store.events_of_many(frontier))
    return histories


class SiteHistories:
    """Every batch's events at a site, read once per site for one question."""

    def __init__(self, store: LineageStore) -> None:
        self._store = store
        self._read: dict[str, dict[str, list[Event]]] = {}

    async def at(self, site_id: str) -> dict[str, list[Event]]:
        if site_id not in self._read:
            codes = await self._store.codes_at_site(site_id)
            self._read[site_id] = await self._store.events_of_many(codes)
        return self._read[site_id]


def last_positive(events: Sequence[Event]) -> datetime | None:
    times = [e.occurred_at for e in events if isinstance(e, NucleicTest) and e.result == "positive"]
    return max(times) if times else None
