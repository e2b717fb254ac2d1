-- Alerts as decided by the pipeline. Ids are stable (rule + key + window), so a replay or a
-- retried insert writes the same row again and ReplacingMergeTree keeps one; read with FINAL.
CREATE TABLE IF NOT EXISTS {db}.alerts
(
    alert_id        String,
    rule            LowCardinality(String),
    severity        LowCardinality(String),
    key             String,
    ts              DateTime('UTC'),
    window_start    DateTime('UTC'),
    window_end      DateTime('UTC'),
    value           Float64,
    threshold       Float64,
    baseline_mean   Nullable(Float64),
    baseline_sd     Nullable(Float64),
    details         String,
    message         String
)
ENGINE = ReplacingMergeTree
ORDER BY alert_id
TTL ts + INTERVAL {aggregate_ttl_days} DAY;
