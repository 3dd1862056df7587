"""Reading from the store what a walk over batches needs: descendants, ancestors, neighbours.

Shared by the evaluator (a positive batch's exposure) and the regulators' API.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from connectors.store import LineageStore
from pipeline.rules.order import in_rule_order
from pipeline.rules.stock import zone_stocks
from schemas.events import Event, Intake

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


async def neighbours(
    store: LineageStore,
    histories: Mapping[str, Sequence[Event]],
    until: datetime | None = None,
    sites: Iterable[str] | None = None,
) -> dict[str, dict[str, list[Event]]]:
    """Per site: the events of these batches and of every batch that may have shared a
    zone with one of them there before ``until`` — one filtering query per site and one
    read of the candidates, for :func:`pipeline.rules.zones.co_stored` and mixed storage.
    ``sites`` limits the sites looked at."""
    # Per site and zone, the earliest start and the latest end of the batches' stays.
    stays: dict[str, dict[str, tuple[datetime, datetime | None]]] = {}
    wanted = None if sites is None else set(sites)
    for events in histories.values():
        for stock in zone_stocks(in_rule_order(events)):
            if stock.zone_id is None or (wanted is not None and stock.site_id not in wanted):
                continue
            for stay in stock.intervals:
                if until is not None and stay.start >= until:
                    continue
                end = stay.end
                if until is not None and (end is None or end > until):
                    end = until
                zones = stays.setdefault(stock.site_id, {})
                if stock.zone_id in zones:
                    first, last = zones[stock.zone_id]
                    later = None if end is None or last is None else max(end, last)
                    zones[stock.zone_id] = (min(first, stay.start), later)
                else:
                    zones[stock.zone_id] = (stay.start, end)
    found: dict[str, dict[str, list[Event]]] = {}
    for site_id, zones in sorted(stays.items()):
        candidates = [
            code for code in await store.codes_beside(site_id, zones) if code not in histories
        ]
        here = {code: list(events) for code, events in histories.items()}
        here.update(await store.events_of_many(candidates))
        found[site_id] = here
    return found
