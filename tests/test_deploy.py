"""The shared stack's files of a generated project, checked by the tools that run them.

Kubernetes manifests against the API's schemas (kubernetes-validate, strict), the Compose file
against the Compose specification (check-jsonschema's vendored schema), the Prometheus
configuration and alert rules with `promtool` (its own unit tests of the rules included), and the
Grafana provisioning against the dashboard it loads; then how the files point at each other (the
images' targets, users, commands, ports, volumes and secrets). That Prometheus really scrapes the
running service is the slow tier's business (test_generated.py, `test_serve_answers_until_stopped`),
and so is running the pipeline image's services (test_image.py).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from hooks import template_hooks

from .conftest import COMBINATIONS, BakedProject, bake_into, prometheus_tool

KUBERNETES = "deploy/kubernetes"
COMPOSE = "docker-compose.yml"
# Installed with the template's tools, beside this interpreter.
KUBERNETES_VALIDATE = str(Path(sys.executable).parent / "kubernetes-validate")
CHECK_JSONSCHEMA = str(Path(sys.executable).parent / "check-jsonschema")


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
    # Kustomize's image overrides name the containers' images: the service's and the pipeline's.
    (scoring,) = resources["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"][
        "containers"
    ]
    assert [image["name"] for image in kustomization(baked)["images"]] == [
        api["image"],
        scoring["image"],
    ]
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
    # The monitor's verdicts and drift figures have theirs.
    expressions = " ".join(
        target["expr"] for panel in dashboard["panels"] for target in panel["targets"]
    )
    for series in ("monitor_alarm", "monitor_drift_share", "monitor_feature_psi"):
        assert series in expressions
    # The scrape jobs the dashboard and the alerts select are the ones prometheus.yml defines:
    # the service, and the Pushgateway the monitor pushes to (with the labels it pushed).
    prometheus = yaml.safe_load(
        (baked.path / "deploy/prometheus/prometheus.yml").read_text(encoding="utf-8")
    )
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    assert set(jobs) == {"api", "pushgateway"}
    assert jobs["pushgateway"]["honor_labels"] is True
    assert source["url"] == "http://prometheus:9090"


def compose(project: BakedProject) -> dict[str, Any]:
    """docker-compose.yml, parsed (its YAML merge keys resolved, as Compose resolves them)."""
    return dict(yaml.safe_load((project.path / COMPOSE).read_text(encoding="utf-8")))


def dockerfile_stages(project: BakedProject) -> dict[str, list[str]]:
    """The Dockerfile's instructions by stage name, from its FROM line on (continuation lines
    joined, comments left out)."""
    text = (project.path / "Dockerfile").read_text(encoding="utf-8")
    stages: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in re.sub(r"\\\n\s*", " ", text).splitlines():
        if stage := re.match(r"FROM \S+ AS (\S+)$", line):
            current = stages.setdefault(stage.group(1), [])
        if current is not None and line and not line.startswith("#"):
            current.append(line)
    return stages


def made_folders(stages: dict[str, list[str]], stage: str) -> set[str]:
    """The folders `RUN mkdir -p` makes in `stage` and the stages it is built on (WORKDIR /app)."""
    parent = stages[stage][0].split()[1]
    folders = made_folders(stages, parent) if parent in stages else set()
    for line in stages[stage]:
        if made := re.match(r"RUN mkdir -p ([^&]+)", line):
            folders |= {Path("/app", folder).as_posix() for folder in made[1].split()}
    return folders


def dagster_location(project: BakedProject) -> dict[str, str]:
    """pyproject.toml's [tool.dagster]: the definitions' module and the code location's name."""
    config = tomllib.loads((project.path / "pyproject.toml").read_text(encoding="utf-8"))
    return dict(config["tool"]["dagster"])


def option(command: list[str], name: str) -> str:
    """The value given to `name` in a command written as a list."""
    return command[command.index(name) + 1]


def test_the_compose_file_follows_the_compose_specification(baked: BakedProject) -> None:
    checked = subprocess.run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.compose-spec", str(baked.path / COMPOSE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_compose_check_refuses_a_broken_file(tmp_path: Path) -> None:
    """The check above can fail: a misspelt dependency condition is refused."""
    broken = tmp_path / COMPOSE
    broken.write_text(
        yaml.safe_dump(
            {
                "services": {
                    "db": {"image": "postgres:17.6"},
                    "api": {
                        "image": "api:1.0",
                        "depends_on": {"db": {"condition": "service_helthy"}},
                    },
                }
            }
        ),
        encoding="utf-8",
    )
    refused = subprocess.run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.compose-spec", str(broken)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode != 0
    assert "service_helthy" in refused.stdout + refused.stderr


# Compose's interpolation: `${NAME}`, `${NAME:-default}`, `${NAME:?message}`.
INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?P<operator>:?[-?])?[^}]*\}")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|API_KEY")


def test_compose_waits_for_health_keeps_state_in_volumes_and_asks_for_every_secret(
    baked: BakedProject,
) -> None:
    stack = compose(baked)
    services = stack["services"]
    conditions = {
        (name, dependency): spec["condition"]
        for name, service in services.items()
        for dependency, spec in service.get("depends_on", {}).items()
    }
    assert set(conditions.values()) <= {"service_healthy", "service_completed_successfully"}
    # What others wait for as healthy has a health check; the one-shot jobs are waited for to
    # finish; every other service runs on, restarts, and says whether it is healthy.
    healthy = {
        dependency for (_, dependency), condition in conditions.items() if "healthy" in condition
    }
    one_shot = {dependency for (_, dependency), condition in conditions.items()} - healthy
    assert healthy
    assert one_shot == {"create-bucket"}
    for name, service in services.items():
        if name in one_shot:
            continue
        assert "healthcheck" in service, f"{name} has no health check"
        assert service["healthcheck"]["test"][0] == "CMD", name
        assert service["restart"] == "unless-stopped", name
    assert healthy <= {name for name, service in services.items() if "healthcheck" in service}
    # Every named volume a service mounts is declared, and every declared one is used; every
    # file or folder mounted from the project exists.
    mounts = [mount for service in services.values() for mount in service.get("volumes", [])]
    assert {mount.split(":")[0] for mount in mounts if not mount.startswith(".")} == set(
        stack["volumes"]
    )
    for source in {mount.split(":")[0] for mount in mounts if mount.startswith("./")}:
        assert (baked.path / source).exists(), source
    # Images pulled from a registry are pinned; published ports listen on the machine only.
    for name, service in services.items():
        if "build" not in service:
            tag = service["image"].rpartition(":")[2]
            assert re.search(r"\d", tag), f"{name}: {service['image']}"
            assert tag != "latest", name
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name}: {port}"
    # Secrets have no default: Compose refuses to start without them (and names them).
    text = (baked.path / COMPOSE).read_text(encoding="utf-8")
    secrets = [found for found in INTERPOLATION.finditer(text) if SECRET_NAME.search(found["name"])]
    assert {found["name"] for found in secrets} == {
        "POSTGRES_PASSWORD",
        "MINIO_ROOT_PASSWORD",
        "API_KEY",
        "GRAFANA_ADMIN_PASSWORD",
    }
    for found in secrets:
        assert found["operator"] == ":?", f"{found.group(0)}: a secret must be required"


def test_compose_builds_the_dockerfiles_images_and_prometheus_scrapes_the_api(
    baked: BakedProject,
) -> None:
    services = compose(baked)["services"]
    stages = dockerfile_stages(baked)
    dockerfile = (baked.path / "Dockerfile").read_text(encoding="utf-8")
    built = {
        name: service["build"]["target"] for name, service in services.items() if "build" in service
    }
    assert set(built.values()) == {"runtime", "pipeline"}
    assert set(built.values()) <= set(stages)
    # The folders volumes are mounted on exist in the image, made by its user (a fresh volume
    # takes the folder's owner).
    for name, target in built.items():
        for mount in services[name].get("volumes", []):
            source, path = mount.split(":")[:2]
            if not source.startswith("."):
                assert path in made_folders(stages, target), f"{name}: {path} is not made"
    # Prometheus scrapes `api:8000` (deploy/prometheus/prometheus.yml): the runtime image's
    # service, on its PORT, the one its health check asks too.
    prometheus = yaml.safe_load(
        (baked.path / "deploy/prometheus/prometheus.yml").read_text(encoding="utf-8")
    )
    targets = {
        job["job_name"]: target
        for job in prometheus["scrape_configs"]
        for group in job["static_configs"]
        for target in group["targets"]
    }
    # and the Pushgateway, which the pipeline (the monitor step) is told, healthy before it.
    gateway, gateway_port = targets.pop("pushgateway").split(":")
    assert f"127.0.0.1:{gateway_port}:{gateway_port}" in services[gateway]["ports"]
    assert f"127.0.0.1:{gateway_port}/-/healthy" in " ".join(
        services[gateway]["healthcheck"]["test"]
    )
    pushed_to = services["dagster-code"]["environment"]["PROMETHEUS_PUSHGATEWAY_URL"]
    assert pushed_to == f"http://{gateway}:{gateway_port}"
    assert services["prometheus"]["depends_on"][gateway] == {"condition": "service_healthy"}
    (target,) = targets.values()
    host, port = target.split(":")
    assert built[host] == "runtime"
    assert f"PORT={port}" in dockerfile
    assert f"127.0.0.1:{port}:{port}" in services[host]["ports"]
    assert f"127.0.0.1:{port}/health" in " ".join(services[host]["healthcheck"]["test"])
    assert "./deploy/prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
    # Grafana reads that Prometheus, and its dashboards where the provider looks for them.
    grafana = baked.path / "deploy/grafana/provisioning"
    (source,) = yaml.safe_load(
        (grafana / "datasources/prometheus.yml").read_text(encoding="utf-8")
    )["datasources"]
    assert source["url"] == "http://prometheus:9090"
    assert "9090" in " ".join(services["prometheus"]["healthcheck"]["test"])
    (provider,) = yaml.safe_load(
        (grafana / "dashboards/dashboards.yml").read_text(encoding="utf-8")
    )["providers"]
    assert (
        f"./deploy/grafana/dashboards:{provider['options']['path']}:ro"
        in services["grafana"]["volumes"]
    )


def test_compose_wires_mlflow_dagster_and_their_databases(baked: BakedProject) -> None:
    services = compose(baked)["services"]
    # The tracking server's port is the one the service and the pipeline are told.
    port = option(services["mlflow"]["command"], "--port")
    for name in ("api", "dagster-code"):
        assert services[name]["environment"]["MLFLOW_TRACKING_URI"] == f"http://mlflow:{port}"
    # The code server is the pipeline image's own command, on the project's definitions; the
    # webserver and the daemon load it through deploy/dagster/workspace.yaml, mounted where
    # their --workspace says.
    code = services["dagster-code"]["command"]
    (cmd,) = [line for line in dockerfile_stages(baked)["pipeline"] if line.startswith("CMD ")]
    assert code == json.loads(cmd.removeprefix("CMD "))
    location = dagster_location(baked)
    assert option(code, "--module-name") == location["module_name"]
    workspace = yaml.safe_load(
        (baked.path / "deploy/dagster/workspace.yaml").read_text(encoding="utf-8")
    )
    (entry,) = workspace["load_from"]
    server = entry["grpc_server"]
    assert (server["host"], str(server["port"])) == ("dagster-code", option(code, "--port"))
    assert server["location_name"] == location["code_location_name"]
    for name in ("dagster-webserver", "dagster-daemon"):
        path = option(services[name]["command"], "--workspace")
        assert f"./deploy/dagster/workspace.yaml:{path}:ro" in services[name]["volumes"]
    # Every database a service uses is made by the init script, and the URLs name psycopg2
    # (SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3, which the image does not have).
    urls = {
        value
        for service in services.values()
        for value in service.get("environment", {}).values()
        if "@postgres:5432/" in str(value)
    }
    assert all(url.startswith("postgresql+psycopg2://") for url in urls)
    used = {url.rsplit("/", 1)[1] for url in urls}
    used.add(services["dagster-code"]["environment"]["POSTGRES_DB"])
    script = (baked.path / "deploy/postgres/init-databases.sql").read_text(encoding="utf-8")
    assert used == set(re.findall(r"^CREATE DATABASE (\w+);", script, flags=re.MULTILINE))
    assert any(
        mount.startswith("./deploy/postgres/init-databases.sql:/docker-entrypoint-initdb.d/")
        for mount in services["postgres"]["volumes"]
    )


def test_nightly_scoring_runs_the_score_step_from_the_pipeline_image(baked: BakedProject) -> None:
    resources = manifests(baked)
    cronjob, deployment = resources["CronJob"], resources["Deployment"]
    # Jobs get the CronJob's name and 11 characters more; a name is at most 63.
    assert len(cronjob["metadata"]["name"]) <= 52
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]
    assert all(len(value) <= 63 for value in pod["metadata"]["labels"].values())
    (score,) = pod["spec"]["containers"]
    # `make score`'s command, in the image's project folder, as the image's user.
    makefile = (baked.path / "Makefile").read_text(encoding="utf-8")
    package = re.search(r"^PACKAGE := (\w+)$", makefile, flags=re.MULTILINE)
    assert package
    assert score["command"] == ["python", "-m", package[1], "score"]
    assert re.search(r"^score:.*\n\t\$\(CLI\) score\b", makefile, flags=re.MULTILINE)
    dockerfile = (baked.path / "Dockerfile").read_text(encoding="utf-8")
    security = pod["spec"]["securityContext"]
    assert security["runAsNonRoot"] is True
    assert f"USER {security['runAsUser']}:" in dockerfile
    # The Deployment's settings and secrets; requests and a memory limit; a read-only root.
    (api,) = deployment["spec"]["template"]["spec"]["containers"]
    assert score["envFrom"] == api["envFrom"]
    assert score["resources"]["requests"]["cpu"]
    assert score["resources"]["limits"]["memory"]
    assert score["securityContext"]["readOnlyRootFilesystem"] is True
    # What it writes, the predictions table and the log (their defaults in config.py, inside
    # the image's PROJECT_DIR), is on the claim; scratch files go to /tmp.
    mounts = {mount["name"]: mount["mountPath"] for mount in score["volumeMounts"]}
    claim = resources["PersistentVolumeClaim"]["metadata"]["name"]
    (volume,) = [
        volume["name"]
        for volume in pod["spec"]["volumes"]
        if volume.get("persistentVolumeClaim", {}).get("claimName") == claim
    ]
    assert "PROJECT_DIR=/app" in dockerfile
    config = (baked.path / f"src/{package[1]}/config.py").read_text(encoding="utf-8")
    for setting in ("predictions_path", "prediction_log_dir"):
        default = re.search(rf'^    {setting}: Path = Path\("([^"]+)"\)$', config, re.MULTILINE)
        assert default, setting
        assert Path("/app", default[1]).is_relative_to(mounts[volume]), setting
    assert "/tmp" in mounts.values()  # noqa: S108 (the pod's scratch volume, read-only root)


def test_the_dagster_helm_values_run_the_project_from_the_pipeline_image(
    baked: BakedProject,
) -> None:
    folder = baked.path / "deploy/dagster"
    values = yaml.safe_load((folder / "values.yaml").read_text(encoding="utf-8"))
    resources = manifests(baked)
    # The code location: the project's definitions, from the image the CronJob runs, with the
    # Deployment's settings and secrets, as the image's user.
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    location = dagster_location(baked)
    assert deployment["name"] == location["code_location_name"]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", location["module_name"]]
    cronjob_pod = resources["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (score,) = cronjob_pod["containers"]
    images = {image["name"]: image["newName"] for image in kustomization(baked)["images"]}
    assert deployment["image"]["repository"] == images[score["image"]]
    (api,) = resources["Deployment"]["spec"]["template"]["spec"]["containers"]
    for key, reference in (("envConfigMaps", "configMapRef"), ("envSecrets", "secretRef")):
        expected = [ref[reference]["name"] for ref in api["envFrom"] if reference in ref]
        assert [source["name"] for source in deployment[key]] == expected, key
    dockerfile = (baked.path / "Dockerfile").read_text(encoding="utf-8")
    assert f"USER {deployment['podSecurityContext']['runAsUser']}:" in dockerfile
    # Dagster's storage on the external PostgreSQL through psycopg2, its password from a Secret
    # the chart does not write; telemetry off and the package's logs kept, as in dagster.yaml.
    postgresql = values["postgresql"]
    assert postgresql["enabled"] is False
    assert postgresql["postgresqlScheme"] == "postgresql+psycopg2"
    assert values["generatePostgresqlPasswordSecret"] is False
    assert values["global"]["postgresqlSecretName"]
    assert values["telemetry"]["enabled"] is False
    instance = yaml.safe_load((folder / "dagster.yaml").read_text(encoding="utf-8"))
    assert (
        values["pythonLogs"]["managedPythonLoggers"]
        == instance["python_logs"]["managed_python_loggers"]
    )
    # Runs execute one at a time in the code server's pod, with the predictions claim mounted
    # where the CronJob mounts it.
    launcher = values["runLauncher"]["config"]["customRunLauncher"]
    assert (launcher["module"], launcher["class"]) == ("dagster", "DefaultRunLauncher")
    coordinator = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert coordinator["maxConcurrentRuns"] == 1
    claims = {
        volume["name"]: volume["persistentVolumeClaim"]["claimName"]
        for volume in deployment["volumes"]
    }
    mounted = {claims[mount["name"]]: mount["mountPath"] for mount in deployment["volumeMounts"]}
    cronjob_mounts = {
        volume["persistentVolumeClaim"]["claimName"]: mount["mountPath"]
        for volume in cronjob_pod["volumes"]
        if "persistentVolumeClaim" in volume
        for mount in score["volumeMounts"]
        if mount["name"] == volume["name"]
    }
    assert mounted == cronjob_mounts


def test_what_the_helm_values_hand_to_kubernetes_is_valid_kubernetes(
    baked: BakedProject, tmp_path: Path
) -> None:
    """The chart copies the code server's security contexts, resources, volumes and environment
    into its pod as they are: in a pod of their own, they pass kubernetes-validate --strict.
    (The values as a whole are not checked against the chart's schema: see the README row.)"""
    values = yaml.safe_load((baked.path / "deploy/dagster/values.yaml").read_text(encoding="utf-8"))
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    image = deployment["image"]
    container = {
        "name": "dagster-user-deployments",
        "image": f"{image['repository']}:{image['tag']}",
        "imagePullPolicy": image["pullPolicy"],
        "securityContext": deployment["securityContext"],
        "resources": deployment["resources"],
        "volumeMounts": deployment["volumeMounts"],
        "envFrom": [{"configMapRef": source} for source in deployment["envConfigMaps"]]
        + [{"secretRef": source} for source in deployment["envSecrets"]],
        "env": [{"name": name, "value": value} for name, value in deployment["env"].items()],
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": deployment["name"]},
        "spec": {
            "securityContext": deployment["podSecurityContext"],
            "volumes": deployment["volumes"],
            "containers": [container],
        },
    }
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(yaml.safe_dump(pod), encoding="utf-8")
    validated = subprocess.run(
        [KUBERNETES_VALIDATE, "--strict", str(manifest)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert validated.returncode == 0, validated.stdout + validated.stderr


def test_the_longest_slug_the_hooks_accept_names_valid_kubernetes_objects(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Every name built from the slug stays within Kubernetes' limits at its longest."""
    slug = "s" * template_hooks.MAX_SLUG_LENGTH
    longest = bake_into(tmp_path_factory.mktemp("longest"), project_slug=slug)
    names: dict[str, str] = {}
    labels: list[str] = []
    for kind, resource in manifests(longest).items():
        names[kind] = resource["metadata"]["name"]
        labels += resource["metadata"].get("labels", {}).values()
    labels += kustomization(longest)["labels"][0]["pairs"].values()
    # Names that become DNS labels (Services, and the pods' hostnames) are at most 63 characters;
    # a CronJob's Jobs add 11 to its name.
    assert all(len(name) <= 63 for name in names.values()), names
    assert len(names["CronJob"]) <= 52, names["CronJob"]
    assert all(len(label) <= 63 for label in labels), labels
    # The Dagster chart, released as `dagster`, names the code server's Service after it.
    values = yaml.safe_load(
        (longest.path / "deploy/dagster/values.yaml").read_text(encoding="utf-8")
    )
    (location,) = values["dagster-user-deployments"]["deployments"]
    assert len(f"dagster-dagster-user-deployments-{location['name']}") <= 63
