"""The one order in which rules read events (contract section 2)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Final

from schemas.events import EVENT_TYPES, Event

_TYPE_RANK: Final = {name: rank for rank, name in enumerate(EVENT_TYPES)}


def event_order_key(event: Event) -> tuple[datetime, int, str]:
    """``occurred_at``, then intake < disinfection < nucleic_test < outbound < sale, then id."""
    return (event.occurred_at, _TYPE_RANK[event.event_type], event.event_id)


def in_rule_order(events: Iterable[Event]) -> list[Event]:
    """Each event once (by ``event_id``; a resent duplicate changes nothing) in rule order."""
    unique: dict[str, Event] = {}
    for event in events:
        unique.setdefault(event.event_id, event)
    return sorted(unique.values(), key=event_order_key)
