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

from .monitor import ALARMS

if TYPE_CHECKING:
    from .monitor import MonitoringSummary

logger = logging.getLogger(__name__)

JOB = "monitor"


# Every series a run pushes: its help text and its labels (besides the `job` and `model` of the
# push). The alerts and the dashboard in deploy/ may read these and the service's (its tests check).
SERIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "monitor_last_run_timestamp_seconds": ("When the monitor last ran (Unix time).", ()),
    "monitor_model_version": ("The version the run judged (0: a reference file).", ()),
    "monitor_alarm": (
        "1 when the run raised it: data_quality, drift, estimated_performance, performance, "
        "retrain.",
        ("alarm",),
    ),
    "monitor_window_rows": ("Rows in the window judged.", ()),
    "monitor_data_quality_share": (
        "Share of the window's rows behind a data-quality issue.",
        ("feature", "kind"),
    ),
    "monitor_drift_share": ("Drifted share: of the importance or of the features, the larger.", ()),
    "monitor_drift_warnings": ("Moderate shifts (warnings, no alarm on their own).", ()),
    "monitor_feature_psi": ("Population stability index of a feature.", ("feature",)),
    "monitor_feature_drifted": ("1 when the feature drifted.", ("feature",)),
    "monitor_positive_rate": ("Share of positive predictions.", ("window",)),
    "monitor_estimated": (
        "Precision and recall estimated before labels, with the interval's bounds.",
        ("metric", "bound"),
    ),
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
    for kind in ALARMS:
        alarm.labels(alarm=kind).set(kind in summary.alarms)
    alarm.labels(alarm="retrain").set(summary.retrain_recommended)
    gauges["monitor_window_rows"].set(summary.window.rows)
    for issue in summary.quality.issues if summary.quality else []:
        quality = gauges["monitor_data_quality_share"]
        quality.labels(feature=issue.feature, kind=issue.kind).set(issue.share)
    drift = summary.drift
    if drift is None:  # too few rows to judge
        for series in ("monitor_drift_share", "monitor_drift_warnings"):
            registry.unregister(gauges[series])  # no sample rather than a false 0
    else:
        gauges["monitor_drift_share"].set(drift.drift_share)
        gauges["monitor_drift_warnings"].set(len(drift.warnings))
        for feature in (*drift.features, drift.prediction):
            gauges["monitor_feature_psi"].labels(feature=feature.feature).set(feature.psi)
            gauges["monitor_feature_drifted"].labels(feature=feature.feature).set(feature.drifted)
        rate = gauges["monitor_positive_rate"]
        rate.labels(window="reference").set(drift.positive_rate_reference)
        rate.labels(window="current").set(drift.positive_rate_current)
    for (metric, bound), value in _performance_figures(summary).items():
        if bound == "realised":
            gauges["monitor_realised"].labels(metric=metric).set(value)
        else:
            gauges["monitor_estimated"].labels(metric=metric, bound=bound).set(value)
    return registry


def _performance_figures(summary: MonitoringSummary) -> dict[tuple[str, str], float]:
    """Precision and recall: estimated (with bounds) and realised, where the run has them."""
    figures: dict[tuple[str, str], float | None] = {}
    estimate = summary.estimate
    realised = summary.performance.judged
    for metric in ("precision", "recall"):
        if estimate is not None:
            for bound, suffix in (("estimate", ""), ("low", "_low"), ("high", "_high")):
                figures[metric, bound] = getattr(estimate, metric + suffix)
        if realised is not None:
            figures[metric, "realised"] = getattr(realised, metric)
    return {key: value for key, value in figures.items() if value is not None}


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
