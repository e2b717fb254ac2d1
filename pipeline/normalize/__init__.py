"""normalize: raw lines → canonical events, dead letters, and the inputs safe to commit.

`normalizer` drives everything (pure, synchronous; the worker and `smtp-auth normalize`
both call it); `dialects/` holds one pure parser per MTA log format, registered in
`dialects/__init__.py`; `correlate` keeps multi-line sessions bounded in size and time;
`acks` releases Kafka offsets in order; `parallel` normalizes a large file on every core
with output identical to one pass; `stats` is `smtp-auth normalize --stats`.

May import: `pipeline.ingest`, `pipeline.metrics`, `pipeline.settings`, `schemas`.
"""
