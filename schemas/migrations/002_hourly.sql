-- Hourly aggregates per hour × sender × sender_domain × tls_version × auth_mechanism.
--
-- Why a ReplacingMergeTree recomputed from events, rather than a materialized view:
-- the pipeline is at-least-once, and a replayed event can arrive in a batch with other
-- boundaries than its first copy. A materialized view (or a SummingMergeTree fed by the
-- sink) would add such a copy twice. Instead, after each events insert the sink recomputes
-- the hours it touched from `events FINAL` (which collapses copies by event_id) and inserts
-- the result with a newer `version`; the newest computation of an hour wins. Recomputing is
-- idempotent, so retries and replays never double count. Readers use FINAL.
-- client_ips holds uniqExact states so distinct client IPs merge correctly across hours.
CREATE TABLE IF NOT EXISTS {db}.hourly
(
    hour            DateTime('UTC'),
    sender          String,
    sender_domain   String,
    tls_version     LowCardinality(String),
    auth_mechanism  LowCardinality(String),
    messages        UInt64,
    recipients      UInt64,
    bytes           UInt64,
    failures        UInt64,
    client_ips      AggregateFunction(uniqExact, String),
    first_seen      DateTime64(3, 'UTC'),
    last_seen       DateTime64(3, 'UTC'),
    version         DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, sender_domain, sender, tls_version, auth_mechanism)
TTL hour + INTERVAL {aggregate_ttl_days} DAY;
