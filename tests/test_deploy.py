"""The shared stack's files of a generated project, checked by the tools that run them.

Kubernetes manifests against the API's schemas (kubernetes-validate, strict), the Prometheus
configuration and alert rules with `promtool` (its own unit tests of the rules included), and the
Grafana provisioning against the dashboard it loads. That Prometheus really scrapes the running
service is the slow tier's business (test_generated.py, `test_serve_answers_until_stopped`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import COMBINATIONS, BakedProject, bake_into, prometheus_tool

KUBERNETES = "deploy/kubernetes"
# Installed with the template's tools, beside this interpreter.
KUBERNETES_VALIDATE = str(Path(sys.executable).parent / "kubernetes-validate")


@pytest.fixture(scope="module", params=["defaults", "custom-names"])
def baked(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> BakedProject:
    return bake_into(tmp_path_factory.mktemp(request.param), **COMBINATIONS[request.param])


def kustomization(project: BakedProject) -> dict[str, Any]:
    """deploy/kubernetes/kustomization.yaml, parsed."""
    text = (project.path / KUBERNETES / "kustomization.yaml").read_text(encoding="utf-8")
    return dict(yaml.safe_load(text))


def manifests(project: BakedProject) -> dict[str, dict[str, Any]]:
    """The resources kustomization.yaml lists, by kind."""
    folder = project.path / KUBERNETES
    documents = [
        yaml.safe_load((folder / name).read_text(encoding="utf-8"))
        for name in kustomization(project)["resources"]
    ]
    return {document["kind"]: document for document in documents}


def test_kustomize_lists_every_manifest_and_each_is_valid_kubernetes(
    baked: BakedProject,
) -> None:
    folder = baked.path / KUBERNETES
    files = {path.name for path in folder.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization(baked)["resources"]) == files
    validated = subprocess.run(
        [KUBERNETES_VALIDATE, "--strict", *(str(folder / name) for name in sorted(files))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert validated.stdout.count(" passed for resource ") == len(files), validated.stdout


def test_kubernetes_validate_refuses_a_broken_manifest(tmp_path: Path) -> None:
    """The check above can fail: a probe with a misspelt field is refused."""
    broken = tmp_path / "deployment.yaml"
    broken.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "api"},
                "spec": {
                    "selector": {"matchLabels": {"app": "api"}},
                    "template": {
                        "metadata": {"labels": {"app": "api"}},
                        "spec": {
                            "containers": [
                                {"name": "api", "image": "api", "readinessProbe": {"httpGett": {}}}
                            ]
                        },
                    },
                },
            }
        ),
        encoding="utf-8",
    )
    refused = subprocess.run(
        [KUBERNETES_VALIDATE, "--strict", str(broken)], capture_output=True, text=True, check=False
    )
    assert refused.returncode != 0
    assert "httpGett" in refused.stdout + refused.stderr


def test_the_deployment_probes_the_service_and_the_rest_points_at_it(
    baked: BakedProject,
) -> None:
    resources = manifests(baked)
    deployment, service = resources["Deployment"], resources["Service"]
    pod = deployment["spec"]["template"]
    (api,) = pod["spec"]["containers"]
    assert api["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert api["livenessProbe"]["httpGet"]["path"] == "/health"
    assert api["resources"]["requests"]["cpu"]
    assert api["resources"]["limits"]["memory"]
    # The image's user (Dockerfile: 10001), and the folder its prediction log is written to.
    dockerfile = (baked.path / "Dockerfile").read_text(encoding="utf-8")
    assert f"USER {pod['spec']['securityContext']['runAsUser']}:" in dockerfile
    mounts = {mount["mountPath"] for mount in api["volumeMounts"]}
    assert "PREDICTION_LOG_DIR=/app/predictions" in dockerfile
    assert "/app/predictions" in mounts
    # Kustomize's image override names the container's image.
    assert [image["name"] for image in kustomization(baked)["images"]] == [api["image"]]
    # The Service and the budget select the pods; the autoscaler scales the Deployment.
    labels = pod["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    assert resources["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == labels
    target = resources["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    settings = {ref["configMapRef"]["name"] for ref in api["envFrom"] if "configMapRef" in ref}
    assert settings == {resources["ConfigMap"]["metadata"]["name"]}
    # Pod annotations tell a Prometheus that discovers pods where /metrics is.
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(api["ports"][0]["containerPort"])


def test_promtool_passes_the_configuration_and_the_rules_unit_tests(baked: BakedProject) -> None:
    promtool = prometheus_tool("promtool")
    folder = baked.path / "deploy/prometheus"
    for command in (
        ("check", "config", "prometheus.yml"),
        ("check", "rules", "alerts.yml"),
        ("test", "rules", "alerts.test.yml"),
    ):
        checked = subprocess.run(
            [promtool, *command], cwd=folder, capture_output=True, text=True, check=False
        )
        assert checked.returncode == 0, f"promtool {' '.join(command)}:\n{checked.stdout}"
        assert "SUCCESS" in checked.stdout


def test_every_alert_has_a_unit_test_that_fires_it(baked: BakedProject) -> None:
    folder = baked.path / "deploy/prometheus"
    rules = yaml.safe_load((folder / "alerts.yml").read_text(encoding="utf-8"))
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    cases = yaml.safe_load((folder / "alerts.test.yml").read_text(encoding="utf-8"))["tests"]
    fired = {
        check["alertname"]
        for case in cases
        for check in case["alert_rule_test"]
        if check.get("exp_alerts")
    }
    assert fired == alerts


def test_grafana_loads_the_dashboard_from_the_prometheus_it_provisions(
    baked: BakedProject,
) -> None:
    grafana = baked.path / "deploy/grafana"
    sources = yaml.safe_load(
        (grafana / "provisioning/datasources/prometheus.yml").read_text(encoding="utf-8")
    )
    (source,) = sources["datasources"]
    dashboard = json.loads((grafana / "dashboards/service.json").read_text(encoding="utf-8"))
    used = {
        target["datasource"]["uid"] for panel in dashboard["panels"] for target in panel["targets"]
    }
    assert used == {source["uid"]}
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
    # The service's four golden signals each have a panel.
    descriptions = " ".join(panel["description"] for panel in dashboard["panels"])
    for signal in ("traffic", "errors", "latency", "saturation"):
        assert f"golden signal: {signal}" in descriptions
    # The scrape job the dashboard and the alerts select is the one prometheus.yml defines.
    prometheus = yaml.safe_load(
        (baked.path / "deploy/prometheus/prometheus.yml").read_text(encoding="utf-8")
    )
    assert [job["job_name"] for job in prometheus["scrape_configs"]] == ["api"]
    assert source["url"] == "http://prometheus:9090"
