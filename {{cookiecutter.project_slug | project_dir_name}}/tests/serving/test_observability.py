"""The alert rules and the Grafana dashboard in deploy/ ask only for series the service exports
(or the monitor step pushes).

A metric renamed in serving/metrics.py, or a typo in a PromQL expression, would leave an alert
that never fires and a panel that stays empty: nothing else would notice.
"""

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from {{ cookiecutter.package_name }}.monitoring.metrics import SERIES

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
# PromQL's own words in the expressions here.
PROMQL = {"sum", "min", "max", "avg", "count", "rate", "increase", "histogram_quantile", "by"}
PROMQL |= {"without", "and", "or", "unless", "on", "ignoring", "bool", "time"}
# The series Prometheus writes itself for each scrape target.
SCRAPE_SERIES = {"up"}
# The series the monitor step pushes to the Pushgateway (monitoring/metrics.py).
MONITOR_SERIES = set(SERIES)
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}


def metric_names(expression: str) -> set[str]:
    """The series an expression selects: its names once label matchers, ranges, groupings and
    strings are taken out."""
    bare = re.sub(r'"[^"]*"', "", expression)
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\b(?:by|without|on|ignoring)\s*\([^)]*\)", " ", bare)
    return set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", bare)) - PROMQL


def alert_expressions() -> dict[str, str]:
    rules = yaml.safe_load((DEPLOY / "prometheus/alerts.yml").read_text(encoding="utf-8"))
    return {rule["alert"]: rule["expr"] for group in rules["groups"] for rule in group["rules"]}


def panel_expressions() -> dict[str, str]:
    dashboard = json.loads((DEPLOY / "grafana/dashboards/service.json").read_text("utf-8"))
    return {
        f"{panel['title']} ({target['refId']})": target["expr"]
        for panel in dashboard["panels"]
        for target in panel["targets"]
    }


def exported(client: TestClient) -> set[str]:
    """Every series name the service's /metrics can show, samples or not yet."""
    names = set()
    for family in text_string_to_metric_families(client.get("/metrics").text):
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ()))
    return names


def test_the_expression_parser_finds_the_metric_names() -> None:
    expression = (
        "histogram_quantile(0.99, sum by (le, job) (rate(http_request_duration_seconds_bucket"
        '{route=~"/predict|/invocations"}[5m]))) > 0.25 and on (job) up{job="api"} == 1'
    )
    assert metric_names(expression) == {"http_request_duration_seconds_bucket", "up"}
    assert metric_names("min(model_ready)") == {"model_ready"}


@pytest.mark.parametrize(
    "expressions", [alert_expressions, panel_expressions], ids=["alerts", "dashboard"]
)
def test_every_expression_reads_series_the_service_exports(
    client: TestClient, expressions: Callable[[], dict[str, str]]
) -> None:
    known = exported(client) | SCRAPE_SERIES | MONITOR_SERIES
    found = {name: metric_names(expression) for name, expression in expressions().items()}
    assert all(found.values()), "an expression that names no series checks nothing"
    unknown = {name: sorted(names - known) for name, names in found.items() if names - known}
    assert not unknown, (
        f"not exported by the service (serving/metrics.py) or the monitor: {unknown}"
    )
