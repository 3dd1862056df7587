"""The weekly compliance report: per site and week, what came in, what left properly,
what the rules found, and which sites said nothing at all."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Final

from pipeline.rules.lineage import declaration_of
from pipeline.rules.order import event_order_key
from schemas.alerts import ALERT_TYPES, Alert
from schemas.events import Disinfection, Event, Intake, NucleicTest, Outbound, Sale

#: Weeks are ISO weeks (Monday to Sunday) on the sites' clock, China Standard Time.
REPORT_TZ: Final = timezone(timedelta(hours=8))


@dataclass
class SiteWeek:
    site_id: str
    week_start: date
    events: int = 0
    imported_batches_received: set[str] = field(default_factory=set)
    imported_batches_released: set[str] = field(default_factory=set)
    released_disinfected: set[str] = field(default_factory=set)
    released_tested: set[str] = field(default_factory=set)
    alerts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ALERT_TYPES, 0))

    def row(self) -> dict[str, object]:
        released = len(self.imported_batches_released)
        return {
            "site_id": self.site_id,
            "week_start": self.week_start.isoformat(),
            "reported": self.events > 0,
            "events": self.events,
            "imported_batches_received": len(self.imported_batches_received),
            "imported_batches_released": released,
            "share_disinfected_before_release": _share(len(self.released_disinfected), released),
            "share_tested_before_release": _share(len(self.released_tested), released),
            "alerts": dict(self.alerts),
        }


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def week_of(moment: datetime) -> date:
    local = moment.astimezone(REPORT_TZ).date()
    return local - timedelta(days=local.weekday())


def weeks_between(start: datetime, end: datetime) -> list[date]:
    weeks = []
    week = week_of(start)
    while datetime.combine(week, datetime.min.time(), REPORT_TZ) < end:
        weeks.append(week)
        week += timedelta(days=7)
    return weeks


def compliance(
    sites: Sequence[str],
    start: datetime,
    end: datetime,
    in_range: Sequence[Event],
    histories: Mapping[str, Sequence[Event]],
    alerts: Sequence[Alert],
    imported_origins: frozenset[str],
) -> list[dict[str, object]]:
    """One row per (site, week) in [start, end), silent ones included.

    ``in_range`` are the events at these sites in the range; ``histories`` the whole
    histories of their trace codes (declarations and certificates may lie elsewhere).
    A released imported batch counts as disinfected (tested) when every release of it
    at that site that week had a disinfection (negative test) at or before it.
    """
    rows = {
        (site, week): SiteWeek(site, week) for site in sites for week in weeks_between(start, end)
    }
    _tally(rows, week_of, in_range, histories, imported_origins)
    for alert in alerts:
        cell = rows.get((alert.site_id, week_of(alert.occurred_at)))
        if cell is not None and start <= alert.occurred_at < end:
            cell.alerts[alert.type] += 1
    return [rows[key].row() for key in sorted(rows)]


def release_coverage(
    sites: Sequence[str],
    start: datetime,
    end: datetime,
    in_range: Sequence[Event],
    histories: Mapping[str, Sequence[Event]],
    imported_origins: frozenset[str],
) -> list[dict[str, object]]:
    """As :func:`compliance`, but one row per site for the whole of [start, end)
    (``week_start`` is then the day the span starts), without alerts."""
    first = start.astimezone(REPORT_TZ).date()
    rows = {(site, first): SiteWeek(site, first) for site in sites}
    within = [e for e in in_range if start <= e.occurred_at < end]
    _tally(rows, lambda _: first, within, histories, imported_origins)
    return [rows[key].row() for key in sorted(rows)]


def _tally(
    rows: Mapping[tuple[str, date], SiteWeek],
    period_of: Callable[[datetime], date],
    in_range: Sequence[Event],
    histories: Mapping[str, Sequence[Event]],
    imported_origins: frozenset[str],
) -> None:
    imported = {
        code
        for code, events in histories.items()
        if (d := declaration_of(events)) is not None and d.origin in imported_origins
    }
    failed_disinfection: dict[tuple[str, date], set[str]] = defaultdict(set)
    failed_test: dict[tuple[str, date], set[str]] = defaultdict(set)
    for event in in_range:
        key = (event.site_id, period_of(event.occurred_at))
        cell = rows.get(key)
        if cell is None:
            continue
        cell.events += 1
        if event.trace_code not in imported:
            continue
        if isinstance(event, Intake):
            cell.imported_batches_received.add(event.trace_code)
        elif isinstance(event, Outbound | Sale):
            cell.imported_batches_released.add(event.trace_code)
            history = histories.get(event.trace_code, ())
            moment = event_order_key(event)
            if not any(
                isinstance(e, Disinfection) and event_order_key(e) <= moment for e in history
            ):
                failed_disinfection[key].add(event.trace_code)
            if not any(
                isinstance(e, NucleicTest)
                and e.result == "negative"
                and event_order_key(e) <= moment
                for e in history
            ):
                failed_test[key].add(event.trace_code)
    for key, cell in rows.items():
        cell.released_disinfected = cell.imported_batches_released - failed_disinfection[key]
        cell.released_tested = cell.imported_batches_released - failed_test[key]
