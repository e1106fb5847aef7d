"""Slow tier: build the generated project's container image for real, and serve from it.

No Docker engine and no image registry are needed: podman builds the project's own Dockerfile
(`--isolation chroot`) on stand-ins for its two public images, given as its build arguments:
a Debian base made from Debian's packages (mmdebstrap) for `python:<version>-slim`, and an image
holding this machine's uv binary for `ghcr.io/astral-sh/uv`. Both are cached in
`~/.cache/cookiecutter-mlops-tests/`, keyed by what they are made from.

The defaults are rendered and set up, and the loop runs against an MLflow tracking server over
HTTP (artifacts served by it), as in production; then both targets are built, `runtime` (pulls
the champion from the registry at start) and `baked` (the model from `make bundle` inside).
`podman run` cannot start containers in some sandboxes (crun cannot set RLIMIT_NPROC), so each
image's own command runs in a container's file system (`podman create` + `podman mount`, a
writable layer as in a real container) with `chroot`, as the image's user, with the image's
environment: it must become ready and answer `/predict`.

Everything podman stores lives in a store of the test's own, removed at the end.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .conftest import COMBINATIONS, BakedProject, bake_into
from .images import Podman, build_args, image_store
from .test_generated import free_port, process_group, running

pytestmark = pytest.mark.slow

logger = logging.getLogger(__name__)

TARGETS = ("runtime", "baked")
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
    """Both targets of the project's Dockerfile, built (`baked` reuses `runtime`'s layers)."""
    arguments = build_args()
    built = {}
    for target in TARGETS:
        tag = f"localhost/{trained.project.path.name}:{target}"
        with timed(f"podman build --target {target}"):
            podman(
                *("build", "--isolation", "chroot", "--network", "host", "--pull=never"),
                *("--format", "docker"),  # Docker's format: OCI has no HEALTHCHECK
                *arguments,
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
