"""The per-agent histograms of /metrics expose exactly what prometheus-client's Histogram would."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from trdr_tui.api.metrics import CONFIDENCE_BUCKETS, LATENCY_BUCKETS, PerAgentHistogram


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_the_per_agent_histogram_matches_prometheus_clients_histogram() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    fast = PerAgentHistogram("agent_confidence", "Agent confidence distribution", CONFIDENCE_BUCKETS, ours)
    reference = Histogram("agent_confidence", "Agent confidence distribution", ["agent_id"],
                          buckets=CONFIDENCE_BUCKETS, registry=theirs)
    # values on the bounds (le is inclusive), between them, below the first and above the last
    observations = [("momentum", v) for v in (0.0, 0.1, 0.1000001, 0.3, 0.45, 0.9, 0.95, 1.0)] + \
                   [("regime", v) for v in (0.4, 0.4, 0.7)]
    for agent_id, value in observations:
        fast.observe(agent_id, value)
        reference.labels(agent_id=agent_id).observe(value)
    got, want = samples(ours), samples(theirs)
    assert {k: v for k, v in want.items() if not k[0].endswith("_created")} == got
    assert got[("agent_confidence_bucket", (("agent_id", "momentum"), ("le", "0.1")))] == 2
    assert got[("agent_confidence_count", (("agent_id", "regime"),))] == 3


def test_latency_bounds_are_labelled_as_prometheus_client_labels_them() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    PerAgentHistogram("agent_latency_seconds", "Time of one agent call", LATENCY_BUCKETS, ours).observe("regime", 0.003)
    Histogram("agent_latency_seconds", "Time of one agent call", ["agent_id"], buckets=LATENCY_BUCKETS,
              registry=theirs).labels(agent_id="regime").observe(0.003)
    assert {k: v for k, v in samples(theirs).items() if not k[0].endswith("_created")} == samples(ours)
