"""Where a batch's kilograms are: per site and zone, received, released, on hand."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from schemas.events import Event, Intake, Outbound, Sale

ZERO = Decimal(0)


@dataclass
class ZoneStock:
    site_id: str
    zone_id: str | None
    first_seen: datetime
    last_seen: datetime
    received: Decimal = ZERO
    released: Decimal = ZERO

    @property
    def on_hand(self) -> Decimal:
        # May go below zero: over-release is a finding (quantity_exceeded), not hidden here.
        return self.received - self.released


@dataclass
class _Site:
    zones: dict[str | None, ZoneStock] = field(default_factory=dict)

    def zone(self, site_id: str, zone_id: str | None, at: datetime) -> ZoneStock:
        stock = self.zones.get(zone_id)
        if stock is None:
            stock = self.zones[zone_id] = ZoneStock(site_id, zone_id, at, at)
        stock.last_seen = max(stock.last_seen, at)
        return stock

    def release_fifo(self, site_id: str, quantity: Decimal, at: datetime) -> None:
        """A release naming no zone leaves the zones in the order they received the batch."""
        receiving = [z for z in self.zones.values() if z.received > 0]
        if not receiving:
            self.zone(site_id, None, at).released += quantity
            return
        remaining = quantity
        for stock in receiving:
            take = min(remaining, max(stock.on_hand, ZERO))
            if take > 0:
                stock.released += take
                stock.last_seen = max(stock.last_seen, at)
                remaining -= take
        if remaining > 0:
            last = receiving[-1]
            last.released += remaining
            last.last_seen = max(last.last_seen, at)


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
            site.zone(event.site_id, event.zone_id, at).received += event.quantity_kg
        elif isinstance(event, Outbound | Sale):
            if event.zone_id is not None:
                site.zone(event.site_id, event.zone_id, at).released += event.quantity_kg
            else:
                site.release_fifo(event.site_id, event.quantity_kg, at)
        elif site.zones:
            for stock in site.zones.values():
                stock.last_seen = max(stock.last_seen, at)
        else:
            site.zone(event.site_id, None, at)
    stocks = [stock for site in sites.values() for stock in site.zones.values()]
    return sorted(stocks, key=lambda s: (s.first_seen, s.site_id, s.zone_id or ""))
