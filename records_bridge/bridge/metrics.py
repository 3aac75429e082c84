"""The bridge's metrics, in Prometheus form (prometheus_client): per sink, what was delivered, parked, retried, and
how far behind the hub it is. Served at ``/metrics`` on ``--metrics-port``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class BridgeMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.delivered = Counter("teleicu_bridge_events_delivered", "Outbox events delivered, by sink and event type.",
                                 ["sink", "type"], registry=r)  # fmt: skip
        self.parked = Counter("teleicu_bridge_events_parked", "Events a sink could never deliver, parked with the reason.",
                              ["sink"], registry=r)  # fmt: skip
        self.retries = Counter("teleicu_bridge_retries", "Deliveries or polls that failed and will be tried again.", ["sink"], registry=r)
        self.lag = Gauge("teleicu_bridge_lag_events", "Events the hub has written that the sink has not yet handled.", ["sink"], registry=r)
        self.position = Gauge("teleicu_bridge_cursor", "The id of the last outbox event the sink handled.", ["sink"], registry=r)
        self.failing = Gauge("teleicu_bridge_failing", "1 while the sink's current event keeps failing.", ["sink"], registry=r)

    def snapshot(self) -> dict[str, float]:
        """Every sample as ``name{labels}`` -> value, for the stats file and tests."""
        out: dict[str, float] = {}
        for metric in self.registry.collect():
            for s in metric.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
                out[f"{s.name}{{{labels}}}"] = s.value
        return out
