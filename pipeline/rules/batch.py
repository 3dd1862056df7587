"""Rules over one batch's whole history (contract section 2), as plain functions.

Each rule reads the batch's events in rule order and returns what it finds now;
evaluating again after a late or duplicated event gives the findings of the
history as it then stands, so that a repaired condition simply disappears and
the alert lifecycle resolves it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from pipeline.rules.lineage import declaration_of
from pipeline.rules.order import event_order_key, in_rule_order
from schemas.alerts import AlertType, Finding
from schemas.events import Disinfection, Event, Intake, NucleicTest, Outbound, Sale
from schemas.rules import RuleSet

ZERO = Decimal(0)


@dataclass(frozen=True)
class Exposure:
    """What the store says a positive batch reached; the rules only copy it into details."""

    downstream: list[dict[str, Any]]
    co_stored: list[dict[str, Any]]


@dataclass(frozen=True)
class _History:
    code: str
    events: list[Event]  # rule order
    declaration: Intake | None
    intake_sites: frozenset[str]

    @classmethod
    def of(cls, code: str, events: Sequence[Event]) -> _History:
        ordered = in_rule_order(events)
        return cls(
            code,
            ordered,
            declaration_of(ordered),
            frozenset(e.site_id for e in ordered if isinstance(e, Intake)),
        )

    def releases(self) -> list[Outbound | Sale]:
        # A site that never received the code raises unknown_trace_code alone: no quantity
        # or origin rules there.
        return [
            e
            for e in self.events
            if isinstance(e, Outbound | Sale) and e.site_id in self.intake_sites
        ]


def _kg(value: Decimal) -> float:
    return float(value)


def _finding(
    kind: AlertType,
    event: Event,
    identity: tuple[str, ...],
    details: dict[str, Any],
    event_ids: Sequence[str] | None = None,
    zoned: bool = True,
) -> Finding:
    return Finding(
        type=kind,
        trace_code=event.trace_code,
        site_id=event.site_id,
        zone_id=getattr(event, "zone_id", None) if zoned else None,
        occurred_at=event.occurred_at,
        event_ids=tuple(event_ids or (event.event_id,)),
        details=details,
        identity=identity,
    )


def _release_details(release: Outbound | Sale) -> dict[str, Any]:
    details: dict[str, Any] = {
        "release_type": release.event_type,
        "quantity_kg": _kg(release.quantity_kg),
    }
    if isinstance(release, Outbound):
        details["to_site_id"] = release.to_site_id
    return details


def missing_disinfection(history: _History, rules: RuleSet) -> list[Finding]:
    if not _imported(history, rules):
        return []
    findings = []
    disinfections = [e for e in history.events if isinstance(e, Disinfection)]
    for release in history.releases():
        key = event_order_key(release)
        if not any(event_order_key(d) <= key for d in disinfections):
            findings.append(
                _finding(
                    "missing_disinfection",
                    release,
                    (release.event_id,),
                    _release_details(release),
                )
            )
    return findings


def missing_nucleic_test(history: _History, rules: RuleSet) -> list[Finding]:
    if not _imported(history, rules):
        return []
    findings = []
    tests = [e for e in history.events if isinstance(e, NucleicTest)]
    for release in history.releases():
        key = event_order_key(release)
        before = [t for t in tests if event_order_key(t) <= key]
        if not any(t.result == "negative" for t in before):
            details = _release_details(release)
            details["tests_before_release"] = [
                {"event_id": t.event_id, "result": t.result, "report_no": t.report_no}
                for t in before
            ]
            findings.append(_finding("missing_nucleic_test", release, (release.event_id,), details))
    return findings


def positive_nucleic_test(
    history: _History, rules: RuleSet, exposure: Exposure | None
) -> list[Finding]:
    findings = []
    for test in history.events:
        if isinstance(test, NucleicTest) and test.result == "positive":
            details: dict[str, Any] = {
                "report_no": test.report_no,
                "sample_type": test.sample_type,
                "lab": test.lab,
                "downstream": exposure.downstream if exposure else [],
                "co_stored": exposure.co_stored if exposure else [],
            }
            findings.append(
                _finding("positive_nucleic_test", test, (test.event_id,), details, zoned=False)
            )
    return findings


def unknown_trace_code(history: _History, rules: RuleSet) -> list[Finding]:
    """Per site, the non-intake events with no intake of the code there at or before them."""
    first_intake: dict[str, tuple[Any, ...]] = {}
    unknown: dict[str, list[Event]] = defaultdict(list)
    for event in history.events:
        key = event_order_key(event)
        if isinstance(event, Intake):
            first_intake.setdefault(event.site_id, key)
        elif event.site_id not in first_intake:
            unknown[event.site_id].append(event)
    return [
        _finding(
            "unknown_trace_code",
            events[0],
            (site,),
            {
                "received_here": site in history.intake_sites,
                "events": [{"event_id": e.event_id, "event_type": e.event_type} for e in events],
            },
            event_ids=[e.event_id for e in events],
            zoned=False,
        )
        for site, events in unknown.items()
    ]


def quantity_exceeded(history: _History, rules: RuleSet) -> list[Finding]:
    """Per site that received the code: released > received x (1 + tolerance), in totals."""
    received: dict[str, Decimal] = defaultdict(Decimal)
    for event in history.events:
        if isinstance(event, Intake):
            received[event.site_id] += event.quantity_kg
    by_site: dict[str, list[Outbound | Sale]] = defaultdict(list)
    for release in history.releases():
        by_site[release.site_id].append(release)
    findings = []
    for site, releases in by_site.items():
        limit = received[site] * (1 + rules.quantity_tolerance)
        total = sum((r.quantity_kg for r in releases), ZERO)
        if total <= limit:
            continue
        # The alert's moment: the release that took the running total past the limit.
        running = ZERO
        for release in releases:
            running += release.quantity_kg
            if running > limit:
                break
        findings.append(
            _finding(
                "quantity_exceeded",
                release,
                (site,),
                {
                    "received_kg": _kg(received[site]),
                    "released_kg": _kg(total),
                    "tolerance": float(rules.quantity_tolerance),
                },
                event_ids=[r.event_id for r in releases],
                zoned=False,
            )
        )
    return findings


def info_mismatch(history: _History, rules: RuleSet) -> list[Finding]:
    findings = []
    declared = history.declaration
    if declared is not None:
        for intake in history.events:
            if not isinstance(intake, Intake) or intake.event_id == declared.event_id:
                continue
            differs = {
                name: {"declared": getattr(declared, name), "recorded": getattr(intake, name)}
                for name in ("product", "origin", "country_of_origin")
                if getattr(intake, name) != getattr(declared, name)
            }
            if differs:
                findings.append(
                    _finding(
                        "info_mismatch",
                        intake,
                        ("declaration", intake.event_id),
                        {
                            "kind": "differs_from_declaration",
                            "declaration": declared.event_id,
                            "fields": differs,
                        },
                        event_ids=[intake.event_id, declared.event_id],
                    )
                )
    findings.extend(_received_more_than_sent(history, rules))
    return findings


def _received_more_than_sent(history: _History, rules: RuleSet) -> list[Finding]:
    received: dict[tuple[str, str], list[Intake]] = defaultdict(list)
    sent: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for event in history.events:
        if isinstance(event, Intake) and event.from_site_id is not None:
            received[(event.site_id, event.from_site_id)].append(event)
        elif isinstance(event, Outbound):
            sent[(event.to_site_id, event.site_id)] += event.quantity_kg
    findings = []
    for (site, origin_site), intakes in received.items():
        total = sum((i.quantity_kg for i in intakes), ZERO)
        shipped = sent[(site, origin_site)]
        if total > shipped * (1 + rules.info_tolerance):
            findings.append(
                _finding(
                    "info_mismatch",
                    intakes[-1],
                    ("from_site", site, origin_site),
                    {
                        "kind": "received_more_than_sent",
                        "from_site_id": origin_site,
                        "received_kg": _kg(total),
                        "sent_kg": _kg(shipped),
                        "tolerance": float(rules.info_tolerance),
                    },
                    event_ids=[i.event_id for i in intakes],
                    zoned=False,
                )
            )
    return findings


def _imported(history: _History, rules: RuleSet) -> bool:
    declared = history.declaration
    return declared is not None and declared.origin in rules.imported_origins


_RULES: dict[AlertType, Callable[[_History, RuleSet], list[Finding]]] = {
    "missing_disinfection": missing_disinfection,
    "missing_nucleic_test": missing_nucleic_test,
    "unknown_trace_code": unknown_trace_code,
    "quantity_exceeded": quantity_exceeded,
    "info_mismatch": info_mismatch,
}


def evaluate_batch(
    trace_code: str,
    events: Sequence[Event],
    rules: RuleSet,
    exposure: Exposure | None = None,
) -> list[Finding]:
    """Every finding of the per-batch rules on this history (mixed storage is per zone)."""
    history = _History.of(trace_code, events)
    findings: list[Finding] = []
    for kind, rule in _RULES.items():
        if rules.runs(kind):
            findings.extend(rule(history, rules))
    if rules.runs("positive_nucleic_test"):
        findings.extend(positive_nucleic_test(history, rules, exposure))
    return findings


def last_positive_test(events: Sequence[Event]) -> datetime | None:
    """When the batch's latest positive result was taken; None when it has none."""
    times = [e.occurred_at for e in events if isinstance(e, NucleicTest) and e.result == "positive"]
    return max(times) if times else None
