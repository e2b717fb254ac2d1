-- Normalized events, one row per canonical event.
-- ReplacingMergeTree on event_id: faust is at-least-once, so a replayed line can reach us twice
-- with the same event_id; merges collapse such copies and exact queries read with FINAL.
-- insert_deduplication_token (set by the sink from topic/partition/offsets) makes a retried
-- batch a no-op even before any merge; non_replicated_deduplication_window enables it here.
CREATE TABLE IF NOT EXISTS {db}.events
(
    event_id        String,
    kind            LowCardinality(String),
    ts              DateTime64(3, 'UTC'),
    server          LowCardinality(String),
    source          LowCardinality(String),
    sender          Nullable(String),
    sender_domain   Nullable(String),
    envelope_from   Nullable(String),
    auth_mechanism  LowCardinality(Nullable(String)),
    client_ip       Nullable(String),
    client_host     Nullable(String),
    tls_version     LowCardinality(String),
    tls_cipher      LowCardinality(Nullable(String)),
    message_id      Nullable(String),
    recipients      Nullable(UInt32),
    size            Nullable(UInt64)
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(ts)
ORDER BY (kind, toStartOfHour(ts), event_id)
TTL toDateTime(ts) + INTERVAL {ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 10000;
