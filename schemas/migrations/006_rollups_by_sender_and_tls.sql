-- 004's per-sender day rows again, sorted by sender: the details pass of a ranked page; a
-- name per sender id: the order of a long run of equal counts; and 004's per-domain hours
-- summed over the domains: the flyout and the TLS chart.
--
-- Why: a details page (volume, TLS usage, remediation) ranks every sender of the window by
-- its 64-bit id, then reads the strings and shares of the 50-odd senders on the page.
-- `daily` is sorted by day first, so those senders' rows are in every granule of every
-- day: the second pass read the sender strings of the whole window (about 100-200 ms of a
-- 90-day page at a million senders). Here the primary key is (sender_id, day) with small
-- granules, so a page of senders reads a few thousand rows.
--
-- Exact for the same reasons as 004: it is fed by a materialized view of `daily` (the
-- rows 004's view writes, so each event once), every column is a sum, max or `any` of a
-- function of the key, and readers aggregate again (no FINAL). Only the columns the
-- details tables read are kept.
--
-- sender_names: each sender id's name, one row per sender once merged. A page edge inside
-- a run of equal counts (an estate of alike senders: thousands at the same count) is
-- ordered by name: a few thousand names here, not those senders' day rows.
--
-- tls_hourly: messages per hour and TLS version, all domains. The flyout and the TLS
-- chart without a domain read it alone, hours for the whole window (90 days are 2,160 x 7
-- rows at most): one small read, where domain_hourly's edge hours alone were 48,000 rows
-- of a 7-day flyout in the busy estate, and each table read costs a few ms of its own.
--
-- An existing database: each view is created first, then its table is filled once from
-- the rollup it is chained on (already exact, and far smaller than the events). Run this
-- with the sinks stopped, as 004 and 005: a batch written between the two steps would be
-- counted twice.
CREATE TABLE IF NOT EXISTS {db}.daily_by_sender
(
    sender_id       UInt64,
    day             Date,
    sender_domain   LowCardinality(String),
    sender          String,
    tls_version     LowCardinality(String),
    auth_mechanism  LowCardinality(String),
    messages        SimpleAggregateFunction(sum, UInt64),
    last_submission SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
PRIMARY KEY (sender_id, day)
ORDER BY (sender_id, day, sender_domain, sender, tls_version, auth_mechanism)
TTL day + INTERVAL {aggregate_ttl_days} DAY
-- A page's 50 senders are 50 places in the table: small granules keep each read short.
SETTINGS index_granularity = 256;

-- Chained on 004's `daily` (a view of `daily_mv`'s output): the rows are grouped already.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.daily_by_sender_mv TO {db}.daily_by_sender AS
SELECT sender_id, day, sender_domain, sender, tls_version, auth_mechanism, messages,
    last_submission
FROM {db}.daily;

INSERT INTO {db}.daily_by_sender
SELECT sender_id, day, sender_domain, sender, tls_version, auth_mechanism, messages,
    last_submission
FROM {db}.daily;

CREATE TABLE IF NOT EXISTS {db}.sender_names
(
    sender_id       UInt64,
    sender          SimpleAggregateFunction(any, String),
    last_day        SimpleAggregateFunction(max, Date)
)
ENGINE = AggregatingMergeTree
ORDER BY sender_id
TTL last_day + INTERVAL {aggregate_ttl_days} DAY
SETTINGS index_granularity = 256;

-- Chained on 004's `daily`, like daily_by_sender.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.sender_names_mv TO {db}.sender_names AS
SELECT sender_id, any(sender) AS sender, max(day) AS last_day
FROM {db}.daily GROUP BY sender_id;

INSERT INTO {db}.sender_names
SELECT sender_id, any(sender) AS sender, max(day) AS last_day
FROM {db}.daily GROUP BY sender_id;

CREATE TABLE IF NOT EXISTS {db}.tls_hourly
(
    hour            DateTime('UTC'),
    tls_version     LowCardinality(String),
    messages        SimpleAggregateFunction(sum, UInt64),
    failures        SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, tls_version)
TTL hour + INTERVAL {aggregate_ttl_days} DAY;

-- Chained on 004's domain_hourly; the GROUP BY sums one inserted block.
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.tls_hourly_mv TO {db}.tls_hourly AS
SELECT hour, tls_version, sum(messages) AS messages, sum(failures) AS failures
FROM {db}.domain_hourly GROUP BY hour, tls_version;

INSERT INTO {db}.tls_hourly
SELECT hour, tls_version, sum(messages) AS messages, sum(failures) AS failures
FROM {db}.domain_hourly GROUP BY hour, tls_version;
