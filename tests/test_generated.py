"""Slow tier: install generated projects and run their own Make targets, as a user would.

Two option sets are installed (the defaults and Python 3.12); each runs `make setup`, then lint,
test, format and the pre-commit hooks, then every other Makefile target. Each option set's tests
run in order on one xdist worker (`--dist loadscope` keeps a class together), sharing one
installed project.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

from .conftest import COMBINATIONS, BakedProject, bake_into, project_env, prometheus_tool
from .images import Podman, build_args, image_store
from .offline import external_loads
from .workflows import PipelineRun, RunResult, github_pipeline, gitlab_pipeline

pytestmark = pytest.mark.slow

# Targets not smoke-run by `test_every_other_target_runs`, each with the reason.
COVERED_ELSEWHERE = {
    "help": "run by test_help_lists_every_target",
    "setup": "run by the installed fixture",
    "lint": "a step of the ci pipeline: run by test_the_ci_pipeline_runs_green",
    "test": "a step of the ci pipeline: run by test_the_ci_pipeline_runs_green",
    "test-integration": "needs a PostgreSQL: run by test_the_loop_runs_on_the_shared_stack",
    "gate-report": "a step of the ci and train pipelines, run by their tests",
    "image": "a step of the ci and deploy pipelines, run by their tests",
    "image-push": "a step of the deploy pipeline: run by test_the_deploy_pipeline_...",
    "deploy": "a step of the deploy pipeline: run by test_the_deploy_pipeline_...",
    "deploy-rollback": "a step of the deploy pipeline: run by test_the_deploy_pipeline_...",
    "smoke-test": "a step of the deploy pipeline: run by test_the_deploy_pipeline_...",
    "format": "run by test_format_leaves_no_diff",
    "serve": "a server that runs until stopped: run by test_serve_answers_until_stopped",
    "drift-demo": "run by test_drift_triggers_the_monitor_and_retrain_folds_the_labels",
    "retrain": "run by test_drift_triggers_the_monitor_and_retrain_folds_the_labels",
    "rollback": "needs two champions: run by test_promote_then_rollback_moves_champion_back",
    "exp": "needs a commit: see test_an_experiment_needs_a_commit_then_changes_only_what_it_sets",
    "notebook": "a server that runs until stopped: see test_notebook_opens_in_jupyterlab_offline",
    "adopt": "needs a team's table: run by TestPython312.test_a_teams_own_table_runs_the_loop",
    "dagster": "a server that runs until stopped: the project's tests/orchestration/test_ui.py",
    "bench-loop": "minutes of wall time: its figures are in docs/benchmarks.md",
    "docs-serve": "a server that runs until stopped: run by TestOnboarding",
}
# Targets whose work does not depend on the option set: smoke-run on the defaults only, each with
# where else the other option sets run that work.
ON_THE_DEFAULTS_ONLY = {
    "bench-serve": "load-tests the service, the same code for every option set",
    "bench-score": "times batch scoring, the same code for every option set",
    "orchestrate": "the project's own tests/orchestration/test_loop.py materializes the same graph",
}
# The only skips the project's own tests may report here, each with the reason it is acceptable.
# Any other skip fails the slow tier: a test that skips here checks nothing, and says nothing.
ALLOWED_SKIPS: dict[str, str] = {}
# Arguments that keep a smoke run short; the target itself is the one a user types.
SMOKE_ARGS = {
    "bench-serve": ["BENCH_ARGS=--seconds 1 --connections 8"],
    "bench-score": ["BENCH_ARGS=--rows 2000 --runs 1"],
}


@pytest.fixture(scope="class")
def installed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> BakedProject:
    """The class's option set, rendered and set up once; its tests then run in order."""
    name = request.cls.combination
    project = bake_into(tmp_path_factory.mktemp(name), **COMBINATIONS[name])
    # `make data-push` must not write into the user's home (the default remote is ~/.cache/...).
    project.env["DATA_REMOTE"] = str(tmp_path_factory.mktemp(f"{name}-dvc-remote"))
    # With the PostgreSQL extra, the project's dbt-on-PostgreSQL test runs against the local
    # server (.ci/run starts it) instead of skipping.
    project.run("make", "setup", "EXTRAS=postgres")
    # Stage everything (uv.lock included) so a later `git diff` shows what a target changed.
    project.run("git", "add", "--all")
    return project


@pytest.fixture(scope="class")
def podman(installed: BakedProject, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    """A podman store with stand-ins for the Dockerfile's base images (the project's Python)."""
    version = (installed.path / ".python-version").read_text(encoding="utf-8").strip()
    with image_store(tmp_path_factory.mktemp("podman"), version) as store:
        yield store


def cli(project: BakedProject) -> tuple[str, ...]:
    """The project's own command line, `python -m <package>`, in its environment."""
    package = next((project.path / "src").iterdir()).name
    return ("uv", "run", "--no-sync", "python", "-m", package)


def make_targets(project: BakedProject) -> list[str]:
    makefile = (project.path / "Makefile").read_text(encoding="utf-8")
    return re.findall(r"^([a-zA-Z][\w-]*):.*## ", makefile, flags=re.MULTILINE)


def documented_trigger(project: BakedProject) -> str:
    """The retrain-trigger command of the project's README (its trigger-interface table)."""
    readme = (project.path / "README.md").read_text(encoding="utf-8")
    found = re.search(r"^\| command \| `([^`]+)`", readme, flags=re.MULTILINE)
    assert found, "the README's trigger table names no command"
    return found.group(1)


def unexpected_skips(pytest_output: str) -> list[str]:
    """The `SKIPPED` lines of pytest's `-ra` summary that no `ALLOWED_SKIPS` entry explains."""
    skipped = [line for line in pytest_output.splitlines() if line.startswith("SKIPPED")]
    return [line for line in skipped if not any(reason in line for reason in ALLOWED_SKIPS)]


def test_a_skip_fails_the_slow_tier_unless_it_is_allowed() -> None:
    summary = (
        "SKIPPED [1] tests/data/test_postgres.py:19: dbt-postgres is not installed\n"
        "12 passed, 1 skipped in 3.0s\n"
    )
    assert unexpected_skips(summary) == [summary.splitlines()[0]]
    assert unexpected_skips("12 passed in 3.0s\n") == []


@dataclass
class Server:
    """A long-running Make target started by a test, and its log."""

    process: subprocess.Popen[bytes]
    log: Path

    def get(self, url: str, timeout: float = 90) -> bytes:
        """The body of `url` once the server answers (fails if it dies or takes too long)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310 (http on 127.0.0.1)
                    return bytes(reply.read())
            except (urllib.error.URLError, ConnectionError):
                assert self.process.poll() is None, self.log.read_text(encoding="utf-8")[-3000:]
                assert time.monotonic() < deadline, f"{url} did not answer within {timeout:.0f} s"
                time.sleep(0.5)


@contextlib.contextmanager
def process_group(
    command: list[str], env: dict[str, str], log: Path, cwd: Path | None = None
) -> Iterator[Server]:
    """`command` in its own process group (make, uv, the server), stopped whole on leaving."""
    with log.open("w", encoding="utf-8") as output:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield Server(process, log)
    finally:
        with contextlib.suppress(ProcessLookupError):  # it may have stopped on its own
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.contextmanager
def running(
    project: BakedProject, command: list[str], env: dict[str, str], folder: Path
) -> Iterator[Server]:
    """A project's `command` with its environment and `env`, logged to `folder`/server.log."""
    environment = {**project_env(), **project.env, **env}
    with process_group(command, environment, folder / "server.log", project.path) as server:
        yield server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape(
    project: BakedProject, targets: dict[str, str], queries: Sequence[str], folder: Path
) -> dict[str, str]:
    """What Prometheus, run with the project's deploy/prometheus configuration, reads for
    `queries`: each scrape job named in `targets` points at its target (every second), the
    others are left out."""
    prometheus = prometheus_tool("prometheus")
    shipped = project.path / "deploy/prometheus"
    config = yaml.safe_load((shipped / "prometheus.yml").read_text(encoding="utf-8"))
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    jobs = [job for job in config["scrape_configs"] if job["job_name"] in targets]
    assert {job["job_name"] for job in jobs} == set(targets), config["scrape_configs"]
    for job in jobs:
        for group in job["static_configs"]:
            group["targets"] = [targets[job["job_name"]]]
    config["scrape_configs"] = jobs
    folder.mkdir()
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    for rules in config["rule_files"]:  # next to the configuration, as in deploy/prometheus
        shutil.copy2(shipped / rules, folder / rules)
    web = f"127.0.0.1:{free_port()}"
    command = [
        prometheus,
        f"--config.file={folder / 'prometheus.yml'}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address={web}",
    ]
    values: dict[str, str] = {}
    with process_group(command, project_env(), folder / "prometheus.log") as server:
        for query in queries:
            url = f"http://{web}/api/v1/query?query={urllib.parse.quote(query)}"
            deadline = time.monotonic() + 60
            while query not in values and time.monotonic() < deadline:
                result = json.loads(server.get(url))["data"]["result"]
                if result:
                    values[query] = result[0]["value"][1]
                else:
                    time.sleep(0.5)
    return values


class InstalledProjectChecks:
    """Every check of an installed project; a subclass names the option set (`combination`)."""

    combination: str

    def test_setup_installed_the_environment_and_hooks(self, installed: BakedProject) -> None:
        assert (installed.path / ".venv").is_dir()
        assert installed.has_file("uv.lock")
        assert installed.has_file(".git/hooks/pre-commit")
        version = installed.run(".venv/bin/python", "-c", "import sys; print(sys.version[:4])")
        assert version.stdout.strip().startswith(
            (installed.path / ".python-version").read_text().strip()
        )

    def test_help_lists_every_target(self, installed: BakedProject) -> None:
        listed = installed.run("make").stdout
        for target in make_targets(installed):
            assert re.search(rf"^\s+(\x1b\[\d+m)?{re.escape(target)}\b", listed, flags=re.MULTILINE)

    def test_the_ci_pipeline_runs_green(
        self, installed: BakedProject, podman: Podman, tmp_path: Path
    ) -> None:
        """The generated `ci` pipeline's steps, in order: setup, lint and types, the project's
        own tests, the data run and training smoke run, the gate's verdict, the image."""
        tests = self.run_ci(installed, podman, tmp_path)
        assert unexpected_skips(tests) == []

    @staticmethod
    def run_ci(installed: BakedProject, podman: Podman, tmp_path: Path) -> str:
        """Run the `ci` pipeline green; the output of its `make test` step."""
        with Pipelines(installed, podman, tmp_path) as pipelines:
            result = pipelines.run("ci")
        assert set(result.jobs.values()) == {"success"}, result.failures()
        tests = result.output_of(pipelines.ci_job, "make test")
        assert re.search(r"\d+ passed", tests)
        assert not re.search(r"\d+ failed", tests)  # pytest's count (a GitLab job is one log)
        assert "Gate: passed" in result.output_of(pipelines.ci_job, "gate-report")
        if pipelines.provider == "github":
            summary = tmp_path / "logs/ci/checks-github_step_summary"
            assert "| post-train test | verdict | detail |" in summary.read_text(encoding="utf-8")
        print(timings(result))  # noqa: T201 (shown with -s: the figures of docs/benchmarks.md)
        return tests

    def test_the_deploy_targets_name_what_is_missing(self, installed: BakedProject) -> None:
        """Unset, the platform's settings (and the integration tests' PostgreSQL) stop `make`
        with exit 2, the name and an example."""
        unset = ("DEPLOY_COMMAND", "ROLLBACK_COMMAND", "IMAGE_REGISTRY", "TEST_POSTGRES_URL")
        for target, named, example in (
            ("deploy", "DEPLOY_COMMAND is not set", "kubectl -n"),
            ("deploy-rollback", "ROLLBACK_COMMAND is not set", "rollout undo"),
            ("image-push", "IMAGE_REGISTRY is not set", "IMAGE_REGISTRY=ghcr.io/"),
            ("smoke-test", "SERVICE_URL is not set", "SERVICE_URL=http://127.0.0.1:8000"),
            ("test-integration", "TEST_POSTGRES_URL is not set", "TEST_POSTGRES_URL=postgresql://"),
        ):
            refused = installed.run(
                "env", *(f"{name}=" for name in unset), "make", target, check=False
            )
            assert refused.returncode == 2, (target, refused.stdout, refused.stderr)
            assert named in refused.stderr
            assert example in refused.stderr

    def test_format_leaves_no_diff(self, installed: BakedProject) -> None:
        installed.run("make", "format")
        diff = installed.run("git", "diff", "--stat", check=False)
        assert diff.stdout == "", f"make format changed files on the first pass:\n{diff.stdout}"

    def test_pre_commit_hooks_pass_offline_on_every_file(self, installed: BakedProject) -> None:
        installed.run("uv", "run", "--no-sync", "pre-commit", "run", "--all-files")

    def test_every_other_target_runs(self, installed: BakedProject) -> None:
        skipped = COVERED_ELSEWHERE
        if installed.answers != COMBINATIONS["defaults"]:
            skipped = {**COVERED_ELSEWHERE, **ON_THE_DEFAULTS_ONLY}
        targets = [t for t in make_targets(installed) if t not in skipped]
        # `clean` last: it removes what the others leave.
        targets.sort(key=lambda target: target == "clean")
        for target in targets:
            installed.run("make", target, *SMOKE_ARGS.get(target, []))

    def test_promote_then_rollback_moves_champion_back(self, installed: BakedProject) -> None:
        installed.run("make", "all")  # on a fresh project the first model that passes is champion
        before = self.champion(installed)
        # Another candidate from the same data and params: metrics are equal, so it is promoted.
        for step in ("train", "evaluate", "register", "promote"):
            installed.run(*cli(installed), step)
        assert self.champion(installed) != before
        installed.run("make", "rollback")
        assert self.champion(installed) == before
        # The rollback sticks: the version it left is never promoted again.
        refused = installed.run("make", "promote", check=False)
        assert refused.returncode != 0, refused.stdout + refused.stderr
        assert "rolled back from champion" in refused.stderr, refused.stderr
        assert self.champion(installed) == before
        installed.run("make", "lineage")

    @staticmethod
    def champion(installed: BakedProject) -> str:
        """The version the `champion` alias points to now."""
        lineage = installed.run(*cli(installed), "lineage", "champion")
        return str(json.loads(lineage.stdout)["version"])

    def test_drift_triggers_the_monitor_and_retrain_folds_the_labels(
        self, installed: BakedProject
    ) -> None:
        """The feedback loop as a scheduler drives it: exit 3 on drift, then `make retrain`."""
        if installed.answers != COMBINATIONS["defaults"]:
            pytest.skip("the loop is the same for every option set: run once, on the defaults")
        installed.run("make", "drift-demo", "SCENARIO=sudden")
        quiet = installed.run("make", "monitor")  # without the flag an alarm is only reported
        assert "drift" in quiet.stdout
        # The trigger a scheduler runs, exactly as the project's README gives it: 3 means drift.
        alarm = installed.run(*shlex.split(documented_trigger(installed)), check=False)
        assert alarm.returncode == 3, alarm.stdout + alarm.stderr
        summary = json.loads((installed.path / "reports/monitoring/latest.json").read_text())
        assert summary["drift_detected"] is True
        assert summary["retrain_recommended"] is True
        champion_before = self.champion(installed)
        raw = installed.path / "data/raw/customers.csv"
        rows_before = len(raw.read_text(encoding="utf-8").splitlines())
        retrain = installed.run("make", "retrain")  # the gate passes the retrained model
        rows_after = len(raw.read_text(encoding="utf-8").splitlines())
        assert rows_after > rows_before, "the labelled batches were folded into the raw data"
        assert "folded" in retrain.stdout
        retrained = self.champion(installed)
        assert retrained != champion_before, retrain.stdout[-3000:]

        # A model that really is worse, on the same data: the gate refuses it, champion stays.
        params = installed.path / "params.yaml"
        shipped = params.read_text(encoding="utf-8")
        params.write_text(shipped.replace("    max_iter: 100\n", "    max_iter: 2\n"), "utf-8")
        try:
            for step in ("train", "evaluate", "register"):
                installed.run("make", step)
            refused = installed.run("make", "promote", check=False)
        finally:
            params.write_text(shipped, encoding="utf-8")
        assert refused.returncode != 0
        assert "not promoted" in refused.stderr, refused.stderr
        assert self.champion(installed) == retrained

    def test_the_train_deploy_and_monitor_pipelines_run_green(
        self, installed: BakedProject, podman: Podman, tmp_path: Path
    ) -> None:
        """Train to an approved champion; deploy through staging, canary and rollout; a canary
        that serves the wrong share is rolled back; a monitoring alarm starts training."""
        with Pipelines(installed, podman, tmp_path) as pipelines:
            # A runner's checkout has the DVC outputs dvc.lock records; earlier tests of the class
            # ran steps outside DVC (`python -m <package> train`): `dvc repro` brings them back.
            installed.run("make", "evaluate")
            trained = pipelines.run("train")
            assert set(trained.jobs.values()) == {"success"}, trained.failures()
            assert "Gate: passed" in trained.output_of("train", "gate-report")

            deployed = pipelines.run("deploy")
            assert deployed.jobs.pop("rollback") == "skipped"
            assert set(deployed.jobs.values()) == {"success"}, deployed.failures()
            calls = pipelines.remote_calls()
            assert [line.rsplit(" ", 1)[-1] for line in calls if line.startswith("deploy ")] == [
                "0",
                "0.1",
                "0",
            ]
            assert any(line.startswith("docker push localhost/ci-tests/") for line in calls)

            # A deployment that serves another canary share than it was given: the canary's smoke
            # test fails, the rollout does not happen, and production is rolled back.
            broken = pipelines.run("deploy", skip_build=True, FAKE_BREAK_IN="production")
            assert broken.jobs["canary"] == "failure", broken.failures()
            assert broken.jobs["rollout"] == "skipped"
            assert broken.jobs["rollback"] == "success", broken.failures()
            assert "canary_fraction is 0.5, 0.1 was deployed" in broken.failures()

            installed.run("make", "drift-demo", "SCENARIO=sudden")
            monitored = pipelines.run("monitor")
            assert set(monitored.jobs.values()) == {"success"}, monitored.failures()
            assert any(pipelines.retrain_call in line for line in pipelines.remote_calls())

    def test_serve_answers_until_stopped(self, installed: BakedProject, tmp_path: Path) -> None:
        """`make serve` on the champion: ready within 90 s, healthy, scraped by the project's
        Prometheus configuration, and stopped by SIGTERM."""
        # Runs after test_every_other_target_runs: `make all` has made a champion.
        port = free_port()
        with running(installed, ["make", "serve"], {"PORT": str(port)}, tmp_path) as server:
            ready = json.loads(server.get(f"http://127.0.0.1:{port}/ready"))
            assert ready["ready"] is True
            assert ready["version"], ready  # the champion `make all` promoted
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as reply:
                assert reply.status == 200
            queries = ('up{job="api"}', 'model_ready{job="api"}')
            scraped = scrape(installed, {"api": f"127.0.0.1:{port}"}, queries, tmp_path / "prom")
            assert scraped == {'up{job="api"}': "1", 'model_ready{job="api"}': "1"}

    def test_the_monitor_pushes_its_figures_for_prometheus(
        self, installed: BakedProject, tmp_path: Path
    ) -> None:
        """`make monitor` with PROMETHEUS_PUSHGATEWAY_URL: a real Pushgateway gets the run's
        figures, and the project's Prometheus reads them there, as pushed (job and model)."""
        # Runs after test_every_other_target_runs: a champion and logged predictions are there.
        gateway = prometheus_tool("prometheus-pushgateway")
        address = f"127.0.0.1:{free_port()}"
        command = [gateway, f"--web.listen-address={address}"]
        with process_group(command, project_env(), tmp_path / "pushgateway.log") as server:
            server.get(f"http://{address}/-/healthy")
            installed.run("make", "monitor", f"PROMETHEUS_PUSHGATEWAY_URL=http://{address}")
            summary = json.loads(
                (installed.path / "reports/monitoring/latest.json").read_text(encoding="utf-8")
            )
            model = summary["model_name"]
            alarm = f'monitor_alarm{{job="monitor",model="{model}",alarm="retrain"}}'
            rows = f'monitor_window_rows{{job="monitor",model="{model}"}}'
            scraped = scrape(installed, {"pushgateway": address}, (alarm, rows), tmp_path / "prom")
        assert scraped == {
            alarm: str(int(summary["retrain_recommended"])),
            rows: str(summary["window"]["rows"]),
        }
        # Without the Pushgateway the step fails, naming the setting, and the report is written.
        failed = installed.run(
            "make", "monitor", f"PROMETHEUS_PUSHGATEWAY_URL=http://{address}", check=False
        )
        assert failed.returncode != 0
        assert f"PROMETHEUS_PUSHGATEWAY_URL=http://{address}" in failed.stderr

    def test_the_loop_runs_on_the_shared_stack(self, installed: BakedProject) -> None:
        """`make test-integration`, never skipped here: on staging, dbt on PostgreSQL, an MLflow
        server on PostgreSQL with S3 artifacts, DVC on S3, the service serving the server's
        champion, Dagster with its storage on PostgreSQL."""
        if installed.answers != COMBINATIONS["defaults"]:
            pytest.skip("the shared stack is the same for every option set: run on the defaults")
        url = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
        result = installed.run("make", "test-integration", f"TEST_POSTGRES_URL={url}")
        assert re.search(r"\d+ passed", result.stdout), result.stdout[-3000:]
        assert not re.search(r"\d+ (failed|skipped|error)", result.stdout), result.stdout[-3000:]

    def test_notebook_opens_in_jupyterlab_offline(
        self, installed: BakedProject, tmp_path: Path
    ) -> None:
        """`make notebook`: JupyterLab serves analysis/ with the project's kernel, offline."""
        port = free_port()
        settings = {"NOTEBOOK_PORT": str(port), "JUPYTER_TOKEN": "template-tests"}
        with running(installed, ["make", "notebook"], settings, tmp_path) as server:
            base = f"http://127.0.0.1:{port}"
            assert "version" in json.loads(server.get(f"{base}/api"))
            contents = json.loads(server.get(f"{base}/api/contents?token=template-tests"))
            assert "01_explore_features.ipynb" in {item["name"] for item in contents["content"]}
            kernels = json.loads(server.get(f"{base}/api/kernelspecs?token=template-tests"))
            assert "python3" in kernels["kernelspecs"]

    def test_an_experiment_needs_a_commit_then_changes_only_what_it_sets(
        self, installed: BakedProject
    ) -> None:
        """`make exp`: refused with the fix before the first commit; then run and compared."""
        if installed.answers != COMBINATIONS["defaults"]:
            pytest.skip("the experiment flow is the same for every option set: run on the defaults")
        refused = installed.run("make", "exp", check=False)
        assert refused.returncode != 0
        assert "no commit yet" in refused.stderr
        assert "git commit" in refused.stderr  # the fix
        installed.run("git", "add", "--all")
        installed.run(
            *("git", "-c", "user.name=Template Tests", "-c", "user.email=tests@example.com"),
            *("commit", "--quiet", "--no-verify", "--message=Initial project"),
        )
        overrides = "-S train.estimator=random_forest -S train.random_forest.max_depth=6"
        result = installed.run("make", "exp", f"ARGS={overrides}")
        assert "random_forest" in result.stdout  # the comparison table lists the experiment
        changed = installed.run("git", "diff", "--numstat", "params.yaml").stdout.split()
        assert changed[:2] == ["2", "2"], "the two values set, and nothing else (comments kept)"


class TestDefaults(InstalledProjectChecks):
    combination = "defaults"


class TestPython312(InstalledProjectChecks):
    """The Python 3.12 project, which then adopts a team's own table (after its demo ran).

    Its `ci` pipeline runs last, on the adopted project: the project's own lint and tests, the
    gate and the image on a team's data, once (not once on the demo and again after adoption).
    """

    combination = "python312"

    # The tests of the demo's own data skip, saying so, once the data are a team's own.
    DEMO_ONLY = "needs the demo source"
    # Columns of the demo's contract; none may survive adoption.
    DEMO_COLUMNS = ("customer_id", "country", "n_orders", "return_rate", "age_band")

    def test_a_teams_own_table_runs_the_loop(self, installed: BakedProject, tmp_path: Path) -> None:
        """The documented path only: commit, `make adopt`, commit, `make all`, then serve."""
        commit(installed, "The demo, run once")
        table = write_accounts(tmp_path / "accounts.csv")
        champion_of_the_demo = self.champion(installed)

        adopted = installed.run("make", "adopt", f"FILE={table}", "ID=account_no", "LABEL=churned")
        assert "left for you to decide" in adopted.stdout
        commit(installed, "Adopt accounts.csv")
        loop = installed.run("make", "all")

        # The first model of the new task replaces the demo's champion on its own thresholds.
        assert "champion.comparison" in loop.stdout
        assert self.champion(installed) != champion_of_the_demo
        # Its lint and tests run in the `ci` pipeline, next.

        port = free_port()
        with running(installed, ["make", "serve"], {"PORT": str(port)}, tmp_path) as server:
            schema = server.get(f"http://127.0.0.1:{port}/openapi.json").decode("utf-8")
        for column in ("plan", "support_calls", "monthly_spend", "tenure_months"):
            assert f'"{column}"' in schema, column
        for column in self.DEMO_COLUMNS:
            assert f'"{column}"' not in schema, column

    def test_the_ci_pipeline_runs_green(
        self, installed: BakedProject, podman: Podman, tmp_path: Path
    ) -> None:
        """The `ci` pipeline on the adopted project: green, the demo's data tests skipped with
        their reason (and only they)."""
        tests = self.run_ci(installed, podman, tmp_path)
        skipped = [line for line in tests.splitlines() if line.startswith("SKIPPED")]
        assert skipped, "the demo's data tests say why they do not run"
        assert all(self.DEMO_ONLY in line for line in skipped), skipped

    def test_pushed_data_come_back_in_a_fresh_clone(
        self, installed: BakedProject, tmp_path: Path
    ) -> None:
        """`make data-push`, clone, `make setup`, `make data-pull`, `make all`: nothing lost."""
        pushed = installed.run("make", "data-push")
        assert "accounts.csv" in pushed.stdout + pushed.stderr or "pushed" in pushed.stdout
        clone = BakedProject(tmp_path / "clone", installed.answers, dict(installed.env))
        installed.run("git", "clone", "--quiet", str(installed.path), str(clone.path))
        clone.run("make", "setup")
        clone.run("make", "data-pull")
        raw = "data/raw/accounts.csv"
        assert (clone.path / raw).read_bytes() == (installed.path / raw).read_bytes()
        clone.run("make", "all")


FAKES = Path(__file__).parent / "fakes"


class Pipelines:
    """The generated CI/CD of an installed project, run here with fakes for its remotes.

    The registry push, the platform's deploy and rollback (a service started from the project)
    and the GitHub and GitLab APIs are the fakes in ``tests/fakes``; they record their calls.
    The image is built for real with podman on the local base images (``tests/images.py``).
    """

    GITHUB_WORKFLOWS = ("ci", "train", "deploy", "monitor")
    # Per GitLab pipeline: the event's variables, and the jobs its rules must select.
    GITLAB_EVENTS: ClassVar[dict[str, tuple[dict[str, str], list[str]]]] = {
        "ci": (
            {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main"},
            ["check", "build-image"],
        ),
        "train": (
            {"CI_PIPELINE_SOURCE": "schedule", "PIPELINE": "train"},
            ["train", "promote"],
        ),
        "deploy": (
            {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_TAG": "v1.0.0"},
            ["push-image", "staging", "canary", "rollout", "rollback"],
        ),
        "monitor": (
            {"CI_PIPELINE_SOURCE": "schedule", "PIPELINE": "monitor"},
            ["monitor"],
        ),
    }

    def __init__(self, project: BakedProject, podman: Podman, folder: Path) -> None:
        self.project = project
        self.provider = "gitlab" if project.has_file(".gitlab-ci.yml") else "github"
        self.ci_job = "check" if self.provider == "gitlab" else "checks"
        self.record = folder / "remote-calls.log"
        self.record.touch()
        self.state = folder / "deployed"
        self.logs = folder / "logs"
        port = free_port()
        package = next((project.path / "src").iterdir()).name
        service = {
            "DEPLOY_COMMAND": "fake-deploy",
            "ROLLBACK_COMMAND": "fake-deploy rollback",
            "SERVICE_URL": f"http://127.0.0.1:{port}",
        }
        self.env = {
            **project_env(),
            **project.env,
            "PATH": f"{FAKES}{os.pathsep}{project_env()['PATH']}",
            "FAKE_RECORD": str(self.record),
            "FAKE_STATE": str(self.state),
            "FAKE_PORT": str(port),
            "FAKE_PACKAGE": package,
            # The stand-in for `docker` builds with podman in this store, on the local bases.
            "FAKE_PODMAN": shlex.join(podman.command),
            "FAKE_BUILD_ARGS": shlex.join(build_args()),
        }
        sha = "0" * 40
        self.contexts = {
            "vars": {
                "DATA_REMOTE": project.env["DATA_REMOTE"],
                "IMAGE_REGISTRY": "localhost/ci-tests",
                **service,
            },
            # MLFLOW_TRACKING_URI is not given: the jobs share the project's own registry.
            "secrets": {"API_KEY": "ci-tests-key"},
            "github": {
                "sha": sha,
                "ref": "refs/heads/main",
                "ref_name": "main",
                "workflow": "tests",
                "repository": f"acme/{project.path.name}",
                "repository_owner": "acme",
                "actor": "ci-tests",
                "token": "fake-token",
            },
            "gitlab": {
                "CI_PROJECT_DIR": str(project.path),
                "CI_COMMIT_SHA": sha,
                "CI_COMMIT_BRANCH": "main",
                "CI_COMMIT_REF_NAME": "main",
                "CI_DEFAULT_BRANCH": "main",
                "CI_REGISTRY": "localhost",
                "CI_REGISTRY_IMAGE": "localhost/ci-tests",
                "CI_REGISTRY_USER": "ci-tests",
                "CI_REGISTRY_PASSWORD": "fake-token",
                "CI_JOB_TOKEN": "fake-token",
                "CI_API_V4_URL": "http://gitlab.invalid/api/v4",
                "CI_PROJECT_ID": "1",
            },
            # CI/CD variables scoped to the environments.
            "gitlab_environments": {
                name: {"API_KEY": "ci-tests-key", **service} for name in ("staging", "production")
            },
        }
        # The PostgreSQL service container of the ci job is this machine's server.
        self.overrides = {"POSTGRES_HOST": "127.0.0.1"}
        self.retrain_call = (
            "variables[PIPELINE]=train"
            if self.provider == "gitlab"
            else "gh workflow run train.yml"
        )

    def run(self, name: str, *, skip_build: bool = False, **fakes: str) -> RunResult:
        """Run pipeline `name` (ci, train, deploy, monitor); `fakes` add to the runner's env."""
        runner = PipelineRun(
            self.project.path,
            {**self.env, **fakes},
            self.contexts,
            self.logs / name,
            overrides=self.overrides,
        )
        if self.provider == "gitlab":
            pipeline = gitlab_pipeline(self.project.path / ".gitlab-ci.yml")
            event, expected = self.GITLAB_EVENTS[name]
            runner.contexts["gitlab"] = {**runner.contexts["gitlab"], **event}
            selected = pipeline.selected(runner.contexts["gitlab"], changed=set())
            assert list(selected) == expected, f"the {name} pipeline's rules select {selected}"
            if skip_build:
                del selected["push-image"]
            return runner.gitlab(pipeline, selected)
        workflow = github_pipeline(self.project.path / f".github/workflows/{name}.yml")
        only = [job for job in workflow.jobs if not (skip_build and job == "image")]
        return runner.github(workflow, only)

    def remote_calls(self) -> list[str]:
        """What the fakes were asked to do, in order."""
        return self.record.read_text(encoding="utf-8").splitlines()

    def __enter__(self) -> Pipelines:
        return self

    def __exit__(self, *_: object) -> None:
        """Stop the service the fake deploy started, and put the project's extra back (the
        jobs' `make setup` installs the default environment; the class's later tests use it)."""
        pid = self.state / "pid"
        if pid.is_file():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(pid.read_text(encoding="utf-8")), signal.SIGKILL)
        self.project.run("make", "setup", "EXTRAS=postgres")


def timings(result: RunResult) -> str:
    """Each step's wall time, as a Markdown table."""
    rows = [
        f"| {s.job} | `{s.name.splitlines()[0]}` | {s.seconds:.1f} |"
        for s in result.steps
        if s.seconds
    ]
    return "\n".join(["| job | step | seconds |", "| --- | --- | ---: |", *rows])


def commit(project: BakedProject, message: str) -> None:
    """Commit everything, as the README asks before and after `make adopt`."""
    project.run("git", "add", "--all")
    project.run(
        *("git", "-c", "user.name=Template Tests", "-c", "user.email=tests@example.com"),
        *("commit", "--quiet", "--no-verify", f"--message={message}"),
    )


def write_accounts(path: Path, rows: int = 3000) -> Path:
    """A team's table that is not the demo: one table, an integer label (empty where the outcome
    is not known yet), a categorical and a nullable feature, no sensitive column."""
    rng = random.Random(11)  # noqa: S311 (test data, not secrets)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["account_no", "plan", "tenure_months", "support_calls", "monthly_spend", "churned"]
        )
        for number in range(rows):
            plan = rng.choices(["basic", "plus", "pro"], weights=[5, 3, 2])[0]
            tenure, calls = rng.randint(1, 120), min(12, int(rng.expovariate(0.5)))
            risk = 0.8 * calls - 0.03 * tenure + (0.5 if plan == "basic" else 0) + rng.gauss(0, 1)
            spend = "" if rng.random() < 0.05 else f"{rng.gammavariate(2, 30):.2f}"
            label = "" if rng.random() < 0.1 else str(int(risk > 0.5))
            writer.writerow([100_000 + number, plan, tenure, calls, spend, label])
    return path


# A fenced block of a Markdown page: its language and its text.
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", flags=re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class ShellStep:
    """A `bash` block of a docs page, and the lines of the `text` block right after it."""

    commands: str
    expected: list[str]


def shell_steps(markdown: str) -> list[ShellStep]:
    """The page's `bash` blocks in order; a `text` block that follows one is its output.

    Blocks in any other language (`sh` for commands that need a remote or never end) are not
    steps: they are for reading.
    """
    steps: list[ShellStep] = []
    previous_end = 0
    for found in FENCE.finditer(markdown):
        language, body = found.group(1), found.group(2)
        follows_step = bool(steps) and markdown[previous_end : found.start()].strip() == ""
        if language == "bash":
            steps.append(ShellStep(body, []))
        elif language == "text" and follows_step and not steps[-1].expected:
            steps[-1] = ShellStep(steps[-1].commands, [ln for ln in body.splitlines() if ln])
        previous_end = found.end()
    return steps


def printed(expected: str, output: str) -> bool:
    """Whether a line of the output holds `expected`, where `...` stands for anything."""
    pattern = ".*".join(re.escape(part) for part in expected.split("..."))
    return re.search(pattern, output, flags=re.MULTILINE) is not None


def test_the_step_parser_pairs_each_command_block_with_its_output() -> None:
    page = (
        "Intro\n\n```sh\ngit push\n```\n\n```bash\nmake all\n```\n\n```text\nv1 is ...\n```\n"
        "Then:\n\n```bash\nmake docs\n```\n\nprose\n\n```text\nnot its output\n```\n"
    )
    assert shell_steps(page) == [
        ShellStep("make all\n", ["v1 is ..."]),
        ShellStep("make docs\n", []),
    ]
    assert printed("v1 is ...", "log line\ncustomer_quality v1 is the champion\n")
    assert not printed("v1 is the champion", "v2 is the champion\n")
    assert not printed("scored ... rows", "scored\n12 rows\n")  # `...` stays within a line


class TestOnboarding:
    """The onboarding page of a fresh project, run block by block as a newcomer would."""

    def test_the_onboarding_page_runs_as_written(
        self, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
    ) -> None:
        project = bake_into(tmp_path_factory.mktemp("onboarding"), **COMBINATIONS["defaults"])
        project.env["DATA_REMOTE"] = str(tmp_path_factory.mktemp("onboarding-dvc-remote"))
        # The identity the page asks a newcomer to give git once.
        for role in ("AUTHOR", "COMMITTER"):
            project.env[f"GIT_{role}_NAME"] = "New Data Scientist"
            project.env[f"GIT_{role}_EMAIL"] = "new@example.com"
        steps = shell_steps((project.path / "docs/onboarding.md").read_text(encoding="utf-8"))
        assert len(steps) >= 8, "the onboarding page lost its steps"

        for number, step in enumerate(steps, start=1):
            result = project.run("bash", "-euo", "pipefail", "-c", step.commands, check=False)
            output = result.stdout + result.stderr
            where = f"onboarding block {number}:\n{step.commands}\n--- output\n{output[-5000:]}"
            assert result.returncode == 0, where
            for line in step.expected:
                assert printed(line, output), f"{line!r} not printed by {where}"

        # What the page promised: two versions, the second champion, two commits on the branch.
        package = next((project.path / "src").iterdir()).name
        card = (project.path / f"docs/model-cards/{package}-v2.md").read_text(encoding="utf-8")
        evaluation = json.loads(
            (project.path / "reports/evaluation/latest.json").read_text(encoding="utf-8")
        )
        assert f"**{evaluation['metrics']['precision']:.3f}**" in card
        assert "| `late_payment_share` | feature | double precision | no | [0, 1] |" in card
        assert "Champion history: v1 → v2." in card
        assert "Latest monitoring of v2" in card
        assert "not recorded" not in card
        log = project.run("git", "log", "--format=%s", "main..HEAD").stdout.splitlines()
        assert log == [
            "Retrain with late_payment_share; model card of v2",
            "Add late_payment_share: the share of orders paid more than 7 days late",
        ]
        assert project.run("git", "status", "--porcelain").stdout == ""

        # The site `make docs` built: every page, offline, with the API answering for real.
        site = project.path / "site"
        for page in ("index", "onboarding", "data", "api", "runbook", "model-cards/index"):
            html = (site / f"{page}.html").read_text(encoding="utf-8")
            assert external_loads(html) == [], f"{page}.html loads from the network"
        assert "answered <strong>200</strong>" in (site / "api.html").read_text(encoding="utf-8")
        assert (site / "generated/dbt/index.html").is_file()
        assert (site / f"model-cards/{package}-v1.html").is_file()

        # `make docs-serve` serves the same site while the docs are edited.
        port = free_port()
        settings = {"DOCS_PORT": str(port)}
        with running(project, ["make", "docs-serve"], settings, tmp_path) as server:
            assert b"Onboarding" in server.get(f"http://127.0.0.1:{port}/onboarding.html")
