"""The monitor's figures for Prometheus, pushed to a Pushgateway after each run.

The monitor is a batch step, which Prometheus cannot scrape: with ``PROMETHEUS_PUSHGATEWAY_URL``
set, each run pushes its verdict and figures there (job ``monitor``, grouped by model, so a run
replaces the previous run's figures), and Prometheus scrapes the Pushgateway
(``deploy/prometheus/prometheus.yml``). The alerts of ``deploy/prometheus/alerts.yml`` and the
dashboard of ``deploy/grafana/`` read these series.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Gauge

if TYPE_CHECKING:
    from .monitor import MonitoringSummary

logger = logging.getLogger(__name__)

JOB = "monitor"


# Every series a run pushes: its help text and its labels (besides the `job` and `model` of the
# push). The alerts and the dashboard in deploy/ may read these and the service's (its tests check).
SERIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "monitor_last_run_timestamp_seconds": ("When the monitor last ran (Unix time).", ()),
    "monitor_model_version": ("The version the run judged (0: a reference file).", ()),
    "monitor_alarm": ("1 when the run raised it: drift, performance, retrain.", ("alarm",)),
    "monitor_window_rows": ("Rows in the window judged for drift.", ()),
    "monitor_drift_share": ("Share of the features that drifted.", ()),
    "monitor_feature_psi": ("Population stability index of a feature.", ("feature",)),
    "monitor_feature_drifted": ("1 when the feature drifted.", ("feature",)),
    "monitor_positive_rate": ("Share of positive predictions.", ("window",)),
    "monitor_realised": ("Precision and recall of the latest judged period.", ("metric",)),
}


def monitoring_registry(summary: MonitoringSummary) -> CollectorRegistry:
    """One monitoring run as Prometheus gauges (the push adds ``job`` and ``model``).

    A figure the run could not compute (drift on too few rows, precision before labels) has no
    sample: a push replaces the group, so the previous run's value does not linger either.
    """
    registry = CollectorRegistry()
    gauges = {
        name: Gauge(name, documentation, labels, registry=registry)
        for name, (documentation, labels) in SERIES.items()
    }
    gauges["monitor_last_run_timestamp_seconds"].set(time.time())
    number = summary.model_version or ""
    gauges["monitor_model_version"].set(int(number) if number.isdigit() else 0)
    alarm = gauges["monitor_alarm"]
    alarm.labels(alarm="drift").set(summary.drift_detected)
    alarm.labels(alarm="performance").set(summary.performance_breach)
    alarm.labels(alarm="retrain").set(summary.retrain_recommended)
    gauges["monitor_window_rows"].set(summary.window.rows)
    drift = summary.drift
    if drift is None:  # too few rows to judge
        registry.unregister(gauges["monitor_drift_share"])  # no sample rather than a false 0
    else:
        gauges["monitor_drift_share"].set(drift.drift_share)
        for feature in (*drift.features, drift.prediction):
            gauges["monitor_feature_psi"].labels(feature=feature.feature).set(feature.psi)
            gauges["monitor_feature_drifted"].labels(feature=feature.feature).set(feature.drifted)
        rate = gauges["monitor_positive_rate"]
        rate.labels(window="reference").set(drift.positive_rate_reference)
        rate.labels(window="current").set(drift.positive_rate_current)
    performance = summary.performance
    for period in performance.periods:
        if period.period == performance.judged_period:
            for metric in ("precision", "recall"):
                value = getattr(period, metric)
                if value is not None:
                    gauges["monitor_realised"].labels(metric=metric).set(value)
    return registry


def push_monitoring_metrics(url: str, summary: MonitoringSummary, timeout: float = 10.0) -> None:
    """Replace the model's figures on the Pushgateway at `url` with this run's.

    Raises:
        OSError: when the Pushgateway cannot be reached or refuses the push.
    """
    from prometheus_client import push_to_gateway

    push_to_gateway(
        url,
        job=JOB,
        registry=monitoring_registry(summary),
        grouping_key={"model": summary.model_name},
        timeout=timeout,
    )
    logger.info("Monitoring figures pushed to %s (job %s)", url, JOB)
