"""Slow tier: build the generated project's container image for real, and serve from it.

No Docker engine and no image registry are needed: podman builds the project's own Dockerfile
(`--isolation chroot`) on stand-ins for its two public images, given as its build arguments:
a Debian base made from Debian's packages (mmdebstrap) for `python:<version>-slim`, and an image
holding this machine's uv binary for `ghcr.io/astral-sh/uv`. Both are cached in
`~/.cache/cookiecutter-mlops-tests/`, keyed by what they are made from.

The defaults are rendered and set up, and the loop runs against an MLflow tracking server over
HTTP (artifacts served by it), as in production; then the three targets are built, `runtime`
(pulls the champion from the registry at start), `baked` (the model from `make bundle` inside)
and `pipeline` (the whole project: MLflow's server, Dagster and the steps).
`podman run` cannot start containers in some sandboxes (crun cannot set RLIMIT_NPROC), so each
image's own command runs in a container's file system (`podman create` + `podman mount`, a
writable layer as in a real container) with `chroot`, as the image's user, with the image's
environment. The service images must become ready and answer `/predict`; the pipeline image
runs the services docker-compose.yml runs from it, with their commands and health checks, on
fresh databases of the PostgreSQL that TEST_POSTGRES_URL names, and the nightly scoring
CronJob's command.

Everything podman stores lives in a store of the test's own, removed at the end.
"""

from __future__ import annotations

import ast
import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import COMBINATIONS, BakedProject, bake_into
from .images import Podman, build_args, image_store
from .test_generated import Server, free_port, process_group, running

pytestmark = pytest.mark.slow

logger = logging.getLogger(__name__)

TARGETS = ("runtime", "baked")
# The pipeline's image: MLflow's tracking server, Dagster and the steps (docker-compose.yml).
PIPELINE = "pipeline"
# The commit the images are said to be built from (the Dockerfile's GIT_COMMIT argument).
BUILT_FROM = "0123456789abcdef0123456789abcdef01234567"
# CI's PostgreSQL (.ci/run exports TEST_POSTGRES_URL); the pipeline's services get databases there.
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# The experiment the loop logs to: created on the server first, so its artifacts are the
# server's (`mlflow-artifacts:/<id>`), reachable over HTTP from inside the image.
EXPERIMENT = "image-test"
# Pipeline packages that must stay out of the serving image.
NOT_IN_THE_IMAGE = ("dbt", "dvc", "great_expectations", "dagster")


@contextlib.contextmanager
def timed(phase: str) -> Iterator[None]:
    """Log how long `phase` took (`-o log_cli=true --log-cli-level=INFO` shows it live)."""
    start = time.monotonic()
    yield
    logger.info("%s: %.1f s", phase, time.monotonic() - start)


@dataclass
class Trained:
    """The rendered defaults after the loop ran against a tracking server, and its URL."""

    project: BakedProject
    tracking_uri: str


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    """A podman store for this module, with the base and uv images imported into it."""
    with (
        timed("base images (made once, then cached), imported"),
        image_store(tmp_path_factory.mktemp("podman")) as podman,
    ):
        yield podman


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    """The defaults, set up; the loop up to a champion and `make bundle`, on a tracking server."""
    with timed("render the defaults, make setup"):
        project = bake_into(tmp_path_factory.mktemp("image"), **COMBINATIONS["defaults"])
        project.run("make", "setup")
    registry = tmp_path_factory.mktemp("registry")
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server_command = [
        *(".venv/bin/mlflow", "server", "--host", "127.0.0.1", "--port", str(port)),
        *("--backend-store-uri", f"sqlite:///{registry / 'mlflow.db'}"),
        *("--artifacts-destination", str(registry / "artifacts"), "--workers", "1"),
    ]
    # No job runner: it starts a dozen processes that a registry for two images does not need.
    quiet = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with running(project, server_command, quiet, registry) as server:
        with timed("tracking server ready"):
            server.get(f"{uri}/health")
        project.env.update({"MLFLOW_TRACKING_URI": uri, "MLFLOW_EXPERIMENT": EXPERIMENT})
        with timed("the loop up to a champion, make bundle"):
            project.run(
                ".venv/bin/mlflow", "experiments", "create", "--experiment-name", EXPERIMENT
            )
            project.run("make", "data", "validate", "train", "evaluate", "register", "promote")
            project.run("make", "bundle")
        yield Trained(project, uri)


@pytest.fixture(scope="module")
def images(podman: Podman, trained: Trained) -> dict[str, str]:
    """The project's Dockerfile's targets, built (`baked` reuses `runtime`'s layers)."""
    arguments = build_args()
    built = {}
    for target in (*TARGETS, PIPELINE):
        tag = f"localhost/{trained.project.path.name}:{target}"
        with timed(f"podman build --target {target}"):
            podman(
                *("build", "--isolation", "chroot", "--network", "host", "--pull=never"),
                *("--format", "docker"),  # Docker's format: OCI has no HEALTHCHECK
                *arguments,
                *("--build-arg", f"GIT_COMMIT={BUILT_FROM}"),
                *("--target", target, "--tag", tag, str(trained.project.path)),
            )
        built[target] = tag
    return built


@contextlib.contextmanager
def container_root(podman: Podman, image: str) -> Iterator[Path]:
    """A container's file system (the image plus a writable layer), mounted; never started."""
    name = f"image-test-{secrets.token_hex(4)}"
    podman("create", "--no-healthcheck", "--name", name, image)
    try:
        yield Path(podman("mount", name).strip())
    finally:
        podman("umount", name)
        podman("rm", name)


def in_image(root: Path, config: dict[str, Any], command: list[str]) -> list[str]:
    """`command` run as the image runs it: chrooted, as its user, in its working folder."""
    chroot = shutil.which("chroot")
    assert chroot
    workdir = config.get("WorkingDir") or "/"
    userspec = f"--userspec={config['User']}"
    return [chroot, userspec, str(root), "/usr/bin/env", f"--chdir={workdir}", *command]


def champion_version(tracking_uri: str, model: str) -> str:
    """The version the registry's `champion` alias points to, over its REST API."""
    url = f"{tracking_uri}/api/2.0/mlflow/registered-models/alias?name={model}&alias=champion"
    with urllib.request.urlopen(url, timeout=10) as reply:  # noqa: S310 (http on 127.0.0.1)
        return str(json.loads(reply.read())["model_version"]["version"])


def example_record(openapi: dict[str, Any]) -> dict[str, Any]:
    """A record `POST /predict` accepts: each required field's first allowed value."""
    content = openapi["paths"]["/predict"]["post"]["requestBody"]["content"]
    one_or_many = content["application/json"]["schema"]["anyOf"]
    schema = next(option for option in one_or_many if option.get("type") == "object")
    record: dict[str, Any] = {}
    for name in schema["required"]:
        field = schema["properties"][name]
        if "enum" in field:
            record[name] = field["enum"][0]
        elif field.get("type") in {"integer", "number"}:
            record[name] = field.get("minimum", 0)
        else:
            record[name] = "example"
    return record


def post(url: str, body: dict[str, Any], api_key: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"} | ({"X-API-Key": api_key} if api_key else {})
    request = urllib.request.Request(  # noqa: S310 (http on 127.0.0.1)
        url, data=json.dumps(body).encode("utf-8"), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


@pytest.mark.parametrize("target", TARGETS)
def test_the_image_serves_predictions(
    target: str, podman: Podman, images: dict[str, str], trained: Trained, tmp_path: Path
) -> None:
    """The image's own command, user and environment: ready on the champion, then predicting."""
    image = images[target]
    inspected = podman.inspect(image)
    config, healthcheck = inspected["Config"], inspected["Healthcheck"]["Test"]
    assert config["User"] == "10001:10001"
    assert healthcheck[0] == "CMD"
    port, api_key = free_port(), secrets.token_hex(16)
    env = dict(variable.split("=", 1) for variable in config["Env"])
    # Loopback only on a shared machine; ENVIRONMENT=prod (the image's) requires an API key.
    env |= {"PORT": str(port), "SERVING_HOST": "127.0.0.1", "API_KEY": api_key}
    if target == "runtime":
        assert "SERVING_MODEL_URI" not in env
        env["MLFLOW_TRACKING_URI"] = trained.tracking_uri
    else:
        assert env["SERVING_MODEL_URI"] == "/app/model"
    base = f"http://127.0.0.1:{port}"
    with container_root(podman, image) as root:
        # Only the service: its venv, its log folder (and the bundle); no data, no registry.
        expected = {".venv", "predictions"} | ({"model"} if target == "baked" else set())
        assert {path.name for path in (root / "app").iterdir()} == expected
        site_packages = next((root / "app/.venv/lib").glob("python3.*/site-packages"))
        assert not [name for name in NOT_IN_THE_IMAGE if (site_packages / name).exists()]

        command, log = in_image(root, config, config["Cmd"]), tmp_path / "image-server.log"
        with process_group(command, env, log) as server:
            with timed(f"{target}: the image's command, from start to ready"):
                ready = json.loads(server.get(f"{base}/ready"))
            assert ready["ready"] is True, ready
            assert ready["version"] == champion_version(trained.tracking_uri, ready["model"])
            openapi = json.loads(server.get(f"{base}/openapi.json"))
            record = example_record(openapi)
            refused, _ = post(f"{base}/predict", record, api_key=None)
            assert refused == 401
            status, answer = post(f"{base}/predict", record, api_key=api_key)
            assert status == 200, answer
            assert answer["model"]["version"] == ready["version"]
            (prediction,) = answer["predictions"]
            assert prediction["prediction"] in prediction["probabilities"]
            assert sum(prediction["probabilities"].values()) == pytest.approx(1)
            # The image's HEALTHCHECK, as the engine would run it (`python` is the venv's).
            check = subprocess.run(
                in_image(root, config, healthcheck[1:]),
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            assert check.returncode == 0, check.stderr
        # The prediction, logged by the image's user into its folder in the container's layer.
        assert list((root / "app/predictions").rglob("*.parquet"))


@contextlib.contextmanager
def shared_memory(root: Path) -> Iterator[None]:
    """A tmpfs on the container's /dev/shm, as an engine mounts one: Python's multiprocessing
    locks live there (dagster-dbt takes one when the definitions load)."""
    folder = root / "dev/shm"
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "mode=1777,size=64m", "tmpfs", str(folder)], check=True
    )
    try:
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@contextlib.contextmanager
def fresh_databases(*names: str) -> Iterator[dict[str, str]]:
    """A database of its own for each of `names` on the PostgreSQL of POSTGRES_URL (dropped
    after): their URLs, with the psycopg2 driver named as docker-compose.yml names it."""
    psql = shutil.which("psql")
    assert psql, "psql is missing: apt-get install -y postgresql-client"

    def run_sql(statement: str) -> None:
        done = subprocess.run(
            [psql, POSTGRES_URL, "--quiet", "--command", statement],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"{statement} on TEST_POSTGRES_URL={POSTGRES_URL}: {done.stderr}")

    suffix = secrets.token_hex(4)
    databases = {name: f"image_test_{name}_{suffix}" for name in names}
    server = re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+psycopg2://", POSTGRES_URL)
    server = server.rsplit("/", 1)[0]
    for database in databases.values():
        run_sql(f'create database "{database}"')
    try:
        yield {name: f"{server}/{database}" for name, database in databases.items()}
    finally:
        for database in databases.values():
            run_sql(f'drop database if exists "{database}" with (force)')


def on_loopback(command: list[str], port: int) -> list[str]:
    """A compose service's command, listening on 127.0.0.1:`port` instead of every interface."""
    moved = list(command)
    moved[moved.index("--host") + 1] = "127.0.0.1"
    moved[moved.index("--port") + 1] = str(port)
    return moved


def wait_for_check(command: list[str], env: dict[str, str], server: Server) -> None:
    """Run a health check `command` until it passes, while `server` keeps running."""
    deadline = time.monotonic() + 120
    while True:
        check = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if check.returncode == 0:
            return
        assert server.process.poll() is None, server.log.read_text(encoding="utf-8")[-3000:]
        assert time.monotonic() < deadline, check.stdout + check.stderr
        time.sleep(1)


def status_with_host(url: str, host: str) -> int:
    """The HTTP status of GET `url` sent with the Host header `host`."""
    request = urllib.request.Request(url, headers={"Host": host})  # noqa: S310 (127.0.0.1)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310
            return int(reply.status)
    except urllib.error.HTTPError as refused:
        return refused.code


def telemetry_switches(project: BakedProject) -> dict[str, str]:
    """TELEMETRY_OFF of the project's config.py: what the CLI sets before any tool runs."""
    (config,) = project.path.glob("src/*/config.py")
    tree = ast.parse(config.read_text(encoding="utf-8"))
    (value,) = [
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and [getattr(target, "id", None) for target in node.targets] == ["TELEMETRY_OFF"]
    ]
    return dict(ast.literal_eval(value))


REPOSITORIES = (
    "{ repositoriesOrError { ... on RepositoryConnection"
    " { nodes { location { name } jobs { name } } } } }"
)


@dataclass
class PipelineContainer:
    """A container's file system of the pipeline image, and how docker-compose.yml runs it."""

    root: Path
    project: Path  # the rendered project the image was built from
    config: dict[str, Any]
    env: dict[str, str]  # the image's environment
    services: dict[str, Any]  # docker-compose.yml's services

    def run(self, command: list[str]) -> list[str]:
        return in_image(self.root, self.config, command)

    def settings(self, service: str) -> dict[str, str]:
        """The image's environment and what compose gives `service` that needs no secret."""
        given = self.services[service].get("environment", {})
        return {
            **self.env,
            **{key: str(value) for key, value in given.items() if "${" not in str(value)},
        }


@pytest.fixture(scope="module")
def pipeline(
    podman: Podman, images: dict[str, str], trained: Trained
) -> Iterator[PipelineContainer]:
    """The pipeline image's container file system, with /dev/shm as an engine mounts it."""
    config = podman.inspect(images[PIPELINE])["Config"]
    compose = (trained.project.path / "docker-compose.yml").read_text(encoding="utf-8")
    with container_root(podman, images[PIPELINE]) as root, shared_memory(root):
        yield PipelineContainer(
            root,
            trained.project.path,
            config,
            dict(variable.split("=", 1) for variable in config["Env"]),
            yaml.safe_load(compose)["services"],
        )


def test_the_pipeline_image_holds_the_project_and_not_its_data(
    pipeline: PipelineContainer, trained: Trained
) -> None:
    """Code, configuration and dbt's manifest; Dagster's instance; telemetry off; user 10001."""
    project = trained.project
    assert pipeline.config["User"] == "10001:10001"
    assert telemetry_switches(project).items() <= pipeline.env.items()
    # No .git inside: training reads the commit the image was built from.
    assert pipeline.env["GIT_COMMIT"] == BUILT_FROM
    assert pipeline.config["Labels"]["org.opencontainers.image.revision"] == BUILT_FROM
    app = {path.name for path in (pipeline.root / "app").iterdir()}
    assert {".venv", "src", "transform", "dvc.yaml", "params.yaml", "dagster_home"} <= app
    assert not app & {"tests", ".git", ".env", "mlflow.db", "mlruns"}
    # The folders the user writes are there (a volume mounted on one takes its owner), empty.
    for folder in ("data", "reports"):
        assert (pipeline.root / "app" / folder).stat().st_uid == 10001
        assert not list((pipeline.root / "app" / folder).iterdir()), folder
    assert (pipeline.root / "app/transform/target/manifest.json").is_file()
    instance = pipeline.root / pipeline.env["DAGSTER_HOME"].lstrip("/") / "dagster.yaml"
    shipped = project.path / "deploy/dagster/dagster.yaml"
    assert instance.read_text(encoding="utf-8") == shipped.read_text(encoding="utf-8")


def test_the_pipeline_image_serves_mlflow_on_postgresql(
    pipeline: PipelineContainer, tmp_path: Path
) -> None:
    """The `mlflow` service's command and settings, on a fresh database: an experiment's
    artifacts go through the server, and only the Host names compose allows are answered."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = pipeline.run(on_loopback(pipeline.services["mlflow"]["command"], port))
    with fresh_databases("mlflow") as databases:
        env = {
            **pipeline.settings("mlflow"),
            "MLFLOW_BACKEND_STORE_URI": databases["mlflow"],
            "MLFLOW_ARTIFACTS_DESTINATION": "s3://image-test/mlflow",
        }
        with process_group(command, env, tmp_path / "mlflow.log") as server:
            with timed("pipeline: mlflow server on PostgreSQL, from start to healthy"):
                server.get(f"{url}/health", timeout=120)
            status, created = post(
                f"{url}/api/2.0/mlflow/experiments/create", {"name": EXPERIMENT}, None
            )
            assert status == 200, created
            experiment = f"{url}/api/2.0/mlflow/experiments/get?experiment_id="
            found = json.loads(server.get(experiment + created["experiment_id"]))
            assert found["experiment"]["artifact_location"].startswith("mlflow-artifacts:")
            tracking = pipeline.settings("api")["MLFLOW_TRACKING_URI"]
            assert status_with_host(experiment + "0", tracking.removeprefix("http://")) == 200
            assert status_with_host(experiment + "0", "elsewhere.example:5000") == 403


def test_the_pipeline_image_runs_dagster(pipeline: PipelineContainer, tmp_path: Path) -> None:
    """The code server (the image's own command), then the webserver and the daemon loading it
    through the workspace file, each until its compose health check passes."""
    services = pipeline.services
    assert services["dagster-code"]["command"] == pipeline.config["Cmd"]
    code_port, web_port = free_port(), free_port()
    web_command = services["dagster-webserver"]["command"]
    # deploy/dagster/workspace.yaml, where compose mounts it, pointing at this code server.
    workspace = yaml.safe_load(
        (pipeline.project / "deploy/dagster/workspace.yaml").read_text(encoding="utf-8")
    )
    (entry,) = workspace["load_from"]
    entry["grpc_server"].update(host="127.0.0.1", port=code_port)
    mounted = pipeline.root / web_command[web_command.index("--workspace") + 1].lstrip("/")
    mounted.write_text(yaml.safe_dump(workspace), encoding="utf-8")
    with fresh_databases("dagster") as databases:
        # The image's own settings: the compose ones name hosts that exist on its network only
        # (the sensors would look for `mlflow`); the instance is the fresh database.
        env = {**pipeline.env, "DAGSTER_POSTGRES_URL": databases["dagster"]}
        code_command = pipeline.run(on_loopback(pipeline.config["Cmd"], code_port))
        with process_group(code_command, env, tmp_path / "code.log") as code:
            health = services["dagster-code"]["healthcheck"]["test"][1:]
            health[health.index("--port") + 1] = str(code_port)
            with timed("pipeline: dagster code server, from start to healthy"):
                wait_for_check(pipeline.run(health), env, code)
            web = pipeline.run(on_loopback(web_command, web_port))
            daemon = pipeline.run(services["dagster-daemon"]["command"])
            with (
                process_group(web, env, tmp_path / "web.log") as webserver,
                process_group(daemon, env, tmp_path / "daemon.log") as daemon_process,
            ):
                url = f"http://127.0.0.1:{web_port}"
                with timed("pipeline: dagster webserver, from start to answering"):
                    webserver.get(f"{url}/server_info")
                status, answer = post(f"{url}/graphql", {"query": REPOSITORIES}, None)
                assert status == 200, answer
                (repository,) = answer["data"]["repositoriesOrError"]["nodes"]
                assert repository["location"]["name"] == entry["grpc_server"]["location_name"]
                jobs = {job["name"] for job in repository["jobs"]}
                assert {"loop", "training", "scoring"} <= jobs
                liveness = services["dagster-daemon"]["healthcheck"]["test"][1:]
                with timed("pipeline: dagster daemon, from start to live"):
                    wait_for_check(pipeline.run(liveness), env, daemon_process)
            # The gRPC server ignores SIGTERM and SIGINT (seen with dagster 1.13): stopped as
            # an engine stops it after its grace period.
            os.killpg(code.process.pid, signal.SIGKILL)


def test_the_pipeline_image_scores_nightly(pipeline: PipelineContainer, trained: Trained) -> None:
    """The CronJob's command: the champion on the test's tracking server scores the feature
    table (the loop's warehouse, copied in) into the image's project folder, as its user."""
    project = trained.project
    cronjob = yaml.safe_load(
        (project.path / "deploy/kubernetes/cronjob.yaml").read_text(encoding="utf-8")
    )
    (container,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    data = pipeline.root / "app/data"
    shutil.copy2(project.path / "data/warehouse.duckdb", data / "warehouse.duckdb")
    os.chown(data / "warehouse.duckdb", 10001, 10001)
    env = {**pipeline.env, "MLFLOW_TRACKING_URI": trained.tracking_uri}
    with timed("pipeline: nightly scoring"):
        scored = subprocess.run(
            pipeline.run(container["command"]),
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
    assert scored.returncode == 0, scored.stdout + scored.stderr
    assert re.search(r"^scored \d+ rows with ", scored.stdout, flags=re.MULTILINE), scored.stdout
    predictions = data / "predictions"
    assert (predictions / "predictions.duckdb").stat().st_uid == 10001
    assert list((predictions / "log").rglob("*.parquet"))
