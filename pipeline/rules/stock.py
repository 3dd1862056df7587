"""Where a batch's kilograms are: per site and zone, received, released, on hand, and when."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from schemas.events import Event, Intake, Outbound, Sale

ZERO = Decimal(0)


@dataclass(frozen=True)
class Interval:
    """A stretch of time [start, end) during which a zone held stock > 0 of a batch."""

    start: datetime
    end: datetime | None  # None: still there
    opened_by: str  # the event that brought the stock above zero

    def overlap(self, other: Interval) -> tuple[datetime, datetime | None] | None:
        start = max(self.start, other.start)
        ends = [e for e in (self.end, other.end) if e is not None]
        end = min(ends) if ends else None
        # Half-open: one batch leaving at the instant another arrives is not co-storage.
        return (start, end) if end is None or start < end else None


@dataclass
class ZoneStock:
    site_id: str
    zone_id: str | None
    first_seen: datetime
    last_seen: datetime
    received: Decimal = ZERO
    released: Decimal = ZERO
    intervals: list[Interval] = field(default_factory=list)

    @property
    def on_hand(self) -> Decimal:
        # May go below zero: over-release is a finding (quantity_exceeded), not hidden here.
        return self.received - self.released

    def move(self, received: Decimal, released: Decimal, at: datetime, event_id: str) -> None:
        before = self.on_hand
        self.received += received
        self.released += released
        self.last_seen = max(self.last_seen, at)
        after = self.on_hand
        if before <= 0 < after:
            self.intervals.append(Interval(at, None, event_id))
        elif before > 0 >= after:
            last = self.intervals[-1]
            self.intervals[-1] = Interval(last.start, at, last.opened_by)


@dataclass
class _Site:
    zones: dict[str | None, ZoneStock] = field(default_factory=dict)

    def zone(self, site_id: str, zone_id: str | None, at: datetime) -> ZoneStock:
        stock = self.zones.get(zone_id)
        if stock is None:
            stock = self.zones[zone_id] = ZoneStock(site_id, zone_id, at, at)
        return stock

    def release_fifo(self, event: Outbound | Sale) -> None:
        """A release naming no zone leaves the zones in the order they received the batch."""
        at, quantity = event.occurred_at, event.quantity_kg
        receiving = [z for z in self.zones.values() if z.received > 0]
        if not receiving:
            self.zone(event.site_id, None, at).move(ZERO, quantity, at, event.event_id)
            return
        remaining = quantity
        for stock in receiving:
            take = min(remaining, max(stock.on_hand, ZERO))
            if take > 0:
                stock.move(ZERO, take, at, event.event_id)
                remaining -= take
        if remaining > 0:
            receiving[-1].move(ZERO, remaining, at, event.event_id)


def zone_stocks(events: Iterable[Event]) -> list[ZoneStock]:
    """Stock of one batch per (site, zone), from its events in rule order.

    Sites where only certificates were recorded appear with a zone of ``None``
    and zero quantities, so that every site the batch touched is listed.
    """
    sites: dict[str, _Site] = {}
    for event in events:
        site = sites.setdefault(event.site_id, _Site())
        at = event.occurred_at
        if isinstance(event, Intake):
            site.zone(event.site_id, event.zone_id, at).move(
                event.quantity_kg, ZERO, at, event.event_id
            )
        elif isinstance(event, Outbound | Sale):
            if event.zone_id is not None:
                site.zone(event.site_id, event.zone_id, at).move(
                    ZERO, event.quantity_kg, at, event.event_id
                )
            else:
                site.release_fifo(event)
        elif site.zones:
            for stock in site.zones.values():
                stock.last_seen = max(stock.last_seen, at)
        else:
            site.zone(event.site_id, None, at)
    stocks = [stock for site in sites.values() for stock in site.zones.values()]
    return sorted(stocks, key=lambda s: (s.first_seen, s.site_id, s.zone_id or ""))
