"""live: what is known right now, from the events topic, by event time.

Pure functions first: `count` (rolling 7-day counters per sender, exactly once) and
`decide` (alert rules: spikes, first legacy use, spraying, brute force). Then their faust
wiring: `counters` (the `count` agent, its table and the /live/v1 views) and `alerting`
(the `signal` and `alert` agents; alerts go to the alerts topic, which the sink stores).

May import: `pipeline.ingest` (Kafka settings), `pipeline.metrics`, `pipeline.settings`,
`pipeline.web.access` (credentials for peer requests), `schemas`.
"""
