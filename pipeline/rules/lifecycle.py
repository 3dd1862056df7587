"""From findings to alerts: stable ids, firing, and resolving what no longer holds."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from schemas.alerts import SEVERITY, Alert, Finding


def alert_id(finding: Finding) -> str:
    """The same condition found again gets the same id."""
    key = "\x1f".join((finding.type, finding.trace_code, *finding.identity))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def reconcile(
    previous: Sequence[Alert], findings: Sequence[Finding], now: datetime, rule_set: str
) -> list[Alert]:
    """The alerts that change when ``findings`` are what holds now.

    ``previous`` are the stored alerts of the same scope (the rules that made
    ``findings``, for the same batch or zone). A finding not yet firing fires; one
    whose facts changed is updated; a firing alert no longer found is resolved.
    """
    before = {a.alert_id: a for a in previous}
    changes: list[Alert] = []
    seen: set[str] = set()
    for finding in findings:
        key = alert_id(finding)
        if key in seen:
            continue
        seen.add(key)
        old = before.get(key)
        still_firing = old is not None and old.status == "firing"
        alert = Alert(
            alert_id=key,
            type=finding.type,
            severity=SEVERITY[finding.type],
            trace_code=finding.trace_code,
            site_id=finding.site_id,
            zone_id=finding.zone_id,
            occurred_at=finding.occurred_at,
            detected_at=old.detected_at if old is not None and still_firing else now,
            status="firing",
            event_ids=list(finding.event_ids),
            details=finding.details,
            rule_set=rule_set,
        )
        if old is None or old != alert:
            changes.append(alert)
    for key, old in before.items():
        if key not in seen and old.status == "firing":
            changes.append(old.model_copy(update={"status": "resolved", "resolved_at": now}))
    return changes
