-- Every event by site, in time order: finding the batches that could have been stored
-- beside one batch's stay in a zone reads one site's range of this table, not every
-- batch the site ever held. Duplicates are harmless here: the query only asks whether
-- and when a code did something at the site.
CREATE TABLE IF NOT EXISTS site_events (
    site_id String,
    trace_code String,
    event_type String,
    zone_id Nullable(String),
    occurred_at_us Int64
) ENGINE = MergeTree()
ORDER BY (site_id, trace_code, occurred_at_us)
SETTINGS index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS site_events_mv TO site_events AS
SELECT site_id, trace_code, event_type, zone_id, occurred_at_us FROM events;

-- Events stored before this migration existed.
INSERT INTO site_events
SELECT site_id, trace_code, event_type, zone_id, occurred_at_us FROM events
WHERE (SELECT count() FROM site_events) = 0;
