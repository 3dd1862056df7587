"""Rules over one site's zones, across batches: mixed storage and co-storage.

They need every batch's events at the site (a release naming no zone leaves the
batch's zones there in the order they received it) and each batch's declared
origin, which its declaration may have made at another site.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipeline.rules.order import in_rule_order
from pipeline.rules.stock import Interval, zone_stocks
from schemas.alerts import Finding
from schemas.events import Event
from schemas.rules import RuleSet


@dataclass(frozen=True)
class _Stay:
    trace_code: str
    zone_id: str
    interval: Interval


def _stays(site_id: str, events_by_code: Mapping[str, Sequence[Event]]) -> list[_Stay]:
    stays: list[_Stay] = []
    for code, events in events_by_code.items():
        here = in_rule_order(e for e in events if e.site_id == site_id)
        for stock in zone_stocks(here):
            if stock.zone_id is None:
                continue
            stays.extend(_Stay(code, stock.zone_id, i) for i in stock.intervals)
    return stays


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def mixed_storage(
    site_id: str,
    events_by_code: Mapping[str, Sequence[Event]],
    origins: Mapping[str, str | None],
    rules: RuleSet,
) -> list[Finding]:
    """One finding per (zone, imported code, domestic code) that held stock at the same time.

    ``origins`` maps each code to its declared origin (None: no intake anywhere yet).
    """
    if not rules.runs("mixed_storage"):
        return []
    stays = _stays(site_id, events_by_code)
    # The contract's imported batch (declared so); ``imported_origins`` only widens the
    # disinfection and test rules, it never makes a domestic batch the imported side here.
    imported = [s for s in stays if origins.get(s.trace_code) == "imported"]
    domestic = [s for s in stays if origins.get(s.trace_code) == "domestic"]
    first: dict[tuple[str, str, str], tuple[datetime, datetime | None, _Stay, _Stay]] = {}
    for imp in imported:
        for dom in domestic:
            if imp.zone_id != dom.zone_id or imp.trace_code == dom.trace_code:
                continue
            overlap = imp.interval.overlap(dom.interval)
            if overlap is None:
                continue
            key = (imp.zone_id, imp.trace_code, dom.trace_code)
            if key not in first or overlap[0] < first[key][0]:
                first[key] = (overlap[0], overlap[1], imp, dom)
    findings = []
    for (zone_id, imp_code, dom_code), (start, end, imp, dom) in sorted(first.items()):
        findings.append(
            Finding(
                type="mixed_storage",
                trace_code=imp_code,
                site_id=site_id,
                zone_id=zone_id,
                occurred_at=start,
                event_ids=(imp.interval.opened_by, dom.interval.opened_by),
                details={
                    "domestic_trace_code": dom_code,
                    "overlap_from": _iso(start),
                    "overlap_until": _iso(end),
                },
                identity=(site_id, zone_id, dom_code),
            )
        )
    return findings


def co_stored(
    trace_code: str,
    site_id: str,
    events_by_code: Mapping[str, Sequence[Event]],
    until: datetime,
) -> list[dict[str, Any]]:
    """Other batches with stock in a zone of this site while ``trace_code`` had stock there,
    counting only time up to ``until`` (the positive test)."""
    stays = _stays(site_id, events_by_code)
    mine = [s for s in stays if s.trace_code == trace_code and s.interval.start < until]
    found: dict[tuple[str, str], tuple[datetime, datetime | None]] = {}
    for own in mine:
        for other in stays:
            if other.trace_code == trace_code or other.zone_id != own.zone_id:
                continue
            overlap = own.interval.overlap(other.interval)
            if overlap is None or overlap[0] >= until:
                continue
            key = (other.trace_code, other.zone_id)
            if key not in found or overlap[0] < found[key][0]:
                found[key] = overlap
    return [
        {
            "trace_code": code,
            "site_id": site_id,
            "zone_id": zone,
            "overlap_from": _iso(start),
            "overlap_until": _iso(end if end is None or end < until else until),
        }
        for (code, zone), (start, end) in sorted(found.items())
    ]
