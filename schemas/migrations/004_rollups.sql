-- Rollups written by the events insert itself, replacing 002's recomputed `hourly`.
--
-- Why: 002 recomputed every hour a batch touched from `events FINAL`, so a batch cost grew
-- with what its hour already held, and every read paid FINAL over as many rows as events.
--
-- Exactness under at-least-once delivery: a materialized view adds each inserted events
-- row once, so it is exact as long as no copy of an event is inserted twice. The sink
-- (pipeline/store/aggregate.py `store_events`) makes that hold: before every insert
-- attempt, a retry included, it removes the events whose event_id is already stored,
-- looked up in `event_ids` (written by the same insert) by the minute of their event time,
-- so the lookup reads the batch's own minutes, not the hour. A replay with other batch
-- boundaries, or a retry after an insert that succeeded unseen, adds nothing. Copies inside
-- one batch are removed before. The insert_deduplication_token keeps the events table
-- itself exact, but not the views: this engine pushes a block the events table dropped as
-- a duplicate to the views all the same, so nothing may insert events around the sink's
-- path without that filter. Two sinks never write one partition at once (the group
-- protocol); the one gap is an insert that ClickHouse commits to the events table but not
-- to every view, which a rollup then misses (never counts twice).
--
-- Reads need no FINAL: every column is a sum, min, max or a mergeable state, and queries
-- aggregate again, so parts not yet merged give the same answer. Two resolutions: hours
-- for the edges of a window, days for the whole days inside it (reports/query.py
-- `rollup`). Three key sets: per sender (details tables), per domain and TLS version (charts
-- and totals), and the distinct senders themselves (the widget); legacy_ips holds
-- remediation's client IPs by sender.
--
-- An existing database: the views are created first, then each rollup is filled once from
-- `events FINAL`. Run this with the sinks stopped (an event written between the two steps
-- would be counted twice). The view targets have no deduplication window on purpose: two
-- different batches can produce identical rollup blocks (one message, same hour and key).
DROP TABLE IF EXISTS {db}.hourly;

CREATE TABLE IF NOT EXISTS {db}.hourly
(
    hour            DateTime('UTC'),
    sender_domain   LowCardinality(String),
    sender          String,
    tls_version     LowCardinality(String),
    auth_mechanism  LowCardinality(String),
    sender_id       SimpleAggregateFunction(any, UInt64),
    messages        SimpleAggregateFunction(sum, UInt64),
    recipients      SimpleAggregateFunction(sum, UInt64),
    bytes           SimpleAggregateFunction(sum, UInt64),
    failures        SimpleAggregateFunction(sum, UInt64),
    client_ips      AggregateFunction(uniqExact, String),
    first_seen      SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_seen       SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    last_submission SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, sender_domain, sender, tls_version, auth_mechanism)
TTL hour + INTERVAL {aggregate_ttl_days} DAY;

CREATE TABLE IF NOT EXISTS {db}.daily
(
    day             Date,
    sender_domain   LowCardinality(String),
    sender          String,
    tls_version     LowCardinality(String),
    auth_mechanism  LowCardinality(String),
    sender_id       SimpleAggregateFunction(any, UInt64),
    messages        SimpleAggregateFunction(sum, UInt64),
    recipients      SimpleAggregateFunction(sum, UInt64),
    bytes           SimpleAggregateFunction(sum, UInt64),
    failures        SimpleAggregateFunction(sum, UInt64),
    client_ips      AggregateFunction(uniqExact, String),
    first_seen      SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_seen       SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    last_submission SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, sender_domain, sender, tls_version, auth_mechanism)
TTL day + INTERVAL {aggregate_ttl_days} DAY;

CREATE TABLE IF NOT EXISTS {db}.domain_hourly
(
    hour            DateTime('UTC'),
    sender_domain   LowCardinality(String),
    tls_version     LowCardinality(String),
    messages        SimpleAggregateFunction(sum, UInt64),
    failures        SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, sender_domain, tls_version)
TTL hour + INTERVAL {aggregate_ttl_days} DAY;

CREATE TABLE IF NOT EXISTS {db}.domain_daily
(
    day             Date,
    sender_domain   LowCardinality(String),
    tls_version     LowCardinality(String),
    messages        SimpleAggregateFunction(sum, UInt64),
    failures        SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (day, sender_domain, tls_version)
TTL day + INTERVAL {aggregate_ttl_days} DAY;

CREATE TABLE IF NOT EXISTS {db}.senders_hourly
(
    hour            DateTime('UTC'),
    senders         AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY hour
TTL hour + INTERVAL {aggregate_ttl_days} DAY
-- A row holds every sender of its hour or day: small granules, so a window reads its own.
SETTINGS index_granularity = 4;

CREATE TABLE IF NOT EXISTS {db}.senders_daily
(
    day             Date,
    senders         AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY day
TTL day + INTERVAL {aggregate_ttl_days} DAY
-- A row holds every sender of its hour or day: small granules, so a window reads its own.
SETTINGS index_granularity = 4;

-- Remediation's client IPs: legacy-TLS submissions per sender, hour and client IP, sorted
-- by sender so the IPs of one page of senders are a few granules, not a scan.
CREATE TABLE IF NOT EXISTS {db}.legacy_ips
(
    sender          String,
    hour            DateTime('UTC'),
    client_ip       String,
    messages        SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (sender, hour, client_ip)
TTL hour + INTERVAL {aggregate_ttl_days} DAY;

CREATE TABLE IF NOT EXISTS {db}.event_ids
(
    minute          DateTime('UTC'),
    event_id        String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, event_id)
TTL minute + INTERVAL {ttl_days} DAY;

-- Fed by the events inserts themselves (one INSERT writes the events and their deltas).
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.hourly_mv TO {db}.hourly AS
SELECT toStartOfHour(t) AS hour, s AS sender_domain, u AS sender, v AS tls_version, m AS auth_mechanism,
    cityHash64(u) AS sender_id,
    countIf(k = 'submission') AS messages, sumIf(r, k = 'submission') AS recipients,
    sumIf(b, k = 'submission') AS bytes, countIf(k = 'auth_failure') AS failures,
    uniqExactStateIf(ip, has_ip) AS client_ips,
    min(t) AS first_seen, max(t) AS last_seen, maxIf(t, k = 'submission') AS last_submission
FROM (SELECT ts AS t, kind AS k, ifNull(sender, '') AS u, ifNull(sender_domain, '') AS s,
          tls_version AS v, ifNull(auth_mechanism, '') AS m, ifNull(recipients, 0) AS r,
          ifNull(size, 0) AS b, ifNull(client_ip, '') AS ip, client_ip IS NOT NULL AS has_ip
      FROM {db}.events)
GROUP BY hour, sender_domain, sender, tls_version, auth_mechanism;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.daily_mv TO {db}.daily AS
SELECT toDate(t) AS day, s AS sender_domain, u AS sender, v AS tls_version, m AS auth_mechanism,
    cityHash64(u) AS sender_id,
    countIf(k = 'submission') AS messages, sumIf(r, k = 'submission') AS recipients,
    sumIf(b, k = 'submission') AS bytes, countIf(k = 'auth_failure') AS failures,
    uniqExactStateIf(ip, has_ip) AS client_ips,
    min(t) AS first_seen, max(t) AS last_seen, maxIf(t, k = 'submission') AS last_submission
FROM (SELECT ts AS t, kind AS k, ifNull(sender, '') AS u, ifNull(sender_domain, '') AS s,
          tls_version AS v, ifNull(auth_mechanism, '') AS m, ifNull(recipients, 0) AS r,
          ifNull(size, 0) AS b, ifNull(client_ip, '') AS ip, client_ip IS NOT NULL AS has_ip
      FROM {db}.events)
GROUP BY day, sender_domain, sender, tls_version, auth_mechanism;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.domain_hourly_mv TO {db}.domain_hourly AS
SELECT toStartOfHour(t) AS hour, s AS sender_domain, v AS tls_version,
    countIf(k = 'submission') AS messages, countIf(k = 'auth_failure') AS failures
FROM (SELECT ts AS t, kind AS k, ifNull(sender, '') AS u, ifNull(sender_domain, '') AS s,
          tls_version AS v, ifNull(auth_mechanism, '') AS m, ifNull(recipients, 0) AS r,
          ifNull(size, 0) AS b, ifNull(client_ip, '') AS ip, client_ip IS NOT NULL AS has_ip
      FROM {db}.events)
GROUP BY hour, sender_domain, tls_version;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.domain_daily_mv TO {db}.domain_daily AS
SELECT toDate(t) AS day, s AS sender_domain, v AS tls_version,
    countIf(k = 'submission') AS messages, countIf(k = 'auth_failure') AS failures
FROM (SELECT ts AS t, kind AS k, ifNull(sender, '') AS u, ifNull(sender_domain, '') AS s,
          tls_version AS v, ifNull(auth_mechanism, '') AS m, ifNull(recipients, 0) AS r,
          ifNull(size, 0) AS b, ifNull(client_ip, '') AS ip, client_ip IS NOT NULL AS has_ip
      FROM {db}.events)
GROUP BY day, sender_domain, tls_version;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.senders_hourly_mv TO {db}.senders_hourly AS
SELECT toStartOfHour(t) AS hour,
    uniqExactStateIf(u, k = 'submission' AND u != '') AS senders
FROM (SELECT ts AS t, kind AS k, ifNull(sender, '') AS u, ifNull(sender_domain, '') AS s,
          tls_version AS v, ifNull(auth_mechanism, '') AS m, ifNull(recipients, 0) AS r,
          ifNull(size, 0) AS b, ifNull(client_ip, '') AS ip, client_ip IS NOT NULL AS has_ip
      FROM {db}.events)
GROUP BY hour;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.senders_daily_mv TO {db}.senders_daily AS
SELECT toDate(t) AS day,
    uniqExactStateIf(u, k = 'submission' AND u != '') AS senders
FROM (SELECT ts AS t, kind AS k, ifNull(sender, '') AS u, ifNull(sender_domain, '') AS s,
          tls_version AS v, ifNull(auth_mechanism, '') AS m, ifNull(recipients, 0) AS r,
          ifNull(size, 0) AS b, ifNull(client_ip, '') AS ip, client_ip IS NOT NULL AS has_ip
      FROM {db}.events)
GROUP BY day;
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.legacy_ips_mv TO {db}.legacy_ips AS
SELECT u AS sender, toStartOfHour(t) AS hour, ip AS client_ip, count() AS messages
FROM (SELECT assumeNotNull(sender) AS u, ts AS t, assumeNotNull(client_ip) AS ip
      FROM {db}.events
      WHERE kind = 'submission' AND sender IS NOT NULL AND client_ip IS NOT NULL
          AND tls_version IN ('TLS1.0', 'TLS1.1', 'SSL3'))
GROUP BY sender, hour, client_ip;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.event_ids_mv TO {db}.event_ids AS
SELECT toStartOfMinute(ts) AS minute, event_id FROM {db}.events;

-- An existing database: what the events already hold, once (see the header).
INSERT INTO {db}.hourly
SELECT toStartOfHour(t) AS hour, s AS sender_domain, u AS sender, v AS tls_version, m AS auth_mechanism,
    cityHash64(u) AS sender_id,
    countIf(k = 'submission') AS messages, sumIf(r, k = 'submission') AS recipients,
    sumIf(b, k = 'submission') AS bytes, countIf(k = 'auth_failure') AS failures,
    uniqExactStateIf(ip, has_ip) AS client_ips,
    min(t) AS first_seen, max(t) AS last_seen, maxIf(t, k = 'submission') AS last_submission
FROM (SELECT ts AS t, kind AS k, ifNull(sender, '') AS u, ifNull(sender_domain, '') AS s,
          tls_version AS v, ifNull(auth_mechanism, '') AS m, ifNull(recipients, 0) AS r,
          ifNull(size, 0) AS b, ifNull(client_ip, '') AS ip, client_ip IS NOT NULL AS has_ip
      FROM {db}.events FINAL)
GROUP BY hour, sender_domain, sender, tls_version, auth_mechanism;

INSERT INTO {db}.daily
SELECT toDate(t) AS day, s AS sender_domain, u AS sender, v AS tls_version, m AS auth_mechanism,
    cityHash64(u) AS sender_id,
    countIf(k = 'submission') AS messages, sumIf(r, k = 'submission') AS recipients,
    sumIf(b, k = 'submission') AS bytes, countIf(k = 'auth_failure') AS failures,
    uniqExactStateIf(ip, has_ip) AS client_ips,
    min(t) AS first_seen, max(t) AS last_seen, maxIf(t, k = 'submission') AS last_submission
FROM (SELECT ts AS t, kind AS k, ifNull(sender, '') AS u, ifNull(sender_domain, '') AS s,
          tls_version AS v, ifNull(auth_mechanism, '') AS m, ifNull(recipients, 0) AS r,
          ifNull(size, 0) AS b, ifNull(client_ip, '') AS ip, client_ip IS NOT NULL AS has_ip
      FROM {db}.events FINAL)
GROUP BY day, sender_domain, sender, tls_version, auth_mechanism;

INSERT INTO {db}.domain_hourly
SELECT toStartOfHour(t) AS hour, s AS sender_domain, v AS tls_version,
    countIf(k = 'submission') AS messages, countIf(k = 'auth_failure') AS failures
FROM (SELECT ts AS t, kind AS k, ifNull(sender, '') AS u, ifNull(sender_domain, '') AS s,
          tls_version AS v, ifNull(auth_mechanism, '') AS m, ifNull(recipients, 0) AS r,
          ifNull(size, 0) AS b, ifNull(client_ip, '') AS ip, client_ip IS NOT NULL AS has_ip
      FROM {db}.events FINAL)
GROUP BY hour, sender_domain, tls_version;

INSERT INTO {db}.domain_daily
SELECT toDate(t) AS day, s AS sender_domain, v AS tls_version,
    countIf(k = 'submission') AS messages, countIf(k = 'auth_failure') AS failures
FROM (SELECT ts AS t, kind AS k, ifNull(sender, '') AS u, ifNull(sender_domain, '') AS s,
          tls_version AS v, ifNull(auth_mechanism, '') AS m, ifNull(recipients, 0) AS r,
          ifNull(size, 0) AS b, ifNull(client_ip, '') AS ip, client_ip IS NOT NULL AS has_ip
      FROM {db}.events FINAL)
GROUP BY day, sender_domain, tls_version;

INSERT INTO {db}.senders_hourly
SELECT toStartOfHour(t) AS hour,
    uniqExactStateIf(u, k = 'submission' AND u != '') AS senders
FROM (SELECT ts AS t, kind AS k, ifNull(sender, '') AS u, ifNull(sender_domain, '') AS s,
          tls_version AS v, ifNull(auth_mechanism, '') AS m, ifNull(recipients, 0) AS r,
          ifNull(size, 0) AS b, ifNull(client_ip, '') AS ip, client_ip IS NOT NULL AS has_ip
      FROM {db}.events FINAL)
GROUP BY hour;

INSERT INTO {db}.senders_daily
SELECT toDate(t) AS day,
    uniqExactStateIf(u, k = 'submission' AND u != '') AS senders
FROM (SELECT ts AS t, kind AS k, ifNull(sender, '') AS u, ifNull(sender_domain, '') AS s,
          tls_version AS v, ifNull(auth_mechanism, '') AS m, ifNull(recipients, 0) AS r,
          ifNull(size, 0) AS b, ifNull(client_ip, '') AS ip, client_ip IS NOT NULL AS has_ip
      FROM {db}.events FINAL)
GROUP BY day;
INSERT INTO {db}.legacy_ips
SELECT u AS sender, toStartOfHour(t) AS hour, ip AS client_ip, count() AS messages
FROM (SELECT assumeNotNull(sender) AS u, ts AS t, assumeNotNull(client_ip) AS ip
      FROM {db}.events FINAL
      WHERE kind = 'submission' AND sender IS NOT NULL AND client_ip IS NOT NULL
          AND tls_version IN ('TLS1.0', 'TLS1.1', 'SSL3'))
GROUP BY sender, hour, client_ip;

INSERT INTO {db}.event_ids SELECT toStartOfMinute(ts) AS minute, event_id FROM {db}.events FINAL;
