"""Prometheus metrics shared by the API and the stream workers.

Label sets that alert rules take ``increase()`` of are created at zero on start-up.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from schemas.alerts import ALERT_TYPES, SEVERITY
from schemas.events import EVENT_TYPES

EVENTS_ACCEPTED = Counter(
    "coldchain_events_accepted_total",
    "Events the API or importer accepted (202), by event type.",
    ["event_type"],
)
EVENTS_REJECTED = Counter(
    "coldchain_events_rejected_total",
    "Events refused at the door or sent to the dead-letter topic, by reason.",
    ["reason"],
)
EVENTS_STORED = Counter(
    "coldchain_events_stored_total",
    "Events the stream workers wrote to the lineage store (first copies only).",
    ["event_type"],
)
DUPLICATES = Counter(
    "coldchain_duplicate_events_total",
    "Events sent again with the same event_id and content: accepted, changed nothing.",
    ["where"],
)
CONFLICTS = Counter(
    "coldchain_conflicting_events_total",
    "Events sent again with the same event_id and different content: the first stands.",
    ["where"],
)
STORE_WRITE_SECONDS = Histogram(
    "coldchain_store_write_seconds",
    "Time of one batched insert into the lineage store.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

ALERTS_CHANGED = Counter(
    "coldchain_alerts_total",
    "Alert changes the rules made, by type, severity and the status they moved to.",
    ["type", "severity", "status"],
)

REJECT_REASONS = ("unauthorized", "too_large", "invalid", "forbidden", "conflict")


def initialise() -> None:
    for event_type in EVENT_TYPES:
        EVENTS_ACCEPTED.labels(event_type)
        EVENTS_STORED.labels(event_type)
    for reason in (*REJECT_REASONS, "dead_letter"):
        EVENTS_REJECTED.labels(reason)
    for alert_type in ALERT_TYPES:
        for status in ("firing", "resolved"):
            ALERTS_CHANGED.labels(alert_type, SEVERITY[alert_type], status)
    for where in ("api", "worker"):
        DUPLICATES.labels(where)
        CONFLICTS.labels(where)
