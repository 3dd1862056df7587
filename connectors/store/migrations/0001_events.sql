-- Events as received. Runs on chdb (ClickHouse 26) and on clickhouse-server 18.16 alike.
-- `ver` falls as received_at rises, so ReplacingMergeTree keeps the FIRST received
-- version of an event; reads still deduplicate (FINAL), because rows collapse only
-- when parts merge, whenever that is.
-- Granules smaller than the default 8192 rows: every read is a lookup of a few keys,
-- and a granule is the least ClickHouse reads per key (256 for the small rows of
-- event_ids, where the keys of one lookup are scattered over the whole table).
CREATE TABLE IF NOT EXISTS events (
    event_id String,
    event_type String,
    trace_code String,
    site_id String,
    zone_id Nullable(String),
    occurred_at_us Int64,
    received_at_us Int64,
    origin Nullable(String),
    product Nullable(String),
    country_of_origin Nullable(String),
    from_site_id Nullable(String),
    to_site_id Nullable(String),
    result Nullable(String),
    quantity_kg Nullable(Decimal64(3)),
    parent_trace_codes Array(String),
    payload String,
    content_hash String,
    ver UInt64
) ENGINE = ReplacingMergeTree(ver)
ORDER BY (trace_code, event_id)
SETTINGS index_granularity = 1024;

-- Which version of each event_id stands, whatever its trace code: a later version
-- may name another trace code, so the events table alone cannot tell.
CREATE TABLE IF NOT EXISTS event_ids (
    event_id String,
    content_hash String,
    trace_code String,
    ver UInt64
) ENGINE = ReplacingMergeTree(ver)
ORDER BY event_id
SETTINGS index_granularity = 256;

CREATE MATERIALIZED VIEW IF NOT EXISTS event_ids_mv TO event_ids AS
SELECT event_id, content_hash, trace_code, ver FROM events;

-- Parent -> child links of intakes that merged or split batches, keyed for children_of.
CREATE TABLE IF NOT EXISTS parent_links (
    parent_code String,
    child_code String,
    event_id String,
    content_hash String,
    ver UInt64
) ENGINE = ReplacingMergeTree(ver)
ORDER BY (parent_code, child_code, event_id)
SETTINGS index_granularity = 1024;

CREATE MATERIALIZED VIEW IF NOT EXISTS parent_links_mv TO parent_links AS
SELECT
    arrayJoin(parent_trace_codes) AS parent_code,
    trace_code AS child_code,
    event_id,
    content_hash,
    ver
FROM events
WHERE notEmpty(parent_trace_codes);
