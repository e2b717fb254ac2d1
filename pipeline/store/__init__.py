"""store: ClickHouse, the durable truth.

`clickhouse` is the one client (embedded chDB or a server) and the migrations runner;
`sink` is the one write path (events and alerts: batched per partition, idempotent,
committed after the insert, refused rows dead-lettered); `aggregate` recomputes the hourly
aggregates a batch touched; `reports` holds the typed report queries every reader calls.

May import: `pipeline.ingest` (Kafka settings), `pipeline.metrics`, `pipeline.settings`,
`schemas`.
"""
