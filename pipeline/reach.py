"""Reading from the store what a walk over batches needs: descendants, ancestors, neighbours.

Shared by the evaluator (a positive batch's exposure) and the regulators' API.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from connectors.store import LineageStore
from pipeline.rules.order import in_rule_order
from pipeline.rules.stock import zone_stocks
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


async def neighbours(
    store: LineageStore, code: str, events: Sequence[Event], until: datetime | None = None
) -> dict[str, dict[str, list[Event]]]:
    """Per site of the batch: its events and those of every batch that may have shared a
    zone with it there before ``until``, for :func:`pipeline.rules.zones.co_stored`."""
    found: dict[str, dict[str, list[Event]]] = {}
    for stock in zone_stocks(in_rule_order(events)):
        if stock.zone_id is None:
            continue
        for stay in stock.intervals:
            if until is not None and stay.start >= until:
                continue
            end = (
                stay.end if until is None or (stay.end is not None and stay.end < until) else until
            )
            codes = await store.codes_beside(stock.site_id, stock.zone_id, stay.start, end)
            site = found.setdefault(stock.site_id, {code: list(events)})
            missing = [c for c in codes if c not in site]
            site.update(await store.events_of_many(missing))
    return found


def last_positive(events: Sequence[Event]) -> datetime | None:
    times = [e.occurred_at for e in events if isinstance(e, NucleicTest) and e.result == "positive"]
    return max(times) if times else None
