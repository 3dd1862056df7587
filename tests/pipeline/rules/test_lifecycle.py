"""From findings to alerts: stable ids, firing, updating and resolving."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from pipeline.rules.lifecycle import alert_id, reconcile
from schemas.alerts import Alert, Finding
from tests.factories import T0

NOW = T0 + timedelta(hours=1)
LATER = NOW + timedelta(minutes=5)
LATEST = LATER + timedelta(minutes=5)


def finding(**changes: Any) -> Finding:
    fields: dict[str, Any] = {
        "type": "missing_disinfection",
        "trace_code": "T1",
        "site_id": "PORT",
        "zone_id": "A1",
        "occurred_at": T0,
        "event_ids": ("ev-out",),
        "details": {"release_type": "outbound", "quantity_kg": 1000.0},
        "identity": ("ev-out",),
    }
    return Finding(**{**fields, **changes})


def fired(f: Finding | None = None) -> Alert:
    (alert,) = reconcile([], [f or finding()], NOW, "v1")
    return alert


def test_a_new_finding_fires() -> None:
    f = finding()
    (alert,) = reconcile([], [f], NOW, "v1")
    assert alert.alert_id == alert_id(f)
    assert alert.status == "firing" and alert.resolved_at is None
    assert alert.detected_at == NOW
    assert alert.severity == "critical"
    assert alert.rule_set == "v1"
    assert (alert.type, alert.trace_code, alert.site_id, alert.zone_id) == (
        "missing_disinfection",
        "T1",
        "PORT",
        "A1",
    )
    assert alert.occurred_at == T0
    assert alert.event_ids == ["ev-out"]
    assert alert.details == f.details


def test_warnings_are_warnings() -> None:
    alert = fired(finding(type="mixed_storage", identity=("PORT", "A1", "D1")))
    assert alert.severity == "warning"


def test_the_same_finding_again_changes_nothing() -> None:
    alert = fired()
    assert reconcile([alert], [finding()], LATER, "v1") == []
    assert fired().alert_id == alert.alert_id


def test_the_same_finding_twice_in_one_round_is_one_alert() -> None:
    assert len(reconcile([], [finding(), finding()], NOW, "v1")) == 1


def test_a_finding_gone_is_resolved() -> None:
    alert = fired()
    (resolved,) = reconcile([alert], [], LATER, "v1")
    assert resolved.alert_id == alert.alert_id
    assert resolved.status == "resolved"
    assert resolved.resolved_at == LATER
    assert resolved.detected_at == NOW
    assert resolved.details == alert.details


def test_a_resolved_alert_not_found_stays_as_it_is() -> None:
    (resolved,) = reconcile([fired()], [], LATER, "v1")
    assert reconcile([resolved], [], LATEST, "v1") == []


def test_changed_details_update_the_alert_and_keep_detected_at() -> None:
    alert = fired()
    changed = finding(details={"release_type": "outbound", "quantity_kg": 900.0})
    (updated,) = reconcile([alert], [changed], LATER, "v1")
    assert updated.alert_id == alert.alert_id
    assert updated.status == "firing"
    assert updated.detected_at == NOW
    assert updated.details["quantity_kg"] == 900.0


def test_changed_events_or_moment_update_too() -> None:
    alert = fired()
    (updated,) = reconcile([alert], [finding(event_ids=("ev-out", "ev-2"))], LATER, "v1")
    assert updated.event_ids == ["ev-out", "ev-2"] and updated.detected_at == NOW
    moved = finding(occurred_at=T0 + timedelta(minutes=1))
    (updated,) = reconcile([alert], [moved], LATER, "v1")
    assert updated.occurred_at == moved.occurred_at and updated.detected_at == NOW


def test_a_resolved_alert_found_again_fires_anew() -> None:
    (resolved,) = reconcile([fired()], [], LATER, "v1")
    (again,) = reconcile([resolved], [finding()], LATEST, "v1")
    assert again.alert_id == resolved.alert_id
    assert again.status == "firing"
    assert again.resolved_at is None
    assert again.detected_at == LATEST


def test_only_what_changed_is_returned() -> None:
    kept = finding()
    gone = finding(identity=("ev-gone",), event_ids=("ev-gone",))
    new = finding(identity=("ev-new",), event_ids=("ev-new",))
    previous = reconcile([], [kept, gone], NOW, "v1")
    changes = reconcile(previous, [kept, new], LATER, "v1")
    assert {(a.alert_id, a.status) for a in changes} == {
        (alert_id(gone), "resolved"),
        (alert_id(new), "firing"),
    }


def test_alert_ids_differ_by_type_code_and_identity() -> None:
    base = finding()
    variants = [
        base,
        finding(type="missing_nucleic_test"),
        finding(trace_code="T2"),
        finding(identity=("ev-other",)),
        finding(identity=("ev", "-out")),
        finding(type="unknown_trace_code", identity=("PORT",)),
        finding(type="quantity_exceeded", identity=("PORT",)),
    ]
    ids = [alert_id(f) for f in variants]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


def test_alert_ids_are_stable_across_facts_that_change() -> None:
    base = alert_id(finding())
    assert alert_id(finding(details={"other": 1})) == base
    assert alert_id(finding(event_ids=("ev-out", "ev-x"))) == base
    assert alert_id(finding(occurred_at=T0 + timedelta(days=1))) == base
    assert alert_id(finding(site_id="CS-001", zone_id=None)) == base
