"""Prometheus metrics of the API and the stream workers (catalog: docs/monitoring.md).

Label sets that alert rules take ``increase()`` of are created at zero on start-up:
a series that appears with its first increment would hide that increment from
``increase()``. Site and event-type labels come only from values already checked
(a site the token holds, a stored event, a known event type), so that bad input
cannot create unbounded series.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

from schemas.alerts import ALERT_TYPES, SEVERITY
from schemas.events import EVENT_TYPES

# The `_created` series double what a scrape carries and no rule or panel reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

#: The label value where the site or event type is not known (or not trusted).
UNKNOWN = "unknown"

EVENTS_ACCEPTED = Counter(
    "coldchain_events_accepted_total",
    "New events the API or importer accepted (202), by site and event type.",
    ["site_id", "event_type"],
)
EVENTS_REJECTED = Counter(
    "coldchain_events_rejected_total",
    "Events refused at the door or sent to the dead-letter topic, by site, type and reason.",
    ["site_id", "event_type", "reason"],
)
EVENTS_STORED = Counter(
    "coldchain_events_stored_total",
    "Events the stream workers wrote to the lineage store (first copies only).",
    ["site_id", "event_type"],
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

CONSUMER_MESSAGES = Counter(
    "coldchain_consumer_messages_total",
    "Kafka messages the stream agents took, by topic.",
    ["topic"],
)
CONSUMER_LAG = Gauge(
    "coldchain_consumer_lag",
    "Messages in a partition this worker holds that it has not processed yet.",
    ["topic", "partition"],
)
_DELAY_BUCKETS = (1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 86400, 3 * 86400, 7 * 86400)
EVENT_DELAY = Histogram(
    "coldchain_event_delay_seconds",
    "From an event's occurred_at to when it was stored (sites may report late).",
    buckets=_DELAY_BUCKETS,
)
PIPELINE_LATENCY = Histogram(
    "coldchain_pipeline_latency_seconds",
    "From when an event was accepted (its Kafka timestamp) to when it was stored.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
STORE_WRITE_SECONDS = Histogram(
    "coldchain_store_write_seconds",
    "Time of one batched insert into the lineage store, by table.",
    ["table"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
STORE_ROWS = Counter(
    "coldchain_store_written_rows_total",
    "Rows written to the lineage store, by table.",
    ["table"],
)
ALERTS_CHANGED = Counter(
    "coldchain_alerts_total",
    "Alert changes the rules made, by type, severity and change (raised, updated, resolved).",
    ["type", "severity", "change"],
)
ALERTMANAGER_POSTS = Counter(
    "coldchain_alertmanager_posts_total",
    "Posts to Alertmanager's /api/v2/alerts, by outcome (ok, error: retried, refused: invalid).",
    ["outcome"],
)
ALERTMANAGER_UNDELIVERED = Gauge(
    "coldchain_alertmanager_undelivered",
    "Alert changes waiting for Alertmanager to accept them.",
)

SITE_LAST_EVENT = Gauge(
    "coldchain_site_last_event_timestamp_seconds",
    "When the site's newest event was received (Unix time), from the lineage store.",
    ["site_id"],
)
SITE_REPORT_INTERVAL = Gauge(
    "coldchain_site_report_interval_seconds",
    "How often the site is expected to report (the rule set's report_interval).",
    ["site_id"],
)
ALERTS_FIRING = Gauge(
    "coldchain_alerts_firing",
    "Alerts firing now, by type, severity and site, from the lineage store.",
    ["type", "severity", "site_id"],
)
SITE_RELEASED = Gauge(
    "coldchain_site_imported_batches_released",
    "Imported batches released (outbound or sale) at the site in the last 7 days.",
    ["site_id"],
)
SITE_COVERAGE = Gauge(
    "coldchain_site_release_coverage_ratio",
    "Share of those released with a disinfection (a negative nucleic test) at or before.",
    ["site_id", "check"],
)

API_REJECT_REASONS = ("unauthorized", "too_large", "invalid", "forbidden", "conflict")
#: Reasons an event of a known site can be refused for (the rest happen before the site is known).
SITE_REJECT_REASONS = ("invalid", "forbidden", "conflict", "dead_letter")


def event_type_label(value: object) -> str:
    return value if isinstance(value, str) and value in EVENT_TYPES else UNKNOWN


def initialise(sites: Iterable[str] = (), topics: Iterable[str] = ()) -> None:
    """Create at zero every label set that rules take ``increase()`` of."""
    for reason in (*API_REJECT_REASONS, "dead_letter"):
        EVENTS_REJECTED.labels(UNKNOWN, UNKNOWN, reason)
    for site in sites:
        for event_type in EVENT_TYPES:
            EVENTS_ACCEPTED.labels(site, event_type)
            EVENTS_STORED.labels(site, event_type)
            for reason in SITE_REJECT_REASONS:
                EVENTS_REJECTED.labels(site, event_type, reason)
    for topic in topics:
        CONSUMER_MESSAGES.labels(topic)
    for table in ("events", "alerts", "conflicts"):
        STORE_ROWS.labels(table)
        STORE_WRITE_SECONDS.labels(table)
    for alert_type in ALERT_TYPES:
        for change in ("raised", "updated", "resolved"):
            ALERTS_CHANGED.labels(alert_type, SEVERITY[alert_type], change)
    for where in ("api", "worker"):
        DUPLICATES.labels(where)
        CONFLICTS.labels(where)
    for outcome in ("ok", "error", "refused"):
        ALERTMANAGER_POSTS.labels(outcome)


def count_rejected(reason: str, labels: Iterable[tuple[str, str]]) -> None:
    """Count refused events, given each one's (site_id, event_type) label values."""
    tally: dict[tuple[str, str], int] = {}
    for pair in labels:
        tally[pair] = tally.get(pair, 0) + 1
    for (site_id, event_type), n in tally.items():
        EVENTS_REJECTED.labels(site_id, event_type, reason).inc(n)
