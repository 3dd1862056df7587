-- Alerts, one row per change; the newest version of an alert_id stands (read with FINAL).
-- Ordered by trace code: a batch's alerts are read on every evaluation of the batch.
CREATE TABLE IF NOT EXISTS alerts (
    alert_id String,
    type String,
    severity String,
    trace_code String,
    site_id String,
    zone_id Nullable(String),
    status String,
    occurred_at_us Int64,
    detected_at_us Int64,
    updated_us Int64,
    payload String
) ENGINE = ReplacingMergeTree(updated_us)
ORDER BY (trace_code, alert_id)
SETTINGS index_granularity = 1024;

-- Which trace codes ever had an event at a site (the report lists every known site).
CREATE TABLE IF NOT EXISTS site_codes (
    site_id String,
    trace_code String
) ENGINE = ReplacingMergeTree()
ORDER BY (site_id, trace_code)
SETTINGS index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS site_codes_mv TO site_codes AS
SELECT site_id, trace_code FROM events;
