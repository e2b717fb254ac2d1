"""ingest: where log lines come from and how they are read.

Syslog headers (`syslog`), shipper envelopes and canonical JSON (`envelope`), the block
scanner for files (`scan`, with its Rust twin `_scan` built from native/), Kafka connection
settings and topic creation (`kafka`), and the producers that put lines on the raw topic:
`replay` (log files) and `feed` (the synthetic feed of `make run`).

May import: `schemas`, `pipeline.settings`, `pipeline.synthetic` (the feed). Nothing above.
"""
