-- The least and greatest name seen under each sender id in 006's sender_names.
--
-- Why: the details tables rank senders by their 64-bit id (cityHash64 of the name), so two
-- senders whose names hash alike would be counted as one. Each page now checks the keys it
-- ranked (reports/query.py `ranked_page`) and falls back to grouping the names themselves
-- when a key stands for two. The keys on a page are checked in its own details pass; the
-- keys before it and a long run ordered by name are checked here, one narrow row per id:
-- two names under one id differ in their min and max. `sender` (an `any`) keeps one name
-- per id once merged, so it cannot tell.
--
-- The view is replaced (its `any` would keep one of two names in one block), then the table
-- is filled once from `daily`. Exact under at-least-once delivery by construction: any,
-- max, min and max are idempotent, so a batch that lands in both the new view and the fill,
-- or in neither view but in `daily` before the fill, is right all the same (the sinks may
-- keep running). Rows of parts written before this read both columns as their `sender`
-- (the DEFAULT); the fill adds every name `daily` holds, so an id whose second name an
-- earlier merge of `sender` dropped is seen again. A name expired from `daily` but kept
-- here can only make a key look collided: that page takes the slower exact path.
ALTER TABLE {db}.sender_names
    ADD COLUMN IF NOT EXISTS first_name SimpleAggregateFunction(min, String) DEFAULT sender,
    ADD COLUMN IF NOT EXISTS last_name SimpleAggregateFunction(max, String) DEFAULT sender;

DROP TABLE IF EXISTS {db}.sender_names_mv;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.sender_names_mv TO {db}.sender_names AS
SELECT sender_id, any(u) AS sender, max(day) AS last_day, min(u) AS first_name,
    max(u) AS last_name
FROM (SELECT sender_id, sender AS u, day FROM {db}.daily) GROUP BY sender_id;

INSERT INTO {db}.sender_names (sender_id, sender, last_day, first_name, last_name)
SELECT sender_id, any(u), max(day), min(u), max(u)
FROM (SELECT sender_id, sender AS u, day FROM {db}.daily) GROUP BY sender_id;
