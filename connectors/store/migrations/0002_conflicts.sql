-- Versions of an event that arrived after another version of it was stored.
-- Redelivery (at-least-once) detects the same conflict again: keyed by the conflicting
-- hash, the first detection stands.
CREATE TABLE IF NOT EXISTS conflicts (
    event_id String,
    stored_hash String,
    conflicting_hash String,
    conflicting_payload String,
    detected_at_us Int64,
    ver UInt64
) ENGINE = ReplacingMergeTree(ver)
ORDER BY (event_id, conflicting_hash);
