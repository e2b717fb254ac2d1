"""Named counters for Prometheus, each with fixed labels. One instance per process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.lines = Counter("smtp_auth_lines", "Raw lines by dialect and outcome",
                             ["dialect", "outcome"], registry=r)
        self.events = Counter("smtp_auth_events", "Canonical events emitted",
                              ["source", "kind"], registry=r)
        self.rejections = Counter("smtp_auth_rejections", "Inputs sent to the dead-letter topic",
                                  ["stage", "reason"], registry=r)
        self.dead_letters = Counter("smtp_auth_dead_letters",
                                    "Relevant lines a dialect could not understand",
                                    ["dialect", "reason"], registry=r)
        self.pending = Gauge("smtp_auth_pending_sessions", "Multi-line sessions held open",
                             registry=r)
        self.sink_rows = Counter("smtp_auth_sink_rows", "Rows inserted into ClickHouse",
                                 ["table"], registry=r)
        self.sink_failures = Counter("smtp_auth_sink_failures", "Failed ClickHouse inserts",
                                     ["table"], registry=r)
        self.sink_dead_letters = Counter(
            "smtp_auth_sink_dead_letters",
            "Rows ClickHouse refused for good, dead-lettered with their offsets (by table: "
            "events, alerts)", ["table"], registry=r)
        self.consumer_lag = Gauge("smtp_auth_consumer_lag",
                                  "Records on a topic not yet handled, by consumer group",
                                  ["group"], registry=r)
        self.alerts = Counter("smtp_auth_alerts", "Alerts decided", ["rule"], registry=r)
        self.webhook_failures = Counter("smtp_auth_webhook_failures",
                                        "Alert webhook deliveries that failed", ["stage"],
                                        registry=r)
        self.counter_prunes = Counter("smtp_auth_counter_prunes",
                                      "Passes of the live counters' pruning",
                                      registry=r)
        self.counter_pruned_entries = Counter("smtp_auth_counter_pruned_entries",
                                              "Live counter entries that pruning rewrote",
                                              registry=r)
        self.counted = Counter("smtp_auth_counted_events",
                               "Events read by the live counters (copies included)", registry=r)
        self.sink_batch = Histogram("smtp_auth_sink_batch_rows", "Rows per insert",
                                    buckets=(1, 10, 100, 1000, 5000, 20000), registry=r)
