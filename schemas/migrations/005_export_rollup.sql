-- The detailed export's rows (day × sender × mechanism × client IP × TLS version × cipher),
-- written by the events insert like 004's rollups and exact for the same reason. Sorted as
-- the export reads them, so a slice streams in key order: no FINAL over the events and no
-- GROUP BY of a week's events per call.
-- An existing database is filled once from `events FINAL`; run it with the sinks stopped.
CREATE TABLE IF NOT EXISTS {db}.export_daily
(
    day             Date,
    sender          String,
    sender_domain   String,
    auth_mechanism  LowCardinality(String),
    client_ip       String,
    tls_version     LowCardinality(String),
    tls_cipher      LowCardinality(String),
    messages        SimpleAggregateFunction(sum, UInt64),
    recipients      SimpleAggregateFunction(sum, UInt64),
    bytes           SimpleAggregateFunction(sum, UInt64),
    first_seen      SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_seen       SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, sender, auth_mechanism, client_ip, tls_version, tls_cipher, sender_domain)
TTL day + INTERVAL {aggregate_ttl_days} DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.export_daily_mv TO {db}.export_daily AS
SELECT toDate(t) AS day, u AS sender, s AS sender_domain, m AS auth_mechanism,
    ip AS client_ip, v AS tls_version, c AS tls_cipher, count() AS messages,
    sum(r) AS recipients, sum(b) AS bytes, min(t) AS first_seen, max(t) AS last_seen
FROM (SELECT ts AS t, ifNull(sender, '') AS u, ifNull(sender_domain, '') AS s,
          ifNull(auth_mechanism, '') AS m, ifNull(client_ip, '') AS ip, tls_version AS v,
          ifNull(tls_cipher, '') AS c, ifNull(recipients, 0) AS r, ifNull(size, 0) AS b
      FROM {db}.events WHERE kind = 'submission')
GROUP BY day, sender, auth_mechanism, client_ip, tls_version, tls_cipher, sender_domain;

INSERT INTO {db}.export_daily
SELECT toDate(t) AS day, u AS sender, s AS sender_domain, m AS auth_mechanism,
    ip AS client_ip, v AS tls_version, c AS tls_cipher, count() AS messages,
    sum(r) AS recipients, sum(b) AS bytes, min(t) AS first_seen, max(t) AS last_seen
FROM (SELECT ts AS t, ifNull(sender, '') AS u, ifNull(sender_domain, '') AS s,
          ifNull(auth_mechanism, '') AS m, ifNull(client_ip, '') AS ip, tls_version AS v,
          ifNull(tls_cipher, '') AS c, ifNull(recipients, 0) AS r, ifNull(size, 0) AS b
      FROM {db}.events FINAL WHERE kind = 'submission')
GROUP BY day, sender, auth_mechanism, client_ip, tls_version, tls_cipher, sender_domain;
